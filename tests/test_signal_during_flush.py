"""A signal that arrives while the main thread flushes under backpressure (session.py's _overflow,
inside a monitoring callback) waits for the flush: its handler runs afterwards, in the program's
code, where it is recorded like the program's other calls; its exception (Ctrl-C's
KeyboardInterrupt, a handler's own) reaches the program, and no row is lost -- the file reads
back whole (sighold.c). Before, a handler run in the middle broke the flush: the Python recorder
lost every row here, the C recorder's file was damaged after the first batches, and a handler
that returned ran unrecorded inside the callback.

The signal is sent from inside the flush itself (SessionWriter.write_batch on the main thread),
so it is pending there every time, whichever recorder and however the flushes fall."""

from __future__ import annotations

import _thread
import pathlib
import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest

import flowtrace.sigmask
import flowtrace.session as session_mod
from flowtrace.ftr.writer import SessionWriter
from flowtrace.recorder.python import _OVERFLOW_EVERY
from flowtrace.sigmask import held
from plain_vs_traced import PY, run_both, script
from test_differential import canonical
from treeutil import check_balanced, record

CAP = 1000  # pending rows that make the recording thread flush (backpressure)
N = _OVERFLOW_EVERY + 4 * CAP  # leaf calls: past the Python recorder's first check too


class Interrupted(Exception):
    """The handler's own exception."""


def _handler_work() -> int:
    return 7


def _leaf(i: int) -> int:
    return i


def _calls(done: list[int], n: int) -> None:
    while done[0] < n:
        _leaf(done[0])
        done[0] += 1


def _loop(n: int, caught: list[int]) -> None:
    # (the handler's exception lands in _calls -- a leaf, or its loop's backward jump -- and
    # is caught here: a jump of a loop inside the try may lie outside it, as on 3.13)
    done = [0]
    while done[0] < n:
        try:
            _calls(done, n)
        except Interrupted:
            caught.append(done[0])


@pytest.fixture
def signal_in_flush(monkeypatch: pytest.MonkeyPatch):
    """Sends SIGUSR1 to the main thread inside its first backpressure flush; yields the list
    of the flushes' threads in which a handler has run so far (the handler appends to it)."""
    monkeypatch.setattr(session_mod, "PENDING_ROWS_CAP", CAP)
    state = {"sent": False, "in_flush": False}
    ran_in_flush: list[bool] = []
    real = SessionWriter.write_batch

    def write_batch(self, batch):
        if threading.current_thread() is threading.main_thread():
            state["in_flush"] = True
            try:
                if not state["sent"]:
                    state["sent"] = True
                    signal.raise_signal(signal.SIGUSR1)  # (flagged now: a check would run it)
                return real(self, batch)
            finally:
                state["in_flush"] = False
        return real(self, batch)

    monkeypatch.setattr(SessionWriter, "write_batch", write_batch)
    old = signal.getsignal(signal.SIGUSR1)
    yield state, ran_in_flush
    signal.signal(signal.SIGUSR1, old)


def _handler(state: dict, ran_in_flush: list[bool], raises: bool):
    def on_usr1(signum, frame):
        ran_in_flush.append(state["in_flush"])
        _handler_work()
        if raises:
            raise Interrupted()
    return on_usr1


def _check(trace, raises: bool, caught: list[int]) -> None:
    """The exact tree, around where the handler ran: 3.12 checks for signals just after a
    call's PY_START (the handler runs in the leaf whose start flushed), 3.13 just before it
    (in _calls, at its loop's jump after that leaf)."""
    check_balanced(trace)
    names = {c.id: c.function.qualname.split(".")[-1] for c in trace.calls}
    [loop] = [c for c in trace.calls if names[c.id] == "_loop"]
    runs = [c for c in trace.calls if c.parent == loop.id]
    leaves = [c for c in trace.calls if names[c.id] == "_leaf"]
    [handler] = [c for c in trace.calls if names[c.id] == "on_usr1"]
    assert [(names[c.id], c.end) for c in trace.calls if c.parent == handler.id] == [("_handler_work", "return")]
    assert handler.end == ("raise" if raises else "return")
    where = trace.calls[[c.id for c in trace.calls].index(handler.parent)]
    k = [c.id for c in leaves].index(where.id) if names[where.id] == "_leaf" else None
    if sys.version_info < (3, 13):
        assert names[where.id] == "_leaf" and k is not None
    else:
        assert where.id == runs[0].id
        kids = [c.id for c in trace.calls if c.parent == runs[0].id]
        k = kids.index(handler.id)  # (leaves 0..k-1 before it; the last child if it raised)
        assert not raises or kids[-1] == handler.id
    if raises:  # a second run of _calls takes over from the call it left
        assert caught == [k] and [(names[c.id], c.end) for c in runs] == [("_calls", "raise"), ("_calls", "return")]
        assert [c.args for c in leaves] == [f"i={i}" for i in (*range(k), *range(k, N))] if sys.version_info >= (3, 13) \
            else [c.args for c in leaves] == [f"i={i}" for i in (*range(k + 1), *range(k, N))]
        assert [c.end for c in leaves].count("raise") == (sys.version_info < (3, 13))
    else:
        assert caught == [] and [(names[c.id], c.end) for c in runs] == [("_calls", "return")]
        assert [c.args for c in leaves] == [f"i={i}" for i in range(N)]
        assert all(c.end == "return" for c in leaves)


@pytest.mark.parametrize("raises", [False, True], ids=["returns", "raises"])
def test_a_signal_during_a_backpressure_flush_waits_for_it(recorder_name, signal_in_flush, raises):
    state, ran_in_flush = signal_in_flush
    signal.signal(signal.SIGUSR1, _handler(state, ran_in_flush, raises))
    caught: list[int] = []
    trace = record(lambda: _loop(N, caught), recorder_name, flush_interval=3600)
    assert state["sent"]  # a backpressure flush ran on the main thread
    assert ran_in_flush == [False]  # the handler ran once, after the flush
    _check(trace, raises, caught)


# Under `flowtrace run`: Ctrl-C (SIGINT, not caught) inside a backpressure flush. Traced, the
# program lowers the cap (a flush on the main thread every ~1000 rows) and sends the signal to
# itself from inside a flush after 20 000 calls; under plain python at the 20 000th call.
UNCAUGHT = """
import _thread, signal, sys, threading
import flowtrace.session as S
from flowtrace.ftr.writer import SessionWriter

calls = [0]
sent = []
sessions = list(S._started)
if sessions:
    session = sessions[0]
    S.PENDING_ROWS_CAP = 1000
    getattr(session.recorder, "_core", session.recorder).set_overflow(session._overflow, 1000)
    real = SessionWriter.write_batch

    def write_batch(self, batch):
        if threading.current_thread() is threading.main_thread() and calls[0] >= 20_000 and not sent:
            sent.append(1)
            _thread.interrupt_main(signal.SIGINT)  # (flagged, as if caught by another thread)
        return real(self, batch)

    SessionWriter.write_batch = write_batch

def leaf(i):
    calls[0] += 1
    return i

def main():
    for i in range(10_000_000):
        leaf(i)
        if not sessions and i == 20_000:
            signal.raise_signal(signal.SIGINT)

try:
    main()
finally:
    print("leaf calls", calls[0], file=sys.stderr, flush=True)
"""


def test_ctrl_c_in_a_flush_under_flowtrace_run(tmp_path: pathlib.Path, recorder_name: str):
    """The exit status is plain python's (an uncaught KeyboardInterrupt), and the file reads
    back whole, with every call the program made."""
    path = script(tmp_path, "uncaught.py", UNCAUGHT)
    plain, traced, out = run_both([str(path)], tmp_path, env={"FLOWTRACE_RECORDER": recorder_name})
    assert traced.returncode == plain.returncode != 0
    assert traced.stdout == plain.stdout == ""
    assert traced.stderr.count("KeyboardInterrupt") == plain.stderr.count("KeyboardInterrupt") == 1
    made = int(traced.stderr.split("leaf calls ")[1].split()[0])
    assert 20_000 < made < 10_000_000
    printed = subprocess.run([PY, "-m", "flowtrace", "print", str(out)], capture_output=True, text=True, timeout=600)
    assert printed.returncode == 0 and printed.stderr == "", printed.stderr
    lines = printed.stdout.splitlines()
    leaves = sum(line.lstrip().startswith("→ leaf(") for line in lines)
    assert made <= leaves <= made + 1  # (+1: one left by the interrupt before it counted)
    assert lines[-1].startswith("← <module> uncaught.py") and lines[-1].endswith("✗ KeyboardInterrupt")


def test_held_gives_the_mask_back_when_a_handler_raises_in_the_blocking_call(monkeypatch: pytest.MonkeyPatch):
    """signal.pthread_sigmask runs the handlers of signals flagged meanwhile (another thread's,
    _thread.interrupt_main) right after it changes the mask: a handler's exception then came out
    of held()'s blocking call with the program's signals blocked and the old mask lost -- blocked
    for good (a Ctrl-C would never arrive). Here a signal is flagged just as the mask changes."""
    real = signal.pthread_sigmask
    real_raw = flowtrace.sigmask._sigmask  # (held() calls _signal's: masks as sets of ints)

    def flagged_meanwhile(how, mask):
        old = real_raw(how, mask)
        if how == signal.SIG_BLOCK and mask:
            _thread.interrupt_main(signal.SIGUSR1)  # (its handler runs at this call's check)
        return old

    def on_usr1(signum, frame):
        raise Interrupted()

    before = real(signal.SIG_BLOCK, ())
    old_handler = signal.signal(signal.SIGUSR1, on_usr1)
    monkeypatch.setattr(flowtrace.sigmask, "_sigmask", flagged_meanwhile)
    try:
        with pytest.raises(Interrupted):
            with held():
                pass
        after = real(signal.SIG_BLOCK, ())
    finally:
        real(signal.SIG_SETMASK, before)
        signal.signal(signal.SIGUSR1, old_handler)
    assert after == before
