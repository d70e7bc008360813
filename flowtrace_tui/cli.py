"""`flowtrace-tui FILE`, `flowtrace-tui run … script.py`, `flowtrace-tui attach PID`.

FILE: open a session in the explorer; a session that is still being written (no end chunk) is
followed live. A directory: pick one of its sessions (screens/picker.py), e.g. the .flowtrace/
that `pytest --flowtrace` writes; quitting the explorer comes back to the list. `run`: record a
program in a child process (`python -m flowtrace run`) and follow its session at once; the
program's stdin is /dev/null and its output goes to a log file shown in a pane. `attach`: run
`flowtrace attach PID` in the background until the explorer quits (then it detaches, which
finishes the file) and follow the session it writes. `diff BASE NEW`: both runs' call paths in one
tree with what changed (diff_app.py).

Every problem is one line on stderr, `flowtrace-tui: error: …`, before any UI starts: usage
errors (with a pointer to the right --help) and an unreadable file (missing, not a session, a
newer format version) exit 2; a program or process that cannot be recorded is reported with what
the `flowtrace` child said and its exit status, like `flowtrace run` / `flowtrace attach` would.
Quitting an attach prints nothing unless detaching failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from flowtrace.cli import Parser
from flowtrace.commands import CommandError
from flowtrace.commands import attach as attach_cmd
from flowtrace.commands import run as run_cmd

from .launch import LaunchError

PROG = "flowtrace-tui"
USAGE = f"""{PROG} [-h] [--version] [--no-detail] [--follow SECONDS | --no-follow] FILE
       {PROG} run [options] (script.py | -m module | -c code) [args ...]
       {PROG} attach [options] PID
       {PROG} diff BASE.ftr NEW.ftr"""
_ERROR_PREFIX = "flowtrace: error: "  # how the flowtrace child says what went wrong


def _fail(msg: str, status: int = 2) -> int:
    """One line on stderr, as `flowtrace` writes its errors; returns the exit status."""
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return status


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from flowtrace import __version__

    try:
        textual = f"textual {version('textual')}"
    except PackageNotFoundError:
        textual = "textual not installed"
    v = sys.version_info
    return f"{PROG} {__version__} ({textual}, Python {v.major}.{v.minor}.{v.micro})"


def _imports() -> str | None:
    """What is missing of the explorer's dependencies, found without importing them (textual
    takes most of a second to import, much more on a busy machine: a bad file is said first)."""
    from importlib.util import find_spec

    for name in ("numpy", "textual"):
        if find_spec(name) is None:  # textual / numpy missing
            return f"{name} is not installed; pip install 'flowtrace[tui]'"
    return None


def _open_source(path: str):
    """A TraceSource, or a one-line message."""
    from flowtrace.ftr.format import FormatError

    from .model.source import TraceSource

    try:
        return TraceSource.open(path), None
    except FormatError as exc:
        msg = str(exc)
        return None, msg if path in msg else f"{path}: {msg}"
    except OSError as exc:
        return None, f"{path}: {exc.strerror or exc}"


def _explore_parser() -> Parser:
    ap = Parser(
        prog=PROG, usage=USAGE,
        description="Explore a flowtrace session (.ftr), or pick one in a directory; 'run' records "
                    "a program and 'attach' a running process, each followed live.",
        epilog=f"'{PROG} run --help' and '{PROG} attach --help' give their options. A session "
               "file named run or attach: write ./run.")
    ap.add_argument("--version", action="version", version=_version(), help="print the version, then exit")
    ap.add_argument("file", nargs="?", metavar="FILE",
                    help="a session file written by `flowtrace run -o FILE` (followed live while it is "
                         "being written), or a directory of sessions to pick from (pytest --flowtrace's .flowtrace/)")
    ap.add_argument("--no-detail", action="store_true", help="start with the detail pane hidden")
    follow = ap.add_mutually_exclusive_group()
    follow.add_argument("--follow", type=float, metavar="SECONDS", default=None,
                        help="how often to look for new data in a session still being written (default: 0.1)")
    follow.add_argument("--no-follow", action="store_true", help="read the file once, do not follow it")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return run_main(argv[1:])
    if argv[:1] == ["attach"]:
        return attach_main(argv[1:])
    if argv[:1] == ["diff"]:
        return diff_main(argv[1:])
    args = _explore_parser().parse_strictly(argv)
    if args.file is None:
        return _fail(f"give a session file, or run / attach (see '{PROG} --help')")
    if (err := _imports()) is not None:
        return _fail(err)
    if os.path.isdir(args.file):  # a directory of sessions (pytest --flowtrace's .flowtrace/)
        from .screens.picker import PickerApp

        chosen, words = None, ""
        while True:  # the picker again after each session, on the same row, with the same filter
            picker = PickerApp(args.file, selected=chosen, filter_text=words)
            if (chosen := picker.run()) is None:
                return 0
            words = picker.filter_text
            if (code := _explore(chosen, args)) != 0:
                return code
    return _explore(args.file, args)


def _explore(path: str, args: argparse.Namespace) -> int:
    """Open one session file in the explorer until the user quits."""
    from .app import FlowtraceApp
    from .model.live import DEFAULT_POLL_INTERVAL

    source, err = _open_source(path)
    if source is None:
        return _fail(err)
    poll = None if args.no_follow else (args.follow if args.follow and args.follow > 0 else DEFAULT_POLL_INTERVAL)
    app = FlowtraceApp(source, poll_interval=poll, show_detail=not args.no_detail)
    app.run()
    source.close()
    return 0


def _run_parser() -> Parser:
    ap = Parser(
        prog=f"{PROG} run", usage=run_cmd.USAGE.format(prog=f"{PROG} run"),
        description="Run a Python program under the recorder (python -m flowtrace run) in a child "
                    "process and follow its session live. The program's stdin is /dev/null (it "
                    "cannot read the terminal); its stdout and stderr go to the log file, shown in "
                    "the output pane (o). Quitting while it runs asks whether to stop it (Ctrl-C: "
                    "the session file is finished) or to leave it running.")
    run_cmd.add_recording_options(ap)
    ap.add_argument("--log", metavar="FILE", help="where the program's output goes (default: the session "
                                                  "file with .log)")
    ap.add_argument("--no-detail", action="store_true", help="start with the detail pane hidden")
    run_cmd.add_program_arguments(ap)
    return ap


def _launch_failure(exc: LaunchError) -> int:
    """Report a child that failed before recording started: its own error line as ours (with its
    exit status), else what we know."""
    if exc.said.startswith(_ERROR_PREFIX):
        return _fail(exc.said[len(_ERROR_PREFIX):], exc.status or 1)
    return _fail(str(exc), 1)


def parse_run_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """`flowtrace-tui run`'s options, and the program with its arguments (script, -m or -c
    first). A usage error exits 2 with one line; CommandError when there is nothing to run."""
    parser = _run_parser()
    own, trailing = run_cmd.split_argv(argv, frozenset({"--log"}))
    args = parser.parse_strictly(own)
    if args.script is not None or args.module is not None or args.code is not None:
        parser.error("put the program (script, -m module or -c code) after the options")
    run_cmd.program_from(trailing, parser.prog)
    return args, trailing


def run_main(argv: list[str]) -> int:
    try:
        args, trailing = parse_run_args(argv)
    except CommandError as exc:
        return _fail(str(exc), exc.status)
    if (err := _imports()) is not None:
        return _fail(err)
    from .app import FlowtraceApp
    from .launch import describe_status, log_path_for, run_program
    from .model.live import DEFAULT_POLL_INTERVAL
    from .widgets.detail_pane import warm_up

    output = os.path.abspath(args.output)
    log = os.path.abspath(args.log or log_path_for(output))
    try:
        child = run_program([*run_cmd.recording_argv(args), "--", *trailing], output, log)
        warm_up()  # (while the program starts)
        child.wait_for_session()
    except LaunchError as exc:
        if exc.status is not None:  # it said why before recording anything: that is on stderr now
            _remove(log)
        return _launch_failure(exc)
    source, err = _open_source(output)
    if source is None:
        child.stop()
        return _fail(err)
    app = FlowtraceApp(source, poll_interval=DEFAULT_POLL_INTERVAL, show_detail=not args.no_detail,
                       program=child, log_path=log)
    try:
        app.run()
    finally:
        source.close()
    code = child.poll()
    if code is None:
        print(f"{PROG}: the program (pid {child.pid}) is still running, recording into {output}; "
              f"its output goes to {log}", file=sys.stderr)
    else:
        print(f"{PROG}: the program ended ({describe_status(code)}); session in {output}, output in {log}",
              file=sys.stderr)
    return 0


def diff_main(argv: list[str]) -> int:
    """`flowtrace-tui diff BASE NEW`: the two runs' call paths in one tree (diff_app.py)."""
    ap = Parser(prog=f"{PROG} diff",
                description="Compare two sessions: the call paths of both runs merged into one tree, "
                            "each path with its calls and times in both and the change, coloured by what "
                            "changed (the same rules as 'flowtrace diff').")
    ap.add_argument("base", metavar="BASE.ftr", help="the session to compare against")
    ap.add_argument("new", metavar="NEW.ftr", help="the session to compare")
    ap.add_argument("--no-detail", action="store_true", help="start with the detail pane hidden")
    args = ap.parse_strictly(argv)
    if (err := _imports()) is not None:
        return _fail(err)
    base, err = _open_source(args.base)
    if base is None:
        return _fail(err)
    new, err = _open_source(args.new)
    if new is None:
        base.close()
        return _fail(err)
    from .diff_app import DiffApp  # (after the files are checked: see _imports)

    try:
        DiffApp(base, new, show_detail=not args.no_detail).run()
    finally:
        base.close()
        new.close()
    return 0


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _attach_parser() -> Parser:
    ap = Parser(
        prog=f"{PROG} attach",
        description="Record a running Python (>= 3.12) process with 'flowtrace attach' and follow the "
                    "session live; quitting the explorer detaches (the file is finished and the "
                    "process carries on). See docs/ATTACH.md.")
    attach_cmd.add_attach_options(ap)
    ap.add_argument("--no-detail", action="store_true", help="start with the detail pane hidden")
    return ap


def attach_main(argv: list[str]) -> int:
    args = _attach_parser().parse_strictly(argv)
    if (err := _imports()) is not None:
        return _fail(err)
    from .app import FlowtraceApp
    from .launch import ATTACH_WAIT_S, attach_process
    from .model.live import DEFAULT_POLL_INTERVAL
    from .widgets.detail_pane import warm_up

    output = os.path.abspath(args.output or f"trace-{args.pid}.ftr")
    fd, log = tempfile.mkstemp(prefix="flowtrace-attach-", suffix=".log")
    os.close(fd)
    try:
        try:
            # --quiet: the attach says only what went wrong (the explorer shows the rest)
            attacher = attach_process(args.pid, output, [*attach_cmd.attach_argv(args), "--quiet"], log)
            warm_up()  # (while it attaches)
            attacher.wait_for_session(ATTACH_WAIT_S)
        except LaunchError as exc:
            return _launch_failure(exc)
        source, err = _open_source(output)
        if source is None:
            attacher.stop()
            return _fail(err)
        app = FlowtraceApp(source, poll_interval=DEFAULT_POLL_INTERVAL, show_detail=not args.no_detail,
                           attacher=attacher)
        try:
            app.run()
        finally:
            source.close()
            # Ctrl-C for `flowtrace attach`: it detaches and the file is finished
            status = attacher.stop()
        if status != 0 and (said := attacher.log_tail(3)):
            print(said.replace(" / ", "\n"), file=sys.stderr)  # what went wrong while detaching
        return 0 if status == 0 else 1
    finally:
        _remove(log)
