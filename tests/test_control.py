"""The cooperative control channel (flowtrace/control.py): directory safety, the protocol, zero
cost while idle, the signal toggle, fork, stale sockets.

Protocol tests drive a real child process: it runs `flowtrace.install()` and then executes the
Python lines the test sends on its stdin, printing `repr(result)` of each (so the test can look
at the child's monitoring state). Every read is bounded by the child's lifetime.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flowtrace import control
from flowtrace.ftr.reader import load

CHILD = r'''
import sys, flowtrace, flowtrace.control as control

def work(x):
    return x * 2

if len(sys.argv) > 2:  # the test's own control directories (control.RUN_USER_DIR, control.TMP_DIR)
    control.RUN_USER_DIR, control.TMP_DIR = eval(sys.argv[2])
print(repr(flowtrace.install(**eval(sys.argv[1]))), flush=True)
for line in sys.stdin:
    try:
        result = eval(line)
    except Exception as exc:
        result = "error: %s: %s" % (type(exc).__name__, exc)
    print(repr(result), flush=True)
'''


class Child:
    def __init__(self, tmp: Path, dirs: tuple[str, str] | None = None, **install_kwargs) -> None:
        """`dirs`: the control directories the child uses (RUN_USER_DIR, TMP_DIR), else the real ones."""
        script = tmp / "child.py"
        script.write_text(CHILD)
        self.proc = subprocess.Popen(
            [sys.executable, str(script), repr(install_kwargs), *([repr(dirs)] if dirs else [])], cwd=tmp,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.pid = self.proc.pid
        self.socket = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()
        return eval(line)

    def eval(self, expr: str):
        self.proc.stdin.write(expr + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> tuple[int, str]:
        self.proc.stdin.close()
        rc = self.proc.wait(30)
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, err


@pytest.fixture
def child(tmp_path):
    c = Child(tmp_path)
    yield c
    if c.proc.poll() is None:
        c.proc.terminate()  # SIGTERM: the channel removes its socket (SIGKILL would leave it)
        c.proc.wait()


MONITORING = "[(sys.monitoring.get_tool(i), sys.monitoring.get_events(i)) for i in range(6)]"
IDLE = [(None, 0)] * 6


# --------------------------------------------------------------------------- the directory


@pytest.fixture
def fake_dirs(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "RUN_USER_DIR", str(tmp_path / "run-{uid}"))
    monkeypatch.setattr(control, "TMP_DIR", str(tmp_path / "ft-{uid}"))
    return tmp_path


def test_dir_created_private(fake_dirs):
    uid = os.getuid()
    path = control.control_dir(create=True)
    assert path == str(fake_dirs / f"ft-{uid}")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == uid
    assert control.socket_path(123) == os.path.join(path, "123.sock")


def test_run_user_dir_preferred_when_private(fake_dirs):
    uid = os.getuid()
    (fake_dirs / f"run-{uid}").mkdir(mode=0o700)
    assert control.control_dir(create=True) == str(fake_dirs / f"run-{uid}" / "flowtrace")


def test_missing_dir_is_reported(fake_dirs):
    with pytest.raises(control.ControlError, match="does not exist"):
        control.control_dir()


def test_unsafe_dirs_refused(fake_dirs):
    path = fake_dirs / f"ft-{os.getuid()}"
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    with pytest.raises(control.ControlError, match=r"accessible to other users \(mode 755\)"):
        control.control_dir(create=True)
    path.rmdir()
    (fake_dirs / "elsewhere").mkdir(mode=0o700)
    path.symlink_to(fake_dirs / "elsewhere")
    with pytest.raises(control.ControlError, match="is not a directory"):
        control.control_dir(create=True)
    path.unlink()
    path.write_text("")
    with pytest.raises(control.ControlError, match="is not a directory"):
        control.control_dir(create=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory owned by someone else")
def test_dir_owned_by_another_user_refused(fake_dirs):
    path = fake_dirs / f"ft-{os.getuid()}"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    with pytest.raises(control.ControlError, match="is owned by uid 65534"):
        control.control_dir(create=True)


# --------------------------------------------------------------------------- the protocol


def raw(child: Child, data: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(child.socket)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return json.loads(s.makefile("rb").readline())


def test_socket_is_named_after_the_pid(child):
    assert child.socket == control.socket_path(child.pid)
    assert stat.S_ISSOCK(os.stat(child.socket).st_mode)


def test_status_and_bad_requests(child):
    st = control.request(child.pid, {"cmd": "status"})
    v = sys.version_info
    assert st == {"ok": True, "protocol": 1, "pid": child.pid, "python": f"{v.major}.{v.minor}.{v.micro}",
                  "state": "idle", "sessions": 0}
    assert raw(child, b"not json\n") == {"ok": False, "error": "bad request: expected one JSON object per line"}
    assert raw(child, b"[1]\n") == {"ok": False, "error": "bad request: expected one JSON object per line"}
    assert control.request(child.pid, {"cmd": "fly"}) == {"ok": False, "error": "unknown command 'fly' (start, stop, status)"}
    assert control.request(child.pid, {"cmd": "start", "path": "rel.ftr"}) == {
        "ok": False, "error": "start needs an absolute output path"}
    assert control.request(child.pid, {"cmd": "start", "path": "/x.ftr", "args": "all"}) == {
        "ok": False, "error": "bad args mode 'all' (safe, full, off)"}
    assert control.request(child.pid, {"cmd": "start", "path": "/x.ftr", "include": "a*"}) == {
        "ok": False, "error": "include must be a list of patterns"}
    assert control.request(child.pid, {"cmd": "stop"}) == {
        "ok": False, "error": "not recording", "state": "idle", "pid": child.pid}
    # the channel survived all of that
    assert control.channel_status(child.pid)["state"] == "idle"


def test_unwritable_output_is_reported(child, tmp_path):
    bad = str(tmp_path / "no-such-dir" / "x.ftr")
    reply = control.request(child.pid, {"cmd": "start", "path": bad})
    assert reply == {"ok": False, "error": f"cannot record into {bad}: No such file or directory"}
    assert child.eval(MONITORING) == IDLE


def test_zero_cost_while_idle_and_after_stop(child, tmp_path):
    """Idle: no sys.monitoring tool, no events. Recording: one tool. Stopped: idle again."""
    assert child.eval(MONITORING) == IDLE
    out = str(tmp_path / "s.ftr")
    assert control.request(child.pid, {"cmd": "start", "path": out}) == {
        "ok": True, "pid": child.pid, "state": "recording", "path": out}
    tools = child.eval(MONITORING)
    assert sum(1 for name, events in tools if name is not None and events) == 1
    st = control.channel_status(child.pid)
    assert (st["state"], st["path"], st["sessions"]) == ("recording", out, 1)
    assert child.eval("work(21)") == 42
    reply = control.request(child.pid, {"cmd": "stop"})
    assert (reply["ok"], reply["state"], reply["path"]) == (True, "idle", out)
    assert child.eval(MONITORING) == IDLE
    trace = load(out)
    assert trace.finished and trace.end["reason"] == "detached"
    assert [(c.qualname, c.args, c.result) for c in trace.calls if not c.partial] == [("work", "x=21", "42")]
    assert reply["calls"] == len(trace.calls)
    rc, err = child.close()
    assert (rc, err) == (0, "")
    assert not os.path.exists(child.socket)  # removed at exit


def test_install_is_idempotent_and_uninstall_removes_socket(child):
    assert child.eval("flowtrace.install()") == child.socket
    threads = "[t.name for t in __import__('threading').enumerate() if t.name.startswith('flowtrace')]"
    assert child.eval(threads) == ["flowtrace-control"]
    assert child.eval("control.uninstall()") is None
    assert not os.path.exists(child.socket)
    assert control.channel_status(child.pid) is None
    assert child.eval("control.installed()") is False
    assert child.eval("flowtrace.install()") == child.socket  # and again
    assert control.channel_status(child.pid)["state"] == "idle"


def test_stale_socket_file_is_replaced(tmp_path):
    """A socket file left by a killed process with the same pid does not block install()."""
    code = ("import os, socket, flowtrace.control as c;"
            "p = os.path.join(c.control_dir(create=True), '%d.sock' % os.getpid());"
            # an earlier process with this pid may have left one already (pids are reused)
            "os.path.exists(p) and os.unlink(p);"
            "s = socket.socket(socket.AF_UNIX); s.bind(p); s.close();"  # the file stays, nobody listens
            "print(c.install() == p)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "True\n", "")


def test_live_socket_is_not_stolen(child):
    code = (f"import flowtrace.control as c; c._Channel({child.socket!r}, 0.1).open()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"ControlError: control socket {child.socket} is already being served" in r.stderr
    assert control.channel_status(child.pid)["state"] == "idle"


def test_client_checks_the_serving_pid(child, monkeypatch):
    """A socket named after pid A but served by pid B is refused by the client."""
    other = os.getpid()
    monkeypatch.setattr(control, "socket_path", lambda pid, uid=None: child.socket)
    with pytest.raises(control.ControlError, match=f"is served by pid {child.pid}, not {other}"):
        control.request(other, {"cmd": "status"})


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_other_users_cannot_connect(child):
    code = ("import os, socket, sys; os.setgid(65534); os.setuid(65534); s = socket.socket(socket.AF_UNIX);"
            f"\ntry:\n s.connect({child.socket!r})\nexcept PermissionError:\n print('refused')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, "refused\n"), r.stderr


def test_signal_toggle(tmp_path):
    c = Child(tmp_path, signal=int(signal.SIGUSR2))
    try:
        os.kill(c.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while control.channel_status(c.pid)["state"] != "recording" and time.monotonic() < deadline:
            c.eval("0")  # the handler runs in the child's main thread between bytecodes
            time.sleep(0.01)
        path = str(tmp_path / f"flowtrace-{c.pid}-1.ftr")
        assert control.channel_status(c.pid)["path"] == path
        assert c.eval("work(2)") == 4
        os.kill(c.pid, signal.SIGUSR2)
        while control.channel_status(c.pid)["state"] != "idle" and time.monotonic() < deadline:
            c.eval("0")
            time.sleep(0.01)
        assert control.channel_status(c.pid)["state"] == "idle"
        trace = load(path)
        assert trace.finished and trace.end["reason"] == "detached"
        assert trace.meta["attach"]["method"] == "signal"
        assert [(x.qualname, x.args, x.result) for x in trace.calls if not x.partial] == [("work", "x=2", "4")]
        assert c.close() == (0, "")
    finally:
        if c.proc.poll() is None:
            c.proc.terminate()
            c.proc.wait()


def test_status_answers_while_a_start_or_stop_is_under_way(child):
    """A status request does not wait for a start or stop in progress (the channel's lock is
    held while a session starts: imports, the writer, seeding every thread; seconds under load,
    when `status` timed out after 2 s and test_signal_toggle failed): it says the state the
    channel is in until the change is done."""
    assert child.eval("control._channel.lock.acquire()") is True  # as a start under way holds it
    reply = control.channel_status(child.pid, timeout=30)
    assert (reply["ok"], reply["state"], reply["sessions"]) == (True, "idle", 0)
    assert child.eval("control._channel.lock.release()") is None


# (the child runs this once: every Session.start waits for `gate`, saying `entered` first)
SLOW_START = """
import threading, flowtrace.session
gate, entered = threading.Event(), threading.Event()
_start = flowtrace.session.Session.start
def _slow_start(self):
    entered.set()
    gate.wait(120)
    _start(self)
flowtrace.session.Session.start = _slow_start
"""


def test_status_answers_while_a_start_request_is_under_way(child, tmp_path):
    """A status request is answered while the channel is still answering a start request (the
    start waits for the test here, as seconds of imports and seeding make it wait under load),
    not after it: it said "did not answer within 2 s" behind an attach's start under load."""
    assert child.eval(f"exec({SLOW_START!r})") is None
    out = str(tmp_path / "s.ftr")
    replies: list[dict] = []
    starting = threading.Thread(target=lambda: replies.append(
        control.request(child.pid, {"cmd": "start", "path": out}, timeout=120)))
    starting.start()
    try:
        assert child.eval("entered.wait(60)") is True  # the start is under way
        reply = control.channel_status(child.pid, timeout=30)
        assert (reply["ok"], reply["state"], reply["sessions"]) == (True, "idle", 0)
    finally:
        child.eval("gate.set()")
        starting.join()
    assert replies == [{"ok": True, "pid": child.pid, "state": "recording", "path": out}]
    assert control.channel_status(child.pid)["state"] == "recording"
    assert control.request(child.pid, {"cmd": "stop"})["ok"]


def test_forked_child_has_no_channel(child):
    code = ("(lambda os: (lambda pid: os.waitpid(pid, 0)[1] if pid else "
            "os._exit(0 if not control.installed() else 1))(os.fork()))(__import__('os'))")
    assert child.eval(code) == 0
    assert control.channel_status(child.pid)["state"] == "idle"


# --------------------------------------------------------------------------- sockets left behind


def test_sigterm_removes_the_socket_and_still_kills(child):
    assert os.path.exists(child.socket)
    child.proc.send_signal(signal.SIGTERM)
    assert child.proc.wait(30) == -signal.SIGTERM
    assert not os.path.exists(child.socket)


def test_sigterm_while_recording_finishes_the_file(child, tmp_path):
    out = str(tmp_path / "s.ftr")
    assert control.request(child.pid, {"cmd": "start", "path": out})["ok"]
    assert child.eval("work(4)") == 8
    child.proc.send_signal(signal.SIGTERM)
    assert child.proc.wait(30) == -signal.SIGTERM
    assert not os.path.exists(child.socket)
    trace = load(out)
    assert trace.finished and (trace.end["reason"], trace.end["signal"]) == ("signal", "SIGTERM")
    assert [(c.qualname, c.result) for c in trace.calls if not c.partial] == [("work", "8")]


def test_run_paused_killed_by_sigterm_leaves_no_socket(tmp_path):
    (tmp_path / "wait.py").write_text("import sys\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-m", "flowtrace", "run", "--paused", "wait.py"], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline().startswith("flowtrace: not recording yet")
        path = control.socket_path(proc.pid)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == -signal.SIGTERM
        assert not os.path.exists(path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stderr.close()


def _socket_file(path: str) -> None:
    """A socket file nobody serves: what a process killed with SIGKILL leaves behind."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(path)


def test_stale_sockets_are_removed_on_start(fake_dirs):
    """Starting a channel removes the sockets of processes that are gone, and only those. (In a
    directory of the test's own: in the real one, every flowtrace process of the machine, a
    concurrent run of this test among them, removes and makes sockets.)"""
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    directory = control.control_dir(create=True)
    stale, live = (os.path.join(directory, f"{p.pid}.sock") for p in (gone, alive))
    other = os.path.join(directory, "notes.sock")  # not a pid's: never ours to remove
    try:
        for path in (stale, live, other):
            _socket_file(path)
        c = Child(fake_dirs, dirs=(control.RUN_USER_DIR, control.TMP_DIR))
        assert os.path.dirname(c.socket) == directory
        assert c.close() == (0, "")
        assert not os.path.exists(stale) and not os.path.exists(c.socket)
        assert os.path.exists(live) and os.path.exists(other)
    finally:
        alive.stdin.close()
        alive.wait()


def test_remove_stale_sockets_keeps_files_that_are_not_sockets(fake_dirs):
    directory = control.control_dir(create=True)
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    _socket_file(os.path.join(directory, f"{gone.pid}.sock"))
    Path(directory, "1.sock.txt").write_text("")
    os.mkdir(os.path.join(directory, f"{gone.pid + 1000000}.sock"))  # a directory, not a socket
    assert control.remove_stale_sockets(directory) == [f"{gone.pid}.sock"]
    assert sorted(os.listdir(directory)) == sorted(["1.sock.txt", f"{gone.pid + 1000000}.sock"])
