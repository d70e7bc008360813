"""What `flowtrace attach` needs to know about a target process before touching it.

Everything comes from /proc (Linux): does the pid exist, whose is it, is it a Python
interpreter and which version. A problem is reported as `AttachError` with one line the user
can act on, before any debugger is started.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

__all__ = ["AttachError", "Target", "inspect_target", "ptrace_hint"]

# libpython3.12.so.1.0, libpython3.13t.so, python3.12, python3.13d ...
_LIB_RE = re.compile(r"libpython(3)\.(\d+)[a-z]*\.so")
_EXE_RE = re.compile(r"python(3)\.(\d+)[a-z]*$")


class AttachError(Exception):
    """Attaching failed or is impossible; the message is one line for the user."""


@dataclass(frozen=True)
class Target:
    """A process that looks like a compatible Python interpreter."""

    pid: int
    uid: int
    exe: str  # /proc/PID/exe resolved
    version: tuple[int, int]
    libpython: str | None  # path of the loaded libpython, None for a static interpreter
    free_threaded: bool


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _version_from_exe(exe: str) -> tuple[int, int] | None:
    """Ask the target's own executable for its version (only for a file named like python)."""
    try:
        out = subprocess.run(
            [exe, "-I", "-S", "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def inspect_target(pid: int) -> Target:
    """Check that `pid` exists, is ours to inspect and runs Python >= 3.12; say why not."""
    if pid <= 0:
        raise AttachError(f"invalid pid {pid}")
    if pid == os.getpid():
        raise AttachError("cannot attach to flowtrace itself")
    try:
        st = os.stat(f"/proc/{pid}")
    except FileNotFoundError:
        raise AttachError(f"no process with pid {pid}") from None
    uid = st.st_uid
    if uid != os.getuid() and os.geteuid() != 0:
        raise AttachError(f"pid {pid} belongs to another user (uid {uid}); attach as that user")
    try:
        status = _read(f"/proc/{pid}/status")
    except FileNotFoundError:
        raise AttachError(f"no process with pid {pid}") from None
    if re.search(r"^State:\s+Z", status, re.M):
        raise AttachError(f"pid {pid} is a zombie (it has exited)")
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise AttachError(f"no process with pid {pid}") from None
    except PermissionError:
        raise AttachError(f"not permitted to inspect pid {pid} (/proc/{pid}/exe)") from None
    except OSError:
        raise AttachError(f"pid {pid} is a kernel thread, not a Python process") from None
    exe = exe.removesuffix(" (deleted)")
    try:
        maps = _read(f"/proc/{pid}/maps")
    except PermissionError:
        raise AttachError(f"not permitted to inspect pid {pid} (/proc/{pid}/maps)") from None
    except FileNotFoundError:
        raise AttachError(f"no process with pid {pid}") from None

    libpython = None
    version: tuple[int, int] | None = None
    free_threaded = False
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        m = _LIB_RE.search(os.path.basename(parts[5]))
        if m:
            libpython = parts[5].strip()
            version = (int(m.group(1)), int(m.group(2)))
            free_threaded = f"3.{m.group(2)}t" in os.path.basename(libpython)
            break
    if version is None:
        m = _EXE_RE.search(os.path.basename(exe))
        if m:
            version = (int(m.group(1)), int(m.group(2)))
            free_threaded = os.path.basename(exe).endswith("t")
        elif "python" in os.path.basename(exe).lower():
            version = _version_from_exe(exe)  # e.g. a static build installed as "python3"
    if version is None:
        raise AttachError(f"pid {pid} is not a Python process ({exe})")
    if version < (3, 12):
        raise AttachError(
            f"pid {pid} runs Python {version[0]}.{version[1]}; flowtrace needs Python 3.12 or newer"
        )
    return Target(pid=pid, uid=uid, exe=exe, version=version, libpython=libpython, free_threaded=free_threaded)


def ptrace_hint() -> str:
    """Why ptrace may be refused on this machine, as a hint to append to an error."""
    try:
        scope = _read("/proc/sys/kernel/yama/ptrace_scope").strip()
    except OSError:
        scope = ""
    if scope == "1":
        return ("Yama ptrace_scope is 1 (only parents may trace): run as root, or "
                "`sudo sysctl kernel.yama.ptrace_scope=0`, or start the program with "
                "`flowtrace run --paused` / call flowtrace.install()")
    if scope in ("2", "3"):
        return (f"Yama ptrace_scope is {scope}: only root (or nobody) may trace; start the program "
                "with `flowtrace run --paused` or call flowtrace.install()")
    return ("ptrace is not permitted here (container seccomp profile or missing CAP_SYS_PTRACE?); "
            "start the program with `flowtrace run --paused` or call flowtrace.install()")
