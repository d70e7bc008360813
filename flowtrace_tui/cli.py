"""`flowtrace-tui FILE`: open a session in the explorer.

Problems that make the file unreadable (missing, not a session, a newer format version) are
reported here, in one line on stderr with exit status 2, before any UI starts.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="flowtrace-tui", description="Explore a flowtrace session (.ftr).")
    ap.add_argument("file", help="a session file written by `flowtrace run -o FILE`")
    ap.add_argument("--no-detail", action="store_true", help="start with the detail pane hidden")
    ap.add_argument("--follow", type=float, metavar="SECONDS", default=None,
                    help="keep reading a file that is still being written, every SECONDS")
    args = ap.parse_args(argv)
    try:
        from flowtrace.ftr.format import FormatError

        from .app import FlowtraceApp
        from .model.source import TraceSource
    except ImportError as exc:  # textual / numpy missing
        print(f"flowtrace-tui: {exc.name or exc} is not installed; pip install 'flowtrace[tui]'", file=sys.stderr)
        return 2
    try:
        source = TraceSource.open(args.file)
    except FormatError as exc:
        msg = str(exc)
        print(f"flowtrace-tui: {msg if args.file in msg else f'{args.file}: {msg}'}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"flowtrace-tui: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    app = FlowtraceApp(source, poll_interval=args.follow, show_detail=not args.no_detail)
    app.run()
    source.close()
    return 0
