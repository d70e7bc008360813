"""The recorder interface: what a recorder (pure Python or C) hands to the session writer.

A recorder owns the `sys.monitoring` callbacks. The session calls `drain()` from its flusher
thread every flush interval; the recorder returns everything recorded since the last drain as
one `Batch`, which the writer turns into chunks (see docs/FORMAT.md). Both recorders produce
the same Batch, so the file and everything that reads it do not depend on which one ran.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..ftr.batch import Batch
from ..plain import Plain

__all__ = ["Batch", "Recorder", "RecorderConfig"]


class RecorderConfig(Plain):
    """What to record. `args` is "safe", "full" or "off"; `seed_running`: write the calls
    already running at start as partial calls."""

    __slots__ = ("args", "include", "exclude", "seed_running")

    def __init__(self, args: str = "safe", include: list[str] | None = None, exclude: list[str] | None = None,
                 seed_running: bool = False) -> None:
        self.args = args
        self.include = [] if include is None else include
        self.exclude = [] if exclude is None else exclude
        self.seed_running = seed_running


class Recorder(Protocol):
    """A recorder: registers monitoring callbacks on start, removes them on stop.

    - `start()` takes a free sys.monitoring tool id (never evicting another tool) and raises
      `RuntimeError` with a clear message when none is free.
    - `stop()` removes the callbacks and ends every open call as unfinished (EXIT how=3) so the
      next `drain()` returns a balanced tree.
    - `drain()` may be called from any thread, concurrently with recording.
    - `pending()` is how many rows wait for the next drain (the flusher drains early when many
      do), and `set_overflow(hook, rows)` makes the recording thread itself call `hook()` (which
      drains and writes) once that many rows wait: backpressure, so that a program calling
      faster than the file is written waits for its trace instead of growing buffers without
      bound. Both recorders provide them; the session uses them when present.
    - `holds_classes`: a batch keeps references to classes (the types of the instances it
      captured, classes passed) until its drain makes their texts; the session then drains
      before any collection that could free a class (collect.c), so that recording never
      keeps one alive.
    """

    name: str  # "python" or "c"
    holds_classes: bool

    def start(self) -> None: ...

    def stop(self, *, exiting: bool = False) -> None: ...

    def drain(self) -> Batch: ...

    def pending(self) -> int: ...

    def set_overflow(self, hook: Any, rows: int) -> None: ...

    def after_fork_child(self) -> None:
        """In a forked child, before stop(): forget what the parent's other threads held
        (locks, open calls on stacks that no longer exist)."""
