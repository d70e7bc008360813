"""The pure-Python reference recorder: `sys.monitoring` callbacks -> `Batch`es.

Design (measured choices are in benchmarks/overhead.py and the report of issue 2):

- **Hot path = extend one flat list.** A call start extends one shared list with
  `(cid, parent, fid, thread, t0, args)`; a plain return extends another with `(cid, t1)`.
  `list.extend(tuple)` is atomic under the GIL, so threads share these lists without a lock,
  and the lists hold only ints/strings (no GC-tracked tuple per row: no gen-0 collections).
  `drain()` (flusher thread) takes each column with a C-level slice `rows[k::width]` and
  `array(typecode, list)`, not a Python loop per call.
- **Per-thread stacks** of open call ids live in `threading.local` (`tls.st = (stack, thread)`);
  the bottom of every stack is the sentinel 0, so `stack[-1]` is the parent id (0 = root) and a
  pop that yields 0 is an *orphan* end (a frame that started before recording): ignored.
- **Call ids** are taken (`_last_id[0] + 1` and a store) in the same run of bytecode without an
  eval-breaker check as their row is appended: no other thread runs between them, so ids are
  consecutive (FORMAT.md). Should a gap appear anyway, `drain()` emits only the consecutive
  prefix and keeps the rest for the next drain.
- **Asynchronous exceptions** (a signal handler's KeyboardInterrupt or SystemExit, which CPython
  raises at an eval-breaker check, possibly inside a callback): every callback writes last, in
  a run of bytecode without a check, and is registered through `_crecorder.guard` (guard.c),
  which runs it again when it was stopped before its writes and delivers the exception again
  where the program runs next -- so the program gets it where it would have untraced, and the
  trace shows it there (`_callbacks`). Without the C extension such an exception is raised at
  the monitored instruction, as CPython does.
- **Filtering** is decided once per code object (`fids[id(code)]`: >0 recorded function/generator,
  <0 recorded coroutine/async generator, 0 excluded) and excluded code gets `DISABLE` from the
  local events (START/RESUME/RETURN/YIELD); UNWIND/THROW/EXCEPTION_HANDLED/RERAISE cannot be
  disabled (CPython raises and removes the callback), so they just return.
- **Generators/coroutines** are one call: PY_YIELD pops it and remembers `id(frame) -> cid`
  (the frame lives as long as the suspended generator), PY_RESUME/PY_THROW push it back and
  write a resume/throw mark naming the resumer (the new stack top).
- **Generators closed unseen**: a suspended generator that is freed is closed, and its close
  sends no event when 3.13 takes its shortcut (gh-140373: suspended outside any try block, the
  frame is not run) or when it runs inside a monitoring callback (3.12+ runs a scheduled garbage
  collection at the next eval-breaker check, often this recorder's own callback bytecode). Its
  first yield watches the generator (`_crecorder.watch_generator`, genwatch.c: a weak reference
  called just before the close, which knows whether that close will be seen); an unseen one
  ends there, `raise GeneratorExit`, as the close's unwind would have. Without the C extension
  nothing watches: such a generator ends `unfinished` at stop (a reused frame address is
  detected at the next yield).
- **Folded resumes** (docs/FORMAT.md, "Folded resumes"): a plain resume notes (epoch, length
  of the call rows) in `_runs`; the yield that ends the run appends a `_MARK_QUIET` row instead
  of a suspend when no call row with this parent was appended since and no drain overlapped
  the run (`_epoch`, a seqlock: odd while a drain runs), and `drain()` (`_fold`) turns each
  such run whose resume is in the same batch into a fold row, or extends the call's fold. So
  the hot path pays a dict store and a length check per run; the rows of a batch's runs are
  folded in one pass at drain. A drain overlapping a run only leaves that run exact.
- **asyncio tasks**: a coroutine-kind call asks `current_task()` when it starts; a task seen
  for the first time gets a TASK entry (root = this call). The creator is taken where every
  asyncio task is made: the PY_RETURN of `BaseEventLoop.create_task` (stdlib, so never a
  recorded call) maps the returned task to the recorded call on top of that thread's stack;
  eager tasks (3.12+ eager_task_factory) run before that return, so their creator falls back
  to their parent. Calls inside a task carry its id; `drain()` propagates it from parents.
- **Exceptions**: EXCEPTION_HANDLED writes a `handled` mark on the catching call, PY_UNWIND
  ends the call with `raise`. The RAISE event is not monitored (it fires in every frame an
  exception crosses: half of the exception callbacks); the `raise` mark on the call where an
  exception first appears is written at that call's HANDLED or UNWIND of it instead, unless
  the exception came into the call from a recorded callee's UNWIND or a THROW and was not
  caught there since (`known`: per thread, (id(exc), call, caught, callee's code); an id is
  trusted after an UNWIND only while the exception's traceback still passes through that
  callee: one caught in C dies unseen and its id is reused at once; RERAISE -- a cleanup
  handler re-raising -- makes it travel on). Nothing of the program runs between a raise and
  its handler or unwind, so the mark is where RAISE would have put it. (At an UNWIND the mark
  is the exit row itself, `how` = END_RAISE_HERE: format 1.6.) StopIteration /
  StopAsyncIteration that only carry CPython's iteration protocol (the end of an `async for`,
  a thrown-into subgenerator's result) are not marked (`protocol_catch`); the protocol's raises
  at SEND are consumed where they are raised and never reach a handler. A RERAISE (a bare
  `raise`, a cleanup handler) takes back the call's `handled` mark of that exception when that
  mark is the call's latest (`_cancel_handled`); such a mark is held back from the drain while
  its call runs (`_keep_marks_back`), so the outcome does not depend on where a flush falls.
"""

from __future__ import annotations

import itertools
from itertools import chain
import opcode
import os
import sys
import threading
import weakref
from array import array
from time import perf_counter_ns
from types import CodeType
from typing import Any

from .. import untraced
from ..filters import CodeFilter
from ..ftr import format as F
from ..reprs import args_text, exception_text, value_text
from .base import Batch, RecorderConfig
try:  # the two helpers of the C extension this recorder uses (see the docstring), if built
    from .._crecorder import guard as _guard, watch_generator as _watch_generator
except ImportError:
    _guard = _watch_generator = None
from .common import (  # TOOL_ID_ORDER, TOOL_NAME: kept importable from here
    TOOL_ID_ORDER, TOOL_NAME, ExitStatuses, TaskTable, enable_monitoring, func_entry, is_create_task, release_tool_id,
    renamed_thread, running_frames, take, thread_entry,
)

mon = sys.monitoring
E = mon.events
DISABLE = mon.DISABLE
_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ITERABLE_COROUTINE = 0x100
_CO_ASYNC_GENERATOR = 0x200

_CALL_W = 6  # values per CALL row in the flat list: cid, parent, fid, thread, t0, args text
_EXIT_W = 4  # values per valued EXIT row: cid, t1, how, text
_MARK_RERAISE = 0  # internal mark kind: dropped by drain() with the `handled` mark it cancels
_MARK_QUIET = 100  # internal mark kind: a suspend ending a quiet run (drain() folds it, _fold)
_OVERFLOW_EVERY = 0x2000  # call ids between two backpressure checks (a power of two)

# fids value of BaseEventLoop.create_task, where every asyncio task is created (see the
# module docstring; common.is_create_task): never a call, its return is watched
_HOOK = -(1 << 40)

# Frames of files under this directory are the tracer's own (guard.c cuts them from the traceback
# of an asynchronous exception it delivers again)
_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

_OP = opcode.opmap
_CLEANUP_THROW, _END_ASYNC_FOR, _RESUME = _OP["CLEANUP_THROW"], _OP["END_ASYNC_FOR"], _OP["RESUME"]
_STOPS = (StopIteration, StopAsyncIteration)


def protocol_catch(code: CodeType, offset: int, exc: BaseException) -> bool:
    """Is this EXCEPTION_HANDLED of a StopIteration/StopAsyncIteration CPython's own iteration
    protocol rather than a catch by the program?

    - StopAsyncIteration at END_ASYNC_FOR: an `async for` loop ending.
    - StopIteration at CLEANUP_THROW: a subgenerator thrown into (via `yield from`/`await`)
      returned, and its result is delivered this way.

    A StopIteration from `next(it)` caught by `except StopIteration` stays an exception. (The
    protocol's raises -- an awaited result delivered as StopIteration at a SEND, the end of an
    `async for` at its SEND -- are consumed there or caught at END_ASYNC_FOR.) The C recorder
    applies the same rule."""
    stop_iter = isinstance(exc, StopIteration)
    if not stop_iter and not isinstance(exc, StopAsyncIteration):
        return False
    b = code.co_code  # deoptimised bytes (caches zeroed), cached by CPython after the first use
    return 0 <= offset < len(b) and b[offset] == (_CLEANUP_THROW if stop_iter else _END_ASYNC_FOR)


def _entry_resume(code: CodeType) -> int:
    """The offset of `code`'s first RESUME (after its cell set-up instructions, if any)."""
    b = code.co_code
    for i in range(0, len(b), 2):
        if b[i] == _RESUME:
            return i
    return -1


def _came_through(exc: BaseException, code: CodeType) -> bool:
    """Does `exc`'s traceback pass through a frame of `code` below its newest frame? An
    exception that travelled out of a call of `code` does; a new exception at the address of
    a dead one that did (Python reuses it at once) does not: it was raised in its newest frame
    or came from frames that were not recorded. Runs no code of the program."""
    tb = exc.__traceback__
    tb = tb.tb_next if tb is not None else None
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


class PyRecorder:
    """Records calls with Python `sys.monitoring` callbacks (see the module docstring)."""

    name = "python"
    holds_classes = False  # (every text is made when the call is recorded)

    def __init__(self, config: RecorderConfig | None = None) -> None:
        self.config = config or RecorderConfig()
        if self.config.args not in ("safe", "full", "off"):
            raise ValueError(f"args mode must be 'safe', 'full' or 'off', not {self.config.args!r}")
        self.filter = CodeFilter(self.config.include, self.config.exclude)
        self.tool_id: int | None = None
        self._registered: dict[int, Any] = {}  # event -> callback, while running
        self.running = False
        self._lock = threading.Lock()  # drain() vs drain(); the hot path never takes it
        self._overflow: list[Any] = [None, 0]  # [hook, rows]: see set_overflow
        self.exit_statuses = ExitStatuses()  # a SystemExit leaving a thread's outermost frame
        self._reset()

    def set_overflow(self, hook: Any, rows: int) -> None:
        """Call `hook()` on a recording thread when about `rows` rows are pending (backpressure:
        the session flushes there when the flusher thread falls behind). Checked once every
        _OVERFLOW_EVERY calls, so the hot path pays one `&` and a compare."""
        self._overflow[:] = [hook, rows]

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self._tls = threading.local()
        # id(code) -> fid. Keyed by id(): hashing a code object costs more than the rest of a
        # lookup (measured: ~170 vs ~100 units); `_codes` keeps them alive so ids stay unique.
        self._fids: dict[int, int] = {}
        self._codes: list[CodeType] = []
        self._func_count = itertools.count(1)
        self._thread_count = itertools.count(1)
        self._last_id = [0]  # the last call id taken (_callbacks: `+ 1` and a store)
        self._wrote = [False]  # True once a callback has begun its writes (guard.c, _callbacks)
        # Row lists are *flat*: a row is `extend`ed as a tuple of _CALL_W / 2 / _EXIT_W values.
        # extend copies the values and frees the tuple at once, so the list holds only ints
        # and strings: no GC-tracked object per row (no gen-0 collections while recording), and
        # drain() takes each column with one C-level slice (`rows[k::width]`).
        self._calls: list = []  # cid, parent, fid, thread, t0, args text | None
        self._exits: list = []  # cid, t1: plain returns without a value
        self._exits_v: list = []  # cid, t1, how, text | None
        self._marks: list[tuple] = []  # (cid, t, kind, text | None, other cid)
        self._extra: dict[int, tuple[int, int]] = {}  # cid -> (task id, flag) when not (0, 0)
        self._new_funcs: list[dict[str, Any]] = []
        self._new_threads: list[dict[str, Any]] = []
        self._new_tasks: list[dict[str, Any]] = []
        self._threads: list[tuple[int, Any, str, list]] = []  # (tid, weakref(Thread)|None, name, stack)
        self._gens: dict[int, int] = {}  # id(frame) -> cid of a suspended generator/coroutine
        # cid -> id(frame) of a generator resumed by an event of its run before its PY_RESUME
        # (3.13: resume_unseen), until that PY_RESUME comes
        self._early: dict[int, int] = {}
        self._lost: list[int] = []  # generators whose frame address was reused (closed silently)
        self._watched: dict[int, tuple[int, Any]] = {}  # id(frame) -> (cid, its GenRef): _watch_generator
        # Folding resumes (see _fold): cid -> (epoch, len(self._calls)) when a plain resume
        # ran it; `_epoch` is odd while a drain runs and grows by 2 per drain (a seqlock: a
        # run that saw the same even value at its resume and at its yield overlapped no drain)
        self._runs: dict[int, tuple[int, int]] = {}
        self._epoch = [0]
        # thread id -> (id(exception), call, caught, callee's code): the exception that came into
        # `call` from a recorded callee (whose code is kept: _came_through) or a throw (caught
        # False), or was marked there and caught (True)
        self._known: dict[int, tuple[int, int, bool, CodeType | None]] = {}
        self._task_table = TaskTable()  # asyncio tasks seen, creators from create_task's return
        self._own: set[int] = set()  # fids of the program's own code (CodeFilter.is_own)
        self._task_of: dict[int, int] = {}  # drain: open call id -> task id (only with tasks)
        self._seeds: dict[int, tuple[list[int], int]] = {}  # ident -> (seeded stack, thread id)
        # drain-side state
        self._next_call = 1  # the next call id to emit
        self._next_str = 1
        self._pending_calls: list = []  # flat rows, as above
        self._pending_exits: list = []
        self._pending_exits_v: list = []
        self._pending_marks: list[tuple] = []
        self._str_ids: dict[str, int] = {}
        self._tasks_seen = False

    # ------------------------------------------------------------------ decisions (cold)
    def _decide(self, code: CodeType, depth: int = 2) -> int:
        """First sight of a code object: record it or not (and say so for all its calls).
        `depth` is how far up the monitored frame is from here (for its module name)."""
        try:
            fid = self._fids.get(id(code))
            if fid is not None:
                return fid
            try:
                module = sys._getframe(depth).f_globals.get("__name__")
            except (ValueError, AttributeError):
                module = None
            if not isinstance(module, str):
                module = None
            if self.filter.wants(code, module):
                fid = self._new_func(code, module)
            elif is_create_task(code):
                fid = _HOOK
            else:
                fid = 0
            self._codes.append(code)
            self._fids[id(code)] = fid
            return fid
        except Exception:
            self._codes.append(code)
            self._fids[id(code)] = 0
            return 0

    def _new_func(self, code: CodeType, module: str | None) -> int:
        """A recorded code object's FUNC entry; its fid, negative for a coroutine kind."""
        fid = next(self._func_count)
        entry = func_entry(fid, code, module)
        if self.filter.is_own(code):
            self._own.add(fid)
        self._new_funcs.append(entry)
        return -fid if entry["kind"] in ("coroutine", "async_generator") else fid

    def _new_thread(self) -> tuple[list[int], int]:
        """First event on a thread: its stack (seeded if asked) and its session thread id. Its
        writes come last, with no eval-breaker check between them (see _callbacks)."""
        ident = threading.get_ident()
        thread = untraced.thread_named(ident)  # (no _DummyThread; our hidden flusher too)
        name = thread.name if thread is not None else f"thread-{ident}"
        ref = weakref.ref(thread) if thread is not None else None
        seeded = self._seeds.get(ident)
        entry = None
        if seeded is not None:  # seed_running wrote this thread's running frames already
            stack, tid = seeded
        else:
            stack = [0]
            tid = next(self._thread_count)
            entry = thread_entry(tid, ident, threading.get_native_id(), thread)
        st = (stack, tid)
        if entry is None:
            del self._seeds[ident]
        else:
            self._new_threads += (entry,)
        self._threads += ((tid, ref, name, stack),)
        self._tls.st = st
        return st

    def _task_start(self, stack: list[int], thr: int, frame: Any) -> tuple[int, dict[str, Any] | None, int]:
        """(the asyncio task running now or 0, its TASK entry when it is seen for the first
        time, the parent) of a coroutine call starting in `frame`. The caller sets the entry's
        root (the call) and appends it with its other writes (_callbacks); a new task's root
        hangs from the nearest call of the program's own code (`_own_caller`)."""
        parent = stack[-1]
        tid, entry = self._task_table.current(parent, thr)
        if entry is None:
            return tid, None, parent
        return tid, entry, self._own_caller(frame, stack)

    def _own_caller(self, frame: Any, stack: list[int]) -> int:
        """The call on `stack` (this thread's open calls) of the nearest frame below `frame`
        whose code is the program's own (`CodeFilter.is_own`), 0 if none: where a task's root
        coroutine hangs, whatever else is recorded. Its first step runs inside the event loop
        (`Handle._run`, recorded under --include asyncio), which ends long before the task
        does; the program's call that runs the loop (`asyncio.run` in `<module>`) spans it,
        and is where it hangs when nothing of asyncio is recorded. The recorded frames below
        `frame` are the stack's calls, innermost first."""
        fids = self._fids
        own = self._own
        i = len(stack) - 1
        f = frame.f_back
        while f is not None and i > 0:
            fid = fids.get(id(f.f_code))
            if fid and fid != _HOOK:
                if abs(fid) in own:
                    return stack[i]
                i -= 1
            f = f.f_back
        return 0

    # ------------------------------------------------------------------ callbacks
    def _callbacks(self) -> dict[int, Any]:
        """Build the callbacks as closures over locals (a local load is the cheapest lookup).

        Asynchronous exceptions: a signal's Python handler (Ctrl-C's KeyboardInterrupt) runs at
        an eval-breaker check -- a function's first instruction, the end of a call, a backward
        jump -- so its exception can land inside a callback (_crecorder's guard.c, which the
        callbacks are registered through, takes it and delivers it again to the program). So
        every callback reads and computes first and writes last: from `wrote[0] = True` to the
        end of its writes there is no call (but a last one, a write itself) and no backward
        jump, hence no check -- an exception lands before the writes (the guard runs the
        callback again) or after them (recorded: not run again), never between them. Rows are
        appended with `+=`, call ids taken with `+ 1` and a store (no check between: atomic
        under the GIL, so the id's row is appended with it). That is also why a few runs of
        writes are spelt out twice instead of shared through a helper (a call id and its task
        entry, in start_coroutine and in on_resume for a coroutine never seen starting): the
        helper's first instruction would be a check between the writes."""
        # Longer than ~80 lines, on purpose: each callback must close over the same dozen bound
        # locals (the hot path's whole speed); split into builders, every one would rebind them.
        fids = self._fids
        _id = id  # a local is cheaper than the builtins lookup
        tls = self._tls
        calls = self._calls  # flat rows, extended with `+=` (see _reset and above)
        exits = self._exits
        exits_v = self._exits_v
        marks = self._marks
        marks_append = self._marks.append  # (only as a callback's last write)
        last_id = self._last_id  # [the last call id taken]
        wrote = self._wrote  # [True once a callback has begun its writes] (guard.c)
        new_tasks = self._new_tasks
        lost = self._lost
        extra = self._extra
        gens = self._gens
        early = self._early
        runs = self._runs
        epoch = self._epoch
        known = self._known
        clock = perf_counter_ns
        decide = self._decide
        new_thread = self._new_thread
        task_start = self._task_start
        getframe = sys._getframe
        mode = self.config.args
        capture = mode != "off"
        note_exit = self.exit_statuses.note
        note_creator = self._task_table.note_creator
        overflow = self._overflow
        pending = self.pending
        every = _OVERFLOW_EVERY - 1
        watch = _watch_generator
        watched = self._watched
        exit_text = exception_text(GeneratorExit(), mode)
        # 3.13+ checks the eval breaker at a function's first RESUME before PY_START: an
        # exception raised there (a signal's) unwinds a call never started. With the guard no
        # callback raises, so an unwind at that instruction is such a one. (3.12 checks after
        # PY_START: the call is recorded, then left.)
        check_entry = sys.version_info >= (3, 13) and _guard is not None
        # 3.13+ checks it at a generator's RESUME before PY_RESUME too (resume_unseen)
        unseen = sys.version_info >= (3, 13)

        def check_overflow() -> None:
            # A program making calls nonstop can out-run the flusher thread (it needs the GIL
            # too): past the cap, this thread flushes itself through the session's hook. The
            # thread's own events are not delivered while a monitoring callback runs, so the
            # flush is not traced.
            hook = overflow[0]
            if hook is not None and pending() >= overflow[1]:
                try:
                    hook()
                except BaseException:
                    wrote[0] = True  # (another thread's callback may have cleared it meanwhile)
                    raise

        def resume_unseen(frame: Any, s: list[int], thr: int) -> None:
            # 3.13+: at a generator's RESUME the eval breaker is checked before PY_RESUME, so a
            # signal handler's calls, a collection's finalizers, or the handler's exception come
            # from `frame` (or a call made from it) while its resumer is on top; its PY_RESUME
            # comes after them, or never (the exception). Such an event is its resume: written
            # here as `resumed` writes it (C: callbacks.c resume_unseen, the same rule). Its writes
            # run as one (see above), then wrote[0] is False again: the event's own callback goes
            # on as if it had just begun, and run again (the guard) finds the generator resumed.
            nonlocal marks
            if frame is None:
                return
            key = _id(frame)
            cid = gens.get(key)
            if cid is None:
                return
            resumer = s[-1]
            t = clock()
            e = epoch[0]  # read before the length: see _reset
            n = len(calls)
            wrote[0] = True  # the writes (see above)
            del gens[key]
            runs[cid] = (e, n)
            early[cid] = key
            marks += ((cid, t, F.MARK_RESUME, None, resumer, thr),)
            s += (cid,)  # (no call: a check here would come before wrote[0] is False again)
            wrote[0] = False

        def start_coroutine(code: CodeType, fid: int) -> None:
            # A coroutine/async generator starts: a call like any other, plus its task.
            nonlocal calls, new_tasks
            try:
                s, thr = tls.st
            except AttributeError:
                s, thr = new_thread()
            frame = getframe(2)
            task, entry, parent = task_start(s, thr, frame)
            args = args_text(frame, code, mode) if capture else None
            t = clock()  # the clock after the args
            wrote[0] = True  # the writes (see above)
            cid = last_id[0] + 1
            last_id[0] = cid
            if entry is not None:
                entry["root"] = cid
                new_tasks += (entry,)
                self._tasks_seen = True
            calls += (cid, parent, -fid, thr, t, args)
            if task:
                extra[cid] = (task, 0)
            s.append(cid)

        if capture:
            def on_start(code: CodeType, offset: int) -> Any:
                nonlocal calls
                try:
                    try:
                        fid = fids[_id(code)]
                    except KeyError:
                        fid = decide(code)
                    if fid > 0:
                        try:
                            s, thr = tls.st
                        except AttributeError:  # first event on this thread
                            s, thr = new_thread()
                        frame = getframe(1)
                        if unseen and gens:  # (3.13: called from a generator not seen resuming?)
                            resume_unseen(frame.f_back, s, thr)
                        # args are read now: the values may change while the call runs
                        args = args_text(frame, code, mode)
                        t = clock()
                        wrote[0] = True  # the writes (see above)
                        cid = last_id[0] + 1
                        last_id[0] = cid
                        calls += (cid, s[-1], fid, thr, t, args)
                        s.append(cid)
                        if not cid & every:  # rarely: has the flusher fallen behind?
                            check_overflow()
                    elif fid == 0 or fid == _HOOK:
                        return DISABLE  # excluded: this code's start never calls us again
                    else:
                        start_coroutine(code, fid)
                except Exception:
                    pass  # never let the tracer break the traced program
        else:
            def on_start(code: CodeType, offset: int) -> Any:
                nonlocal calls
                try:
                    try:
                        fid = fids[_id(code)]  # decided once per code object
                    except KeyError:
                        fid = decide(code)
                    if fid > 0:  # a recorded function or generator (the hot case)
                        try:
                            s, thr = tls.st  # this thread's stack and session thread id
                        except AttributeError:  # first event on this thread
                            s, thr = new_thread()
                        if unseen and gens:  # (3.13: called from a generator not seen resuming?)
                            resume_unseen(getframe(1).f_back, s, thr)
                        t = clock()
                        wrote[0] = True  # the writes: no eval-breaker check until they end (above)
                        cid = last_id[0] + 1  # unique across threads: nothing runs between read and store
                        last_id[0] = cid
                        calls += (cid, s[-1], fid, thr, t, None)  # one atomic extend
                        s.append(cid)
                        if not cid & every:  # rarely: has the flusher fallen behind?
                            check_overflow()
                    elif fid == 0 or fid == _HOOK:
                        return DISABLE  # excluded: this code's start never calls us again
                    else:
                        start_coroutine(code, fid)
                except Exception:
                    pass  # never let the tracer break the traced program

        def return_slow(code: CodeType, value: Any) -> Any:
            # First sight, a coroutine's return, an excluded code's return, create_task's return.
            nonlocal exits_v
            fid = fids.get(_id(code))
            if fid is None:
                fid = decide(code, 3)
            if fid == 0:
                return DISABLE
            try:
                s, thr = tls.st
            except AttributeError:
                s, thr = new_thread()
            if fid == _HOOK:  # BaseEventLoop.create_task returned a task: note its creator
                note_creator(value, s[-1])  # (run again, it notes the same)
                return None
            cid = s[-1]
            if cid:  # (0: an orphan, started before recording)
                t = clock()
                text = value_text(value, mode) if capture else None
                wrote[0] = True
                del s[-1]
                exits_v += (cid, t, F.END_RETURN, text)
            return None

        if capture:
            def on_return(code: CodeType, offset: int, value: Any) -> Any:
                nonlocal exits_v
                try:
                    if fids.get(_id(code), 0) > 0:
                        try:
                            s, thr = tls.st
                        except AttributeError:  # first event on this thread (a seeded call returns)
                            s, thr = new_thread()
                        cid = s[-1]
                        if cid:  # (0: an orphan, a call that started before recording)
                            t = clock()
                            text = value_text(value, mode)
                            wrote[0] = True
                            del s[-1]
                            exits_v += (cid, t, F.END_RETURN, text)
                    else:
                        return return_slow(code, value)
                except Exception:
                    pass
        else:
            def on_return(code: CodeType, offset: int, value: Any) -> Any:
                nonlocal exits
                try:
                    if fids.get(_id(code), 0) > 0:  # recorded plain code (else: the rare cases)
                        try:
                            s, thr = tls.st
                        except AttributeError:  # first event on this thread (a seeded call returns)
                            s, thr = new_thread()
                        cid = s[-1]  # the call on top of this thread's stack is ours
                        if cid:  # (0: an orphan, a call that started before recording)
                            t = clock()
                            wrote[0] = True  # the writes (see above)
                            del s[-1]
                            exits += (cid, t)  # how=return, no value: the short row
                    else:
                        return return_slow(code, value)
                except Exception:
                    pass

        def gone(ref: Any, unseen: bool) -> None:
            # A watched generator is being freed; its close comes next (genwatch.c). Unseen,
            # it ends here as that close's unwind would have; seen, its events end it.
            nonlocal exits_v
            key, cid = ref.data
            mine = watched.get(key, (0,))[0] == cid
            end = unseen and gens.get(key) == cid
            t = clock()
            wrote[0] = True
            if mine:
                del watched[key]
            if end:
                del gens[key]
                exits_v += (cid, t, F.END_RAISE, exit_text)

        def on_yield(code: CodeType, offset: int, value: Any) -> Any:
            nonlocal lost
            try:
                fid = fids.get(_id(code))
                if fid is None:
                    fid = decide(code)
                if not fid or fid == _HOOK:
                    return DISABLE
                try:
                    s, thr = tls.st
                except AttributeError:
                    s, thr = new_thread()
                cid = s[-1]
                if not cid:
                    return None  # a generator running since before recording: ignored
                t = clock()
                frame = getframe(1)
                key = _id(frame)  # the generator's frame: alive while it is suspended
                prev = gens.get(key, cid)
                ref = None
                if watch is not None and watched.get(key, (0,))[0] != cid:  # its first yield
                    ref = watch(frame, guarded_gone, (key, cid))  # (dropped if this runs again)
                text = value_text(value, mode) if capture else None
                run = runs.get(cid) if runs else None  # set by a plain resume
                quiet = False
                if run is not None:
                    e, n = run
                    # quiet: no call started under it since its resume (the rows appended since
                    # name another parent), and no drain overlapped the run (same even epoch)
                    quiet = not e & 1 and (len(calls) == n or cid not in calls[n + 1 :: _CALL_W])
                wrote[0] = True  # the writes (see above)
                del s[-1]
                if prev != cid:  # the address was reused: that generator vanished silently
                    lost += (prev,)
                gens[key] = cid
                if ref is not None:
                    watched[key] = (cid, ref)
                if run is not None and cid in runs:
                    del runs[cid]
                if quiet and epoch[0] == e:
                    marks_append((cid, t, _MARK_QUIET, text, thr))  # drain() may fold it
                else:
                    marks_append((cid, t, F.MARK_SUSPEND, text, 0))
            except Exception:
                pass
            return None

        def resumed(code: CodeType, fid: int, kind: int, text: str | None, exc_id: int) -> None:
            # A resume or a throw (exc_id: its exception's id, noted as coming in from outside).
            nonlocal calls, marks, new_tasks
            try:
                s, thr = tls.st
            except AttributeError:
                s, thr = new_thread()
            frame = getframe(2)
            key = _id(frame)
            cid = gens.get(key, 0)
            parent = resumer = s[-1]
            if not cid and early and kind == F.MARK_RESUME and early.get(resumer) == key:
                wrote[0] = True  # resumed already: an event of its run came first (resume_unseen)
                del early[resumer]
                return
            t = clock()
            if cid:
                n = e = 0
                if kind == F.MARK_RESUME:  # a run that may turn out quiet (on_yield, _fold)
                    e = epoch[0]  # read before the length: see _reset
                    n = len(calls)
                    row: tuple = (cid, t, kind, text, resumer, thr)
                else:
                    row = (cid, t, kind, text, resumer)
                wrote[0] = True  # the writes (see above)
                if key in gens:
                    del gens[key]
                if kind == F.MARK_RESUME:
                    runs[cid] = (e, n)
                marks += (row,)
            else:
                # Never seen starting: a generator created and started before recording
                # (partial), or a coroutine thrown into before its first step (e.g. a task
                # cancelled before it ran: THROW with no START) - then it starts here.
                partial = frame.f_lasti > 0 and kind != F.MARK_THROW or (
                    kind == F.MARK_THROW and frame.f_lasti > 2)
                task, entry = 0, None
                if fid < 0:
                    task, entry, parent = task_start(s, thr, frame)
                wrote[0] = True
                cid = last_id[0] + 1
                last_id[0] = cid
                if entry is not None:
                    entry["root"] = cid
                    new_tasks += (entry,)
                    self._tasks_seen = True
                calls += (cid, parent, abs(fid), thr, t, None)
                if partial or task:
                    extra[cid] = (task, F.CALL_PARTIAL if partial else 0)
                if kind == F.MARK_THROW:
                    marks += ((cid, t, kind, text, resumer),)
            if exc_id:
                known[thr] = (exc_id, cid, False, None)  # it comes in from outside
            s.append(cid)

        def on_resume(code: CodeType, offset: int) -> Any:
            try:
                fid = fids.get(_id(code))
                if fid is None:
                    fid = decide(code)
                if not fid or fid == _HOOK:
                    return DISABLE
                resumed(code, fid, F.MARK_RESUME, None, 0)
            except Exception:
                pass
            return None

        def on_throw(code: CodeType, offset: int, exc: BaseException) -> None:
            try:
                fid = fids.get(_id(code))
                if fid is None:
                    fid = decide(code)
                if fid and fid != _HOOK:  # (no DISABLE: PY_THROW cannot be disabled)
                    resumed(code, fid, F.MARK_THROW, exception_text(exc, mode), _id(exc))
            except Exception:
                pass

        def travels_into(exc: BaseException, cid: int, thr: int) -> bool:
            # Is `exc` the exception that came into call `cid` and travels on (not raised
            # there)? From a callee's unwind, only if it still is that exception: one caught
            # in C (a loop's StopIteration, hasattr's AttributeError) dies unseen, and a new
            # one raised in `cid` may get its id (_came_through)
            k = known.get(thr)
            if k is None or k[0] != id(exc) or k[1] != cid or k[2]:
                return False
            return k[3] is None or _came_through(exc, k[3])

        def on_unwind(code: CodeType, offset: int, exc: BaseException) -> None:
            nonlocal exits_v
            try:
                if isinstance(exc, SystemExit) and getframe(1).f_back is None:
                    note_exit(exc)  # the exit status asked for (ExitStatuses); any frame's unwind
                fid = fids.get(_id(code))
                if fid is None:
                    fid = decide(code)
                if not fid or fid == _HOOK:
                    return
                try:
                    s, thr = tls.st
                except AttributeError:
                    s, thr = new_thread()
                if unseen and gens:  # (3.13: raised at its generator's RESUME?)
                    resume_unseen(getframe(1), s, thr)
                cid = s[-1]
                if cid and check_entry and offset == _entry_resume(code):
                    return  # raised at its first check, before its PY_START (3.13): never started
                if cid:  # (0: an orphan)
                    t = clock()
                    text = exception_text(exc, mode)
                    # raised here (see the docstring): the exit row is its `raise` mark too (1.6)
                    here = not travels_into(exc, cid, thr)
                    eid = _id(exc)
                    wrote[0] = True  # the writes (see above)
                    del s[-1]
                    exits_v += (cid, t, F.END_RAISE_HERE if here else F.END_RAISE, text)
                    known[thr] = (eid, s[-1], False, code)  # it travels on into the caller
            except Exception:
                pass

        def on_handled(code: CodeType, offset: int, exc: BaseException) -> None:
            nonlocal marks
            try:
                fid = fids.get(_id(code))
                if fid is None:
                    fid = decide(code)
                if not fid or fid == _HOOK:
                    return
                try:
                    s, thr = tls.st
                except AttributeError:
                    s, thr = new_thread()
                if unseen and gens:  # (3.13: raised at its generator's RESUME?)
                    resume_unseen(getframe(1), s, thr)
                cid = s[-1]
                if cid and not (isinstance(exc, _STOPS) and protocol_catch(code, offset, exc)):
                    t = clock()
                    text = exception_text(exc, mode)
                    here = not travels_into(exc, cid, thr)  # raised here (see the docstring)
                    eid = _id(exc)
                    wrote[0] = True  # the writes (see above)
                    known[thr] = (eid, cid, True, None)  # caught here
                    if here:
                        marks += ((cid, t, F.MARK_RAISE, text, 0),)
                    # `other` carries id(exc) until drain() (see on_reraise)
                    marks_append((cid, t, F.MARK_HANDLED, text, eid))
            except Exception:
                pass

        def on_reraise(code: CodeType, offset: int, exc: BaseException) -> None:
            # The compiler's own handlers (`except E as e` cleanup, `with`, `finally`) catch and
            # re-raise: their EXCEPTION_HANDLED is not a catch. drain() drops the `handled`
            # mark that this re-raise cancels.
            try:
                fid = fids.get(_id(code))
                if fid is None:
                    fid = decide(code)
                if not fid or fid == _HOOK:
                    return
                s, thr = tls.st
                if unseen and gens:  # (3.13: raised at its generator's RESUME?)
                    resume_unseen(getframe(1), s, thr)
                cid = s[-1]
                if cid:
                    eid = _id(exc)
                    wrote[0] = True  # the writes (see above)
                    known[thr] = (eid, cid, False, None)  # caught by a cleanup handler only: it travels on
                    marks_append((cid, 0, _MARK_RERAISE, None, eid))
            except Exception:
                pass

        guarded_gone = self._guarded(gone)
        return {
            E.PY_START: on_start, E.PY_RETURN: on_return, E.PY_YIELD: on_yield,
            E.PY_RESUME: on_resume, E.PY_THROW: on_throw, E.PY_UNWIND: on_unwind,
            E.EXCEPTION_HANDLED: on_handled, E.RERAISE: on_reraise,
        }

    def _guarded(self, callback: Any) -> Any:
        """`callback` as registered: through _crecorder's guard (guard.c: an asynchronous
        exception landing in it is delivered to the program instead) when the C extension is
        built, else itself."""
        if _guard is None:
            return callback
        return _guard(callback, self._wrote, _OURS, threading.main_thread().ident or 0)

    # ------------------------------------------------------------------ start / stop
    def _seed_running(self) -> None:
        """Write the recorded frames running now (every thread) as partial calls."""
        t = perf_counter_ns()
        for ident, frames in running_frames():
            stack = [0]
            tid = 0
            for fr in frames:  # outermost first
                code = fr.f_code
                fid = self._fids.get(id(code))
                if fid is None:
                    fid = self._decide_frame(code, fr)
                if fid == 0 or fid == _HOOK:
                    continue
                if code.co_flags & (_CO_GENERATOR | _CO_COROUTINE | _CO_ASYNC_GENERATOR | _CO_ITERABLE_COROUTINE):
                    continue  # a running generator: its yield is ignored, its resume makes it partial
                if not tid:  # the thread's definition precedes its first row
                    tid = next(self._thread_count)
                    th = untraced.thread_named(ident)
                    self._new_threads.append(thread_entry(tid, ident, getattr(th, "native_id", None) or 0, th))
                cid = self._last_id[0] = self._last_id[0] + 1
                self._calls.extend((cid, stack[-1], abs(fid), tid, t, None))
                self._extra[cid] = (0, F.CALL_PARTIAL)
                stack.append(cid)
            if len(stack) > 1:
                self._seeds[ident] = (stack, tid)

    def _decide_frame(self, code: CodeType, frame: Any) -> int:
        module = frame.f_globals.get("__name__")
        if not isinstance(module, str):
            module = None
        fid = self._new_func(code, module) if self.filter.wants(code, module) else 0
        self._codes.append(code)
        self._fids[id(code)] = fid
        return fid

    def start(self) -> None:
        """Take a tool id, register the callbacks, enable events (interpreter-wide)."""
        if self.running:
            return
        self._t_start = perf_counter_ns()
        self._registered = {event: self._guarded(cb) for event, cb in self._callbacks().items()}
        self.tool_id = enable_monitoring(self._registered, self._seed_running if self.config.seed_running else None)
        self.running = True

    def after_fork_child(self) -> None:
        """In a forked child, before stop(): a new drain lock (a parent thread may have held
        it at the fork; the other threads' stacks are simply ended by stop)."""
        self._lock = threading.Lock()

    def stop(self, *, exiting: bool = False) -> None:
        """Remove the callbacks (`exiting`: turn them off only, common.release_tool_id) and end
        every open call as unfinished."""
        if not self.running:
            return
        self.running = False
        release_tool_id(self.tool_id, self._registered, exiting=exiting)
        self.tool_id, self._registered = None, {}
        t = perf_counter_ns()
        # Every open call ends now: the ones on a thread's stack (innermost first), the
        # suspended generators/coroutines, and those whose frame vanished silently.
        ended: set[int] = set()
        for _tid, _ref, _name, stack in self._threads:
            while len(stack) > 1:
                cid = stack.pop()
                if cid not in ended:
                    ended.add(cid)
                    self._exits_v.extend((cid, t, F.END_UNFINISHED, None))
        for stack, _tid in self._seeds.values():  # seeded threads that never ran again
            for cid in reversed(stack[1:]):
                if cid not in ended:
                    ended.add(cid)
                    self._exits_v.extend((cid, t, F.END_UNFINISHED, None))
        self._seeds.clear()
        for cid in list(self._gens.values()) + self._lost:
            if cid not in ended:
                ended.add(cid)
                self._exits_v.extend((cid, t, F.END_UNFINISHED, None))
        self._gens.clear()
        self._lost.clear()
        self._watched.clear()  # (no callback after the session)

    def pending(self) -> int:
        """Rows waiting for the next drain (the flusher drains early when this is large)."""
        return len(self._calls) // _CALL_W + len(self._exits) // 2 + len(self._exits_v) // _EXIT_W

    # ------------------------------------------------------------------ drain
    def _sid(self, text: str | None, strings: list[str]) -> int:
        if text is None:
            return 0
        sid = self._str_ids.get(text)
        if sid is None:
            sid = self._next_str
            self._next_str += 1
            strings.append(text)
            if len(self._str_ids) > 65536:
                self._str_ids.clear()  # bounded memory; a repeated text is just stored again
            self._str_ids[text] = sid
        return sid

    @staticmethod
    def _fold(marks: list[tuple]) -> list[tuple]:
        """Mark rows as recorded -> rows of docs/FORMAT.md, each (call, t, kind, text, other, n,
        run, span): a quiet run -- a plain resume whose run ended at a yield with no call
        started under it (on_yield's _MARK_QUIET) and no other mark of its call in between,
        both in this batch -- becomes one fold row (n=1, ref = the yielded value) in the
        resume's place; the next quiet runs of that call by the same resumer on the same thread
        extend it (their yielded values are not kept). The C recorder folds at event time to
        the same rows (_crecorder.c, cb_py_yield)."""
        out: list[tuple | None] = []
        resumed: dict[int, int] = {}  # call -> index in out of its plain resume, while it runs
        folds: dict[int, tuple[int, int, int]] = {}  # call -> (index of its fold row, resumer, thread)
        for m in marks:
            cid, kind = m[0], m[2]
            if kind == F.MARK_RESUME and len(m) == 6:  # a plain resume (its thread appended)
                resumed[cid] = len(out)
                out.append(m)
                continue
            if kind == _MARK_QUIET:
                i = resumed.pop(cid, None)
                if i is not None:
                    r = out[i]
                    assert r is not None
                    f = folds.get(cid)
                    if f is not None and f[1] == r[4] and f[2] == r[5] and out[f[0]][5] < 0xFFFFFFFF:  # extends its fold
                        g = out[f[0]]
                        assert g is not None
                        out[f[0]] = (cid, g[1], F.MARK_FOLD, g[3], g[4], g[5] + 1, g[6] + m[1] - r[1], m[1] - g[1])
                        out[i] = None
                    else:
                        out[i] = (cid, r[1], F.MARK_FOLD, m[3], r[4], 1, m[1] - r[1], m[1] - r[1])
                        folds[cid] = (i, r[4], r[5])
                    continue
                m = (cid, m[1], F.MARK_SUSPEND, m[3], 0)  # its resume was drained before
            # any other row of the call ends its run and its fold
            resumed.pop(cid, None)
            folds.pop(cid, None)
            out.append(m)
        return [m[:5] + (0, 0, 0) if len(m) != 8 else m for m in out if m is not None]

    @staticmethod
    def _cancel_handled(marks: list[tuple]) -> list[tuple]:
        """Apply the re-raises (RERAISE: a bare `raise`, a cleanup handler re-raising): each
        takes back its call's `handled` mark of the same exception if that mark is the call's
        latest mark (docs/FORMAT.md, "Exceptions"; the C recorder's cb_reraise, the same rule).
        Drops those marks and the re-raise rows. A `handled` mark keeps the exception id that it
        carries in `other` only while a re-raise may still take it back (it is its call's latest
        mark): drain() holds such a mark back while its call runs, so that a flush between the
        catch and the re-raise changes nothing."""
        if not any(m[2] == _MARK_RERAISE or m[2] == F.MARK_HANDLED for m in marks):
            return marks
        drop: set[int] = set()
        latest: dict[int, int] = {}  # call -> index of its latest row, -1 after a re-raise
        for i, m in enumerate(marks):
            if m[2] == _MARK_RERAISE:
                drop.add(i)
                j = latest.get(m[0], -1)
                if j >= 0 and marks[j][2] == F.MARK_HANDLED and marks[j][4] == m[4]:
                    drop.add(j)
                latest[m[0]] = -1  # that handler is over: nothing older can be taken back
            else:
                latest[m[0]] = i
        open_ = {j for j in latest.values() if j >= 0 and marks[j][2] == F.MARK_HANDLED}
        out = []
        for i, m in enumerate(marks):
            if i in drop:
                continue
            if m[2] == F.MARK_HANDLED and m[4] and i not in open_:
                m = (m[0], m[1], m[2], m[3], 0, 0, 0, 0)
            out.append(m)
        return out

    def _keep_marks_back(self, marks: list[tuple], limit: int, exits: list, exits_v: list) -> list[tuple]:
        """The marks this drain emits; the others wait in `_pending_marks` for the next one:
        those about calls not emitted yet (`limit`: after a call-id gap), and each `handled`
        mark that a re-raise may still take back (_cancel_handled left its exception id in
        `other`) while its call runs (no EXIT row in this batch)."""
        held = any(r[2] == F.MARK_HANDLED and r[4] for r in marks)
        ended = set(exits[0::2]).union(exits_v[0::_EXIT_W]) if held else set()
        out: list[tuple] = []
        self._pending_marks = keep = []
        for r in marks:
            if r[2] == F.MARK_HANDLED and r[4]:  # other: the exception's id, not a call
                if r[0] >= limit or r[0] not in ended:
                    keep.append(r)
                else:
                    out.append((r[0], r[1], r[2], r[3], 0, 0, 0, 0))
            elif r[0] >= limit or r[4] >= limit:
                keep.append(r)
            else:
                out.append(r)
        return out

    def drain(self) -> Batch:
        """Everything recorded since the last drain, as one Batch (safe from any thread)."""
        with self._lock:
            self._epoch[0] += 1  # odd: a drain runs (see _reset)
            try:
                return self._drain()
            finally:
                self._runs.clear()  # runs seen before this drain can no longer fold
                self._epoch[0] += 1

    def _drain(self) -> Batch:
        # Longer than ~80 lines, on purpose: one pass that moves every pending row list into the
        # batch's columns in a fixed order (definitions before the rows that refer to them);
        # split up, the order would be spread over functions that each hold half the state.
        # Columns are taken from the flat row lists with C-level slices and `array(typecode,
        # list)`; the only Python loops per row are the task/flag pass (only once asyncio tasks
        # or partial calls exist) and string ids (only when texts were captured).
        b = Batch()
        # Definitions first: a row may refer to them (a row appended after the definition).
        b.functions = take(self._new_funcs)
        b.threads = take(self._new_threads)
        for i, (tid, ref, name, stack) in enumerate(self._threads):
            renamed = renamed_thread(ref, name)
            if renamed is not None:
                self._threads[i] = (tid, ref, renamed["name"], stack)
                b.threads.append({"id": tid, **renamed})
        b.tasks = take(self._new_tasks)
        calls = self._pending_calls + take(self._calls)
        exits = self._pending_exits + take(self._exits)
        exits_v = self._pending_exits_v + take(self._exits_v)
        # (the rows kept back by the last drain first: they are older than every new row)
        marks = self._cancel_handled(self._pending_marks + self._fold(take(self._marks)))
        first = self._next_call
        W = _CALL_W
        n = len(calls) // W
        self._pending_calls = []
        if n:
            cids = calls[0::W]
            if cids != list(range(first, first + n)):
                # Threads interleaved between taking an id and appending the row: sort, and
                # keep anything after a gap for the next drain.
                rows = sorted(zip(*[iter(calls)] * W))
                k = 0
                for k, r in enumerate(rows):
                    if r[0] != first + k:
                        break
                else:
                    k = n
                self._pending_calls = list(chain.from_iterable(rows[k:]))
                calls = list(chain.from_iterable(rows[:k]))
                n = k
        limit = first + n  # ids below `limit` are emitted by this drain
        # rows about calls not emitted yet wait for the next drain (rare: only after a gap), and
        # so do the ends of their parents: a parent's EXIT before its child's CALL would make
        # a streaming reader (`flowtrace print`) take the child for a top-level call
        waiting = set(self._pending_calls[1::W])
        self._pending_exits = []
        if exits and (waiting or max(exits[0::2]) >= limit):
            rows = list(zip(*[iter(exits)] * 2))
            self._pending_exits = [x for r in rows if r[0] >= limit or r[0] in waiting for x in r]
            exits = [x for r in rows if r[0] < limit and r[0] not in waiting for x in r]
        self._pending_exits_v = []
        if exits_v and (waiting or max(exits_v[0::_EXIT_W]) >= limit):
            rows = list(zip(*[iter(exits_v)] * _EXIT_W))
            self._pending_exits_v = [x for r in rows if r[0] >= limit or r[0] in waiting for x in r]
            exits_v = [x for r in rows if r[0] < limit and r[0] not in waiting for x in r]
        marks = self._keep_marks_back(marks, limit, exits, exits_v)

        strings: list[str] = []
        b.strings_first_id = self._next_str
        b.call_first_id = first
        if n:
            par = calls[1::W]
            b.call_parent = array("I", par)
            b.call_func = array("I", calls[2::W])
            b.call_thread = array("I", calls[3::W])
            b.call_t0 = array("q", calls[4::W])
            args = calls[5::W]
            if args.count(None) != n:  # C-level test: any text captured?
                sid = self._sid
                b.call_args = array("I", [sid(a, strings) for a in args])
            else:
                b.call_args = array("I", bytes(4 * n))
            extra = self._extra
            if extra or self._tasks_seen:
                task = array("I", bytes(4 * n))
                flag = array("B", bytes(n))
                task_of = self._task_of
                for i in range(n):
                    cid = first + i
                    e = extra.pop(cid, None)
                    if e is not None:
                        task[i], flag[i] = e
                    if self._tasks_seen:
                        tk = task[i] or task_of.get(par[i], 0)  # inside a task: the parent's
                        if tk:
                            task[i] = tk
                            task_of[cid] = tk
                b.call_task = task
                b.call_flag = flag
            else:
                b.call_task = array("I", bytes(4 * n))
                b.call_flag = array("B", bytes(n))
            self._next_call = limit
        if exits or exits_v:
            m = len(exits) // 2
            ids = array("I", exits[0::2])
            t1 = array("q", exits[1::2])
            how = array("B", [F.END_RETURN]) * m
            val = array("I", bytes(4 * m))
            if exits_v:
                mv = len(exits_v) // _EXIT_W
                ids.fromlist(exits_v[0::_EXIT_W])
                t1.fromlist(exits_v[1::_EXIT_W])
                how.fromlist(exits_v[2::_EXIT_W])
                texts = exits_v[3::_EXIT_W]
                if texts.count(None) != mv:
                    sid = self._sid
                    val.fromlist([sid(x, strings) for x in texts])
                else:
                    val.frombytes(bytes(4 * mv))
            b.exit_call = ids
            b.exit_t1 = t1
            b.exit_how = how
            b.exit_val = val
            if self._task_of:
                pop = self._task_of.pop
                for cid in ids:
                    pop(cid, None)
        if marks:
            sid = self._sid
            cids, ts, kinds, texts, others, ns, runs, spans = zip(*marks)
            b.mark_call = array("I", cids)
            b.mark_t = array("q", ts)
            b.mark_kind = array("B", kinds)
            b.mark_ref = array("I", [sid(x, strings) for x in texts])
            b.mark_other = array("I", others)
            if any(ns):
                b.mark_n = array("I", ns)
                b.mark_run = array("q", runs)
                b.mark_span = array("q", spans)
        b.strings = strings
        return b
