"""flowtrace never records itself: its threads and its own work in the program's threads run
with the thread's monitoring events switched off.

The filter already leaves out flowtrace's own code, but not what that code calls: the flusher
thread encodes its tables with `json.dumps`, starting the flusher runs `threading.Thread.start`,
stopping sets a `threading.Event`, and an `--include json` or `--include threading` would record
those calls as if the program had made them. So flowtrace's work runs inside `suspended()`,
which raises the thread's "tracing" level (`PyThreadState_EnterTracing`, the same switch
CPython flips while a monitoring callback runs): the interpreter then delivers no event of any
tool on that thread, whatever the filters, at no cost to the program's own calls. Our threads
(`Thread`) run their whole life that way, from their first Python frame.

The switch is reached through the C recorder's extension when it is built, else through
`ctypes.pythonapi`; where neither is available `suspended()` does nothing (the filter still
keeps flowtrace's own code out).
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any, Callable

from .sigmask import block_program_signals, held

_Switch = tuple[Callable[[], Any], Callable[[Any], None], Callable[[Any], None]]


def _c_switch() -> _Switch | None:
    try:
        from . import _crecorder  # type: ignore[attr-defined]
    except ImportError:
        return None
    enter = getattr(_crecorder, "suspend_events", None)
    leave = getattr(_crecorder, "resume_events", None)
    if enter is None or leave is None:
        return None
    return (lambda: None), (lambda _state: enter()), (lambda _state: leave())


def _ctypes_switch() -> _Switch | None:
    try:
        import ctypes

        api = ctypes.pythonapi
        get = api.PyThreadState_Get
        enter = api.PyThreadState_EnterTracing
        leave = api.PyThreadState_LeaveTracing
    except (ImportError, AttributeError, OSError):
        return None
    get.argtypes, get.restype = (), ctypes.c_void_p
    enter.argtypes, enter.restype = (ctypes.c_void_p,), None
    leave.argtypes, leave.restype = (ctypes.c_void_p,), None
    return get, enter, leave


# Resolved at the first use, which comes before any recording starts (Session.start, our
# threads' first frame), so that looking the functions up is never itself a recorded call; and
# not at import, so that importing flowtrace (the attach payload) does not import ctypes.
_UNSET: Any = object()
_SWITCH: Any = _UNSET


def _switch() -> _Switch | None:
    global _SWITCH
    if _SWITCH is _UNSET:
        _SWITCH = _c_switch() or _ctypes_switch()
    return _SWITCH


class _Suspended:
    """`with suspended():` -- a class, not a contextlib generator: contextlib's own frames
    would run (and be recorded under `--include contextlib`) before the switch is flipped."""

    __slots__ = ()

    def __enter__(self) -> None:
        switch = _SWITCH if _SWITCH is not _UNSET else _switch()
        if switch is not None:
            get, enter, _leave = switch
            enter(get())
        if _place_gc_phase is not None:  # (collect_in_own_work: the program may have moved it)
            _place_gc_phase(True)

    def __exit__(self, *exc: object) -> None:
        switch = _SWITCH
        if switch is not None and switch is not _UNSET:
            get, _enter, leave = switch
            leave(get())  # the same thread, so the same thread state as at __enter__


_SUSPENDED = _Suspended()


def suspended() -> _Suspended:
    """No monitoring event is delivered on this thread inside `with suspended():` (nests)."""
    return _SUSPENDED


# Sessions recording now that asked for collect_in_own_work (gc.callbacks holds gc_phase while any does).
_collect_users = 0
# _crecorder.place_gc_phase while gc.callbacks holds gc_phase, else None.
_place_gc_phase: Callable[[bool], None] | None = None


def collect_in_own_work(on: bool, flush: Callable[[], None] | None = None) -> None:
    """A collection that starts inside flowtrace's own work (the flusher thread's Python code:
    its allocations, its eval-breaker checks) runs the program's finalizers with this thread's
    events off: with `on`, while a session records, such a collection runs with them on, so that
    its finalizers are recorded (`_crecorder.gc_phase`, in gc.callbacks; without the C extension
    nothing). `flush()` is called, outside our work and with events off, before a collection
    that could free a class (collect.c). Paired: each True by one False.

    gc_phase holds the first and the last place in gc.callbacks, put back there whenever our
    work starts (`suspended()`): the program's own callbacks run in such a collection too, at
    its start and at its stop, and both calls of each are recorded between its two places."""
    global _collect_users, _place_gc_phase
    try:
        from . import _crecorder  # type: ignore[attr-defined]
    except ImportError:
        return
    place = getattr(_crecorder, "place_gc_phase", None)
    if place is None:
        return
    _collect_users = _collect_users + 1 if on else max(0, _collect_users - 1)
    set_hook = getattr(_crecorder, "set_collect_hook", None)
    if set_hook is not None and (flush is not None or not _collect_users):
        set_hook(flush if _collect_users else None)
    place(bool(_collect_users))
    _place_gc_phase = place if _collect_users else None


def available() -> bool:
    """Can flowtrace switch a thread's events off here?"""
    return _switch() is not None


# Our hidden threads (Thread(hidden=True)) by ident, while they run: out of threading's table,
# still named in a session's thread table (a finalizer run on the flusher: thread_named).
_hidden_threads: dict[int, threading.Thread] = {}


def _without_hidden(real: Callable[[], dict[int, Any]]) -> Callable[[], dict[int, Any]]:
    """`sys._current_frames` / `sys._current_exceptions` as without flowtrace: our hidden
    threads' entries left out. A program that dumps every thread's stack (a watchdog, a test
    suite's hang report) would print the flusher's; CPython's test_threading checks that a
    forked child has one thread state left (`len(sys._current_frames()) == 1`) and found two
    in a followed child (its session's flusher)."""

    frames = real.__name__ == "_current_frames"

    @functools.wraps(real)
    def without_ours() -> dict[int, Any]:
        found = real()
        for ident in list(_hidden_threads):
            found.pop(ident, None)
        if frames:  # the calling thread's frame is the caller's, as without this wrapper's own
            found[threading.get_ident()] = sys._getframe(1)
        return found

    without_ours.__flowtrace_real__ = real  # type: ignore[attr-defined]
    return without_ours


def _hide_from_sys() -> None:
    """Once, when our first hidden thread starts: sys's thread tables leave ours out."""
    for name in ("_current_frames", "_current_exceptions"):
        real = getattr(sys, name, None)
        if real is not None and not hasattr(real, "__flowtrace_real__"):
            setattr(sys, name, _without_hidden(real))


def thread_named(ident: int) -> threading.Thread | None:
    """The running Thread object of `ident`, ours hidden ones too (never a _DummyThread made);
    for the calling thread, also one that threading has not registered yet (_starting)."""
    thread = threading._active.get(ident) or _hidden_threads.get(ident)  # type: ignore[attr-defined]
    if thread is None and ident == threading.get_ident():
        thread = _starting()
    return thread


_BOOTSTRAP = threading.Thread._bootstrap.__code__  # type: ignore[attr-defined]


def _starting() -> threading.Thread | None:
    """The Thread whose `_bootstrap` is at the bottom of the calling thread's stack. A thread's
    first recorded call can come before threading registers it (in `_bootstrap_inner`): with
    `--include '*'` it is `Thread._bootstrap` itself, and the session named the thread
    `thread-<ident>` for good (and could not follow a rename). `self` is the only local there."""
    frame = sys._getframe(1)
    while frame.f_back is not None:
        frame = frame.f_back
    if frame.f_code is not _BOOTSTRAP:
        return None
    thread = frame.f_locals.get("self")
    return thread if isinstance(thread, threading.Thread) else None


def on_main_thread() -> bool:
    """Is this the main thread? (Compared by ident: `threading.current_thread()` on a hidden
    `Thread` would make a `_DummyThread`, which the program would see.)"""
    return threading.get_ident() == threading.main_thread().ident


class Thread(threading.Thread):
    """A flowtrace thread (flusher, control channel): none of its events is ever delivered, from
    its first Python frame (`Thread._bootstrap`, before threading's own code runs) to its end,
    and it takes none of the program's signals (flowtrace/sigmask.py).

    `hidden`: not in `threading.enumerate()` / `active_count()` either, so the program counts its
    own threads as under python (a test suite's leaked-thread check, a `threading.active_count()
    == 1`). Such a thread is taken out of threading's table of running threads before `start`
    returns; it must never call `threading.current_thread()` (`on_main_thread` instead)."""

    def __init__(self, *args: Any, hidden: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hidden = threading.Event() if hidden else None

    def start(self) -> None:
        with held():  # born with the program's signals blocked (sigmask.held says why)
            super().start()
        if self._hidden is not None:
            _hide_from_sys()
            # out of the table before the program runs on (bounded: a thread that never reached
            # run() -- a settrace hook of the program's that raised -- must not hang start)
            self._hidden.wait(timeout=5)

    def _bootstrap(self) -> None:  # the new thread's first Python frame (threading.Thread.start)
        with suspended():
            block_program_signals()
            super()._bootstrap()  # type: ignore[misc]

    def run(self) -> None:
        if self._hidden is not None:  # threading put it in its table just before run()
            with threading._active_limbo_lock:  # type: ignore[attr-defined]
                threading._active.pop(threading.get_ident(), None)  # type: ignore[attr-defined]
                _hidden_threads[threading.get_ident()] = self
            self._hidden.set()
        super().run()

    def _delete(self) -> None:  # threading's last step of the thread: out of its table (if there)
        if self._hidden is None:
            super()._delete()  # type: ignore[misc]
            return
        with threading._active_limbo_lock:  # type: ignore[attr-defined]
            threading._active.pop(threading.get_ident(), None)  # type: ignore[attr-defined]
            _hidden_threads.pop(threading.get_ident(), None)
