"""`flowtrace detach PID`: stop a recording started by `flowtrace attach` (or over the control
channel); the file is finished (ENDS reason "detached") and the process carries on."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import CommandError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "detach",
        help="stop recording a process that flowtrace attached to",
        description="Stop the recording running inside process PID and finish its session file. "
                    "The process keeps running (and keeps its idle control channel).",
    )
    p.add_argument("pid", metavar="PID", type=int, help="the recorded process")
    p.add_argument("-q", "--quiet", action="store_true", help="only print errors")


def run(args: argparse.Namespace) -> int:
    from ..attach import AttachError, stop

    try:
        reply = stop(args.pid)
    except AttachError as exc:
        raise CommandError(str(exc)) from None
    if not args.quiet:
        calls = reply.get("calls")
        n = f"{calls} calls, " if isinstance(calls, int) else ""
        from ..ftr.parts import children_note

        path = str(reply.get("path"))
        note = children_note(path) if reply.get("children") else ""
        sys.stderr.write(f"flowtrace: detached from pid {args.pid}: wrote {path} "
                         f"({n}{reply.get('seconds', 0):.1f} s){note}\n")
    return 0
