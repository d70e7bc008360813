"""Pilot tests: the explorer's state after key presses."""

from __future__ import annotations


import numpy as np
import pytest

from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.screens import ErrorScreen, FilterDialog, HelpScreen
from textual.command import CommandList, CommandPalette
from textual.widgets import Input

from trace_builder import TraceBuilder, sample_program, wide_program

from .apps import GatedSource, at_rest, notices, sample_app, settle, source, sync, threads_app, type_ahead, until


def name_at(app, pos: int) -> str:
    ix = app.index
    node = ix.node(pos)
    if ix.is_group(node):
        return ix.group(node).label
    return ix.data.func_name(int(ix.data.col("func")[node]))


def visible(app) -> list[str]:
    return [name_at(app, p) for p in app.rows.rows.tolist()]


@sync
async def test_opens_with_first_level_expanded():
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert visible(app) == ["main", "parse", "fib", "numbers", "consume", "consume", "check"]
        parts = app.status_parts()
        assert parts[1:4] == ["finished, exit 0", "11 calls", "320 ns"]
        assert app.tree.cursor_pos == 0


def _flusher_program(flusher_calls: bool, idle_worker: bool) -> bytes:
    """A single-threaded program's session whose flusher thread got a THRD entry (a collection
    it started ran the program's finalizers: recorded or not), and maybe an idle thread of the
    program's (defined, no call recorded)."""
    b = TraceBuilder(step=100)
    m = b.enter("main")
    b.leave(b.enter("work", args="n=1"), result="2")
    b.thread(2, "flowtrace-flusher")
    if flusher_calls:
        b.leave(b.enter("Conn.__del__", thread=2, parent=0), result="None")
    if idle_worker:
        b.thread(3, "idle-worker")
    b.leave(m, result="None")
    return b.data()


@pytest.mark.parametrize("flusher_calls, idle_worker, threads", [
    (False, False, None), (False, True, "2 threads"), (True, False, "2 threads"), (True, True, "3 threads")])
@sync
async def test_flowtraces_own_thread_without_calls_is_not_a_program_thread(flusher_calls, idle_worker, threads):
    """GIVEN a session whose flusher thread is defined, WHEN it has no call, THEN the status
    line counts only the program's threads (none said for one); a thread of the program with
    no call is counted (it ran), and so is the flusher once it has calls (finalizers)."""
    app = FlowtraceApp(source(_flusher_program(flusher_calls, idle_worker)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        said = [p for p in app.status_parts() if p.endswith("threads")]
        assert said == ([threads] if threads else [])
        expected = [1] + ([2] if flusher_calls else []) + ([3] if idle_worker else [])
        assert app.source.data.program_threads() == expected


@sync
async def test_navigation_keys():
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tree = app.tree
        await pilot.press("j", "j")
        assert name_at(app, tree.cursor_pos) == "fib"
        await pilot.press("l")  # expand
        assert visible(app)[:5] == ["main", "parse", "fib", "fib", "fib"]
        await pilot.press("l")  # to the first child
        assert tree.cursor_pos == 4
        await pilot.press("right_square_bracket")
        assert tree.cursor_pos == 5
        await pilot.press("left_square_bracket")
        assert tree.cursor_pos == 4
        await pilot.press("h")  # a leaf: go to the parent
        assert tree.cursor_pos == 3
        await pilot.press("h")  # expanded: collapse
        assert visible(app)[:4] == ["main", "parse", "fib", "numbers"]
        await pilot.press("G")
        assert name_at(app, tree.cursor_pos) == "check"
        await pilot.press("p")
        assert tree.cursor_pos == 0
        await pilot.press("space")
        assert visible(app) == ["main"]
        await pilot.press("enter")
        assert len(visible(app)) == 7
        await pilot.press("2")
        assert len(visible(app)) == 11
        await pilot.press("c")
        assert visible(app) == ["main"]
        await pilot.press("H")  # by running time: fib(n=3) 100 > numbers (lifetime 110, ran 50)
        assert name_at(app, tree.cursor_pos) == "fib" and tree.cursor_pos == 4  # fib(n=2)
        await pilot.press("g")
        assert tree.cursor_pos == 0


@sync
async def test_expand_subtree_guard():
    app = FlowtraceApp(source(wide_program(300).data()))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.tree.expand_guard = 100
        seen = notices(app)
        await pilot.press("c", "e")
        assert len(app.rows) == 1  # refused, with a notice
        assert any("press e again" in n for n in seen)
        await pilot.press("e")
        assert len(app.rows) == 301


@sync
async def test_search_and_hits():
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c", "slash")
        await pilot.press(*"fib", "enter")
        await settle(pilot)
        assert app.hits.tolist() == [3, 4, 5]
        assert app.tree.cursor_pos == 3  # first hit after the cursor, ancestors expanded
        assert "hit 1 of 3" in app.status_parts()
        await pilot.press("n", "n")
        assert app.tree.cursor_pos == 5 and "hit 3 of 3" in app.status_parts()
        await pilot.press("n")
        assert app.tree.cursor_pos == 3
        await pilot.press("N")
        assert app.tree.cursor_pos == 5
        # argument text search, from the find bar with the toggle
        await pilot.press("slash", "ctrl+a", "ctrl+k", "f4", *"negative", "enter")
        await settle(pilot)
        assert app.hits.tolist() == [0, 10]


@sync
async def test_a_word_typed_ahead_after_slash_goes_to_the_find_bar():
    """/ and a word typed while the app is busy (every key queued before the first is handled)
    all reach the find bar: none acts on the call tree, where c collapses, o shows the output,
    n goes to a hit, s, u, m turns merged paths on, e expands. A key typed before the / still
    acts on the tree, first. A / typed in the bar is text."""
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        type_ahead(app, "j/consume")
        await at_rest(pilot)
        assert app.query_one("#find-input", Input).value == "consume"
        assert visible(app) == ["main", "parse", "fib", "numbers", "consume", "consume", "check"]
        assert app.tree.cursor_pos == 1 and not app.paths.status()  # (j: down one)
        await pilot.press("enter")
        await settle(pilot)
        assert [name_at(app, p) for p in app.hits.tolist()] == ["consume", "consume"]
        assert name_at(app, app.tree.cursor_pos) == "consume"
        # / opens the bar again, the last pattern selected (what is typed replaces it); in the
        # bar, / is a character of the pattern
        type_ahead(app, "//a/")
        await at_rest(pilot)
        assert app.focused is app.query_one("#find-input", Input)
        assert app.query_one("#find-input", Input).value == "/a/"


@sync
async def test_search_rejects_bad_regex():
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "f3", *"fib(", "enter")
        await settle(pilot)
        assert app.query is None
        assert "bad regular expression" in str(app.query_one("#find-error").render())


@sync
async def test_filter_dialog_hides_short_calls():
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2", "f")
        assert isinstance(app.screen, FilterDialog)
        await pilot.press(*"20ns", "enter")
        await pilot.pause()
        assert visible(app) == ["main", "parse", "fib", "fib", "numbers"]
        assert "filter < 20 ns" in app.status_parts()


@sync
async def test_help_screen_lists_bindings():
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = app.screen.rows
        for row in [("H", "Hot path"), ("n", "Next hit"), ("N", "Prev hit"), ("f", "Filter"),
                    ("1-9", "Expand everything to depth N"), ("[", "Prev sibling"), ("/ ctrl+f", "Search"),
                    ("space enter", "Toggle"), ("left h", "Collapse/parent"), ("q", "Quit")]:
            assert row in rows
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@sync
async def test_thread_grouping_toggle_keeps_cursor():
    app = threads_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert visible(app)[:3] == ["MainThread", "main", "order_total"]
        await pilot.press("j", "j")
        node = app.index.node(app.tree.cursor_pos)
        await pilot.press("t")
        await settle(pilot)
        assert not app.index.grouped
        assert visible(app)[:2] == ["main", "order_total"]
        assert app.index.node(app.tree.cursor_pos) == node
        assert "ungrouped" in app.status_parts()


@sync
async def test_detail_pane_shows_the_file_relative_to_the_programs_directory():
    """As the tree names `<module> examples/shop.py`: a file under the recorded program's working
    directory reads relative to it (no absolute path of the recording machine); others stay whole."""
    b = TraceBuilder(meta={"cwd": "/flowtrace-test"})
    b.func("outside", file="/elsewhere/lib.py", line=7)
    main = b.enter("main")
    b.leave(b.enter("outside", parent=main))
    b.leave(main)
    app = FlowtraceApp(source(b.data(), "rel.ftr"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for name, where in (("main", "\nprog.py:1\n"), ("outside", "\n/elsewhere/lib.py:7\n")):
            app.tree.move_to_pos(next(p for p in app.rows.rows.tolist() if name_at(app, p) == name))
            await pilot.pause()
            assert where in app.query_one("#detail").plain_text()


@sync
async def test_detail_pane_says_an_empty_module_is_empty(tmp_path):
    """An empty module's code (its line 1 in an empty file) reads "(the file is empty)", not as a
    file the explorer cannot read; a file that is not there still reads "(source not available)"."""
    empty = tmp_path / "empty.py"
    empty.write_text("")
    b = TraceBuilder(meta={"cwd": str(tmp_path)})
    b.func("<module>", module="empty", kind="module", file=str(empty), line=1)
    b.func("gone", file=str(tmp_path / "gone.py"), line=3)
    main = b.enter("main")
    b.leave(b.enter("<module>", module="empty", parent=main))
    b.leave(b.enter("gone", parent=main))
    b.leave(main)
    app = FlowtraceApp(source(b.data(), "empty.ftr"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        shown = {}
        for name in ("<module>", "gone"):
            app.tree.move_to_pos(next(p for p in app.rows.rows.tolist() if name_at(app, p) == name))
            await pilot.pause()
            shown[name] = app.query_one("#detail").plain_text()
        assert "\nempty.py:1\n(the file is empty)" in shown["<module>"]
        assert "source not available" not in shown["<module>"]
        assert "\ngone.py:3\n(source not available)" in shown["gone"]


@sync
async def test_detail_pane_and_path_jump():
    app = threads_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j", "l", "j")  # order_total(order_id=0) -> price_of
        body = app.query_one("#detail").plain_text()
        assert "call        price_of" in body
        assert "args        sku='A0'" in body
        assert "result      10.0" in body
        assert "thread      MainThread" in body
        assert "/flowtrace-test/prog.py:1" in body
        path = str(app.query_one("#detail-path").render())
        assert path == "thread MainThread › main › order_total › price_of"
        app.action_jump(int(app.index.ancestors(app.tree.cursor_pos)[1]))
        await pilot.pause()
        assert name_at(app, app.tree.cursor_pos) == "main"
        await pilot.press("d")
        assert not app.query_one("#detail").has_class("-shown")


@sync
async def test_escape_cancels_loading_and_keeps_what_was_read():
    b = wide_program(2000)
    data = b.data()
    src = GatedSource(ChunkReader.from_bytes(data, name="wide.ftr"), len(data))
    app = FlowtraceApp(src)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.rows is not None)
        assert app.loading  # the first screen came before the end
        await pilot.press("j")  # navigation works while loading
        await pilot.press("escape")
        src.gate.set()  # the read under way ends; the loader sees it was cancelled
        await settle(pilot)
        assert app.load_cancelled
        assert "loading cancelled" in " ".join(app.status_parts())
        assert 0 < app.source.data.n < 2001


@sync
async def test_damaged_file_shows_error_screen():
    raw = bytearray(sample_program().data())
    raw[-30] ^= 0xFF
    app = FlowtraceApp(source(bytes(raw)))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        await pilot.press("escape")
        assert len(app.rows) > 0
        assert any("damaged" in p for p in app.status_parts())


@sync
async def test_command_palette_runs_app_command():
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c", "ctrl+p")
        await pilot.press(*"hot path")
        # the palette searches in the background: wait for its first hit to show
        await until(pilot, lambda: isinstance(app.screen, CommandPalette)
                    and app.screen.query_one(CommandList).option_count > 0)
        await pilot.press("enter")
        await pilot.pause()
        assert name_at(app, app.tree.cursor_pos) == "fib" and app.tree.cursor_pos == 4


@sync
async def test_follow_poll_picks_up_appended_chunks(tmp_path):
    """With a poll interval the loader keeps reading a growing file (the live view's hook)."""
    from flowtrace_tui.model.source import TraceSource

    b = wide_program(10)
    full = b.data(finish=True)
    path = tmp_path / "grow.ftr"
    cut = len(full) // 2
    path.write_bytes(full[:cut])
    src = TraceSource.open(path)
    app = FlowtraceApp(src, poll_interval=0.02)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.index is not None)
        first = app.source.data.n
        with open(path, "ab") as fh:
            fh.write(full[cut:])
        # (a live file stops "loading" once caught up: wait for the final index too)
        await until(pilot, lambda: app.source.data.finished and not app.loading and app.index.n == app.source.data.n)
        assert app.source.data.n == 11 > first
        assert app.index.n == 11
        assert np.all(app.rows.rows[:-1] < app.rows.rows[1:])


@sync
async def test_the_source_excerpt_is_highlighted_once_however_often_the_screen_is_laid_out(tmp_path, monkeypatch):
    """GIVEN the detail pane showing a call's source excerpt, WHEN the screen is laid out
    again and again (a live session's status line, loading bar and ticks did that several
    times a second), THEN the excerpt stays on screen and is highlighted only once (the
    lexer was the UI thread's largest cost following a busy program)."""
    from rich.syntax import Syntax

    from .apps import screen_lines

    prog = tmp_path / "prog.py"
    prog.write_text("".join(f"value_{i} = {i}\n" for i in range(1, 30)))
    b = TraceBuilder()
    b.func("f", file=str(prog), line=10)
    b.leave(b.enter("f"), "r")
    lexed = []
    highlight = Syntax.highlight
    monkeypatch.setattr(Syntax, "highlight", lambda self, *a, **k: lexed.append(1) or highlight(self, *a, **k))
    app = FlowtraceApp(source(b.data()))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: not app.loading)
        app.tree.move_to_pos(int(app.index.pos_of[1]))
        await until(pilot, lambda: "value_10 = 10" in "\n".join(screen_lines(app)))
        once = len(lexed)
        for _ in range(5):
            app.screen.refresh(layout=True)
            await pilot.pause()
        assert "value_10 = 10" in "\n".join(screen_lines(app))
        assert len(lexed) == once == 1


@sync
async def test_the_loader_holds_the_gil_briefly_while_the_explorer_runs():
    """GIVEN the explorer, WHEN it runs, THEN a thread holding the GIL (the loader reading or
    indexing) gives it to the UI thread after UI_SWITCH_INTERVAL_S instead of Python's 5 ms
    (the UI thread waits that long at each turn of its event loop: screen updates of a busy
    live session took 4-10 times their CPU time), and the process's own interval is back once
    the explorer ends."""
    import sys

    from flowtrace_tui.app import UI_SWITCH_INTERVAL_S

    before = sys.getswitchinterval()
    assert before > UI_SWITCH_INTERVAL_S
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert sys.getswitchinterval() == UI_SWITCH_INTERVAL_S
    assert sys.getswitchinterval() == before


@sync
async def test_the_objects_made_at_the_start_are_left_out_of_full_collections_while_the_explorer_runs():
    """GIVEN the explorer, WHEN it is up, THEN what was made until then (modules, widgets,
    styles: they live as long as the app) is frozen out of the collector's full passes, which
    hold the GIL for the UI and the loader alike (40-110 ms each, 8 in 12 s following a busy
    program; 8-48 ms frozen); once the explorer ends they are collectable again."""
    import gc

    gc.unfreeze()  # (another test's leftovers: none expected)
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        frozen = gc.get_freeze_count()
        assert frozen > 10_000
    assert gc.get_freeze_count() == 0


@sync
async def test_snapshots_queued_behind_each_other_are_shown_once_the_newest(monkeypatch):
    """GIVEN several index snapshots queued for the UI at once (a busy live session while the
    screen draws), THEN only the newest is carried to and shown -- the view is not carried
    to each older one in turn -- and a final snapshot is not replaced by a later one that is
    not (loading's end would be lost)."""
    from flowtrace_tui.messages import IndexReady

    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        applied = []
        apply = app._apply_index
        monkeypatch.setattr(app, "_apply_index", lambda ix: applied.append(ix) or apply(ix))
        older = [app.pipeline.build() for _ in range(3)]
        newest = app.pipeline.build()
        for ix in older:
            app.post_message(IndexReady(ix, False))
        app.post_message(IndexReady(newest, False))
        await settle(pilot)
        assert applied == [newest] and app.index is newest
        applied.clear()
        final = app.pipeline.build()
        app.post_message(IndexReady(final, True))
        app.post_message(IndexReady(newest, False))
        await settle(pilot)
        assert applied == [final, newest]


@sync
async def test_load_finished_as_the_app_closes_is_ignored():
    """The loader's last LoadFinished may arrive while the app is closing, its widgets removed
    one by one: with the call tree already gone (the loading bar still there) it is dropped,
    not a NoMatches traceback (seen in the full suite under load, quitting a followed file)."""
    from flowtrace_tui.messages import LoadFinished
    from flowtrace_tui.widgets.call_tree import CallTree
    from textual.css.query import NoMatches

    app = sample_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        screen, found, query_one = app._main, app.main_widget, app._main.query_one
        app._found.clear()  # the screen as it closes: the call tree removed before the loading bar
        app.main_widget = lambda kind: None if kind is CallTree else found(kind)

        def query_gone(kind, *args):
            if kind is CallTree:
                raise NoMatches("the call tree is gone")
            return query_one(kind, *args)

        screen.query_one = query_gone
        try:
            app.on_load_finished(LoadFinished(cancelled=False))
        finally:
            app.main_widget, screen.query_one = found, query_one
