"""flowtrace-tui's command line, run as a user runs it: every error one line on stderr (like
`flowtrace`), --version, the usage and help texts, and nothing left behind by a failed start
or in the terminal after quitting an attach."""

from __future__ import annotations

import os
import pathlib
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from flowtrace import __version__
from flowtrace_tui.cli import _attach_parser, _explore_parser, _run_parser, parse_run_args


def tui(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowtrace_tui", *args], capture_output=True, text=True,
                          cwd=cwd, stdin=subprocess.DEVNULL, timeout=120)


def flowtrace(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowtrace", *args], capture_output=True, text=True,
                          cwd=cwd, stdin=subprocess.DEVNULL, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The message of a one-line `flowtrace-tui: error: …` (nothing on stdout, no traceback)."""
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("flowtrace-tui: error: "), proc.stderr
    return proc.stderr[len("flowtrace-tui: error: "):-1]


@pytest.mark.parametrize("args, message, status", [
    (["--bogus"], "unrecognized arguments: --bogus (see 'flowtrace-tui --help')", 2),
    (["session.ftr", "--bogus"], "unrecognized arguments: --bogus (see 'flowtrace-tui --help')", 2),
    ([], "give a session file, or run / attach (see 'flowtrace-tui --help')", 2),
    (["--follow", "x", "s.ftr"], "argument --follow: invalid float value: 'x' (see 'flowtrace-tui --help')", 2),
    (["attach"], "the following arguments are required: PID (see 'flowtrace-tui attach --help')", 2),
    (["attach", "12", "--bogus"], "unrecognized arguments: --bogus (see 'flowtrace-tui attach --help')", 2),
    (["run"], "nothing to run: give a script, -m module or -c code (see 'flowtrace-tui run --help')", 2),
    (["run", "--bogus", "x.py"], "unrecognized arguments: --bogus (see 'flowtrace-tui run --help')", 2),
    (["run", "--flush-interval", "soon", "x.py"],
     "argument --flush-interval: not a number of seconds: 'soon' (see 'flowtrace-tui run --help')", 2),
    (["run", "-m"], "argument -m needs a value (see 'flowtrace-tui run --help')", 2),
    (["missing.ftr"], "missing.ftr: no such file", 2),
])
def test_errors_are_one_line_and_leave_nothing(tmp_path, args, message, status):
    proc = tui(*args, cwd=tmp_path)
    assert (one_line_error(proc), proc.returncode) == (message, status)
    assert os.listdir(tmp_path) == []  # no trace.log, no trace.ftr


def test_program_that_cannot_start_is_reported_as_flowtrace_run_does(tmp_path):
    """The child's own error (and status), in our words; its log file is not left behind."""
    plain = flowtrace("run", "nope.py", cwd=tmp_path)
    proc = tui("run", "nope.py", cwd=tmp_path)
    assert plain.stderr == f"flowtrace: error: {one_line_error(proc)}\n"
    assert proc.returncode == plain.returncode == 2
    assert os.listdir(tmp_path) == []


def test_attach_to_no_such_process_is_reported_as_flowtrace_attach_does(tmp_path):
    pid = dead_pid()
    plain = flowtrace("attach", str(pid), cwd=tmp_path)
    proc = tui("attach", str(pid), cwd=tmp_path)
    assert one_line_error(proc) == f"no process with pid {pid}"
    assert plain.stderr == f"flowtrace: error: no process with pid {pid}\n"
    assert proc.returncode == plain.returncode == 1
    assert os.listdir(tmp_path) == []


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def test_version():
    proc = tui("--version")
    assert proc.returncode == 0 and proc.stderr == ""
    v = sys.version_info
    assert re.fullmatch(rf"flowtrace-tui {re.escape(__version__)} \(textual [\d.]+, "
                        rf"Python {v.major}\.{v.minor}\.{v.micro}\)\n", proc.stdout), proc.stdout


def test_usage_names_every_form_and_every_option_is_described():
    text = tui("--help").stdout
    assert text.startswith("usage: flowtrace-tui [-h] [--version] [--no-detail] [--follow SECONDS | --no-follow] FILE\n"
                           "       flowtrace-tui run [options] (script.py | -m module | -c code) [args ...]\n"
                           "       flowtrace-tui attach [options] PID\n")
    for parser in (_explore_parser(), _run_parser(), _attach_parser()):
        undescribed = [a.dest for a in parser._actions if not a.help]
        assert undescribed == [], parser.prog
    attach_help = tui("attach", "--help").stdout
    assert "--include P           also record code matching P" in attach_help
    assert "--method {auto,control,remote-exec,gdb}\n                        how to reach the process" in attach_help


def test_attach_options_reach_the_background_attach():
    """flowtrace-tui attach runs `flowtrace attach` with the options it was given (--children too)."""
    from flowtrace.commands.attach import attach_argv

    args = _attach_parser().parse_args(["12", "--children", "--no-args", "--duration", "3"])
    assert attach_argv(args) == ["--duration", "3.0", "--children", "--no-args", "--repr", "safe", "--method", "auto"]
    assert attach_argv(_attach_parser().parse_args(["12"])) == ["--repr", "safe", "--method", "auto"]


def test_run_options_ours_then_the_programs():
    args, program = parse_run_args(["-o", "x.ftr", "--no-args", "--log=o.log", "prog.py", "-o", "p"])
    assert (args.output, args.log, args.no_args, program) == ("x.ftr", "o.log", True, ["prog.py", "-o", "p"])
    args, program = parse_run_args(["--log", "l.log", "--include", "json.*", "--no-detail", "-m", "pkg", "--log", "z"])
    assert (args.log, args.include, args.no_detail, program) == ("l.log", ["json.*"], True, ["-m", "pkg", "--log", "z"])
    args, program = parse_run_args(["--output", "t.ftr", "-c", "print(1)"])
    assert (args.output, program) == ("t.ftr", ["-c", "print(1)"])


# -- quitting an attach, in a real terminal ------------------------------------------------------

TARGET = """
import sys, time
def beat(i):
    time.sleep(0.01)
    return i
i = 0
while True:
    beat(i)
    i += 1
"""
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78MDEc])")


def _read_until(fd: int, chunks: list[bytes], done, timeout: float) -> bool:
    """Read the terminal into `chunks` until done(text so far) or the timeout; False on EOF."""
    deadline = time.monotonic() + timeout
    while not done(b"".join(chunks)):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; the terminal shows: {b''.join(chunks)[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the other side closed
                return False
            if not data:
                return False
            chunks.append(data)
    return True


def test_quitting_an_attach_leaves_nothing_in_the_terminal(tmp_path):
    """`flowtrace-tui attach PID`, then `q`: the explorer's screen goes away and nothing is left
    after it (the background `flowtrace attach` says nothing when detaching went well); the
    session is finished and the process carries on."""
    script = tmp_path / "target.py"
    script.write_text(TARGET)
    target = subprocess.Popen([sys.executable, "-m", "flowtrace", "run", "--paused", str(script)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    master, slave = pty.openpty()
    explorer = None
    try:
        assert target.stderr.readline().startswith("flowtrace: not recording yet")  # its channel is served
        out = tmp_path / "attached.ftr"
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
        explorer = subprocess.Popen([sys.executable, "-m", "flowtrace_tui", "attach", str(target.pid), "-o", str(out),
                                     "--method", "control"], stdin=slave, stdout=slave, stderr=slave, env=env,
                                    cwd=tmp_path, start_new_session=True)
        os.close(slave)
        slave = -1
        chunks: list[bytes] = []
        assert _read_until(master, chunks, lambda b: b"LIVE" in b and b"beat" in b, 60)
        os.write(master, b"q")
        _read_until(master, chunks, lambda b: False, 60)  # until the explorer has closed the terminal
        assert explorer.wait(30) == 0
        screen = b"".join(chunks).decode("utf-8", "replace")
        after = screen.rsplit("\x1b[?1049l", 1)  # what is left once the explorer's screen is gone
        assert len(after) == 2, screen[-500:]
        assert _ESCAPES.sub("", after[1]).strip() == ""
        assert "recording pid" not in screen and "interrupted; detached" not in screen
        from flowtrace.ftr.reader import load

        trace = load(out)
        assert trace.end is not None and trace.end["reason"] == "detached"
        assert any(c.qualname == "beat" for c in trace.calls)
        assert target.poll() is None  # carries on
    finally:
        if slave >= 0:
            os.close(slave)
        if explorer is not None and explorer.poll() is None:
            os.killpg(explorer.pid, signal.SIGKILL)
            explorer.wait()
        os.close(master)
        target.terminate()
        target.wait(30)
        target.stderr.close()
