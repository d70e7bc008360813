"""`flowtrace attach PID [-o FILE] [--duration S] [--children] [--include P] [--exclude P] [--no-args]`.

Starts recording inside a running Python >= 3.12 process (see docs/ATTACH.md for how), waits
until `--duration` passes, `flowtrace detach PID` stops it, the process exits, or Ctrl-C; then
makes sure the file is finished and says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from . import CommandError, add_filter_options, filter_argv


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "attach",
        help="record a running Python process until detached",
        description="Start recording inside a running Python 3.12+ process. It uses the process's "
                    "control channel when it has one (started with 'flowtrace run --paused' or "
                    "flowtrace.install()), else injects one: sys.remote_exec on Python 3.14+, gdb "
                    "on 3.12/3.13. Recording stops after --duration, on 'flowtrace detach PID', "
                    "on Ctrl-C, or when the process exits; the program carries on unaffected.",
    )
    add_attach_options(p)
    p.add_argument("--no-wait", action="store_true",
                   help="start recording and return at once; stop later with 'flowtrace detach PID'")
    p.add_argument("-q", "--quiet", action="store_true", help="only print errors")


def add_attach_options(p: Any) -> None:
    """The process and what to record of it (also flowtrace-tui attach's)."""
    p.add_argument("pid", metavar="PID", type=int, help="the process to record")
    p.add_argument("-o", "--output", metavar="FILE", help="session file to write (default: trace-PID.ftr)")
    p.add_argument("--duration", metavar="SECONDS", type=float,
                   help="stop after this many seconds (default: until detached or Ctrl-C)")
    p.add_argument("--children", action="store_true",
                   help="also record the child processes it starts from now on (into FILE.d/, as "
                        "'flowtrace run' does); they stop recording when it is detached")
    add_filter_options(p)
    p.add_argument("--no-args", action="store_true", help="do not capture arguments and results")
    p.add_argument("--repr", choices=("safe", "full"), default="safe",
                   help="how to show arguments: safe (default: builtin values only) or full (call __repr__)")
    p.add_argument("--method", choices=("auto", "control", "remote-exec", "gdb"), default="auto",
                   help="how to reach the process (default: the best available)")


def attach_argv(args: argparse.Namespace) -> list[str]:
    """`flowtrace attach` options (without PID and -o) that give what `args` holds."""
    argv = ["--duration", repr(args.duration)] if args.duration is not None else []
    argv += ["--children"] if args.children else []
    argv += filter_argv(args) + (["--no-args"] if args.no_args else [])
    return argv + ["--repr", args.repr, "--method", args.method]


def _say(args: argparse.Namespace, msg: str) -> None:
    if not args.quiet:
        sys.stderr.write(f"flowtrace: {msg}\n")
        sys.stderr.flush()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from ..attach import AttachError, start

    if args.duration is not None and not args.duration > 0:
        raise CommandError("--duration must be a positive number of seconds", 2)
    path = os.path.abspath(args.output or f"trace-{args.pid}.ftr")
    # SIGTERM is treated like Ctrl-C so that a supervisor can end us cleanly too.
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            attached = start(
                args.pid, path,
                args="off" if args.no_args else args.repr,
                include=args.include, exclude=args.exclude, method=args.method, children=args.children,
                log=lambda m: _say(args, m) if os.environ.get("FLOWTRACE_DEBUG") else None,
            )
        except AttachError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            # Ctrl-C while attaching: the recording may just have started; don't leave it running.
            # If it had (and is now finished) this is the normal Ctrl-C ending; else an abort.
            return _finish(args, path, interrupted=True, quiet_if_idle=True)
        try:
            return _follow(args, path, attached)
        except KeyboardInterrupt:
            return _finish(args, path, interrupted=True)
    finally:
        signal.signal(signal.SIGTERM, old_term)


def _follow(args: argparse.Namespace, path: str, attached: Any) -> int:
    """Wait until the duration passes (then stop), or the recording ends otherwise."""
    from ..attach import AttachError, status

    how = {"control": "control channel", "pending-call": "gdb, pending call",
           "gil-fallback": "gdb, GIL fallback", "remote-exec": "sys.remote_exec"}.get(attached.method, attached.method)
    took = f" in {attached.channel_seconds:.2f} s" if attached.channel_seconds else ""
    if args.no_wait:
        _say(args, f"recording pid {args.pid} into {path} (via {how}{took}); stop it with 'flowtrace detach {args.pid}'")
        return 0
    until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C or 'flowtrace detach %d'" % args.pid
    _say(args, f"recording pid {args.pid} into {path} (via {how}{took}) {until}")
    # Watch the target meanwhile: it may be detached by someone else, or exit (its exit hook
    # then finishes the file).
    deadline = time.monotonic() + args.duration if args.duration else None
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return _finish(args, path, interrupted=False)
        time.sleep(min(0.2, deadline - now) if deadline is not None else 0.2)
        if not os.path.exists(f"/proc/{args.pid}"):
            _say(args, f"pid {args.pid} exited; {path} was finished by the process")
            return 0
        try:
            st = status(args.pid)
        except AttachError:
            continue  # a busy channel; ask again next time
        if st is None or st.get("state") != "recording" or st.get("path") != path:
            _say(args, f"recording of pid {args.pid} was stopped elsewhere; {path} is finished")
            return 0


def _finish(args: argparse.Namespace, path: str, *, interrupted: bool, quiet_if_idle: bool = False) -> int:
    """Stop the recording (a second Ctrl-C cannot cut this short) and say what was written."""
    from ..attach import AttachError, stop

    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        reply = stop(args.pid)
    except AttachError as exc:
        if not os.path.exists(f"/proc/{args.pid}"):
            _say(args, f"pid {args.pid} exited; {path} was finished by the process")
            return 0
        if quiet_if_idle:
            return 130
        raise CommandError(f"could not stop recording: {exc}") from None
    finally:
        signal.signal(signal.SIGINT, old_int)
    calls = reply.get("calls")
    n = f"{calls} calls, " if isinstance(calls, int) else ""
    written = str(reply.get("path", path))
    _say(args, f"{'interrupted; ' if interrupted else ''}detached from pid {args.pid}: wrote {written} "
               f"({n}{reply.get('seconds', 0):.1f} s){_children(reply, written)}")
    return 0


def _children(reply: dict[str, Any], path: str) -> str:
    """The closing line's note on the children's parts (their parts end at their next flush)."""
    from ..ftr.parts import children_note

    return children_note(path) if reply.get("children") else ""
