"""The functions view through Textual's pilot: what is on screen after each key (v, s, r, /, x,
enter, tab, alt+left, alt+right), the jumps between it and the call tree, and a live session."""

from __future__ import annotations

import os

from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.function_rows import FunctionSort
from flowtrace_tui.model.history import FUNCTIONS, TREE, Place
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.screens import HelpScreen
from flowtrace_tui.screens.functions import FunctionsScreen
from textual.command import CommandPalette
from textual.widgets import Input

from .apps import at_rest, screen_lines, settle, sync, threads_app, type_ahead, until
from trace_builder import Feeder, TraceBuilder, meta_for

POLL = 0.05


def table_names(app) -> list[str]:
    """The function names of the functions table's rows, top to bottom, as on screen."""
    screen = app.screen
    assert isinstance(screen, FunctionsScreen)
    table = screen.functions
    return [table.line(i).cells[0] for i in range(table.count)]


def link_lines(app) -> list[str]:
    links = app.screen.link_list
    return [" ".join(c for c in links.line(i).cells if c) for i in range(links.count)]


def status(app) -> str:
    return " ".join(app.screen.query_one("#functions-status").render().plain.split())


def tree_call(app) -> int:
    return app.index.node(app.tree.cursor_pos)


async def settled(pilot) -> None:
    await settle(pilot)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@sync
async def test_v_opens_the_function_of_the_selected_call_and_goes_back():
    app = threads_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")  # main, its first order_total
        assert tree_call(app) == 3
        await pilot.press("v")
        await settled(pilot)
        screen = app.screen
        assert isinstance(screen, FunctionsScreen)
        assert table_names(app) == ["main", "Worker.run", "order_total", "price_of", "fetch"]
        assert screen.functions.cursor_row == 2 and screen.selected_fid == app.index.data.col("func")[3]
        lines = screen_lines(app)
        assert lines[0].split() == ["function", "module", "file:line", "calls", "↓total", "self", "mean", "max",
                                    "share", "raised"]
        assert lines[3].split() == ["order_total", "__main__", "…lowtrace-test/prog.py:1", "4", "10.0", "µs",
                                    "7.00", "µs", "2.50", "µs", "3.00", "µs", "27.8%", "1"]
        assert "functions │ shop.ftr │ 5 functions │ 10 calls │ sort total ↓ (s, r)" in " ".join(lines)
        # its callers, callees and slowest calls below
        assert link_lines(app) == [
            "Called by (1 function): calls, total, self of order_total", "main __main__ 4 10.0 µs 7.00 µs",
            "Calls (1 function): calls, total, self", "price_of __main__ 3 3.00 µs 3.00 µs",
            "Its calls, slowest first (4): enter shows one in the call tree",
            "#3 +2.00 µs 3.00 µs MainThread order_id=0, items=[0, 1]",
            "#5 +6.00 µs 3.00 µs MainThread order_id=1, items=[1, 2]",
            "#7 +10.0 µs 3.00 µs MainThread order_id=2, items=[2, 3]",
            "#10 +16.0 µs 1.00 µs raised MainThread order_id=99, items=[]"]
        footer = lines[-1]
        assert "v Call tree" in footer and "s Sort" in footer and "/ Search" in footer
        # v goes back to the tree, on the call it showed
        await pilot.press("v")
        await settled(pilot)
        assert app.screen is app._main and tree_call(app) == 3
        assert "v Functions" in screen_lines(app)[-1]


@sync
async def test_sort_by_any_column_and_reverse():
    app = threads_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settled(pilot)
        await pilot.press("s")  # total -> self
        assert table_names(app) == ["Worker.run", "main", "order_total", "price_of", "fetch"]
        assert "↓self" in screen_lines(app)[0] and "sort self ↓" in status(app)
        await pilot.press("r")
        assert table_names(app) == ["fetch", "price_of", "order_total", "main", "Worker.run"]
        assert "↑self" in screen_lines(app)[0]
        await pilot.press("s", "s", "s", "s", "s")  # mean, max, share, raised, calls
        assert table_names(app)[:2] == ["order_total", "price_of"] and "↓calls" in screen_lines(app)[0]
        await pilot.press("S")
        assert table_names(app)[0] == "order_total" and "↓raised" in screen_lines(app)[0]


@sync
async def test_search_filters_the_functions_and_finds_in_the_tree():
    app = threads_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settled(pilot)
        await pilot.press("slash", *"price", "enter")
        await settled(pilot)
        assert table_names(app) == ["price_of"]
        assert "1 of 5 functions" in status(app) and "search /price/ (x clears)" in status(app)
        assert len(app.hits) == 3  # the tree's search too (n / N there)
        await pilot.press("x")
        await settled(pilot)
        assert len(table_names(app)) == 5 and "search" not in status(app)
        # a search made in the tree filters the functions view when it opens
        await pilot.press("v")
        await pilot.press("slash", *"fetch", "enter")
        await settled(pilot)
        await pilot.press("v")
        await settled(pilot)
        assert table_names(app) == ["fetch"]
        await pilot.press("slash", *"zzz", "enter")
        await settled(pilot)
        assert table_names(app) == [] and "No function matches the search (x clears it)." in "\n".join(screen_lines(app))


@sync
async def test_a_word_typed_ahead_after_slash_goes_to_the_find_bar():
    """/ and a word typed while the app is busy (every key queued before the first is handled)
    reach the functions view's find bar, not its table (where r reverses the order), also
    when the view opens (v) in the same breath."""
    app = threads_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        type_ahead(app, "v/price")  # the view opens (for the first time) and the bar in it
        await at_rest(pilot)
        await settled(pilot)
        assert isinstance(app.screen, FunctionsScreen)
        assert app.focused is app.screen.query_one("#functions-find").query_one(Input)
        assert app.focused.value == "price" and app.screen.sort == FunctionSort()  # (r: reversed)
        await pilot.press("enter")
        await settled(pilot)
        assert table_names(app) == ["price_of"]


@sync
async def test_jumps_and_back_forward_history():
    app = threads_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")  # order_total #3
        await pilot.press("v")
        await settled(pilot)
        screen = app.screen
        data = app.index.data
        fid = {data.func_name(f): f for f in range(1, len(data.functions))}
        await pilot.press("enter")  # to the links list
        assert screen.link_list.has_focus and screen.link_list.cursor_row == 1  # the first caller (a title skipped)
        await pilot.press("enter")  # main, its caller
        await settled(pilot)
        assert screen.selected_fid == fid["main"] and table_names(app)[screen.functions.cursor_row] == "main"
        # main's slowest call: the last line; enter shows it in the tree
        screen.link_list.focus()
        await pilot.press("end", "enter")
        await settled(pilot)
        assert app.screen is app._main and tree_call(app) == 1
        assert app.functions.history.entries == [Place(TREE, 3), Place(FUNCTIONS, fid["order_total"]),
                                                 Place(FUNCTIONS, fid["main"]), Place(TREE, 1)]
        await pilot.press("alt+left")
        await settled(pilot)
        assert app.screen is screen and screen.selected_fid == fid["main"]
        await pilot.press("alt+left")
        await settled(pilot)
        assert screen.selected_fid == fid["order_total"]
        await pilot.press("alt+left")
        await settled(pilot)
        assert app.screen is app._main and tree_call(app) == 3
        await pilot.press("alt+left")  # nothing earlier: said so
        await settled(pilot)
        assert app.screen is app._main and tree_call(app) == 3
        await pilot.press("alt+right", "alt+right", "alt+right")
        await settled(pilot)
        assert app.screen is app._main and tree_call(app) == 1


@sync
async def test_help_and_palette_name_the_keys():
    app = threads_app()
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = dict(help_screen.rows)
        assert rows["v"].startswith("Functions view / back to the call tree")
        assert rows["alt+left alt+right"].startswith("Back / forward")
        assert rows["s"] == "Sort" and rows["r"] == "Reverse" and rows["x"] == "Clear search"
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"functions view", "enter")
        await settled(pilot)
        assert isinstance(app.screen, FunctionsScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"sort by the next", "enter")
        await settled(pilot)
        assert app.screen.sort.column == "self"


@sync
async def test_the_functions_view_follows_a_live_session(tmp_path):
    path = str(tmp_path / "grow.ftr")
    b = TraceBuilder(meta=meta_for(os.getpid()))
    m = b.enter("main")
    b.leave(b.enter("step"))
    b.flush()
    feed = Feeder(b, path)
    app = FlowtraceApp(TraceSource.open(path), poll_interval=POLL)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, FunctionsScreen) and app.screen.table is not None
                    and app.screen.table.complete)
        assert table_names(app) == ["main", "step"]
        feed.step_calls(["step", "step", "late"])
        await until(pilot, lambda: app.screen.table.index.n == 5 and app.screen.table.complete)
        await pilot.pause()
        assert sorted(table_names(app)) == ["late", "main", "step"]
        assert app.screen.functions.line(table_names(app).index("step")).cells[3] == "3"
        b.leave(m, "0")
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished)
        await app.workers.wait_for_complete()
