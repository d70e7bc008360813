"""The explorer on sessions of several processes, read off the screen: processes at the top of
the tree, the process tree (T), the jump between a child and the call that started it (S), and
a live session gaining processes while it is followed."""

from __future__ import annotations

import os

from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.screens.process_tree import ProcessTreeScreen

from .apps import screen_lines, settle, sync, until
from trace_builder import Feeder, TraceBuilder, child_process, meta_for, several_processes


def tree_text(app) -> str:
    return "\n".join(screen_lines(app))


def cursor_text(app) -> str:
    """The selected row's name, as the detail pane's path ends."""
    from flowtrace_tui.model.call_detail import node_name

    return node_name(app.index, app.tree.cursor_pos)


@sync
async def test_processes_on_screen_and_the_process_tree(tmp_path):
    app = FlowtraceApp(TraceSource.open(several_processes(str(tmp_path))))
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        text = tree_text(app)
        assert "pid 100: python prog.py --jobs 2 → exit 0" in text
        assert "pid 101 (fork): python prog.py --jobs 2 ✗ exit 3" in text
        assert "pid 102: python -m pkg.worker → exit 0" in text
        await until(pilot, lambda: "T Processes" in screen_lines(app)[-1])  # (the footer draws last)
        assert "3 processes" in " ".join(app.status_parts())
        # T: the process tree, root first, children under it with their ends
        await pilot.press("T")
        assert isinstance(app.screen, ProcessTreeScreen)
        lines = screen_lines(app)
        row = next(i for i, line in enumerate(lines) if "duration" in line and "status" in line) + 1
        assert "python prog.py --jobs 2" in lines[row] and " 100 " in lines[row]
        assert "exit 0" in lines[row] and "2" in lines[row]
        assert "├─ python prog.py --jobs 2" in lines[row + 1] and "101" in lines[row + 1] and "exit 3" in lines[row + 1]
        assert "└─ python -m pkg.worker" in lines[row + 2] and "102" in lines[row + 2]
        assert "3 processes, 1 failed" in "\n".join(lines)
        # enter on the exec child opens it in the call tree
        await pilot.press("j", "j", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, ProcessTreeScreen)
        assert cursor_text(app) == "process pid 102: python -m pkg.worker"


@sync
async def test_jump_between_a_child_and_the_call_that_started_it(tmp_path):
    app = FlowtraceApp(TraceSource.open(several_processes(str(tmp_path))))
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        await pilot.press("T", "j", "enter")  # pid 101's row
        await pilot.pause()
        assert cursor_text(app) == "process pid 101 (fork): python prog.py --jobs 2"
        await pilot.press("S")  # to the call in pid 100 that started it
        assert cursor_text(app) == "spawn"
        assert "spawn(n=2) {started 2 processes} → None" in tree_text(app)
        await pilot.press("S")  # and back: the first process it started
        assert cursor_text(app) == "process pid 101 (fork): python prog.py --jobs 2"
        await pilot.press("g", "S")  # the root was started by nobody of this session
        await pilot.pause()
        assert cursor_text(app).startswith("process pid 100")


@sync
async def test_search_runs_across_processes(tmp_path):
    app = FlowtraceApp(TraceSource.open(several_processes(str(tmp_path))))
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"helper", "enter")
        await settle(pilot)
        assert cursor_text(app) == "helper"
        assert "helper(k='x') → 'y'" in tree_text(app)


@sync
async def test_live_view_gains_processes_and_marks_their_end(tmp_path):
    path = str(tmp_path / "trace.ftr")
    root = TraceBuilder(meta={**meta_for(os.getpid()), "argv": ["prog.py"], "parts": "trace.ftr.d"})
    m = root.enter("main", args="")
    root.flush()
    feed = Feeder(root, path)
    app = FlowtraceApp(TraceSource.open(path), poll_interval=0.05)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.index is not None and not app.loading)
        assert "pid" not in tree_text(app)  # one process so far: the tree as always
        os.makedirs(path + ".d")
        child = child_process(4242, os.getpid(), ["-m", "pkg.worker"], 1000)
        child.leave(child.enter("job", args="n=1"), "1")
        child.flush()
        part = Feeder(child, path + ".d/4242.ftr")
        await until(pilot, lambda: "pid 4242: python -m pkg.worker ⋯" in tree_text(app))
        assert f"pid {os.getpid()}: python prog.py ⋯" in tree_text(app)
        child.data(exit_code=3)
        part.sync()
        await until(pilot, lambda: "pid 4242: python -m pkg.worker ✗ exit 3" in tree_text(app))
        root.leave(m, "None")
        root.data()
        feed.sync()
        await until(pilot, lambda: app.source.data.finished)
        await app.workers.wait_for_complete()


# examples/endings.py recorded for real: how each process row says its process ended. A child
# that returned (no sys.exit) says `→ exit 0`, for each start method, a subprocess and os.fork.
ENDINGS_ROWS = [
    "pid ?: python endings.py → exit 0",
    "pid ? (fork): python endings.py → exit 0",
    "pid ? (fork): python endings.py ✗ exit 7",
    "pid ? (fork): python endings.py ✗ exit 1",
    # the spawn worker that returns and the resource tracker start at once (kernel's order)
    {"pid ?: python -B -c … --multiprocessing-fork → exit 0", "pid ?: python -B -c … → exit 0"},
    "pid ?: python -B -c … --multiprocessing-fork ✗ exit 7",
    "pid ?: python -B -c … --multiprocessing-fork ✗ exit 1",
    "pid ?: python -B -c … → exit 0",  # the forkserver, then the workers it forked
    "pid ? (fork): python -B -c … → exit 0",  # (a fork runs its parent's command)
    "pid ? (fork): python -B -c … ✗ exit 7",
    "pid ? (fork): python -B -c … ✗ exit 1",
    "pid ?: python -c … → exit 0",
    "pid ?: python -c … ✗ exit 4",
    "pid ?: python -c … ✗ exit 1",
    "pid ?: python -c … ✗ uncaught exception: ValueError: x",
    "pid ?: python -c … → exit 0",
    "pid ? (fork): python -c … → exit 0",
    "pid ? (fork): python endings.py → exit 0",
    "pid ? (fork): python endings.py ✗ exit 3",
    "pid ? (fork): python endings.py ✗ uncaught exception: ValueError: in…",  # (as wide as the column)
]


def record_endings(tmp_path) -> str:
    """examples/endings.py under `flowtrace run`, once every part has ended (the resource
    tracker and the forkserver end after the root)."""
    import subprocess
    import sys
    import time

    from flowtrace.ftr.processes import session_processes

    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "endings.py")
    with open(example) as f:
        (tmp_path / "endings.py").write_text(f.read())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_FOLLOW")}
    done = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", "trace.ftr", "endings.py"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path = str(tmp_path / "trace.ftr")
    deadline = time.monotonic() + 60
    while any(p.end is None for p in session_processes(path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return path


@sync
async def test_process_rows_of_children_that_end_every_way(tmp_path):
    import re

    app = FlowtraceApp(TraceSource.open(record_endings(tmp_path)))
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        rows = [re.sub(r"pid \d+", "pid ?", line[2:].split("  ")[0]) for line in screen_lines(app)
                if line.startswith("▼ pid ")]
    expected: list[str] = []
    for item in ENDINGS_ROWS:
        expected.extend(sorted(item) if isinstance(item, set) else [item])
    rows[4:6] = sorted(rows[4:6])
    assert rows == expected


@sync
async def test_long_commands_and_reasons_leave_every_column_on_screen(tmp_path):
    """A build backend's command line is hundreds of characters and a not-followed process's
    status a sentence: the process tree (T) cuts both to fit its box, so pid, duration, status and
    calls stay on screen (the calls column was pushed out of a 170-column terminal), and the line
    under the table shows the selected process's whole command and status."""
    import json

    path = several_processes(str(tmp_path))
    backend = ["/home/user/project/.venv/bin/python", "/home/user/project/.venv/lib/python3.12/site-packages/pip/"
               "_vendor/pyproject_hooks/_in_process/_in_process.py", "build_wheel", "/tmp/tmpoia95x25"]
    reason = "started with an environment of its own, without flowtrace's start-up hook on PYTHONPATH"
    with open(path + ".d/100-1.skip.json", "w") as f:
        json.dump({"pid": 0, "ppid": 100, "argv": backend, "reason": reason, "started_ns": 40}, f)
    app = FlowtraceApp(TraceSource.open(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("T")
        await pilot.pause()
        lines = screen_lines(app)
        head = next(i for i, line in enumerate(lines) if "duration" in line and "status" in line)
        assert "calls" in lines[head]
        skipped = next(line for line in lines[head:] if "_in_process" in line or "/home/user" in line)
        assert "…" in skipped and " ? " in skipped and "not followed: started with" in skipped and skipped.rstrip(" │█▌▐").endswith("0")
        row = next(i for i, line in enumerate(lines[head + 1:]) if "/home/user" in line)
        await pilot.press(*["j"] * row)
        await pilot.pause()
        # (the whole command, wrapped: the lines inside the box's border, spaces left out)
        text = "".join(line.strip(" █▌▐") for line in screen_lines(app)[-10:]).replace(" ", "")
        assert "pid?:" + "".join(backend) in text and reason.replace(" ", "") in text
