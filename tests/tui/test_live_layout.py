"""A followed session's new calls reach the screen without laying the whole screen out again when
nothing changed size: the call tree only gains rows (its scroll bar is told), the detail pane
shows a call with as many lines as the one before. Each such layout took the UI thread (and the
GIL the loader needs) ~10-40 ms several times a second while following a busy program. What the
user sees is checked too: the newest call selected and in view, its details, the scroll bar's
length, and a detail body or a scroll bar that does change size laid out."""

from __future__ import annotations

import os

from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.widgets.detail_pane import DetailPane
from flowtrace_tui.widgets.key_footer import KeyFooter
from textual.widgets._footer import FooterKey

from trace_builder import Feeder, TraceBuilder, meta_for

from .apps import at_rest, screen_lines, sync, until

POLL = 0.02


def followed(path: str, steps: int) -> tuple[TraceBuilder, Feeder, FlowtraceApp]:
    """main -> `steps` finished calls so far, in a file this (running) process records."""
    b = TraceBuilder(meta=meta_for(os.getpid()))
    b.enter("main")
    b.flush()
    feed = Feeder(b, path)
    feed.step_calls([f"step{i}" for i in range(steps)])
    return b, feed, FlowtraceApp(TraceSource.open(path), poll_interval=POLL)


def newest_shown(app: FlowtraceApp, name: str) -> bool:
    """The newest call is selected, in view, and the detail pane shows it."""
    tree = app.tree
    pane = app.query_one(DetailPane)
    in_view = tree.scroll_offset.y <= tree.cursor_row < tree.scroll_offset.y + tree.scrollable_content_region.height
    return (app.index.n == app.source.data.n and app.index.node(tree.cursor_pos) == app.index.n and in_view
            and f"call        {name}" in pane.plain_text())


def count_layouts(app: FlowtraceApp) -> list[int]:
    """A counter of the main screen's layouts from now on (the screen's own method, wrapped)."""
    screen, count = app.screen, [0]
    inner = screen._refresh_layout

    def counted(*a, **k):
        count[0] += 1
        return inner(*a, **k)

    screen._refresh_layout = counted
    return count


def body_fits(app: FlowtraceApp) -> bool:
    """The detail body's region is as tall as its content (laid out for what it shows)."""
    body = app.query_one("#detail-body")
    width = body.content_size.width
    body.clear_cached_dimensions()
    return body.size.height == body.get_content_height(body.size, body.size, width)


@sync
async def test_new_calls_are_shown_without_laying_the_screen_out_again(tmp_path):
    b, feed, app = followed(str(tmp_path / "grow.ftr"), 60)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: not app.loading and newest_shown(app, "step59"))
        # the first screen's own work done first: under load the footer's recompose for its
        # width (after a refresh) and the layout of its keys came during the feeds below
        await at_rest(pilot)
        assert app.tree.show_vertical_scrollbar
        layouts = count_layouts(app)
        for i in range(3):
            feed.step_calls([f"more{i}"])
            await until(pilot, lambda: newest_shown(app, f"more{i}"))
            await at_rest(pilot)
            rows = len(app.rows)
            assert app.tree.virtual_size.height == rows and app.tree.vertical_scrollbar.window_virtual_size == rows
        assert layouts[0] == 0 and body_fits(app)
        assert app.live_view.follow.following


@sync
async def test_a_detail_of_another_height_or_a_scroll_bar_that_comes_is_laid_out(tmp_path):
    b, feed, app = followed(str(tmp_path / "grow.ftr"), 2)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: not app.loading and newest_shown(app, "step1"))
        await pilot.pause()
        assert not app.tree.show_vertical_scrollbar
        height = app.query_one("#detail-body").size.height
        # a call whose arguments wrap over several lines of the pane: the body grows
        b.leave(b.enter("wide", args="text='" + "ab " * 120 + "'"))
        b.flush()
        feed.sync()
        await until(pilot, lambda: newest_shown(app, "wide"))
        await pilot.pause()
        assert app.query_one("#detail-body").size.height > height + 3 and body_fits(app)
        # and shrinks back; then enough rows for a scroll bar, which comes with its layout
        feed.step_calls([f"later{i}" for i in range(40)])
        await until(pilot, lambda: newest_shown(app, "later39"))
        await pilot.pause()
        assert app.query_one("#detail-body").size.height == height and body_fits(app)
        assert app.tree.show_vertical_scrollbar
        assert app.tree.vertical_scrollbar.window_virtual_size == len(app.rows) == app.tree.virtual_size.height


@sync
async def test_the_footer_composes_its_keys_again_only_when_they_change(tmp_path):
    """Textual's footer recomposed whenever the screen's bindings might have changed (the focus
    set, an action's check asked again) and ours when its width changed: four times in a live
    session's first half second, each mounting every key and laying the whole screen out."""
    b, feed, app = followed(str(tmp_path / "grow.ftr"), 3)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: not app.loading and newest_shown(app, "step2"))
        await at_rest(pilot)
        footer = app.query_one(KeyFooter)
        keys = list(footer.query(FooterKey))
        assert "F Follow" in screen_lines(app)[-1] and "q Quit" in screen_lines(app)[-1]
        layouts = count_layouts(app)
        for _ in range(3):  # what the focus moving, or offer_keys, asks
            app.screen.refresh_bindings()
            await at_rest(pilot)
        assert list(footer.query(FooterKey)) == keys and layouts[0] == 0
        # what it shows changes: a narrow terminal leaves keys out (and F and P going once the
        # session ends: test_tui_live.py's test_follow_and_pause_are_not_offered_once_the_session_ended)
        assert "f Filter" in screen_lines(app)[-1]
        await pilot.resize_terminal(70, 30)
        await until(pilot, lambda: "Filter" not in screen_lines(app)[-1])
        await at_rest(pilot)
        assert "q Quit" in screen_lines(app)[-1] and list(footer.query(FooterKey)) != keys


def test_the_source_highlighter_is_made_in_a_thread_while_the_explorer_waits():
    """`flowtrace-tui run`/`attach` make Pygments' Python lexer (~60-70 ms of CPU the first
    time) in a thread while they wait for the session, not on the UI thread when the first
    call's details come; the first excerpt made meanwhile waits for that thread."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from flowtrace_tui.widgets import detail_pane as d\n"
        "from flowtrace_tui.model.source_text import Excerpt\n"
        "from pygments.lexers.python import PythonLexer\n"
        "assert '_tokens' not in PythonLexer.__dict__\n"
        "d.warm_up()\n"
        "d._source(Excerpt('f.py', 2, 1, 'def f():\\n    return 1\\n'))\n"  # (waits for the thread)
        "assert d._warming is None and '_tokens' in PythonLexer.__dict__\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


@sync
async def test_the_loading_count_growing_lays_the_screen_out_once():
    """The loading bar's label keeps its width as the count of calls read grows (a busy
    program's grew a digit group every second or so at first, each a layout of the whole
    screen while the live view's first screens were due); the count is still said."""
    from textual.app import App
    from textual.widgets import Label

    from flowtrace_tui.widgets import LoadingBar

    class Bar(App):
        def compose(self):
            yield LoadingBar()

    app = Bar()
    async with app.run_test(size=(100, 5)) as pilot:
        bar = app.query_one(LoadingBar)
        bar.show_progress(10, 100, 25_001)
        await at_rest(pilot)
        layouts = count_layouts(app)
        for calls in (489_805, 1_378_621, 12_345_678):
            bar.show_progress(calls // 1000, 100_000, calls)
            await at_rest(pilot)
            assert f"Loading {calls:,} calls" in screen_lines(app)[0]
        assert layouts[0] == 0
        assert bar.query_one("#loading-label", Label).size.width >= len("Loading 12,345,678 calls")
