"""A program's exception met inside the tracer's hooks reaches the program at its next eval-breaker
check, as it would have untraced. A signal's handler that comes due while a hook runs Python code
(the C recorder's on_code, a value's text in --repr full, the Python recorder's callbacks) waits
for the program's next check outside it (sighold.c) -- Ctrl-C's KeyboardInterrupt, a handler's
SystemExit, a SIGALRM timeout's TimeoutError land there; before, the C recorder's soft_fail
swallowed them (an ordinary Exception became the hook's failure: the program went on). A user
`__repr__`'s own exception that is not an Exception is the program's too: the value's text says
the repr raised it, and it is raised at the next check. Before, the Python recorder ran the
callback again, calling the `__repr__` again (guard.c) until it gave the event up (a call left
unrecorded)."""

from __future__ import annotations

import pathlib
import _thread
import re
import signal
import sys

import pytest

from flowtrace.recorder import available_recorders
from plain_vs_traced import assert_same, run_both, script
from treeutil import record, shape

RECORDERS = ["python", "c"] if "c" in available_recorders() else ["python"]
ADDR = r"0x[0-9a-f]+"


class _Stopped:
    raised: type[BaseException] = KeyboardInterrupt

    def __repr__(self) -> str:
        raise self.raised(3)  # as a signal handler's exception raised inside it would be


def _one() -> int:
    return 1


def _take(x: object) -> int:
    return _one()


def _interrupted_in_repr() -> list[str]:
    try:
        _take(_Stopped())
    except (KeyboardInterrupt, SystemExit) as exc:
        tb, names = exc.__traceback__, []
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        return [type(exc).__name__, *names]
    return ["not raised"]


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("recorder", RECORDERS)
def test_the_program_gets_it_at_its_next_check(recorder: str, raised: type[BaseException],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """3.12 checks the eval breaker at a function's first RESUME after PY_START (whose hook
    called the __repr__): it lands at `_take`'s start. 3.13 checks there before PY_START: the
    next check is `_one`'s first RESUME, before its PY_START (so `_one` is never started).
    The traceback has the program's frames alone."""
    monkeypatch.setattr(_Stopped, "raised", raised)
    trace = record(_interrupted_in_repr, recorder, args="full", flush_interval=3600)
    name = raised.__name__
    lands = ["_take", "_one"] if sys.version_info >= (3, 13) else ["_take"]
    assert [re.sub(ADDR, "0x?", line) for line in shape(trace)] == [
        f"_interrupted_in_repr() = {[name, '_interrupted_in_repr', *lands]!r}",
        f"  _take(x=<test_interrupted_hooks._Stopped object at 0x?; repr raised {name}: 3>) ! {name}: 3",
    ]


class _TimedOut(Exception):
    pass


class _Stuck:
    def __repr__(self) -> str:
        _thread.interrupt_main(signal.SIGALRM)  # a timeout's alarm, while the __repr__ runs
        for _ in range(10**8):  # (seconds: only the handler's exception ends it soon)
            pass
        return "_Stuck()"


class _SetsAHandler:
    def __repr__(self) -> str:
        signal.signal(signal.SIGUSR2, signal.getsignal(signal.SIGUSR2))  # (the main thread's alone)
        return "_SetsAHandler()"


def _timed_out() -> list[str]:
    _take(_SetsAHandler())
    try:
        _take(_Stuck())
    except _TimedOut as exc:
        tb, names = exc.__traceback__, []
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        return [type(exc).__name__, *names]
    return ["not raised"]


def _alarm(signum, frame):
    raise _TimedOut("too slow")


@pytest.mark.parametrize("recorder", RECORDERS)
def test_a_repr_runs_as_the_programs_code(recorder: str) -> None:
    """A user __repr__ (--repr full) runs with the program's handlers not held off, as untraced:
    a timeout's handler interrupts it (its TimedOut -- an Exception -- is the program's: raised at
    the program's next check, the text says the repr raised it), and it may set a handler, which
    only the main thread may (held, a __repr__ is not on the main thread as far as signals go)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        trace = record(_timed_out, recorder, args="full", flush_interval=3600)
    finally:
        signal.signal(signal.SIGALRM, old)
    lands = ["_take", "_one"] if sys.version_info >= (3, 13) else ["_take"]
    assert [re.sub(ADDR, "0x?", line) for line in shape(trace)] == [
        f"_timed_out() = {['_TimedOut', '_timed_out', *lands, '_alarm']!r}",
        "  _take(x=_SetsAHandler()) = 1",
        "    _one() = 1",
        "  _take(x=<test_interrupted_hooks._Stuck object at 0x?; repr raised"
        " test_interrupted_hooks._TimedOut: too slow>) ! test_interrupted_hooks._TimedOut: too slow",
    ]


# map's C code trips the signal, then calls take with no eval-breaker check in between: untraced
# the signal's exception lands at take's first RESUME; traced, 3.12 runs PY_START there first,
# whose hooks run Python code -- the handler waits for take's RESUME, where its exception lands.
# (3.13 checks before PY_START: the same either way.)
INTERRUPTED_HOOK = """
import signal, sys, _thread
{setup}
class Shown:
    def __repr__(self):
        return "Shown()"

def take(x, _):
    return 1

def main():
    {first}
    print(list(map(take, [Shown()], map(_thread.interrupt_main, [{signum}]))), flush=True)
    print("not interrupted", flush=True)

main()
"""

EXITS = """
def handler(signum, frame):
    sys.exit(3)
signal.signal(signal.SIGUSR1, handler)
"""

OWN = """
class Stop(BaseException):
    pass
def handler(signum, frame):
    raise Stop("from the handler")
signal.signal(signal.SIGUSR1, handler)
"""

TIMEOUT = """
def handler(signum, frame):
    raise TimeoutError("too slow")
signal.signal(signal.SIGALRM, handler)
"""


@pytest.mark.parametrize("setup, signum, status", [
    ("", "signal.SIGINT", -2),  # Ctrl-C: KeyboardInterrupt, uncaught (Python ends by SIGINT)
    (EXITS, "signal.SIGUSR1", 3),  # a handler's SystemExit: the exit status
    (OWN, "signal.SIGUSR1", 1),  # a handler's own exception: its frame in the traceback
    (TIMEOUT, "signal.SIGALRM", 1),  # an Exception (a timeout's): the program's, not the repr's failure
], ids=["ctrl-c", "handler-exits", "handler-raises", "handler-times-out"])
@pytest.mark.parametrize("first", ["pass", "take(0, 0)"], ids=["code-hook", "value-hook"])
@pytest.mark.parametrize("options", [("--repr", "full"), ()], ids=["full", "safe"])
@pytest.mark.parametrize("recorder", RECORDERS)
def test_a_signal_in_a_hook_ends_the_program_as_untraced(tmp_path: pathlib.Path, recorder: str, options: tuple[str, ...],
                                                         first: str, setup: str, signum: str, status: int) -> None:
    """The C recorder's hook that runs first at take's start: the wrapper's on_code (take's first
    call) or, take's code known, the value text hook (--repr full: Shown's __repr__). The
    program's handlers wait for the program's next check outside the hook (sighold.c): the
    handler's exception lands at take's first check, as untraced -- an ordinary Exception too,
    which a handler run inside the hook made a failure of the hook's (the repr's text)."""
    s = script(tmp_path, "hooked.py", INTERRUPTED_HOOK.format(setup=setup, signum=signum, first=first))
    plain, traced, _ = run_both([str(s)], tmp_path, env={"FLOWTRACE_RECORDER": recorder}, options=options)
    assert plain.returncode == status and plain.stdout == ""
    assert ("in take" in plain.stderr) == (status != 3)  # (SystemExit: no traceback)
    assert_same(plain, traced)
