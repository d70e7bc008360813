"""How each followed child ended, as `flowtrace print` says it: a child that returns (no
sys.exit) says `exit 0`, not `exited` -- for every multiprocessing start method, a Python
subprocess, os.fork from the program and from a child -- and one that calls sys.exit(N) or
raises says so (examples/endings.py, recorded for real with each recorder). The explorer's
process rows are checked in tests/tui/test_tui_processes_app.py."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

from flowtrace.ftr.processes import session_processes

PY = sys.executable
ENDINGS = pathlib.Path(__file__).resolve().parent.parent / "examples" / "endings.py"
OUTPUT = """\
fork returns 0
fork exits 7
fork raises 1
spawn returns 0
spawn exits 7
spawn raises 1
forkserver returns 0
forkserver exits 7
forkserver raises 1
python -c 0 4 1 1 0
os.fork return 0
os.fork exit 3
os.fork raise 1
"""
# `flowtrace print`'s process headings, pids left out. The spawn worker that returns and the
# resource tracker (`python -B -c …` without --multiprocessing-fork, which ends when the root
# does) start at the same time: their order is the kernel's, so they are compared as a set.
HEADINGS = [
    "== python endings.py (root, exit 0)",
    "  == python endings.py (fork, exit 0)",
    "  == python endings.py (fork, exit 7)",
    "  == python endings.py (fork, exit 1)",
    {"  == python -B -c … --multiprocessing-fork (exec, exit 0)", "  == python -B -c … (exec, exit 0)"},
    "  == python -B -c … --multiprocessing-fork (exec, exit 7)",
    "  == python -B -c … --multiprocessing-fork (exec, exit 1)",
    "  == python -B -c … (exec, exit 0)",  # the forkserver, and the workers it forked
    "    == python -B -c … (fork, exit 0)",  # (a fork runs its parent's command)
    "    == python -B -c … (fork, exit 7)",
    "    == python -B -c … (fork, exit 1)",
    "  == python -c … (exec, exit 0)",
    "  == python -c … (exec, exit 4)",
    "  == python -c … (exec, exit 1)",
    "  == python -c … (exec, uncaught exception: ValueError: x)",
    "  == python -c … (exec, exit 0)",
    "    == python -c … (fork, exit 0)",  # forked by that child, then returned
    "  == python endings.py (fork, exit 0)",
    "  == python endings.py (fork, exit 3)",
    "  == python endings.py (fork, uncaught exception: ValueError: in the child)",
]


# Only against a hang (never a measure): the program below starts five Pythons, each importing
# flowtrace; with benchmarks at nice -15 holding most of the 2 cores a cold Python start took
# 3.7 s of wall time for 30 ms of CPU, and 60 s was not always enough (test_only_the_main_programs_exit_counts[c]).
HANG_GUARD_S = 600


def record_endings(tmp_path: pathlib.Path, recorder: str) -> pathlib.Path:
    """Run examples/endings.py under `flowtrace run` (and plain: same output and status) and
    wait until every part has ended (the resource tracker and the forkserver end after the
    root); the session's path."""
    script = tmp_path / "endings.py"
    script.write_text(ENDINGS.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_FOLLOW")}
    kw = dict(capture_output=True, text=True, cwd=tmp_path, timeout=120)
    out = tmp_path / "trace.ftr"
    traced = subprocess.run([PY, "-m", "flowtrace", "run", "-o", str(out), "endings.py"],
                            env={**env, "FLOWTRACE_RECORDER": recorder}, **kw)
    plain = subprocess.run([PY, "endings.py"], env=env, **kw)
    assert (traced.stdout, traced.returncode) == (plain.stdout, plain.returncode) == (OUTPUT, 0), traced.stderr
    deadline = time.monotonic() + 60
    while any(p.end is None for p in session_processes(str(out))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return out


def headings(session: pathlib.Path) -> list[str]:
    out = subprocess.run([PY, "-m", "flowtrace", "print", str(session)], capture_output=True, text=True,
                         timeout=HANG_GUARD_S, env={**os.environ, "NO_COLOR": "1"})
    assert out.returncode == 0, out.stderr
    return [re.sub(r"== pid \d+: ", "== ", line) for line in out.stdout.splitlines() if line.lstrip().startswith("== pid ")]


@pytest.mark.parametrize("recorder", ["c", "python"])
def test_each_child_says_how_it_ended(tmp_path: pathlib.Path, recorder: str) -> None:
    got = headings(record_endings(tmp_path, recorder))
    assert len(got) == 21
    expected: list[str] = []
    for item in HEADINGS:
        expected.extend(sorted(item) if isinstance(item, set) else [item])
    i = HEADINGS.index(next(h for h in HEADINGS if isinstance(h, set)))
    got[i:i + 2] = sorted(got[i:i + 2])
    assert got == expected


CAUGHT = """
import subprocess, sys
def python(code):
    return subprocess.run([sys.executable, "-c", code]).returncode
print(python("import sys\\ntry:\\n    sys.exit(2)\\nexcept SystemExit:\\n    pass"),
      python("import _thread, sys, time\\n_thread.start_new_thread(sys.exit, (5,))\\ntime.sleep(0.2)"),
      python("import sys\\nsys.excepthook = lambda *a: None\\nprint('own hook')"),
      python("import sys\\nsys.excepthook = lambda *a: None\\nsys.exit(6)"))
"""


@pytest.mark.parametrize("recorder", ["c", "python"])
def test_only_the_main_programs_exit_counts(tmp_path: pathlib.Path, recorder: str) -> None:
    """A SystemExit caught by the program, or ending another thread, is not the process's
    status; after the program replaced sys.excepthook a plain end is not known to be 0 (an
    uncaught exception would have gone there), a sys.exit still is."""
    (tmp_path / "caught.py").write_text(CAUGHT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_FOLLOW")}
    traced = subprocess.run([PY, "-m", "flowtrace", "run", "-o", "trace.ftr", "caught.py"], cwd=tmp_path,
                            env={**env, "FLOWTRACE_RECORDER": recorder}, capture_output=True, text=True,
                            timeout=HANG_GUARD_S)
    assert traced.stdout == "own hook\n0 0 0 6\n", traced.stderr
    assert headings(tmp_path / "trace.ftr") == [
        "== python caught.py (root, exit 0)",
        "  == python -c … (exec, exit 0)",
        "  == python -c … (exec, exit 0)",
        "  == python -c … (exec, exited)",
        "  == python -c … (exec, exit 6)",
    ]
