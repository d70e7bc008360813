"""flowtrace: execution tracer for Python 3.12+ built on sys.monitoring (PEP 669).

The seed's API (flowtrace 0.1.1) and a file API:

    from flowtrace import trace, start_tracing, stop_tracing, get_trace_data, print_tree, CallEvent

    @trace                       # prints the call tree of each outermost decorated call
    def fib(n): ...

    start_tracing(); fib(3); events = stop_tracing(); print_tree(events)

    with flowtrace.record("run.ftr"):      # a session file, readable by `flowtrace print`
        ...

The seed API records exactly like a file session (a `Session` writing to memory) and reads the
result back with the one reader (`flowtrace.ftr.reader`), so both show the same calls.
Importing flowtrace is cheap: the recorder, the writer and the reader load on first use.

PYTEST_DONT_REWRITE: flowtrace is imported before pytest starts when pytest runs under
`flowtrace run` (and in every followed pytest-xdist worker); pytest, finding flowtrace's plugin
entry point, would otherwise warn that it cannot rewrite an already imported module.
"""

from __future__ import annotations

import functools
import io
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar, overload

if TYPE_CHECKING:
    from .events import CallEvent
    from .printing import format_tree, print_tree
    from .session import Session

__version__ = "0.2.0"
__all__ = [
    "CallEvent", "Session", "__version__", "format_tree", "get_trace_data", "install", "print_tree",
    "record", "start_tracing", "stop_tracing", "trace",
]

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.RLock()
_manual: dict[str, Any] = {}  # the start_tracing() session: {"session", "buffer", "timing"}
_last_events: list[CallEvent] = []
_decorator_active = False


def __getattr__(name: str) -> Any:
    """Lazy names: importing flowtrace (e.g. pytest loading its plugin entry point) loads none
    of the recorder, the session or the printing code until they are used."""
    if name == "Session":
        from .session import Session

        return Session
    if name == "CallEvent":
        from .events import CallEvent

        return CallEvent
    if name in ("format_tree", "print_tree"):
        from . import printing

        return getattr(printing, name)
    raise AttributeError(f"module 'flowtrace' has no attribute {name!r}")


def _config(args: str, include: Iterable[str], exclude: Iterable[str]) -> Any:
    from .recorder.base import RecorderConfig

    return RecorderConfig(args=args, include=list(include), exclude=list(exclude))


def _memory_session(args: str, include: Iterable[str], exclude: Iterable[str], command: str) -> tuple["Session", io.BytesIO]:
    from .session import Session

    buf = io.BytesIO()
    return Session(buf, _config(args, include, exclude), command=command), buf


def _events_from(buf: io.BytesIO, timing: bool) -> list[CallEvent]:
    from .ftr.reader import load, trace_to_events

    return trace_to_events(load(buf.getvalue()), timing=timing)


def start_tracing(
    *, measure_time: bool = False, args: str = "safe", include: Iterable[str] = (), exclude: Iterable[str] = ()
) -> None:
    """Start a process-wide recording (every thread) of user code, kept in memory.

    As in the seed, no timing is reported unless `measure_time=True`. Arguments and results
    are captured in `args` mode ("safe", "full" or "off"). A second call while recording
    restarts the recording."""
    with _lock:
        if _manual:
            _manual["session"].stop()
            _manual.clear()
        session, buf = _memory_session(args, include, exclude, "start_tracing")
        session.start()
        _manual.update(session=session, buffer=buf, timing=measure_time)


def stop_tracing() -> list[CallEvent]:
    """Stop the recording started by `start_tracing()` and return its calls (in start order).
    Calls still running (such as the caller of `stop_tracing`) end as `unfinished`.
    Returns [] when no recording is running."""
    global _last_events
    with _lock:
        if not _manual:
            return []
        session, buf, timing = _manual["session"], _manual["buffer"], _manual["timing"]
        _manual.clear()
        session.stop()
        _last_events = _events_from(buf, timing)
        return list(_last_events)


def get_trace_data() -> list[CallEvent]:
    """The calls of the last finished recording (`stop_tracing()` or a `@trace` call)."""
    return list(_last_events)


def _subtree(events: list[CallEvent], root: CallEvent) -> list[CallEvent]:
    keep = {root.id}
    out = [root]
    for e in events:  # events are in start order: a parent comes before its children
        if e.parent_id in keep and e.id not in keep:
            keep.add(e.id)
            out.append(e)
    return out


@overload
def trace(func: F, /) -> F: ...
@overload
def trace(func: None = None, /, *, measure_time: bool = False, args: str = "safe") -> Callable[[F], F]: ...


def trace(func: Callable[..., Any] | None = None, /, *, measure_time: bool = False, args: str = "safe") -> Any:
    """Decorator: each outermost call of the function is recorded and its call tree printed
    (seed format, values-only arguments: `→ fib(3)`); `measure_time=True` adds durations.
    Calls made while that call runs (recursion, other decorated functions) are part of it."""
    if func is None:
        return lambda f: trace(f, measure_time=measure_time, args=args)

    code = getattr(func, "__code__", None)
    qualname = code.co_qualname if code is not None else getattr(func, "__qualname__", "")

    @functools.wraps(func)
    def wrapper(*a: Any, **kw: Any) -> Any:
        global _decorator_active, _last_events
        with _lock:
            outermost = not _decorator_active
            if outermost:
                _decorator_active = True
        if not outermost:
            return func(*a, **kw)
        try:
            session, buf = _memory_session(args, (), (), "trace")
            session.start()
        except Exception:
            with _lock:
                _decorator_active = False
            return func(*a, **kw)  # no free tool id etc.: run untraced rather than fail
        try:
            return func(*a, **kw)
        finally:
            try:
                session.stop()
                events = _events_from(buf, measure_time)
                root = next((e for e in events if e.parent_id is None and e.func_name == qualname), None)
                shown = _subtree(events, root) if root is not None else events
                _last_events = shown
                from .printing import print_tree

                print_tree(shown, arg_names=False, show_time=measure_time)
            finally:
                with _lock:
                    _decorator_active = False

    return wrapper


def install(*, signal: int | None = None, flush_interval: float = 0.1) -> str:
    """Serve a control channel so `flowtrace attach PID` can record this process later
    (zero overhead until then); see flowtrace.control.install and docs/ATTACH.md."""
    from .control import install as _install

    return _install(signal=signal, flush_interval=flush_interval)


class record:
    """`with flowtrace.record("run.ftr"): ...` records the block (all threads) into a file.

    `args` is "safe", "full" or "off"; `include`/`exclude` are module or path globs
    (see flowtrace.filters). The file is finished when the block ends, also by an exception."""

    def __init__(self, path: str, *, args: str = "safe", include: Iterable[str] = (),
                 exclude: Iterable[str] = (), flush_interval: float = 0.1) -> None:
        from .session import Session

        self.session = Session(path, _config(args, include, exclude), command="record",
                               flush_interval=flush_interval)
        self.path = path

    def __enter__(self) -> "Session":
        return self.session.start()

    def __exit__(self, *exc: Any) -> None:
        self.session.__exit__(*exc)
