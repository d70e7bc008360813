"""`flowtrace run [options] script.py [args…]` (or `-m module`, `-c code`): record a program.

The program runs in this process under a recording `Session`, exactly as `python` would run it
(see flowtrace/runner.py). Recording ends when the process exits — after the program's
non-daemon threads and its own atexit handlers — and one line on stderr says where the
session was written and how many calls it holds.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import sys
import types
from typing import Any, Callable

# Imported here, not where they are used: an import while recording runs importlib's Python
# code (and a relative one ModuleSpec.parent), which `--include '*'` records as the program's.
from .. import follow, interpreters, runner
from ..recorder import fallback_warning
from ..untraced import suspended
from . import CommandError, add_filter_options, filter_argv

DEFAULT_OUTPUT = "trace.ftr"
# Our options that take a value, and those that do not; anything after them is the program.
_VALUE_OPTIONS = {"-o", "--output", "--include", "--exclude", "--repr", "--flush-interval", "--python"}
_FLAG_OPTIONS = {"--no-args", "--no-follow", "--paused", "-h", "--help"}


USAGE = "{prog} [options] (script.py | -m module | -c code) [args ...]"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a Python program and record it",
        usage=USAGE.format(prog="flowtrace run"),
        description="Run a Python program exactly as 'python' would and record every call of "
                    "your code into a session file. Arguments after the script, module or code "
                    "are the program's own.",
    )
    add_recording_options(p)
    p.add_argument("--no-follow", action="store_true",
                   help="record this process only (default: every Python 3.12+ descendant too, "
                        "each into its own part in FILE.d/: docs/FORMAT.md)")
    p.add_argument("--paused", action="store_true",
                   help="do not record yet: serve a control channel so that 'flowtrace attach PID' "
                        "starts recording later and 'flowtrace detach PID' stops it (docs/ATTACH.md)")
    add_program_arguments(p)


def add_recording_options(p: Any) -> None:
    """The options that say where and what to record (also flowtrace-tui run's)."""
    p.add_argument("-o", "--output", metavar="FILE", default=DEFAULT_OUTPUT,
                   help=f"session file to write (default: {DEFAULT_OUTPUT})")
    add_filter_options(p)
    p.add_argument("--no-args", action="store_true",
                   help="do not capture arguments, results and exception texts")
    p.add_argument("--repr", choices=["safe", "full"], default="safe",
                   help="'safe' (default): builtin values shown, other objects as "
                        "<module.Class object at 0x…> without calling their __repr__; "
                        "'full': call __repr__ (bounded, errors caught)")
    p.add_argument("--flush-interval", type=_seconds, default=0.1, metavar="S",
                   help="write recorded calls to the file every S seconds (default: 0.1)")
    p.add_argument("--python", metavar="PYTHON",
                   help="run the program under this Python 3.12+ interpreter (e.g. a virtualenv's "
                        "bin/python) with this flowtrace, which need not be installed there; also "
                        "taken from the program's first word when that names an interpreter "
                        "(`run .venv/bin/python -m app`)")


def recording_argv(args: argparse.Namespace) -> list[str]:
    """`flowtrace run` options (without -o) that give the recording options parsed into `args`."""
    argv = filter_argv(args) + (["--no-args"] if args.no_args else [])
    argv += ["--python", args.python] if args.python is not None else []
    return argv + ["--repr", args.repr, "--flush-interval", repr(args.flush_interval)]


def add_program_arguments(p: Any) -> None:
    """The program's part, for --help (split_argv hands it over before argparse sees it)."""
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    p.add_argument("-c", dest="code", metavar="CODE", help="run a program passed as a string")
    p.add_argument("script", nargs="?", metavar="script.py", help="the program to run")
    p.add_argument("args", nargs="*", metavar="args", help="the program's arguments")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return value


def split_argv(argv: list[str], value_options: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """Split `flowtrace run`'s arguments into ours and the program's.

    Ours come first; the program starts at the first argument that is not one of our options
    (the script), or at `-m MODULE` / `-c CODE` (kept, with their value, at the head of the
    program part), or after `--`. Unknown options stay on our side, so argparse reports them.
    `value_options`: more options that take a value (flowtrace-tui run's own)."""
    value_options = _VALUE_OPTIONS | value_options
    own: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return own, argv[i + 1:]
        if arg in ("-m", "-c"):
            return own, argv[i:]
        if arg.startswith(("-m", "-c")) and not arg.startswith("--"):
            return own, [arg[:2], arg[2:], *argv[i + 1:]]
        if arg in value_options:
            own.extend(argv[i:i + 2])
            i += 2
            continue
        if arg.startswith("-") and arg != "-":
            own.append(arg)  # --opt=value, -oFILE, flags, or an unknown option for argparse to report
            i += 1
            continue
        return own, argv[i:]
    return own, []


def program_from(trailing: list[str] | None, prog: str = "flowtrace run") -> runner.Program:
    """The Program named by the arguments split_argv kept for it (`prog`: whose --help to name)."""
    if not trailing:
        raise CommandError(f"nothing to run: give a script, -m module or -c code (see '{prog} --help')", 2)
    head = trailing[0]
    if head in ("-m", "-c"):
        if len(trailing) < 2:
            raise CommandError(f"argument {head} needs a value (see '{prog} --help')", 2)
        return runner.Program("module" if head == "-m" else "code", trailing[1], trailing[2:])
    return runner.Program("script", head, trailing[1:])


def _config(args: argparse.Namespace) -> Any:
    from ..recorder.base import RecorderConfig

    return RecorderConfig(
        args="off" if args.no_args else args.repr,
        include=list(args.include),
        exclude=list(args.exclude),
    )


def _calls_recorded(session: Any) -> int | None:
    """How many calls the finished session wrote."""
    count = getattr(getattr(session, "writer", None), "calls_written", None)
    return count if isinstance(count, int) else None


class _Finisher:
    """Ends the session at interpreter exit with what `execute` learnt about the program's end.

    Registered with atexit *after* the session's own exit hooks and *before* the program runs,
    so it runs after the program's atexit handlers (which are then recorded too) and before the
    session's fallback hooks (which find the session already stopped)."""

    def __init__(self, session: Any, path: str, stderr: Any, library_note: Callable[[], str] = str) -> None:
        self.session = session
        self.path = path
        self.stderr = stderr
        self.library_note = library_note
        self.outcome: runner.Outcome | None = None

    def __call__(self) -> None:
        if self.session.forked_away:  # a forked child, leaving through atexit
            part = follow.current()  # its own part when following (finished quietly), else none
            if part is not None:
                _finish(part, self.outcome)
        else:
            try:
                no_parts = follow.remove_unused_dir()  # (before the end: ENDS says so)
                _finish(self.session, self.outcome, {"no_parts": True} if no_parts else None)
                calls = _calls_recorded(self.session)
                what = f"{calls} call{'' if calls == 1 else 's'}" if calls is not None else "calls"
                from ..ftr.parts import children_note  # (names only: not the readers)

                self._say(f"flowtrace: recorded {what} to {self.path}{children_note(self.path)}{self.library_note()}")
            except Exception as exc:  # noqa: BLE001 - never a traceback at exit
                self._say(f"flowtrace: error: could not finish {self.path}: {exc}")
        if self.outcome is not None and self.outcome.kind == "interrupt":
            _die_by_sigint()

    def _say(self, line: str) -> None:
        try:
            self.stderr.write(line + "\n")
            self.stderr.flush()
        except (OSError, ValueError):
            pass


def _library_note(program: runner.Program, include: list[str]) -> Callable[[], str]:
    """For `-m pkg` of a library package and no --include: the end line's note that, of that
    package, only its module run as __main__ was recorded (`flowtrace run -m pip list` said
    "recorded 1 call" and nothing of why; under `-m pytest` the user's tests are recorded as
    usual, so the note names the package). Read at exit from the package the program imported:
    nothing is imported for it, and no code of the program's runs."""

    def note() -> str:
        if program.kind != "module" or include:
            return ""
        top = program.target.split(".")[0]
        module = sys.modules.get(top)
        # (its own dict: a module's __getattr__ is the library's code)
        filename = module.__dict__.get("__file__") if issubclass(type(module), types.ModuleType) else None
        if not isinstance(filename, str):
            return ""
        from ..filters import CodeFilter

        if CodeFilter().is_user_code(filename):
            return ""
        return f" ({top} is library code: of it, only the module run as __main__ was recorded; --include {top} records all of it)"

    return note


def _finish(session: Any, outcome: runner.Outcome | None, extra: dict[str, Any] | None = None) -> None:
    """Stop `session` with how the program ended (`extra`: more ENDS keys), at the process's
    exit (the finisher's atexit)."""
    session.stop(**_ending(outcome), extra=extra, exiting=True)


def _ending(outcome: runner.Outcome | None) -> dict[str, Any]:
    """ENDS fields (`Session.stop`'s keywords) for how the program ended."""
    if outcome is None:  # the program never returned to us (os._exit does not get here)
        return {"reason": "exit", "exit_code": None, "error": None, "signal": None}
    if outcome.kind == "interrupt":
        return {"reason": "signal", "exit_code": 130, "error": outcome.error, "signal": "SIGINT"}
    if outcome.kind == "exception":
        return {"reason": "exception", "exit_code": 1, "error": outcome.error, "signal": None}
    return {"reason": "exit", "exit_code": outcome.status, "error": None, "signal": None}


def _die_by_sigint() -> None:
    """End as Python does after an uncaught KeyboardInterrupt: killed by SIGINT (status 130 in a
    shell), after the atexit handlers."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except (OSError, ValueError):
        pass
    os._exit(130)


def run(args: argparse.Namespace) -> int:
    if args.script is not None or args.module is not None or args.code is not None:
        # only reachable through unusual spellings that split_argv left to argparse
        raise CommandError("put the program (script, -m module or -c code) after flowtrace's own options", 2)
    if args.python is None and args.trailing and interpreters.is_interpreter(args.trailing[0]):
        args.python, args.trailing = args.trailing[0], args.trailing[1:]  # `run .venv/bin/python -m app`
    program = program_from(args.trailing)
    if args.python is not None:
        _run_under(args.python, args)
    try:
        prepared = runner.prepare(program)
    except runner.ProgramNotFound as exc:
        raise CommandError(str(exc), exc.status) from None

    if args.paused:
        return _run_paused(args, prepared)

    from ..session import signals_held

    # Signals wait from before the session's file starts until the program starts: a Ctrl-C in
    # between (`flowtrace-tui run` stops its program with SIGINT as soon as the file is there)
    # was a KeyboardInterrupt in our set-up: exit status 130 and a file ending "exit", or no end
    # (before the exit hooks), or no file. Let in as the program starts (runner.execute), it is
    # the program's interrupt: the file ends "signal" and the process dies by SIGINT, as Python.
    held = contextlib.ExitStack()
    held.enter_context(signals_held())
    try:
        session, finisher = _start_recording(args, program)
    except BaseException:
        held.close()
        raise
    outcome = runner.execute(prepared, started=lambda: _let_signals_in(held))
    finisher.outcome = outcome
    if session.forked_away and not args.no_follow:
        _expect_in_forked_child(outcome)
    return outcome.status


def _run_under(python: str, args: argparse.Namespace) -> None:
    """Become `python` running this `flowtrace run` (interpreters.py); returns only by raising
    CommandError (no such interpreter, or the exec failed)."""
    path = interpreters.resolve(python)
    argv = ["run", *recording_argv(argparse.Namespace(**{**vars(args), "python": None})), "-o", args.output]
    argv += (["--no-follow"] if args.no_follow else []) + (["--paused"] if args.paused else [])
    interpreters.exec_under(path, [*argv, "--", *args.trailing])


def _start_recording(args: argparse.Namespace, program: runner.Program) -> tuple[Any, _Finisher]:
    """The session recording from now on, finished at exit by the returned finisher (whose
    `outcome` the caller sets once the program has run)."""
    from ..session import Session

    fallback = fallback_warning()  # asked before recording: it may import the C recorder's module
    meta = {"argv": program.command_line(), "program": program.describe()}
    if not args.no_follow:  # readers find the descendants' parts in FILE.d/ (docs/FORMAT.md)
        meta["parts"] = os.path.basename(args.output) + ".d"
    try:
        session = Session(args.output, _config(args), command="run", flush_interval=args.flush_interval, meta=meta)
        session.start()
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    except (RuntimeError, ValueError) as exc:  # no free sys.monitoring tool id, bad FLOWTRACE_RECORDER
        raise CommandError(f"cannot start recording: {exc}") from None
    if session.recorder_name == "python":
        _warn_of_a_broken_c_recorder(fallback)
    session.install_exit_hooks()
    if not args.no_follow:
        follow.enable_root(session, args.output, session.config, args.flush_interval)
    finisher = _Finisher(session, args.output, sys.stderr, _library_note(program, list(args.include)))
    atexit.register(finisher)
    return session, finisher


def _let_signals_in(held: contextlib.ExitStack) -> None:
    """The signals held through the set-up arrive now, as the program starts (a handler runs,
    KeyboardInterrupt is raised here); our work, not the program's (untraced.py)."""
    with suspended():
        held.close()


def _warn_of_a_broken_c_recorder(text: str | None) -> None:
    """Say once, before the program runs, that the Python recorder records because the built C
    recorder failed to import (20-80x slower): `text`, recorder.fallback_warning's. Only here,
    in the command the user started: followed children's parts stay quiet."""
    if text is not None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _expect_in_forked_child(outcome: runner.Outcome) -> None:
    """A child forked by the program ran on to the program's end: its part ends as the program
    did (its exit hooks, which run before the finisher, would see only flowtrace's exit)."""
    part = follow.current()
    if part is not None:
        part.expect_end(**_ending(outcome))


def _run_paused(args: argparse.Namespace, prepared: Any) -> int:
    """`--paused`: run the program unrecorded behind a control channel (flowtrace/control.py);
    a recording started by `flowtrace attach` is finished with the program's real ending."""
    from .. import control

    try:
        control.install(flush_interval=args.flush_interval)
    except control.ControlError as exc:
        raise CommandError(f"cannot serve the control channel: {exc}") from None
    _warn_of_a_broken_c_recorder(fallback_warning())  # (an attach records with the recorder chosen here)
    sys.stderr.write(f"flowtrace: not recording yet: 'flowtrace attach {os.getpid()}' starts it\n")
    sys.stderr.flush()
    ending: list[runner.Outcome] = []

    def finish() -> None:  # registered before the program runs: runs after its atexit handlers
        outcome = ending[0] if ending else None
        if outcome is None:
            control.finish_recording(reason="exit")
        elif outcome.kind == "interrupt":
            control.finish_recording(reason="signal", exit_code=130, error=outcome.error, signal="SIGINT")
            _die_by_sigint()
        elif outcome.kind == "exception":
            control.finish_recording(reason="exception", exit_code=1, error=outcome.error)
        else:
            control.finish_recording(reason="exit", exit_code=outcome.status)

    atexit.register(finish)
    ending.append(runner.execute(prepared))
    return ending[0].status
