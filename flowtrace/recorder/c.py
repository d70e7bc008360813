"""The C recorder: `flowtrace._crecorder` callbacks behind the `base.Recorder` interface.

The callbacks (C, METH_FASTCALL) do the per-call work: stacks, timestamps, rows, captured
values. This wrapper does what happens once per code object, thread, task or exception, or
at drain time, with the reference recorder's own pieces so that both recorders give the
same tree: the filter decision (`filters.CodeFilter`), the function / thread / task tables
(as `python.py` builds them), exception texts and container texts (`reprs`). How values
are kept between the call and the drain is explained at the top of
flowtrace/_crecorder_src/crecorder.h.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Sequence
from types import CodeType
from typing import Any

from .. import _crecorder, reprs, untraced  # ImportError here makes recorder/__init__.py use the Python recorder
from ..filters import CodeFilter, on_mark
from ..ftr import format as fmt
from ..ftr import writer as ftr_writer
from ..reprs import exception_text, value_text
from .base import Batch, RecorderConfig
from .common import (
    ExitStatuses, TaskTable, enable_monitoring, is_create_task, may_create_tasks, release_tool_id, renamed_thread,
    running_frames, take, thread_entry,
)

MON = sys.monitoring
E = MON.events
# callback attribute of the C core -> event (the reference's event set)
_CALLBACKS = (
    ("py_start", E.PY_START),
    ("py_resume", E.PY_RESUME),
    ("py_throw", E.PY_THROW),
    ("py_return", E.PY_RETURN),
    ("py_yield", E.PY_YIELD),
    ("py_unwind", E.PY_UNWIND),
    ("exception_handled", E.EXCEPTION_HANDLED),
    ("reraise", E.RERAISE),
)



# _on_code's answers: record the code (the C core gives its FUNC id and entry), with FUNC_OWN
# when it is the program's own code (CodeFilter.is_own), where a task's root coroutine hangs
# (docs/FORMAT.md, "asyncio tasks"); CODE_SAME when the answer holds for every code object of
# its file name and module (CodeFilter.first_sight): the core keeps it and asks no more for that
# name (codes.c), until code is marked (filters.on_mark: forget_verdicts)
CODE_IN = 1
FUNC_OWN = 1 << 30
CODE_SAME = 1 << 29
on_mark(_crecorder.forget_verdicts)


def shared_constants() -> dict[str, int]:
    """The values the C code must agree on with reprs.py and ftr/format.py (by name)."""
    return {
        "MAX_STRING": reprs.MAX_STRING, "MAX_TEXT": reprs.MAX_TEXT,
        "MAX_ITEMS": reprs.MAX_ITEMS, "MAX_DEPTH": reprs.MAX_DEPTH,
        "END_RETURN": fmt.END_RETURN, "END_RAISE": fmt.END_RAISE, "END_UNFINISHED": fmt.END_UNFINISHED,
        "END_RAISE_HERE": fmt.END_RAISE_HERE,
        "MARK_SUSPEND": fmt.MARK_SUSPEND, "MARK_RESUME": fmt.MARK_RESUME, "MARK_THROW": fmt.MARK_THROW,
        "MARK_RAISE": fmt.MARK_RAISE, "MARK_HANDLED": fmt.MARK_HANDLED, "MARK_FOLD": fmt.MARK_FOLD,
        "CALL_PARTIAL": fmt.CALL_PARTIAL, "FUNC_OWN": FUNC_OWN, "CODE_SAME": CODE_SAME,
        "ENC_VARINT_DELTA": fmt.ENC_VARINT_DELTA, "ENC_VARINT": fmt.ENC_VARINT, "ENC_CONST": fmt.ENC_CONST,
        "ENC_PARENT": fmt.ENC_PARENT, "ENC_SPARSE_DELTA": fmt.ENC_SPARSE_DELTA, "ENC_SPARSE": fmt.ENC_SPARSE,
        "ENC_BITS": fmt.ENC_BITS, "ENC_GOLOMB_DELTA": fmt.ENC_GOLOMB_DELTA, "ENC_GOLOMB": fmt.ENC_GOLOMB,
        "ENC_GOLOMB_PARENT": fmt.ENC_GOLOMB_PARENT, "ENC_GOLOMB_RISE": fmt.ENC_GOLOMB_RISE,
        "ENC_DEFLATE": fmt.ENC_DEFLATE, "ENC_SHARED": fmt.ENC_SHARED, "DEFLATE_COLUMNS": fmt.DEFLATE_COLUMNS,
        "RS_TUPLE": fmt.RS_TUPLE, "RS_LIST": fmt.RS_LIST, "RS_TEXT_AT": fmt.RS_TEXT_AT, "SAMPLE_SPAN": fmt.GOLOMB_SAMPLE_SPAN,
        "ZLIB_MIN_BYTES_PER_CALL": ftr_writer.ZLIB_MIN_BYTES_PER_CALL,
        "ZLIB_MAX_STRS_PER_MARK": ftr_writer.ZLIB_MAX_STRS_PER_MARK,
    }


def check_constants(compiled: dict[str, int], str_types: tuple[type, ...]) -> None:
    """ImportError (so the Python recorder is used) when the compiled module disagrees with
    the Python side: a stale build, or an edit made on one side only. `str_types`: the
    exception types whose __str__ the C side trusts (reprs._BUILTIN_STR's)."""
    expected = shared_constants()
    wrong = {k: (compiled.get(k), v) for k, v in expected.items() if compiled.get(k) != v}
    trusted = {t.__str__ for t in str_types}
    if trusted != reprs._BUILTIN_STR:
        wrong["BUILTIN_STR_TYPES"] = (sorted(t.__name__ for t in str_types), "reprs._BUILTIN_STR")
    if wrong:
        detail = ", ".join(f"{k}: C {c!r} vs Python {p!r}" for k, (c, p) in sorted(wrong.items()))
        raise ImportError(f"flowtrace._crecorder disagrees with the Python side ({detail}); rebuild it")


check_constants(_crecorder.CONSTANTS, _crecorder.BUILTIN_STR_TYPES)

_MODES = {"off": 0, "safe": 1, "full": 2}
# (MARK before EXIT, format 1.6: an exit row raised here stands for the last mark of its call)
_PAYLOADS = (("call_payload", fmt.CALL), ("mark_payload", fmt.MARK), ("exit_payload", fmt.EXIT))


def type_label(cls: type) -> str:
    """The name in a placeholder `<module.Class object at 0x…>`: `reprs.placeholder`'s rule,
    from the type alone (the C side keeps the type and the object's address, not the object)."""
    try:
        mod = cls.__module__
        name = cls.__qualname__
        if not isinstance(mod, str) or not isinstance(name, str):
            raise TypeError
        return name if mod == "builtins" else f"{mod}.{name}"
    except Exception:
        return "object"


class PayloadTexts(Sequence[str]):
    """A batch's new texts, read from the STRS payload the C drain made (it makes no str per
    text: most are only ever written to the file)."""

    def __init__(self, payload: bytes) -> None:
        self._payload = payload
        self._count = fmt.STRS_HEADER.unpack_from(payload)[1] & ~fmt.STRS_RECORDS
        self._strings: fmt.Strings | None = None  # decoded (its records made into texts) when read

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        if not -self._count <= i < self._count:
            raise IndexError(i)
        i %= self._count
        if self._strings is None:
            self._strings = fmt.decode_strings(self._payload)
        offsets = self._strings.offsets
        # (surrogatepass: the C drain stores a lone surrogate as the writer does)
        return bytes(self._strings.blob[offsets[i] : offsets[i + 1]]).decode("utf-8", "surrogatepass")


def _safe_value_text(value: Any) -> str:
    return value_text(value, "safe")


class CRecorder:
    """A recorder whose monitoring callbacks are C functions (see the module docstring)."""

    name = "c"
    holds_classes = True  # (until the drain renders their texts: collect.c)

    def __init__(self, config: RecorderConfig | None = None) -> None:
        self.config = config or RecorderConfig()
        mode = self.config.args
        if mode not in _MODES:
            raise ValueError(f"args mode must be 'safe', 'full' or 'off', not {mode!r}")
        self.filter = CodeFilter(self.config.include, self.config.exclude)
        self.tool_id: int | None = None
        self.running = False
        self._lock = threading.Lock()  # drain() vs drain()
        self._functions: list[dict[str, Any]] = []
        self._threads: list[dict[str, Any]] = []
        self._tasks: list[dict[str, Any]] = []  # appended to by the C core (complete entries)
        self._known_threads: list[tuple[int, Any, str]] = []  # (tid, weakref(Thread)|None, name)
        self._thread_count = 0
        self._task_table = TaskTable()
        self._core = _crecorder.Core()
        self._overflow: tuple[Any, int] | None = None  # (hook, rows): see set_overflow
        self.origin_ns = 0  # drained times are relative to it (set_origin)
        self.exit_statuses = ExitStatuses()  # a SystemExit leaving a thread's outermost frame

    def set_origin(self, origin_ns: int) -> None:
        """The session's time 0: the drained payloads store times relative to it (the C side
        encodes the chunk payloads itself). Without it, times are perf_counter_ns() values."""
        self.origin_ns = origin_ns

    def set_overflow(self, hook: Any, rows: int) -> None:
        """Call `hook()` on a recording thread when `rows` rows are pending (backpressure: the
        session flushes there when the flusher thread falls behind). Set before start()."""
        self._overflow = (hook, rows) if hook is not None else None

    def _attach_hooks(self) -> None:
        """Give the C core its hooks (bound methods of self: dropped again at stop, so that
        a finished recorder is not kept alive by a reference cycle)."""
        mode = self.config.args
        value_mode = "full" if mode == "full" else "safe"
        self._core.__init__(
            _MODES[mode],
            self._on_code,
            self._on_thread,
            lambda exc: exception_text(exc, mode),
            lambda value: value_text(value, value_mode),
            self._task_hook,
            self._task_created,
            self._tasks,
            self._functions,
        )
        if self._overflow is not None:
            self._core.set_overflow(*self._overflow)  # release() at stop drops it (a cycle)
        self._core.set_exit_hook(self.exit_statuses.note)

    # ------------------------------------------------------------------ hooks (cold)
    def _on_code(self, code: CodeType, module: Any) -> int:
        """First sight of a code object in this session: CODE_IN (| FUNC_OWN) to record it, 0 to
        leave it out (the C side then returns DISABLE), -1 for asyncio's create_task (watched
        for creators); | CODE_SAME when every code object of its file name and module gets the
        same answer (the C side keeps it by name)."""
        if not isinstance(module, str):
            module = None
        wanted, own, settled = self.filter.first_sight(code, module)
        if wanted:
            answer = CODE_IN | FUNC_OWN if own else CODE_IN
        elif is_create_task(code):
            return -1
        else:
            answer = 0
            if may_create_tasks(code.co_filename):
                return answer  # (its create_task gets another answer)
        return answer | CODE_SAME if settled else answer

    def _on_thread(self, ident: int | None) -> int:
        """THRD id for a thread: the calling one (ident None), or one being seeded."""
        if ident is None:
            ident = threading.get_ident()
            native = threading.get_native_id()
            thread = untraced.thread_named(ident)  # (no _DummyThread; our hidden flusher too)
        else:
            thread = untraced.thread_named(ident)
            native = getattr(thread, "native_id", None) or 0
        self._thread_count += 1
        tid = self._thread_count
        entry = thread_entry(tid, ident, native, thread)
        self._threads.append(entry)
        self._known_threads.append((tid, weakref.ref(thread) if thread is not None else None, entry["name"]))
        return tid

    def _task_hook(self, parent: int, thr: int) -> tuple[int, dict[str, Any] | None]:
        """The asyncio task running now: (task id or 0, the TASK entry when the task is new;
        the C side sets its "root" and publishes it)."""
        return self._task_table.current(parent, thr)

    def _task_created(self, task: Any, creator: int) -> None:
        self._task_table.note_creator(task, creator)

    # ------------------------------------------------------------------ start / stop
    def _seed_running(self) -> None:
        """Write the recorded frames running now (every thread) as partial calls."""
        for ident, chain in running_frames():
            self._core.seed(ident, chain)

    def start(self) -> None:
        """Take a tool id, register the C callbacks, enable events (interpreter-wide)."""
        if self.running:
            return
        self._attach_hooks()
        self._core.start()
        try:
            self.tool_id = enable_monitoring({event: self._core.callback(attr) for attr, event in _CALLBACKS},
                                             self._seed_running if self.config.seed_running else None)
        except BaseException:
            self._core.stop()
            self._core.release()
            raise
        self._core.note_monitoring(self.tool_id)  # (3.12: what other tools may run, genwatch.c)
        self.running = True

    def stop(self, *, exiting: bool = False) -> None:
        """Remove the callbacks (`exiting`: turn them off only, common.release_tool_id) and end
        every open call as unfinished."""
        if not self.running:
            return
        self.running = False
        if self.tool_id is not None:
            release_tool_id(self.tool_id, [event for _attr, event in _CALLBACKS], exiting=exiting)
        self.tool_id = None
        self._core.stop()
        self._core.release()

    def after_fork_child(self) -> None:
        """In a forked child, before stop(): a new drain lock (a parent thread may have held
        it at the fork) and the C core's thread table reduced to this thread."""
        self._lock = threading.Lock()
        _crecorder.after_fork_child()

    def pending(self) -> int:
        """Rows waiting for the next drain (the flusher drains early when this is large)."""
        return self._core.pending()

    # ------------------------------------------------------------------ drain
    def drain(self) -> Batch:
        """Everything recorded since the last drain, as one Batch (safe from any thread)."""
        with self._lock:
            # Rows first (an atomic swap in C), then the definitions: every definition a row
            # refers to was appended before that row, so it is in this batch or an earlier one.
            cols = self._core.drain(_safe_value_text, type_label, self.origin_ns)
            b = Batch(functions=take(self._functions), threads=take(self._threads),
                      tasks=take(self._tasks), strings_first_id=cols["strings_first_id"],
                      call_first_id=cols["call_first_id"])
            for i, (tid, ref, name) in enumerate(self._known_threads):
                renamed = renamed_thread(ref, name)
                if renamed is not None:
                    self._known_threads[i] = (tid, ref, renamed["name"])
                    b.threads.append({"id": tid, **renamed})
            # the CALL / EXIT / MARK payloads, encoded by the C drain (varint columns, FORMAT 1.2)
            b.payloads = [(kind, cols[key]) for key, kind in _PAYLOADS if cols[key] is not None]
            b.payload_calls = cols["calls"]
            if cols["strings"]:  # the new texts exist only as their STRS payload (read back on demand)
                b.strings_payload = cols["strings_payload"]
                b.strings = PayloadTexts(b.strings_payload)  # type: ignore[assignment]
            return b

    def release_classes(self) -> bool:
        """Before a collection that could free a class the batch holds (collect.c): release those
        classes from the batch in place -- the entries that reference them made into their texts
        now. False when not done (a drain under way, or a failure): the caller drains instead."""
        if not self._lock.acquire(blocking=False):  # (a drain on another thread: wait for it there)
            return False
        try:
            return bool(self._core.release_classes(_safe_value_text, type_label))
        finally:
            self._lock.release()

    def stats(self) -> dict[str, int]:
        """Internal counters (errors swallowed in callbacks, code objects, suspended gens)."""
        return self._core.stats()


def now_ns() -> int:
    """The C recorder's clock; equal to time.perf_counter_ns() (both CLOCK_MONOTONIC)."""
    return _crecorder.now()


__all__ = ["CRecorder", "now_ns", "type_label"]
