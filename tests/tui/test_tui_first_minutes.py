"""What a new user hits in the first minutes (issue 9, explorer items 1-10): each test reads the
screen (or the widgets' state) the way the user met the problem."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time

import pytest

from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.screens import ErrorScreen

from trace_builder import TraceBuilder, sample_program, threads_program, wide_program

from .apps import notices, sample_app, screen_lines, settle, source, sync, threads_app, until

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


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


# -- 4: a running call in the live view ---------------------------------------------------------


def _detail(app) -> str:
    return app.query_one("#detail").plain_text()


def _row_of_node(app, node: int) -> str:
    row = app.rows.row_of(int(app.index.pos_of[node]))
    return "".join(seg.text for seg in app.tree.render_line(row - int(app.tree.scroll_offset.y)))


@sync
async def test_live_running_call_ticks_in_its_row_and_the_detail_pane(tmp_path):
    from .apps import until
    from trace_builder import Feeder, meta_for

    path = str(tmp_path / "run.ftr")
    b = TraceBuilder(meta=meta_for(os.getpid()))
    b.enter("main", t=0)
    b.leave(b.enter("setup", t=1), t=2)
    b.enter("slow", t=3)
    b.flush()
    feeder = Feeder(b, path)
    src = TraceSource.open(path)
    src.data.meta["origin_ns"] = time.perf_counter_ns()  # time 0 is now: slow runs as long as the test
    app = FlowtraceApp(src, poll_interval=0.02)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        await until(pilot, lambda: app.tree.live_now > 200_000_000
                    and re.search(r"self\s+\d[\d.]* (ms|s)\b", _detail(app)) is not None)
        assert app.index.node(app.tree.cursor_pos) == 3  # follow mode: the newest call
        row = _row_of_node(app, 3)
        figures = re.findall(r"\d[\d.]* (?:ns|µs|ms|s)\b", row.split("⋯")[1])
        assert len(figures) >= 2 and all(not f.startswith("0 ") for f in figures[:2]), row
        body = _detail(app)
        assert "⋯ running" in body and "no end recorded" not in body
        assert re.search(r"total\s+\d[\d.]* (ms|s)\b", body) and re.search(r"self\s+\d[\d.]* (ms|s)\b", body), body
        # a new call: follow mode selects it and the pane shows it at the same update
        b.leave(3, t=4)
        b.enter("later", parent=1, t=5)
        b.flush()
        feeder.sync()
        await until(pilot, lambda: app.index.n == 4)
        assert app.index.node(app.tree.cursor_pos) == 4
        assert "call        later" in _detail(app)
        app.exit()


# -- 5: a function without parameters ---------------------------------------------------------


@sync
async def test_detail_pane_tells_no_arguments_from_arguments_not_captured():
    b = TraceBuilder()
    m = b.enter("main", args="")  # recorded: a call without arguments
    b.leave(b.enter("work"), "1")  # args None: not captured (--no-args)
    b.leave(m, "None")
    app = FlowtraceApp(source(b.data()))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "args        (none)" in _detail(app)
        await pilot.press("j")
        assert "args        (not captured)" in _detail(app)


# -- 7: what must survive a narrow terminal --------------------------------------------------


@pytest.mark.parametrize("live", [False, True], ids=["file", "live"])
@sync
async def test_footer_keeps_help_and_quit_at_80_columns(live, tmp_path):
    from .apps import until
    from trace_builder import Feeder, meta_for

    if live:
        path = str(tmp_path / "live.ftr")
        b = TraceBuilder(meta=meta_for(os.getpid()))
        b.enter("main", t=0)
        b.flush()
        Feeder(b, path)
        app = FlowtraceApp(TraceSource.open(path), poll_interval=0.02, log_path=str(tmp_path / "out.log"))
    else:
        app = threads_app()
    async with app.run_test(size=(80, 24)) as pilot:
        if live:
            await until(pilot, lambda: app.index is not None and not app.loading)
        else:
            await settle(pilot)
        await until(pilot, lambda: "Quit" in screen_lines(app)[-1], timeout=5)
        footer = screen_lines(app)[-1]
        assert "? Help" in footer and "q Quit" in footer and "/ Search" in footer, footer
        if live:
            assert "F Follow" in footer, footer
        app.exit()


@sync
async def test_status_line_keeps_the_hit_count_at_80_columns():
    app = FlowtraceApp(source(threads_program().data(), "checkout-service-integration-run.ftr"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("c", "slash", *"price", "enter")
        await settle(pilot)
        status = screen_lines(app)[-2]
        assert "hit 1 of 3" in status and "finished, exit 0" in status, status


# -- 8: wording ---------------------------------------------------------------------------------


@sync
async def test_wording_of_keys_palette_and_counts():
    app = sample_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert "Cancel loading" not in commands  # loading is over
        assert commands["Expand to depth 1"] == "Show 1 level below the roots (1)"
        assert [t for t in commands if t.startswith("Expand to depth")] == [f"Expand to depth {d}" for d in range(1, 10)]
        assert commands["Expand subtree"].endswith("(e)")
        # the footer's name for the same key (the footer composes its keys on its own turn: seen
        # blank right after settle in the full suite at load 28)
        await until(pilot, lambda: "e Expand subtree" in screen_lines(app)[-1], timeout=30)
        await pilot.press("question_mark")
        rows = app.screen.rows
        assert ("<", "Detail narrower") in rows and (">", "Detail wider") in rows
        assert not any("_sign" in k for k, _ in rows)
        await pilot.press("escape", "slash", *"check", "enter")
        await settle(pilot)
        assert "hit 1 of 1" in app.status_parts()
        await pilot.press("g")
        assert "1 hit" in app.status_parts()


# -- 9: deep recursion --------------------------------------------------------------------------


@SIZES
@sync
async def test_deep_recursion_keeps_names_on_screen(size):
    b = TraceBuilder()
    calls = [b.enter("walk", args=f"n={n}") for n in range(120)]
    for c in reversed(calls):
        b.leave(c, "0")
    app = FlowtraceApp(source(b.data()), show_detail=False)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("H")  # the hot path: down to the deepest call
        await settle(pilot)
        lines = screen_lines(app)
        deepest = next(ln for ln in lines if "walk(n=119)" in ln)
        assert "…[119]" in deepest  # the depth, as a number
        assert deepest.index("walk(n=119)") < size[0] // 2  # the name in the left half
        for n in range(100, 119):  # every row on screen shows its name
            if any(f"[{n}]" in ln for ln in lines):
                assert any(f"walk(n={n})" in ln for ln in lines)


# -- 10: asyncio tasks and their creators -------------------------------------------------------


def _async_program() -> TraceBuilder:
    """As recorded from `asyncio.run(main())` where main creates two fetch tasks: each task's
    coroutine runs under <module> (the event loop is not recorded), not under main."""
    b = TraceBuilder(step=1000)
    mod = b.enter("<module>", kind="module")
    main = b.enter("main", task=1, args="")
    b.task(1, "Task-1", root=main, creator=mod)
    b.suspend(main)
    f1 = b.enter("fetch", parent=mod, task=2, args="i=0")
    b.task(2, "Task-2", root=f1, creator=main)
    b.leave(b.enter("parse", task=2, args="i=0"), "0")
    b.leave(f1, "0")
    f2 = b.enter("fetch", parent=mod, task=3, args="i=1")
    b.task(3, "Task-3", root=f2, creator=main)
    b.leave(f2, "2")
    b.resume(main, mod)
    b.leave(main, "2")
    b.leave(mod)
    return b


@sync
async def test_task_root_shows_its_creator_and_C_goes_there():
    app = FlowtraceApp(source(_async_program().data(), "aio.ftr"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = _screen_text(app)
        assert "fetch(i=0) {Task-2 ← main} → 0" in text and "main() {Task-1 ← <module>}" in text
        await pilot.press("j", "j", "l", "j")  # fetch(i=0) -> parse, a call inside Task-2
        assert app.index.node(app.tree.cursor_pos) == 4
        assert "task        Task-2, created by main (C selects it)" in _detail(app)
        assert str(app.query_one("#detail-path").render()).endswith("(created by main)")
        await pilot.press("C")
        assert app.index.node(app.tree.cursor_pos) == 2  # main
        seen = notices(app)
        await pilot.press("g", "C")  # <module> runs in no task: a notice, the cursor stays
        assert app.tree.cursor_pos == 0
        assert any("no asyncio task" in n for n in seen)


@sync
async def test_t_cycles_thread_task_and_no_grouping():
    app = FlowtraceApp(source(_async_program().data(), "aio.ftr"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        ix = app.index
        main_self = int(ix.self_time[2]), int(ix.self_time[1])
        await pilot.press("t")  # by task: every task's coroutine under a group of its own
        await settle(pilot)
        assert app.grouping == "task" and "by task" in app.status_parts()
        tops = [app.index.group(app.index.node(int(p))) for p in app.index.top_level()]
        labels = [g.label if g else app.index.data.func_name(int(app.index.data.col("func")[app.index.node(int(p))]))
                  for g, p in zip(tops, app.index.top_level())]
        assert labels == ["<module>", "Task-1", "Task-2", "Task-3"]
        assert app.index.parent[3] == app.index.groups[1].node  # fetch(i=0) under "task Task-2"
        # self times are the call tree's: a task's time is not moved to <module>
        assert (int(app.index.self_time[2]), int(app.index.self_time[1])) == main_self
        await pilot.press("t")
        await settle(pilot)
        assert app.grouping == "off" and "ungrouped" in app.status_parts()
        await pilot.press("t")
        await settle(pilot)
        assert app.grouping == "thread" and app.index.parent[3] == 1


# -- issue 8, item 9: module code of installed packages ------------------------------------------


@sync
async def test_site_packages_module_rows_are_named_by_module():
    site = "/venv/lib/python3.12/site-packages"
    b = TraceBuilder(meta={"cwd": "/home/me/project"})
    top = b.enter("<module>", kind="module", file="/home/me/project/app.py")
    for mod in ("rich.markdown", "rich.console", "rich"):
        path = f"{site}/{mod.replace('.', '/')}.py" if mod != "rich" else f"{site}/rich/__init__.py"
        b.leave(b.enter("<module>", kind="module", module=mod, file=path))
    b.leave(top)
    app = FlowtraceApp(source(b.data()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = _screen_text(app)
        assert "<module> app.py" in text
        for mod in ("rich.markdown", "rich.console", "rich"):
            assert f"<module> {mod} " in text
        assert "site-pack" not in " ".join(screen_lines(app)[:6])


# -- issue 8, item 8: the call columns follow what the file holds -------------------------------


def test_call_columns_are_sized_by_the_calls_the_file_holds(tmp_path):
    from flowtrace_tui.model.source import GUESS_MAX_CALLS, recorded_calls

    path = tmp_path / "w.ftr"
    data = wide_program(3000).data()
    path.write_bytes(data)
    assert recorded_calls(path, len(data)) == 3001
    src = TraceSource.open(path)
    assert src.data._calls.cap == 3002  # the calls and the sentinel row (was size // 3 rows)
    src.close()
    path.write_bytes(data[: len(data) // 2])  # no ENDS: a guess from the size, bounded
    assert recorded_calls(path, len(data) // 2) is None
    src = TraceSource.open(path)
    assert src.data._calls.cap <= max(1024, min(len(data) // 6, GUESS_MAX_CALLS) + 1)
    src.close()
