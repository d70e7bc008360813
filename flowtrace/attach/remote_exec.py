"""Inject the flowtrace payload into a Python 3.14+ process with `sys.remote_exec` (PEP 768).

The payload is written to a script file; the target's own interpreter binary (so that the
caller's version matches the target's, which PEP 768 requires) runs
`sys.remote_exec(pid, script)`. The target runs the script in its main thread at its next safe
point (an eval-breaker check, like a pending call). The file is removed once the channel
answers or the wait gives up.

Not exercised by the test suite on this machine (it has no Python 3.14).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Callable

from .procinfo import AttachError, Target, ptrace_hint

__all__ = ["inject"]

_CALLER = "import sys; sys.remote_exec(int(sys.argv[1]), sys.argv[2])"


def inject(
    target: Target,
    script_code: str,
    ready: Callable[[float], bool],
    *,
    timeout: float = 10.0,
    log: Callable[[str], None] = lambda msg: None,
) -> str:
    """Make `target` (Python 3.14+) run `script_code`; returns "remote-exec"."""
    if target.version < (3, 14):
        raise AttachError(f"sys.remote_exec needs Python 3.14+, pid {target.pid} runs {target.version[0]}.{target.version[1]}")
    fd, path = tempfile.mkstemp(prefix="flowtrace-inject-", suffix=".py")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(script_code)
        if target.uid != os.getuid():
            os.chown(path, target.uid, -1)  # we are root here (procinfo refuses otherwise)
        try:
            proc = subprocess.run([target.exe, "-I", "-S", "-c", _CALLER, str(target.pid), path],
                                  capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise AttachError(f"cannot run {target.exe}: {exc.strerror or exc}") from None
        except subprocess.TimeoutExpired:
            raise AttachError(f"sys.remote_exec on pid {target.pid} did not return within 30 s") from None
        if proc.returncode != 0:
            last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "failed")
            if "ermission" in last or "not permitted" in last:
                raise AttachError(f"not permitted to debug pid {target.pid}: {ptrace_hint()}")
            raise AttachError(f"sys.remote_exec on pid {target.pid}: {last.strip()}")
        log("remote_exec: script scheduled")
        if ready(timeout):
            return "remote-exec"
        raise AttachError(
            f"pid {target.pid} has not run the injected script within {timeout:g} s (main thread blocked "
            "outside Python, or remote debugging disabled with PYTHON_DISABLE_REMOTE_DEBUG / "
            "-X disable-remote-debug?)"
        )
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
