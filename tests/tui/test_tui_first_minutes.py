"""What a new user hits in the first minutes (issue 9, explorer items 1-10): each test reads the
screen (or the widgets' state) the way the user met the problem."""

from __future__ import annotations

import asyncio
import functools
import os
import socket

import pytest

from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.screens import ErrorScreen

from .apps import sample_app, screen_lines, settle, source, threads_app, wide_program
from .builder import TraceBuilder, sample_program

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


def _screen_text(app) -> str:
    return " ".join(" ".join(ln.split()) for ln in screen_lines(app))


def _excluded_session(finish: bool = True, **meta) -> bytes:
    opts = {"args": "safe", "include": [], "exclude": ["*"], "flush_interval_s": 0.1}
    return TraceBuilder(meta={"options": opts, **meta}).data(finish=finish)


@sync
async def test_session_with_every_call_excluded_says_why():
    app = FlowtraceApp(source(_excluded_session()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not isinstance(app.screen, ErrorScreen)
        text = _screen_text(app)
        assert "No calls were recorded: nothing matched the recording's filters (--exclude '*')." in text
        assert "finished, exit 0" in text and "0 calls" in text
        await pilot.press("t", "slash", *"x", "enter", "e", "c", "H", "3", "j")  # nothing breaks
        await settle(pilot)
        assert not isinstance(app.screen, ErrorScreen)


@sync
async def test_live_session_with_nothing_matched_yet_says_so():
    meta = {"pid": os.getpid(), "hostname": socket.gethostname()}
    app = FlowtraceApp(source(_excluded_session(finish=False, **meta)), poll_interval=0.02)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if not app.loading:
                break
        await pilot.pause()
        text = _screen_text(app)
        assert "No calls yet: nothing matched the recording's filters (--exclude '*') so far." in text
        assert "following" in text and "Loading" not in text
        app.exit()


@pytest.mark.parametrize("cut", [16, 20], ids=["after-header", "inside-meta"])
@sync
async def test_file_cut_inside_its_metadata_is_reported_not_followed(cut, tmp_path):
    path = tmp_path / "cut.ftr"
    path.write_bytes(sample_program().data()[:cut])
    os.utime(path, (1, 1))  # written long ago: no recorder is still writing it
    app = FlowtraceApp(TraceSource.open(path), poll_interval=0.02)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if isinstance(app.screen, ErrorScreen):
                break
        assert isinstance(app.screen, ErrorScreen)
        assert "the file ends inside its session metadata (META chunk): it" in _screen_text(app)
        assert app.screen.message == "the file ends inside its session metadata (META chunk): it was cut short"
        await pilot.press("escape")
        await pilot.pause()
        text = _screen_text(app)
        assert "Could not load: the file ends inside its session metadata" in text
        assert "loading failed" in text and "following" not in text and not app.loading
        assert app.workers._workers == set() or all(w.is_finished for w in app.workers)


@sync
async def test_damaged_first_chunk_says_no_call_could_be_read():
    raw = bytearray(sample_program().data())
    first = raw.index(b"CALL")
    raw[first + 20] ^= 0xFF
    app = FlowtraceApp(source(bytes(raw)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("escape")  # the damage notice
        await pilot.pause()
        assert "No calls could be read: corrupt CALL chunk at offset" in _screen_text(app)


class _FailingSource(TraceSource):
    """Reads one small step, then fails as an allocation would on a huge file."""

    def step(self):
        self.reader.read_size = 64
        if self.data.n:
            raise MemoryError("Unable to allocate 4.00 GiB for an array")
        return super().step()


@sync
async def test_failure_while_loading_is_shown_and_what_was_read_kept():
    data = wide_program(500).data()
    app = FlowtraceApp(_FailingSource(ChunkReader.from_bytes(data, name="big.ftr"), len(data)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "MemoryError: Unable to allocate 4.00 GiB" in _screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert "loading failed" in _screen_text(app)
        assert len(app.rows) > 0
