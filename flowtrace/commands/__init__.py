"""Subcommands of `flowtrace`: one module each, listed in `flowtrace.cli.COMMANDS`.

A module exposes `add_parser(subparsers)` (registering its argparse sub-parser) and
`run(args) -> int` (the exit status); it reports user errors by raising
`CommandError` (or `FormatError` for unreadable files).
"""


class CommandError(Exception):
    """A user-facing failure: printed as `flowtrace: error: <message>`, exit with `status`."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
