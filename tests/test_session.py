"""Session files: written while running, finished cleanly at stop/exit/exception/signals, and
readable after kill -9 (every call up to the last flush; open calls unfinished)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from flowtrace.ftr.reader import load
from treeutil import record, shape

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _run(code: str, tmp_path, recorder_name, *, wait=True, **kw):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(code))
    env = dict(os.environ, FLOWTRACE_RECORDER=recorder_name, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if wait:
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out, err
    return proc


PROLOGUE = """
import sys
from flowtrace.session import Session
def square(x):
    return x * x
def main():
    square(2)
    {body}
s = Session("out.ftr")
s.start()
s.install_exit_hooks()
"""


def test_stop_writes_meta_and_ends(tmp_path, recorder_name):
    path = tmp_path / "s.ftr"
    from flowtrace.session import Session

    def square(x):
        return x * x

    s = Session(path, recorder=recorder_name, meta={"note": "hi"})
    s.start()
    square(3)
    s.stop()
    s.stop()  # idempotent
    trace = load(path)
    assert trace.status == "finished"
    assert trace.end["reason"] == "stopped" and trace.end["calls"] == 1
    m = trace.meta
    assert m["pid"] == os.getpid() and m["recorder"] == recorder_name and m["note"] == "hi"
    assert m["options"] == {"args": "safe", "include": [], "exclude": [], "flush_interval_s": 0.1}
    assert m["command"] == "record" and m["format"] == "flowtrace"
    for key in ("ppid", "argv", "cwd", "python", "executable", "platform", "hostname",
                "origin_ns", "started_wall_ns", "flowtrace_version"):
        assert key in m
    assert m["stdlib"] == sys._stdlib_dir and os.path.isfile(os.path.join(m["stdlib"], "posixpath.py"))
    assert shape(trace) == ["square(x=3) = 9"]


def test_normal_exit(tmp_path, recorder_name):
    code = PROLOGUE.format(body="return 0") + "main()\nprint('bye')\n"
    rc, out, err = _run(code, tmp_path, recorder_name)
    assert (rc, out, err) == (0, "bye\n", "")
    trace = load(tmp_path / "out.ftr")
    assert trace.end["reason"] == "exit"
    assert shape(trace) == ["main() = 0", "  square(x=2) = 4"]


def test_sys_exit(tmp_path, recorder_name):
    code = PROLOGUE.format(body="sys.exit(3)") + "main()\n"
    rc, out, err = _run(code, tmp_path, recorder_name)
    assert rc == 3 and err == ""
    trace = load(tmp_path / "out.ftr")
    assert trace.status == "finished" and trace.end["reason"] == "exit"
    assert shape(trace) == ["main() ! SystemExit: 3", "  square(x=2) = 4"]


def test_uncaught_exception(tmp_path, recorder_name):
    code = PROLOGUE.format(body="raise ValueError('boom')") + "main()\n"
    rc, out, err = _run(code, tmp_path, recorder_name)
    assert rc == 1 and err.rstrip().endswith("ValueError: boom") and "Traceback" in err
    trace = load(tmp_path / "out.ftr")
    assert trace.end["reason"] == "exception" and trace.end["error"] == "ValueError: boom"
    assert shape(trace) == ["main() ! ValueError: boom", "  square(x=2) = 4"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_file_then_behaves_as_usual(tmp_path, recorder_name, sig):
    body = "print('ready', flush=True)\n    import time\n    while True: time.sleep(0.01)"
    proc = _run(PROLOGUE.format(body=body) + "main()\n", tmp_path, recorder_name, wait=False)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    if sig == signal.SIGTERM:
        assert proc.returncode == -signal.SIGTERM  # killed by the signal, as without flowtrace
    else:
        assert proc.returncode in (-signal.SIGINT, 130) and "KeyboardInterrupt" in err
    trace = load(tmp_path / "out.ftr")
    assert trace.status == "finished"
    assert trace.end["reason"] == "signal" and trace.end["signal"] == signal.Signals(sig).name
    lines = shape(trace)
    assert lines[1] == "  square(x=2) = 4"
    if sig == signal.SIGTERM:
        assert lines[0] == "main() ~"  # still running when the process was killed
    else:
        assert lines[0] == "main() ! KeyboardInterrupt"


def test_kill_9_keeps_everything_up_to_the_last_flush(tmp_path, recorder_name):
    code = """
    import time
    from flowtrace.session import Session
    def square(x):
        return x * x
    def main():
        for i in range(5):
            square(i)
        print('ready', flush=True)
        while True:
            time.sleep(0.01)
    s = Session("out.ftr", flush_interval=0.02)
    s.start()
    main()
    """
    proc = _run(code, tmp_path, recorder_name, wait=False)
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.3)  # several flushes
    proc.kill()
    proc.communicate(timeout=30)
    trace = load(tmp_path / "out.ftr")
    assert trace.status == "unfinished" and trace.end is None
    assert shape(trace) == ["main() ~"] + [f"  square(x={i}) = {i * i}" for i in range(5)]


def test_live_file_is_readable_while_recording(tmp_path, recorder_name):
    from flowtrace.session import Session

    def square(x):
        return x * x

    path = tmp_path / "live.ftr"
    s = Session(path, recorder=recorder_name, flush_interval=0.01)
    s.start()
    try:
        square(1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            trace = load(path)
            if len(trace.calls) >= 1:
                break
            time.sleep(0.01)
        assert trace.status == "unfinished" and shape(trace) == ["square(x=1) = 1"]
    finally:
        s.stop()


def test_record_context_manager(tmp_path, recorder_name, monkeypatch):
    import flowtrace

    monkeypatch.setenv("FLOWTRACE_RECORDER", recorder_name)

    def square(x):
        return x * x

    path = tmp_path / "r.ftr"
    with flowtrace.record(str(path), args="off"):
        square(5)
    trace = load(path)
    assert trace.finished and shape(trace) == ["square()"]
    with pytest.raises(KeyError):
        with flowtrace.record(str(path)):
            square(6)
            raise KeyError("x")
    trace = load(path)
    assert trace.end["reason"] == "exception" and trace.end["error"] == "KeyError: 'x'"


def test_flusher_thread_is_not_recorded(tmp_path, recorder_name):
    trace = record(lambda: time.sleep(0.25), recorder_name)  # a few flushes happen meanwhile
    assert shape(trace) == ["<lambda>() = None"]
    assert [t.name for t in trace.threads.values()] == ["MainThread"]
