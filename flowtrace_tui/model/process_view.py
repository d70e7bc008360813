"""What the explorer says about the processes of a session: their rows in the process tree, how
each ended, and the link between a child and the call in its parent that started it.

A part's META names where its process was started from (`started_by`: the starting process's
pid, its thread's ident and the time, docs/FORMAT.md). The call that started it is the innermost
call of that thread running at that time: on one thread calls nest in time, so it is the
latest-started call of the thread that began at or before that time and had not ended. Those
lookups are cached per session (`links`), and redone for a child whose starting call was not
loaded yet (a live session). No Textual.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from .loader import HOW_OPEN, TraceData
from .parts import ProcessRecord, process_order, process_parents


@dataclass(frozen=True)
class ProcessRow:
    """One line of the process tree: the process `index`, its `depth` under the root, and what
    the columns show."""

    index: int
    depth: int
    pid: int
    title: str
    command: str
    start_ns: int
    duration_ns: int | None  # None: no end recorded (running, or killed)
    status: str
    failed: bool
    calls: int
    children: int


def process_rows(data: TraceData, live: bool = False, now_ns: int = 0) -> list[ProcessRow]:
    """The processes of the session in tree order (the root first, a parent before its children,
    children by start). `now_ns`: a live session's clock, the duration of running processes."""
    procs = data.processes
    order = process_order(procs)
    kids: dict[int, int] = {}
    for par in process_parents(procs):
        kids[par] = kids.get(par, 0) + 1
    rows = []
    for i, depth in order:
        p = procs[i]
        end = p.end_ns if i else data.ends and data.t_end
        if end is None and live and now_ns:
            dur = max(0, now_ns - p.shift)
        else:
            dur = None if end is None else max(0, end - p.shift)
        rows.append(ProcessRow(i, depth, p.pid, p.title(), p.command(), p.shift, dur, process_status(p, live),
                               p.failed(), p.calls, kids.get(i, 0)))
    return rows


def process_status(proc: ProcessRecord, live: bool = False) -> str:
    """`exit 0`, `exit 3`, `terminated by SIGKILL`, `running` (live, no end yet), …"""
    return proc.status(live)


class _Links:
    """Per session: each child's starting call (0: not found yet), and the reverse map."""

    def __init__(self) -> None:
        self.start_call: dict[int, int] = {}
        self.seen_n = -1
        self.by_call: dict[int, list[int]] = {}


_LINKS: "weakref.WeakKeyDictionary[TraceData, _Links]" = weakref.WeakKeyDictionary()


def _links(data: TraceData) -> _Links:
    links = _LINKS.get(data)
    if links is None:
        links = _LINKS[data] = _Links()
    if links.seen_n != data.n or len(links.start_call) < len(data.processes) - 1:
        links.seen_n = data.n
        for i in range(1, len(data.processes)):
            if not links.start_call.get(i):
                links.start_call[i] = _find_start_call(data, i)
        links.by_call = {}
        for i, call in sorted(links.start_call.items()):
            if call:
                links.by_call.setdefault(call, []).append(i)
    return links


def process_group_pos(index, process: int) -> int:
    """Position of process `process`'s row in `index` (-1: it has no row: no calls yet)."""
    for g in index.groups:
        if g.kind == "process" and g.process == process:
            return int(index.pos_of[g.node])
    return -1


def process_at(index, pos: int) -> int:
    """The process (index into `data.processes`) the row at `pos` belongs to (0 for one)."""
    if pos < 0 or not index.data.multi_process:
        return 0
    node = index.node(pos)
    if index.is_group(node):
        g = index.group(node)
        return g.process if g is not None else 0
    return index.data.process_of_thread(int(index.data.col("thread")[node]))


def starting_call(data: TraceData, process: int) -> int:
    """The call in its parent that started process `process` (0: not recorded or not known)."""
    if not 0 < process < len(data.processes):
        return 0
    return _links(data).start_call.get(process, 0)


def started_processes(data: TraceData, call: int) -> list[int]:
    """The processes that call `call` started (by index), in start order."""
    if not data.multi_process:
        return []
    return _links(data).by_call.get(call, [])


def _find_start_call(data: TraceData, process: int) -> int:
    by = data.processes[process].started_by
    root_origin = data.meta.get("origin_ns")
    if by is None or not isinstance(root_origin, int) or not all(isinstance(by.get(k), int) for k in ("pid", "thread", "t")):
        return 0
    t = by["t"] - root_origin
    parent = _starting_process(data.processes, by["pid"], t, process)
    if parent is None:
        return 0
    tids = [tid for tid in data.processes[parent].threads if (th := data.threads.get(tid)) is not None and th.ident == by["thread"]]
    if not tids:
        return 0
    n = data.n
    thread, t0 = data.col("thread")[1 : n + 1], data.col("t0")[1 : n + 1]
    cand = np.flatnonzero(np.isin(thread, tids) & (t0 <= t)) + 1
    if not len(cand):
        return 0
    t1, how = data.col("t1")[cand], data.col("how")[cand]
    running = cand[(how == HOW_OPEN) | (t1 >= t)]
    if not len(running):
        return 0
    t0r = data.col("t0")[running]
    return int(running[len(running) - 1 - np.argmax(t0r[::-1])])  # ties: the later call, the inner one


def _starting_process(procs: list[ProcessRecord], pid: int, t: int, child: int) -> int | None:
    """The latest-started process with `pid` that started before session time `t`."""
    best = None
    for i, p in enumerate(procs):
        if i != child and p.pid == pid and p.shift <= t and (best is None or p.shift >= procs[best].shift):
            best = i
    return best
