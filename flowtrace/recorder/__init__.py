"""Recorder selection: the C recorder when its extension is built, else the pure-Python one.

`FLOWTRACE_RECORDER=python|c` forces one (a clear error if "c" is asked for and cannot be used).
Both implement `flowtrace.recorder.base.Recorder` and produce the same `Batch`es.

An extension that is built but fails to import (a stale build whose constants disagree with
the Python sources, a .so for another interpreter, a broken file) is not the same as none:
`fallback_warning` gives the words a command says when it records with the Python recorder
for that reason (`c_recorder_problem` the failure itself).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

from .base import Batch, Recorder, RecorderConfig

__all__ = ["Batch", "Recorder", "RecorderConfig", "make_recorder", "active_recorder_name",
           "available_recorders", "c_recorder_problem", "fallback_warning"]

_NAMES = ("python", "c")


_C_NAME = "flowtrace._crecorder"
# (the wrapper module or None, why a BUILT extension cannot be used or None), once looked up
_c_state: tuple[ModuleType | None, str | None] | None = None


def _c_module() -> ModuleType | None:
    """The C recorder's wrapper module (`flowtrace.recorder.c`, which imports the extension
    `flowtrace._crecorder`), or None when it is not built or fails to import."""
    return _c_lookup()[0]


def c_recorder_problem() -> str | None:
    """Why the built C recorder cannot be used ("ImportError: …"), or None when it can or when
    none is built (a pure-Python install: no extension file for this interpreter)."""
    return _c_lookup()[1]


def _c_lookup() -> tuple[ModuleType | None, str | None]:
    global _c_state
    if _c_state is None:
        try:
            from . import c  # type: ignore[attr-defined]
        except Exception as exc:  # ImportError, or a broken build: the Python recorder records
            _c_state = (None, None if _c_spec() is None else f"{type(exc).__name__}: {exc}")
        else:
            _c_state = (c, None)
    return _c_state


def _c_spec() -> importlib.machinery.ModuleSpec | None:
    """The extension's import spec (where its file is), or None when it is not built here."""
    try:
        return importlib.util.find_spec(_C_NAME)
    except (ImportError, ValueError):
        return None


def fallback_warning() -> str | None:
    """The lines (no trailing newline) a command prints on stderr when it records with the
    Python recorder because the built C recorder cannot be used; None when the C recorder is
    used, is not built, or FLOWTRACE_RECORDER names the recorder on purpose."""
    problem = c_recorder_problem()
    if problem is None or os.environ.get("FLOWTRACE_RECORDER", "").strip():
        return None
    spec = _c_spec()
    where = f" ({spec.origin})" if spec is not None and spec.origin and spec.origin not in problem else ""
    return (f"flowtrace: warning: the C recorder cannot be used: {problem}{where}\n"
            "flowtrace: warning: recording with the pure-Python recorder instead (20-80x slower, bigger "
            f"files); {_rebuild_hint()} (FLOWTRACE_RECORDER=python uses it without this warning)")


def _rebuild_hint() -> str:
    """How to rebuild the extension: in place in a source checkout, else by reinstalling."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    checkout = os.path.dirname(package)
    if os.path.exists(os.path.join(checkout, "setup.py")):
        return f"rebuild it: cd {checkout} && {sys.executable} setup.py build_ext --inplace"
    return f"reinstall flowtrace to rebuild it: {sys.executable} -m pip install --force-reinstall --no-deps flowtrace"


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
            problem = c_recorder_problem()
            if problem is not None:
                raise RuntimeError(f"the C recorder cannot be used: {problem}; {_rebuild_hint()}")
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
