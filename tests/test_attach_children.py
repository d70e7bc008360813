"""`flowtrace attach PID --children`: record a running process and the child processes it
starts from then on, into one session (`FILE` and `FILE.d/`, as `flowtrace run` follows them).

The target runs on the base interpreter (no flowtrace in its environment: the children import
the attached flowtrace from where the target got it) and is reached with gdb. It starts a child
before the attach (not followed), then while attached a Python subprocess, a spawn Pool of 2, an
os.fork child and a child that is still running at the detach (its part ends "detached"), then
after the detach another child (not followed). Its output, exit status and environment are
those of a plain run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flowtrace.follow import BOOT_DIR, DETACHED, ENV_DIR, ENV_OPTS
from flowtrace.ftr.processes import Process, end_words, session_processes
from flowtrace.ftr.reader import load
from flowtrace.ftr.summary import read_summary

BASE_PY = getattr(sys, "_base_executable", sys.executable)  # outside the venv: no flowtrace
TIMEOUT = 60

TARGET = textwrap.dedent('''\
    import multiprocessing as mp, os, subprocess, sys, time

    # reads lines until its stdin closes; says "ready" once it has run (its part has started)
    SLOW = "import sys\\ndef tick():\\n    return sys.stdin.readline()\\nwhile tick():\\n    print('ready', flush=True)"

    def square(x):
        return x * x

    def python(code):
        return subprocess.run([sys.executable, "-c", code]).returncode

    def fork_child():
        pid = os.fork()
        if pid == 0:
            square(3)
            os._exit(0)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def env():
        return os.environ.get("PYTHONPATH"), sorted(k for k in os.environ if k.startswith("FLOWTRACE"))

    def main():
        print("before", python("def before(): pass\\nbefore()"), env(), flush=True)
        sys.stdin.readline()                        # attached here
        print(python("def hi(): print('hi')\\nhi()"), flush=True)
        pool = mp.get_context("spawn").Pool(2)
        print(sum(pool.map(square, range(10))), flush=True)
        pool.close()
        pool.join()
        print("fork", fork_child(), flush=True)
        slow = subprocess.Popen([sys.executable, "-c", SLOW], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        slow.stdin.write(b"x\\n")
        slow.stdin.flush()
        print("running", slow.stdout.readline().decode().strip(), flush=True)
        sys.stdin.readline()                        # detached here
        print("after", python("def after(): pass\\nafter()"), env(), flush=True)
        slow.stdin.close()
        print("slow", slow.wait(), flush=True)
        return 4

    if __name__ == "__main__":
        sys.exit(main())
''')
OUTPUT = "before 0 (None, [])\nhi\n0\n285\nfork 0\nrunning ready\nafter 0 (None, [])\nslow 0\n"


def flowtrace_cmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowtrace", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def target_env() -> dict[str, str]:
    """The target's environment: none of flowtrace's variables, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWTRACE", "PYTHONPATH"))}
    return {**env, "PYTHONUNBUFFERED": "1"}


def start_target(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([BASE_PY, "target.py"], cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=target_env())


def line(proc: subprocess.Popen) -> str:
    got = proc.stdout.readline()  # bounded: the target waits only for our lines
    assert got, proc.stderr.read()
    return got


def ended(session: str) -> list[Process]:
    """The session's processes once every part has its end (the parts of children still
    running at the detach end at their next flush, 0.1 s). It looks every 10 ms (it spun, taking
    a CPU from the children it waited for), and a part still without its end after TIMEOUT (a
    guard against a hang) fails here, named (it returned then, silently, after 60 s)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        procs = session_processes(session)
        if all(p.end is not None for p in procs):
            return procs
        assert time.monotonic() < deadline, [(p.title(), p.status()) for p in procs if p.end is None]
        time.sleep(0.01)


@pytest.mark.usefixtures("gdb_available")
def test_attach_children_records_the_children_started_while_attached(tmp_path: Path) -> None:
    (tmp_path / "target.py").write_text(TARGET)
    plain = subprocess.run([BASE_PY, "target.py"], cwd=tmp_path, input="\n\n", capture_output=True, text=True,
                           timeout=TIMEOUT, env=target_env())
    assert (plain.stdout, plain.returncode) == (OUTPUT, 4), plain.stderr
    target = start_target(tmp_path)
    try:
        out = [line(target)]
        session = str(tmp_path / "s.ftr")
        r = flowtrace_cmd("attach", str(target.pid), "-o", session, "--no-wait", "--children", "--method", "gdb")
        assert r.returncode == 0, r.stderr
        target.stdin.write("\n")
        target.stdin.flush()
        out += [line(target) for _ in range(5)]
        r = flowtrace_cmd("detach", str(target.pid))
        assert r.returncode == 0, r.stderr
        assert r.stderr.endswith(", and 6 child processes in s.ftr.d/\n"), r.stderr
        # the children still running (the slow one, the resource tracker) end their parts at
        # their next flush: waited for before the target ends them, so that the slow child's
        # tree is cut where it waits however late that flush comes on a busy machine
        ended(session)
        target.stdin.write("\n")
        target.stdin.close()
        rest, err = target.stdout.read(), target.stderr.read()
        assert (("".join(out) + rest), target.wait(TIMEOUT)) == (OUTPUT, 4), err
    finally:
        if target.poll() is None:
            target.kill()
    root, *children = ended(session)
    assert (root.how, root.title(), root.status()) == ("root", f"pid {target.pid}: python target.py", "detached")
    rows = sorted((p.depth, p.how, p.title().split(": ", 1)[1], p.status()) for p in children)
    assert rows == [
        (1, "exec", "python -B -c …", "detached"),  # multiprocessing's resource tracker, still running
        (1, "exec", "python -B -c … --multiprocessing-fork", "exit 0"),  # the pool's two workers
        (1, "exec", "python -B -c … --multiprocessing-fork", "exit 0"),
        (1, "exec", "python -c …", "detached"),  # the slow child, running on after the detach
        (1, "exec", "python -c …", "exit 0"),  # hi
        (1, "fork", "python target.py", "exit 0"),
    ]
    calls = {p.pid: [("  " * d) + c.qualname + ("(…)" if c.partial else "") for c, d in load(p.path).walk()]
             for p in children}
    by_title = {}
    for p in children:
        by_title.setdefault(p.title().split(": ", 1)[1], []).append(calls[p.pid])
    assert by_title["python -B -c …"] == [["<module>"]]  # the tracker's loop is multiprocessing's
    assert sorted(by_title["python -c …"]) == [["<module>", "  hi"], ["<module>", "  tick", "  tick"]]
    assert by_title["python target.py"] == [["<module>(…)", "  main(…)", "    fork_child(…)", "      square"]]
    workers = by_title["python -B -c … --multiprocessing-fork"]
    assert [w[:2] for w in workers] == [["<module>", "  <module>"]] * 2  # spawn imports target.py again
    assert sorted(set(line for w in workers for line in w[2:])) == ["  square"]
    assert sum(len(w) - 2 for w in workers) == 10  # every call once, in one worker or the other
    slow = next(p for p in children if calls[p.pid] == ["<module>", "  tick", "  tick"])
    assert [c.end for c, _ in load(slow.path).walk()] == ["unfinished", "return", "unfinished"]


def test_a_part_that_ends_right_after_the_detach_says_detached(tmp_path: Path) -> None:
    """A followed child of an attached session that exits before its next flush has seen the
    detach (its flush interval here: 60 s) ends "detached" all the same, as it looks again as
    it exits: the session was detached while it ran. (It said "exit 0" or "detached" by how a
    flush fell between the detach and its end: the test above failed so under load.)"""
    parts = tmp_path / "s.ftr.d"
    parts.mkdir()
    marker = parts / DETACHED
    child = f"import os, time\nwhile not os.path.exists({str(marker)!r}):\n    time.sleep(0.01)\n"
    env = {**target_env(), ENV_DIR: str(parts), ENV_OPTS: json.dumps({"attach": True, "flush_interval": 60}),
           "PYTHONPATH": BOOT_DIR}
    proc = subprocess.Popen([sys.executable, "-c", child], env=env, cwd=tmp_path)
    try:
        part = parts / f"{proc.pid}.ftr"
        deadline = time.monotonic() + TIMEOUT
        while not part.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # its part has started: it is one of the session's processes
        assert part.exists(), "the child's part did not start"
        marker.write_text("")  # what the root's detach writes
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    summary = read_summary(str(part))
    assert (summary.end or {}).get("reason") == "detached", summary.end
    assert end_words(summary.end) == "detached"
    assert [c.qualname for c, _ in load(str(part)).walk()] == ["<module>"]
