"""The `flowtrace` command: parses the command line and hands over to one subcommand module.

Each subcommand is a module in `flowtrace/commands/` exposing `add_parser(subparsers)` and
`run(args) -> int`; adding one is a new module and one name in `COMMANDS`. A module may also
expose `split_argv(argv) -> (own, trailing)` to keep arguments that belong to something else
(`flowtrace run script.py --its-own-flags`) away from argparse; `trailing` is then stored as
`args.trailing`.

Every failure is one line on stderr, `flowtrace: error: …`, and a non-zero exit status —
never a traceback from our code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType
from typing import Any, NoReturn, Sequence

from . import __version__
from .commands import CommandError
from .ftr.format import FormatError

PROG = "flowtrace"
COMMANDS = ("run", "print", "stats", "diff", "export", "attach", "detach")  # modules in flowtrace/commands/, --help order


def _terminal_columns() -> int:
    """shutil.get_terminal_size().columns, without importing shutil (see _Formatter)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, finding the terminal's width as it does but without importing
    shutil (which imports bz2 and lzma): argparse makes a formatter for every add_argument, so
    `flowtrace run` loaded them all before the program started."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help), not usage + error:
    `flowtrace: error: … (see 'flowtrace run --help')`. flowtrace-tui uses it too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog.split()[0]}: error: {message} (see '{self.prog} --help')\n")

    def parse_strictly(self, argv: list[str]) -> argparse.Namespace:
        """parse_args, but arguments nobody knows are reported by the sub-command they were
        given to, whose --help explains its options (argparse leaves that to the top parser)."""
        args, unknown = self.parse_known_args(argv)
        if unknown:
            sub = self.commands.get(getattr(args, "command", None) or "", self)
            sub.error(f"unrecognized arguments: {' '.join(unknown)}")
        return args

    @property
    def commands(self) -> dict[str, "Parser"]:
        """The sub-command parsers by name (empty without sub-commands)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}


def fail(message: str) -> None:
    """Print one error line on stderr."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()


def recorder_name() -> str:
    """Which recorder `flowtrace run` would use ("python", or "c" when one is built)."""
    try:
        from .recorder import active_recorder_name  # type: ignore[attr-defined]
    except ImportError:
        return "python"
    try:
        name = str(active_recorder_name())
    except Exception as exc:  # a broken optional recorder must not break --version
        return f"unavailable ({exc})"
    if name == "python" and not os.environ.get("FLOWTRACE_RECORDER", "").strip():
        from .recorder import c_recorder_problem

        problem = c_recorder_problem()
        return f"python (the C recorder {'is not built' if problem is None else 'cannot be used: ' + problem})"
    return name


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and recorder, then exit")

    def __call__(self, parser: argparse.ArgumentParser, *_a: object, **_k: object) -> None:
        v = sys.version_info
        sys.stdout.write(f"{PROG} {__version__} (recorder: {recorder_name()}, "
                         f"Python {v.major}.{v.minor}.{v.micro})\n")
        parser.exit(0)


def command_modules(names: Sequence[str] = COMMANDS) -> dict[str, ModuleType]:
    return {name: importlib.import_module(f".commands.{name}", __package__) for name in names}


def build_parser(modules: dict[str, ModuleType]) -> Parser:
    parser = Parser(
        prog=PROG,
        description="Record what a Python program does (every call, argument, result, exception, "
                    "generator and await switch, thread) and look at it afterwards.",
        epilog="Run 'flowtrace COMMAND --help' for a command's options. The explorer is 'flowtrace-tui FILE'.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in modules.values():
        module.add_parser(sub)
    return parser


def _split(argv: list[str], modules: dict[str, ModuleType]) -> tuple[list[str], list[str] | None]:
    """Let the chosen command keep trailing arguments away from argparse."""
    if argv and argv[0] in modules:
        split = getattr(modules[argv[0]], "split_argv", None)
        if split is not None:
            own, trailing = split(argv[1:])
            return [argv[0], *own], trailing
    return argv, None


def _claim_launcher() -> None:
    """Mark the module-level code that called `main()` as flowtrace's own (never recorded).

    That code is the console script pip/uv wrote for the `flowtrace` command (or
    flowtrace/__main__.py, already ours): a frame of it stays below the traced program for the
    whole run, and an attach that seeds the running calls would show it as a partial `<module>`
    above the program's own. Only the direct caller, and only top-level code run as
    `__main__`, so a user's function that calls main() is still recorded."""
    try:
        frame = sys._getframe(2)  # 0: here, 1: main(), 2: its caller
    except ValueError:
        return
    code = frame.f_code
    if code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
        from .filters import mark_internal_code

        mark_internal_code(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `flowtrace` and `python -m flowtrace`; returns the exit status."""
    if sys.version_info < (3, 12):  # (flowtrace on an older Python's path: recording needs sys.monitoring)
        v = sys.version_info
        fail(f"flowtrace needs Python 3.12 or later; this is Python {v.major}.{v.minor} ({sys.executable})")
        return 2
    _claim_launcher()
    argv = list(sys.argv[1:] if argv is None else argv)
    # A command named first needs its own module only (the parser then knows that command
    # alone, and parses and reports errors as the whole one does): `flowtrace run` starts the
    # program without importing the readers, exporters and diff behind the other commands.
    modules = command_modules([argv[0]] if argv and argv[0] in COMMANDS else COMMANDS)
    parser = build_parser(modules)
    argv, trailing = _split(argv, modules)
    args = parser.parse_strictly(argv)
    if args.command is None:
        fail(f"no command given; one of: {', '.join(COMMANDS)} (see 'flowtrace --help')")
        return 2
    args.trailing = trailing
    try:
        return modules[args.command].run(args)
    except CommandError as exc:
        fail(str(exc))
        return exc.status
    except FormatError as exc:
        fail(str(exc))
        return 1
    except BrokenPipeError:
        # The reader of our output went away (`flowtrace print x.ftr | head`): not an error.
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug of ours: still one line, unless debugging
        if os.environ.get("FLOWTRACE_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set FLOWTRACE_DEBUG=1 to see where)")
        return 70
