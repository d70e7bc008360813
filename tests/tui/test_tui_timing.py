"""Running time of suspended generators/coroutines (model/timing.py) and what the index does
with it: self time and the hot path use running time, lifetime stays in `dur`. Exact values on
small acted-out traces."""

from __future__ import annotations

import numpy as np

from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.model import TraceData, build_index
from flowtrace_tui.model.timing import running_time, suspended_time

from trace_builder import TraceBuilder, sample_program


def load(data: bytes) -> TraceData:
    d = TraceData("t")
    d.feed(ChunkReader.from_bytes(data).poll())
    return d


def test_generator_suspended_twice():
    # sample_program's `numbers` (id 7): runs 170..180, suspended 180..210, runs 210..240
    # (helper 220..230 inside), suspended 240..270, runs 270..280.
    d = load(sample_program().data())
    ix = build_index(d)
    assert ix.dur[7] == 110 and ix.run[7] == 50
    assert ix.self_time[7] == 40  # 50 - helper 10
    # main: 300 - (parse 30 + fib 100 + numbers' running 50 + consume 10 + consume 10 + check 10)
    assert ix.self_time[1] == 90
    assert ix.run[1:12].tolist() == [300, 30, 10, 100, 30, 10, 50, 10, 10, 10, 10]
    assert ix.dur[1:12].tolist() == [300, 30, 10, 100, 30, 10, 110, 10, 10, 10, 10]
    susp = suspended_time(d, d.n, d.col("t0") + ix.dur[: d.n + 1])
    assert susp is not None and susp.tolist() == [0, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 0]


def test_coroutine_awaiting():
    b = TraceBuilder()
    r = b.enter("run", t=0)
    o = b.enter("outer", t=100, kind="coroutine")
    i = b.enter("inner", t=110, kind="coroutine")
    w = b.enter("work", t=112)
    b.leave(w, t=118)
    b.mark(i, F.MARK_SUSPEND, t=120)
    b.mark(o, F.MARK_SUSPEND, t=121)
    p = b.enter("poll", parent=r, t=130)  # the loop's recorded work while both wait
    b.leave(p, t=140)
    b.mark(o, F.MARK_RESUME, other=r, t=150)
    b.mark(i, F.MARK_RESUME, other=o, t=151)
    b.leave(i, "1", t=160)
    b.leave(o, "1", t=170)
    b.leave(r, t=200)
    ix = build_index(load(b.data()))
    # lifetimes: outer 70, inner 50; suspended: outer 121..150 (29), inner 120..151 (31)
    assert ix.dur[1:6].tolist() == [200, 70, 50, 6, 10]
    assert ix.run[1:6].tolist() == [200, 41, 19, 6, 10]
    # inner 19 - work 6; outer 41 - inner 19; run 200 - (outer 41 + poll 10)
    assert ix.self_time[1:6].tolist() == [149, 22, 13, 6, 10]


def test_task_tree_parent_self_time_not_zero():
    # main() runs the loop; two task coroutines (its children) are alive for most of main's
    # lifetime but run only briefly: their lifetimes overlap and add up to more than main's.
    b = TraceBuilder()
    m = b.enter("main", t=0)
    a = b.enter("fetch", parent=m, task=1, t=10, kind="coroutine", args="n=1")
    b.mark(a, F.MARK_SUSPEND, t=20)
    c = b.enter("fetch", parent=m, task=2, t=20, kind="coroutine", args="n=2")
    b.mark(c, F.MARK_SUSPEND, t=30)
    b.mark(a, F.MARK_RESUME, other=m, t=90)
    b.leave(a, "1", t=95)
    b.mark(c, F.MARK_RESUME, other=m, t=95)
    b.leave(c, "2", t=100)
    b.leave(m, t=110)
    b.task(1, "Task-1", root=a)
    b.task(2, "Task-2", root=c)
    ix = build_index(load(b.data()))
    assert ix.dur[1:4].tolist() == [110, 85, 80]
    assert ix.run[1:4].tolist() == [110, 15, 15]
    assert ix.self_time[1:4].tolist() == [80, 15, 15]  # was 0: 110 - (85 + 80) clipped


def test_suspended_until_the_end():
    # a generator left suspended: unfinished at the session's stop (t1 = 100); one that is
    # still open in a live session (no end): suspended until the latest time seen
    b = TraceBuilder()
    m = b.enter("main", t=0)
    g = b.enter("gen", t=10, kind="generator")
    b.mark(g, F.MARK_SUSPEND, t=20)
    h = b.enter("gen2", parent=m, t=30, kind="generator")
    b.mark(h, F.MARK_SUSPEND, t=40)
    b.leave(g, t=100, how=F.END_UNFINISHED)
    b.mark(m, F.MARK_RAISE, "E: x", t=150)  # not a suspension: ignored
    ix = build_index(load(b.data(finish=False)))
    assert ix.is_open(3) and ix.t_end == 150
    assert ix.dur[1:4].tolist() == [150, 90, 120]
    assert ix.run[1:4].tolist() == [150, 10, 10]
    assert ix.self_time[1] == 130


def test_no_suspension_running_is_lifetime():
    d = load(TraceBuilder().data())
    dur = np.array([0, 5], dtype=np.int64)
    assert running_time(d, 0, np.zeros(1, np.int64), dur) is dur
    b = TraceBuilder()
    x = b.enter("f", t=0)
    b.leave(x, t=10)
    ix = build_index(load(b.data()))
    assert ix.run is ix.dur


def _detail_text(ix, pos: int) -> str:
    import io

    from rich.console import Console

    from flowtrace_tui.model.call_detail import detail_of
    from flowtrace_tui.widgets.detail_pane import render_detail

    console = Console(width=100, file=io.StringIO(), color_system=None, record=True)
    console.print(render_detail(detail_of(ix, pos)))
    return console.export_text()


def test_detail_pane_lifetime_and_running():
    ix = build_index(load(sample_program().data()))
    gen = _detail_text(ix, int(ix.pos_of[7]))  # numbers: suspended twice
    assert "lifetime    110 ns (first run to end)" in gen
    assert "running     50 ns (lifetime minus 60 ns suspended)" in gen
    assert "self        40 ns" in gen and "total" not in gen
    plain = _detail_text(ix, int(ix.pos_of[1]))  # main: never suspended
    assert "total       300 ns" in plain and "self        90 ns" in plain
    assert "lifetime" not in plain and "running" not in plain
