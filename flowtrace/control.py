"""The cooperative control channel: start and stop recording inside a running process.

A process that called `flowtrace.install()` (or was started with `flowtrace run --paused`, or
had the channel injected by `flowtrace attach`) serves a Unix socket private to its user:

    <control dir>/<pid>.sock      control dir = /run/user/<uid>/flowtrace if /run/user/<uid> is
                                  ours and private, else /tmp/flowtrace-<uid>; created 0700 and
                                  refused unless it is a real directory owned by us, mode 0700

A daemon thread accepts one request per connection: one JSON line in, one JSON line out (each
answered by a short-lived thread of its own, so a status never waits behind a start).

    {"cmd": "start", "path": "/abs/out.ftr", "args": "safe", "include": [], "exclude": [],
     "children": false}
    {"cmd": "stop"}
    {"cmd": "status"}

Replies are `{"ok": true, "state": "recording"|"idle", "pid": ..., "path": ..., ...}` or
`{"ok": false, "error": "one line"}`. The server only answers a peer of the same user (or
root), checked with SO_PEERCRED; the client checks that the socket is served by the pid it
asked for.

While idle the channel costs nothing in the traced program: no monitoring events are
registered; the thread sleeps in `accept()`. `start` records every thread (`set_events` is
interpreter-wide) with `seed_running=True`, so calls already running appear as partial calls
under their real ancestors; `stop` finishes the file (ENDS reason "detached") and the program
carries on. The channel's own threads run flowtrace code only, which the recorder never
records. With `"children": true` the recording also follows the child processes started
from then on into `<path>.d/` (flowtrace/follow.py, as `flowtrace run` does); `stop` ends
their parts too (each at its next flush).

Standard library only: this module runs inside other people's programs.
"""

from __future__ import annotations

import atexit
import json
import os
import signal as _signal
import socket
import stat
import struct
import sys
import threading
import time
from typing import Any

from . import untraced

__all__ = [
    "ControlError",
    "control_dir",
    "socket_path",
    "install",
    "uninstall",
    "finish_recording",
    "installed",
    "request",
    "channel_status",
]

PROTOCOL = 1
MAX_REQUEST = 64 * 1024  # a request is one short JSON line; anything longer is refused
RUN_USER_DIR = "/run/user/{uid}"  # systemd's per-user runtime dir (XDG_RUNTIME_DIR), when private
TMP_DIR = "/tmp/flowtrace-{uid}"  # otherwise
_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)  # Linux value when the constant is missing


class ControlError(Exception):
    """A control-channel problem, with a one-line message meant for the user.

    `missing` is True when the process simply serves no channel (so an attach may inject one).
    """

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


# --------------------------------------------------------------------------- where the socket is


def _private_dir_ok(path: str, uid: int) -> str | None:
    """None if `path` is a real directory owned by `uid` that nobody else can enter, else why not."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot inspect {path} ({exc.strerror})"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if st.st_uid != uid:
        return f"{path} is owned by uid {st.st_uid}, not {uid}"
    if st.st_mode & 0o077:
        return f"{path} is accessible to other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def control_dir(uid: int | None = None, *, create: bool = False) -> str:
    """The directory holding the control sockets of `uid`'s processes (default: ours).

    Deterministic from the uid alone (not from environment variables), so a client finds the
    socket of a process started in another shell. With `create=True` the directory is made
    0700; in every case it is refused (ControlError) unless it is private to `uid`.
    """
    if uid is None:
        uid = os.getuid()
    run_user = RUN_USER_DIR.format(uid=uid)
    if _private_dir_ok(run_user, uid) is None:
        path = os.path.join(run_user, "flowtrace")
    else:
        path = TMP_DIR.format(uid=uid)
    problem = _private_dir_ok(path, uid)
    if problem == "missing" and create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass  # made by a racing process; checked below like any other
        except OSError as exc:
            raise ControlError(f"cannot create control directory {path}: {exc.strerror}") from None
        problem = _private_dir_ok(path, uid)
    if problem == "missing":
        raise ControlError(f"control directory {path} does not exist")
    if problem is not None:
        raise ControlError(f"refusing unsafe control directory: {problem}")
    return path


def socket_path(pid: int, uid: int | None = None) -> str:
    """The control socket of process `pid` (owned by `uid`, default us)."""
    return os.path.join(control_dir(uid), f"{pid}.sock")


def _peer_cred(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    raw = conn.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)


# --------------------------------------------------------------------------- the server


class _Channel:
    """The in-process side: the socket, its thread, and the session being recorded (if any)."""

    def __init__(self, path: str, flush_interval: float) -> None:
        self.path = path
        self.pid = os.getpid()
        self.flush_interval = flush_interval
        self.lock = threading.Lock()  # guards session start/stop (socket, signal, exit)
        self.session: Any = None  # flowtrace.session.Session while recording
        self.session_path: str | None = None
        self.started_at = 0.0
        self.sessions = 0  # how many recordings this channel has started
        # what `status` says: (path or None when idle, started_at, sessions), replaced whole
        # once a start or stop is done, so status never waits for the lock (a start takes
        # seconds under load: imports, the writer, seeding every thread)
        self.shown: tuple[str | None, float, int] = (None, 0.0, 0)
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.closing = False
        self.children = False  # the recording follows the children started meanwhile

    # -- socket life ---------------------------------------------------------------------------

    def open(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._bind(sock)
            sock.listen(4)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.thread = untraced.Thread(target=self._serve, name="flowtrace-control", daemon=True)
        self.thread.start()

    def _bind(self, sock: socket.socket) -> None:
        try:
            sock.bind(self.path)
            return
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno != 98:  # EADDRINUSE: a socket file is already there
                raise ControlError(f"cannot create control socket {self.path}: {exc.strerror}") from None
        # A file with our name: a live channel of this pid (a second install) or a stale one
        # left by a process with a recycled pid that was killed. Only the stale one is removed.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(self.path)
        except OSError:
            live = False
        else:
            live = True
        finally:
            probe.close()
        if live:
            raise ControlError(f"control socket {self.path} is already being served")
        try:
            os.unlink(self.path)
            sock.bind(self.path)
        except OSError as exc:
            raise ControlError(f"cannot create control socket {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        """Stop serving and remove the socket file (only if it is still ours)."""
        self.closing = True
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                if os.getpid() == self.pid:
                    os.unlink(self.path)
            except OSError:
                pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _serve(self) -> None:
        # The accept loop. Each request is answered in a thread of its own: a start takes
        # seconds under load (imports, the writer, seeding every thread), and a status asked
        # meanwhile is answered at once, not after it (it timed out after 2 s behind a start).
        while not self.closing:
            sock = self.sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except OSError:
                if self.closing:
                    return
                time.sleep(0.05)  # e.g. EMFILE: don't spin
                continue
            try:
                answer = untraced.Thread(target=self._answer, args=(conn,), name="flowtrace-control-request",
                                         daemon=True)
                answer.start()
            except RuntimeError:  # no new thread (interpreter shutting down, a thread limit): here, then
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        # Any failure of one request is answered or dropped; it never reaches the program (this
        # thread is ours).
        try:
            self._handle(conn)
        except Exception:
            pass
        finally:
            conn.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        _pid, uid, _gid = _peer_cred(conn)
        if uid not in (os.getuid(), 0):
            _send(conn, {"ok": False, "error": "permission denied: not the same user"})
            return
        data = b""
        while b"\n" not in data and len(data) < MAX_REQUEST:
            part = conn.recv(4096)
            if not part:
                break
            data += part
        try:
            req = json.loads(data.split(b"\n", 1)[0])
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            _send(conn, {"ok": False, "error": "bad request: expected one JSON object per line"})
            return
        _send(conn, self.dispatch(req))

    # -- commands ------------------------------------------------------------------------------

    def dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        try:
            if cmd == "status":
                return self.status()
            if cmd == "start":
                return self.start(req)
            if cmd == "stop":
                return self.stop(reason="detached")
            return {"ok": False, "error": f"unknown command {cmd!r} (start, stop, status)"}
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # the program must never see our failure; the client does
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def status(self) -> dict[str, Any]:
        """The state as of the last start or stop done (one in progress is not waited for)."""
        path, started_at, sessions = self.shown
        reply: dict[str, Any] = {
            "ok": True,
            "protocol": PROTOCOL,
            "pid": self.pid,
            "python": ".".join(map(str, sys.version_info[:3])),
            "state": "idle" if path is None else "recording",
            "sessions": sessions,
        }
        if path is not None:
            reply["path"] = path
            reply["seconds"] = round(time.monotonic() - started_at, 3)
        return reply

    def start(self, req: dict[str, Any]) -> dict[str, Any]:
        path = req.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ControlError("start needs an absolute output path")
        args = req.get("args", "safe")
        if args not in ("safe", "full", "off"):
            raise ControlError(f"bad args mode {args!r} (safe, full, off)")
        include = _str_list(req.get("include", []), "include")
        exclude = _str_list(req.get("exclude", []), "exclude")
        flush = req.get("flush_interval", self.flush_interval)
        if not isinstance(flush, (int, float)) or not 0.001 <= flush <= 60:
            raise ControlError("flush_interval must be a number of seconds in [0.001, 60]")
        command = req.get("command", "attach")
        children = req.get("children", False)
        if not isinstance(children, bool):
            raise ControlError("children must be true or false")
        with self.lock:
            if self.session is not None:
                raise ControlError(f"already recording into {self.session_path}")
            from .recorder.base import RecorderConfig
            from .session import Session

            config = RecorderConfig(args=args, include=include, exclude=exclude, seed_running=True)
            meta: dict[str, Any] = {"attach": {"method": str(req.get("method", "control")), "channel_pid": self.pid}}
            if children:
                meta["parts"] = _check_followable(path)
            try:
                session = Session(path, config, command=str(command), flush_interval=float(flush), meta=meta,
                                  recorder=_seeding_recorder())
                session.start()
                session.install_excepthook()  # how the program ends, if it ends while recorded (at_exit)
                if children:
                    _follow_children(session, path, float(flush))
            except OSError as exc:
                raise ControlError(f"cannot record into {path}: {exc.strerror or exc}") from None
            except RuntimeError as exc:  # e.g. no free sys.monitoring tool id
                raise ControlError(str(exc)) from None
            self.session = session
            self.children = children
            self.session_path = path
            self.started_at = time.monotonic()
            self.sessions += 1
            self.shown = (path, self.started_at, self.sessions)
        reply = {"ok": True, "pid": self.pid, "state": "recording", "path": path}
        return {**reply, "children": True} if children else reply

    def stop(self, *, reason: str, exit_code: int | None = None, error: str | None = None,
             signal: str | None = None) -> dict[str, Any]:
        with self.lock:
            session, path = self.session, self.session_path
            if session is None:
                return {"ok": False, "error": "not recording", "state": "idle", "pid": self.pid}
            self.session = None
            self.session_path = None
            seconds = time.monotonic() - self.started_at
            try:
                session.stop(reason=reason, exit_code=exit_code, error=error, signal=signal)
                children, self.children = self.children, False
                if children:  # the children's parts end at their next flush (follow.py)
                    from . import follow

                    follow.stop_following(detached=reason == "detached")
            finally:
                self.shown = (None, 0.0, self.sessions)  # idle once the file is finished
        calls = _calls_written(session)
        reply = {"ok": True, "pid": self.pid, "state": "idle", "path": path, "calls": calls,
                 "seconds": round(seconds, 3)}
        return {**reply, "children": True} if children else reply

    def at_exit(self) -> None:
        """Interpreter shutdown: finish a recording in progress, remove the socket."""
        try:
            session = self.session
            if session is not None:
                self.stop(**session.exit_reason())  # exit N, or an uncaught exception; "exited" when unknown
        except Exception:
            pass
        self.close()


def _follow_children(session: Any, path: str, flush: float) -> None:
    """The started `session` follows the children this process starts from now on; it is
    stopped again when that cannot be set up (the parts directory cannot be made)."""
    from . import follow

    try:
        follow.enable_root(session, path, session.config, flush, attached=True)
    except OSError:
        follow.stop_following()
        session.stop(reason="stopped")
        raise


def _check_followable(path: str) -> str:
    """META `parts` for a recording into `path` that follows children; ControlError when this
    process already follows its own into a session (it is recorded by `flowtrace run`)."""
    from . import follow

    if follow.following():
        raise ControlError("this process's children are followed by another flowtrace session already")
    return os.path.basename(path) + ".d"


def _seeding_recorder() -> str:
    """The recorder for an attach: the active one if it seeds the calls already running
    (partial calls under their real ancestors), else the Python recorder, which does."""
    from .recorder import active_recorder_name

    name = active_recorder_name()
    if name == "c":
        try:
            from .recorder.c import CRecorder
        except Exception:
            return "python"
        if not callable(getattr(CRecorder, "_seed_running", None)):
            return "python"
    return name


def _calls_written(session: Any) -> int | None:
    writer = getattr(session, "writer", None) or getattr(session, "_writer", None)
    n = getattr(writer, "calls_written", None)
    return n if isinstance(n, int) else None


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ControlError(f"{what} must be a list of patterns")
    return list(value)


def _send(conn: socket.socket, obj: dict[str, Any]) -> None:
    conn.sendall(json.dumps(obj).encode() + b"\n")


_channel: _Channel | None = None
_install_lock = threading.Lock()


def install(*, signal: int | None = None, flush_interval: float = 0.1) -> str:
    """Serve this process's control channel so `flowtrace attach PID` can start recording.

    Idempotent and thread-safe; returns the socket path. Costs nothing until a recording is
    started (a sleeping daemon thread, no monitoring events). With `signal=` (e.g.
    `signal.SIGUSR2`; only from the main thread) that signal toggles recording into
    `flowtrace-<pid>-<n>.ftr` in the current directory.

    The socket is removed at exit, and on SIGTERM when that would otherwise kill the process
    without running atexit (then the process still dies by SIGTERM). Sockets left by processes
    that are gone (SIGKILL, or a channel injected without the SIGTERM hook) are removed here.
    """
    return _install(signal=signal, flush_interval=flush_interval, on_sigterm=True)


def _install(*, signal: int | None, flush_interval: float, on_sigterm: bool) -> str:
    global _channel
    with _install_lock:
        if _channel is not None and _channel.pid == os.getpid() and not _channel.closing:
            channel = _channel
        else:
            directory = control_dir(create=True)
            remove_stale_sockets(directory)
            channel = _Channel(os.path.join(directory, f"{os.getpid()}.sock"), flush_interval)
            channel.open()
            _channel = channel
            atexit.register(channel.at_exit)
            if on_sigterm:
                _hook_sigterm()
    if signal is not None:
        _signal.signal(signal, _toggle_handler)
    return channel.path


def remove_stale_sockets(directory: str) -> list[str]:
    """Remove the `<pid>.sock` files in our control directory whose process is gone; returns
    their names. A live pid's socket stays, served or not (it may be binding it right now)."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        pid_text, dot, ext = name.partition(".")
        if ext != "sock" or not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        path = os.path.join(directory, name)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
                removed.append(name)
        except OSError:
            pass  # gone meanwhile, or not ours to remove
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists (another user's)
        return True
    return True


def _hook_sigterm() -> None:
    """SIGTERM with its default action ends the process without atexit: remove the socket (and
    finish a recording) first, then die by SIGTERM as before. A SIGTERM handler the program has
    is left alone (it ends at atexit, or decides otherwise). Main thread only (Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if _signal.getsignal(_signal.SIGTERM) is _signal.SIG_DFL:
            _signal.signal(_signal.SIGTERM, _on_sigterm)
    except (OSError, ValueError):
        pass


def _on_sigterm(signum: int, frame: Any) -> None:
    with untraced.suspended():  # our work, on the program's main thread
        channel = _channel
        if channel is not None and channel.pid == os.getpid():
            try:
                if channel.session is not None:
                    channel.stop(reason="signal", signal="SIGTERM")
            except Exception:
                pass
            channel.close()
        _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _unhook_sigterm() -> None:
    if threading.current_thread() is threading.main_thread():
        try:
            if _signal.getsignal(_signal.SIGTERM) is _on_sigterm:
                _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def _toggle_handler(signum: int, frame: Any) -> None:
    # Runs in the main thread between two bytecodes. Starting a session spawns threads and may
    # take a moment: hand it to a short-lived thread so the program is not held up here.
    untraced.Thread(target=_toggle, name="flowtrace-toggle", daemon=True).start()


def _toggle() -> None:
    channel = _channel
    if channel is None:
        return
    if channel.session is not None:
        channel.stop(reason="detached")
        return
    path = os.path.abspath(f"flowtrace-{os.getpid()}-{channel.sessions + 1}.ftr")
    reply = channel.dispatch({"cmd": "start", "path": path, "method": "signal"})
    if not reply.get("ok"):
        try:
            sys.stderr.write(f"flowtrace: cannot start recording: {reply.get('error')}\n")
        except Exception:
            pass


def finish_recording(*, reason: str = "exit", exit_code: int | None = None, error: str | None = None,
                     signal: str | None = None) -> None:
    """End a recording in progress with these ENDS fields (no-op when idle). For a launcher that
    knows how the program ended (`flowtrace run --paused`), at its exit."""
    channel = _channel
    if channel is not None and channel.session is not None:
        try:
            channel.stop(reason=reason, exit_code=exit_code, error=error, signal=signal)
        except Exception:
            pass


def installed() -> bool:
    """Whether this process serves a control channel."""
    return _channel is not None and _channel.pid == os.getpid() and not _channel.closing


def uninstall() -> None:
    """Stop a recording in progress (reason "detached") and stop serving the channel."""
    global _channel
    with _install_lock:
        channel, _channel = _channel, None
    if channel is not None:
        try:
            atexit.unregister(channel.at_exit)
        except Exception:
            pass
        if channel.session is not None:
            channel.stop(reason="detached")
        channel.close()
        _unhook_sigterm()


def _after_fork_in_child() -> None:
    # The child has no control thread and its pid differs: it starts without a channel (it may
    # install its own). The parent's session object is not the child's to finish.
    global _channel
    _channel = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _injected() -> str:
    """Entry point of the code that `flowtrace attach` injects: serve the channel, nothing more
    (no SIGTERM handler in a program that did not ask for flowtrace: it would die only at its
    next bytecode instead of at once; a socket it leaves is removed by the next install)."""
    return _install(signal=None, flush_interval=0.1, on_sigterm=False)


# --------------------------------------------------------------------------- the client


def target_uid(pid: int) -> int:
    """The real uid of process `pid` (ControlError if there is no such process)."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except FileNotFoundError:
        raise ControlError(f"no process with pid {pid}") from None


def request(pid: int, req: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to the control channel of `pid` and return its reply.

    Raises ControlError with a one-line message when there is no channel (`.missing` is then
    True), the socket is not served by `pid`, or the exchange fails.
    """
    try:
        path = socket_path(pid, target_uid(pid))
    except ControlError as exc:
        raise ControlError(str(exc), missing=True) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"pid {pid} has no flowtrace control channel", missing=True) from None
        except OSError as exc:
            raise ControlError(f"cannot connect to {path}: {exc.strerror or exc}") from None
        peer_pid, _uid, _gid = _peer_cred(sock)
        if peer_pid != pid:
            raise ControlError(f"{path} is served by pid {peer_pid}, not {pid}")
        sock.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while b"\n" not in data:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    except TimeoutError:
        raise ControlError(f"pid {pid} did not answer on its control channel within {timeout:g} s") from None
    except OSError as exc:
        raise ControlError(f"control channel of pid {pid}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError(f"pid {pid} sent an unreadable reply on its control channel") from None
    if not isinstance(reply, dict):
        raise ControlError(f"pid {pid} sent an unreadable reply on its control channel")
    return reply


def channel_status(pid: int, *, timeout: float = 2.0) -> dict[str, Any] | None:
    """The channel's status reply, or None when `pid` serves no channel."""
    try:
        return request(pid, {"cmd": "status"}, timeout=timeout)
    except ControlError as exc:
        if exc.missing:
            return None
        raise
