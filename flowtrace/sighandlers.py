"""The program sees its signals' handlers as it would without flowtrace.

A session handles SIGTERM and SIGINT where their action is the default one, to finish its file
before the process dies (Session._on_signal). Seen by the program, that handler would change
what it does: `signal.getsignal(SIGTERM)` would not be SIG_DFL, so a program or library that
installs its own graceful handler only over the default action (`if signal.getsignal(SIGTERM)
is SIG_DFL: ...`) would leave ours in place and never shut down its way. So, while one of ours
is installed, `signal.getsignal` and `signal.signal` (the value it returns: the previous
handler) answer SIG_DFL for it; a handler the program sets replaces ours, as it would the
default action. (sigwatch.py does the same for the wakeup fd.)

Standard library only: this runs inside other people's programs.
"""

from __future__ import annotations

import functools
import signal
from typing import Any

_real_getsignal = signal.getsignal
_real_signal = signal.signal
_ours: dict[int, Any] = {}  # signal number -> the handler of ours installed for it


def hide(signum: int, handler: Any) -> None:
    """`handler`, ours, is installed for `signum` over the default action: show SIG_DFL."""
    _ours[int(signum)] = handler
    if signal.getsignal is not _getsignal:
        signal.getsignal = _getsignal
        signal.signal = _signal


def unhide(signum: int) -> None:
    """Ours is no longer installed for `signum` (given back at stop)."""
    _ours.pop(int(signum), None)


def _shown(signalnum: Any, handler: Any) -> Any:
    try:
        ours = _ours.get(int(signalnum))
    except (TypeError, ValueError):
        return handler
    return signal.SIG_DFL if ours is not None and handler == ours else handler


@functools.wraps(_real_getsignal)
def _getsignal(signalnum, /):  # type: ignore[no-untyped-def]
    return _shown(signalnum, _real_getsignal(signalnum))


@functools.wraps(_real_signal)
def _signal(signalnum, handler, /):  # type: ignore[no-untyped-def]
    return _shown(signalnum, _real_signal(signalnum, handler))
