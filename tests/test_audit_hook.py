"""The process's audit hook in C (audit.c): Python is called at launch events only
(audit_launches: follow.py's _audit), or at every event while asked (audit_every: session.py's
fork resume on 3.13) -- not at every id() call, import or open of the program.

Each case runs in a fresh interpreter: an audit hook cannot be removed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("flowtrace._crecorder") is None,
                                reason="the C recorder is not built")


def _run(body: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_only_launch_events_reach_the_launch_hook() -> None:
    out = _run("""
        import os, subprocess, sys, tempfile
        from flowtrace import _crecorder
        seen = []
        _crecorder.audit_launches(lambda event, args: seen.append((event, type(args).__name__)))
        for i in range(100):
            id(i)
        with open(tempfile.mktemp(), "w"):
            pass
        import json, decimal
        os.system("true")
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        _crecorder.audit_launches(None)
        os.system("true")
        print(seen)
    """)
    # (subprocess may start the child with posix_spawn: 3.13 here)
    assert out in ("[('os.system', 'tuple'), ('subprocess.Popen', 'tuple')]",
                   "[('os.system', 'tuple'), ('subprocess.Popen', 'tuple'), ('os.posix_spawn', 'tuple')]")


def test_every_event_while_asked_then_none() -> None:
    out = _run("""
        from flowtrace import _crecorder
        seen = []
        _crecorder.audit_every(lambda event, args: seen.append(event))
        for i in range(5):
            id(i)
        _crecorder.audit_every(None)
        for i in range(5):
            id(i)
        print(seen.count("builtins.id"))
    """)
    assert out == "5"


def test_an_exception_in_the_hook_aborts_the_event_as_a_python_hook_does() -> None:
    out = _run("""
        import os
        from flowtrace import _crecorder
        def refuse(event, args):
            raise PermissionError(event)
        _crecorder.audit_launches(refuse)
        try:
            os.system("echo ran")
        except PermissionError as e:
            print("refused", e)
    """)
    assert out == "refused os.system"


def test_following_uses_the_c_hook() -> None:
    out = _run("""
        from flowtrace import follow, session
        print(follow._c_audit_launches is not None, session._c_audit_every is not None)
    """)
    assert out == "True True"
