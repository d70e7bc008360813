"""Snapshot pictures of the functions view (pytest-textual-snapshot), at 80×24 and 120×40: the
table with the selected function's callers, callees and slowest calls; sorted, searched, and
with the cursor in the list of calls.
Update with: pytest tests/tui/test_functions_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from .apps import settle, threads_app

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


async def _functions(pilot, *keys: str) -> None:
    await settle(pilot)
    await pilot.press("j", "j", "v")  # order_total's row
    await settle(pilot)
    await pilot.app.workers.wait_for_complete()
    if keys:
        await pilot.press(*keys)
        await settle(pilot)
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@SIZES
def test_functions_view(snap_compare, size):
    assert snap_compare(threads_app(), terminal_size=size, run_before=_functions)


@SIZES
def test_functions_sorted_searched_and_a_call_selected(snap_compare, size):
    async def run_before(pilot):
        await _functions(pilot, "s", "slash", *"order", "enter")
        await pilot.press("enter")  # (the calls of the function load in a worker: "end" waits for them)
        await settle(pilot)
        await pilot.app.workers.wait_for_complete()
        await pilot.press("end")
        await settle(pilot)
        await pilot.pause()

    assert snap_compare(threads_app(), terminal_size=size, run_before=run_before)
