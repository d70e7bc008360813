"""Following a session that is still being written: process liveness, the session clock, the
tail poller and the follow/pause bookkeeping of the live view. No Textual imports.

A live `.ftr` file only ever grows by whole chunks (docs/FORMAT.md), so following it is
`TraceSource.step()` again and again: each call reads the bytes after the last complete chunk and
feeds the new chunks to `TraceData`, which appends. Nothing already read is read again.

Whether a session without an end chunk is still live is decided from META: `pid` and
`hostname` name the recording process; when that process is gone the session "ended without
finishing". The liveness check is sampled *before* a read, so that a process found dead has
already flushed everything it ever will: a read after the check sees all of it.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

from .loader import FeedResult
from .source import TraceSource

DEFAULT_POLL_INTERVAL = 0.1  # the recorder flushes every 0.1 s by default: poll as often
PID_CHECK_INTERVAL = 0.25  # how often the recording process is looked up (/proc reads)
PID_REUSE_SLACK_S = 2.0  # a process that started this much after the session is another one

# Session states shown by the status line.
LIVE = "live"  # no end chunk, the recording process is running
FINISHED = "finished"  # the end chunk was read
GONE = "gone"  # no end chunk and the recording process no longer exists
UNKNOWN = "unknown"  # no end chunk, and we cannot tell (another host, no pid in META)
DAMAGED = "damaged"  # reading stopped at a corrupt chunk


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as fh:
            for line in fh:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _proc_start_and_state(pid: int) -> tuple[float | None, str | None]:
    """(start time as a Unix time, state letter) of a process from /proc, or (None, None)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None, None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    rest = stat[stat.rfind(")") + 2 :].split()
    state = rest[0] if rest else None
    boot = _boot_time()
    try:
        ticks = int(rest[19])  # field 22: starttime in clock ticks after boot
        start = boot + ticks / os.sysconf("SC_CLK_TCK") if boot is not None else None
    except (IndexError, ValueError, OSError):
        start = None
    return start, state


def process_alive(meta: dict[str, Any]) -> bool | None:
    """Is the process that wrote this session still running? None when it cannot be told
    (no pid, or the session was recorded on another host)."""
    pid = meta.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    host = meta.get("hostname")
    if not isinstance(host, str) or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    except OSError:
        return None
    start, state = _proc_start_and_state(pid)
    if state in ("Z", "X"):
        return False  # exited, not reaped yet
    wall = meta.get("started_wall_ns")
    if start is not None and isinstance(wall, int) and start > wall / 1e9 + PID_REUSE_SLACK_S:
        return False  # the pid was reused by a process started after the session
    return True


def session_now_ns(meta: dict[str, Any], t_max: int) -> int:
    """The session clock now (ns since its origin), for the elapsed time of running calls.

    The recorder's clock is `perf_counter_ns()` (CLOCK_MONOTONIC on Linux: one clock for every
    process of the machine), so on the same host "now" is our own reading minus the origin.
    Elsewhere, or when that looks wrong, the latest time seen in the file."""
    origin = meta.get("origin_ns")
    if isinstance(origin, int) and meta.get("hostname") == socket.gethostname():
        now = time.perf_counter_ns() - origin
        if now >= t_max:
            return now
    return t_max


@dataclass(frozen=True)
class TailBatch(FeedResult):
    """What one `LiveTail.poll()` appended: calls `first_new .. n`, EXIT/MARK rows, bytes."""

    bytes_read: int

    @property
    def changed(self) -> bool:
        return self.new_calls > 0 or self.exits > 0 or self.marks > 0


class LiveTail:
    """Follows one session file: `poll()` appends what became complete since the last poll.

    The owner calls `poll()` from one thread (the loader worker, or a test/benchmark loop);
    `state` may be read from any thread. `alive` is injectable for tests."""

    def __init__(self, source: TraceSource, alive: Callable[[dict[str, Any]], bool | None] = process_alive,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._alive = alive
        self._clock = clock
        self._last_check = -1e9
        self._dead = False
        self._last_alive: bool | None = None
        self.gone = False  # the process ended without writing the end chunk

    @property
    def data(self):
        return self.source.data

    def process_dead(self) -> bool:
        """Sample the recording process (at most every PID_CHECK_INTERVAL). Call *before* a
        read: if it is dead then, everything it wrote is in the file already."""
        if self._dead:
            return True
        now = self._clock()
        if now - self._last_check >= PID_CHECK_INTERVAL:
            self._last_check = now
            self._last_alive = self._alive(self.source.data.meta)
            self._dead = self._last_alive is False
        return self._dead

    def note_caught_up(self, dead_before_read: bool) -> None:
        """The reader reached the end of the file after `process_dead()` said so: settle `gone`."""
        if dead_before_read and not self.source.done:
            self.gone = True

    def poll(self, max_steps: int = 64) -> TailBatch:
        """Read everything complete now (up to `max_steps` bounded steps) and append it."""
        data = self.source.data
        first_new = data.calls_read + 1
        exits = marks = nbytes = 0
        dead = self.process_dead()
        for _ in range(max_steps):
            step = self.source.step()
            exits += step.feed.exits
            marks += step.feed.marks
            nbytes += step.bytes_read
            if not step.more:
                self.note_caught_up(dead)
                break
        return TailBatch(first_new, data.calls_read, exits, marks, nbytes)

    @property
    def done(self) -> bool:
        """Nothing more will come: end chunk, damage, or the process is gone."""
        return self.source.done or self.gone

    @property
    def state(self) -> str:
        src = self.source
        if src.damage:
            return DAMAGED
        if src.data.finished:
            return FINISHED
        if self.gone:
            return GONE
        self.process_dead()  # refresh the sample (rate-limited)
        return UNKNOWN if self._last_alive is None else LIVE


class PollTimer:
    """When the live view reads the file next: right after the recorder's next flush.

    Reading every `interval` seconds locks onto the recorder's own flush period (also 0.1 s by
    default, a little more in practice) at whatever phase the two started with, drifting only
    slowly: measured, every read came 40-90 ms after the flush it picked up, for seconds on end.
    The file's modification time says when the last flush wrote: when nothing was written since
    the last read, the next one is aimed `AFTER_FLUSH` after the flush expected one interval
    after that write; when something was (a busy program's recorder writes whenever its buffers
    fill, and an index update takes a while), it is there to read: the next read comes at once
    (waiting out the interval held a busy program's calls back ~50 ms more). A read that finds
    nothing retries soon (`RETRY`, a few times: such a read is one `fstat`), and a quiet session
    falls back to one read per interval."""

    AFTER_FLUSH = 0.005
    RETRY = 0.01
    QUICK_RETRIES = 5

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._misses = 0

    def wait(self, got_data: bool, since_read: float, write_age: float | None = None) -> float:
        """Seconds to sleep now, `since_read` seconds after the last read started; `write_age`:
        how long ago the file was last written (None: unknown)."""
        if got_data:
            self._misses = 0
            if write_age is not None and since_read <= write_age < self.interval:
                # nothing written since that read: aim just after the next flush
                return max(0.005, self.interval - write_age + self.AFTER_FLUSH)
            if write_age is not None and write_age < since_read:
                return self.AFTER_FLUSH  # written since that read began: more is waiting now
            return max(0.005, self.interval - since_read)  # unknown
        else:
            self._misses += 1
            if self._misses <= self.QUICK_RETRIES:
                return self.RETRY
        return max(0.005, self.interval - since_read)


class FollowState:
    """Follow mode, pause and the "new calls since you last looked" count of the live view.

    `following`: the view keeps the newest call selected. Any manual move turns it off; `G`/End
    turns it on. `paused`: new data is loaded but not shown. `seen` is the number of calls the
    user has seen (shown while following); `new_calls(n)` is what arrived after that."""

    def __init__(self, following: bool = False) -> None:
        self.following = following
        self.paused = False
        self.seen = 0
        self.follow_node = 0  # the call the follow mode put the cursor on

    def new_calls(self, n: int) -> int:
        return max(0, n - self.seen)

    def shown(self, n: int) -> None:
        """An index with `n` calls is on screen; while following the user sees it."""
        if self.following and not self.paused:
            self.seen = n

    def cursor_moved_to(self, node: int) -> bool:
        """The cursor is on `node` now; returns True when that ended follow mode."""
        if self.following and node != self.follow_node:
            self.following = False
            return True
        return False

    def resume(self, n: int) -> None:
        self.following = True
        self.seen = n
