"""Subcommands of `flowtrace`: one module each, listed in `flowtrace.cli.COMMANDS`.

A module exposes `add_parser(subparsers)` (registering its argparse sub-parser) and
`run(args) -> int` (the exit status); it reports user errors by raising
`CommandError` (or `FormatError` for unreadable files).
"""

from __future__ import annotations

from typing import Any


class CommandError(Exception):
    """A user-facing failure: printed as `flowtrace: error: <message>`, exit with `status`."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def add_filter_options(parser: Any) -> None:
    """--include / --exclude, as `flowtrace run`, `flowtrace attach` and flowtrace-tui take them
    (the rules are in flowtrace/filters.py)."""
    parser.add_argument("--include", action="append", default=[], metavar="P",
                        help="also record code matching P (repeatable): a module glob ('json' or "
                             "'json.*': the json package and all its submodules; 'json.d*': only "
                             "those submodules), or a path glob if P contains '/' or ends in .py "
                             "('*/tests/*')")
    parser.add_argument("--exclude", action="append", default=[], metavar="P",
                        help="never record code matching P, a pattern as for --include; wins over "
                             "--include (repeatable)")


def filter_argv(args: Any) -> list[str]:
    """The --include / --exclude options that give back what add_filter_options parsed."""
    return [opt for p in args.include for opt in ("--include", p)] + [
        opt for p in args.exclude for opt in ("--exclude", p)]
