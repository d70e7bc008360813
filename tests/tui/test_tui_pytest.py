"""Sessions of pytest --flowtrace in the explorer: the failure found in the tree
(model/pytest_sessions.py), the session picker of `flowtrace-tui DIR` (screens/picker.py) and a
test session opening on its failure. Sessions are built in memory with fixed times."""

from __future__ import annotations

import os

import pytest

from flowtrace.ftr import format as F
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.pytest_sessions import SessionEntry, failure_call, list_sessions, read_entry
from textual.widgets import DataTable

from flowtrace_tui.screens.picker import PickerApp, SessionPicker
from flowtrace_tui.widgets import DetailPane

from trace_builder import TraceBuilder

from .apps import settle, source, sync

PHASE_FILE = "<pytest phase>"
ERROR_TEXT = "AssertionError: x is not four\nassert 3 == 4"


def _test_builder(nodeid: str) -> TraceBuilder:
    b = TraceBuilder(step=1000, meta={"command": "pytest", "pytest": {"nodeid": nodeid, "worker": None}})
    for phase in ("setup", "call", "teardown"):
        b.func(phase, module="pytest", file=PHASE_FILE)
    return b


def _finish(b: TraceBuilder, nodeid: str, outcome: str, phase: str | None, exception: str | None,
            duration: float = 0.004) -> bytes:
    b.flush()
    test = {"nodeid": nodeid, "outcome": outcome, "phases": {}, "duration_s": duration, "failed_phase": phase,
            "exception": exception, "message": exception, "location": None}
    b.writer.finish({"t_end_abs": b._t(None), "reason": "stopped", "exit_code": None, "signal": None,
                     "error": exception, "test": test})
    return b.out.getvalue()


def _setup_yield_fixture(b: TraceBuilder, name: str, value: str) -> int:
    """The setup phase of a test: a yield fixture that runs up to its `yield`."""
    s = b.enter("setup", module="pytest")
    fx = b.enter(name, kind="generator")
    b.suspend(fx, value)
    b.leave(s, "None")
    return fx


def _teardown_resuming(b: TraceBuilder, fixture: int, raised: str | None = None) -> None:
    """The teardown phase: it resumes the fixture, which returns or raises `raised`."""
    td = b.enter("teardown", module="pytest")
    b.resume(fixture, td)
    b.leave(fixture, "None" if raised is None else None, raised=raised)
    b.leave(td, "None" if raised is None else None, raised=raised)


def failing_session(nodeid: str = "test_shop.py::test_total", *, handled_first: bool = False) -> tuple[bytes, int]:
    """setup (a yield fixture) / call: test_total -> total -> check raises / teardown. With
    `handled_first`, an equal exception raised earlier in a child and handled comes first.
    Returns the session and the id of the call that raised."""
    b = _test_builder(nodeid)
    fx = _setup_yield_fixture(b, "cart", "[1, 2]")
    c = b.enter("call", module="pytest")
    t = b.enter("test_total", args="cart=[1, 2]")
    if handled_first:
        early = b.enter("check", args="x=0")
        b.leave(early, raised=ERROR_TEXT)
        b.mark(t, F.MARK_HANDLED, ERROR_TEXT)
    tot = b.enter("total", args="xs=[1, 2]")
    b.leave(b.enter("add", args="a=1, b=2"), "3")
    chk = b.enter("check", args="x=3")
    b.mark(chk, F.MARK_RAISE, ERROR_TEXT)
    b.leave(chk, raised=ERROR_TEXT)
    b.leave(tot, raised=ERROR_TEXT)
    b.leave(t, raised=ERROR_TEXT)
    b.leave(c, raised=ERROR_TEXT)
    _teardown_resuming(b, fx)
    return _finish(b, nodeid, "failed", "call", ERROR_TEXT), chk


def teardown_error_session() -> tuple[bytes, int]:
    """The fixture's code after `yield` raises when teardown resumes it."""
    nodeid = "test_db.py::test_query"
    b = _test_builder(nodeid)
    fx = _setup_yield_fixture(b, "db", "1")
    c = b.enter("call", module="pytest")
    b.leave(b.enter("test_query", args="db=1"), "None")
    b.leave(c, "None")
    _teardown_resuming(b, fx, raised="RuntimeError: cleanup failed")
    return _finish(b, nodeid, "error", "teardown", "RuntimeError: cleanup failed"), fx


def passing_session(nodeid: str = "test_shop.py::test_ok") -> bytes:
    b = _test_builder(nodeid)
    b.leave(b.enter("setup", module="pytest"), "None")
    c = b.enter("call", module="pytest")
    b.leave(b.enter("test_ok"), "None")
    b.leave(c, "None")
    b.leave(b.enter("teardown", module="pytest"), "None")
    return _finish(b, nodeid, "passed", None, None, duration=0.0012)


def _data(raw: bytes):
    src = source(raw)
    while not src.done and src.step().more:
        pass
    return src.data


# -- the failure in the tree -------------------------------------------------------------------
def test_failure_call_follows_the_exception_down() -> None:
    raw, raised = failing_session()
    data = _data(raw)
    assert failure_call(data) == raised and data.func_name(int(data.col("func")[raised])) == "check"


def test_failure_call_skips_an_equal_exception_handled_earlier() -> None:
    raw, raised = failing_session(handled_first=True)
    assert failure_call(_data(raw)) == raised


def test_failure_call_in_a_yield_fixture_resumed_by_teardown() -> None:
    raw, fixture = teardown_error_session()
    assert failure_call(_data(raw)) == fixture


def test_no_failure_call_for_a_passing_test_or_another_session() -> None:
    assert failure_call(_data(passing_session())) == 0
    b = TraceBuilder()
    b.leave(b.enter("main"), raised="ValueError: x")
    assert failure_call(_data(b.data())) == 0


# -- listing a directory ---------------------------------------------------------------------
def _write_dir(tmp_path) -> list[str]:
    """Three sessions and a file that is not one, with fixed modification times."""
    files = {
        "test_shop.py__test_ok.ftr": (passing_session(), 300),
        "test_shop.py__test_total.ftr": (failing_session()[0], 100),
        "test_db.py__test_query.ftr": (teardown_error_session()[0], 200),
        "notes.ftr": (b"not a session", 400),
    }
    for name, (raw, mtime) in files.items():
        (tmp_path / name).write_bytes(raw)
        os.utime(tmp_path / name, (1_700_000_000 + mtime, 1_700_000_000 + mtime))
    (tmp_path / ".gitignore").write_text("*\n")
    return list(files)


def test_list_sessions_failed_first_then_newest(tmp_path) -> None:
    _write_dir(tmp_path)
    entries = list_sessions(str(tmp_path))
    assert [(e.test, e.outcome, e.calls) for e in entries] == [
        ("test_db.py::test_query", "error", 5),
        ("test_shop.py::test_total", "failed", 8),
        ("notes.ftr", "unreadable", None),
        ("test_shop.py::test_ok", "passed", 4),
    ]
    assert entries[1].duration_s == 0.004 and "not a flowtrace session" in (entries[2].problem or "")


def test_entry_of_an_unfinished_session(tmp_path) -> None:
    b = _test_builder("t.py::test_x")
    b.enter("setup", module="pytest")
    path = tmp_path / "t.ftr"
    path.write_bytes(b.data(finish=False))
    entry = read_entry(str(path))
    assert (entry.test, entry.outcome, entry.calls) == ("t.py::test_x", "unfinished", None)


# -- the picker --------------------------------------------------------------------------------
ENTRIES = [
    SessionEntry("/s/a.ftr", "tests/test_shop.py::test_total[cart-1]", "failed", 0.0042, 1234, 3.0),
    SessionEntry("/s/b.ftr", "tests/test_db.py::test_query", "error", 0.31, 56, 2.0),
    SessionEntry("/s/c.ftr", "tests/test_shop.py::test_ok", "passed", 0.0012, 5, 4.0),
    SessionEntry("/s/d.ftr", "tests/test_shop.py::test_later", "skipped", 0.0001, 3, 1.0),
]


@sync
async def test_picker_opens_the_chosen_session() -> None:
    app = PickerApp("/s", lister=lambda d: list(ENTRIES))
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SessionPicker)
        await pilot.press("j", "j", "k", "enter")
    assert app.return_value == "/s/b.ftr"


@sync
async def test_picker_filters_as_you_type() -> None:
    app = PickerApp("/s", lister=lambda d: list(ENTRIES))
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(DataTable)
        await pilot.press("slash", *"shop")
        await pilot.pause()
        assert [e.path for e in screen.shown] == ["/s/a.ftr", "/s/c.ftr", "/s/d.ftr"] and table.row_count == 3
        assert "4 sessions, 2 failed; 3 match 'shop'" in str(screen.query_one("#picker-title").render())
        await pilot.press("space", *"OK")  # every word, in any case
        await pilot.pause()
        assert [e.path for e in screen.shown] == ["/s/c.ftr"]
        await pilot.press("enter")  # the rows take the keys again
        assert table.has_focus
        await pilot.press("slash", "backspace", "backspace", "backspace", "escape")  # cleared: all rows, same cursor
        await pilot.pause()
        assert table.row_count == 4 and screen.shown[table.cursor_row].path == "/s/c.ftr" and app.is_running
        await pilot.press("slash", *"nothing-like-it")
        await pilot.pause()
        assert table.row_count == 0
        await pilot.press("enter", "enter")  # no row: nothing opens
        assert app.is_running
        await pilot.press("escape", "enter")
    assert app.return_value == "/s/c.ftr"


@sync
async def test_picker_reload_keeps_the_cursor_on_its_session() -> None:
    listed = list(ENTRIES)
    app = PickerApp("/s", lister=lambda d: list(listed), selected="/s/a.ftr")  # (back from a.ftr)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.press("j", "j")  # c.ftr
        listed.insert(0, SessionEntry("/s/e.ftr", "tests/test_new.py::test_x", "failed", 0.001, 2, 5.0))
        await pilot.press("r", "enter")
    assert app.return_value == "/s/c.ftr"


@sync
async def test_picker_keeps_its_filter_for_the_next_one() -> None:
    app = PickerApp("/s", lister=lambda d: list(ENTRIES))
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.press("slash", *"shop", "enter", "j", "enter")
    assert (app.return_value, app.filter_text) == ("/s/c.ftr", "shop")
    again = PickerApp("/s", lister=lambda d: list(ENTRIES), selected=app.return_value, filter_text=app.filter_text)
    async with again.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        assert [e.path for e in again.screen.shown] == ["/s/a.ftr", "/s/c.ftr", "/s/d.ftr"]
        assert again.screen.query_one(DataTable).has_focus
        await pilot.press("enter")
    assert again.return_value == "/s/c.ftr"


@sync
async def test_picker_starts_on_the_last_opened_and_quits(tmp_path) -> None:
    names = _write_dir(tmp_path)
    chosen = str(tmp_path / names[0])  # the passing test, last in the list
    app = PickerApp(str(tmp_path), selected=chosen)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
    assert app.return_value == chosen
    app = PickerApp(str(tmp_path / "missing"))
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        assert "Cannot list" in str(app.screen.query_one("#picker-empty").render())
        await pilot.press("q")
    assert app.return_value is None


@sync
async def test_picker_refuses_an_unreadable_file(tmp_path) -> None:
    _write_dir(tmp_path)
    app = PickerApp(str(tmp_path))
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        await pilot.press("j", "j", "enter")  # notes.ftr
        await pilot.pause()
        assert app.is_running and app.return_value is None
        await pilot.press("q")


# -- a test session opens on its failure ---------------------------------------------------------
@sync
async def test_session_opens_on_the_failure() -> None:
    raw, raised = failing_session()
    app = FlowtraceApp(source(raw, "test_shop.py__test_total.ftr"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        ix = app.index
        assert ix.node(app.tree.cursor_pos) == raised
        shown = [ix.data.func_name(int(ix.data.col("func")[ix.node(p)])) for p in app.rows.rows.tolist()]
        assert shown[:7] == ["setup", "cart", "call", "test_total", "total", "add", "check"]
        detail = app._main.query_one(DetailPane).plain_text()
        assert "AssertionError: x is not four" in detail and "assert 3 == 4" in detail


@sync
async def test_passing_session_opens_at_the_top() -> None:
    app = FlowtraceApp(source(passing_session()))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.tree.cursor_pos == 0


SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@SIZES
def test_snapshot_picker(snap_compare, size) -> None:
    assert snap_compare(PickerApp("/s", lister=lambda d: list(ENTRIES)), terminal_size=size)


@SIZES
def test_snapshot_opened_on_failure(snap_compare, size) -> None:
    async def run_before(pilot):
        await settle(pilot)

    raw, _ = failing_session()
    assert snap_compare(FlowtraceApp(source(raw, "test_shop.py__test_total.ftr")), terminal_size=size,
                        run_before=run_before)
