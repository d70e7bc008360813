"""`flowtrace export FILE --format NAME [-o OUT|-]`: a session in another tool's format."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..export import EXPORTS
from . import CommandError
from ..ftr.scan import survey


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
    trace = survey(args.file)
    export = EXPORTS[args.format]
    out_path = args.output or default_output(args.file, args.format)
    if out_path == "-":
        out: Any = sys.stdout.buffer if export.binary else sys.stdout
        export.write(trace, out)
        out.flush()
    else:
        if os.path.abspath(out_path) == os.path.abspath(args.file):
            raise CommandError(f"refusing to overwrite the session file {args.file} with its export")
        tmp = out_path + ".part"
        try:
            with (open(tmp, "wb") if export.binary else open(tmp, "w", encoding="utf-8")) as f:
                export.write(trace, f)
            os.replace(tmp, out_path)  # never leave a half-written export under the real name
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        sys.stderr.write(f"flowtrace: wrote {out_path} ({args.format}, {trace.n_calls} calls)\n")
    if not trace.finished:
        sys.stderr.write(f"flowtrace: note: {trace.source}: {trace.describe()}\n")
    return 0
