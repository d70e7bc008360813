"""A recording session: a recorder, a `.ftr` writer and the flusher thread between them.

`Session(target).start()` starts recording; a daemon thread drains the recorder every
`flush_interval` seconds (sooner when many rows are pending) and appends chunks, so after
`kill -9` the file holds every call up to the last flush. `stop()` (idempotent) ends the open
calls as unfinished, writes the last chunks and the ENDS chunk. `install_exit_hooks()` makes
program exit, an uncaught exception, `sys.exit`, SIGTERM and SIGINT finish the file cleanly and
then behave exactly as they would without flowtrace (same exit code, same signal).
"""

from __future__ import annotations

import atexit
import os
import platform
import signal as _signal
import socket
import sys
import threading
import time
import weakref
from typing import Any, BinaryIO

from .ftr.writer import SessionWriter
from .recorder import make_recorder
from .recorder.base import RecorderConfig
from .untraced import Thread as _OwnThread, suspended

# Drain early when this many rows wait (bounds memory, and how stale the file is: a program
# that makes calls nonstop reaches it every ~35 ms with the C recorder, and each flush then
# takes ~25 ms; at 200_000 rows a call waited ~250 ms to reach the file, and recording was no
# faster for it -- smaller batches were slightly faster, measured on the live_latency busy loop).
PENDING_ROWS_FLUSH = 50_000
# Backpressure: past this many pending rows the recording thread flushes itself (the flusher
# thread needs the GIL too and cannot keep up with a program that makes calls nonstop).
PENDING_ROWS_CAP = PENDING_ROWS_FLUSH
_POLL_S = 0.025  # how often the flusher looks at the pending count between flushes
_HAVE_SIGMASK = hasattr(_signal, "pthread_sigmask")
_ALL_SIGNALS = _signal.valid_signals() if _HAVE_SIGMASK else set()

# The session that records this process alone (`exclusive=`: pytest --flowtrace records each
# test), if any: another session started meanwhile (a test that records with flowtrace itself)
# would record the same calls into a second file, or fail deep in the C recorder; it gets one
# clear error instead, and the exclusive session is untouched.
_exclusive: "Session | None" = None

# Every session started in this process. A forked child (os.fork, multiprocessing's fork
# workers) inherits them: the parent's file descriptor, its undrained rows, locks the flusher
# may have held at the fork, our signal handlers and atexit hooks. Each is cut loose in the
# child before any of that can write into the parent's file (_after_fork_in_child).
_started: "weakref.WeakSet[Session]" = weakref.WeakSet()


class Session:
    """Records this process into `target` (a path, or a writable binary stream)."""

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        config: RecorderConfig | None = None,
        *,
        command: str = "record",
        flush_interval: float = 0.1,
        meta: dict[str, Any] | None = None,
        recorder: str | None = None,
        exclusive: str | None = None,
    ) -> None:
        self.target = target
        self.exclusive = exclusive  # who records alone (named in the error a nested start gets)
        self.path: str | None = None if hasattr(target, "write") else os.fspath(target)  # type: ignore[arg-type]
        self.config = config or RecorderConfig()
        self.command = command
        self.flush_interval = max(0.001, float(flush_interval))
        self.extra_meta = dict(meta or {})
        self.recorder = make_recorder(self.config, recorder)
        self.recorder_name: str = self.recorder.name
        self.writer: SessionWriter | None = None
        self.started = False
        self.stopped = False
        self.error: str | None = None  # set when writing failed (the program keeps running)
        self._stop_lock = threading.RLock()
        # drain + write as one step: batches reach the file in the order they were drained
        self._flush_lock = threading.Lock()
        self._flush_owner: int | None = None  # ident of the thread inside a flush
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._hooks_installed = False
        self._prev_handlers: dict[int, Any] = {}
        self._prev_excepthook: Any = None
        self._exit_reason: dict[str, Any] | None = None
        self.pid = os.getpid()  # the process this session records (a forked child is not it)

    # ------------------------------------------------------------------ metadata
    def _meta(self, origin_ns: int, wall_ns: int) -> dict[str, Any]:
        from . import __version__

        try:
            cwd = os.getcwd()
        except OSError:
            cwd = None
        meta: dict[str, Any] = {
            "format": "flowtrace",
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "argv": list(sys.argv),
            "cwd": cwd,
            "python": sys.version,
            "executable": sys.executable,
            "platform": platform.platform(),
            "hostname": socket.gethostname(),
            "origin_ns": origin_ns,
            "started_wall_ns": wall_ns,
            "recorder": self.recorder_name,
            "flowtrace_version": __version__,
            "options": {
                "args": self.config.args,
                "include": list(self.config.include),
                "exclude": list(self.config.exclude),
                "flush_interval_s": self.flush_interval,
            },
            "command": self.command,
        }
        meta.update(self.extra_meta)
        return meta

    # ------------------------------------------------------------------ start / stop
    def start(self) -> "Session":
        """Open the file, write META, start recording and the flusher thread."""
        global _exclusive
        if self.started:
            return self
        holder = _exclusive
        if holder is not None and not holder.stopped:
            raise RuntimeError(
                f"flowtrace is already recording this process ({holder.exclusive}); "
                "a second recording cannot start inside it"
            )
        origin = time.perf_counter_ns()
        wall = time.time_ns()
        self.writer = SessionWriter(self.target, self._meta(origin, wall), origin)
        set_overflow = getattr(self.recorder, "set_overflow", None)
        if set_overflow is not None:
            set_overflow(self._overflow, PENDING_ROWS_CAP)
        flusher = _OwnThread(target=self._flush_loop, name="flowtrace-flusher", daemon=True)
        with suspended():  # starting the flusher is our work, not the program's (untraced.py)
            try:
                self.recorder.start()
            except BaseException:
                self.writer.abandon()
                raise
            self.started = True
            self.pid = os.getpid()
            _started.add(self)
            if self.exclusive:
                _exclusive = self
            self._flusher = flusher
            flusher.start()
        return self

    def _flush_loop(self) -> None:
        interval = self.flush_interval
        poll = min(_POLL_S, interval)
        last = time.monotonic()
        pending = getattr(self.recorder, "pending", None)
        while not self.stopped:
            # wake at the flush time itself, not at the next `poll` tick after it: a regular
            # period (a live view aims its reads just after our flushes) and no extra wait
            self._wake.wait(max(0.0, min(poll, interval - (time.monotonic() - last))))
            if self.stopped:
                break
            now = time.monotonic()
            if now - last >= interval or (pending is not None and pending() >= PENDING_ROWS_FLUSH):
                last = now
                self._flush(wait=False)  # (the native writer thread writes meanwhile)

    def flush(self) -> None:
        """Drain the recorder and append its rows to the file now (in the file on return)."""
        self._flush(wait=True)

    def _flush(self, wait: bool) -> None:
        with suspended(), self._flush_lock:
            self._flush_owner = threading.get_ident()
            try:
                self._flush_locked(wait)
            finally:
                self._flush_owner = None

    def _overflow(self) -> None:
        """The recorder's backpressure hook: a recording thread found PENDING_ROWS_CAP rows
        pending, so it flushes them itself (the program waits for its own trace instead of
        the buffers growing without bound). It runs inside a monitoring callback: the thread's
        own events are not recorded meanwhile. On the main thread, signals are held off until
        the flush is done: a handler running in the middle (SIGINT, SIGTERM -> stop()) would
        otherwise wait for this very flush, or see its drained rows not yet written."""
        if self.stopped or self._flush_owner == threading.get_ident():
            return  # this thread is flushing already (recorded code ran inside it): no deadlock
        mask = None
        if _HAVE_SIGMASK and threading.current_thread() is threading.main_thread():
            try:
                mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, _ALL_SIGNALS)
            except (OSError, ValueError):
                mask = None
        try:
            with self._flush_lock:  # the flusher thread may be writing: wait for it
                pending = getattr(self.recorder, "pending", None)
                if pending is None or pending() >= PENDING_ROWS_CAP // 2:  # else it just did
                    self._flush_owner = threading.get_ident()
                    try:
                        self._flush_locked()
                    finally:
                        self._flush_owner = None
        finally:
            if mask is not None:
                _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)

    def _flush_locked(self, wait: bool = False) -> None:
        writer = self.writer
        if writer is None or writer.closed:
            return
        try:
            writer.write_batch(self.recorder.drain())
            if wait:
                writer.sync()
        except Exception as exc:  # disk full, closed stream...: keep the program running
            if self.error is None:
                self.error = f"flowtrace: cannot write {self.path or 'the session'}: {exc}"
                try:
                    sys.stderr.write(self.error + "\n")
                except Exception:
                    pass

    def stop(
        self,
        *,
        reason: str = "stopped",
        exit_code: int | None = None,
        error: str | None = None,
        signal: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Stop recording, end open calls as unfinished, write the last rows and ENDS
        (with `extra`'s keys too). Idempotent: only the first call writes."""
        with suspended():  # our work, on whichever thread stops us (untraced.py)
            self._stop(reason, exit_code, error, signal, extra)

    def _stop(self, reason: str, exit_code: int | None, error: str | None, signal: str | None,
              extra: dict[str, Any] | None) -> None:
        global _exclusive
        with self._stop_lock:
            if self.stopped or not self.started:
                self.stopped = True
                return
            self.stopped = True
            if _exclusive is self:
                _exclusive = None
        self._wake.set()
        try:
            self.recorder.stop()
        except Exception:
            pass
        flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout=5)
        self.flush()
        writer = self.writer
        if writer is not None:
            try:
                writer.finish({
                    **(extra or {}), "t_end_abs": time.perf_counter_ns(), "reason": reason,
                    "exit_code": exit_code, "signal": signal, "error": error,
                })
            except Exception:
                pass
        self._uninstall_hooks()

    def leave_to_parent(self) -> None:
        """In a forked child: this session is the parent's. Stop recording into it without
        writing a byte (the inherited rows are the parent's, which writes them itself), close
        the child's copy of the file descriptor, replace locks that another thread of the
        parent may have held at the fork (only the forking thread exists here), and give back
        the signal handlers, excepthook and atexit hooks the program had."""
        global _exclusive
        self._stop_lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._flush_owner = None
        self._wake = threading.Event()
        self._flusher = None
        if self.writer is not None:
            self.writer.leave_to_parent()
        if self.started and not self.stopped:
            self.stopped = True
            try:
                self.recorder.after_fork_child()
                self.recorder.stop()  # open calls end in buffers that nobody drains
            except Exception:
                pass
        if _exclusive is self:
            _exclusive = None
        self._uninstall_hooks()

    @property
    def forked_away(self) -> bool:
        """True in a forked child of the process this session records."""
        return self.pid != os.getpid()

    def __enter__(self) -> "Session":
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.stop()
        elif issubclass(exc_type, SystemExit):
            code = exc.code if isinstance(exc.code, int) or exc.code is None else 1
            self.stop(reason="exit", exit_code=code or 0)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.stop(reason="signal", signal="SIGINT", error="KeyboardInterrupt")
        else:
            from .reprs import exception_text

            self.stop(reason="exception", exit_code=None, error=exception_text(exc))

    # ------------------------------------------------------------------ exit hooks
    def install_exit_hooks(self) -> None:
        """Finish the file at interpreter exit, on an uncaught exception, SIGTERM and SIGINT,
        then let each of them behave as without flowtrace.

        Only a signal whose action is the default one (SIG_DFL: the process dies without running
        atexit) gets a handler of ours. A signal that already has a handler is left alone:
        Python's own SIGINT handler (a C function) raises KeyboardInterrupt in the program's
        frame, which ends at the excepthook and atexit, both ours. Chaining it through a Python
        handler would put that handler's frame into the program's KeyboardInterrupt traceback."""
        if self._hooks_installed:
            return
        self._hooks_installed = True
        with suspended():  # our work (signal.signal, threading.current_thread: untraced.py)
            self._install_hooks()

    def _install_hooks(self) -> None:
        atexit.register(self._at_exit)
        self._prev_excepthook = sys.excepthook
        sys.excepthook = self._excepthook
        if threading.current_thread() is threading.main_thread():
            for sig in (_signal.SIGTERM, _signal.SIGINT):
                try:
                    prev = _signal.getsignal(sig)
                    if prev is not _signal.SIG_DFL:
                        continue  # ignored, set from C, or a handler that ends at our hooks
                    self._prev_handlers[sig] = prev
                    _signal.signal(sig, self._on_signal)
                except (ValueError, OSError):
                    pass

    def _uninstall_hooks(self) -> None:
        if not self._hooks_installed:
            return
        self._hooks_installed = False
        try:
            atexit.unregister(self._at_exit)
        except Exception:
            pass
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._prev_excepthook
        if threading.current_thread() is threading.main_thread():
            for sig, prev in self._prev_handlers.items():
                try:
                    if _signal.getsignal(sig) == self._on_signal:
                        _signal.signal(sig, prev)
                except (ValueError, OSError):
                    pass
        self._prev_handlers.clear()

    def _at_exit(self) -> None:
        info = self._exit_reason or {"reason": "exit"}
        self.stop(**info)

    def _excepthook(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            from .reprs import exception_text

            if issubclass(exc_type, KeyboardInterrupt):
                self._exit_reason = {"reason": "signal", "signal": "SIGINT", "error": "KeyboardInterrupt"}
            else:
                self._exit_reason = {"reason": "exception", "exit_code": 1, "error": exception_text(exc)}
        except Exception:
            pass
        hook = self._prev_excepthook or sys.__excepthook__
        hook(exc_type, exc, tb)

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Installed only over SIG_DFL: the default action kills the process without running
        # atexit, so finish the file, then die the same way.
        with suspended():
            self.stop(reason="signal", signal=_signal.Signals(signum).name)
            _signal.signal(signum, _signal.SIG_DFL)
            os.kill(os.getpid(), signum)


def _after_fork_in_child() -> None:
    with suspended():  # our work, not the child's program (untraced.py)
        for session in list(_started):
            session.leave_to_parent()
        _started.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
