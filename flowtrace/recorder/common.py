"""What the Python and the C recorder do the same way, once per session, code object, thread
or task (never per call): taking a sys.monitoring tool id and giving it back, the frames that
are running when recording starts, the FUNC / THRD entries, and the asyncio task table
(`current_task()` -> TASK id, with the creator noted at `BaseEventLoop.create_task`'s return).
One copy, so that both recorders keep writing the same tables."""

from __future__ import annotations

import itertools
import sys
import threading
import weakref
from types import CodeType, FrameType
from typing import Any, Callable, Iterable, Iterator, Mapping

from .codeinfo import code_kind

MON = sys.monitoring
# Probe order: PROFILER_ID (2) is cProfile's; take it only when nobody has it, but prefer the
# unnamed ids so that a later cProfile run in the same program still works.
TOOL_ID_ORDER = (3, 4, 5, 2, 1, 0)
TOOL_NAME = "flowtrace"

# The code object where every asyncio task is created (recorders watch its return for the
# task's creator; it is never a recorded call).
_CREATE_TASK = ("BaseEventLoop.create_task", ("asyncio/base_events.py", "asyncio\\base_events.py"))


def take_tool_id() -> int:
    """A free sys.monitoring tool id, now ours; never evicts another tool. RuntimeError with
    a clear message (who holds each id) when none is free."""
    for tool in TOOL_ID_ORDER:
        try:
            if MON.get_tool(tool) is None:
                MON.use_tool_id(tool, TOOL_NAME)
                return tool
        except ValueError:  # taken between get_tool and use_tool_id
            continue
    users = ", ".join(f"{i}={MON.get_tool(i)}" for i in range(6) if MON.get_tool(i))
    raise RuntimeError(
        f"flowtrace cannot record: every sys.monitoring tool id is in use ({users}); "
        "stop another profiler, debugger or coverage tool first"
    )


def release_tool_id(tool: int, events: Iterable[int], *, exiting: bool = False) -> None:
    """Disable our events, remove our callbacks for `events` and free the tool id. With
    `exiting` (the process ends after this: atexit, os._exit) the events only: each removal is
    a `sys.monitoring.register_callback` audit event that a program's audit hook would see as
    it ends (CPython's test_audit, in a followed child, found eight), and callbacks whose events
    are off are never called; the id stays ours, so no other tool can find them there."""
    try:
        MON.set_events(tool, 0)
        if exiting:
            return
        for event in events:
            MON.register_callback(tool, event, None)
        # local events survive free_tool_id (gh-111963): we set none, so nothing to clear
        MON.free_tool_id(tool)
    except ValueError:
        pass


def enable_monitoring(callbacks: Mapping[int, Callable[..., Any]], seed: Callable[[], None] | None) -> int:
    """Take a tool id, register `callbacks` (event -> callable), run `seed` (the calls already
    running), then turn those events on for every thread; returns the tool id. All or nothing:
    on any failure the id is given back and the exception propagates."""
    tool = take_tool_id()
    try:
        events = 0
        for event, cb in callbacks.items():
            MON.register_callback(tool, event, cb)
            events |= event
        if seed is not None:
            seed()
        # DISABLE from an earlier session would hide code from this one (gh-118327)
        MON.restart_events()
        MON.set_events(tool, events)
    except BaseException:
        release_tool_id(tool, callbacks)
        raise
    return tool


# The frame of flowtrace's runner that runs the program (runner._run), while it runs: the frames
# below it are the `flowtrace` command's (`python -m flowtrace` runs through runpy, as a `-m`
# program does), never the program's. A forked child, or an attach to a `flowtrace run --paused`
# program, seeds the frames it is inside of: with `--include '*'` it showed the launcher's
# `_run_module_as_main(…) > _run_code(…)` above the program's own.
_program_base: FrameType | None = None


def set_program_base(frame: FrameType | None) -> None:
    """`frame` (None: none any more) runs the program: running_frames leaves out the frames
    below it, and itself."""
    global _program_base
    _program_base = frame


def running_frames() -> Iterator[tuple[int, list[FrameType]]]:
    """(thread ident, its frames outermost first) for every thread, as recording starts
    (seed_running writes the recorded ones as partial calls); the program's frames only."""
    base = _program_base
    for ident, frame in sys._current_frames().items():
        chain = []
        f: FrameType | None = frame
        while f is not None and f is not base:
            chain.append(f)
            f = f.f_back
        chain.reverse()
        yield ident, chain


def is_create_task(code: CodeType) -> bool:
    """Is `code` asyncio's `BaseEventLoop.create_task`?"""
    return code.co_qualname == _CREATE_TASK[0] and code.co_filename.endswith(_CREATE_TASK[1])


def may_create_tasks(filename: str) -> bool:
    """Is `filename` the file of asyncio's `BaseEventLoop.create_task` (is_create_task)?"""
    return filename.endswith(_CREATE_TASK[1])


def func_entry(fid: int, code: CodeType, module: str | None) -> dict[str, Any]:
    """The FUNC entry of a recorded code object."""
    return {
        "id": fid, "qualname": code.co_qualname, "module": module or "",
        "file": code.co_filename, "line": code.co_firstlineno, "kind": code_kind(code),
    }


def thread_entry(tid: int, ident: int, native_id: int, thread: threading.Thread | None) -> dict[str, Any]:
    """The THRD entry of a thread (`thread` None: not a threading.Thread, e.g. a C thread)."""
    return {"id": tid, "ident": ident, "native_id": native_id,
            "name": thread.name if thread is not None else f"thread-{ident}"}


def renamed_thread(ref: Any, name: str) -> dict[str, Any] | None:
    """A new THRD definition when the thread behind `ref` (weakref or None) was renamed since
    its entry said `name` (the last definition wins), else None."""
    th = ref() if ref is not None else None
    if th is None or th.name == name:
        return None
    return {"ident": th.ident, "native_id": th.native_id, "name": th.name}


def take(rows: list) -> list:
    """Everything in `rows` now, removed from it; appends made meanwhile (other threads, which
    only ever append) stay for the next drain. Slice and delete are atomic under the GIL."""
    n = len(rows)
    out = rows[:n]
    del rows[:n]
    return out


class ExitStatuses(dict):
    """thread ident -> the exit status a SystemExit asked for as it left that thread's outermost
    frame (both recorders note it from PY_UNWIND, which sees every frame, recorded or not).
    Python consumes that exception before atexit, so this is how a session ending at exit
    learns its process's status (session.py)."""

    def note(self, exc: BaseException) -> None:
        self[threading.get_ident()] = system_exit_status(exc)


def system_exit_status(exc: BaseException) -> int:
    """The status Python exits with when `exc` (a SystemExit) ends the program: its code when
    an int, 0 for None, 1 for anything else (which Python prints)."""
    code = getattr(exc, "code", None)
    if code is None:
        return 0
    return int(code) if isinstance(code, int) else 1


class TaskTable:
    """asyncio tasks seen in a session: id(task) -> TASK id (weakref-checked, since an id can
    be reused), and the creators noted at create_task's return until the task first runs."""

    def __init__(self) -> None:
        # id(task) -> (weakref(task) or None, creator call id), from create_task's return
        self._creators: dict[int, tuple[Any, int]] = {}
        self._ids: dict[int, tuple[Any, int]] = {}  # id(task) -> (weakref(task), task id)
        self._count = itertools.count(1)

    def note_creator(self, task: Any, call_id: int) -> None:
        """create_task returned `task` inside call `call_id`: its creator, kept until the task
        first runs. An eager task has run already (its creator was its parent then), so nothing
        is kept for it: a later task at its address must not take this creator."""
        key = id(task)
        seen = self._ids.get(key)
        if seen is not None and seen[0]() is task:
            return
        try:
            ref = weakref.ref(task)
        except TypeError:
            ref = None  # a task type without weakref support: its id is all there is
        self._creators[key] = (ref, call_id)

    def _creator_of(self, task: Any) -> int | None:
        """The creator noted for this very task (not for a dead one that had its address)."""
        noted = self._creators.pop(id(task), None)
        if noted is None or (noted[0] is not None and noted[0]() is not task):
            return None
        return noted[1]

    def current(self, parent: int, thr: int) -> tuple[int, dict[str, Any] | None]:
        """The asyncio task running now on this thread: (its TASK id or 0, the TASK entry when
        the task is seen for the first time, with "root" 0 for the caller to set). Its creator
        is the call that created it, else (an eager task runs before create_task returns)
        `parent`."""
        asyncio = sys.modules.get("asyncio")
        if asyncio is None:
            return 0, None
        try:
            if asyncio.events._get_running_loop() is None:
                return 0, None
            task = asyncio.current_task()
        except Exception:
            return 0, None
        if task is None:
            return 0, None
        key = id(task)
        entry = self._ids.get(key)
        if entry is not None and entry[0]() is task:
            return entry[1], None
        tid = next(self._count)
        try:
            ref = weakref.ref(task)
        except TypeError:
            ref = lambda: None  # noqa: E731  (a task type without weakref support)
        self._ids[key] = (ref, tid)
        try:
            name = task.get_name()
        except Exception:
            name = f"Task-{tid}"
        creator = self._creator_of(task)
        return tid, {"id": tid, "name": name, "thread": thr,
                     "creator": parent if creator is None else creator, "root": 0}
