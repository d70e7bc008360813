"""`flowtrace export FILE --format json|chrome [-o OUT|-]`: a session in another format."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..export import FORMATS
from . import CommandError
from ..ftr.ordered import ordered_calls
from ..ftr.scan import survey


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="convert a session to JSON or Chrome trace-event JSON",
        description="Convert a session file. 'json' is flowtrace's own document (docs/EXPORT.md); "
                    "'chrome' is the trace-event format that Perfetto (ui.perfetto.dev) and "
                    "chrome://tracing open.",
    )
    p.add_argument("file", metavar="FILE", help="a .ftr session file")
    p.add_argument("--format", "-f", choices=sorted(FORMATS), required=True, help="output format")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file ('-' for stdout); default: FILE with the extension .json "
                        "(json) or .trace.json (chrome)")


def default_output(source: str, fmt: str) -> str:
    base = source[:-4] if source.endswith(".ftr") else source
    return base + (".json" if fmt == "json" else ".trace.json")


def run(args: argparse.Namespace) -> int:
    trace = survey(args.file)
    exporter = FORMATS[args.format]
    out_path = args.output or default_output(args.file, args.format)
    if out_path == "-":
        exporter(trace, sys.stdout, ordered_calls(trace))
        sys.stdout.flush()
    else:
        if os.path.abspath(out_path) == os.path.abspath(args.file):
            raise CommandError(f"refusing to overwrite the session file {args.file} with its export")
        tmp = out_path + ".part"
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                exporter(trace, out, ordered_calls(trace))
            os.replace(tmp, out_path)  # never leave a half-written export under the real name
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        sys.stderr.write(f"flowtrace: wrote {out_path} ({args.format}, {trace.n_calls} calls)\n")
    if not trace.finished:
        sys.stderr.write(f"flowtrace: note: {trace.source}: {trace.describe()}\n")
    return 0
