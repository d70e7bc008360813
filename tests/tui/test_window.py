"""A window of the newest calls (model/window.py): what the live view shows while the index of
the whole session is far behind a busy program -- the window's calls exactly as the whole index
has them, the pipeline showing windows while it catches up in steps, and the explorer's screen
(the newest call selected, the status line saying what is left out, the cursor kept when the
whole index comes back)."""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import numpy as np
import pytest

from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model import build_index
from flowtrace_tui.model import pipeline as pipeline_module
from flowtrace_tui.model.grow import grow_index
from flowtrace_tui.model.pipeline import Pipeline, Snapshot
from flowtrace_tui.model.rows import TreeRows
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.model.update_policy import UpdatePolicy
from flowtrace_tui.model.window import window_data
from flowtrace_tui.screens.functions import FunctionsScreen

from trace_builder import Feeder, TraceBuilder, meta_for

from .apps import notices, screen_lines, source, sync, until


def busy_program(loops: int = 12) -> tuple[TraceBuilder, int]:
    """main -> work(i) -> leaf, and a generator that suspends and resumes inside one work call
    (its running time is less than its lifetime: MARK rows). main is left running."""
    b = TraceBuilder()
    m = b.enter("main")
    for i in range(loops):
        w = b.enter("work", args=f"i={i}")
        b.leave(b.enter("leaf"), "1")
        if i == loops - 3:
            g = b.enter("numbers", kind="generator")
            b.suspend(g, "0")
            b.leave(b.enter("consume"), "None")
            b.resume(g, w)
            b.leave(g, "None")
        b.leave(w, str(i))
    b.flush()
    return b, m


def loaded(b: TraceBuilder) -> TraceSource:
    src = source(b.data())
    while src.step().more:
        pass
    return src


@pytest.mark.parametrize("count", [1, 4, 9, 40])
def test_a_window_holds_its_calls_as_the_whole_index_does(count):
    """GIVEN a session, WHEN the newest `count` calls are taken out as a window, THEN it holds
    them and the calls they descend from (ancestors first), and its index gives each of its
    calls the same function, depth, lifetime, running time and parent as the whole index;
    the newest calls' self times too (their children are all in the window)."""
    data = loaded(busy_program()[0]).data
    whole = build_index(data)
    w = window_data(data, count)
    win, ix = w.window, build_index(w)
    first = max(1, data.n - count + 1)
    assert (win.first, win.through) == (first, data.n) and w.n == win.n_ancestors + data.n - first + 1
    ids = win.ids
    anc = ids[1 : win.n_ancestors + 1].tolist()
    assert anc == sorted(anc) and all(a < first for a in anc) and 1 in anc or first == 1  # main runs on
    assert win.local(ids[1:]).tolist() == list(range(1, w.n + 1))  # and back
    assert win.local(np.array([0, data.n + 1])).tolist() == [0, 0]
    left_out = [c for c in range(1, first) if c not in anc]
    assert win.local(np.array(left_out, dtype=np.int64)).tolist() == [0] * len(left_out)
    assert win.left_out == len(left_out)
    for i in range(1, w.n + 1):
        s = int(ids[i])
        assert data.func_name(int(w.col("func")[i])) == data.func_name(int(data.col("func")[s]))
        assert int(ix.depth[ix.pos_of[i]]) == int(whole.depth[whole.pos_of[s]])
        assert (int(ix.dur[i]), int(ix.run[i])) == (int(whole.dur[s]), int(whole.run[s]))
        assert int(ids[ix.parent[i]]) == int(whole.parent[s])
        if s >= first:
            assert int(ix.self_time[i]) == int(whole.self_time[s])
    # preorder: the window's calls in the whole index's order
    order = [int(ids[x]) for x in ix.order.tolist()]
    assert order == sorted(order, key=lambda c: int(whole.pos_of[c]))
    assert (data.col("nsusp")[ids] == w.col("nsusp")).all()


def test_a_window_of_several_threads_keeps_their_groups():
    """Calls of two threads: the window's index groups them by thread as the whole one does."""
    b = TraceBuilder()
    a = b.enter("serve", thread=1)
    c = b.enter("poll", thread=2)
    for i in range(6):
        b.leave(b.enter("handle", thread=1, args=f"r={i}"), "ok")
        b.leave(b.enter("tick", thread=2), "None")
    b.flush()
    data = loaded(b).data
    w = window_data(data, 4)
    ix = build_index(w)
    assert sorted(g.key for g in ix.groups) == sorted(g.key for g in build_index(data).groups)
    assert [int(w.window.ids[x]) for x in ix.order.tolist() if x <= w.n][:2] == [a, data.n - 3]
    assert c in w.window.ids.tolist()


def windowing_policy(poll: float, calls: int = 3) -> UpdatePolicy:
    """Windows at once: every update behind by more than `calls` calls shows the newest
    `calls`, and the whole index waits for the session's end (no catch-up steps: the machine's
    speed decides nothing in tests)."""
    return UpdatePolicy(poll_interval=poll, live_min_update=0, window_after=0.0, catch_up=0.0,
                        window_calls=calls, speed_sample=1)


def busy_session(tmp_path) -> tuple[TraceBuilder, int, str, Feeder]:
    """A live session's first flush, `main` open and one call done in it: (builder, main's
    call, path, feeder); each test feeds it more calls."""
    b = TraceBuilder(meta=meta_for(os.getpid()))
    m = b.enter("main")
    b.leave(b.enter("step0"))
    b.flush()
    path = str(tmp_path / "busy.ftr")
    return b, m, path, Feeder(b, path)


def windowing_app(path: str) -> FlowtraceApp:
    """The explorer following `path` with a policy that shows windows at once."""
    src = TraceSource.open(path)
    return FlowtraceApp(src, poll_interval=0.02, pipeline=Pipeline(src, poll_interval=0.02, policy=windowing_policy(0.02)))


def shows(s: Snapshot) -> int:
    """The session's newest call a snapshot holds."""
    win = s.index.data.window
    return win.through if win is not None else s.index.n


def follow(path: str, policy: UpdatePolicy) -> tuple[Pipeline, list[Snapshot], threading.Thread, threading.Event]:
    p = Pipeline(TraceSource.open(path), poll_interval=policy.poll_interval, policy=policy)
    snaps: list[Snapshot] = []
    stop = threading.Event()
    loop = threading.Thread(target=p.run, args=(stop.is_set, lambda e: isinstance(e, Snapshot) and snaps.append(e)))
    loop.start()
    return p, snaps, loop, stop


def count_growths(monkeypatch) -> list[int]:
    """The sizes the pipeline's whole index is grown to from now on (grow_index spied on)."""
    grown: list[int] = []

    def counting_grow(prev, data, n):
        grown.append(n)
        return grow_index(prev, data, n)

    monkeypatch.setattr(pipeline_module, "grow_index", counting_grow)
    return grown


def wait_for(cond, what) -> None:
    deadline = time.monotonic() + 30
    while not cond():
        assert time.monotonic() < deadline, what()
        time.sleep(0.005)


def test_the_pipeline_shows_windows_while_behind_and_the_whole_index_once_caught_up(tmp_path):
    """GIVEN a live session growing faster than the policy lets the index catch up, WHEN the
    pipeline follows it, THEN it publishes windows of the newest calls (each holding the
    session's newest call read), and once the session ends, the whole index, equal to a whole
    build."""
    b, m, path, feed = busy_session(tmp_path)
    p, snaps, loop, stop = follow(path, windowing_policy(0.01))
    try:
        wait_for(lambda: snaps and snaps[-1].index.n == 2, lambda: [s.index.n for s in snaps])
        for k in range(4):
            feed.step_calls([f"a{k}_{i}" for i in range(10)])
            wait_for(lambda: shows(snaps[-1]) == 12 + 10 * k, lambda: [shows(s) for s in snaps])
        windows = [s.index for s in snaps if s.index.data.window is not None]
        assert {ix.data.window.through for ix in windows} == {12, 22, 32, 42}
        assert all(s.index.n == 2 for s in snaps if s.index.data.window is None)  # no whole index since
        for ix in windows:
            win = ix.data.window
            assert win.through - win.first + 1 == 3 and win.ids[ix.n] == win.through
            assert ix.data.func_name(int(ix.data.col("func")[ix.n])).startswith("a")
            assert win.n_ancestors == 1 and win.ids[1] == m  # main, still running
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        loop.join(30)
        assert not loop.is_alive()
        last = snaps[-1].index
        want = build_index(p.source.data)
        assert last.data.window is None and snaps[-1].final
        assert (last.n, last.order.tolist(), last.dur.tolist()) == (want.n, want.order.tolist(), want.dur.tolist())
    finally:
        stop.set()
        loop.join(30)


def test_a_session_over_while_far_behind_ends_on_a_whole_build_not_a_growth(tmp_path, monkeypatch):
    """GIVEN a live session whose index is far behind (windows shown), WHEN the program ends,
    THEN a last window holding the session's end is shown first and the whole index is then
    built in one go, as opening the finished file would (growing it call by call costs about
    twice as much a call): no growth brings it up to date."""
    grown_to = count_growths(monkeypatch)
    b, m, path, feed = busy_session(tmp_path)
    p, snaps, loop, stop = follow(path, windowing_policy(0.01))
    try:
        wait_for(lambda: snaps and snaps[-1].index.n == 2, lambda: [s.index.n for s in snaps])
        feed.step_calls([f"a{i}" for i in range(30)])
        wait_for(lambda: shows(snaps[-1]) == 32, lambda: [shows(s) for s in snaps])
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        loop.join(30)
        assert not loop.is_alive()
        data = p.source.data
        assert data.finished and data.n == 32
        before, last = snaps[-2], snaps[-1]
        assert before.index.data.window is not None and before.index.data.window.through == 32
        want = build_index(data)
        assert last.final and last.index.data.window is None
        assert (last.index.n, last.index.order.tolist(), last.index.dur.tolist()) == (want.n, want.order.tolist(), want.dur.tolist())
        assert 32 not in grown_to  # (the index of 2 calls was not grown by the 30 behind)
    finally:
        stop.set()
        loop.join(30)


def test_a_window_goes_out_before_the_catch_up_step_which_yields_to_a_new_flush(tmp_path, monkeypatch):
    """GIVEN a live session whose index is behind (windows shown, the whole index catching up
    in slices), WHEN new calls arrive, THEN their window is published before the whole index
    takes its step (the step holds none of them); and WHEN the recorder flushes again during
    the step, the step ends after its slice and the newest calls are read and shown before the
    whole index grows any further."""
    events: list[tuple[str, int]] = []
    flushed = []

    def grow(prev, data, n):
        events.append(("grow", n))
        if not flushed:  # the first slice of the first step: the recorder flushes meanwhile
            flushed.append(n)
            feed.step_calls([f"b{i}" for i in range(10)])
        return grow_index(prev, data, n)

    monkeypatch.setattr(pipeline_module, "grow_index", grow)
    b, m, path, feed = busy_session(tmp_path)
    # steps that never run out of time, in slices of a window's 3 calls (speed never timed)
    policy = UpdatePolicy(poll_interval=0.01, live_min_update=0, window_after=0.0, catch_up=60.0,
                          catch_up_slice=1e-9, window_calls=3, speed_sample=10**9, first_s_per_call=1.0,
                          catch_up_span=1e9)  # (steps never paused by a loaded machine's pace: catch_up.py)
    p = Pipeline(TraceSource.open(path), poll_interval=0.01, policy=policy)
    stop = threading.Event()

    def published(e) -> None:
        if isinstance(e, Snapshot):
            events.append(("shown", shows(e)))

    loop = threading.Thread(target=p.run, args=(stop.is_set, published))
    loop.start()
    try:
        wait_for(lambda: ("shown", 2) in events, lambda: events)
        feed.step_calls([f"a{i}" for i in range(30)])
        wait_for(lambda: ("shown", 42) in events, lambda: events)
        stop.set()
        loop.join(30)
        first = events.index(("shown", 32))
        assert events[first + 1] == ("grow", 5)  # the window first, then a slice of the step
        assert flushed == [5]
        after = events[first + 2:]
        assert after[0] == ("shown", 42)  # the step ended at the flush: the new calls shown first
        assert all(kind == "grow" or n == 42 for kind, n in after[1:]), events  # (then the step, maybe level)
    finally:
        stop.set()
        loop.join(30)


def test_a_catch_up_step_waits_for_the_screen_to_draw_the_window_first(tmp_path, monkeypatch):
    """GIVEN a screen following a live session whose index is behind, WHEN a window is
    published, THEN the whole index's catch-up step waits until the screen says it has drawn
    it (the step is background work; sharing the GIL with it slowed the screen's update) --
    and the screen's word for the snapshot before, coming late, does not count for it."""
    events: list[tuple[str, int, float]] = []
    before: list = []  # the snapshots published so far

    def grow(prev, data, n):
        events.append(("grow", n, time.monotonic()))
        return grow_index(prev, data, n)

    monkeypatch.setattr(pipeline_module, "grow_index", grow)
    b, m, path, feed = busy_session(tmp_path)
    policy = UpdatePolicy(poll_interval=0.01, live_min_update=0, window_after=0.0, catch_up=60.0,
                          catch_up_slice=1e-9, window_calls=3, speed_sample=10**9, first_s_per_call=1.0,
                          draw_wait=30.0, catch_up_span=1e9)
    p = Pipeline(TraceSource.open(path), poll_interval=0.01, policy=policy)
    stop = threading.Event()

    def published(e) -> None:  # the screen: draws each snapshot in 0.3 s
        if isinstance(e, Snapshot):
            events.append(("shown", shows(e), time.monotonic()))
            if before:  # (as under load: the previous snapshot's redraw ends only now)
                p.drawn(before[-1].index)
            before.append(e)
            threading.Timer(0.3, p.drawn, args=(e.index,)).start()

    loop = threading.Thread(target=p.run, args=(stop.is_set, published), kwargs=dict(screen=True))
    loop.start()
    try:
        wait_for(lambda: any(e[:2] == ("shown", 2) for e in events), lambda: events)
        feed.step_calls([f"a{i}" for i in range(30)])
        wait_for(lambda: any(e[0] == "grow" for e in events), lambda: events)
        stop.set()
        loop.join(30)
        window = next(e for e in events if e[:2] == ("shown", 32))
        step = next(e for e in events if e[0] == "grow")
        assert step[1] == 5 and step[2] - window[2] >= 0.25
    finally:
        stop.set()
        loop.join(30)


@pytest.mark.parametrize("behind, calls, whole", [
    (500, 1_000, True),  # growing 500 calls costs 1 250 calls' worth of building: built whole
    (300, 1_000, False),  # 750: grown
    (0, 1_000, False),
])
def test_an_index_behind_at_the_end_is_built_whole_when_that_is_cheaper(behind, calls, whole):
    assert UpdatePolicy(poll_interval=0.1).build_whole(behind, calls) is whole


def test_the_view_is_carried_between_a_window_and_the_whole_index():
    """Expanded calls and the newest call are matched by their session ids, to a window and back."""
    data = loaded(busy_program()[0]).data
    whole = build_index(data)
    w = window_data(data, 5)
    rows = TreeRows(whole)
    rows.initial_expand()
    rows.reveal(int(whole.pos_of[data.n]))
    to_window = rows.carry_to(build_index(w))
    wix = to_window.index
    assert int(w.window.ids[wix.order[to_window.pos(len(to_window) - 1)]]) == data.n  # the newest call shows
    back = to_window.carry_to(whole)
    assert back.pos(len(back) - 1) == int(whole.pos_of[data.n])


@sync
async def test_the_explorer_shows_the_newest_calls_and_says_what_it_left_out(tmp_path):
    """GIVEN the explorer following a session whose index falls behind, THEN the screen shows
    the newest call selected and the status line says how many earlier calls are still being
    indexed; WHEN the user moves up, newer windows wait (the tree does not move under the
    cursor); WHEN the session ends, the whole tree is shown with the cursor on the same call."""
    b, m, path, feed = busy_session(tmp_path)
    app = windowing_app(path)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        feed.step_calls(["warm"])  # one call behind: the whole index
        await until(pilot, lambda: app.index.n == 3)
        feed.step_calls([f"early{i}" for i in range(20)] + ["newest_one"])
        await until(pilot, lambda: app.index.data.window is not None and app.index.data.window.through == 24)
        await until(pilot, lambda: app.tree.cursor_pos >= 0 and app.index.node(app.tree.cursor_pos) == app.index.n)
        text = "\n".join(screen_lines(app))
        assert "newest_one" in text and "early18" in text and "early17" not in text  # the window: its calls only
        assert "newest 3 calls shown (indexing 20 earlier)" in " | ".join(app.status_parts())
        await pilot.press("k")  # the user stops following, on early19 (session call 23)
        assert not app.live_view.follow.following
        assert int(app.index.data.window.ids[app.index.node(app.tree.cursor_pos)]) == 23
        feed.step_calls(["later"])  # a newer window is held: it would move the tree under the cursor
        await until(pilot, lambda: app.live_view.held is not None and app.live_view.held.index.data.window.through == 25)
        assert app.index.data.window.through == 24 and "+1 new" in " | ".join(app.status_parts())
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and app.index.data.window is None and app.index.n == 25)
        assert app.index.node(app.tree.cursor_pos) == 23  # the same call, in the whole index
        assert app.live_view.held is None
        assert "early0" in "\n".join(screen_lines(app)) and "indexing" not in " | ".join(app.status_parts())
        await app.workers.wait_for_complete()


@sync
async def test_a_search_and_the_functions_view_say_they_see_the_newest_calls_only(tmp_path):
    """GIVEN the explorer showing a window of the newest calls (the whole index is behind),
    WHEN the user searches, THEN the hit count on screen says it covers the newest calls only;
    WHEN the functions view opens, THEN its status line says so too; once the whole index is
    shown, neither says it."""
    b, m, path, feed = busy_session(tmp_path)
    app = windowing_app(path)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        feed.step_calls([f"early{i}" for i in range(20)] + ["newest_one"])
        await until(pilot, lambda: app.index.data.window is not None and app.index.data.window.through == 23)
        await pilot.press("slash", *"early", "enter")
        await until(pilot, lambda: not app.searching and len(app.hits) == 2)  # early18, early19: in the window
        await until(pilot, lambda: "in the newest 3 calls only" in "\n".join(screen_lines(app)))
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, FunctionsScreen) and app.screen.table is not None)
        await until(pilot, lambda: "newest 3 calls only" in "\n".join(screen_lines(app)))
        await pilot.press("v")
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and app.index.data.window is None)
        await until(pilot, lambda: not app.searching and len(app.hits) == 20)
        await until(pilot, lambda: "hit" in "\n".join(screen_lines(app)))
        assert "calls only" not in "\n".join(screen_lines(app))
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, FunctionsScreen) and app.screen.table is not None
                    and app.screen.table.index.data.window is None)
        await until(pilot, lambda: "23 calls" in "\n".join(screen_lines(app)))
        assert "calls only" not in "\n".join(screen_lines(app))
        await app.workers.wait_for_complete()


@sync
async def test_the_hot_path_says_it_sees_the_newest_calls_only(tmp_path):
    """GIVEN the explorer showing a window of the newest calls (the whole index is behind),
    WHEN the user follows the hot path (H), THEN the screen says it is the hot path of the
    newest calls only; once the whole index is shown, H says nothing of the kind."""
    b, m, path, feed = busy_session(tmp_path)
    app = windowing_app(path)
    async with app.run_test(size=(160, 30), notifications=True) as pilot:
        said = notices(app)  # (a toast leaves the screen after 4 s of wall clock: past them under load)
        await until(pilot, lambda: app.index is not None and not app.loading)
        feed.step_calls([f"early{i}" for i in range(20)] + ["newest_one"])
        await until(pilot, lambda: app.index.data.window is not None and app.index.data.window.through == 23)
        app.tree.move_to_pos(0)
        await pilot.press("H")
        await until(pilot, lambda: any("Hot path of the newest 3 calls only" in n for n in said))
        said.clear()
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and app.index.data.window is None)
        app.tree.move_to_pos(0)
        await pilot.press("H")
        await pilot.pause()
        assert app.tree.cursor_pos > 0  # (H went down the tree)
        assert not any("Hot path of" in n for n in said)
        await app.workers.wait_for_complete()


@pytest.mark.parametrize("behind, s_per_call, windowed", [
    (1_000_000, 0.5e-7, False),  # 0.05 s of work: the whole index is brought up to date
    (1_000_000, 3e-7, True),  # 0.3 s: a window, and a step of catching up
    (1_000_000, 1.5e-7, True),  # 0.15 s: a window too (at window_after 0.2 such updates, each
    # followed by twice its cost before the next, kept the screen 0.94 s old)
    (300_000, None, True),  # not timed yet: a loaded machine's speed is assumed (1 µs a call)
    (80_000, None, False),
    (20_000, 1e-3, False),  # no more behind than a window holds: no window
])
def test_when_the_live_view_shows_a_window(behind, s_per_call, windowed):
    assert UpdatePolicy(poll_interval=0.1).windowed(behind, s_per_call) is windowed


@pytest.mark.parametrize("behind, s_per_call, timed, windowed", [
    (1_000_000, 1e-7, 20_000, True),  # 50 times the calls timed: a loaded machine's speed is taken
    (1_000_000, 0.5e-7, 250_000, False),  # 4 times: the speed timed is taken (0.05 s)
    (80_000, 1e-7, 20_000, False),
    (300_000, 3e-6, 20_000, True),  # slower than a loaded machine: as timed
])
def test_a_speed_is_not_taken_for_updates_much_larger_than_it_was_timed_on(behind, s_per_call, timed, windowed):
    """A busy program's first catch-up step (20,000 calls, 90 ns a call) had the next update
    grow 2.13 M calls at once (taken for 0.19 s): it took 0.70 s, page faults mostly."""
    assert UpdatePolicy(poll_interval=0.1).windowed(behind, s_per_call, timed) is windowed


@sync
async def test_a_jump_far_beyond_the_updates_timed_shows_a_window(tmp_path):
    """GIVEN the explorer following a session whose whole index was grown (and timed) by 8
    calls, WHEN 101 calls arrive at once, THEN the screen shows the window of the newest calls
    and says how many are still being indexed: the speed of an update of 8 calls says nothing of
    one of 101 (the whole index grew them all before: a busy program's 2.13 M calls grown at
    once, timed on 20,000, kept its newest calls off the screen 0.7 s)."""
    b, m, path, feed = busy_session(tmp_path)
    policy = UpdatePolicy(poll_interval=0.02, live_min_update=0, window_after=60.0, catch_up=0.0,
                          window_calls=3, speed_sample=1, first_s_per_call=1.0)
    src = TraceSource.open(path)
    app = FlowtraceApp(src, poll_interval=0.02, pipeline=Pipeline(src, poll_interval=0.02, policy=policy))
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        feed.step_calls([f"warm{i}" for i in range(8)])  # 8 s at a loaded machine's speed: grown
        await until(pilot, lambda: app.index.n == 10 and app.index.data.window is None)
        assert app.pipeline._timed_calls == 8
        feed.step_calls([f"early{i}" for i in range(100)] + ["newest_one"])
        await until(pilot, lambda: app.index.data.window is not None and app.index.data.window.through == 111)
        await until(pilot, lambda: app.tree.cursor_pos >= 0 and app.index.node(app.tree.cursor_pos) == app.index.n)
        text = "\n".join(screen_lines(app))
        assert "newest_one" in text and "early98" in text and "early97" not in text
        assert "newest 3 calls shown (indexing 107 earlier)" in " | ".join(app.status_parts())
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and app.index.data.window is None and app.index.n == 111)
        await app.workers.wait_for_complete()


def test_the_speed_a_whole_build_shows_is_taken_at_a_grown_calls_cost():
    """The pipeline decides on a window by what growing the whole index would take. A live
    session's first index is built whole (a call built costs less than a call grown): taken as
    it was, the next update grew ~0.45 M calls in 140-290 ms (load 11-14) instead of showing a
    window, and the first screen stayed on ~0.6 s."""
    b, _m = busy_program()
    p = Pipeline(loaded(b), poll_interval=0.1)
    p._note_speed(200_000, 0.06, built=True)  # a first index: 0.3 µs a call built
    assert p._s_per_call == pytest.approx(0.3e-6 * p.policy.grow_per_build)
    assert p.policy.windowed(400_000, p._s_per_call)  # 0.3 s to grow: a window first
    grown = Pipeline(loaded(b), poll_interval=0.1)
    grown._note_speed(200_000, 0.06)  # grown: as timed
    assert grown._s_per_call == pytest.approx(0.3e-6) and not grown.policy.windowed(300_000, grown._s_per_call)


def test_a_step_of_catching_up_fits_its_time_and_holds_at_least_a_window():
    policy = UpdatePolicy(poll_interval=0.1)
    assert policy.catch_up_calls(1e-6) == 150_000  # 0.15 s at 1 µs a call
    assert policy.catch_up_calls(1e-4) == policy.window_calls
    assert UpdatePolicy(catch_up=0.0).catch_up_calls(1e-6) == 0


def test_a_window_of_several_processes_keeps_their_groups(tmp_path):
    """A session of several processes: the window's calls stay under their processes (and a
    process's threads), as the whole index shows them."""
    from trace_builder import exec_child, fork_child, root_program, save_session

    from .test_tui_processes import lines, open_session

    root, _ = root_program()
    data = open_session(save_session(str(tmp_path), root, [fork_child(), exec_child()])).data
    w = window_data(data, 3)
    ix = build_index(w)
    rows = TreeRows(ix)
    rows.expand_to_depth(5)
    assert w.window.ids.tolist() == [0, 4, 5, 6]
    assert lines(ix, rows) == [  # the whole index's lines of calls 4-6 (test_processes_are_the_top_level)
        "0 pid 101 (fork): python prog.py --jobs 2 → exit 0",
        "1 work(i=2) → 2",
        "0 pid 102: python -m pkg.worker → exit 0",
        "1 thread MainThread",
        "2 <module> pkg.worker",
        "1 thread Thread-2",
        "2 helper(k='x') → 'y'",
    ]


def test_a_live_session_of_several_processes_is_rebuilt_a_share_of_the_time(tmp_path):
    """GIVEN a live session of two processes (its index is rebuilt whole each time), WHEN a
    rebuild takes longer than the policy allows, THEN windows of the newest calls come between
    rebuilds; at the end, the whole index, equal to a whole build."""
    from trace_builder import fork_child

    root = TraceBuilder(meta={**meta_for(os.getpid()), "argv": ["prog.py"], "parts": "trace.ftr.d"})
    path = str(tmp_path / "trace.ftr")
    m = root.enter("main", args="")
    root.flush()
    feed = Feeder(root, path)
    os.makedirs(path + ".d")
    child = fork_child()
    child.flush()
    part = Feeder(child, path + ".d/101.ftr")
    # windows whenever a rebuild was timed (any rebuild takes longer than 0 s), and rebuilds
    # only a vanishing share of the time: after the first, none until the session ends
    policy = UpdatePolicy(poll_interval=0.01, live_min_update=0, window_after=0.0, window_calls=2,
                          whole_share=1e-9)
    p, snaps, loop, stop = follow(path, policy)
    try:
        wait_for(lambda: snaps and p.source.data.multi_process and shows(snaps[-1]) == 3,
                 lambda: [shows(s) for s in snaps])
        for k in range(3):  # the first update is a rebuild (timed), then windows
            part.step_calls([f"job{k}"])
            wait_for(lambda: shows(snaps[-1]) == 4 + k, lambda: [shows(s) for s in snaps])
            ix = snaps[-1].index
            assert ix.data.func_name(int(ix.data.col("func")[ix.n])) == f"job{k}"
            if k == 0:
                assert ix.data.window is None and ix.n == 4
            else:
                assert ix.data.window is not None and [g.kind for g in ix.groups] == ["process"]
        root.leave(m, "None")
        root.data(finish=True)
        feed.sync()
        child.data(finish=True)
        part.sync()
        loop.join(30)
        assert not loop.is_alive()
        last, want = snaps[-1].index, build_index(p.source.data)
        assert last.data.window is None and [g.kind for g in last.groups] == ["process", "process"]
        assert (last.n, last.order.tolist(), last.dur.tolist()) == (want.n, want.order.tolist(), want.dur.tolist())
    finally:
        stop.set()
        loop.join(30)


@pytest.mark.parametrize("rebuild_s, since, due", [
    (None, 0.0, True),  # not timed yet
    (0.1, 0.0, True),  # cheap enough: every time
    (1.0, 3.9, False),  # a 1 s rebuild: a fifth of the time at most ...
    (1.0, 4.0, True),  # ... so 4 s after the last one
])
def test_when_a_rebuilt_index_is_rebuilt(rebuild_s, since, due):
    assert UpdatePolicy(poll_interval=0.1).rebuild_due(rebuild_s, since) is due


def out_of_memory_past(calls: int, monkeypatch) -> None:
    """Making or growing an index of the whole session past `calls` calls raises MemoryError
    (as a busy program's tens of millions of calls did under a 6 GB address-space limit);
    windows are made as before."""
    def limited(make):
        def call(*a, **k):
            data = a[1] if make is grow_index else a[0]
            n = a[2] if make is grow_index else (a[1] if len(a) > 1 else k.get("n"))
            if data.window is None and (data.n if n is None else n) > calls:
                raise MemoryError("Unable to allocate 248. MiB for an array")
            return make(*a, **k)
        return call

    monkeypatch.setattr(pipeline_module, "grow_index", limited(grow_index))
    monkeypatch.setattr(pipeline_module, "build_index", limited(build_index))


async def newest_calls_shown(pilot, app: FlowtraceApp, feed: Feeder, steps: int, calls: int, before: int) -> None:
    """`steps` flushes of `calls` calls and a newest one (`before` calls were read): after each,
    the window that ends at the newest call is shown, that call selected and on screen."""
    for k in range(steps):
        feed.step_calls([f"a{k}_{i}" for i in range(calls)] + [f"newest{k}"])
        through = before + (calls + 1) * (k + 1)
        await until(pilot, lambda: app.index.data.window is not None and app.index.data.window.through == through)
        await until(pilot, lambda: app.index.node(app.tree.cursor_pos) == app.index.n)
        assert f"newest{k}" in "\n".join(screen_lines(app))


@sync
async def test_a_whole_index_out_of_memory_leaves_the_view_on_windows_of_the_newest_calls(tmp_path, monkeypatch):
    """GIVEN the explorer following a session whose whole index cannot be made (MemoryError),
    THEN new calls are still shown, as windows of the newest calls, the status line says why,
    and WHEN the session ends the last window is final: no "Reading the session failed" and
    no frozen screen (which showed calls seconds old: the loader had ended)."""
    out_of_memory_past(3, monkeypatch)
    b, m, path, feed = busy_session(tmp_path)
    src = TraceSource.open(path)
    policy = dataclasses.replace(windowing_policy(0.02), catch_up=0.5, catch_up_span=1e9)  # (catch-up steps: they meet the limit)
    app = FlowtraceApp(src, poll_interval=0.02, pipeline=Pipeline(src, poll_interval=0.02, policy=policy))
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        feed.step_calls(["warm"])
        await until(pilot, lambda: app.index.n == 3)
        await newest_calls_shown(pilot, app, feed, 3, 10, 3)
        assert app.pipeline.whole_too_big and app.pipeline.grow_failures == 0
        assert "calls shown (the whole session needs more memory than the explorer may use)" in " | ".join(app.status_parts())
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and not app.loading)
        await app.workers.wait_for_complete()
        assert app.index.data.window is not None and app.index.data.window.through == 36
        assert app._load_error is None and "failed" not in " | ".join(app.status_parts())


def call_columns_of_about_1000_calls(monkeypatch) -> None:
    """A followed session's call columns cannot grow past ~1,000 calls (as a 6 GB address-space
    limit stops them at 2^26), and its tail holds 1,024 rows."""
    from flowtrace_tui.model import loader
    from flowtrace_tui.model import tail as tail_module

    reserve = loader._Growable.reserve

    def tight(self, extra, exact=False):
        if self.size + extra > 1100 and "parent" in self.arrays:  # (call columns: room for ~1,000 calls)
            raise MemoryError("Unable to allocate 1.00 GiB for an array with shape (268435456,) and data type uint32")
        return reserve(self, extra, exact)

    monkeypatch.setattr(loader._Growable, "reserve", tight)
    monkeypatch.setattr(pipeline_module, "LIVE_CALLS", 1024)
    monkeypatch.setattr(tail_module, "TAIL_ROWS", 1024)


@sync
async def test_a_followed_session_past_what_its_call_columns_hold_goes_on_showing_the_newest_calls(tmp_path, monkeypatch):
    """GIVEN the explorer following a busy session whose call columns cannot grow past ~1,000
    calls (a 6 GB address-space limit stopped the live view of a program making 5 M calls a
    second at 2^26 calls: 'the session outgrew the memory the explorer could get'), WHEN
    thousands more calls arrive, THEN each newest call is still shown and selected, the status
    line says what the explorer holds, and the end of the session leaves the last window on
    screen with no error."""
    call_columns_of_about_1000_calls(monkeypatch)
    b, m, path, feed = busy_session(tmp_path)
    app = windowing_app(path)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        await newest_calls_shown(pilot, app, feed, 6, 400, 2)
        data = app.source.data
        assert data.tail is not None and data.tail.let_go > 0 and data.n <= 1024
        status = " | ".join(app.status_parts())
        assert "newest 3 calls shown (the explorer's memory holds the first 804 calls and the newest)" in status
        assert "| 2,408 calls |" in status and app._load_error is None
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and not app.loading)
        await app.workers.wait_for_complete()
        assert app.index.data.window is not None and app.index.data.window.through == 2 + 401 * 6
        assert "main" in "\n".join(screen_lines(app)) and "newest5" in "\n".join(screen_lines(app))
        assert app._load_error is None and "failed" not in " | ".join(app.status_parts())


@sync
async def test_a_search_the_functions_view_and_the_hot_path_past_the_call_columns_say_what_they_see(tmp_path, monkeypatch):
    """GIVEN the explorer following a session past what its call columns hold (~1,000 calls: a
    tail of the newest calls, no whole index any more), WHEN the user searches, opens the
    functions view and follows the hot path, THEN each says it sees the newest calls only and
    why -- the earlier calls are not indexed, the explorer's memory holds the first ones and
    the newest -- not that the earlier calls are still being indexed (they never will be)."""
    call_columns_of_about_1000_calls(monkeypatch)
    b, m, path, feed = busy_session(tmp_path)
    app = windowing_app(path)
    async with app.run_test(size=(200, 30), notifications=True) as pilot:
        said = notices(app)
        await until(pilot, lambda: app.index is not None and not app.loading)
        await newest_calls_shown(pilot, app, feed, 6, 400, 2)
        assert app.source.data.tail is not None and app.source.data.tail.let_go > 0
        why = "the earlier calls are not indexed: the explorer's memory holds the first 804 calls and the newest"
        await pilot.press("slash", *"newest", "enter")
        await until(pilot, lambda: not app.searching and len(app.hits) == 1)
        await until(pilot, lambda: "hit 1 of 1 in the newest 3 calls only" in "\n".join(screen_lines(app)))
        await pilot.press("escape")
        app.tree.move_to_pos(0)
        await pilot.press("H")
        await until(pilot, lambda: f"Hot path of the newest 3 calls only ({why})" in said)
        assert not any("still being indexed" in n for n in said)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, FunctionsScreen) and app.screen.table is not None)
        await until(pilot, lambda: "newest 3 calls only" in "\n".join(screen_lines(app)))
        assert "newest 3 calls only │ the earlier calls are not indexed │" in "\n".join(screen_lines(app))
        await pilot.press("v")
        b.leave(m)
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and not app.loading)
        await app.workers.wait_for_complete()

