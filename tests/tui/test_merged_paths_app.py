"""The merged-paths toggle (m) in the explorer: what is on screen, search, the detail pane's
links, a big session merged in a worker, a live session, and snapshots."""

from __future__ import annotations

import os

import pytest

from flowtrace_tui import merged_paths
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.widgets import DetailPane

from trace_builder import Feeder, TraceBuilder, loop_program, meta_for

from .apps import screen_lines, settle, source, sync, until


def loop_app() -> FlowtraceApp:
    return FlowtraceApp(source(loop_program().data(), "loop.ftr"))


def text(app) -> str:
    return "\n".join(screen_lines(app))


def row(app, name: str) -> str:
    return next(ln for ln in screen_lines(app) if f" {name}" in ln)


def cursor_call(app) -> int:
    return app.index.node(app.tree.cursor_pos)


@sync
async def test_toggle_shows_merged_paths_and_back():
    app = loop_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("d")  # no detail pane: the tree gets the calls column
        await pilot.press("j", "l", "j")  # step(i=0) opened, parse(text='0') selected
        assert "step(i=3) ✗ ValueError" in text(app)
        await pilot.press("m")
        await settle(pilot)
        assert app.index.merged and "merged paths" in app.status_parts()
        # the cursor is on parse's path; main and the step path are open (their calls were)
        assert app.tree.cursor_pos == 2
        lines = [" ".join(ln.split()) for ln in screen_lines(app)[:8]]
        assert lines == [
            "call total self %par calls",
            "▼ main ✗ 1 raised 310 ns 60 ns 1",
            "├─▼ step ✗ 1 raised 240 ns 140 ns 77% 4",
            "│ ├─ parse 40 ns 40 ns 17% 4",
            "│ ├─ save 20 ns 20 ns 8% 2",
            "│ └─ validate ✗ 1 raised 40 ns 40 ns 17% 4",
            "└─ report 10 ns 10 ns 3% 1",
            "",
        ]
        # without the calls column (the detail pane takes the room) the count follows the name
        await pilot.press("d")
        assert "step ×4 ✗ 1 raised" in text(app) and "parse ×4" in text(app)
        # back to calls: the cursor on the first call of the path it was on
        await pilot.press("k", "m")
        await settle(pilot)
        assert not app.index.merged and "merged paths" not in app.status_parts()
        assert cursor_call(app) == 2 and "step(i=0) → None" in text(app)


@sync
async def test_search_and_detail_links_in_merged_paths():
    app = loop_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        await pilot.press("slash", *"v=3", "alt+t", "enter")  # argument text: validate(v=3)
        await settle(pilot)
        assert "hit 1 of 1" in app.status_parts() and app.tree.cursor_pos == 4  # validate's path
        body = [" ".join(ln.split()) for ln in app._w(DetailPane).plain_text(120).splitlines()]
        assert body[:10] == ["path validate (merged call path)", "module __main__", "kind function", "calls 4",
                             "total 40 ns (summed)", "self 40 ns (summed)", "mean 10 ns", "longest 10 ns #5",
                             "raised ✗ 1 of 4", "children 0 paths"]
        assert body[-5:] == ["Calls (4, in start order)", "#5 10 ns (v=0) → True", "#8 10 ns (v=1) → True",
                               "#12 10 ns (v=2) → True", "#15 10 ns (v=3) ✗ ValueError: 3"]
        # a listed call is a link: it leaves the merged view and selects that call
        app.action_jump_call(15)
        await settle(pilot)
        assert not app.index.merged and cursor_call(app) == 15
        assert "validate(v=3) ✗ ValueError" in text(app)


@sync
async def test_a_big_session_is_merged_in_a_worker(monkeypatch):
    monkeypatch.setattr(merged_paths, "SYNC_MERGE_LIMIT", 0)
    app = loop_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert app.index.merged and "step ×4 ✗ 1 raised" in text(app)
        # the grouping toggle makes a new call index: merged again, the view kept
        await pilot.press("t")
        await settle(pilot)
        assert app.index.merged and "step ×4" in text(app) and "ungrouped" in app.status_parts()


@sync
async def test_live_session_keeps_merging_new_calls(tmp_path):
    path = str(tmp_path / "live.ftr")
    b = TraceBuilder(meta=meta_for(os.getpid()))
    b.enter("main")
    b.flush()
    feed = Feeder(b, path)
    feed.step_calls(["tick"] * 3)
    app = FlowtraceApp(TraceSource.open(path), poll_interval=0.02)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and app.index.n == 4)
        await pilot.press("m")
        await until(pilot, lambda: "tick ×3" in text(app))
        feed.step_calls(["tick"] * 5)
        await until(pilot, lambda: "tick ×8" in text(app))
        assert app.index.merged and app.index.n_calls == 9


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_merged_paths(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        await pilot.press("j")  # the step path: its numbers and calls in the detail pane

    assert snap_compare(loop_app(), terminal_size=size, run_before=run_before)
