"""Threads of flowtrace's own (the flusher, the control channel) never take the program's signals.

A signal sent to the process goes to a thread that does not block it. Without flowtrace, a
program whose main thread blocks SIGINT for a while gets it when it unblocks it; with a thread
of ours that leaves it unblocked, the kernel would hand it to that thread, Python would run the
handler in the main thread at its next bytecode, and a blocking call of the main thread would
not be interrupted. So each of our threads blocks every signal except the ones the CPU raises in
the thread that faults (blocking those would turn a crash report into a silent kill).

Standard library only: this runs inside other people's programs.
"""

from __future__ import annotations

import _signal
import contextlib
import signal
from typing import Iterator

_FAULTS = {getattr(signal, name) for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT")
           if hasattr(signal, name)}

# _signal's pthread_sigmask, not signal's: the wrapper turns every signal of the mask it returns
# into a Signals member (~115 enum lookups a call, ~0.25 ms: 70 % of a backpressure flush, which
# holds signals around every drain on the main thread). Masks stay sets of ints here.
_sigmask = getattr(_signal, "pthread_sigmask", None)
_PROGRAM_SIGNALS = frozenset(_signal.valid_signals()) - _FAULTS if _sigmask is not None else frozenset()


def block_program_signals() -> None:
    """Block, in the calling thread (one of ours, not the main thread), every signal the program
    could be sent; a no-op where threads have no signal mask."""
    if _sigmask is None:
        return
    try:
        _sigmask(signal.SIG_BLOCK, _PROGRAM_SIGNALS)
    except (OSError, ValueError):
        pass  # the thread keeps the default mask: signals still work, as before


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold the program's signals off in the calling thread until the block ends (then a
    pending one arrives as usual). A thread started inside the block is born with them blocked:
    a signal sent to the process between its creation and its own block_program_signals() would
    otherwise land on it, and a main thread waiting in C (a pool worker on its queue's semaphore)
    would not wake to run the handler.

    The mask is always given back, even when a handler's exception comes out of the blocking
    call itself: pthread_sigmask runs the handlers of signals flagged meanwhile (another
    thread's, _thread.interrupt_main) after changing the mask, so it can raise with the mask
    changed and the old one lost -- the thread then blocked the program's signals for good
    (Ctrl-C never arrived). So the old mask is read first, changing nothing, and the block is
    undone whatever happens after."""
    if _sigmask is None:
        yield
        return
    try:
        mask = _sigmask(signal.SIG_BLOCK, ())  # (a handler raising here: nothing held yet)
    except (OSError, ValueError):
        mask = None
    try:
        if mask is not None:
            block_program_signals()
        yield
    finally:
        if mask is not None:
            _sigmask(signal.SIG_SETMASK, mask)

