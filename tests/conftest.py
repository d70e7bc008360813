"""Shared fixtures.

`recorder_name` runs a recorder-dependent test once per recorder named in
FLOWTRACE_TEST_RECORDERS (comma-separated, default "python,c": the reference recorder and the
C recorder, checked against the same exact trees), keeping only those that can run here (the
C recorder when its extension is built).

`collector_quiet` keeps the collector from running but when a test asks (gc.collect()), and
gives its thresholds back after.

`gdb_available` skips a test (with the reason) where gdb injection cannot work: gdb missing,
ptrace not permitted, not Linux. Checked once per session by attaching gdb to a sleeping
process.

The explorer's loading pipeline runs strict under tests (FLOWTRACE_TUI_STRICT): a failed
live index update ends loading with its message instead of being counted and rebuilt around."""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys

import pytest

os.environ.setdefault("FLOWTRACE_TUI_STRICT", "1")

# A suite started in the background by a non-interactive shell (`make test &`, nohup) inherits
# SIGINT ignored, and so does every program the tests start, which then ignores the Ctrl-C a
# test sends it (7 tests failed so: exit 0 or a timeout instead of KeyboardInterrupt). Python's
# own handler here: the programs started get SIGINT's default, as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def collector_quiet():
    """The collector runs when the test says (and at its thresholds again after)."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    yield
    if was:
        gc.enable()


def _recorders() -> list[str]:
    from flowtrace.recorder import available_recorders

    wanted = os.environ.get("FLOWTRACE_TEST_RECORDERS", "python,c").split(",")
    return [n for n in available_recorders() if n in wanted]


@pytest.fixture(params=_recorders())
def recorder_name(request: pytest.FixtureRequest) -> str:
    return request.param


def _gdb_problem() -> str | None:
    if sys.platform != "linux":
        return "gdb injection is Linux-only"
    if shutil.which("gdb") is None:
        return "gdb is not installed"
    probe = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        r = subprocess.run(["gdb", "-p", str(probe.pid), "-batch", "-nx", "-iex", "set debuginfod enabled off",
                            "-ex", "detach"], capture_output=True, text=True, timeout=120)  # (30 s: too few at load 45)
    finally:
        probe.kill()
        probe.wait()
    if "ptrace" in r.stderr and ("not permitted" in r.stderr or "denied" in r.stderr):
        return "ptrace is not permitted here"
    return None


@pytest.fixture(scope="session")
def gdb_available() -> None:
    problem = _gdb_problem()
    if problem is not None:
        pytest.skip(problem)
