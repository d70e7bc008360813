"""The loading pipeline without Textual: the update policy as a pure decision, and the loop
(source -> policy -> index) publishing snapshots to a plain callback."""

from __future__ import annotations

import pytest

from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.model import build_index
from flowtrace_tui.model import pipeline as pipeline_mod
from flowtrace_tui.model.empty import META_CUT
from flowtrace_tui.model.live import PollTimer
from flowtrace_tui.model.pipeline import Finished, GrowFailed, Pipeline, Progress, Snapshot
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.model.update_policy import ReadState, UpdatePolicy

from trace_builder import TraceBuilder

from .apps import until


def state(**kw) -> ReadState:
    base = dict(calls=100, indexed_calls=50, changed=True, done=False, live=False, more=True,
                since_index=0.0, index_cost=0.0, bytes_read=10, file_size=1000)
    base.update(kw)
    return ReadState(**base)


@pytest.mark.parametrize("kw, due", [
    (dict(indexed_calls=-1), True),  # the first screen
    (dict(done=True), True),  # the final index
    (dict(changed=False, done=True), False),  # nothing new: the index on screen is right
    (dict(calls=0, indexed_calls=-1), False),  # nothing to show yet
    (dict(calls=400, since_index=2.0), True),  # grown 8-fold, a second later, early in the file
    (dict(calls=399, since_index=2.0), False),  # not grown enough
    (dict(calls=400, since_index=0.5), False),  # too soon
    (dict(calls=400, since_index=2.0, bytes_read=400), False),  # the final index is near
])
def test_loading_a_file(kw, due):
    assert UpdatePolicy().due(state(**kw)) is due


@pytest.mark.parametrize("kw, due", [
    (dict(since_index=0.06, more=False), True),  # caught up, half an interval later
    (dict(since_index=0.04, more=False), False),  # too soon after the last
    (dict(since_index=0.06, more=False, index_cost=0.05), False),  # not more often than twice its cost
    (dict(since_index=0.2, more=True), False),  # behind the file: catch up first ...
    (dict(since_index=0.31, more=True), True),  # ... but not for long
])
def test_following_a_live_file(kw, due):
    assert UpdatePolicy(poll_interval=0.1).due(state(live=True, **kw)) is due


def source_of(data: bytes) -> TraceSource:
    return TraceSource(ChunkReader.from_bytes(data, name="t.ftr"), len(data))


def program(calls: int = 200) -> TraceBuilder:
    b = TraceBuilder()
    m = b.enter("main")
    for i in range(calls):
        b.leave(b.enter("work", args=f"i={i}"), "r")
        if i % 20 == 19:
            b.flush()
    b.leave(m)
    return b


def run(p: Pipeline) -> list:
    events: list = []
    p.run(lambda: False, events.append)
    return events


def test_a_file_is_read_to_its_end_and_the_last_snapshot_is_final():
    src = source_of(program().data())
    events = run(Pipeline(src))
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert events[-1] == Finished(False) and any(isinstance(e, Progress) for e in events)
    assert snaps[-1].final and not any(s.final for s in snaps[:-1])
    assert snaps[-1].index.n == src.data.n == 201


def test_a_file_cut_in_its_metadata_finishes_with_the_reason():
    data = program().data()
    events = run(Pipeline(source_of(data[:30])))
    assert isinstance(events[-1], Finished) and events[-1].error == META_CUT


def test_a_grouping_asked_by_the_ui_applies_to_the_next_indexes():
    b = TraceBuilder()
    b.leave(b.enter("a", thread=1), "r")
    b.leave(b.enter("b", thread=2), "r")
    p = Pipeline(source_of(b.data()))
    p.set_grouped(False)
    snaps = [e for e in run(p) if isinstance(e, Snapshot)]
    assert not snaps[-1].index.grouped and not snaps[-1].index.groups


def grow_fails(*_a, **_k):
    raise RuntimeError("boom")


def live_pipeline(strict: bool) -> tuple[Pipeline, list]:
    """A live pipeline fed one flush at a time, whose grow_index fails."""
    b = program(60)
    p = Pipeline(source_of(b.data()), poll_interval=0.01, strict=strict,
                 # grown to its end, never built whole at the end however far behind (build_whole)
                 policy=UpdatePolicy(poll_interval=0.01, live_min_update=0, live_behind_update=0, grow_per_build=0))
    p.source.reader.read_size = 16  # a chunk or two per step: several indexes
    events: list = []
    return p, events


def test_a_failed_index_update_is_counted_and_built_whole(monkeypatch):
    monkeypatch.setattr(pipeline_mod, "grow_index", grow_fails)
    p, events = live_pipeline(strict=False)
    p.run(lambda: False, events.append)
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert p.grow_failures > 0 and p.last_failure == "RuntimeError: boom"
    got = snaps[-1].index
    want = build_index(p.source.data)
    assert (got.n, got.order.tolist()) == (want.n, want.order.tolist())  # the whole build is right
    assert events[-1] == Finished(False)


def test_a_failed_index_update_ends_loading_in_strict_mode(monkeypatch):
    monkeypatch.setattr(pipeline_mod, "grow_index", grow_fails)
    p, events = live_pipeline(strict=True)
    p.run(lambda: False, events.append)
    assert p.grow_failures == 1
    assert events[-1] == Finished(False, f"{GrowFailed.__name__}: grow_index failed: RuntimeError: boom")


def test_the_status_line_shows_failed_index_updates(monkeypatch):
    import asyncio

    from flowtrace_tui.app import FlowtraceApp

    monkeypatch.setattr(pipeline_mod, "grow_index", grow_fails)
    p, _ = live_pipeline(strict=False)

    async def go() -> list[str]:
        app = FlowtraceApp(p.source, poll_interval=0.01, pipeline=p)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: not app.loading)
            return app.status_parts()

    parts = asyncio.run(go())
    assert p.grow_failures > 0
    assert f"{p.grow_failures} index update" in " ".join(parts) and "failed (rebuilt)" in " ".join(parts)


@pytest.mark.parametrize("got_data, since_read, write_age, wait", [
    (True, 0.02, 0.03, 0.075),  # nothing written since that read: just after the next flush
    (True, 0.03, 0.01, PollTimer.AFTER_FLUSH),  # written since the read began: read it now
    (True, 0.03, None, 0.07),  # unknown: one interval after the last read
    (True, 0.15, None, 0.005),  # ... which is past: at once
    (False, 0.01, 0.5, PollTimer.RETRY),  # found nothing: soon again (a flush is due) ...
])
def test_when_the_live_view_reads_next(got_data, since_read, write_age, wait):
    assert PollTimer(0.1).wait(got_data, since_read, write_age) == pytest.approx(wait)


def test_reads_finding_nothing_fall_back_to_one_per_interval():
    timer = PollTimer(0.1)
    waits = [timer.wait(False, 0.001, 0.5) for _ in range(PollTimer.QUICK_RETRIES + 1)]
    assert waits[:-1] == [PollTimer.RETRY] * PollTimer.QUICK_RETRIES
    assert waits[-1] == pytest.approx(0.099)
    assert timer.wait(True, 0.001, 0.5) == pytest.approx(0.099)  # data again: the retries reset


def test_a_growing_session_leaves_the_heaviest_children_to_the_first_H(tmp_path):
    """GIVEN a session still being recorded, WHEN the pipeline follows it, THEN its snapshots
    come without the heaviest children (only `H` uses them; keeping them up to date costs each
    update); once `H` made them on an index, the indexes grown from it keep them; and the
    snapshot of the finished session has them (H at once)."""
    import os
    import threading
    import time

    from trace_builder import Feeder, meta_for

    b = TraceBuilder(meta=meta_for(os.getpid()))
    m = b.enter("main")
    b.leave(b.enter("a"))
    b.flush()
    path = str(tmp_path / "live.ftr")
    feed = Feeder(b, path)
    p = Pipeline(TraceSource.open(path), poll_interval=0.01,
                 policy=UpdatePolicy(poll_interval=0.01, live_min_update=0))
    snaps: list[Snapshot] = []
    stop = threading.Event()
    loop = threading.Thread(target=p.run, args=(stop.is_set, lambda e: isinstance(e, Snapshot) and snaps.append(e)))
    loop.start()

    def wait_for(cond) -> None:
        deadline = time.monotonic() + 20
        while not cond():
            assert time.monotonic() < deadline, [s.index.n for s in snaps]
            time.sleep(0.005)

    try:
        wait_for(lambda: snaps and snaps[-1].index.n == 2)
        first = snaps[-1].index
        assert first.heavy_if_known is None
        first.heavy  # noqa: B018  (H pressed on it)
        feed.step_calls(["b", "c"])
        wait_for(lambda: snaps[-1].index.n == 4)
        grown = snaps[-1].index
        assert grown.heavy_if_known is not None
        assert grown.heavy_if_known.tolist() == build_index(p.source.data, 4).heavy.tolist()
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        loop.join(20)
        assert not loop.is_alive() and snaps[-1].index.heavy_if_known is not None
    finally:
        stop.set()
        loop.join(20)


def test_a_followed_session_has_its_call_columns_sized_at_once(tmp_path):
    """GIVEN a session being recorded, WHEN the pipeline follows it, THEN its call columns are
    sized for LIVE_CALLS calls from the start (growing them later copies every column while the
    reads wait: ~0.9 s of CPU at 16.8 M calls), and they still hold the calls read; a file read
    once keeps the capacity it needs."""
    import os

    from flowtrace_tui.model.pipeline import LIVE_CALLS, live_calls

    from trace_builder import Feeder, meta_for

    b = TraceBuilder(meta=meta_for(os.getpid()))
    m = b.enter("main")
    b.leave(b.enter("a"))
    b.flush()
    path = str(tmp_path / "live.ftr")
    Feeder(b, path)
    p = Pipeline(TraceSource.open(path), poll_interval=0.01, policy=UpdatePolicy(poll_interval=0.01))
    p.run(lambda: bool(p.source.data.n >= 2 and p.source.data._calls.cap), lambda e: None)
    data = p.source.data
    assert data._calls.cap == live_calls() <= LIVE_CALLS and data.n == 2
    assert [data.func_name(int(f)) for f in data.col("func")[1:]] == ["main", "a"]
    read_once = Pipeline(source_of(program(10).data()))
    run(read_once)
    assert read_once.source.data._calls.cap < LIVE_CALLS


def test_the_columns_of_a_followed_session_take_exactly_the_calls_expected():
    """GIVEN call columns sized first from a file's size (any capacity), WHEN a followed
    session expects LIVE_CALLS calls, THEN they hold exactly that many rows, not the next
    fourfold step of the first capacity (up to 4 times as much address space: under the
    benchmarks' 6 GB limit the explorer failed at once, 'Unable to allocate 866. MiB')."""
    from flowtrace_tui.model.loader import TraceData
    from flowtrace_tui.model.pipeline import LIVE_CALLS

    for first in (1024, 1_719_361, LIVE_CALLS // 4 + 1):
        data = TraceData("t", capacity=first)
        data.expect_calls(LIVE_CALLS)
        assert data._calls.cap == LIVE_CALLS and all(len(a) == LIVE_CALLS for a in data._calls.arrays.values())


def test_call_columns_that_cannot_grow_end_loading_with_what_it_means(monkeypatch):
    """GIVEN a session whose call columns cannot grow (a followed busy program outgrew the
    memory the explorer can get: under the benchmarks' 6 GB limit at 2^26 calls, numpy said
    'Unable to allocate 1.00 GiB for an array with shape (268435456,) and data type uint32'),
    WHEN the reads need room for more calls, THEN loading ends with a message that says so in
    the session's terms: the calls read and what their columns take."""
    from flowtrace_tui.model import loader

    reserve = loader._Growable.reserve

    def tight(self, extra, exact=False):
        if self.size + extra > 1001 and "parent" in self.arrays:  # (the call columns: room for 1 000 calls)
            raise MemoryError("Unable to allocate 1.00 GiB for an array with shape (268435456,) and data type uint32")
        return reserve(self, extra, exact)

    src = source_of(program(3000).data())
    monkeypatch.setattr(loader._Growable, "reserve", tight)
    events = run(Pipeline(src))
    n, cap = src.data.n, src.data._calls.cap
    assert 900 < n <= 1000 and isinstance(events[-1], Finished)
    assert events[-1].error == (f"MemoryError: the session outgrew the memory the explorer could get at "
                                f"{n:,} calls read (its call columns take 54 bytes a call, "
                                f"{cap * 54 / 1e9:.1f} GB so far, and growing them takes more): what was read stays shown")


@pytest.mark.parametrize("limit, calls", [
    (None, None),  # as the process runs (no limit: LIVE_CALLS)
    (1 << 62, 1 << 26),  # a limit far above: LIVE_CALLS
    (6_000_000_000, 44_444_444),  # the benchmarks' 6 GB: two fifths of it (54 bytes a call)
    (1_000_000_000, 7_407_407),
    (100_000_000, 1 << 20),  # the least
])
def test_a_followed_sessions_call_columns_take_a_share_of_the_memory_it_may_use(limit, calls):
    """The call columns of a followed session take at most two fifths of the address space the
    explorer may use (the 6 GB limit: 44 M calls, not 2^26 = 67 M, whose 3.6 GB with the texts
    and the whole index read before the tail began (tail.py) came within 0.1 GB of the limit,
    live_screen.py's peak address space)."""
    import resource

    from flowtrace_tui.model.pipeline import LIVE_CALLS, live_calls

    if calls is None:
        now = resource.getrlimit(resource.RLIMIT_AS)[0]
        calls = LIVE_CALLS if now == resource.RLIM_INFINITY else live_calls(now)
    assert live_calls(limit) == calls
