"""Child processes behind the live view: the program of `flowtrace-tui run`, and the
`flowtrace attach` of `flowtrace-tui attach`. No Textual imports.

Both run `python -m flowtrace …` with this interpreter, so the recorder matches the explorer's
flowtrace. The child's stdin is /dev/null and its stdout/stderr go to a log file (the explorer
shows that file in a pane): nothing may write over the UI. It runs in a new session, without a
controlling terminal, so it cannot open /dev/tty either, and the terminal's keys (Ctrl-C) reach
the explorer only. Stopping it is SIGINT, as Ctrl-C would be, so the recorder finishes the file.
The program gets it as a terminal gives it, in its whole process group: a program that waits on
children of its own (Django's autoreloader, a process pool) would otherwise kill them when
interrupted, before their recorders finished their files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Callable

SESSION_WAIT_S = 15.0  # how long the child may take to write the session's first chunk
ATTACH_WAIT_S = 30.0  # attaching through gdb can take a few tries of ~1 s each
STOP_STEPS = ((signal.SIGINT, 5.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0))


class LaunchError(Exception):
    """The child could not start, or ended before its session file appeared (one line).
    `status`: the child's exit status when it ended; `said`: its last line of output then."""

    def __init__(self, message: str, *, status: int | None = None, said: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.said = said


def describe_status(code: int | None) -> str:
    """A child's exit status as words: "exit 0", "killed by SIGTERM", "running"."""
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def log_path_for(output: str) -> str:
    """`trace.ftr` -> `trace.log`: where the child's output goes unless told otherwise."""
    root, ext = os.path.splitext(output)
    return (root if ext == ".ftr" else output) + ".log"


class Child:
    """One background `python -m flowtrace …` process whose output goes to `log_path`."""

    def __init__(self, cmd: list[str], output: str, log_path: str, what: str, *, group: bool = False) -> None:
        self.cmd = cmd
        self.output = output
        self.log_path = log_path
        self.what = what  # "program" or "attach", for messages
        self.group = group  # signals go to its process group (its own: a new session), as a terminal's
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Child":
        # Both `flowtrace run` and `flowtrace attach` overwrite the output: remove an old one
        # first, so that waiting for the new session cannot mistake the old file for it.
        try:
            os.unlink(self.output)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LaunchError(f"cannot replace {self.output}: {exc.strerror or exc}") from None
        try:
            log = open(self.log_path, "wb")
        except OSError as exc:
            raise LaunchError(f"cannot write the output log {self.log_path}: {exc.strerror or exc}") from None
        with log:
            try:
                self.proc = subprocess.Popen(
                    self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True,
                )
            except OSError as exc:
                raise LaunchError(f"cannot start {self.cmd[0]}: {exc.strerror or exc}") from None
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def poll(self) -> int | None:
        """The exit status once it ended (negative: killed by that signal), else None."""
        return self.proc.poll() if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for_session(self, timeout: float = SESSION_WAIT_S, sleep: Callable[[float], None] = time.sleep) -> None:
        """Return once the session file holds its header and first chunk; LaunchError (with the
        child's last output) when the child ends first or nothing appears in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if os.path.getsize(self.output) > 16:  # the header and (part of) META
                    return
            except OSError:
                pass
            code = self.poll()
            if code is not None:
                tail = self.log_tail()
                why = f": {tail}" if tail else ""
                raise LaunchError(f"{self.what} ended ({describe_status(code)}) before recording started{why}",
                                  status=code, said=tail)
            if time.monotonic() >= deadline:
                self.stop()
                raise LaunchError(f"no session appeared in {self.output} after {timeout:g} s; stopped the {self.what}")
            sleep(0.02)

    def log_tail(self, lines: int = 1) -> str:
        """The last non-empty line(s) of the child's output (for one-line error messages)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4096))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return " / ".join(kept[-lines:])

    def interrupt(self) -> None:
        """Ask the child to end as Ctrl-C would (the recorder finishes the file)."""
        if self.running:
            try:
                self._signal(signal.SIGINT)
            except ProcessLookupError:
                pass

    def _signal(self, sig: int) -> None:
        # (the child leads its group: start_new_session; killpg reaches the children it made
        # there too, and not the explorer's own group)
        if self.group:
            os.killpg(self.pid, sig)
        else:
            os.kill(self.pid, sig)

    def stop(self, steps: tuple[tuple[int, float], ...] = STOP_STEPS) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL, each after the previous one had its time; returns
        the exit status."""
        proc = self.proc
        if proc is None:
            return None
        for sig, wait in steps:
            if proc.poll() is not None:
                break
            try:
                self._signal(sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        try:
            return proc.wait(1.0)
        except subprocess.TimeoutExpired:
            return None


def run_program(run_args: list[str], output: str, log_path: str, python: str = sys.executable) -> Child:
    """Start `python -m flowtrace run -o OUTPUT RUN_ARGS…` (options, then script or -m module)."""
    cmd = [python, "-m", "flowtrace", "run", "-o", output, *run_args]
    return Child(cmd, output, log_path, "program", group=True).start()


def attach_process(pid: int, output: str, attach_args: list[str], log_path: str, python: str = sys.executable) -> Child:
    """Start `python -m flowtrace attach PID -o OUTPUT …` (it records until interrupted)."""
    cmd = [python, "-m", "flowtrace", "attach", str(pid), "-o", output, *attach_args]
    return Child(cmd, output, log_path, "attach").start()
