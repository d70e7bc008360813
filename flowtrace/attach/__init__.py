"""Attach to a running Python process: make sure it serves a control channel, then use it.

Mechanisms, best first (see docs/ATTACH.md):

1. ``control``: the process already serves the channel (``flowtrace run --paused`` or
   ``flowtrace.install()``);
2. ``remote-exec``: Python 3.14+, ``sys.remote_exec`` (PEP 768) runs the payload;
3. ``gdb``: Python 3.12/3.13, gdb schedules the payload as a pending call (with a fallback
   for a main thread parked in a wait).

The injected payload only starts the channel; recording is always started and stopped over it.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .. import control
from . import payload
from .procinfo import AttachError, Target, inspect_target

__all__ = ["AttachError", "Attached", "METHODS", "ensure_channel", "start", "stop", "status"]

METHODS = ("auto", "control", "remote-exec", "gdb")


@dataclass
class Attached:
    """A recording started in another process."""

    pid: int
    path: str
    method: str  # "control", "remote-exec", "pending-call" or "gil-fallback"
    channel_seconds: float  # time until the channel answered (0 for an existing channel)
    start_seconds: float  # time from the start request to its reply
    reply: dict[str, Any] = field(default_factory=dict)


def _waiter(pid: int, errfile: str) -> Callable[[float], bool]:
    """`ready(timeout)`: wait for pid's channel to answer; raise if the payload reported failure."""

    def ready(timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if os.path.exists(errfile):
                try:
                    with open(errfile, encoding="utf-8", errors="replace") as f:
                        msg = f.read().strip().splitlines()[0:1]
                    os.unlink(errfile)
                except OSError:
                    msg = []
                raise AttachError(f"the code injected into pid {pid} failed: {msg[0] if msg else 'unknown error'}")
            if not os.path.exists(f"/proc/{pid}"):
                raise AttachError(f"pid {pid} exited while flowtrace was attaching")
            try:
                if control.channel_status(pid, timeout=2.0) is not None:
                    return True
            except control.ControlError:
                pass  # the channel is starting up; ask again
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    return ready


def ensure_channel(pid: int, *, method: str = "auto", log: Callable[[str], None] = lambda m: None) -> tuple[str, float]:
    """Make `pid` serve a control channel; returns (how, seconds it took)."""
    if method not in METHODS:
        raise AttachError(f"unknown attach method {method!r} ({', '.join(METHODS)})")
    target: Target = inspect_target(pid)
    try:
        if control.channel_status(pid) is not None:
            return "control", 0.0
    except control.ControlError as exc:
        raise AttachError(str(exc)) from None
    if method == "control":
        raise AttachError(
            f"pid {pid} has no flowtrace control channel (start it with `flowtrace run --paused` "
            "or call flowtrace.install() in it)"
        )
    stem = f"/tmp/flowtrace-attach-{pid}-{secrets.token_hex(6)}"
    errfile, runfile = stem + ".err", stem + ".run"
    ready = _waiter(pid, errfile)
    t0 = time.monotonic()
    try:
        if target.version >= (3, 14) and method in ("auto", "remote-exec"):
            from . import remote_exec

            how = remote_exec.inject(target, payload.body(errfile, runfile), ready, log=log)
        elif method == "remote-exec":
            raise AttachError(f"sys.remote_exec needs Python 3.14+; pid {pid} runs {target.version[0]}.{target.version[1]}")
        else:
            from . import inject_gdb

            how = inject_gdb.inject(target, payload.direct(errfile, runfile), payload.in_new_thread(errfile, runfile),
                                    ready, started=lambda: os.path.exists(runfile), log=log)
    finally:
        for path in (errfile, runfile):
            try:
                os.unlink(path)
            except OSError:
                pass
    return how, time.monotonic() - t0


def start(
    pid: int,
    path: str,
    *,
    args: str = "safe",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    method: str = "auto",
    flush_interval: float = 0.1,
    children: bool = False,
    log: Callable[[str], None] = lambda m: None,
) -> Attached:
    """Start recording inside process `pid` into `path` (made absolute here: the target's
    working directory is not ours); with `children`, also the child processes it starts from
    now on, into `path`'s parts directory."""
    how, channel_s = ensure_channel(pid, method=method, log=log)
    path = os.path.abspath(path)
    req = {"cmd": "start", "path": path, "args": args, "include": list(include), "exclude": list(exclude),
           "flush_interval": flush_interval, "method": how, "command": "attach"}
    if children:  # (only then: a channel of an older flowtrace refuses no unknown key, but ignores it)
        req["children"] = True
    t0 = time.monotonic()
    try:
        reply = control.request(pid, req)
    except control.ControlError as exc:
        raise AttachError(str(exc)) from None
    if not reply.get("ok"):
        raise AttachError(f"pid {pid}: {reply.get('error', 'start refused')}")
    if children and reply.get("children") is not True:
        _stop_quietly(pid)
        raise AttachError(f"pid {pid} serves the control channel of an older flowtrace, which cannot follow "
                          "child processes (attach without --children)")
    return Attached(pid, path, how, channel_s, time.monotonic() - t0, reply)


def _stop_quietly(pid: int) -> None:
    try:
        control.request(pid, {"cmd": "stop"}, timeout=30.0)
    except control.ControlError:
        pass


def stop(pid: int) -> dict[str, Any]:
    """Stop the recording in process `pid` (the file is finished, ENDS reason "detached")."""
    try:
        reply = control.request(pid, {"cmd": "stop"}, timeout=30.0)
    except control.ControlError as exc:
        if exc.missing and not os.path.exists(f"/proc/{pid}"):
            raise AttachError(f"no process with pid {pid}") from None
        raise AttachError(str(exc)) from None
    if not reply.get("ok"):
        raise AttachError(f"pid {pid} is {reply.get('error', 'not recording')}"
                          if reply.get("error") == "not recording" else f"pid {pid}: {reply.get('error')}")
    return reply


def status(pid: int) -> dict[str, Any] | None:
    """The channel status of `pid`, or None when it serves none."""
    try:
        return control.channel_status(pid)
    except control.ControlError as exc:
        raise AttachError(str(exc)) from None
