"""A signal that reached a process whose main thread is blocked in C still gets handled.

Python runs a signal handler on the main thread, at its next bytecode, or when the signal
interrupts the system call the main thread waits in (EINTR). A signal that arrives just before
the main thread enters a blocking wait that Python does not retry with a check (a
multiprocessing pool worker taking its queue's lock: `sem_wait`) is flagged and then waits as
long as the wait does: with a handler of ours for SIGTERM, Pool.terminate hung in about one run
in ten of a fork Pool under load (a worker that started late was just reaching its queue).

So a session that handles SIGTERM in a followed child also watches for it: the wakeup fd
(`signal.set_wakeup_fd`, only when the program has none) receives a byte for every signal
Python's C handler catches; the flusher thread, which polls anyway, reads them, and if the
handler has not run a moment later it sends the signal again to the main thread itself
(`pthread_kill`), which interrupts the wait. A program that sets its own wakeup fd later
(asyncio, multiprocessing's forkserver) replaces ours, and then it is not watched (as without
flowtrace) until it gives it up again (`set_wakeup_fd(-1)`: a forkserver's child does so
first thing, and is a pool worker): `signal.set_wakeup_fd` is wrapped to take it back then,
and to answer the program as if ours had never been there.

Standard library only: this runs inside other people's programs.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from .fds import out_of_the_way

_GRACE_S = 0.05  # how long a flagged signal may wait for its handler before we send it again
_real_set_wakeup_fd = signal.set_wakeup_fd
_active: "SignalWatch | None" = None  # the watch of this process (one session handles signals)


def _set_wakeup_fd(fd: int, /, *, warn_on_full_buffer: bool = True) -> int:
    """signal.set_wakeup_fd as the program sees it: our pipe is never reported as the previous
    fd, and when the program gives its own up (-1), the watch takes the wakeup fd back."""
    old = _real_set_wakeup_fd(fd, warn_on_full_buffer=warn_on_full_buffer)
    watch = _active
    if watch is not None:
        if old == watch._w and old >= 0:
            old = -1  # ours: the program had none
        if fd == -1 and threading.current_thread() is threading.main_thread():
            watch.install()
    return old


class SignalWatch:
    """Watches for `signums` on behalf of the handler that calls `handled()`."""

    def __init__(self, signums: tuple[int, ...]) -> None:
        self.signums = frozenset(int(s) for s in signums)
        self._r = self._w = -1
        self._main = threading.main_thread().ident
        self._seen: dict[int, float] = {}  # signal -> when it was first seen unhandled
        self._handled = False

    def install(self) -> bool:
        """On the main thread: take the wakeup fd if the program has none. False if not."""
        global _active
        if not hasattr(signal, "pthread_kill") or threading.current_thread() is not threading.main_thread():
            return False
        _active = self
        if signal.set_wakeup_fd is not _set_wakeup_fd:
            signal.set_wakeup_fd = _set_wakeup_fd  # type: ignore[assignment]
        self._close()  # a pipe the program displaced earlier
        r, w = (out_of_the_way(fd) for fd in os.pipe())  # (not the program's next numbers: fds.py)
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        try:
            old = _real_set_wakeup_fd(w, warn_on_full_buffer=False)
        except (ValueError, OSError):
            os.close(r)
            os.close(w)
            return False
        if old != -1:  # the program's: leave it (and take it back when it gives it up)
            _real_set_wakeup_fd(old)
            os.close(r)
            os.close(w)
            return False
        self._r, self._w = r, w
        return True

    def handled(self) -> None:
        """The handler runs: no need to send the signal again."""
        self._handled = True

    def poll(self) -> None:
        """From the flusher thread: read what arrived; send a signal whose handler has not run
        within the grace time to the main thread again."""
        if self._r < 0 or self._handled:
            return
        try:
            data = os.read(self._r, 512)
        except (BlockingIOError, InterruptedError, OSError):
            data = b""
        now = time.monotonic()
        for signum in self.signums.intersection(data):
            self._seen.setdefault(signum, now)
        for signum, since in list(self._seen.items()):
            if now - since >= _GRACE_S and self._main is not None:
                self._seen[signum] = now  # again after another grace time if still not handled
                try:
                    signal.pthread_kill(self._main, signum)
                except (OSError, ValueError):
                    pass

    def uninstall(self) -> None:
        """On the main thread: give the wakeup fd back (unless the program replaced it)."""
        global _active
        if _active is self:
            _active = None
        if self._r < 0:
            return
        try:
            current = _real_set_wakeup_fd(-1)
        except (ValueError, OSError):
            return  # not the main thread: the pipe stays (the wakeup fd may still write to it)
        if current != self._w:
            _real_set_wakeup_fd(current)  # the program's own
        self._close()

    def _close(self) -> None:
        """Close our pipe (the wakeup fd no longer writes to it)."""
        for fd in (self._r, self._w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._r = self._w = -1
