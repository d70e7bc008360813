"""The live view as a composed object: `LiveView` over a fake host (no Textual app running).

It is the specification of what the live view does with the app it is part of: which keys it
offers, what it holds while paused, what it adds to the status line, and whom it asks to quit.
"""

from __future__ import annotations

import os

from flowtrace_tui.live_view import LiveView
from flowtrace_tui.model.pipeline import Pipeline, Snapshot
from flowtrace_tui.model.source import TraceSource

from trace_builder import Feeder, TraceBuilder, meta_for


class FakeTree:
    live_now = 0
    cursor_pos = 0

    def move_to_pos(self, pos: int) -> None:
        self.cursor_pos = pos


class FakeHost:
    """Records what the live view asks of the app."""

    def __init__(self) -> None:
        self.index = None
        self.rows = None
        self.tree = FakeTree()
        self.calls: list[str] = []
        self.shown: list[Snapshot] = []

    def main_widget(self, kind):
        return None

    def update_status(self) -> None:
        self.calls.append("status")

    def update_placeholder(self) -> None:
        self.calls.append("placeholder")

    def update_detail(self) -> None:
        self.calls.append("detail")

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.shown.append(snapshot)

    def refresh_bindings(self) -> None:
        self.calls.append("bindings")

    def exit(self) -> None:
        self.calls.append("exit")


def live_session(tmp_path, finish: bool = False) -> tuple[Pipeline, TraceBuilder]:
    """A session recorded by this (running) process, read as the live view reads it."""
    b = TraceBuilder(meta=meta_for(os.getpid()))
    m = b.enter("main")
    b.leave(b.enter("a"))
    b.flush()
    if finish:
        b.leave(m)
    path = str(tmp_path / "live.ftr")
    if finish:
        b.save(path)
    else:
        Feeder(b, path)
    return Pipeline(TraceSource.open(path), poll_interval=0.05), b


def test_a_growing_session_is_followed_with_its_keys_offered(tmp_path):
    pipeline, _ = live_session(tmp_path)
    view = LiveView(FakeHost(), pipeline)
    assert view.active and view.follow.following
    assert view.can("toggle_follow") and view.can("toggle_pause")
    assert not view.can("toggle_output")  # no program output to show
    assert view.state_text() == "[$success]● LIVE[/]"
    assert view.status_parts() == ["following"]


def test_a_file_read_once_offers_no_live_key(tmp_path):
    pipeline, _ = live_session(tmp_path, finish=True)
    view = LiveView(FakeHost(), Pipeline(pipeline.source))
    assert not view.active and not view.follow.following
    assert not view.can("toggle_follow") and not view.can("toggle_pause")
    assert view.state_text() is None and view.status_parts() == [] and view.now_ns() == 0


def test_paused_snapshots_are_held_then_shown_once(tmp_path):
    pipeline, _ = live_session(tmp_path)
    host = FakeHost()
    view = LiveView(host, pipeline)
    host.rows = object()  # something is on screen
    ix = pipeline.build()
    # GIVEN a paused view, WHEN two snapshots arrive, THEN both are held (the newest kept,
    # final if either was), and resuming shows the newest once
    view.toggle_pause()
    assert view.hold(Snapshot(ix, False)) and view.hold(Snapshot(ix, True))
    assert host.shown == [] and "[$warning]paused[/]" in view.status_parts()
    view.toggle_pause()
    assert host.shown == [Snapshot(ix, True)]
    assert not view.hold(Snapshot(ix, False))


def test_following_selects_the_newest_call_and_a_move_ends_it(tmp_path):
    pipeline, _ = live_session(tmp_path)
    host = FakeHost()
    view = LiveView(host, pipeline)
    host.index = pipeline.build()
    view.index_shown()
    newest = int(host.index.pos_of[host.index.n])
    assert host.tree.cursor_pos == newest and view.follow.follow_node == host.index.n
    host.tree.cursor_pos = 0  # the user moved
    view.cursor_moved()
    assert not view.follow.following and "bindings" in host.calls
    assert view.last_key() and view.follow.following  # G / End resume it


def test_a_failed_load_stops_following(tmp_path):
    pipeline, _ = live_session(tmp_path)
    host = FakeHost()
    view = LiveView(host, pipeline)
    view.loading_failed()
    assert not view.active and not view.follow.following and not view.can("toggle_follow")
    assert host.calls == ["bindings"]


def test_quit_without_a_program_exits_at_once(tmp_path):
    pipeline, _ = live_session(tmp_path)
    host = FakeHost()
    LiveView(host, pipeline).quit()
    assert host.calls == ["exit"]


def test_a_tick_just_after_an_index_was_shown_draws_nothing_again(tmp_path):
    """GIVEN a live view that shows indexes several times a second (a busy program), WHEN its
    clock ticks just after one was shown, THEN it leaves the screen as that index drew it (the
    times and the status line are as recent); a tick later on redraws the running times."""
    from flowtrace_tui.live_view import TICK_S
    from flowtrace_tui.widgets.call_tree import CallTree

    class TickingTree(FakeTree):
        def changed(self) -> None:
            host.calls.append("tree")

    class Host(FakeHost):
        def main_widget(self, kind):
            return self.tree if kind is CallTree else None

    pipeline, _ = live_session(tmp_path)
    host = Host()
    host.tree = TickingTree()
    host.tree.live_now = 1  # (running calls shown)
    view = LiveView(host, pipeline)
    host.index = pipeline.build()
    view.index_shown()
    host.calls.clear()
    view._tick()
    assert "tree" not in host.calls and "status" not in host.calls
    view._shown_at -= TICK_S  # (as if it was shown a tick ago)
    view._tick()
    assert "tree" in host.calls and "status" in host.calls
