"""Inject the flowtrace payload into a Python 3.12/3.13 process with gdb.

Two steps, the second only when the first does not take effect:

1. **Pending call** (the safe path). gdb stops the process for a moment, maps one private
   page (`mmap`, no `malloc`: the process may have been stopped inside the allocator), writes
   the payload source there, and calls `Py_AddPendingCall(PyRun_SimpleString, page)`. The
   interpreter runs it in the main thread at its next eval-breaker check, with the GIL held --
   the same safe point at which Python signal handlers run. gdb detaches at once.
2. **GIL fallback.** A pending call only runs when the main thread executes bytecode; a main
   thread blocked in a wait (`Event.wait`, `queue.get`, `select`, `input()`...) never gets
   there. If the channel has not appeared after `pending_timeout` (0.5 s), the wait goes on
   only while the pending call can still come by itself: the payload has begun (it creates its
   `runfile` first; its import may take seconds on a loaded machine), or the main thread is
   *starved* -- it asks for a CPU (waits in the run queue) but has had less than CHANCE of CPU
   time since the call was scheduled (/proc/<pid>/task/<pid>/schedstat), far more than a thread
   running bytecode needs to reach the safe point; a thread in long native code uses it up.
   Otherwise gdb stops the process again and checks that the main thread is *parked*: it does not hold the GIL
   (`PyGILState_Check() == 0`, i.e. it is inside `Py_BEGIN_ALLOW_THREADS`) and its program
   counter sits right after a system-call instruction. Only then it runs
   `PyGILState_Ensure(); PyRun_SimpleString(<start a new thread>); PyGILState_Release()` --
   taking the GIL the way the thread itself would when its wait ended, and doing nothing but
   starting a thread that does the real work. The interrupted system call is restarted by the
   kernel (or sees EINTR, which Python retries, PEP 475). When the main thread is not parked
   (e.g. it holds the GIL in long native code), nothing is run and the attempt is repeated.

The injected payload (flowtrace/attach/payload.py) only starts the control channel; recording
is then started over the channel. The page stays mapped (one page per attach) because the
pending call may still run later, when the main thread wakes up; the payload is idempotent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Callable

from .procinfo import AttachError, Target, ptrace_hint

__all__ = ["inject", "gdb_path"]

PAGE = 16384  # bytes mapped for the two payload strings
# A gdb session is given up when neither gdb nor the target has used any CPU for GDB_TIMEOUT
# seconds (a hang), not after a fixed time: its symbol loading takes ~0.6 s of CPU, which a
# loaded machine (load 40-50 on 2 cores) spreads over 10-40 s. GDB_LIMIT bounds it anyway.
GDB_TIMEOUT = 30.0
GDB_LIMIT = 600.0
# Once the payload has begun (its runfile exists), its channel is waited for this long: the
# import of flowtrace in the target, ~0.1 s of CPU, took 10+ s at load 40 on 2 cores.
PAYLOAD_LIMIT = 120.0
# A starved main thread (see the module docstring) is waited for at most this long in all,
# until it has had CHANCE ns of CPU since the pending call was scheduled.
STARVED_LIMIT = 120.0
CHANCE = 50_000_000


def gdb_path() -> str | None:
    return shutil.which("gdb")


def _c_bytes(data: bytes) -> str:
    """A gdb array literal of the bytes (no quoting problems whatever the text holds)."""
    return "{" + ",".join(str(b) for b in data) + "}"


def _syscall_check() -> str:
    """A gdb expression true when the stopped thread's pc follows a system-call instruction."""
    machine = os.uname().machine
    if machine in ("x86_64", "amd64"):
        return "*(unsigned short *)($pc - 2) == 0x050f"  # syscall
    if machine in ("aarch64", "arm64"):
        return "*(unsigned int *)($pc - 4) == 0xd4000001"  # svc #0
    return "1"  # unknown architecture: rely on the GIL check alone


def _run_gdb(pid: int, script: str) -> str:
    """Run one batch gdb session on `pid` with the given command script; return its stdout.

    Raises AttachError for the failures a user can act on (no gdb, ptrace refused, no Python
    symbols, gdb hanging).
    """
    gdb = gdb_path()
    if gdb is None:
        raise AttachError(
            "gdb is not installed (needed to attach to Python 3.12/3.13); install gdb, or start the "
            "program with `flowtrace run --paused` or call flowtrace.install() in it"
        )
    fd, path = tempfile.mkstemp(prefix="flowtrace-gdb-", suffix=".gdb")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(script)
        cmd = [
            gdb, "-p", str(pid), "-batch", "-nx", "-q",
            "-iex", "set debuginfod enabled off",  # never reach for the network
            "-iex", "set auto-load off",
            "-iex", "set pagination off",
            "-iex", "set confirm off",
            "-x", path,
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, errors="replace")
        out, err = _wait_for_gdb(proc, pid)
    finally:
        os.unlink(path)
    both = out + err
    if "ptrace: Operation not permitted" in both or "ptrace: Permission denied" in both:
        raise AttachError(f"not permitted to ptrace pid {pid}: {ptrace_hint()}")
    if "ptrace: No such process" in both:
        raise AttachError(f"no process with pid {pid}")
    if "No symbol" in both and ("Py_AddPendingCall" in both or "PyGILState" in both or "PyRun_SimpleString" in both):
        raise AttachError(f"gdb cannot find the Python C API in pid {pid} (stripped or static interpreter?)")
    if "FLOWTRACE-" not in out:
        last = next((ln for ln in reversed(err.splitlines()) if ln.strip()), "no output")
        raise AttachError(f"gdb failed on pid {pid}: {last.strip()}")
    return out


def _wait_for_gdb(proc: subprocess.Popen, pid: int) -> tuple[str, str]:
    """gdb's (stdout, stderr) once it ends; killed (AttachError) once neither it nor the target
    has used CPU for GDB_TIMEOUT s, or after GDB_LIMIT s in all."""
    start = last = time.monotonic()
    ticks = -1
    while True:
        try:
            return proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        now, used = time.monotonic(), _cpu_ticks((proc.pid, pid))
        if used != ticks:
            ticks, last = used, now
        if now - last > GDB_TIMEOUT or now - start > GDB_LIMIT:
            proc.kill()
            proc.communicate()
            raise AttachError(f"gdb made no progress for {GDB_TIMEOUT:g} s on pid {pid}"
                              if now - last > GDB_TIMEOUT else f"gdb did not finish within {GDB_LIMIT:g} s on pid {pid}")


def _cpu_ticks(pids: tuple[int, ...]) -> int:
    """The CPU time (clock ticks, user + system) the processes have used, as /proc tells (0
    where it does not: then only the time without progress counts)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
        except (OSError, ValueError, IndexError):
            pass
    return total


def _schedstat(pid: int) -> tuple[int, int] | None:
    """(ns on a CPU, ns waiting in a run queue) of pid's main thread, or None where /proc has
    no schedstat (then a slow pending call falls back at once, as it always did)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat", "rb") as f:
            run, queued = f.read().split()[:2]
        return int(run), int(queued)
    except (OSError, ValueError):
        return None


def _wait_on(pid: int, ready: Callable[[float], bool], started: Callable[[], bool], step: float,
             since: tuple[int, int] | None, log: Callable[[str], None]) -> bool:
    """After a wait of `step` for the channel came back empty (`since`: the main thread's
    schedstat when the pending call was scheduled): wait on while the call can still come by
    itself -- the payload has begun, or the main thread is starved (it waited for a CPU in the
    last step, and has had less than CHANCE of CPU in all). True once the channel answers;
    False when the main thread had its chance (parked in a wait, or it ran): the GIL fallback's."""
    deadline = time.monotonic() + STARVED_LIMIT
    last = since
    while True:
        if started():
            log("gdb: the payload runs; waiting for its channel")
            return ready(PAYLOAD_LIMIT)
        now = _schedstat(pid)
        if since is None or last is None or now is None or time.monotonic() > deadline:
            return False
        ran, queued = now[0] - since[0], now[1] - last[1]
        if ran >= CHANCE or queued < step * 0.1e9:  # it had its chance, or asks for no CPU
            return False
        log(f"gdb: the main thread is starved ({queued / 1e6:.0f} ms queued, {ran / 1e6:.0f} ms run); waiting on")
        last = now
        if ready(step):
            return True


def _marker(out: str, name: str) -> str | None:
    for line in out.splitlines():
        if line.startswith(f"FLOWTRACE-{name} "):
            return line.split(None, 1)[1].strip()
    return None


def inject(
    target: Target,
    direct_code: str,
    thread_code: str,
    ready: Callable[[float], bool],
    *,
    started: Callable[[], bool] = lambda: False,
    pending_timeout: float = 0.5,
    fallback_tries: int = 3,
    log: Callable[[str], None] = lambda msg: None,
) -> str:
    """Make `target` run the payload; returns how ("pending-call" or "gil-fallback").

    `direct_code` runs in the main thread from the pending call; `thread_code` only starts a
    thread (the fallback). `ready(timeout)` waits up to `timeout` seconds for the payload's
    effect (the control channel answering) and says whether it came; `started()` says whether
    the payload has begun running (its runfile).
    """
    if target.version >= (3, 14):
        raise AttachError("gdb injection is for Python 3.12/3.13; use sys.remote_exec on 3.14+")
    if target.free_threaded:
        raise AttachError("attaching with gdb to a free-threaded Python is not supported")
    direct = direct_code.encode() + b"\0"
    thread = thread_code.encode() + b"\0"
    second = (len(direct) + 15) // 16 * 16
    if second + len(thread) > PAGE:
        raise AttachError("payload too large for the injection page (flowtrace installed at a very long path?)")

    script = _pending_call_script(direct, thread, second)
    t0 = time.monotonic()
    out = _run_gdb(target.pid, script)
    # The main thread's chance is counted from here (_wait_on): gdb held the process stopped
    # from its attach until the call was scheduled, but before its attach (gdb starting up:
    # seconds under load) the program ran on, and that CPU was no chance to run the call.
    sched = _schedstat(target.pid)
    if _marker(out, "MMAP-FAILED"):
        raise AttachError(f"could not map memory in pid {target.pid}")
    page = _marker(out, "PAGE")
    if _marker(out, "PENDING") != "0" or page is None:
        raise AttachError(f"Py_AddPendingCall failed in pid {target.pid} (the queue of pending calls is full?)")
    log(f"gdb: pending call scheduled in {time.monotonic() - t0:.2f} s")
    if ready(pending_timeout) or _wait_on(target.pid, ready, started, pending_timeout, sched, log):
        return "pending-call"

    fallback = _gil_fallback_script(page, second)
    for attempt in range(fallback_tries):
        log("gdb: the main thread did not reach a safe point; trying the GIL fallback")
        out = _run_gdb(target.pid, fallback)
        if _marker(out, "SAFE") == "1":
            if _marker(out, "RUN") != "0":
                raise AttachError(f"the injected code failed to start in pid {target.pid}")
            if ready(5.0) or (started() and ready(PAYLOAD_LIMIT)):
                return "gil-fallback"
            raise AttachError(f"pid {target.pid} ran the injected code but its control channel did not start")
        # The main thread was running native code or held the GIL: the pending call may still
        # run any moment; give it a chance before stopping the process again.
        sched = _schedstat(target.pid)
        if ready(pending_timeout) or _wait_on(target.pid, ready, started, pending_timeout, sched, log):
            return "pending-call"
    raise AttachError(
        f"pid {target.pid}'s main thread neither reached a safe point nor was parked in a wait "
        "(long native code holding the GIL?); try again, or use flowtrace.install()"
    )


def _pending_call_script(direct: bytes, thread: bytes, second: int) -> str:
    """The gdb script that maps a page, writes both payloads into it and schedules the direct one
    as a pending call (run by the main thread at its next safe point)."""
    return "\n".join([
        "set $ft_page = (char *)(long) mmap((void *)0, (unsigned long)%d, 3, 34, -1, (long)0)" % PAGE,
        # mmap returns MAP_FAILED (-1) on error: stop before writing anywhere
        "printf \"FLOWTRACE-PAGE %lu\\n\", $ft_page",
        "if (long)$ft_page == -1",
        "  printf \"FLOWTRACE-MMAP-FAILED 1\\n\"",
        "else",
        "  set {unsigned char[%d]}($ft_page) = %s" % (len(direct), _c_bytes(direct)),
        "  set {unsigned char[%d]}($ft_page + %d) = %s" % (len(thread), second, _c_bytes(thread)),
        "  printf \"FLOWTRACE-PENDING %d\\n\", "
        "(int)Py_AddPendingCall((int (*)(void *))PyRun_SimpleString, (void *)$ft_page)",
        "end",
        "detach",
        "quit",
        "",
    ])


def _gil_fallback_script(page: str, second: int) -> str:
    """The gdb script that runs the thread payload (already in the page) from the main thread,
    only when that thread is parked in a wait without the GIL."""
    return "\n".join([
        "thread 1",  # the process's first thread: the one that runs Python's main thread
        "set $ft_safe = (int)PyGILState_Check() == 0 && %s" % _syscall_check(),
        "printf \"FLOWTRACE-SAFE %d\\n\", $ft_safe",
        "if $ft_safe",
        "  set $ft_g = (int)PyGILState_Ensure()",
        "  printf \"FLOWTRACE-RUN %%d\\n\", (int)PyRun_SimpleString((char *)(%s + %d))" % (page, second),
        "  call (void)PyGILState_Release($ft_g)",
        "end",
        "detach",
        "quit",
        "",
    ])
