"""`flowtrace export FILE --format NAME [-o OUT|-]`: a session in another tool's format."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..export import EXPORTS
from . import CommandError
from ..ftr.processes import SessionParts, surveyed_parts
from ..ftr.scan import Outlook, SessionInfo, glance, surveyed


def add_parser(subparsers: Any) -> None:
    formats = "; ".join(f"'{name}': {e.about}" for name, e in EXPORTS.items())
    p = subparsers.add_parser(
        "export",
        help="convert a session for other tools (JSON, Perfetto, Chrome, speedscope, pstats, flame graphs)",
        description=f"Convert a session file ({formats}). What maps to what, and what each format "
                    "loses: docs/EXPORT.md. Streamed: memory stays bounded whatever the session's size.",
    )
    p.add_argument("file", metavar="FILE", help="a .ftr session file")
    p.add_argument("--format", "-f", choices=list(EXPORTS), required=True, help="output format")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file ('-' for stdout); default: FILE with the format's extension "
                        "(" + ", ".join(f"{e.suffix} for {name}" for name, e in EXPORTS.items()) + ")")


def default_output(source: str, fmt: str) -> str:
    base = source[:-4] if source.endswith(".ftr") else source
    return base + EXPORTS[fmt].suffix


def run(args: argparse.Namespace) -> int:
    export = EXPORTS[args.format]
    first = glance(args.file)  # (each part is checked in the pass that writes it)
    session = surveyed_parts(args.file, first, read=glance)
    out_path = args.output or default_output(args.file, args.format)
    if out_path == "-":
        out: Any = sys.stdout.buffer if export.binary else sys.stdout
        _write(export, first, session, out)
        out.flush()
    else:
        if os.path.abspath(out_path) == os.path.abspath(args.file):
            raise CommandError(f"refusing to overwrite the session file {args.file} with its export")
        tmp = out_path + ".part"
        try:
            with (open(tmp, "wb") if export.binary else open(tmp, "w", encoding="utf-8")) as f:
                _write(export, first, session, f)
            os.replace(tmp, out_path)  # never leave a half-written export under the real name
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        every = session.several and export.several
        calls = sum(surveyed(info).n_calls for _p, info in session.parts) if every else surveyed(first).n_calls
        where = f", {len(session.parts)} processes" if every else ""
        sys.stderr.write(f"flowtrace: wrote {out_path} ({args.format}, {calls} calls{where})\n")
    if session.several and not export.several:
        sys.stderr.write(f"flowtrace: note: {args.file}: {args.format} holds the root process only; "
                         f"{len(session.parts) - 1} more in {os.path.basename(args.file)}.d/\n")
    for proc, part in session.parts if session.several and export.several else [(None, first)]:
        info = surveyed(part)
        if not info.finished:
            sys.stderr.write(f"flowtrace: note: {info.source}: {info.describe()}\n")
    for note in session.notes:
        sys.stderr.write(f"flowtrace: note: {args.file}: {note}\n")
    return 0


def _write(export: Any, trace: SessionInfo | Outlook, session: SessionParts, out: Any) -> None:
    """The export of the whole session: every process when there are several."""
    if session.several and export.several:
        export.write(trace, out, parts=session.parts, not_followed=session.not_followed)
    else:
        export.write(trace, out)
