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
import contextlib
import os
import signal as _signal
import sys
import threading
import time
import weakref
from typing import Any, BinaryIO, Iterator

from .ftr.writer import SessionWriter
from .recorder import make_recorder
from .recorder.base import RecorderConfig
from . import sighandlers
from .sigmask import held as _held
from .sigwatch import SignalWatch
from .untraced import Thread as _OwnThread, collect_in_own_work, on_main_thread, suspended

try:  # the audit hook in C (audit.c): Python is called only while a fork resume is due
    from ._crecorder import audit_every as _c_audit_every  # type: ignore[attr-defined]
except ImportError:  # no C extension: a Python hook, called at every event from the first fork on
    _c_audit_every = None

# Drain early when this many rows wait (bounds memory, and how stale the file is: a program
# that makes calls nonstop reaches it every ~35 ms with the C recorder, and each flush then
# takes ~25 ms; at 200_000 rows a call waited ~250 ms to reach the file, and recording was no
# faster for it -- smaller batches were slightly faster, measured on the live_latency busy loop).
PENDING_ROWS_FLUSH = 50_000
# Backpressure: past this many pending rows the recording thread flushes itself (the flusher
# thread needs the GIL too and cannot keep up with a program that makes calls nonstop).
PENDING_ROWS_CAP = PENDING_ROWS_FLUSH
# How often the flusher wakes between its timed flushes, where it has something to look at then:
# a signal watch (sigwatch.py), or a recorder without a backpressure hook (whose pending count
# it looks at: PENDING_ROWS_FLUSH). Else it wakes for the timed flush alone: the recording
# threads drain at PENDING_ROWS_CAP themselves, at the event that reaches it, so a look at the
# count found nothing to do -- and took the GIL 40 times a second to find it (each time the
# program's thread handed it over and waited to get it back: two thread wake-ups).
_POLL_S = 0.025

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


def platform_text() -> str:
    """platform.platform() as it reads on Linux with glibc (`Linux-6.1.0-x86_64-with-glibc2.36`),
    from os.uname and confstr: platform.platform() runs `uname -p` in a subprocess to learn the
    processor (~8 ms, before the program starts), which it then leaves out where it is unknown.
    Elsewhere, platform.platform() itself."""
    u = os.uname()
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        libc = ""
    if u.sysname == "Linux" and libc.startswith("glibc "):
        return f"{u.sysname}-{u.release}-{u.machine}-with-glibc{libc[6:]}".replace(" ", "_")
    import platform

    return platform.platform()


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """On the main thread, hold the program's signals off until the block ends (then they
    arrive as usual); elsewhere (Python runs handlers on the main thread only) nothing."""
    if on_main_thread():  # (also on our hidden flusher: untraced.Thread)
        with _held():
            yield
    else:
        yield


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
        watch_signals: bool = False,
    ) -> None:
        self.target = target
        # a followed child's part: the flusher makes sure a SIGTERM reaches our handler even
        # when the main thread waits in C (sigwatch.py)
        self.watch_signals = watch_signals
        self._watch: SignalWatch | None = None
        self.exclusive = exclusive  # who records alone (named in the error a nested start gets)
        self.path: str | None = None if hasattr(target, "write") else os.fspath(target)  # type: ignore[arg-type]
        self.config = config or RecorderConfig()
        self.command = command
        self.flush_interval = max(0.001, float(flush_interval))
        self.extra_meta = dict(meta or {})
        self.recorder = make_recorder(self.config, recorder)
        self.recorder_name: str = self.recorder.name
        self.writer: SessionWriter | None = None
        self.meta: dict[str, Any] = {}  # the META written at start
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
        self._fork_paused = False  # our threads are ended for a fork (pause_for_fork)
        self.on_flush: Any = None  # called by the flusher after each timed flush (follow.py)
        self.on_exit: Any = None  # called at exit before the end is written; it may stop first (follow.py)

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
            # where `<frozen os>`'s source is (the explorer shows frozen modules' code from it)
            "stdlib": getattr(sys, "_stdlib_dir", None),
            # (a followed child is given its root's)
            "platform": self.extra_meta.get("platform") or platform_text(),
            "hostname": self.extra_meta.get("hostname") or os.uname().nodename,
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
        self.meta = self._meta(origin, wall)  # (follow.py hands some of it to child processes)
        self.writer = SessionWriter(self.target, self.meta, origin)
        set_origin = getattr(self.recorder, "set_origin", None)
        if set_origin is not None:  # (the C recorder encodes its payloads with times relative to it)
            set_origin(origin)
        set_overflow = getattr(self.recorder, "set_overflow", None)
        if set_overflow is not None:
            set_overflow(self._overflow, PENDING_ROWS_CAP)
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
            collect_in_own_work(True, _flush_before_collection)  # (finalizers in our work; classes)
            self._start_flusher()
        return self

    def _start_flusher(self) -> None:
        flusher = _OwnThread(target=self._flush_loop, name="flowtrace-flusher", daemon=True, hidden=True)
        self._flusher = flusher
        flusher.start()

    def pause_for_fork(self) -> int:
        """Before a fork of this process: end our threads (the flusher, the native writer), so
        that the program forks with its own threads only -- as without flowtrace: Python warns
        at a fork of a process that has several ("is multi-threaded, use of fork() may lead to
        deadlocks", counted from /proc/self/stat), and the child inherits no lock one of them
        held. Returns how many threads ended; resume_after_fork starts them again."""
        if not self.started or self.stopped or self.forked_away or self._fork_paused:
            return 0
        self._fork_paused = True
        ended = 0
        flusher, self._flusher = self._flusher, None
        if flusher is not None and flusher.ident != threading.get_ident():
            self._wake.set()
            flusher.join(timeout=5)
            ended += not flusher.is_alive()
        self._flush(wait=True)  # nothing waits in our buffers while the threads are away
        writer = self.writer
        if writer is not None and writer.pause_thread():
            ended += 1
        return ended

    def resume_after_fork(self) -> None:
        """After the fork, in the parent: our threads again (the rows recorded meanwhile wait
        in the recorder's buffers, as between two flushes)."""
        if not self._fork_paused:
            return
        self._fork_paused = False
        if self.stopped:
            return
        with suspended():
            self._wake.clear()
            if self.writer is not None:
                self.writer.resume_thread()
            self._start_flusher()

    def _flush_loop(self) -> None:
        interval = self.flush_interval
        last = time.monotonic()
        pending = getattr(self.recorder, "pending", None)
        if hasattr(self.recorder, "set_overflow"):
            pending = None  # (the recording threads drain at the cap themselves: _POLL_S)
        while not self.stopped and not self._fork_paused:
            watch = self._watch  # (installed after the start, or given up, at any time)
            due = interval - (time.monotonic() - last)
            # wake at the flush time itself, not at the next `_POLL_S` tick after it: a regular
            # period (a live view aims its reads just after our flushes) and no extra wait
            self._wake.wait(max(0.0, min(_POLL_S, due) if pending is not None or watch is not None else due))
            if self.stopped or self._fork_paused:
                break
            watch = self._watch
            if watch is not None:
                watch.poll()  # a signal flagged while the main thread waits in C (sigwatch.py)
            now = time.monotonic()
            if now - last >= interval or (pending is not None and pending() >= PENDING_ROWS_FLUSH):
                last = now
                self._flush(wait=False)  # (the native writer thread writes meanwhile)
                _call_hook(self.on_flush)  # (a failure never ends the flusher)

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
        if _resume_due:
            _resume_all()  # our threads, away since a fork (_after_fork_in_parent)
        self._flush_here(PENDING_ROWS_CAP // 2)  # (fewer pending: the flusher just did)

    def _flush_before_collection(self) -> None:
        """A collection that could free a class is about to start (collect.c): the batch holds
        references to classes until its drain, so release them from it first (the entries that
        reference them made into texts in place: recorder.release_classes), or when that cannot
        be done now, drain it -- the program's classes die when they would without us. Runs with
        this thread's events off, outside our work."""
        if self.stopped or self.forked_away or self._fork_paused or self._flush_owner == threading.get_ident():
            return
        if not getattr(self.recorder, "holds_classes", False):
            return
        release = getattr(self.recorder, "release_classes", None)
        done = False
        if release is not None:
            # Only the recorder's own lock (release takes it, or gives up while a drain holds it):
            # the batch a flush is writing is drained already, and the release changes the one
            # being recorded. (Signals held: a handler calling stop() would wait for that lock.)
            with signals_held():
                done = release()
        if not done:
            self._flush_here(1)

    def _flush_here(self, rows: int) -> None:
        """Drain and write on this thread when at least `rows` rows are pending, signals held
        off meanwhile (a handler calling stop() would wait for this very flush)."""
        with signals_held(), self._flush_lock:  # the flusher thread may be writing: wait for it
            pending = getattr(self.recorder, "pending", None)
            if pending is None or pending() >= rows:
                self._flush_owner = threading.get_ident()
                try:
                    self._flush_locked()
                finally:
                    self._flush_owner = None

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
        exiting: bool = False,
    ) -> None:
        """Stop recording, end open calls as unfinished, write the last rows and ENDS
        (with `extra`'s keys too). Idempotent: only the first call writes. Signals wait until
        ENDS is written: SIGTERM in the middle (Pool.terminate while a worker leaves through
        os._exit, or sent twice) found the stop under way and killed the process before it.
        `exiting`: the process ends after this (atexit, os._exit): the recorder's callbacks are
        turned off, not removed (common.release_tool_id)."""
        if self.forked_away:
            return  # a forked child: the session and its file are the parent's (leave_to_parent)
        with suspended(), signals_held():  # our work, on whichever thread stops us (untraced.py)
            self._stop(reason, exit_code, error, signal, extra, exiting)

    def _stop(self, reason: str, exit_code: int | None, error: str | None, signal: str | None,
              extra: dict[str, Any] | None, exiting: bool) -> None:
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
            self.recorder.stop(exiting=exiting)
        except Exception:
            pass
        collect_in_own_work(False)
        flusher = self._flusher
        if flusher is not None and flusher.ident != threading.get_ident():
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
            collect_in_own_work(False)
        if _exclusive is self:
            _exclusive = None
        # The program's own signal actions come back (SIG_DFL: the kernel kills). A signal sent
        # to the child before this is held pending by the fork mask (_before_fork), so it meets
        # them, not ours.
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

    def install_excepthook(self) -> None:
        """Only the uncaught-exception hook of `install_exit_hooks`, for a session that someone
        else finishes at exit (an attached process: the control channel's atexit) and that is
        not to touch the program's signals: with it, `exit_reason()` can tell a program that
        returned (exit 0) from one that ended by an uncaught exception. Given back at stop."""
        if self._hooks_installed:
            return
        self._hooks_installed = True
        self._prev_excepthook = sys.excepthook
        sys.excepthook = self._excepthook

    def _install_hooks(self) -> None:
        atexit.register(self._at_exit)
        self._prev_excepthook = sys.excepthook
        sys.excepthook = self._excepthook
        if on_main_thread():
            for sig in (_signal.SIGTERM, _signal.SIGINT):
                try:
                    prev = _signal.getsignal(sig)
                    if prev is not _signal.SIG_DFL:
                        continue  # ignored, set from C, or a handler that ends at our hooks
                    self._prev_handlers[sig] = prev
                    _signal.signal(sig, self._on_signal)
                    sighandlers.hide(sig, self._on_signal)  # (the program sees SIG_DFL still)
                except (ValueError, OSError):
                    pass
            if self.watch_signals and self._prev_handlers:
                self._watch = SignalWatch(tuple(self._prev_handlers))  # the flusher polls it
                self._watch.install()  # (or later, when the program gives its wakeup fd up)

    def _uninstall_hooks(self) -> None:
        """Give back atexit, sys.excepthook and the signal handlers."""
        if not self._hooks_installed:
            return
        self._hooks_installed = False
        try:
            atexit.unregister(self._at_exit)
        except Exception:
            pass
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._prev_excepthook
        if on_main_thread():
            for sig, prev in self._prev_handlers.items():
                sighandlers.unhide(sig)
                try:
                    if _signal.getsignal(sig) == self._on_signal:
                        _signal.signal(sig, prev)
                except (ValueError, OSError):
                    pass
            watch, self._watch = self._watch, None
            if watch is not None:
                watch.uninstall()
        self._prev_handlers.clear()

    def expect_end(self, **info: Any) -> None:
        """How the program ended, from whoever knows better than the exit hooks (the runner,
        in a forked child that ran on to the program's end): `stop`'s keywords at exit."""
        self._exit_reason = dict(info)

    def run_on_exit(self) -> None:
        """The on_exit hook (follow.py), before the end is written at atexit or os._exit: a
        stop there wins, as stop() writes only once; a failure of it still lets the end be written."""
        _call_hook(self.on_exit)

    def _at_exit(self) -> None:
        self.run_on_exit()
        self.stop(**self.exit_reason(), exiting=True)

    def exit_reason(self) -> dict[str, Any]:
        """`stop()`'s keywords for the program's exit, at its atexit: what the excepthook (or
        `expect_end`) learnt, else `_ended_at_exit()`."""
        return self._exit_reason or self._ended_at_exit()

    def _ended_at_exit(self) -> dict[str, Any]:
        """ENDS of a program reaching atexit without an uncaught exception: the status a
        SystemExit asked for as it left the main program (the recorder saw it go: ExitStatuses),
        else 0, for the program returned. Unknown (no exit_code) when the recorder cannot tell,
        or when sys.excepthook is no longer ours (an uncaught exception may have gone to it)."""
        statuses = getattr(self.recorder, "exit_statuses", None)
        if statuses is None:
            return {"reason": "exit"}
        status = statuses.get(threading.get_ident())
        if status is None and sys.excepthook == self._excepthook:
            status = 0
        return {"reason": "exit", "exit_code": status}

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
        # atexit, so finish the file (unless this is a forked child: the file is its parent's,
        # stop() does nothing there), then die the same way.
        with suspended():
            watch = self._watch
            if watch is not None:
                watch.handled()
            self.stop(reason="signal", signal=_signal.Signals(signum).name, exiting=True)
            _signal.signal(signum, _signal.SIG_DFL)
            os.kill(os.getpid(), signum)


def _flush_before_collection() -> None:
    """collect.c's hook: every recording session drains before a collection that could free a
    class its batch holds."""
    for session in list(_started):
        session._flush_before_collection()


def _call_hook(hook: Any) -> None:
    """Call one of follow.py's hooks (Session.on_flush, on_exit), if set; its failure is ours
    and is dropped: it must not end the flusher nor keep the end from being written."""
    if hook is not None:
        try:
            hook()
        except Exception:  # noqa: BLE001 - our hook
            pass


# The signals a session handles (install_exit_hooks), held off in the forking thread from just
# before a fork until the child has taken over its handlers: a Python-level handler is
# inherited by the child, and CPython clears every signal flagged in the child before its
# at-fork handlers run (_PySignal_AfterFork), so a SIGTERM reaching a forked pool worker in
# that window would be dropped and the worker never end. Held, it stays pending in the kernel
# and is delivered once the child unblocks it. (The Pool.terminate hang seen under load was
# another window, closed by sigwatch.py.)
_HOOKED = (_signal.SIGTERM, _signal.SIGINT)
_fork_masks: dict[int, Any] = {}  # forking thread's ident -> the mask to restore after the fork

# Steps a forked child runs after its parent's sessions were cut loose and before the held
# signals are let through (follow.py starts the child's own part there).
after_fork_steps: list[Any] = []


def _before_fork() -> None:
    with suspended():  # our work, not the program's (untraced.py)
        sessions = list(_started)
        before = _own_thread_count()
        ended = sum(s.pause_for_fork() for s in sessions)
        if ended and before:
            _wait_threads_gone(before - ended)
    if hasattr(_signal, "pthread_sigmask") and any(s._hooks_installed for s in sessions):
        try:
            _fork_masks[threading.get_ident()] = _signal.pthread_sigmask(_signal.SIG_BLOCK, _HOOKED)
        except (OSError, ValueError):
            pass


def _own_thread_count() -> int:
    """The process's OS threads (0 where that cannot be read)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _wait_threads_gone(count: int) -> None:
    """Until the process has at most `count` OS threads, for at most ~20 ms: a joined Python
    thread (3.12) still exists for a moment after join() returns, and Python counts OS threads
    for its warning."""
    for _ in range(100):
        if _own_thread_count() <= count:
            return
        time.sleep(0.0002)


# From 3.13 Python counts the threads for its warning after the at-fork handlers of the parent
# have run (3.12: before them), so our threads come back a little later there: at the
# process's next audit event (a file opened, a thread or process started...), at a backpressure
# flush (_overflow), or never if the session stops first (stop() writes without them).
_RESUME_LATER = sys.version_info >= (3, 13)
_resume_due = False
_audit_hooked = False


def _after_fork_in_parent() -> None:
    global _resume_due, _audit_hooked
    _release_fork_mask()
    if not _RESUME_LATER:
        _resume_all()
        return
    if not any(s._fork_paused for s in list(_started)):
        return
    _resume_due = True
    if _c_audit_every is not None:
        _c_audit_every(_resume_on_audit)  # (cleared by _resume_all)
    elif not _audit_hooked:
        _audit_hooked = True
        sys.addaudithook(_resume_on_audit)


def _resume_on_audit(event: str, args: Any) -> None:
    # every audit event of the process while a resume is due (the C hook); the Python hook is
    # called at every event from the first fork on: one global test while no fork is pending
    if _resume_due:
        _resume_all()


def _resume_all() -> None:
    global _resume_due
    _resume_due = False
    if _c_audit_every is not None:
        _c_audit_every(None)
    with suspended():  # our work, not the program's (untraced.py)
        for session in list(_started):
            session.resume_after_fork()


def _release_fork_mask() -> None:
    mask = _fork_masks.pop(threading.get_ident(), None)
    if mask is not None:
        try:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        except (OSError, ValueError):
            pass


def _after_fork_in_child() -> None:
    try:
        with suspended():  # our work, not the child's program (untraced.py)
            for session in list(_started):
                session.leave_to_parent()
            _started.clear()
            for step in list(after_fork_steps):
                try:
                    step()
                except Exception:  # noqa: BLE001 - never break the program's fork
                    pass
    finally:
        _release_fork_mask()  # a signal sent meanwhile arrives now, to the handlers in place


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
