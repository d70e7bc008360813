"""Byte-compile the code a benchmark's child processes import, before they run.

An installed flowtrace (pip, uv) has its .pyc files, and so has VizTracer in its venv. The
flowtrace checkout a benchmark runs from may not, and with PYTHONDONTWRITEBYTECODE set in the
environment every child process would compile flowtrace's sources again (~100 ms of CPU time
per `flowtrace run`), a cost a user pays once: measured whole-process times would show it."""

from __future__ import annotations

import os
import subprocess
import sys


def precompile(*directories: str) -> None:
    """Write the .pyc files of the Python sources under each directory (those that exist)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for directory in directories:
        if os.path.isdir(directory):
            subprocess.run([sys.executable, "-m", "compileall", "-q", directory], env=env,
                           stdout=subprocess.DEVNULL, check=False)
