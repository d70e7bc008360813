"""The processes of a session of several processes, as the explorer holds them.

`flowtrace run` writes one part per process (docs/FORMAT.md, "Sessions of several processes"):
each part numbers its calls, functions, threads, tasks and strings from 1, and times from its
own origin. The explorer loads every part into one `TraceData` (one index, so search, filters
and grouping work across processes): `PartIds` turns a part's ids into the session's (calls by
the order they were loaded, the others by the order they were defined) and its times into the
root's (all parts use the monotonic clock the machine shares). The root file is read without
any of this: a session of one process loads exactly as before.

`ProcessRecord` is what the explorer knows about one process (its META and ENDS, its threads,
who started it). No Textual, no I/O.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowtrace.ftr.processes import Process, end_words


@dataclass
class ProcessRecord:
    """One process of the session. `index` is its place in `TraceData.processes` (0: the root,
    then in the order the parts were found); `shift` the ns between the root's origin and its
    own (added to its times); `threads` its threads' session ids."""

    index: int
    path: str
    meta: dict[str, Any] = field(default_factory=dict)
    ends: dict[str, Any] | None = None
    shift: int = 0
    threads: list[int] = field(default_factory=list)
    damage: str | None = None
    calls: int = 0
    skipped: str | None = None  # not followed (a `.skip.json` note): why

    @property
    def pid(self) -> int:
        """From META; for a part whose META could not be read, from its name (`<pid>.ftr`)."""
        pid = self.meta.get("pid")
        if isinstance(pid, int):
            return pid
        stem = os.path.basename(self.path).split(".")[0].split("-")[0]
        return int(stem) if stem.isdigit() else 0

    @property
    def ppid(self) -> int | None:
        ppid = self.meta.get("ppid")
        return ppid if isinstance(ppid, int) else None

    @property
    def argv(self) -> list[str]:
        argv = self.meta.get("argv")
        return [str(a) for a in argv] if isinstance(argv, list) else []

    @property
    def how(self) -> str:
        """"root", "fork" (forked without exec) or "exec" (an interpreter of its own)."""
        if self.index == 0:
            return "root"
        info = self.meta.get("process")
        how = info.get("how") if isinstance(info, dict) else None
        return str(how) if how else str(self.meta.get("command") or "exec")

    @property
    def started_by(self) -> dict[str, Any] | None:
        """{"pid", "thread" (ident), "t" (monotonic ns)}: where the process was started from."""
        info = self.meta.get("process")
        by = info.get("started_by") if isinstance(info, dict) else None
        return by if isinstance(by, dict) else None

    @property
    def origin_ns(self) -> int:
        origin = self.meta.get("origin_ns")
        return origin if isinstance(origin, int) else 0

    @property
    def end_ns(self) -> int | None:
        """When it ended, in session time; None while running (or killed)."""
        t_end = (self.ends or {}).get("t_end")
        return t_end + self.shift if isinstance(t_end, int) else None

    def title(self) -> str:
        """`pid 123: python -m pkg.worker`, `pid 124 (fork): python prog.py`: flowtrace's own
        heading of a process (flowtrace/ftr/processes.py: code given with -c is shown as …), and
        whether it was forked (a forked child has its parent's command line)."""
        text = Process(self.pid, self.ppid, self.argv, self.path).title()
        return text.replace(":", " (fork):", 1) if self.how == "fork" else text

    def command(self) -> str:
        """The command line alone, as the title says it."""
        return Process(self.pid, self.ppid, self.argv, self.path).title().split(": ", 1)[1]

    def status(self, live: bool = False) -> str:
        """How it ended, in words: `exit 0`, `exit 3`, `terminated by SIGTERM`, `running`."""
        end = self.ends
        if self.skipped is not None:
            return f"not followed: {self.skipped}"
        if end is None:
            if self.damage:
                return f"damaged ({self.damage})"
            return "running" if live else "no end recorded (killed?)"
        return end_words(end)

    def failed(self) -> bool:
        """Ended by a signal, an exception or a non-zero exit status."""
        end = self.ends
        if end is None:
            return False
        return bool(end.get("signal")) or end.get("reason") == "exception" or end.get("exit_code") not in (None, 0)


class _IdMap:
    """A part's ids -> the session's, as a growable lookup array (0 -> 0)."""

    def __init__(self) -> None:
        self.arr = np.zeros(64, dtype=np.int64)

    def set(self, local: int, value: int) -> None:
        if local >= len(self.arr):
            new = np.zeros(max(local + 1, 2 * len(self.arr)), dtype=np.int64)
            new[: len(self.arr)] = self.arr
            self.arr = new
        self.arr[local] = value

    def get(self, local: int) -> int:
        return int(self.arr[local]) if 0 <= local < len(self.arr) else 0

    def map(self, ids: np.ndarray) -> np.ndarray:
        """Session ids of an array of part ids (0 for one not defined)."""
        if len(ids) and int(ids.max()) >= len(self.arr):
            self.set(int(ids.max()), 0)
        return self.arr[ids]


class _CallRuns:
    """A part's call ids -> the session's, as runs: each CALL chunk's calls are consecutive in
    the part and in the session (the session numbers calls in the order they are loaded). One
    run a chunk, not 8 bytes a call: a followed busy program's part makes ~5 M calls a second,
    and a lookup array of them grown by doubling needed its old and new copies at once."""

    def __init__(self) -> None:
        self._local = np.zeros(64, dtype=np.int64)  # first part id of each run (ascending)
        self._session = np.zeros(64, dtype=np.int64)  # ... its session id
        self.runs = 0
        self.last = 0  # the part's last call id mapped

    def add(self, base: int, rows: int, first_session_id: int) -> None:
        """The part's calls base..base+rows-1 are the session's first_session_id.. (base: the
        call after the last one added)."""
        r = self.runs
        if r and first_session_id - self._session[r - 1] == base - self._local[r - 1]:
            self.last = base + rows - 1  # (the same run goes on: the root's own calls, read alone)
            return
        if r == len(self._local):
            self._local = np.concatenate([self._local, np.zeros(r, dtype=np.int64)])
            self._session = np.concatenate([self._session, np.zeros(r, dtype=np.int64)])
        self._local[r], self._session[r] = base, first_session_id
        self.runs, self.last = r + 1, base + rows - 1

    def map(self, ids: np.ndarray) -> np.ndarray:
        """Session ids of an array of part call ids (0 for 0 and for one not added)."""
        ids = np.asarray(ids, dtype=np.int64)
        local, session = self._local[: self.runs], self._session[: self.runs]
        at = np.maximum(np.searchsorted(local, ids, side="right") - 1, 0)
        out = ids - local[at] + session[at] if self.runs else np.zeros(len(ids), dtype=np.int64)
        out[(ids <= 0) | (ids > self.last)] = 0
        return out

    def get(self, local: int) -> int:
        return int(self.map(np.array([local]))[0])


class PartIds:
    """How one part's ids and times become the session's (see the module docstring)."""

    def __init__(self, process: int) -> None:
        self.process = process
        self.calls = _CallRuns()  # call ids: the part's are consecutive; so are their session ids
        self.n_calls = 0  # calls of this part loaded
        self.functions = _IdMap()
        self.threads = _IdMap()
        self.tasks = _IdMap()
        self.str_local: list[int] = []  # first id of each STRS chunk, in the part's numbering
        self.str_session: list[int] = []  # ... and in the session's
        self.shift = 0  # ns from the root's origin to this part's
        self.pending_tasks: dict[int, Any] = {}  # TASK records naming calls not loaded yet

    def add_calls(self, base: int, rows: int, first_session_id: int) -> None:
        """The part's calls base..base+rows-1 are the session's first_session_id.."""
        self.calls.add(base, rows, first_session_id)
        self.n_calls = base + rows - 1

    def call(self, local: int) -> int:
        return self.calls.get(local) if 0 < local <= self.n_calls else 0

    def strings(self, ids: np.ndarray) -> np.ndarray:
        """Session string ids of the part's (0 stays 0)."""
        if not len(ids) or not self.str_local:
            return np.zeros(len(ids), dtype=np.int64)
        local = np.asarray(self.str_local, dtype=np.int64)
        at = np.searchsorted(local, ids, side="right") - 1
        out = ids - local[np.maximum(at, 0)] + np.asarray(self.str_session, dtype=np.int64)[np.maximum(at, 0)]
        out[(ids <= 0) | (at < 0)] = 0
        return out


def process_parents(processes: list[ProcessRecord]) -> list[int]:
    """Per process, the index of its parent process (-1 for the root): the latest-started
    process whose pid is its ppid and that started before it; the root when none was recorded
    (its parent was not followed). The same rule as `flowtrace.ftr.processes`."""
    out = [-1] * len(processes)
    by_pid: dict[int, list[int]] = {}
    for i in sorted(range(len(processes)), key=lambda i: (i > 0, processes[i].origin_ns, i)):
        by_pid.setdefault(processes[i].pid, []).append(i)
    for i in range(1, len(processes)):
        me = processes[i]
        # a program started by os.exec* continues its pid: the part it replaced is its parent
        execd = [j for j in by_pid.get(me.pid, []) if j != i and processes[j].origin_ns <= me.origin_ns
                 and (processes[j].ends or {}).get("reason") == "exec"]
        found = execd or [j for j in by_pid.get(me.ppid, []) if j != i and processes[j].origin_ns <= me.origin_ns]
        out[i] = found[-1] if found else 0
    return out


def process_order(processes: list[ProcessRecord]) -> list[tuple[int, int]]:
    """(process index, depth) in tree order: a parent before its children, children by start."""
    if not processes:
        return []
    parents = process_parents(processes)
    children: dict[int, list[int]] = {}
    for i in sorted(range(1, len(processes)), key=lambda i: (processes[i].origin_ns, i)):
        children.setdefault(parents[i], []).append(i)
    out: list[tuple[int, int]] = []
    stack = [(0, 0)]
    while stack:
        i, depth = stack.pop()
        out.append((i, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(i, [])))
    seen = {i for i, _ in out}
    out.extend((i, 1) for i in range(len(processes)) if i not in seen)  # (a cycle of pids)
    return out
