"""`flowtrace attach` / `flowtrace detach` against real Python processes.

Every test starts a target program in a subprocess, records part of its life from outside,
and checks three things: the target's output and exit code are what they are without
flowtrace; the session file is finished (ENDS) and balanced (every call ended once, partial
calls nested in stack order under their real ancestors); and the exact tree.

The target waits at two points (`wait_for`) for the test: "go" (it was attached by then) and
"after" (it was detached by then), either reading stdin (a main thread parked in a blocking
read: gdb needs its GIL fallback) or polling a file with short sleeps (the main thread runs
bytecode: gdb's pending call runs). All waits are bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flowtrace.ftr.processes import end_words
from flowtrace.ftr.reader import Trace, load

TARGET = textwrap.dedent('''\
    import os, queue, sys, threading, time
    MODE, WAIT, DIR = sys.argv[1], sys.argv[2], sys.argv[3]
    if MODE == "install":
        import flowtrace
        flowtrace.install()
    if MODE == "slow-import":  # the injected payload's import of flowtrace.control waits for "release"
        class SlowControl:
            def find_spec(self, name, path=None, target=None):
                if name == "flowtrace.control":
                    sys.meta_path.remove(self)
                    deadline = time.monotonic() + 600  # (the test's TIMEOUT: a guard against a hang only)
                    while not os.path.exists(os.path.join(DIR, "release")) and time.monotonic() < deadline:
                        time.sleep(0.005)
                return None
        sys.meta_path.insert(0, SlowControl())

    def step(i):
        return i + 1

    def phase(k):
        return [step(i) for i in range(k)]

    jobs = queue.Queue()
    done = queue.Queue()

    def worker():
        while True:
            k = jobs.get()
            if k is None:
                return "worker done"
            done.put(phase(k))

    def wait_for(name):
        if WAIT == "stdin":
            return sys.stdin.readline().strip()
        path = os.path.join(DIR, name)
        deadline = time.monotonic() + 600  # (the test's TIMEOUT: a guard against a hang only)
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.005)
        with open(path) as f:
            return f.read().strip()

    def main():
        t = threading.Thread(target=worker, name="worker")
        t.start()
        print("ready", flush=True)
        k = wait_for("go")                 # attached while waiting here
        print(phase(int(k)), flush=True)   # main thread's work
        jobs.put(3)
        print(done.get(), flush=True)      # the worker thread's work
        k = wait_for("after")              # detached while waiting here
        print(phase(int(k)), flush=True)
        jobs.put(None)
        t.join()
        print("bye", flush=True)
        return 3

    sys.exit(main())
''')

BASE_PY = getattr(sys, "_base_executable", sys.executable)  # outside the venv: no flowtrace
EXPECTED_OUT = "ready\n[1, 2]\n[1, 2, 3]\n[1]\nbye\n"
EXPECTED_RC = 3
# A guard against hangs only, nothing is timed: under load a gdb attach (gdb's start and symbol
# loading, ~7 s at load 15, 10-40 s at load 40; the payload's import) and the attach commands
# took longer than the 60 s this was (and than the targets' own waits for "go", which ended
# the target: "can't create new thread at interpreter shutdown" on the second attach).
TIMEOUT = 600


class Target:
    """A running copy of TARGET; `send()` answers its next `wait_for`."""

    def __init__(self, tmp: Path, mode: str, wait: str, python: str = sys.executable) -> None:
        self.tmp = tmp
        self.wait = wait
        script = tmp / "target.py"
        script.write_text(TARGET)
        # A plain target runs with -S: no site-packages, so flowtrace is importable only
        # through the sys.path entry that the injected payload adds.
        if mode == "paused-script":  # the installed console script: a launcher file runs main()
            command = [str(console_script()), "run", "--paused"]
        else:
            flags = {"plain": ["-S"], "slow-import": ["-S"], "install": [],
                     "paused": ["-m", "flowtrace", "run", "--paused"]}[mode]
            command = [python, *flags]
        self.proc = subprocess.Popen(
            [*command, str(script), mode, wait, str(tmp)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.pid = self.proc.pid
        self.lines: list[str] = []
        self._expect_line()  # "ready"

    def _expect_line(self) -> str:
        line = self.proc.stdout.readline()  # bounded: every wait in TARGET is bounded
        assert line, f"target ended early: {self.proc.stderr.read()}"
        self.lines.append(line)
        return line

    def send(self, name: str, value: str, *, outputs: int) -> None:
        if self.wait == "stdin":
            self.proc.stdin.write(value + "\n")
            self.proc.stdin.flush()
        else:
            tmp_file = self.tmp / (name + ".tmp")
            tmp_file.write_text(value)
            tmp_file.rename(self.tmp / name)
        for _ in range(outputs):
            self._expect_line()

    def finish(self) -> tuple[str, str, int]:
        """Let the target run to its end; return (stdout, stderr, exit code)."""
        self.proc.stdin.close()
        rest = self.proc.stdout.read()
        err = self.proc.stderr.read()
        rc = self.proc.wait(TIMEOUT)
        return "".join(self.lines) + rest, err, rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def console_script() -> Path:
    """The `flowtrace` console script installed next to this Python (the venv's bin)."""
    return Path(sys.executable).parent / ("flowtrace.exe" if os.name == "nt" else "flowtrace")


@pytest.fixture
def targets():
    started: list[Target] = []
    yield started
    for t in started:
        t.kill()


def flowtrace_cmd(*args: str, timeout: float = TIMEOUT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowtrace", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def tree(trace: Trace) -> dict[str, list[str]]:
    """Thread name -> the calls as indented lines: name(args) partial? -> how result."""
    out: dict[str, list[str]] = {}
    for root in trace.roots:
        name = trace.thread_name(root.thread) or "?"
        lines = out.setdefault(name, [])
        for call, depth in trace.walk(root):
            mark = " [partial]" if call.partial else ""
            res = f" {call.result}" if call.end == "return" and call.result is not None else ""
            exc = f" {call.exception}" if call.exception else ""
            args = call.args if call.args is not None else ""
            lines.append(f"{'  ' * depth}{call.qualname}({args}){mark} -> {call.end}{res}{exc}")
    return out


def assert_balanced(trace: Trace) -> None:
    """Finished; every call ended once; a partial call only under a partial parent (stack order)."""
    assert trace.finished, trace.describe()
    for call in trace.calls:
        assert call.end in ("return", "raise", "unfinished")
        if call.partial and call.parent is not None:
            assert trace.call(call.parent).partial, "a partial call nested under a new call"
        if call.parent is not None:
            parent = trace.call(call.parent)
            assert parent.thread == call.thread
            if parent.end != "unfinished" and call.end_ns is not None:
                assert call.end_ns <= parent.end_ns


# The tree recorded between "go" and "after" (threads: main, worker); the same for every
# mechanism: the calls running at attach are partial, in stack order; those still running at
# detach are unfinished.
MAIN_BETWEEN = [
    "<module>() [partial] -> unfinished",
    "  main() [partial] -> unfinished",
    "    wait_for() [partial] -> return '2'",
    "    phase(k=2) -> return [1, 2]",
    "      step(i=0) -> return 1",
    "      step(i=1) -> return 2",
    "    wait_for(name='after') -> unfinished",
]
WORKER_BETWEEN = [
    "worker() [partial] -> unfinished",
    "  phase(k=3) -> return [1, 2, 3]",
    "    step(i=0) -> return 1",
    "    step(i=1) -> return 2",
    "    step(i=2) -> return 3",
]


def check_between(trace: Trace) -> None:
    assert_balanced(trace)
    assert trace.end["reason"] == "detached"
    assert trace.meta["command"] == "attach"
    assert tree(trace) == {"MainThread": MAIN_BETWEEN, "worker": WORKER_BETWEEN}


def attach_detach(tmp_path: Path, targets: list, mode: str, wait: str, method: str, python: str = sys.executable,
                  release_at: str | None = None):
    """attach --no-wait at "go", detach at "after"; returns (trace, attach stderr). With
    `release_at`, the attach says what it does (FLOWTRACE_DEBUG) and the file "release" is made
    once it has said that line (a slow-import target's import waits for it)."""
    t = Target(tmp_path, mode, wait, python)
    targets.append(t)
    out = tmp_path / "s.ftr"
    if release_at is None:
        r = flowtrace_cmd("attach", str(t.pid), "-o", str(out), "--no-wait", "--method", method)
    else:
        r = attach_releasing(tmp_path, t.pid, ["-o", str(out), "--no-wait", "--method", method], release_at)
    assert r.returncode == 0, r.stderr
    t.send("go", "2", outputs=2)
    r2 = flowtrace_cmd("detach", str(t.pid))
    assert r2.returncode == 0, r2.stderr
    assert f"detached from pid {t.pid}: wrote {out}" in r2.stderr
    t.send("after", "1", outputs=0)
    stdout, stderr, rc = t.finish()
    assert (stdout, rc) == (EXPECTED_OUT, EXPECTED_RC), stderr
    assert stderr == ""
    return load(out), r.stderr


def attach_releasing(tmp_path: Path, pid: int, options: list[str], release_at: str) -> subprocess.CompletedProcess:
    """`flowtrace attach PID OPTIONS` saying what it does; "release" is made in tmp_path once
    it has said `release_at` (not made if it never says it: the attach then ends on its own)."""
    attach = subprocess.Popen([sys.executable, "-m", "flowtrace", "attach", str(pid), *options],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "FLOWTRACE_DEBUG": "1"})
    try:
        said = []
        for line in attach.stderr:  # bounded: the attach's own limits end it
            said.append(line)
            if release_at in line:
                (tmp_path / "release").write_text("")
        stdout = attach.stdout.read()
        return subprocess.CompletedProcess(attach.args, attach.wait(TIMEOUT), stdout, "".join(said))
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
        attach.stdout.close()
        attach.stderr.close()


# --------------------------------------------------------------------------- cooperative mode


@pytest.mark.parametrize("wait", ["stdin", "poll"])
def test_cooperative_attach_detach(tmp_path, targets, wait):
    trace, msg = attach_detach(tmp_path, targets, "install", wait, "control")
    assert "via control channel" in msg
    check_between(trace)


def test_no_args(tmp_path, targets):
    t = Target(tmp_path, "install", "stdin")
    targets.append(t)
    out = tmp_path / "s.ftr"
    r = flowtrace_cmd("attach", str(t.pid), "-o", str(out), "--no-wait", "--no-args")
    assert r.returncode == 0, r.stderr
    t.send("go", "2", outputs=2)
    assert flowtrace_cmd("detach", str(t.pid)).returncode == 0
    t.send("after", "1", outputs=0)
    assert t.finish()[::2] == (EXPECTED_OUT, EXPECTED_RC)
    trace = load(out)
    assert_balanced(trace)
    assert trace.meta["options"]["args"] == "off"

    def bare(line: str) -> str:
        return re.sub(r" -> return .*", " -> return", re.sub(r"\(.*?\)", "()", line))

    assert tree(trace) == {"MainThread": [bare(x) for x in MAIN_BETWEEN],
                           "worker": [bare(x) for x in WORKER_BETWEEN]}


def test_run_paused(tmp_path, targets):
    """`flowtrace run --paused` serves the channel; the program is otherwise untouched."""
    t = Target(tmp_path, "paused", "stdin")
    targets.append(t)
    out = tmp_path / "s.ftr"
    r = flowtrace_cmd("attach", str(t.pid), "-o", str(out), "--no-wait")
    assert r.returncode == 0, r.stderr
    assert "via control channel" in r.stderr
    t.send("go", "2", outputs=2)
    assert flowtrace_cmd("detach", str(t.pid)).returncode == 0
    t.send("after", "1", outputs=0)
    stdout, stderr, rc = t.finish()
    assert (stdout, rc) == (EXPECTED_OUT, EXPECTED_RC)
    assert stderr == f"flowtrace: not recording yet: 'flowtrace attach {t.pid}' starts it\n"
    check_between(load(out))


def test_run_paused_console_script(tmp_path, targets):
    """Started through the installed `flowtrace` console script, the launcher (a `<module>` file
    in the venv's bin that calls flowtrace.cli.main) is flowtrace's own code: the calls seeded at
    attach start at the program's `<module>`, exactly as with `python -m flowtrace`."""
    if not console_script().is_file():
        pytest.skip(f"no console script at {console_script()} (the project is not installed here)")
    t = Target(tmp_path, "paused-script", "stdin")
    targets.append(t)
    out = tmp_path / "s.ftr"
    r = flowtrace_cmd("attach", str(t.pid), "-o", str(out), "--no-wait")
    assert r.returncode == 0, r.stderr
    t.send("go", "2", outputs=2)
    assert flowtrace_cmd("detach", str(t.pid)).returncode == 0
    t.send("after", "1", outputs=0)
    stdout, stderr, rc = t.finish()
    assert (stdout, rc) == (EXPECTED_OUT, EXPECTED_RC), stderr
    assert stderr == f"flowtrace: not recording yet: 'flowtrace attach {t.pid}' starts it\n"
    trace = load(out)
    check_between(trace)
    assert {c.function.file for c in trace.calls} == {str(tmp_path / "target.py")}


def test_blocking_attach_stopped_by_detach(tmp_path, targets):
    t = Target(tmp_path, "install", "stdin")
    targets.append(t)
    out = tmp_path / "s.ftr"
    attach = subprocess.Popen([sys.executable, "-m", "flowtrace", "attach", str(t.pid), "-o", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_recording(t.pid)
        t.send("go", "2", outputs=2)
        r = flowtrace_cmd("detach", str(t.pid))
        assert r.returncode == 0, r.stderr
        _, err = attach.communicate(timeout=TIMEOUT)
        assert attach.returncode == 0, err
        assert "stopped elsewhere" in err
    finally:
        if attach.poll() is None:
            attach.kill()
    t.send("after", "1", outputs=0)
    assert t.finish()[::2] == (EXPECTED_OUT, EXPECTED_RC)
    check_between(load(out))


def wait_recording(pid: int, timeout: float = TIMEOUT) -> dict:
    from flowtrace.control import channel_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = channel_status(pid, timeout=timeout)
        if st is not None and st.get("state") == "recording":
            return st
        time.sleep(0.02)
    raise AssertionError("the target never started recording")


PARKED_ONLY = {"MainThread": [
    "<module>() [partial] -> unfinished",
    "  main() [partial] -> unfinished",
    "    wait_for() [partial] -> unfinished",
], "worker": ["worker() [partial] -> unfinished"]}


def test_duration_expires(tmp_path, targets):
    t = Target(tmp_path, "install", "stdin")
    targets.append(t)
    out = tmp_path / "s.ftr"
    t0 = time.monotonic()
    r = flowtrace_cmd("attach", str(t.pid), "-o", str(out), "--duration", "0.5")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "for 0.5 s" in r.stderr and f"detached from pid {t.pid}" in r.stderr
    assert took >= 0.5
    trace = load(out)
    assert_balanced(trace)
    assert trace.end["reason"] == "detached"
    assert tree(trace) == PARKED_ONLY
    t.send("go", "2", outputs=2)
    t.send("after", "1", outputs=0)
    assert t.finish()[::2] == (EXPECTED_OUT, EXPECTED_RC)


def test_ctrl_c_on_attach_finishes_file(tmp_path, targets):
    t = Target(tmp_path, "install", "stdin")
    targets.append(t)
    out = tmp_path / "s.ftr"
    attach = subprocess.Popen([sys.executable, "-m", "flowtrace", "attach", str(t.pid), "-o", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_recording(t.pid)
        attach.send_signal(signal.SIGINT)
        _, err = attach.communicate(timeout=TIMEOUT)
    finally:
        if attach.poll() is None:
            attach.kill()
    assert attach.returncode == 0, err
    assert "interrupted; detached" in err
    trace = load(out)
    assert_balanced(trace)
    assert tree(trace) == PARKED_ONLY
    from flowtrace.control import channel_status

    assert channel_status(t.pid)["state"] == "idle"  # the target carries on, channel idle
    t.send("go", "2", outputs=2)
    t.send("after", "1", outputs=0)
    assert t.finish()[::2] == (EXPECTED_OUT, EXPECTED_RC)


def test_target_exits_while_recording(tmp_path, targets):
    """The program ends during the recording: its exit finishes the file (reason "exit")."""
    t = Target(tmp_path, "install", "stdin")
    targets.append(t)
    out = tmp_path / "s.ftr"
    r = flowtrace_cmd("attach", str(t.pid), "-o", str(out), "--no-wait")
    assert r.returncode == 0, r.stderr
    t.send("go", "2", outputs=2)
    t.send("after", "1", outputs=0)
    assert t.finish()[::2] == (EXPECTED_OUT, EXPECTED_RC)
    trace = load(out)
    assert_balanced(trace)
    assert (trace.end["reason"], trace.end["exit_code"]) == ("exit", 3)
    assert tree(trace) == {
        "MainThread": [
            "<module>() [partial] -> raise SystemExit: 3",
            "  main() [partial] -> return 3",
            *MAIN_BETWEEN[2:6],
            "    wait_for(name='after') -> return '1'",
            "    phase(k=1) -> return [1]",
            "      step(i=0) -> return 1",
        ],
        "worker": [
            "worker() [partial] -> return 'worker done'",
            *WORKER_BETWEEN[1:],
        ],
    }


ENDING_TARGET = textwrap.dedent('''\
    import os, sys, time
    END, DIR = sys.argv[1], sys.argv[2]

    def wait_for(name):
        path = os.path.join(DIR, name)
        deadline = time.monotonic() + 600  # (the test's TIMEOUT: a guard against a hang only)
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.005)

    def finish():
        if END == "exit":
            sys.exit(4)
        if END == "raise":
            raise ValueError("boom")
        if END == "own-hook":  # the program's own hook: an uncaught exception could go there
            sys.excepthook = lambda *exc: None
        return "done"

    print("ready", flush=True)
    wait_for("go")  # attached (by gdb: a pending call) while waiting here
    print(finish(), flush=True)
''')


ENDING_TREES = {  # how <module> and finish() end
    "return": ("return None", "return 'done'"),
    "exit": ("raise SystemExit: 4", "raise SystemExit: 4"),
    "raise": ("raise ValueError: boom", "raise ValueError: boom"),
    "own-hook": ("return None", "return 'done'"),
}


@pytest.mark.usefixtures("gdb_available")
@pytest.mark.parametrize("ending, words", [
    ("return", "exit 0"), ("exit", "exit 4"), ("raise", "uncaught exception: ValueError: boom"),
    ("own-hook", "exited")])
def test_attached_program_ends_while_recording(tmp_path, ending, words):
    """A program attached by gdb (no flowtrace in it before) that ends while recorded says how,
    as under `flowtrace run`: exit 0 when it returned, its sys.exit status, its uncaught
    exception; "exited" when it replaced sys.excepthook (an uncaught exception may have gone
    there). Its output, stderr and exit status are those of a plain run."""
    script = tmp_path / "ending.py"
    script.write_text(ENDING_TARGET)
    command = [BASE_PY, "-S", str(script), ending, str(tmp_path)]
    (tmp_path / "go").write_text("")
    plain = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    (tmp_path / "go").unlink()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        out = tmp_path / "s.ftr"
        r = flowtrace_cmd("attach", str(proc.pid), "-o", str(out), "--no-wait", "--method", "gdb")
        assert r.returncode == 0, r.stderr
        (tmp_path / "go").write_text("")
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    assert ("ready\n" + stdout, stderr, proc.returncode) == (plain.stdout, plain.stderr, plain.returncode)
    trace = load(out)
    assert_balanced(trace)
    assert end_words(trace.end) == words
    module_end, finish_end = ENDING_TREES[ending]
    assert tree(trace) == {"MainThread": [
        f"<module>() [partial] -> {module_end}",
        "  wait_for() [partial] -> return None",
        f"  finish() -> {finish_end}",
    ]}


def test_second_attach_refused_and_detach_when_idle(tmp_path, targets):
    t = Target(tmp_path, "install", "stdin")
    targets.append(t)
    r = flowtrace_cmd("detach", str(t.pid))
    assert (r.returncode, r.stderr) == (1, f"flowtrace: error: pid {t.pid} is not recording\n")
    a = tmp_path / "a.ftr"
    r = flowtrace_cmd("attach", str(t.pid), "-o", str(a), "--no-wait")
    assert r.returncode == 0, r.stderr
    r = flowtrace_cmd("attach", str(t.pid), "-o", str(tmp_path / "b.ftr"), "--no-wait")
    assert (r.returncode, r.stderr) == (1, f"flowtrace: error: pid {t.pid}: already recording into {a}\n")
    assert not (tmp_path / "b.ftr").exists()
    assert flowtrace_cmd("detach", str(t.pid)).returncode == 0
    t.send("go", "2", outputs=2)
    t.send("after", "1", outputs=0)
    assert t.finish()[::2] == (EXPECTED_OUT, EXPECTED_RC)


# --------------------------------------------------------------------------- clear refusals


def test_nonexistent_pid():
    pid = int(Path("/proc/sys/kernel/pid_max").read_text())  # pids are always below pid_max
    for cmd in (["attach", str(pid)], ["detach", str(pid)]):
        r = flowtrace_cmd(*cmd)
        assert (r.returncode, r.stderr) == (1, f"flowtrace: error: no process with pid {pid}\n")


def test_not_a_python_process(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        r = flowtrace_cmd("attach", str(sleeper.pid), "-o", str(tmp_path / "x.ftr"))
    finally:
        sleeper.kill()
        sleeper.wait()
    exe = os.path.realpath(shutil.which("sleep"))
    assert (r.returncode, r.stderr) == (1, f"flowtrace: error: pid {sleeper.pid} is not a Python process ({exe})\n")
    assert not (tmp_path / "x.ftr").exists()


def test_old_python_refused(tmp_path):
    old = None
    for name in ("python3.11", "python3.10", "python3.9"):
        path = shutil.which(name)
        if path:
            old, version = path, name.removeprefix("python")
            break
    if old is None:
        pytest.skip("no Python older than 3.12 on PATH")
    proc = subprocess.Popen([old, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"  # the old Python runs (not a fork of pytest yet)
        r = flowtrace_cmd("attach", str(proc.pid))
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert (r.returncode, r.stderr) == (
        1, f"flowtrace: error: pid {proc.pid} runs Python {version}; flowtrace needs Python 3.12 or newer\n")


def test_no_channel_and_method_control(tmp_path, targets):
    t = Target(tmp_path, "plain", "stdin")
    targets.append(t)
    r = flowtrace_cmd("detach", str(t.pid))
    assert (r.returncode, r.stderr) == (1, f"flowtrace: error: pid {t.pid} has no flowtrace control channel\n")
    r = flowtrace_cmd("attach", str(t.pid), "--method", "control")
    assert r.returncode == 1
    assert r.stderr.startswith(f"flowtrace: error: pid {t.pid} has no flowtrace control channel (start it with")
    r = flowtrace_cmd("attach", str(t.pid), "--method", "remote-exec")
    v = sys.version_info
    assert r.stderr == f"flowtrace: error: sys.remote_exec needs Python 3.14+; pid {t.pid} runs {v.major}.{v.minor}\n"


def test_gdb_missing_is_a_clear_error(tmp_path, targets):
    t = Target(tmp_path, "plain", "stdin")
    targets.append(t)
    empty = tmp_path / "bin"
    empty.mkdir()
    r = flowtrace_cmd("attach", str(t.pid), env={**os.environ, "PATH": str(empty)})
    assert r.returncode == 1
    assert r.stderr.startswith("flowtrace: error: gdb is not installed (needed to attach to Python 3.12/3.13)")
    t.send("go", "2", outputs=2)
    t.send("after", "1", outputs=0)
    assert t.finish()[::2] == (EXPECTED_OUT, EXPECTED_RC)


@pytest.mark.skipif(sys.version_info < (3, 14), reason="sys.remote_exec (PEP 768) needs Python 3.14+; "
                                                     "this machine has only 3.12 and 3.13")
def test_remote_exec_attach(tmp_path, targets):
    trace, msg = attach_detach(tmp_path, targets, "plain", "poll", "remote-exec")
    assert "via sys.remote_exec" in msg
    check_between(trace)


# --------------------------------------------------------------------------- gdb injection


needs_gdb = pytest.mark.usefixtures("gdb_available")  # tests/conftest.py: skips with the reason


@needs_gdb
def test_gdb_pending_call(tmp_path, targets):
    """Main thread running bytecode (a sleep-poll loop): the pending call runs."""
    trace, msg = attach_detach(tmp_path, targets, "plain", "poll", "gdb")
    assert "via gdb, pending call" in msg
    check_between(trace)
    assert trace.meta["attach"]["method"] == "pending-call"


@needs_gdb
def test_gdb_pending_call_whose_payload_is_slow(tmp_path, targets):
    """The pending call runs, but the payload's import takes longer than the first wait (10+ s
    on a loaded machine; here, until the attach says it waits on a payload that has begun --
    its runfile -- which is what is tested; it slept 3 s and hoped): it is waited for -- not
    taken for a main thread that never reached a safe point (the GIL fallback would then run
    a second payload beside it)."""
    trace, msg = attach_detach(tmp_path, targets, "slow-import", "poll", "gdb",
                               release_at="gdb: the payload runs; waiting for its channel")
    assert "gdb: the payload runs; waiting for its channel" in msg
    assert "via gdb, pending call" in msg
    check_between(trace)
    assert trace.meta["attach"]["method"] == "pending-call"


def _wait_on_with(monkeypatch, samples, *, started=False, ready_after=None):
    """inject_gdb._wait_on with the main thread's schedstat read from `samples` (ms: run, queued)
    and a channel that answers at the `ready_after`-th wait; returns (result, waits)."""
    from flowtrace.attach import inject_gdb

    it = iter([(run * 1_000_000, queued * 1_000_000) for run, queued in samples])
    monkeypatch.setattr(inject_gdb, "_schedstat", lambda pid: next(it, None))
    waits = []

    def ready(timeout):
        waits.append(timeout)
        return ready_after is not None and len(waits) >= ready_after

    since = (0, 0)
    return inject_gdb._wait_on(1, ready, lambda: started, 0.5, since, lambda m: None), waits


def test_gdb_waits_on_while_the_main_thread_is_starved(monkeypatch):
    # queued for a CPU in each 0.5 s wait, and little CPU in all: no chance yet to reach the safe point
    assert _wait_on_with(monkeypatch, [(5, 450), (10, 900), (12, 1380)], ready_after=3) == (True, [0.5] * 3)


def test_gdb_falls_back_when_the_main_thread_had_its_chance(monkeypatch):
    assert _wait_on_with(monkeypatch, [(0, 0)]) == (False, [])  # parked in a wait: asks for no CPU
    assert _wait_on_with(monkeypatch, [(480, 20)]) == (False, [])  # it ran (native code holding the GIL)
    # native code on a loaded machine: queued most of the time, but its CPU adds up to CHANCE
    assert _wait_on_with(monkeypatch, [(20, 450), (40, 900), (60, 1350)]) == (False, [0.5, 0.5])


def test_gdb_counts_the_main_thread_s_chance_from_the_pending_call_on(monkeypatch):
    """The CPU the main thread had before the pending call was scheduled (gdb starting up: its
    attach came seconds later under load, the program running on meanwhile) is no chance to run
    the call: a thread starved since then is waited for, not given the GIL fallback."""
    from flowtrace.attach import inject_gdb
    from flowtrace.attach.procinfo import Target

    ms = 1_000_000
    clock = {"run": 0, "queued": 0, "waits": 0}
    monkeypatch.setattr(inject_gdb, "_schedstat", lambda pid: (clock["run"], clock["queued"]))

    def gdb(pid, script):
        if "Py_AddPendingCall" in script:  # 60 ms run, 2 s queued before the attach stopped it
            clock["run"] += 60 * ms
            clock["queued"] += 2000 * ms
            return "FLOWTRACE-PAGE 4096\nFLOWTRACE-PENDING 0\n"
        return "FLOWTRACE-SAFE 1\nFLOWTRACE-RUN 0\n"  # (the fallback: a parked thread)

    def ready(timeout):  # each wait: starved (3 ms run, 450 ms queued); the call runs at the 3rd
        clock["run"] += 3 * ms
        clock["queued"] += 450 * ms
        clock["waits"] += 1
        return clock["waits"] >= 3

    monkeypatch.setattr(inject_gdb, "_run_gdb", gdb)
    target = Target(pid=1, uid=0, exe=sys.executable, version=(3, 12), libpython=None, free_threaded=False)
    assert inject_gdb.inject(target, "direct", "thread", ready) == "pending-call"
    assert clock["waits"] == 3


def test_gdb_waits_for_a_payload_that_has_begun(monkeypatch):
    from flowtrace.attach import inject_gdb

    assert _wait_on_with(monkeypatch, [], started=True, ready_after=1) == (True, [inject_gdb.PAYLOAD_LIMIT])


@needs_gdb
def test_gdb_main_thread_blocked(tmp_path, targets):
    """Main thread parked in a blocking read: the pending call cannot run; the GIL fallback does."""
    trace, msg = attach_detach(tmp_path, targets, "plain", "stdin", "gdb")
    assert "via gdb, GIL fallback" in msg
    check_between(trace)
    assert trace.meta["attach"]["method"] == "gil-fallback"


@needs_gdb
def test_gdb_attach_twice_reuses_channel(tmp_path, targets):
    """After a gdb attach, the injected channel stays (idle): the next attach needs no gdb."""
    t = Target(tmp_path, "plain", "poll")
    targets.append(t)
    for name in ("a.ftr", "b.ftr"):
        r = flowtrace_cmd("attach", str(t.pid), "-o", str(tmp_path / name), "--duration", "0.2")
        assert r.returncode == 0, r.stderr
    a, b = load(tmp_path / "a.ftr"), load(tmp_path / "b.ftr")
    assert a.meta["attach"]["method"] == "pending-call"
    assert b.meta["attach"]["method"] == "control"
    for trace in (a, b):
        assert_balanced(trace)
        assert tree(trace) == PARKED_ONLY
    t.send("go", "2", outputs=2)
    t.send("after", "1", outputs=0)
    assert t.finish()[::2] == (EXPECTED_OUT, EXPECTED_RC)


@needs_gdb
def test_gdb_refuses_main_thread_busy_in_native_code(tmp_path):
    """A main thread holding the GIL in long native code (a regex backtracking for minutes)
    never reaches a safe point and is not parked: nothing is run in it, a clear error."""
    code = "import re; print('ready', flush=True); re.match(r'(a+)+$', 'a' * 30 + 'b')"
    target = subprocess.Popen([sys.executable, "-S", "-c", code], stdout=subprocess.PIPE, text=True)
    out = tmp_path / "s.ftr"
    try:
        assert target.stdout.readline() == "ready\n"
        r = flowtrace_cmd("attach", str(target.pid), "-o", str(out), "--method", "gdb")
        assert target.poll() is None  # still running, undisturbed
    finally:
        target.kill()
        target.wait()
        target.stdout.close()
    assert (r.returncode, r.stderr) == (1, (
        f"flowtrace: error: pid {target.pid}'s main thread neither reached a safe point nor was parked "
        "in a wait (long native code holding the GIL?); try again, or use flowtrace.install()\n"))
    assert not out.exists()


# --------------------------------------------------------------------------- a slow gdb


def _fake_gdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """gdb replaced by a script (what it does: `body`), given up after 2 s without progress."""
    from flowtrace.attach import inject_gdb

    gdb = tmp_path / "gdb"
    gdb.write_text(f"#!{sys.executable}\n{body}")
    gdb.chmod(0o755)
    monkeypatch.setattr(inject_gdb, "gdb_path", lambda: str(gdb))
    monkeypatch.setattr(inject_gdb, "GDB_TIMEOUT", 2.0)


def _run_fake_gdb() -> str:
    from flowtrace.attach import inject_gdb

    target = subprocess.Popen(["sleep", "60"])  # a target using no CPU
    try:
        return inject_gdb._run_gdb(target.pid, "detach\n")
    finally:
        target.kill()
        target.wait()


def test_a_gdb_working_longer_than_the_timeout_is_waited_for(tmp_path, monkeypatch):
    """A gdb using CPU all along is slow (its symbol loading on a loaded machine: 10-40 s at
    load 40-50), not hung: it is waited for. (A fixed 30 s failed the attach tests there.)"""
    _fake_gdb(tmp_path, monkeypatch, "import time\nend = time.monotonic() + 6\n"
                                     "while time.monotonic() < end:\n    pass\nprint('FLOWTRACE-PAGE 4096')\n")
    from flowtrace.attach import inject_gdb

    assert inject_gdb._marker(_run_fake_gdb(), "PAGE") == "4096"


def test_a_gdb_making_no_progress_is_given_up(tmp_path, monkeypatch):
    from flowtrace.attach import inject_gdb

    _fake_gdb(tmp_path, monkeypatch, "import time\ntime.sleep(60)\n")
    with pytest.raises(inject_gdb.AttachError, match=r"^gdb made no progress for 2 s on pid \d+$"):
        _run_fake_gdb()
