"""flowtrace never records itself, whatever the filters: not its threads (the flusher, the
control channel), not what its own code calls on the program's threads (starting the flusher,
flushing, stopping, installing exit hooks) -- even when --include names the library it uses
(json for its tables, threading, signal, enum, contextlib)."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

from treeutil import check_balanced, record

from flowtrace import untraced
from flowtrace.ftr.reader import load

OUR_LIBRARIES = ["json", "threading", "signal", "enum", "contextlib", "ctypes", "weakref", "zlib"]

PROGRAM = """
import json, time
def f(i):
    return json.dumps([i])
for i in range(4):
    f(i)
    time.sleep(0.03)  # several flushes while the program runs
"""


def names(trace, thread: int | None = None) -> list[str]:
    return ["  " * depth + c.qualname.split(".<locals>.")[-1] for c, depth in trace.walk(thread=thread)]


def recorded_here(trace, threads_before: set[int]) -> int:
    """The session id of this (the program's) thread, after checking that every other thread
    recorded is one that ran before the session started: never one of flowtrace's. (A test
    process has threads of its own: pytest-xdist's execnet receiver, a `_thread` thread,
    handles the controller's messages, and its `WeakValueDictionary.get` is recorded under
    `--include weakref` when a message comes in while a test records -- the program's thread,
    as far as flowtrace can tell.)"""
    me = threading.get_ident()
    assert all(t.ident == me or t.ident in threads_before for t in trace.threads.values()), trace.threads
    here, = (tid for tid, t in trace.threads.items() if t.ident == me)
    return here


def test_the_switch_is_available_here() -> None:
    assert untraced.available()  # else the tests below would pass for the wrong reason


def test_run_with_our_libraries_included(tmp_path: pathlib.Path, recorder_name: str) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    out = tmp_path / "t.ftr"
    includes = [a for lib in OUR_LIBRARIES for a in ("--include", lib)]
    proc = subprocess.run(
        [sys.executable, "-m", "flowtrace", "run", "-o", str(out), "--flush-interval", "0.01", *includes, str(prog)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "FLOWTRACE_RECORDER": recorder_name})
    assert proc.returncode == 0, proc.stderr
    trace = load(out)
    check_balanced(trace)
    assert [t.name for t in trace.threads.values()] == ["MainThread"]
    roots = [c.qualname for c in trace.roots]
    # the program, then threading's own shutdown that the interpreter runs at exit (it runs
    # under plain python too); nothing of flowtrace's start, flushes, exit hooks or stop
    assert roots[0] == "<module>" and set(roots[1:]) <= {"_shutdown"}, roots
    counts = collections.Counter(c.qualname for c in trace.calls if c.function.module.startswith("json"))
    assert counts == {"dumps": 4, "JSONEncoder.encode": 4, "JSONEncoder.iterencode": 4}


def test_session_api_flush_and_stop_are_not_recorded(recorder_name: str) -> None:
    from flowtrace.session import Session

    def program() -> None:
        json.dumps([1])
        session_ref[0].flush()  # our flush, on the program's thread
        json.dumps([2])

    session_ref: list[Session] = []
    real_init = Session.__init__

    def grab(self: Session, *a: object, **kw: object) -> None:
        real_init(self, *a, **kw)
        session_ref.append(self)

    Session.__init__ = grab  # type: ignore[method-assign]
    before = set(sys._current_frames())  # every thread running now, `_thread` ones too
    try:
        trace = record(program, recorder_name, include=OUR_LIBRARIES)
    finally:
        Session.__init__ = real_init  # type: ignore[method-assign]
    check_balanced(trace)
    here = recorded_here(trace, before)
    assert names(trace, here) == ["program", "  dumps", "    JSONEncoder.encode", "      JSONEncoder.iterencode",
                                  "  dumps", "    JSONEncoder.encode", "      JSONEncoder.iterencode"]


def test_own_thread_runs_untraced_from_its_first_frame(recorder_name: str) -> None:
    def program() -> None:
        t = untraced.Thread(target=lambda: json.dumps([0]), name="ours")
        t.start()
        t.join()
        time.sleep(0)

    before = set(sys._current_frames())
    trace = record(program, recorder_name, include=["json"])
    here = recorded_here(trace, before)
    assert names(trace, here) == ["program"]  # not the lambda nor json.dumps in the thread
