"""What a new user hits in the first minutes (issue 9, explorer items 1-10): each test reads the
screen (or the widgets' state) the way the user met the problem."""

from __future__ import annotations

import asyncio
import functools

import pytest

from flowtrace_tui.app import FlowtraceApp

from .apps import sample_app, screen_lines, settle, source, threads_app, wide_program

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


def sync(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


@SIZES
@sync
async def test_find_bar_shows_the_text_being_typed(size):
    app = threads_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"price")
        await pilot.pause()
        bar = [ln for ln in screen_lines(app) if "Aa" in ln and ".*" in ln]
        assert len(bar) == 1 and "price" in bar[0]


def _time_ends(line: str) -> list[int]:
    """Columns just after each time figure in a row ('12 ns', '1.50 µs' …)."""
    import re

    return [m.end() for m in re.finditer(r"\d[\d.,]* ?(?:ns|µs|ms|s)\b", line)]


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (100, 30)], ids=["80x24", "120x40", "100x30"])
@pytest.mark.parametrize("detail", [False, True], ids=["tree", "detail"])
@sync
async def test_header_lines_up_with_rows_under_a_scroll_bar(size, detail):
    app = FlowtraceApp(source(wide_program(200).data()), show_detail=detail)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        lines = screen_lines(app)
        top = next(i for i, ln in enumerate(lines) if ln.startswith(" call"))
        header = lines[top]
        row = lines[top + 2]  # a `handle` row under `main`
        assert "handle" in row and app.tree.show_vertical_scrollbar
        # each column title ends where the figures under it end
        assert header.index("total") + len("total") == _time_ends(row)[0]
        if "self" in header:
            assert header.index("self") + len("self") == _time_ends(row)[1]
