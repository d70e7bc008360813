"""The live view: a session file that grows while the explorer (or the tail model) reads it.

Files are appended chunk by chunk by the test (the real SessionWriter, through TraceBuilder), or
written by a real `flowtrace run` child. Everything is bounded in time (deadlines, not sleeps).
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from flowtrace.ftr.reader import load as read_session
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.cli import main as cli_main
from flowtrace_tui.launch import LaunchError, describe_status, log_path_for, run_program
from flowtrace_tui.model.live import FINISHED, GONE, LIVE, UNKNOWN, FollowState, LiveTail, process_alive
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.screens.quit_dialog import QuitDialog
from flowtrace_tui.model.output_log import clean
from flowtrace_tui.widgets.log_pane import LogPane

from trace_builder import Feeder, TraceBuilder, meta_for

from .apps import starved, sync, until  # noqa: F401 (starved: a fixture)

POLL = 0.02


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def cursor_node(app) -> int:
    return app.index.node(app.tree.cursor_pos)


def status(app) -> str:
    return " | ".join(app.status_parts())


# -- the tail model -------------------------------------------------------------------------------

def test_tail_reads_only_new_complete_chunks(tmp_path):
    path = str(tmp_path / "live.ftr")
    b = TraceBuilder(meta=meta_for(os.getpid()))
    m = b.enter("main")
    b.flush()
    feed = Feeder(b, path)
    src = TraceSource.open(path)
    tail = LiveTail(src)
    assert src.data.n == 1 and tail.state == LIVE
    # the batch's chunks land but the last one (EXIT) is cut: its rows wait for the rest
    b.leave(b.enter("a"))
    b.leave(b.enter("b"))
    b.flush()
    feed.sync(keep_back=7)
    batch = tail.poll()
    assert (batch.first_new, batch.n, batch.exits) == (2, 3, 0)
    assert src.reader.pending_bytes > 0
    read_before = src.bytes_read
    feed.sync()
    batch = tail.poll()
    assert (batch.new_calls, batch.exits) == (0, 2)
    assert not tail.poll().changed
    assert src.bytes_read > read_before  # and what was read before is not read again:
    assert tail.poll().bytes_read == 0
    b.leave(m)
    b.data(finish=True)
    feed.sync()
    batch = tail.poll()
    assert batch.exits == 1 and tail.state == FINISHED and tail.done
    src.close()


def test_tail_process_gone_and_unknown(tmp_path):
    path = str(tmp_path / "gone.ftr")
    b = TraceBuilder(meta=meta_for(dead_pid()))
    b.enter("main")
    b.flush()
    Feeder(b, path)
    src = TraceSource.open(path)
    tail = LiveTail(src)
    tail.poll()
    assert tail.gone and tail.done and tail.state == GONE
    src.close()
    other = str(tmp_path / "other.ftr")
    b = TraceBuilder(meta={"pid": os.getpid(), "hostname": "elsewhere.invalid"})
    b.enter("main")
    b.flush()
    Feeder(b, other)
    src = TraceSource.open(other)
    tail = LiveTail(src)
    tail.poll()
    assert tail.state == UNKNOWN and not tail.done
    src.close()


def test_process_alive():
    me = meta_for(os.getpid())
    assert process_alive(me) is True
    assert process_alive({**me, "pid": dead_pid()}) is False
    assert process_alive({**me, "hostname": "elsewhere.invalid"}) is None
    assert process_alive({"hostname": socket.gethostname()}) is None
    # a pid reused by a process that started after the session began (here: a session of 2001)
    assert process_alive({**me, "started_wall_ns": 10**18}) is False


def test_follow_state():
    f = FollowState(following=True)
    f.shown(5)
    assert f.new_calls(5) == 0
    f.follow_node = 5
    assert not f.cursor_moved_to(5)
    assert f.cursor_moved_to(3) and not f.following
    f.shown(9)
    assert f.new_calls(9) == 4
    f.resume(9)
    assert f.following and f.new_calls(9) == 0


def test_log_text_is_cleaned():
    assert clean("a\x1b[31mred\x1b[0m\r\nb\x07\tc\x1b]0;title\x07") == "ared\nb\tc"


def test_launch_helpers():
    assert log_path_for("/a/t.ftr") == "/a/t.log" and log_path_for("t.bin") == "t.bin.log"
    assert describe_status(0) == "exit 0" and describe_status(-signal.SIGINT) == "killed by SIGINT"
    assert describe_status(None) == "running"


# -- the explorer following a growing file -------------------------------------------------------

@sync
async def test_mouse_scrolling_ends_follow_mode(tmp_path):
    """The mouse wheel (or the scroll bar) is manual navigation too: follow mode ends and the
    next update leaves the view where the user scrolled it."""
    from textual import events
    from textual.scrollbar import ScrollTo

    path = str(tmp_path / "scroll.ftr")
    b = TraceBuilder(meta=meta_for(os.getpid()))
    b.enter("main")
    b.flush()
    feed = Feeder(b, path)
    feed.step_calls([f"step{i}" for i in range(80)])
    app = FlowtraceApp(TraceSource.open(path), poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and app.index.n == 81 and cursor_node(app) == 81)
        assert app.live_view.follow.following and app.tree.scroll_offset.y > 0
        # a wheel turn that cannot scroll (already at the bottom) is no navigation
        await pilot._post_mouse_events([events.MouseScrollDown], app.tree, offset=(10, 5))
        assert app.live_view.follow.following
        await pilot._post_mouse_events([events.MouseScrollUp], app.tree, offset=(10, 5))
        await until(pilot, lambda: not app.live_view.follow.following)
        assert "following" not in status(app)
        top = app.tree.scroll_offset.y
        feed.step_calls(["late1", "late2"])
        await until(pilot, lambda: app.index.n == 83)
        await pilot.pause()  # whatever showing that index set in motion is done
        assert app.tree.scroll_offset.y == top and cursor_node(app) == 81 and "+2 new" in status(app)
        # G resumes following; dragging the scroll bar ends it again
        await pilot.press("G")
        assert app.live_view.follow.following and cursor_node(app) == 83
        app.tree.post_message(ScrollTo(y=0, animate=False))
        await until(pilot, lambda: not app.live_view.follow.following)
        await until(pilot, lambda: app.tree.scroll_offset.y == 0)
        feed.step_calls(["late3"])
        await until(pilot, lambda: app.index.n == 84)
        await pilot.pause()
        assert app.tree.scroll_offset.y == 0


def growing_session(path: str) -> tuple[TraceBuilder, int, Feeder, FlowtraceApp]:
    """A session this (running) process records: main -> step0 so far, followed by an app."""
    b = TraceBuilder(meta=meta_for(os.getpid()))
    m = b.enter("main")
    b.leave(b.enter("step0"))
    b.flush()
    feed = Feeder(b, path)
    return b, m, feed, FlowtraceApp(TraceSource.open(path), poll_interval=POLL)


@sync
async def test_explorer_follows_a_growing_file(tmp_path, starved):
    b, m, feed, app = growing_session(str(tmp_path / "grow.ftr"))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        assert app.live_view.active and app.live_view.follow.following
        assert "● LIVE" in status(app) and "following" in status(app)
        assert cursor_node(app) == 2
        # new calls appear and follow mode selects the newest
        feed.step_calls(["step1", "step2", "step3"])
        await until(pilot, lambda: app.index.n == 5)
        await until(pilot, lambda: cursor_node(app) == 5)
        # manual navigation stops following; new calls are counted, the cursor stays
        await pilot.press("k")
        assert not app.live_view.follow.following and cursor_node(app) == 4
        feed.step_calls(["step4", "step5"])
        await until(pilot, lambda: app.index.n == 7)
        assert cursor_node(app) == 4 and "+2 new" in status(app)
        # G resumes following
        await pilot.press("G")
        assert app.live_view.follow.following and cursor_node(app) == 7 and "new" not in status(app)
        # F toggles it off and on
        await pilot.press("F")
        assert not app.live_view.follow.following
        await pilot.press("F")
        assert app.live_view.follow.following
        # pause: data keeps loading, the view does not change
        await pilot.press("P")
        feed.step_calls(["step6", "step7"])
        # the snapshot of the 9 calls arrives and is held (not shown)
        await until(pilot, lambda: app.live_view.held is not None and app.live_view.held.index.n == 9)
        assert app.index.n == 7 and "paused" in status(app) and "+2 new" in status(app)
        await pilot.press("P")
        await until(pilot, lambda: app.index.n == 9)
        await until(pilot, lambda: cursor_node(app) == 9)
        # the end chunk lands: finished
        b.leave(m, "0")
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: app.source.data.finished and "finished" in status(app))
        assert "LIVE" not in status(app)
        await app.workers.wait_for_complete()


@sync
async def test_follow_and_pause_are_not_offered_once_the_session_ended(tmp_path):
    """GIVEN a live session with F and P in the footer, WHEN its end chunk lands, THEN the
    footer, the keys themselves and the help no longer offer follow or pause."""
    from flowtrace_tui.screens import HelpScreen

    from .apps import screen_lines

    b, m, feed, app = growing_session(str(tmp_path / "ends.ftr"))
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and "F Follow" in screen_lines(app)[-1])
        assert "P Pause" in screen_lines(app)[-1]
        b.leave(m, "0")
        b.data(finish=True)
        feed.sync()
        await until(pilot, lambda: "finished" in status(app) and "Quit" in screen_lines(app)[-1]
                    and "Follow" not in screen_lines(app)[-1])  # (the footer's redraw done)
        footer = screen_lines(app)[-1]
        assert "Pause" not in footer and "q Quit" in footer, footer
        assert not app.live_view.can("toggle_follow") and not app.live_view.can("toggle_pause")
        await pilot.press("F")  # not bound any more: nothing happens
        assert "following" not in status(app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = "\n".join(screen_lines(app))
        assert "Follow" not in help_text and "Pause" not in help_text and "Resume follow" not in help_text
        await pilot.press("escape")
        await app.workers.wait_for_complete()


@sync
async def test_running_call_elapsed_ticks(tmp_path):
    path = str(tmp_path / "tick.ftr")
    b = TraceBuilder(meta=meta_for(os.getpid()))
    b.enter("main", t=0)
    b.enter("slow", t=1)
    b.flush()
    Feeder(b, path)
    src = TraceSource.open(path)
    # the session clock is this machine's perf_counter: make the origin "now" so that a call
    # started at time 0 has been running for as long as the test
    src.data.meta["origin_ns"] = time.perf_counter_ns()
    app = FlowtraceApp(src, poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        await until(pilot, lambda: app.tree.live_now > 0, timeout=3)
        first = app.tree.live_now
        await until(pilot, lambda: app.tree.live_now >= first + 400_000_000, timeout=3)
        # the drawn line of the running call shows the elapsed time, not the 1 ns the file knows
        row = app.rows.row_of(int(app.index.pos_of[2]))
        line = "".join(seg.text for seg in app.tree.render_line(row - int(app.tree.scroll_offset.y)))
        assert "slow() ⋯" in line
        shown = line.split("⋯")[1].split()
        assert shown[1] in ("ms", "s") and (shown[1] == "s" or float(shown[0]) >= 400), line
        assert app.index.dur[2] == 0  # what the file says: no time has passed for it


@sync
async def test_explorer_says_ended_without_finishing(tmp_path):
    path = str(tmp_path / "dead.ftr")
    pid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        b = TraceBuilder(meta=meta_for(pid.pid))
        b.enter("main")
        b.leave(b.enter("work"))
        b.flush()
        Feeder(b, path)
        app = FlowtraceApp(TraceSource.open(path), poll_interval=POLL)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.index is not None and not app.loading)
            assert "● LIVE" in status(app)
            pid.kill()
            pid.wait()
            await until(pilot, lambda: "ended without finishing" in status(app))
            await app.workers.wait_for_complete()  # the poller stopped
            assert app.live_view.tail.state == GONE and app.index.n == 2
    finally:
        pid.kill()
        pid.wait()


# -- real processes -------------------------------------------------------------------------------

PROGRAM = textwrap.dedent("""
    import sys, time
    def work(i):
        time.sleep(0.03)
        return i
    def main():
        for i in range(40):
            work(i)
        print("done", flush=True)
    main()
""")


def test_live_recording_read_while_it_grows(tmp_path):
    """`flowtrace run` records a ~1.2 s program; the tail model sees calls while it runs."""
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    out = str(tmp_path / "run.ftr")
    proc = subprocess.Popen([sys.executable, "-m", "flowtrace", "run", "-o", out, str(script)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (os.path.exists(out) and os.path.getsize(out) > 16):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        src = TraceSource.open(out)
        tail = LiveTail(src)
        seen_while_running: list[int] = []
        while not tail.done:
            assert time.monotonic() < deadline, "the session did not finish"
            batch = tail.poll()
            if proc.poll() is None and batch.new_calls and not src.data.finished:
                seen_while_running.append(batch.n)
                assert tail.state == LIVE
            time.sleep(0.02)
        assert proc.wait(10) == 0
        # calls arrived in several batches while the program ran, growing one by one
        assert len(seen_while_running) >= 3 and seen_while_running == sorted(seen_while_running)
        assert tail.state == FINISHED
        data = src.data
        names = [data.func_name(int(f)) for f in data.col("func")[1:]]
        assert names == ["<module>", "main"] + ["work"] * 40
        # the incremental model matches a whole-file read
        whole = read_session(out)
        assert len(whole.calls) == data.n == 42
        src.close()
    finally:
        proc.kill()
        proc.wait()


SHORT = textwrap.dedent("""
    import sys
    def greet(name):
        return "hello " + name
    print(greet("log pane"))
    print("to stderr", file=sys.stderr)
    sys.exit(3)
""")


@sync
async def test_tui_run_shows_output_and_exit_code(tmp_path):
    script = tmp_path / "short.py"
    script.write_text(SHORT)
    out = str(tmp_path / "short.ftr")
    log = log_path_for(out)
    child = run_program([str(script)], out, log)
    child.wait_for_session()
    app = FlowtraceApp(TraceSource.open(out), poll_interval=POLL, program=child, log_path=log)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: child.poll() is not None and "program exit 3" in status(app))
        pane = app._main.query_one(LogPane)
        await until(pilot, lambda: "to stderr" in pane.shown_text)
        assert pane.has_class("-shown") and "hello log pane\n" in pane.shown_text
        await until(pilot, lambda: "exit 3" in str(pane.query_one("#log-title").render()))
        await until(pilot, lambda: app.source.data.finished)
        assert "finished, exit 3" in status(app)
        await pilot.press("o")
        assert not pane.has_class("-shown")
        await pilot.press("q")  # the program has ended: no question
    assert app.return_code == 0 or app.return_code is None


@sync
async def test_tui_run_quit_stops_the_program(tmp_path):
    script = tmp_path / "sleepy.py"
    script.write_text("import time\ndef nap():\n    time.sleep(60)\nnap()\n")
    out = str(tmp_path / "sleepy.ftr")
    child = run_program([str(script)], out, log_path_for(out))
    try:
        child.wait_for_session()
        app = FlowtraceApp(TraceSource.open(out), poll_interval=POLL, program=child)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.index is not None and app.index.n == 2)
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, QuitDialog))
            await pilot.press("escape")  # cancel: still running, still open
            assert not isinstance(app.screen, QuitDialog) and child.running
            await pilot.press("q", "s")
            await until(pilot, lambda: not child.running, timeout=15)
        assert child.poll() == -signal.SIGINT
        s = read_session(out)
        assert s.end is not None and s.end["reason"] == "signal"
    finally:
        child.stop()


def test_stopping_the_program_interrupts_its_children_as_a_terminal_would(tmp_path):
    # Django's runserver waits on a child (its autoreloader) with subprocess.run, which kills the
    # child 0.25 s after its own KeyboardInterrupt: only a child that was interrupted as well ends
    # on its own, runs its `finally` and finishes its recording.
    started, cleaned = tmp_path / "started", tmp_path / "cleaned"
    child_py = tmp_path / "worker.py"
    child_py.write_text(
        "import pathlib, time\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        "try:\n    time.sleep(60)\n"
        f"finally:\n    pathlib.Path({str(cleaned)!r}).touch()\n")
    script = tmp_path / "parent.py"
    script.write_text(f"import subprocess, sys\nsubprocess.run([sys.executable, {str(child_py)!r}])\n")
    out = str(tmp_path / "parent.ftr")
    child = run_program([str(script)], out, log_path_for(out))
    try:
        child.wait_for_session()
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists()
        assert child.stop() == -signal.SIGINT  # (the parent: KeyboardInterrupt, from subprocess.run)
        assert cleaned.exists()
        (part,) = glob.glob(str(tmp_path / "parent.ftr.d" / "*.ftr"))
        assert read_session(part).end is not None
    finally:
        child.stop()


def test_tui_run_reports_a_program_that_cannot_start(tmp_path, capsys):
    out = str(tmp_path / "x.ftr")
    with pytest.raises(LaunchError, match=r"program ended \(exit 2\) before recording started: .*nope\.py"):
        run_program([str(tmp_path / "nope.py")], out, log_path_for(out)).wait_for_session()
    assert cli_main(["run"]) == 2
    assert cli_main(["run", "--no-args"]) == 2
    assert "nothing to run" in capsys.readouterr().err


TARGET = textwrap.dedent("""
    import time
    def beat(i):
        time.sleep(0.02)
        return i
    for i in range(3000):
        beat(i)
""")


@sync
async def test_tui_attach_follows_and_detaches(tmp_path):
    """`flowtrace-tui attach` on a cooperative process (run --paused): live view, then quitting
    detaches: the file is finished ("detached") and the target carries on."""
    from flowtrace_tui.launch import attach_process

    script = tmp_path / "target.py"
    script.write_text(TARGET)
    target = subprocess.Popen([sys.executable, "-m", "flowtrace", "run", "--paused", str(script)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = str(tmp_path / "attached.ftr")
    attacher = None
    try:
        from flowtrace.attach import AttachError
        from flowtrace.attach import status as channel_status

        deadline = time.monotonic() + 20
        while True:  # the control channel is served once the program started
            try:
                if channel_status(target.pid) is not None:
                    break
            except AttachError:
                pass
            assert time.monotonic() < deadline and target.poll() is None
            time.sleep(0.05)
        attacher = attach_process(target.pid, out, ["--method", "control"], str(tmp_path / "attach.log"))
        attacher.wait_for_session(20)
        app = FlowtraceApp(TraceSource.open(out), poll_interval=POLL, attacher=attacher)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.index is not None and app.source.data.n >= 5 and not app.loading)
            assert "● LIVE" in status(app) and app.live_view.follow.following
            await pilot.press("q")  # no program of ours: quits at once
        assert attacher.stop() == 0
        s = read_session(out)
        assert s.end is not None and s.end["reason"] == "detached"
        assert target.poll() is None  # carries on
        assert "detached from pid" in attacher.log_tail()
    finally:
        if attacher is not None:
            attacher.stop()
        target.kill()
        target.wait()


@sync
async def test_tui_attach_with_gdb(tmp_path, gdb_available):
    """`flowtrace-tui attach --method gdb` on a plain python process (no flowtrace in it): the
    live view follows the injected recording; quitting detaches, the file is finished and the
    program carries on to its normal end and exit status."""
    from flowtrace_tui.launch import attach_process

    script = tmp_path / "target.py"
    stop = tmp_path / "stop"
    # it beats until told to stop (however long attaching takes on a loaded machine), and says
    # when its main loop runs (the injection needs the interpreter past its start-up)
    script.write_text(textwrap.dedent(f"""
        import os, time
        def beat(i):
            time.sleep(0.02)
            return i
        print('ready', flush=True)
        i = 0
        while not os.path.exists({str(stop)!r}):
            beat(i)
            i += 1
        print('done', flush=True)
    """))
    target = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = str(tmp_path / "attached.ftr")
    attacher = None
    try:
        assert target.stdout.readline() == "ready\n"
        attacher = attach_process(target.pid, out, ["--method", "gdb"], str(tmp_path / "attach.log"))
        attacher.wait_for_session(30)
        app = FlowtraceApp(TraceSource.open(out), poll_interval=POLL, attacher=attacher)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.index is not None and app.source.data.n >= 3 and not app.loading)
            assert "● LIVE" in status(app) and app.live_view.follow.following
            await pilot.press("q")
        assert attacher.stop() == 0
        s = read_session(out)
        assert s.end is not None and s.end["reason"] == "detached"
        assert s.meta["attach"]["method"] in ("pending-call", "gil-fallback")
        # the module was already running: a partial call, the beats recorded under it
        (module,) = [c for c in s.calls if c.parent is None]
        assert (module.qualname, module.partial, module.end) == ("<module>", True, "unfinished")
        beats = s.calls[1:]
        assert beats and all((c.qualname, c.parent) == ("beat", module.id) for c in beats)
        assert "detached from pid" in attacher.log_tail()
        stop.touch()
        assert target.wait(30) == 0  # carried on, unchanged
        assert (target.stdout.read(), target.stderr.read()) == ("done\n", "")
    finally:
        if attacher is not None:
            attacher.stop()
        if target.poll() is None:
            target.kill()
        target.wait()
        target.stdout.close()
        target.stderr.close()
