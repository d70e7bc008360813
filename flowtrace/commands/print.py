"""`flowtrace print FILE`: the recorded call tree as text, in the seed's style."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import CommandError
from ..ftr.processes import Process, surveyed_parts
from ..ftr.reader import Trace
from ..ftr.scan import Outlook, SessionInfo, glance, survey


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "print",
        help="print a session's call tree",
        description="Print the call tree of a session file. Coloured on a terminal; plain when "
                    "piped or when NO_COLOR is set.",
    )
    p.add_argument("file", metavar="FILE", help="a .ftr session file")
    p.add_argument("--max-depth", type=non_negative, metavar="N",
                   help="show calls down to depth N only (0 = top-level calls)")
    p.add_argument("--thread", metavar="T",
                   help="only the calls of thread T (its name, or its number in the session)")


def non_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def resolve_thread(trace: Trace, text: str) -> int:
    """A session thread id from a name or a number; CommandError naming the choices if unknown."""
    names = {t.name: t.id for t in trace.threads.values()}
    if text in names:
        return names[text]
    if text.isdigit() and int(text) in trace.threads:
        return int(text)
    choices = ", ".join(f"{t.id} ({t.name})" for t in sorted(trace.threads.values(), key=lambda t: t.id))
    raise CommandError(f"no thread {text!r} in {trace.source}; threads: {choices or 'none'}")


def use_color(stream: Any) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    return is_terminal(stream)


def is_terminal(stream: Any) -> bool:
    """Is `stream` a terminal (a closed or odd stream: no)?"""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def run(args: argparse.Namespace) -> int:
    if args.thread is not None:  # a thread of the root process, named by what the whole file says
        info = survey(args.file)
        _print_one(info, args, resolve_thread(info, args.thread))
        return 0
    look = glance(args.file)  # (checked while printing: the first lines come before the file is read)
    session = surveyed_parts(args.file, look, read=glance)
    if not session.several:
        _print_one(look, args, None)
        return 0
    for proc, part in session.parts:  # each process under a heading, in tree order (docs/FORMAT.md)
        sys.stdout.write(heading(proc) + "\n")
        _print_one(part, args, None)
    for note in session.notes:
        sys.stderr.write(f"flowtrace: note: {args.file}: {note}\n")
    return 0


def heading(proc: Process) -> str:
    """`== pid 12: python prog.py (root, exit 0)`, indented by the process's depth."""
    return f"{'  ' * proc.depth}== {proc.title()} ({proc.how}, {proc.status()})"


def _print_one(session: SessionInfo | Outlook, args: argparse.Namespace, thread: int | None) -> None:
    from ..stream_print import print_session

    cwd = session.meta.get("cwd")  # module code is shown relative to the program's directory
    info = print_session(session, sys.stdout, color=use_color(sys.stdout), max_depth=args.max_depth,
                         thread=thread, cwd=cwd if isinstance(cwd, str) else None)
    sys.stdout.flush()
    for note in notes(info, thread):
        sys.stderr.write(f"flowtrace: note: {info.source}: {note}\n")


def notes(info: SessionInfo, thread: int | None) -> list[str]:
    """What a reader of the printed tree should know: nothing recorded, arguments not recorded,
    a session unfinished or damaged."""
    out = []
    if not info.n_calls:
        options = info.meta.get("options") if isinstance(info.meta.get("options"), dict) else {}
        filters = [f"--{k} {' '.join(map(str, v))}" for k in ("include", "exclude") if (v := options.get(k))]
        why = f" (recorded with {', '.join(filters)}: did they leave out every call?)" if filters else ""
        out.append(f"no calls recorded{why}")
    elif thread is not None and thread not in info.root_threads:
        out.append(f"no calls on thread {thread}")
    options = info.meta.get("options")
    if info.n_calls and isinstance(options, dict) and options.get("args") == "off":
        out.append("arguments and results were not recorded (--no-args): shown as (…)")
    if not info.finished:
        out.append(info.describe())
    return out
