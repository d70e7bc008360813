"""Recorder selection: the C recorder when its extension is built, else the pure-Python one.

`FLOWTRACE_RECORDER=python|c` forces one (a clear error if "c" is asked for and not built).
Both implement `flowtrace.recorder.base.Recorder` and produce the same `Batch`es.
"""

from __future__ import annotations

import os

from .base import Batch, Recorder, RecorderConfig

__all__ = ["Batch", "Recorder", "RecorderConfig", "make_recorder", "active_recorder_name",
           "available_recorders"]

_NAMES = ("python", "c")


def _c_module():
    """The C recorder's wrapper module (`flowtrace.recorder.c`, which imports the extension
    `flowtrace._crecorder`), or None when it is not built or fails to import."""
    try:
        from . import c  # type: ignore[attr-defined]
    except Exception:  # ImportError, or a broken build: fall back to the Python recorder
        return None
    return c


def available_recorders() -> list[str]:
    """The recorders that can run here: always "python", plus "c" when it is built."""
    return ["python", "c"] if _c_module() is not None else ["python"]


def active_recorder_name(name: str | None = None) -> str:
    """Which recorder `make_recorder(config, name)` would use."""
    chosen = (name or os.environ.get("FLOWTRACE_RECORDER", "") or "").strip().lower()
    if chosen:
        if chosen not in _NAMES:
            raise ValueError(f"unknown recorder {chosen!r} (FLOWTRACE_RECORDER must be 'python' or 'c')")
        if chosen == "c" and _c_module() is None:
            raise RuntimeError("the C recorder (flowtrace._crecorder) is not built; use FLOWTRACE_RECORDER=python")
        return chosen
    return "c" if _c_module() is not None else "python"


def make_recorder(config: RecorderConfig | None = None, name: str | None = None) -> Recorder:
    """A new recorder for `config`: `name` ("python"/"c") or FLOWTRACE_RECORDER, else the best."""
    chosen = active_recorder_name(name)
    if chosen == "c":
        from .c import CRecorder  # the wrapper around flowtrace._crecorder

        return CRecorder(config or RecorderConfig())
    from .python import PyRecorder

    return PyRecorder(config or RecorderConfig())
