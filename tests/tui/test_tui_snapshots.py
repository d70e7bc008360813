"""Snapshot pictures of the main screens at 80×24 and 120×40 (pytest-textual-snapshot).

The sessions are built in memory with fixed times and no readable source files, so nothing in
the pictures depends on the clock, the machine or the Python version.
Update with: pytest tests/tui/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from .apps import sample_app, settle, threads_app

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


async def _settled(pilot) -> None:
    await settle(pilot)


@SIZES
def test_main_view(snap_compare, size):
    assert snap_compare(threads_app(), terminal_size=size, run_before=_settled)


@SIZES
def test_tree_expanded_no_detail(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("d", "3", "j", "j", "j")

    assert snap_compare(sample_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_detail_of_exception(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("G")

    assert snap_compare(threads_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_search_hits(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("c", "slash", *"price", "enter")
        await settle(pilot)
        await pilot.press("n")

    assert snap_compare(threads_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_help_screen(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(sample_app(), terminal_size=size, run_before=run_before)


def test_filter_dialog(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f", *"1us")
        await pilot.pause()

    assert snap_compare(threads_app(), terminal_size=(100, 30), run_before=run_before)
