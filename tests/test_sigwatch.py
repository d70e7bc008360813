"""flowtrace/sigwatch.py: a SIGTERM flagged while the main thread waits in C reaches its handler,
and the program's own use of signal.set_wakeup_fd is undisturbed. Each case in a fresh process
(the wakeup fd and signal handlers are process-wide)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


def test_the_program_sees_its_own_wakeup_fd_and_gets_the_watch_back_when_it_lets_go() -> None:
    done = _run("""
        import os, signal
        from flowtrace.sigwatch import SignalWatch
        signal.signal(signal.SIGTERM, lambda *a: None)
        watch = SignalWatch((signal.SIGTERM,))
        print(watch.install(), watch._r >= 0)
        r, w = os.pipe()
        os.set_blocking(w, False)
        print(signal.set_wakeup_fd(w))          # the program had none: -1, not our pipe
        print(signal.set_wakeup_fd(-1) == w)    # its own comes back to it
        print(watch._r >= 0)                    # and the watch took the wakeup fd again
        watch.uninstall()
        print(signal.set_wakeup_fd(-1))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "-1", "True", "True", "-1"]


def test_a_sigterm_flagged_while_the_main_thread_waits_reaches_its_handler() -> None:
    # The signal is taken by another thread (as when it arrives just before the main thread
    # enters a wait): Python flags it, but the main thread, waiting on a lock that nobody
    # releases, is not interrupted and would run the handler only when the wait ends (20 s).
    # The watch (polled here by a thread, as the flusher does) sends it to the main thread.
    done = _run("""
        import signal, threading, time
        from flowtrace.sigwatch import SignalWatch
        class Stop(Exception):
            pass
        def handler(signum, frame):
            watch.handled()
            raise Stop
        signal.signal(signal.SIGTERM, handler)
        watch = SignalWatch((signal.SIGTERM,))
        watch.install()
        def poller():
            while True:
                watch.poll()
                time.sleep(0.01)
        def sender():
            time.sleep(0.2)
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # taken by this thread
        threading.Thread(target=poller, daemon=True).start()
        threading.Thread(target=sender, daemon=True).start()
        lock = threading.Lock()
        lock.acquire()
        t0 = time.monotonic()
        try:
            lock.acquire(timeout=20)
        except Stop:
            print("handled", time.monotonic() - t0 < 5)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "handled True\n"
