"""The C recorder: `flowtrace._crecorder` callbacks behind the `base.Recorder` interface.

The callbacks (C, METH_FASTCALL) do the per-call work: stacks, timestamps, rows, captured
values. This wrapper does what happens once per code object or thread, or at drain time:
the filter decision (`filters.CodeFilter`, the reference's), the function and thread
tables, exception texts and the text of containers (`reprs`, the reference's), and turning
the C rows into a `Batch`. See the comment at the top of flowtrace/_crecorder.c for how
values are kept between the call and the drain.
"""

from __future__ import annotations

import sys
import threading
from array import array
from types import CodeType
from typing import Any, Callable

from .. import _crecorder  # ImportError here makes recorder/__init__.py fall back to Python
from .. import reprs
from ..filters import CodeFilter
from .base import Batch, RecorderConfig

MON = sys.monitoring
E = MON.events
_EVENTS = (
    ("py_start", E.PY_START),
    ("py_resume", E.PY_RESUME),
    ("py_throw", E.PY_THROW),
    ("py_return", E.PY_RETURN),
    ("py_yield", E.PY_YIELD),
    ("py_unwind", E.PY_UNWIND),
    ("raise_", E.RAISE),
    ("reraise", E.RERAISE),
    ("exception_handled", E.EXCEPTION_HANDLED),
)
_EVENT_SET = 0
for _name, _ev in _EVENTS:
    _EVENT_SET |= _ev
del _name, _ev

_MODES = {"off": 0, "safe": 1, "full": 2}
_CO_GENERATOR, _CO_COROUTINE, _CO_ASYNC_GENERATOR = 0x20, 0x80, 0x200
_TOOL_IDS = (MON.PROFILER_ID, 4, 3)  # PROFILER_ID first, then the unnamed ids; 0/1/5 are others'


def _kind(code: CodeType) -> str:
    flags = code.co_flags
    if flags & _CO_ASYNC_GENERATOR:
        return "async_generator"
    if flags & _CO_COROUTINE:
        return "coroutine"
    if flags & _CO_GENERATOR:
        return "generator"
    return "function"


def type_label(cls: type) -> str:
    """The name in a placeholder `<module.Class object at 0x…>`: reprs.placeholder's rule,
    from the type alone (the C side keeps the type and the object's address)."""
    try:
        mod = cls.__module__
        name = cls.__qualname__
        if not isinstance(mod, str) or not isinstance(name, str):
            raise TypeError
        return name if mod == "builtins" else f"{mod}.{name}"
    except Exception:
        return "object"


class CRecorder:
    """A recorder whose monitoring callbacks are C functions (see module docstring)."""

    name = "c"

    def __init__(self, config: RecorderConfig | None = None, on_full: Callable[[], None] | None = None,
                 buffer_rows: int = 1 << 16) -> None:
        self.config = config or RecorderConfig()
        mode = self.config.args
        if mode not in _MODES:
            raise ValueError(f"unknown argument capture mode {mode!r} (safe, full or off)")
        self._filter = CodeFilter(self.config.include, self.config.exclude)
        self._lock = threading.Lock()  # guards the definition lists against a concurrent drain
        self._functions: list[dict[str, Any]] = []
        self._func_ids: dict[tuple[str, str, str, int], int] = {}
        self._threads: list[dict[str, Any]] = []
        self._thread_count = 0
        self._tool_id: int | None = None
        value_mode = "full" if mode == "full" else "safe"
        self._core = _crecorder.Core(
            _MODES[mode],
            self._on_code,
            self._on_thread,
            lambda exc: reprs.exception_text(exc, value_mode),
            lambda value: reprs.value_text(value, value_mode),
            on_full if on_full is not None else None,
            buffer_rows,
        )
        self.running = False

    # -- hooks called from C (once per code object / thread per session) ----------------------
    def _on_code(self, code: CodeType, module: str | None) -> int:
        """FUNC id for a code object the filter wants, 0 to leave it out (C returns DISABLE)."""
        if not self._filter.wants(code, module):
            return 0
        qualname = code.co_qualname
        mod = module if isinstance(module, str) else ""
        key = (qualname, mod, code.co_filename, code.co_firstlineno)
        with self._lock:
            fid = self._func_ids.get(key)
            if fid is None:
                fid = len(self._func_ids) + 1
                self._func_ids[key] = fid
                self._functions.append({"id": fid, "qualname": qualname, "module": mod,
                                        "file": code.co_filename, "line": code.co_firstlineno,
                                        "kind": _kind(code)})
        return fid

    def _on_thread(self) -> int:
        """THRD id for the calling thread (first event of that thread in this session)."""
        t = threading.current_thread()
        with self._lock:
            self._thread_count += 1
            tid = self._thread_count
            self._threads.append({"id": tid, "ident": threading.get_ident(),
                                  "native_id": threading.get_native_id(), "name": t.name})
        return tid

    # -- Recorder interface ---------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        tool = None
        for candidate in _TOOL_IDS:
            if MON.get_tool(candidate) is None:
                tool = candidate
                break
        if tool is None:
            raise RuntimeError("flowtrace: every sys.monitoring tool id is in use by other tools "
                               "(profiler, debugger, coverage); cannot record")
        MON.use_tool_id(tool, "flowtrace")
        self._tool_id = tool
        self._core.start()
        try:
            for attr, event in _EVENTS:
                MON.register_callback(tool, event, getattr(self._core, attr))
            # DISABLE from an earlier session would hide code from this one (gh-118327)
            MON.restart_events()
            MON.set_events(tool, _EVENT_SET)
        except BaseException:
            self._release_tool()
            raise
        self.running = True

    def _release_tool(self) -> None:
        tool = self._tool_id
        if tool is None:
            return
        try:
            MON.set_events(tool, 0)
            for _attr, event in _EVENTS:
                MON.register_callback(tool, event, None)
            MON.free_tool_id(tool)
        except ValueError:
            pass
        self._tool_id = None

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._release_tool()
        self._core.stop()
        self._core.release()

    def drain(self) -> Batch:
        cols = self._core.drain(lambda v: reprs.value_text(v, "safe"), type_label)
        with self._lock:
            functions, self._functions = self._functions, []
            threads, self._threads = self._threads, []
        b = Batch(functions=functions, threads=threads,
                  strings_first_id=cols["strings_first_id"], strings=cols["strings"],
                  call_first_id=cols["call_first_id"])
        for field, typecode in (("call_parent", "I"), ("call_func", "I"), ("call_thread", "I"),
                                ("call_t0", "q"), ("call_args", "I"), ("call_task", "I"),
                                ("call_flag", "B"), ("exit_call", "I"), ("exit_t1", "q"),
                                ("exit_how", "B"), ("exit_val", "I"), ("mark_call", "I"),
                                ("mark_t", "q"), ("mark_kind", "B"), ("mark_ref", "I"),
                                ("mark_other", "I")):
            a = array(typecode)
            a.frombytes(cols[field])
            setattr(b, field, a)
        return b

    def stats(self) -> dict[str, int]:
        return self._core.stats()
