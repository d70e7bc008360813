"""A Ctrl-C that reaches `flowtrace run` while it sets the recording up, after the session's file
has started and before the program's first line: `flowtrace-tui run` stops its program with SIGINT
(its quit dialog's "stop") as soon as that file is there. It is the program's interrupt: the file
ends "signal" and the process dies by SIGINT, as Python does when interrupted at start-up.

It was a KeyboardInterrupt in flowtrace's own set-up: exit status 130, and a file whose end said
the program exited (reason "exit"), or a file without an end, or none (a stop sent 0-20 ms after
the file appeared hit the window in 25 of 40 tries).

The SIGINT is sent from inside the window, by an audit hook the process is started with
(`sitecustomize`): at the opening of the session's file (before its header), and at the first
variable the descendants' following puts in the environment (after the exit hooks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowtrace.ftr.reader import load

HOOK = textwrap.dedent('''\
    import os, signal, sys

    WHEN, OUT = os.environ["FT_TEST_WHEN"], os.environ["FT_TEST_OUT"]
    fired = []

    def hook(event, args):
        if fired:
            return
        if (WHEN == "open" and event == "open" and args and args[0] == OUT) or \\
                (WHEN == "putenv" and event == "os.putenv" and args[0] == b"FLOWTRACE_FOLLOW_DIR"):
            fired.append(event)
            os.kill(os.getpid(), signal.SIGINT)

    sys.addaudithook(hook)
''')


@pytest.mark.parametrize("when", ["open", "putenv"])
def test_ctrl_c_while_the_recording_is_set_up_is_the_programs(tmp_path: Path, when: str) -> None:
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOOK)
    (tmp_path / "prog.py").write_text("def main():\n    print('ran')\nmain()\n")
    out = str(tmp_path / "s.ftr")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hook"), "FT_TEST_WHEN": when, "FT_TEST_OUT": out}
    r = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", out, "prog.py"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout) == (-signal.SIGINT, ""), r.stderr
    assert r.stderr.startswith("KeyboardInterrupt\n"), r.stderr  # before the program's first line
    session = load(out)
    assert session.end is not None and (session.end["reason"], session.end.get("signal")) == ("signal", "SIGINT")
    assert session.calls == []
