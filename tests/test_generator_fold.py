"""Generator resumes are folded (issue 8 item 1): a generator that yields N values with no call
inside costs O(1) bytes in the session whatever N, while what its resumes tell -- who resumed
it, how often, how long it ran -- stays exact, and any resume that made calls, came from
another resumer or thread, or threw is kept as its own mark."""

from __future__ import annotations

import collections
import io
import itertools
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.decode import MarkRows, decode
from flowtrace.ftr.reader import Trace, load
from flowtrace.recorder.base import RecorderConfig
from flowtrace.session import Session
from flowtrace_tui.model import TraceData, build_index

from treeutil import check_balanced


def numbers(n):
    for i in range(n):
        yield i


def drain_numbers(n):
    total = 0
    for v in numbers(n):
        total += v
    return total


def session_bytes(fn, recorder: str, args: str = "safe") -> bytes:
    buf = io.BytesIO()
    session = Session(buf, RecorderConfig(args=args), recorder=recorder, flush_interval=30)
    session.start()
    try:
        fn()
    finally:
        session.stop()
    return buf.getvalue()


@pytest.mark.parametrize("args", ["safe", "off"])
def test_file_size_does_not_grow_with_yields(recorder_name, args):
    small = len(session_bytes(lambda: drain_numbers(100), recorder_name, args))
    big = len(session_bytes(lambda: drain_numbers(20_000), recorder_name, args))
    # one fold record, whatever the count: a few bytes more for bigger numbers at most
    assert big - small < 64, (small, big)


def record_marks(fn, recorder: str, name: str = "numbers", args: str = "safe") -> tuple[Trace, list]:
    trace = load(session_bytes(fn, recorder, args))
    check_balanced(trace)
    gen = next(c for c in trace.calls if c.qualname == name)
    return trace, gen.marks


def kinds(trace: Trace, marks: list) -> list[str]:
    out = []
    for m in marks:
        who = trace.call(m.other).qualname.split(".<locals>.")[-1] if m.other else "-"
        out.append({"resume": f"resume<{who}", "throw": f"throw<{who}", "fold": f"fold<{who}*{m.count}"}.get(m.kind, m.kind))
    return out


def test_quiet_runs_fold_into_one_mark(recorder_name):
    trace, marks = record_marks(lambda: drain_numbers(1000), recorder_name)
    # first run: exact suspend; 999 quiet runs by drain_numbers; the last run returns
    assert kinds(trace, marks) == ["suspend", "fold<drain_numbers*999", "resume<drain_numbers"]
    fold = marks[1]
    assert marks[0].text == "0" and fold.text == "1"  # the first folded run's yielded value
    assert 0 < fold.run_ns <= fold.end_ns - fold.t_ns
    assert marks[0].t_ns < fold.t_ns < fold.end_ns < marks[2].t_ns
    assert sum(m.suspensions for m in marks) == 1000  # one per yield


def square(x):
    return x * x


def sometimes_calls(n):
    for i in range(n):
        if i % 4 == 2:
            square(i)  # this run made a call: exact
        yield i


def test_runs_that_make_calls_stay_exact(recorder_name):
    trace, marks = record_marks(lambda: list(sometimes_calls(8)), recorder_name, "sometimes_calls")
    r = "resume<<lambda>"  # list() is not recorded: the resumer is the lambda
    # runs: start->y0, y0->y1 (quiet), y1->y2 (square), y2->y3, y3->y4 (quiet x2),
    # y5->y6 (square), y6->y7 (quiet), y7->end
    assert kinds(trace, marks) == [
        "suspend", r, "suspend", r, "suspend", "fold<<lambda>*3", r, "suspend", r, "suspend", r]
    assert [m.text for m in marks if m.kind == "suspend"] == ["0", "1", "2", "6", "7"]


class Node:
    def __init__(self, left, value, right):
        self.left, self.value, self.right = left, value, right

    def __iter__(self):  # a `yield from` chain: every value suspends and resumes each level
        if self.left:
            yield from self.left
        yield self.value
        if self.right:
            yield from self.right


def node(lo, hi):
    return None if lo >= hi else Node(node(lo, (lo + hi) // 2), (lo + hi) // 2, node((lo + hi) // 2 + 1, hi))


def walk_twice():
    tree = node(0, 12)
    return sum(tree) + sum(square(v) for v in tree)


@pytest.mark.parametrize("args", ["safe", "off"])
def test_yield_from_chains_mark_alike_in_both_recorders(args):
    """The C recorder's switch fast paths (a resume found in the map; a yield that extends a
    fold, becomes one, or suspends) write the marks the reference writes: every level of a
    `yield from` chain, runs that start a call (the right subtree) exact, the others folded."""
    marks = {}
    for rec in ("python", "c"):
        trace = load(session_bytes(walk_twice, rec, args))
        check_balanced(trace)
        marks[rec] = [(c.qualname, kinds(trace, c.marks), [m.text for m in c.marks])
                      for c in trace.calls if c.qualname == "Node.__iter__"]
    assert marks["c"] == marks["python"]
    assert len(marks["c"]) == 24  # 12 nodes, walked twice
    assert any("fold" in k for _, ks, _ in marks["c"] for k in ks)
    # the root, resumed by walk_twice through sum(): its first run starts the left subtree
    # (exact), the next 6 are quiet, one starts the right subtree, 4 quiet, the last returns
    assert marks["c"][0][1] == ["suspend", "fold<walk_twice*6", "resume<walk_twice", "suspend",
                                "fold<walk_twice*4", "resume<walk_twice"]


def test_mark_chunks_are_in_time_order(recorder_name, tmp_path):
    """A MARK chunk's rows are in time order, so its times code as rising steps: the C recorder
    holds a quiet run's resume row back and writes it (or the run's fold row) only when the
    run ends or turns out not quiet -- after rows that its `yield from` levels wrote meanwhile
    -- and puts the batch back in time order at the drain (a call's own rows keep their order)."""
    out = tmp_path / "w.ftr"
    with open(out, "wb") as fh:
        session = Session(fh, RecorderConfig(args="off"), recorder=recorder_name, flush_interval=30)
        session.start()
        try:
            for _ in range(3):
                walk_twice()
        finally:
            session.stop()
    times = [list(rows.t.ints()) for rows in map(decode, ChunkReader(str(out)).poll()) if isinstance(rows, MarkRows)]
    assert times and all(t == sorted(t) for t in times)
    assert sum(map(len, times)) > 50


def take(g, k):
    return [next(g) for _ in range(k)]


def two_resumers():
    g = numbers(10)
    take(g, 4)
    other_take(g, 3)
    take(g, 3)
    list(g)  # its end


def other_take(g, k):
    return [next(g) for _ in range(k)]


def test_another_resumer_starts_another_fold(recorder_name):
    trace, marks = record_marks(two_resumers, recorder_name)
    assert kinds(trace, marks) == ["suspend", "fold<take*3", "fold<other_take*3", "fold<take*3", "resume<two_resumers"]
    folds = [m for m in marks if m.kind == "fold"]
    assert folds[0].other != folds[2].other  # two calls of take: two resumers


def in_threads():
    # resumed from code that is not recorded (deque consuming an islice) on two threads: no
    # recorded resumer either time, so only the thread tells the runs apart
    g = numbers(7)
    next(g)
    for _ in range(2):
        t = threading.Thread(target=collections.deque, args=(itertools.islice(g, 3), 0))
        t.start()
        t.join()
    list(g)


def test_another_thread_starts_another_fold(recorder_name):
    trace, marks = record_marks(in_threads, recorder_name)
    assert kinds(trace, marks) == ["suspend", "fold<-*3", "fold<-*3", "resume<in_threads"]


def thrown_into():
    g = guarded(6)
    take(g, 3)
    g.throw(KeyError("k"))
    take(g, 2)
    list(g)


def guarded(n):
    for i in range(n):
        try:
            yield i
        except KeyError:
            pass


def test_throw_and_handled_exceptions_stay_exact(recorder_name):
    trace, marks = record_marks(thrown_into, recorder_name, "guarded")
    # throw: its own mark; the exception handled in that run: its own mark; then folds again
    assert kinds(trace, marks) == ["suspend", "fold<take*2", "throw<thrown_into", "handled", "suspend",
                                   "fold<take*2", "resume<thrown_into"]


def busy_numbers(n):
    for i in range(n):
        end = time.perf_counter_ns() + 1_000_000  # runs >= 1 ms each, no call recorded inside
        while time.perf_counter_ns() < end:
            pass
        yield i


def slow_consumer():
    for _ in busy_numbers(6):
        time.sleep(0.002)  # suspended >= 2 ms each time


def test_folded_running_time_is_exact(recorder_name):
    """Bounds that hold on any machine: each run spins >= 1 ms and each suspension sleeps
    >= 2 ms, so a fold of n runs has run >= n ms and span - run >= (n - 1) * 2 ms; the
    explorer's running time of the generator adds them to its exact first and last runs."""
    trace, marks = record_marks(slow_consumer, recorder_name, "busy_numbers")
    assert kinds(trace, marks) == ["suspend", "fold<slow_consumer*5", "resume<slow_consumer"]
    fold = marks[1]
    assert fold.run_ns >= 5_000_000
    assert fold.end_ns - fold.t_ns - fold.run_ns >= 4 * 2_000_000
    data = TraceData("t")
    data.feed(ChunkReader.from_bytes(session_bytes(slow_consumer, recorder_name)).poll())
    ix = build_index(data)
    gid = next(i for i in range(1, data.n + 1) if data.func_name(int(data.col("func")[i])) == "busy_numbers")
    assert int(data.col("nsusp")[gid]) == 6
    assert 6_000_000 <= int(ix.run[gid]) <= int(ix.dur[gid]) - 6 * 2_000_000


def test_python_recorder_fold_rule():
    """PyRecorder._fold on rows as the callbacks append them: (call, t, kind, text, other[,
    thread]); a plain resume carries its thread, a quiet yield (_MARK_QUIET) carries it in
    `other`'s place."""
    from flowtrace.ftr import format as F
    from flowtrace.recorder.python import _MARK_QUIET, PyRecorder

    g, h, m = 5, 6, 1
    rows = [
        (g, 10, F.MARK_SUSPEND, "0", 0),
        (g, 20, F.MARK_RESUME, None, m, 1), (g, 25, _MARK_QUIET, "1", 1),  # fold of 1 ...
        (h, 30, F.MARK_RESUME, None, m, 1),  # (another call's rows do not interrupt it)
        (g, 40, F.MARK_RESUME, None, m, 1), (g, 48, _MARK_QUIET, "2", 1),  # ... extended
        (g, 50, F.MARK_RESUME, None, 2, 1), (g, 51, _MARK_QUIET, "3", 1),  # another resumer
        (g, 60, F.MARK_RESUME, None, m, 1), (g, 62, F.MARK_RAISE, "E", 0), (g, 70, _MARK_QUIET, "4", 1),
        (7, 80, _MARK_QUIET, "x", 1),  # its resume was drained before: a suspend
    ]
    assert PyRecorder._fold(rows) == [
        (g, 10, F.MARK_SUSPEND, "0", 0, 0, 0, 0),
        (g, 20, F.MARK_FOLD, "1", m, 2, 5 + 8, 28),
        (h, 30, F.MARK_RESUME, None, m, 0, 0, 0),
        (g, 50, F.MARK_FOLD, "3", 2, 1, 1, 1),
        (g, 60, F.MARK_RESUME, None, m, 0, 0, 0),
        (g, 62, F.MARK_RAISE, "E", 0, 0, 0, 0),
        (g, 70, F.MARK_SUSPEND, "4", 0, 0, 0, 0),
        (7, 80, F.MARK_SUSPEND, "x", 0, 0, 0, 0),
    ]


KILLED_MIDWAY = """
import os, signal, sys, time
from flowtrace.ftr.reader import load  # (flowtrace's code and the stdlib's are not recorded)

def flushed():
    # in a run (no recorded call): until a flush has written this run's resume (a fixed sleep
    # of 0.4 s saw no flush at all under load); at most 30 s, then the test says what is missing
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        gen = [c for c in load(sys.argv[1]).calls if c.qualname == "numbers"]
        if gen and gen[0].marks and gen[0].marks[-1].kind == "resume" and sum(m.suspensions for m in gen[0].marks) == 500:
            return
        time.sleep(0.05)

def numbers():
    i = 0
    while True:
        if i == 500:
            flushed()
            os.kill(os.getpid(), signal.SIGKILL)
        yield i
        i += 1

def main():
    for v in numbers():
        pass

main()
"""


def test_open_fold_and_running_resume_reach_the_file_before_a_kill(recorder_name, tmp_path):
    """kill -9 while a generator runs: its fold of the runs so far and the resume of the run in
    progress were flushed, so the file says it was resumed 499 times quietly, suspended 500
    times and is running now -- what a live view shows within a flush interval."""
    script = tmp_path / "prog.py"
    script.write_text(KILLED_MIDWAY)
    out = tmp_path / "k.ftr"
    env = {**os.environ, "FLOWTRACE_RECORDER": recorder_name}
    proc = subprocess.run([sys.executable, "-m", "flowtrace", "run", "--flush-interval", "0.05", "-o", str(out),
                           str(script), str(out)], env=env, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    trace = load(str(out))
    assert trace.status == "unfinished"
    gen = next(c for c in trace.calls if c.qualname == "numbers")
    assert gen.end == "unfinished" and gen.end_ns is None
    k = kinds(trace, gen.marks)
    # (a flush during the 500 yields splits the fold there: that one run is written exactly)
    assert k[0] == "suspend" and k[-1] == "resume<main" and "fold<main*" in k[1]
    assert set(k[1:-1]) <= {"resume<main", "suspend"} | {x for x in k if x.startswith("fold<main*")}
    assert sum(m.suspensions for m in gen.marks) == 500
    data = TraceData("t")
    data.feed(ChunkReader(str(out)).poll())
    assert int(data.col("nsusp")[gen.id]) == 500
