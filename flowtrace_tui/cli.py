"""`flowtrace-tui FILE`, `flowtrace-tui run … script.py`, `flowtrace-tui attach PID`.

FILE: open a session in the explorer; a session that is still being written (no end chunk) is
followed live. A directory: pick one of its sessions (screens/picker.py), e.g. the .flowtrace/
that `pytest --flowtrace` writes; quitting the explorer comes back to the list. `run`: record a
program in a child process (`python -m flowtrace run`) and follow its session at once; the
program's stdin is /dev/null and its output goes to a log file shown in a pane. `attach`: run
`flowtrace attach PID` in the background until the explorer quits (then it detaches, which
finishes the file) and follow the session it writes.

Problems that make the file unreadable (missing, not a session, a newer format version) or the
program unable to start are reported here, in one line on stderr with exit status 2, before any
UI starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

RUN_USAGE = """usage: flowtrace-tui run [-o FILE] [--log FILE] [--no-detail] [flowtrace run options]
                         (script.py | -m module | -c code) [args ...]

Run a Python program under the recorder (python -m flowtrace run) in a child process and
follow its session live. The program's stdin is /dev/null (it cannot read the terminal); its
stdout and stderr go to the log file (default: FILE with .log), shown in the output pane (o).
Quitting while it runs asks whether to stop it (Ctrl-C: the session file is finished) or to
leave it running.

  -o, --output FILE   session file to write (default: trace.ftr; overwritten)
  --log FILE          where the program's output goes (default: FILE with .log)
  --no-detail         start with the detail pane hidden
  flowtrace run options: --include P, --exclude P, --no-args, --repr safe|full,
                      --flush-interval S (see 'flowtrace run --help')
"""

_OUR_VALUE = {"-o", "--output", "--log"}
_OUR_FLAGS = {"--no-detail"}


def _fail(msg: str) -> int:
    print(f"flowtrace-tui: {msg}", file=sys.stderr)
    return 2


def _imports() -> str | None:
    try:
        import numpy  # noqa: F401
        import textual  # noqa: F401
    except ImportError as exc:  # textual / numpy missing
        return f"{exc.name or exc} is not installed; pip install 'flowtrace[tui]'"
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return run_main(argv[1:])
    if argv[:1] == ["attach"]:
        return attach_main(argv[1:])
    ap = argparse.ArgumentParser(
        prog="flowtrace-tui", description="Explore a flowtrace session (.ftr).",
        epilog="Also: 'flowtrace-tui run [options] script.py [args]' records a program and follows it "
               "live; 'flowtrace-tui attach PID' records a running process and follows it. A file "
               "named run or attach: write ./run.")
    ap.add_argument("file", help="a session file written by `flowtrace run -o FILE` (followed live while it is "
                                 "being written), or a directory of sessions to pick from (pytest --flowtrace's .flowtrace/)")
    ap.add_argument("--no-detail", action="store_true", help="start with the detail pane hidden")
    ap.add_argument("--follow", type=float, metavar="SECONDS", default=None,
                    help="how often to look for new data in a session still being written (default: 0.1)")
    ap.add_argument("--no-follow", action="store_true", help="read the file once, do not follow it")
    args = ap.parse_args(argv)
    if (err := _imports()) is not None:
        return _fail(err)
    if os.path.isdir(args.file):  # a directory of sessions (pytest --flowtrace's .flowtrace/)
        from .screens.picker import PickerApp

        chosen = None
        while (chosen := PickerApp(args.file, selected=chosen).run()) is not None:
            if (code := _explore(chosen, args)) != 0:
                return code
        return 0
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


def split_run_args(argv: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Take our own options (-o, --log, --no-detail) out of `flowtrace-tui run`'s arguments
    before the program; the rest (flowtrace run's options and the program) is passed on."""
    from flowtrace.commands.run import _VALUE_OPTIONS

    ours: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if arg in _OUR_FLAGS:
            ours[arg] = True
        elif name in _OUR_VALUE and name.startswith("--") and eq:
            ours[name] = value
        elif arg in _OUR_VALUE:
            if i + 1 >= len(argv):
                raise ValueError(f"argument {arg} needs a value")
            ours[arg] = argv[i + 1]
            i += 1
        elif arg.startswith("-o") and len(arg) > 2:
            ours["-o"] = arg[2:]
        elif arg in _VALUE_OPTIONS:
            rest.extend(argv[i:i + 2])
            i += 1
        elif arg == "--" or arg in ("-m", "-c") or not arg.startswith("-") or arg == "-" or arg.startswith(("-m", "-c")):
            rest.extend(argv[i:])  # the program and its arguments
            break
        else:
            rest.append(arg)  # one of flowtrace run's flags (or a mistake it will report)
        i += 1
    if "--output" in ours:
        ours["-o"] = ours.pop("--output")
    return ours, rest


def run_main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(RUN_USAGE, end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    try:
        ours, rest = split_run_args(argv)
    except ValueError as exc:
        return _fail(f"run: {exc}")
    if not any(not a.startswith("-") or a in ("-m", "-c", "--") or a.startswith(("-m", "-c")) for a in rest):
        return _fail("run: nothing to run: give a script, -m module or -c code (see 'flowtrace-tui run --help')")
    if (err := _imports()) is not None:
        return _fail(err)
    from .app import FlowtraceApp
    from .launch import LaunchError, describe_status, log_path_for, run_program
    from .model.live import DEFAULT_POLL_INTERVAL

    output = os.path.abspath(str(ours.get("-o", "trace.ftr")))
    log = os.path.abspath(str(ours.get("--log") or log_path_for(output)))
    try:
        child = run_program(rest, output, log)
        child.wait_for_session()
    except LaunchError as exc:
        return _fail(str(exc))
    source, err = _open_source(output)
    if source is None:
        child.stop()
        return _fail(err)
    app = FlowtraceApp(source, poll_interval=DEFAULT_POLL_INTERVAL, show_detail=not ours.get("--no-detail"),
                       program=child, log_path=log)
    try:
        app.run()
    finally:
        source.close()
    code = child.poll()
    if code is None:
        print(f"flowtrace-tui: the program (pid {child.pid}) is still running, recording into {output}; "
              f"its output goes to {log}", file=sys.stderr)
    else:
        print(f"flowtrace-tui: the program ended ({describe_status(code)}); session in {output}, output in {log}",
              file=sys.stderr)
    return 0


def attach_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="flowtrace-tui attach",
        description="Record a running Python (>= 3.12) process with 'flowtrace attach' and follow the "
                    "session live; quitting the explorer detaches (the file is finished and the "
                    "process carries on). See docs/ATTACH.md.")
    ap.add_argument("pid", type=int, metavar="PID")
    ap.add_argument("-o", "--output", metavar="FILE", help="session file (default: trace-PID.ftr; overwritten)")
    ap.add_argument("--no-detail", action="store_true", help="start with the detail pane hidden")
    ap.add_argument("--duration", metavar="SECONDS", type=float, help="stop recording after SECONDS")
    ap.add_argument("--include", metavar="P", action="append", default=[])
    ap.add_argument("--exclude", metavar="P", action="append", default=[])
    ap.add_argument("--no-args", action="store_true")
    ap.add_argument("--repr", choices=("safe", "full"))
    ap.add_argument("--method", choices=("auto", "control", "remote-exec", "gdb"))
    args = ap.parse_args(argv)
    if (err := _imports()) is not None:
        return _fail(err)
    from .app import FlowtraceApp
    from .launch import ATTACH_WAIT_S, LaunchError, attach_process
    from .model.live import DEFAULT_POLL_INTERVAL

    output = os.path.abspath(args.output or f"trace-{args.pid}.ftr")
    extra: list[str] = []
    if args.duration is not None:
        extra += ["--duration", str(args.duration)]
    for p in args.include:
        extra += ["--include", p]
    for p in args.exclude:
        extra += ["--exclude", p]
    if args.no_args:
        extra.append("--no-args")
    if args.repr:
        extra += ["--repr", args.repr]
    if args.method:
        extra += ["--method", args.method]
    fd, log = tempfile.mkstemp(prefix="flowtrace-attach-", suffix=".log")
    os.close(fd)
    try:
        try:
            attacher = attach_process(args.pid, output, extra, log)
            attacher.wait_for_session(ATTACH_WAIT_S)
        except LaunchError as exc:
            msg = str(exc)
            return _fail(msg.split("before recording started: ", 1)[-1] if "before recording started: " in msg else msg)
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
            attacher.stop()  # Ctrl-C for `flowtrace attach`: it detaches and the file is finished
        said = attacher.log_tail(3)
        if said:
            print(said.replace(" / ", "\n"), file=sys.stderr)
        return 0
    finally:
        try:
            os.unlink(log)
        except OSError:
            pass
