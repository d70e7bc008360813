"""The program's file descriptors are numbered as without flowtrace (flowtrace/fds.py).

The session's file (and a followed child's signal pipe) took the lowest free numbers, 3, 4 and
5: CPython's test_subprocess found them open in the children it checks for descriptors that
should be closed (five failures traced, none plain). They now sit at 512 and up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flowtrace import fds
from plain_vs_traced import assert_same, run_both, script

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd") or fds.fcntl is None,
                                reason="Linux's /proc/self/fd")

FIRST_FILES = """
    import os, subprocess, sys

    def low():
        return sorted(int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) < 512)

    print("own first file", os.open(os.devnull, os.O_RDONLY))
    child = "import os; print('child', sorted(int(fd) for fd in os.listdir('/proc/self/fd') if int(fd) < 512))"
    subprocess.run([sys.executable, "-c", child], check=True)
    r, w = os.pipe()
    subprocess.run([sys.executable, "-c", child], check=True)  # (the pipe's ends are not passed)
    subprocess.run([sys.executable, "-c", child], check=True, pass_fds=(w,))
"""


def test_the_program_and_its_children_get_the_numbers_they_would(tmp_path):
    prog = script(tmp_path, "fds_prog.py", FIRST_FILES)
    plain, traced, out = run_both([str(prog)], tmp_path)
    assert plain.stdout.startswith("own first file ")
    assert_same(plain, traced)
    children = [name for name in os.listdir(f"{out}.d") if name.endswith(".ftr")]
    assert len(children) == 3  # (followed: each had a session of its own meanwhile)


def test_a_descriptor_moves_high_and_keeps_close_on_exec(tmp_path):
    fd = os.open(os.devnull, os.O_RDONLY)
    moved = fds.out_of_the_way(fd)
    try:
        assert moved >= 512 and not os.get_inheritable(moved)
        with pytest.raises(OSError):
            os.fstat(fd)  # (the old number is closed)
        assert fds.out_of_the_way(moved) == moved  # (high already: left alone)
    finally:
        os.close(moved)


def test_a_low_limit_on_open_files_leaves_room_above(tmp_path):
    """With 64 files allowed, ours go at 32 and up, not past the limit."""
    code = ("import os, resource; from flowtrace import fds; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
            "print(fds.out_of_the_way(os.open(os.devnull, os.O_RDONLY)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(fds.__file__)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "32\n"
