"""Following child processes into one session (docs/FORMAT.md, "Sessions of several processes").

The root process writes the file the user named (`trace.ftr`); every descendant it starts
writes its own part beside it, in `trace.ftr.d/<pid>.ftr`, so that a killed worker loses at
most its last flush and never touches another process's file. Descendants are reached two ways:

- forked without exec (os.fork, multiprocessing's fork workers, a forkserver's children): an
  at-fork handler, after session.py has cut the parent's session loose, starts the child's own
  part (the stack the child inherited is seeded as partial calls);
- any new interpreter (subprocess, os.system, os.exec*, posix_spawn, spawn/forkserver
  workers): the environment carries the parts directory and options, and PYTHONPATH puts
  `flowtrace/_boot/sitecustomize.py` first, which takes itself off sys.path again, starts the
  part at interpreter start-up (Python >= 3.12 with flowtrace importable) and chains to the
  environment's own sitecustomize. An interpreter that cannot be followed (older Python,
  flowtrace not importable) leaves `<pid>.skip.json` saying why; `-I`, `-S` and `-E` children
  never read the variables and run untraced.

An audit hook notes who launches what: just before a launch it puts "pid:thread:time" in the
environment (FLOWTRACE_STARTED_BY), the child copies it into its META so that readers find the
call that started it; before os.exec* it finishes this process's part. os._exit finishes the
part first (pool workers leave that way).

`flowtrace attach --children` follows the descendants an attached process starts afterwards
the same way (the control channel calls enable_root with attached=True). Two differences: the
environment also names where the attached flowtrace is importable (the bootstrap imports it
from there, as the attach payload does), and the session can end while they run: detaching
writes `detached` in the parts directory, and each part ends at its next flush when it sees
it, or at its exit if that comes first (ENDS reason "detached"), and stops following in turn.
Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from .recorder.base import RecorderConfig
from . import session as session_module
from .session import Session, signals_held
from .filters import mark_internal_code
from .ftr.parts import parts_dir
from .untraced import suspended

try:  # the audit hook in C (audit.c): Python is called at launch events only, not at every event
    from ._crecorder import audit_launches as _c_audit_launches  # type: ignore[attr-defined]
except ImportError:  # no C extension: a Python hook, called at every event
    _c_audit_launches = None

ENV_DIR = "FLOWTRACE_FOLLOW_DIR"      # absolute path of the session's parts directory
ENV_OPTS = "FLOWTRACE_FOLLOW_OPTS"    # JSON: args, include, exclude, flush_interval
ENV_FROM = "FLOWTRACE_STARTED_BY"     # "pid:thread ident:monotonic ns" of the latest launch
ENV_ROOT = "FLOWTRACE_FOLLOW_ROOT"    # attach: the sys.path entry this flowtrace is imported from
DETACHED = "detached"                  # in the parts directory: the session was detached
BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")
# the sys.path entry that makes this flowtrace importable (the package's parent): what ENV_ROOT
# names, and what `run --python` lends the other interpreter (interpreters.py)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LAUNCHES = frozenset({"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec"})

_dir: str | None = None           # this process's parts directory, when following
_opts: dict[str, Any] = {}
_session: Session | None = None   # the session recording this process (root or part)
_hooks_installed = False
_launched = False                 # did this process start a process (launch or fork) since enable_root?
_last_popen: tuple[int, int, tuple[Any, ...]] | None = None  # (thread, id and items of argv) of the last subprocess.Popen event
_real_exit = os._exit
_saved_env: dict[str, str | None] = {}  # what enable_root changed in os.environ (stop_following)
_held_thread: int | None = None   # the thread whose events wait for the main program (hold_until_main)


def current() -> Session | None:
    """The part recording this process, if it is a followed descendant."""
    return _session if _session is not None and not _session.forked_away else None


def following() -> bool:
    """Does this process follow its descendants into a session (as its root or as a part)?"""
    return _dir is not None


def enable_root(session: Session, output: str, config: RecorderConfig, flush_interval: float, *,
                attached: bool = False) -> None:
    """In `flowtrace run` (or an attach with --children: `attached`): follow every descendant
    this process starts from now on into `output`'s parts."""
    with suspended():  # our work, not the program's (json, os.environ: untraced.py)
        _enable_root(session, output, config, flush_interval, attached)


def _enable_root(session: Session, output: str, config: RecorderConfig, flush_interval: float,
                 attached: bool) -> None:
    global _dir, _opts, _session
    global _launched
    directory = parts_dir(output)
    _clear(directory)
    _dir, _session, _launched = directory, session, False
    _opts = {"args": config.args, "include": list(config.include), "exclude": list(config.exclude),
             "flush_interval": flush_interval, "platform": session.meta.get("platform"),
             "hostname": session.meta.get("hostname")}
    if attached:
        _opts["attach"] = True
    _saved_env.clear()
    _saved_env.update({name: os.environ.get(name) for name in (ENV_DIR, ENV_OPTS, ENV_FROM, ENV_ROOT)})
    os.environ[ENV_DIR] = directory
    os.environ[ENV_OPTS] = json.dumps(_opts)
    os.environ.pop(ENV_FROM, None)
    if attached or not _on_path(ROOT):
        # the program's own environment may have no flowtrace (an attach, `run --python`, `python
        # -m flowtrace` from a checkout): the bootstrap imports ours, from where this one came
        os.environ[ENV_ROOT] = ROOT
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = BOOT_DIR + (os.pathsep + old if old else "")
    _install_hooks()


def _on_path(root: str) -> bool:
    """Is `root` (where this flowtrace was imported from) on the program's sys.path?"""
    return any(os.path.abspath(entry or os.curdir) == root for entry in sys.path if isinstance(entry, str))


def stop_following(*, detached: bool = False) -> None:
    """No more descendants are followed from this process: its environment is given back (as
    far as we changed it), and with `detached` (the session was detached) the parts still
    recording are told to end (`DETACHED` in the parts directory)."""
    global _dir, _session
    directory = _dir
    if directory is None:
        return
    with suspended():  # our work, not the program's (untraced.py)
        if detached:
            try:
                os.close(os.open(os.path.join(directory, DETACHED), os.O_WRONLY | os.O_CREAT, 0o644))
            except OSError:
                pass
        _restore_env()
    _dir, _session = None, None


def _restore_env() -> None:
    """Our variables out of os.environ again: each as it was before enable_root (a part never
    saved any: they go), PYTHONPATH without the bootstrap's directory."""
    for name in (ENV_DIR, ENV_OPTS, ENV_FROM, ENV_ROOT):
        before = _saved_env.get(name)
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
    words = [w for w in os.environ.get("PYTHONPATH", "").split(os.pathsep) if w != BOOT_DIR]
    if any(words):
        os.environ["PYTHONPATH"] = os.pathsep.join(words)
    else:
        os.environ.pop("PYTHONPATH", None)


def remove_unused_dir() -> bool:
    """At the root's end (`flowtrace run`'s finisher): the parts directory goes when this process
    started no process and nothing was written there, so a program that starts none leaves the
    file alone, not an empty `trace.ftr.d/` beside it. True when it went (the root's ENDS then
    says `no_parts`: readers expect none). Kept whenever a process was started, even if its part
    is not there yet: a child still starting up records into it after we end."""
    if _dir is None or _launched:
        return False
    with suspended():  # our work, not the program's (untraced.py)
        try:
            os.rmdir(_dir)  # (only an empty directory: a part or a skip note keeps it)
        except OSError:
            return False
    return True


def _detached() -> bool:
    """Was the session this process belongs to detached (attach --children)?"""
    return _dir is not None and bool(_opts.get("attach")) and os.path.exists(os.path.join(_dir, DETACHED))


def _end_if_detached() -> None:
    # a part's flusher, after each flush (attach --children only): the session was detached,
    # so this part ends and this process stops following its own descendants
    if not _detached():
        return
    session = _session
    stop_following()
    if session is not None and not session.forked_away:
        session.stop(reason="detached")


def _clear(directory: str) -> None:
    """An empty parts directory (a previous run's parts would read as this run's)."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith((".ftr", ".skip.json")) or name == DETACHED:
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def start_from_environment() -> bool:
    """At interpreter start-up (the bootstrap): record this process into its own part when the
    environment says a session follows its descendants. False when it does not."""
    global _dir, _opts
    directory = os.environ.get(ENV_DIR)
    if not directory or not os.path.isdir(directory) or _session is not None:
        return False
    try:
        _opts = json.loads(os.environ.get(ENV_OPTS) or "{}")
    except ValueError:
        _opts = {}
    _dir = directory
    _disown_start_up_hook()
    if _detached():  # started as the session was detached: not one of its processes
        stop_following()
        return False
    if _is_flowtrace():
        _note_skipped("runs flowtrace itself, which records into a session of its own")
        return False
    if sys.argv[:1] == ["-c"]:  # python -c CODE: CODE is the program (filters.py)
        from .filters import record_c_program

        record_c_program()
    with suspended():  # our work, not the program's (untraced.py): signals_held's exit, a
        # contextlib generator's, showed as the child's first call under --include '*'
        _start_part("exec", _launched_by(os.environ.get(ENV_FROM, "")))
        _install_hooks()
    return True


def _disown_start_up_hook() -> None:
    """Never record the start-up hook that called us (`_boot/sitecustomize.py`: its `_chain`
    runs after the recording has started). The filter leaves out flowtrace's own directory,
    but the hook may be another copy's (a subprocess run by another environment's Python
    whose flowtrace is not the one that put the hook on PYTHONPATH): its code is marked by
    the frame that runs it, wherever its file is."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and "_flowtrace_boot" in frame.f_globals:
            mark_internal_code(frame.f_code)  # the module's code and every function in it
            return
        frame = frame.f_back


def _is_flowtrace() -> bool:
    """Is this process a flowtrace command (`python -m flowtrace`, `flowtrace`, `flowtrace-tui`)?
    A nested `flowtrace run` records its program itself: a part of ours would take the
    monitoring tool it needs (it would fail to start) and record the command, not the program."""
    orig = list(getattr(sys, "orig_argv", []))
    for i, word in enumerate(orig[:-1]):
        if word == "-m" and orig[i + 1].split(".")[0] in ("flowtrace", "flowtrace_tui"):
            return True
        if word in ("-c", "-m") or (not word.startswith("-") and i > 0):
            break
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    return name in ("flowtrace", "flowtrace-tui")


def _launched_by(text: str) -> dict[str, Any] | None:
    """The launch note a parent left (only if that parent is ours, or we replace it by exec)."""
    try:
        pid, thread, t = (int(x) for x in text.split(":"))
    except ValueError:
        return None
    if pid not in _ancestors():
        return None  # an older note, inherited through a process that did not renew it
    return {"pid": pid, "thread": thread, "t": t}


def _ancestors(levels: int = 4) -> list[int]:
    """This process, its parent, and theirs (a shell or another program that is not Python
    between a launch and this process: os.system, a script), as far as /proc tells."""
    out = [os.getpid(), os.getppid()]
    while len(out) < levels + 1 and out[-1] > 1:
        try:
            with open(f"/proc/{out[-1]}/stat", "rb") as f:
                stat = f.read()
            out.append(int(stat[stat.rindex(b")") + 2:].split()[1]))  # field 4, after "(comm)"
        except (OSError, ValueError, IndexError):
            break
    return out


def _start_part(how: str, started_by: dict[str, Any] | None, argv: list[str] | None = None) -> None:
    """Record this process into a new part. Signals wait until its handlers are in place: a
    worker terminated while it starts (Pool.terminate right after a short map) still ends
    its part with the signal instead of leaving it without an end. (A forked child holds
    them already: session.py's at-fork handler.)"""
    with signals_held():
        _open_part(how, started_by, argv)


def _open_part(how: str, started_by: dict[str, Any] | None, argv: list[str] | None = None) -> None:
    global _session
    assert _dir is not None
    path = _claim(_dir, os.getpid())
    config = RecorderConfig(args=_opts.get("args", "safe"), include=list(_opts.get("include", [])),
                            exclude=list(_opts.get("exclude", [])), seed_running=how == "fork")
    meta: dict[str, Any] = {"process": {"how": how, "started_by": started_by, "root": _dir[:-2]},
                            "platform": _opts.get("platform"), "hostname": _opts.get("hostname")}
    if how == "exec" and getattr(sys, "orig_argv", None):
        # the command line as given (at start-up sys.argv has lost `-m`'s module, and flags)
        meta["argv"] = list(sys.orig_argv[1:])
    elif argv:
        meta["argv"] = list(argv)  # a fork's: its parent's (_after_fork_in_child)
    # watch_signals: a SIGTERM flagged just before a pool worker blocks on its queue is sent
    # again by the flusher (sigwatch.py): without it Pool.terminate hung about one run in ten
    session = Session(path, config, command=how, flush_interval=float(_opts.get("flush_interval", 0.1)),
                      meta=meta, watch_signals=True)
    if _opts.get("attach"):
        # the session may be detached while this part runs: it ends "detached" at its next
        # flush, or at its exit if that comes first (so a process that outlives the detach
        # says so however soon after it ends)
        session.on_flush = session.on_exit = _end_if_detached
    session.start()
    session.install_exit_hooks()
    _session = session


def _claim(directory: str, pid: int) -> str:
    """A new part's file name: `<pid>.ftr`, or `<pid>-N.ftr` when the pid was used before
    (an exec keeps the pid; pids are reused)."""
    n = 1
    while True:
        name = f"{pid}.ftr" if n == 1 else f"{pid}-{n}.ftr"
        path = os.path.join(directory, name)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return path
        except FileExistsError:
            n += 1


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    if _c_audit_launches is not None:
        _c_audit_launches(_audit)
    else:
        sys.addaudithook(_audit)
    os._exit = _exit  # type: ignore[assignment]
    session_module.after_fork_steps.append(_after_fork_in_child)  # after the parent's session is cut loose
    os.register_at_fork(after_in_parent=_note_fork)


def _note_fork() -> None:
    global _launched
    _launched = True  # (a fork is no audit event: the child's part is its own at-fork step's)


def hold_until_main() -> None:
    """Called by the start-up hook (`_boot/sitecustomize.py`) once it is done: this thread's
    events are off until the main program starts (the `cpython.run_*` audit event that
    Modules/main.c raises for -c, -m, a script, stdin: `_audit`). Between the two, the import
    system returns from importing the hook and `site` -- 6 calls at the start of every exec'd
    child's part under --include '*', none of the program's. Only in a process run by its own
    interpreter's main (an embedding program never raises that event: its part would record
    nothing on this thread)."""
    global _held_thread
    if current() is None or _held_thread is not None:
        return
    suspended().__enter__()  # (first: the check is our work too)
    if _runs_pythons_main():
        _held_thread = threading.get_ident()
    else:
        suspended().__exit__(None, None, None)


def _runs_pythons_main() -> bool:
    try:
        return bool(getattr(sys, "orig_argv", None)) and \
            os.path.realpath(sys.executable) == os.path.realpath("/proc/self/exe")
    except (OSError, ValueError):
        return False


def _main_starts() -> None:
    global _held_thread
    if _held_thread == threading.get_ident():
        _held_thread = None
        suspended().__exit__(None, None, None)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # (with the C hook: launch events and cpython.run_* only; else every audit event of the
    # process -- imports, opens, id() calls...: a test and a set lookup)
    if _held_thread is not None and event.startswith("cpython.run_"):
        _main_starts()
    if event not in _LAUNCHES or _dir is None:
        return
    with suspended():  # our work, not the program's (untraced.py)
        _note_launch(event, args)


def _note_launch(event: str, args: tuple[Any, ...]) -> None:
    global _launched, _last_popen
    _launched = True
    os.environ[ENV_FROM] = f"{os.getpid()}:{threading.get_ident()}:{time.perf_counter_ns()}"
    try:
        # subprocess (3.13) may start its child with os.posix_spawn after its own audit event,
        # passing the same argv list: one launch, noted once (it was noted twice)
        argv = args[1] if event in ("subprocess.Popen", "os.posix_spawn") else None
        launch = None if argv is None else (threading.get_ident(), id(argv), tuple(argv))
        again = launch is not None and event == "os.posix_spawn" and launch == _last_popen
        _last_popen = launch if event == "subprocess.Popen" else None
        unfollowed = None if again else _unfollowable(event, args)
    except Exception:  # noqa: BLE001 - an odd argument never breaks the program's launch
        unfollowed = None
    if unfollowed is not None:
        _note_skipped(unfollowed[1], pid=0, argv=unfollowed[0], name=f"{os.getpid()}-{time.perf_counter_ns()}")
    session = current()
    if session is not None and event == "os.exec":
        session.stop(reason="exec")  # the new program replaces us: finish our part first


_ISOLATING = {"I": "-I (Python then ignores PYTHON* variables and user site-packages)",
              "E": "-E (Python then ignores PYTHON* variables)", "S": "-S (no site, so no start-up hook)"}


def _unfollowable(event: str, args: tuple[Any, ...]) -> tuple[list[str], str] | None:
    """A Python launched so that it cannot start its part (its argv, and why); None when it
    can, or is not a Python. Only what the launch shows: a shell script that runs `python -I`
    is not seen here."""
    if event == "subprocess.Popen":
        executable, argv, env = args[0], args[1], args[3]
    elif event in ("os.exec", "os.posix_spawn"):
        executable, argv, env = args[0], args[1], args[2]
    else:
        return None
    words = [argv] if isinstance(argv, (str, bytes)) else list(argv or [])
    words = [os.fsdecode(w) if isinstance(w, (bytes, os.PathLike)) else str(w) for w in words]
    program = os.fsdecode(executable) if executable is not None and not isinstance(executable, str) else executable
    name = os.path.basename(program or (words[0] if words else ""))
    if not name.startswith("python") or len(words) != len(argv or []) or (len(words) == 1 and " " in words[0]):
        return None  # not a Python (or a shell command line: not looked into)
    for word in words[1:]:
        if not word.startswith("-") or word.startswith("--") or word in ("-c", "-m", "-"):
            break
        for flag in word[1:]:
            if flag in _ISOLATING:
                return words, f"started with {_ISOLATING[flag]}"
            if flag in "cmWXQ":  # the rest of the word is that option's value
                break
    if env is None:
        return None
    names = {os.fsdecode(k): v for k, v in env.items()}  # (str or bytes keys: os.environb's)
    if ENV_DIR not in names:
        return words, "started with an environment of its own, without flowtrace's variables"
    if BOOT_DIR not in os.fsdecode(names.get("PYTHONPATH") or "").split(os.pathsep):
        # (venv's ensurepip child: os.environ copied, PYTHONPATH taken out of the copy): the
        # variables reach it, the start-up hook that reads them does not
        return words, "started with an environment of its own, without flowtrace's start-up hook on PYTHONPATH"
    return None


def _exit(status: int) -> None:
    """os._exit, which skips atexit: finish this process's part first (pool workers, forked
    children), then leave exactly as os._exit does."""
    session = current()
    if session is not None and not session.stopped:
        try:
            session.run_on_exit()
            session.stop(reason="exit", exit_code=status, exiting=True)
        except BaseException:
            pass
    _real_exit(status)


def _after_fork_in_child() -> None:
    # run by session.py's at-fork handler once the parent's session is cut loose, with the
    # session's signals still held: this child now records into its own part
    global _session
    if _dir is None or _session is None:
        return
    started_by = {"pid": os.getppid(), "thread": threading.get_ident(), "t": time.perf_counter_ns()}
    # the command line as the parent's part gives it (`python -m black ...`), not this child's
    # sys.argv, which `-m` has rewritten to the module's path: a fork runs the same command
    argv = _session.extra_meta.get("argv")
    _session = None
    if _detached():  # forked as the session was detached: not one of its processes
        stop_following()
        return
    with suspended():  # our work, not the program's (untraced.py)
        try:
            _start_part("fork", started_by, argv)
        except Exception as exc:
            _note_skipped(f"cannot record the forked child: {exc}")


def _note_skipped(reason: str, *, pid: int | None = None, argv: list[str] | None = None,
                  name: str | None = None) -> None:
    """`<name>.skip.json` (name: this pid): a descendant that runs untraced, and why. A launch
    seen from its parent (pid 0: not known yet) is noted by the parent, its ppid."""
    if _dir is None:
        return
    mine = pid is None
    note = {"pid": os.getpid() if mine else pid, "ppid": os.getppid() if mine else os.getpid(),
            "argv": list(getattr(sys, "orig_argv", [""])[1:] or sys.argv) if argv is None else argv, "reason": reason,
            "started_ns": time.perf_counter_ns()}
    try:
        with open(os.path.join(_dir, f"{name or os.getpid()}.skip.json"), "w") as f:
            json.dump(note, f)
    except OSError:
        pass
