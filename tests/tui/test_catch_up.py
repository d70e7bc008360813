"""The whole index's catch-up steps pause while a busy program outpaces them (model/catch_up.py):
the tracker's decisions on a given clock, the pipeline taking no step while paused, and the
status line saying so."""

from __future__ import annotations

import dataclasses
import threading

from flowtrace_tui.model import build_index
from flowtrace_tui.model.catch_up import CatchUpPace
from flowtrace_tui.model.pipeline import Pipeline, Snapshot
from flowtrace_tui.model.loader import FeedResult
from flowtrace_tui.model.source import StepResult, TraceSource
from flowtrace_tui.app import FlowtraceApp

from .apps import screen_lines, sync, until
from .test_newest import far_behind
from .test_window import busy_session, count_growths, follow, shows, wait_for, windowing_policy


def test_steps_that_lose_ground_over_a_span_pause_and_keep_the_rate_they_reached():
    """GIVEN windows shown (the whole index behind), WHEN over a span of 2 s 4 M calls arrive
    and the steps index 1 M, THEN the steps pause, having indexed 0.5 M calls a second; a
    shorter stretch decides nothing."""
    pace = CatchUpPace(span=2.0, probe_after=8.0)
    pace.note(10.0, 1_000_000, 500_000, behind=True)
    pace.note(11.0, 3_000_000, 1_000_000, behind=True)  # (1 s: not a span yet)
    assert not pace.paused
    pace.note(12.0, 5_000_000, 1_500_000, behind=True)
    assert pace.paused and pace.rate == 500_000


def test_steps_that_gain_do_not_pause():
    pace = CatchUpPace(span=2.0)
    pace.note(0.0, 1_000_000, 0, behind=True)
    pace.note(2.0, 1_500_000, 800_000, behind=True)  # 0.5 M arrived, 0.8 M indexed
    assert not pace.paused


def test_paused_steps_resume_once_calls_arrive_more_slowly_than_they_indexed():
    pace = CatchUpPace(span=2.0, probe_after=100.0)
    pace.note(0.0, 0, 0, behind=True)
    pace.note(2.0, 4_000_000, 1_000_000, behind=True)  # paused at 0.5 M a second
    pace.note(4.0, 6_000_000, 1_000_000, behind=True)  # 1 M a second arrive: still paused
    assert pace.paused
    pace.note(6.0, 6_800_000, 1_000_000, behind=True)  # 0.4 M a second: the steps would gain
    assert not pace.paused


def test_paused_steps_are_tried_again_after_a_while_and_pause_again_if_they_still_lose():
    """A rate measured in a moment of heavy load must not pause the steps for good."""
    pace = CatchUpPace(span=2.0, probe_after=8.0)
    pace.note(0.0, 0, 0, behind=True)
    pace.note(2.0, 4_000_000, 0, behind=True)  # paused (indexed nothing: rate 0)
    for t in (4.0, 6.0, 8.0):
        pace.note(t, 2_000_000 * t, 0, behind=True)
        assert pace.paused
    pace.note(10.0, 20_000_000, 0, behind=True)  # 8 s paused: a probe
    assert not pace.paused
    pace.note(12.0, 24_000_000, 2_000_000, behind=True)  # the probe lost ground too
    assert pace.paused and pace.rate == 1_000_000


def test_an_index_level_with_the_session_ends_the_pause():
    pace = CatchUpPace(span=2.0)
    pace.note(0.0, 0, 0, behind=True)
    pace.note(2.0, 4_000_000, 0, behind=True)
    assert pace.paused
    pace.note(3.0, 4_000_000, 4_000_000, behind=False)
    assert not pace.paused
    pace.note(4.0, 8_000_000, 4_000_000, behind=True)  # a new measure starts here
    pace.note(5.0, 12_000_000, 4_000_000, behind=True)
    assert not pace.paused


def paused(policy):
    """`policy` with a pace that never decides by itself (the tests pause it)."""
    return dataclasses.replace(policy, catch_up=60.0, catch_up_slice=1e-9, first_s_per_call=1.0,
                               speed_sample=10**9, catch_up_span=1e9)


def test_a_paused_pipeline_shows_windows_and_takes_no_catch_up_step(tmp_path, monkeypatch):
    """GIVEN a live session whose index is behind and whose catch-up steps are paused, WHEN
    calls arrive, THEN windows of the newest calls are shown and the whole index does not
    grow; WHEN the session ends, the whole index is made as before."""
    grown = count_growths(monkeypatch)
    b, m, path, feed = busy_session(tmp_path)
    p, snaps, loop, stop = follow(path, paused(windowing_policy(0.01)))
    p.pace.paused = True
    try:
        wait_for(lambda: snaps and snaps[-1].index.n == 2, lambda: [s.index.n for s in snaps])
        for k in range(3):
            feed.step_calls([f"a{k}_{i}" for i in range(10)])
            wait_for(lambda: shows(snaps[-1]) == 12 + 10 * k, lambda: [shows(s) for s in snaps])
        assert grown == [] and all(s.index.n == 2 for s in snaps if s.index.data.window is None)
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        loop.join(30)
        last, want = snaps[-1].index, build_index(p.source.data)
        assert last.data.window is None and snaps[-1].final
        assert (last.n, last.order.tolist(), last.dur.tolist()) == (want.n, want.order.tolist(), want.dur.tolist())
    finally:
        stop.set()
        loop.join(30)


def test_a_paused_pipeline_reads_on_only_once_the_screen_has_drawn_the_window(tmp_path, monkeypatch):
    """GIVEN a screen following a live session whose index is behind, its catch-up steps
    paused, WHEN a window of new calls is published (the reads level with the file), THEN the
    next read waits for the screen to draw that window first, as a step did (the reads sharing
    the GIL with the screen's update doubled it, and the windows came half as often: the live
    view's median age 52-68 -> 77-115 ms at 340a5b8)."""
    grown = count_growths(monkeypatch)
    b, m, path, feed = busy_session(tmp_path)
    p = Pipeline(TraceSource.open(path), poll_interval=0.01, policy=paused(windowing_policy(0.01)))
    p.pace.paused = True
    events: list[tuple[str, int]] = []
    step, wait = p.source.step, p._drawn.wait

    def reading():
        got = step()
        events.append(("read", p.source.data.n))
        return got

    def waiting(timeout=None):
        events.append(("wait", shows(Snapshot(p._drawing, False))))  # (the snapshot it waits for)
        return wait(timeout)

    def published(e) -> None:  # the screen: draws each snapshot at once
        if isinstance(e, Snapshot):
            events.append(("shown", shows(e)))
            p.drawn(e.index)

    p.source.step, p._drawn.wait = reading, waiting
    stop = threading.Event()
    loop = threading.Thread(target=p.run, args=(stop.is_set, published), kwargs=dict(screen=True))
    loop.start()
    try:
        wait_for(lambda: ("shown", 2) in events, lambda: events)
        feed.step_calls([f"a{i}" for i in range(30)])
        wait_for(lambda: ("shown", 32) in events, lambda: events)
        feed.step_calls([f"b{i}" for i in range(10)])
        wait_for(lambda: ("shown", 42) in events, lambda: events)
        stop.set()
        loop.join(30)
        for n in (32, 42):
            after = events[events.index(("shown", n)) + 1:]
            assert after[0] == ("wait", n), events  # before any read
        assert grown == []  # (no step: paused throughout)
    finally:
        stop.set()
        loop.join(30)


@sync
async def test_the_status_line_says_the_catch_up_is_paused(tmp_path):
    """GIVEN the explorer following a session whose index is behind, WHEN its catch-up steps
    are paused, THEN the status line says the earlier calls' indexing is paused and why."""
    b, m, path, feed = busy_session(tmp_path)
    src = TraceSource.open(path)
    policy = paused(windowing_policy(0.02))
    app = FlowtraceApp(src, poll_interval=0.02, pipeline=Pipeline(src, poll_interval=0.02, policy=policy))
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        app.pipeline.pace.paused = True
        feed.step_calls([f"early{i}" for i in range(20)] + ["newest_one"])
        await until(pilot, lambda: app.index.data.window is not None and app.index.data.window.through == 23)
        assert "newest_one" in "\n".join(screen_lines(app))
        assert "newest 3 calls shown (indexing 19 earlier paused: calls arrive faster)" in " | ".join(app.status_parts())
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and app.index.data.window is None)
        assert "indexing" not in " | ".join(app.status_parts())
        await app.workers.wait_for_complete()


class SteppedSource(TraceSource):
    """A session whose reads in order take one step each time the test releases one (once
    `released` is set: `open` reads its first step)."""

    released: threading.Semaphore | None = None

    def step(self):
        if self.released is not None and not self.released.acquire(timeout=0.005):
            first = self.data.calls_read + 1
            return StepResult(FeedResult(first, first - 1, 0, 0), 0, True)
        return super().step()


@sync
async def test_a_finished_file_being_read_is_not_said_to_have_calls_arriving(tmp_path, monkeypatch):
    """GIVEN a finished session read from its start in steps, whose whole index is behind the
    reads and whose catch-up steps are paused (a big file on a loaded machine), THEN the status
    line says the earlier calls are being indexed -- not that "calls arrive faster": no call
    arrives in a finished file (said so while a finished 11.8 M-call session loaded) -- nor
    that it is followed, though a live process has the pid it was recorded by."""
    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    b.leave(m)
    b.data(finish=True)
    feed.sync()
    src = SteppedSource.open(path)
    src.released, src.step_bytes = threading.Semaphore(0), 1024  # (a chunk or two a step)
    policy = dataclasses.replace(paused(windowing_policy(0.02, calls=20)), live_behind_update=0.0)  # (every step shown)
    app = FlowtraceApp(src, poll_interval=0.02, pipeline=Pipeline(src, poll_interval=0.02, policy=policy))
    app.pipeline.pace.paused = True
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            for _ in range(200):  # step by step until the screen shows a window of the calls read
                if app.index is not None and app.index.data.window is not None:
                    break
                src.released.release()
                await pilot.pause(0.05)
            window = app.index.data.window
            assert window is not None and window.left_out and app.pipeline.pace.paused
            status = " | ".join(app.status_parts())
            assert f"(indexing {window.left_out:,} earlier)" in status and "arrive" not in status, status
            assert "following" not in status  # (its pid is this test's, alive: it is no live session)
            src.released.release(10**6)
            await until(pilot, lambda: src.data.finished and app.index.data.window is None, timeout=30)
            await app.workers.wait_for_complete()
    finally:
        src.released.release(10**6)
