"""Folded resumes (FORMAT 1.1, a `fold` MARK row for n quiet runs of a generator) give the
explorer exactly what the same runs written one resume and one suspend mark each give: the
suspension count, the running, self and total times of every call."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.reader import load as load_trace
from flowtrace_tui.model import TraceData, build_index

from trace_builder import TraceBuilder


def load(data: bytes) -> TraceData:
    d = TraceData("t")
    d.feed(ChunkReader.from_bytes(data).poll())
    return d


def consumer_session(seed: int, folded: bool) -> bytes:
    """main runs generator g (first run, then batches of quiet runs by main with main's own
    calls between them, some runs that call `work` or are thrown into), the same events either
    written one mark per resume and suspend or each batch of quiet runs as one fold row."""
    rng = random.Random(seed)
    b = TraceBuilder()
    now = 0

    def tick(lo: int = 1, hi: int = 9) -> int:
        nonlocal now
        now += rng.randint(lo, hi)
        return now

    m = b.enter("main", t=tick())
    g = b.enter("g", parent=m, kind="generator", t=tick())
    b.mark(g, F.MARK_SUSPEND, "0", t=tick())
    for _ in range(rng.randint(1, 6)):
        k = rng.randint(1, 5)
        runs = []
        for _i in range(k):
            r = tick()
            s = tick()
            runs.append((r, s))
            if rng.random() < 0.5 and folded:
                b.flush()  # a fold row may sit in any chunk
            h = b.enter("helper", parent=m, t=tick())  # main's own call while g is suspended
            b.leave(h, "None", t=tick())
        if folded:
            r1 = runs[0][0]
            b.mark(g, F.MARK_FOLD, "v", m, t=r1, n=k, run=sum(s - r for r, s in runs), span=runs[-1][1] - r1)
        else:
            for r, s in runs:
                b.mark(g, F.MARK_RESUME, None, m, t=r)
                b.mark(g, F.MARK_SUSPEND, "v", t=s)
        if rng.random() < 0.5:  # a run that made a call: never folded
            b.mark(g, F.MARK_RESUME if rng.random() < 0.7 else F.MARK_THROW, None, m, t=tick())
            w = b.enter("work", parent=g, t=tick())
            b.leave(w, "1", t=tick())
            b.mark(g, F.MARK_SUSPEND, "w", t=tick())
    if rng.random() < 0.7:
        b.mark(g, F.MARK_RESUME, None, m, t=tick())
        b.leave(g, "None", t=tick())
    b.leave(m, "None", t=tick())
    return b.data(finish=rng.random() < 0.7)


# The folded session's mark rows sit at other times than the unfolded one's; every number the
# explorer shows must still be the same.
@pytest.mark.parametrize("seed", range(30))
def test_fold_rows_time_and_count_like_single_marks(seed):
    old = bytearray(consumer_session(seed, False))  # as a 1.0 writer wrote it
    struct.pack_into("<H", old, 10, 0)
    folded, single = load(consumer_session(seed, True)), load(bytes(old))
    assert np.array_equal(folded.col("nsusp"), single.col("nsusp"))
    assert folded.n_marks < single.n_marks or single.n_marks == folded.n_marks
    a, b = build_index(folded), build_index(single)
    for f in ("dur", "run", "self_time", "order", "depth"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


def test_reader_reads_a_fold_of_one_run_as_its_two_marks():
    b = TraceBuilder()
    m = b.enter("main", t=0)
    g = b.enter("g", parent=m, kind="generator", t=10)
    b.mark(g, F.MARK_SUSPEND, "0", t=20)
    b.fold(g, 1, 5, 5, by=m, value="1", t=30)
    b.fold(g, 3, 12, 40, by=m, value="2", t=50)
    b.leave(g, "None", t=100)
    b.leave(m, "None", t=110)
    trace = load_trace(b.data())
    marks = [(x.kind, x.t_ns, x.text, x.other, x.count, x.run_ns, x.end_ns) for x in trace.call(g).marks]
    assert marks == [
        ("suspend", 20, "0", None, 1, 0, None),
        ("resume", 30, None, m, 1, 0, None),
        ("suspend", 35, "1", None, 1, 0, None),
        ("fold", 50, "2", m, 3, 12, 90),
    ]
    assert sum(x.suspensions for x in trace.call(g).marks) == 5
    assert load(b.data()).col("nsusp")[g] == 5


def test_reader_refuses_a_fold_that_runs_longer_than_it_lasts():
    b = TraceBuilder()
    g = b.enter("g", kind="generator", t=0)
    b.mark(g, F.MARK_SUSPEND, t=5)
    b.fold(g, 2, 50, 10, t=10)
    trace = load_trace(b.data())
    assert trace.status.startswith("damaged") and "fold mark of call 1 has 2 runs of 50 ns in 10 ns" in trace.problem
