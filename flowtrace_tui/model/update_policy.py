"""When the explorer makes a new index of what it has read: a pure decision, tested on its own.

After each read the loading pipeline (pipeline.py) describes where it stands in a `ReadState`
and asks `UpdatePolicy.due`. The answers balance two costs: an index of everything read takes
work in proportion to the session (a whole build) or to what is new (a live session's grown
index), and the screen should show new calls soon.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadState:
    """Where loading stands after one read. Times in seconds (one monotonic clock).

    `indexed_calls`: calls in the newest index (-1: none made yet); `changed`: calls or ends
    arrived since it was made; `done`: nothing more will come; `more`: the read stopped at its
    size bound (more is waiting in the file); `since_index`: seconds since it was made;
    `index_cost`: the CPU seconds making it took."""

    calls: int
    indexed_calls: int
    changed: bool
    done: bool
    live: bool
    more: bool
    since_index: float
    index_cost: float
    bytes_read: int
    file_size: int


@dataclass(frozen=True)
class UpdatePolicy:
    """`poll_interval`: the live view's (None: a file read once).

    While a file loads, intermediate indexes show the first screen early and then only while
    they are cheap: when the calls read have grown `first_growth`-fold, at most every
    `min_rebuild_interval` s, in the first `rebuild_before` of the file (later the final index
    is near). A live session updates at most every `live_min_update` poll intervals, and not
    more often than twice what an update costs: reads aimed just after the recorder's flushes
    come about one interval apart, sometimes a little less, and a full interval here made such
    a read wait for the next one. A live view whose reads have not caught up with the file (a
    busy program on a busy machine) still shows what it has read every `live_behind_update` s:
    waiting to catch up could freeze the view for good."""

    poll_interval: float | None = None
    first_growth: float = 8.0
    min_rebuild_interval: float = 1.0
    rebuild_before: float = 0.4
    live_min_update: float = 0.5
    live_behind_update: float = 0.3

    def due(self, s: ReadState) -> bool:
        """Make a new index now?"""
        if not s.changed or s.calls <= 0:
            return False
        if s.indexed_calls < 0 or s.done:
            return True
        if s.live and self._live_due(s):
            return True
        return (s.calls >= self.first_growth * s.indexed_calls
                and s.since_index >= self.min_rebuild_interval
                and s.bytes_read < self.rebuild_before * max(1, s.file_size))

    def _live_due(self, s: ReadState) -> bool:
        spaced = s.since_index >= max(self.live_min_update * (self.poll_interval or 0), 2 * s.index_cost)
        return spaced and (not s.more or s.since_index >= self.live_behind_update)
