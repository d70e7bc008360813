"""The session's own file descriptors kept out of the numbers the program uses.

The kernel gives each new file descriptor the lowest free number. A session that opened its
file at 3 (and, in a followed child, its signal pipe at 4 and 5) took the numbers the program's
own first files would have had: CPython's test_subprocess found them open in the children it
checks (`close_fds`, `pass_fds`, a pipe's ends expected closed: five failures, all passing
without flowtrace), and a program that hands a child "fd 3" by number, or dup2()s onto it,
would write into our session. So ours move high, to numbers a program reaches only with
hundreds of files open; they stay close-on-exec as Python opened them.

Not hidden: a program listing every open descriptor (/proc/self/fd, fstat over all numbers)
still sees them (README, Limitations). Standard library only: this runs inside other people's
programs.
"""

from __future__ import annotations

import os

try:
    import fcntl
    import resource
except ImportError:  # (not a POSIX system: descriptors stay where the system put them)
    fcntl = resource = None  # type: ignore[assignment]

_HIGH = 512  # the lowest number ours take, when the limit on open files allows it


def _lowest_number() -> int:
    """Where ours go: 512, or half the soft limit on open files when that is lower (the
    numbers between stay the program's, and a low limit still leaves room above)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _HIGH
    return max(3, min(_HIGH, soft // 2))


def out_of_the_way(fd: int) -> int:
    """`fd` moved to a high number (close-on-exec): the new number, the old one closed. Where
    that cannot be had (no fcntl, every high number taken), `fd` itself."""
    if fcntl is None or fd < 0:
        return fd
    try:
        lowest = _lowest_number()
        if fd >= lowest:
            return fd
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    except (OSError, ValueError):
        return fd
    os.close(fd)
    return high
