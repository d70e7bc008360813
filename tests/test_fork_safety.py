"""A forked child (os.fork without exec, multiprocessing fork workers) never writes into its
parent's session file, whichever way it ends: os._exit, sys.exit (atexit runs in the child),
SIGTERM (our handler is inherited; Pool.terminate sends it), or after recording more rows than
the backpressure cap (the child's recording thread would flush itself). Real processes.
(A fork Pool of 4 mapping over 40 items, with Pool.terminate's SIGTERM, is not checked here:
under `flowtrace run` such a pool still hangs in about one run in four -- a worker never acts
on the SIGTERM or dies holding the task queue's lock; under investigation, see issue 12.)"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from flowtrace.ftr.reader import load

FORK_SCRIPT = """
import os, signal, sys

def child_work(i):
    return i * 2

def parent_work():
    return 1

def main():
    for rep in range(6):
        pid = os.fork()
        if pid == 0:
            n = 30000 if rep == 0 else 50   # rep 0: past the backpressure cap (50k rows)
            for i in range(n):
                child_work(i)
            if rep % 3 == 0:
                os._exit(0)
            if rep % 3 == 1:
                sys.exit(0)                  # SystemExit: the child unwinds through flowtrace run
            os.kill(os.getpid(), signal.SIGTERM)
        os.waitpid(pid, 0)
    parent_work()
    print("parent done")

main()
"""

def _run(tmp_path: pathlib.Path, body: str, recorder: str) -> tuple[subprocess.CompletedProcess, pathlib.Path]:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(body))
    out = tmp_path / "trace.ftr"
    env = {**os.environ, "FLOWTRACE_RECORDER": recorder}
    proc = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", str(out), str(script)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    return proc, out


def _names(path: pathlib.Path) -> list[str]:
    trace = load(str(path))
    return [call.qualname for call, _depth in trace.walk()]


def test_forked_children_never_write_into_the_parents_file(tmp_path: pathlib.Path, recorder_name: str) -> None:
    proc, out = _run(tmp_path, FORK_SCRIPT, recorder_name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "parent done\n"
    # one closing line: the parent's (a child that exits normally says nothing)
    assert proc.stderr.count("flowtrace: recorded") == 1, proc.stderr
    names = _names(out)
    assert "child_work" not in names
    assert names.count("parent_work") == 1
    assert names.count("main") == 1

