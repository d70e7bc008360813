"""The processes of a session: the root file the user named and the parts its followed
descendants wrote beside it (docs/FORMAT.md, "Sessions of several processes").

`session_processes(path)` reads only each part's META and ENDS (ftr/summary.py) and returns the
processes in tree order (a parent before its children, children by start time), each with its
depth, how it ended, and what went wrong reading it: a truncated or missing part is reported
on its own `Process` and the others read as usual. It is cheap enough to call again while the
session grows (a live view finds new processes that way).

`surveyed_parts(path)` adds each readable part's survey (ftr/scan.py) for the streaming
commands; `spawning_call(...)` finds the call in the parent that started a child.
"""

from __future__ import annotations

import bisect
import json
import os
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from . import decode as D
from . import format as F
from .format import FormatError
from .parts import part_files, parts_dir  # (re-exported: the explorer takes them from here)
from .reader import Call
from .scan import SessionInfo, chunks, survey
from .summary import read_summary

@dataclass
class Process:
    """One process of a session. `path` is its part (None when it was not followed: then
    `skipped` says why); `end` its ENDS object (None: killed, still running or damaged)."""

    pid: int
    ppid: int | None
    argv: list[str]
    path: str | None
    how: str = "root"  # "root", "fork" (forked without exec) or "exec" (a new interpreter)
    started_by: dict[str, Any] | None = None  # {"pid", "thread" (ident), "t" (monotonic ns)}
    started_ns: int | None = None  # CLOCK_MONOTONIC ns: the part's origin
    end: dict[str, Any] | None = None
    problem: str | None = None
    skipped: str | None = None
    depth: int = 0
    children: list["Process"] = field(default_factory=list)

    def title(self) -> str:
        """`pid 123: python -m pkg.worker` (its command line after the interpreter; code given
        with -c is shown as …). A launch its parent saw but that never started a part has no pid yet
        (`pid ?`) and its argv starts with the program it ran."""
        words = [str(w) for w in self.argv]
        if "-c" in words[:-1]:
            words[words.index("-c") + 1] = "…"
        elif words == ["-c"]:
            words = ["-c", "…"]
        if self.pid == 0:
            return f"pid ?: {_join(words) or '?'}"
        command = "python " + _join(words) if words else "python"
        return f"pid {self.pid}: {command}"

    @property
    def followed(self) -> bool:
        """Was this process recorded (it has a part)?"""
        return self.path is not None

    def status(self) -> str:
        """How the process ended, in words."""
        if self.skipped is not None:
            return f"not followed: {self.skipped}"
        if self.problem is not None and self.end is None:
            return self.problem
        return end_words(self.end or {})


def end_words(end: dict[str, Any]) -> str:
    """A part's ENDS in words: `terminated by SIGTERM`, `replaced by exec`, `detached` (the
    recording was stopped while the process ran on: attach), `uncaught exception: …`, `exit 3`,
    or `exited` (no exit status recorded). The explorer says the same."""
    if end.get("signal"):
        return f"terminated by {end['signal']}"
    if end.get("reason") == "exec":
        return "replaced by exec"
    if end.get("reason") == "detached":
        return "detached"
    if end.get("reason") == "exception":
        return "uncaught exception" + (f": {end['error']}" if end.get("error") else "")
    code = end.get("exit_code")
    return f"exit {code}" if code is not None else "exited"


def _join(words: list[str]) -> str:
    """A command line as a shell would take it back (the elided code … left as it is)."""
    return " ".join(w if w == "…" else shlex.quote(w) for w in words)


def session_processes(path: str) -> list[Process]:
    """Every process of the session rooted at `path`, in tree order; [] when `path` itself
    cannot be read (the caller reports that as for any session)."""
    root = _part(path, root=True)
    if root is None:
        return []
    others = _parts(parts_dir(path), root.pid)
    if not others and not os.path.isdir(parts_dir(path)) and _expects_parts(path):
        root.problem = f"its processes' parts are missing ({os.path.basename(parts_dir(path))}/ not found)"
    return _tree(root, others)


def _expects_parts(path: str) -> bool:
    """Does the root say its processes have parts (META `parts`, and no ENDS `no_parts`: the
    program started none and the empty directory was removed)?"""
    try:
        summary = read_summary(path)
        return bool(summary.meta.get("parts")) and not (summary.end or {}).get("no_parts")
    except Exception:  # noqa: BLE001 - the root was read already; this is only a note
        return False


def _part(path: str, *, root: bool = False) -> Process | None:
    try:
        summary = read_summary(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable part is reported, not raised
        if root:
            return None
        pid = _pid_of(path)
        return Process(pid, None, [], path, how="exec", problem=f"unreadable part: {exc}")
    meta = summary.meta
    info = meta.get("process") if isinstance(meta.get("process"), dict) else {}
    argv = meta.get("argv") if isinstance(meta.get("argv"), list) else []
    problem = summary.problem
    if summary.end is None and problem is None:
        problem = "no end record: killed, or still running"
    return Process(int(meta.get("pid") or _pid_of(path)), meta.get("ppid"), argv, path,
                   how="root" if root else str(info.get("how") or "exec"),
                   started_by=info.get("started_by") if isinstance(info.get("started_by"), dict) else None,
                   started_ns=meta.get("origin_ns"), end=summary.end, problem=problem)


def _pid_of(path: str) -> int:
    stem = os.path.basename(path).split(".")[0].split("-")[0]
    return int(stem) if stem.isdigit() else 0


def _parts(directory: str, root_pid: int) -> list[Process]:
    parts, notes = part_files(directory)
    out = []
    for name in sorted(parts + notes):  # in name order, as _tree's ties keep it
        full = os.path.join(directory, name)
        part = _part(full) if name.endswith(".ftr") else _skipped(full)
        if part is not None:
            out.append(part)
    return out


def _skipped(path: str) -> Process:
    try:
        with open(path) as f:
            note = json.load(f)
        started = note.get("started_ns")
        return Process(int(note["pid"]), note.get("ppid"), list(note.get("argv") or []), None, how="exec",
                       skipped=str(note.get("reason") or "not followed"),
                       started_ns=started if isinstance(started, int) else None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Process(_pid_of(path), None, [], None, how="exec", skipped=f"unreadable note ({exc})")


def _tree(root: Process, others: list[Process]) -> list[Process]:
    """Link each process to its parent (the latest-started process with its ppid, or with its
    own pid that replaced itself by exec; the root when none was recorded), then list them
    depth first."""
    known = [root, *sorted(others, key=lambda p: p.started_ns or 0)]
    for proc in known[1:]:
        parents = [p for p in known if p is not proc and p.path is not None
                   and (p.pid == proc.ppid or (p.pid == proc.pid and (p.end or {}).get("reason") == "exec"))
                   and (p.started_ns or 0) <= (proc.started_ns or 0)]
        (parents[-1] if parents else root).children.append(proc)
    order: list[Process] = []

    def walk(proc: Process, depth: int) -> None:
        proc.depth = depth
        order.append(proc)
        for child in proc.children:
            walk(child, depth + 1)

    walk(root, 0)
    return order



@dataclass
class SessionParts:
    """A session's processes as the streaming commands read them: `parts`, each readable
    process with its part's survey in tree order (root first); `not_followed`, the processes
    that ran untraced; `notes`, one line each on those and on what could not be read (a part
    read but unfinished says so itself: `SessionInfo.describe`)."""

    parts: list[tuple[Process, SessionInfo]]  # (or `scan.Outlook`s: `surveyed_parts(read=glance)`)
    not_followed: list[Process]
    notes: list[str]

    @property
    def several(self) -> bool:
        """More than one process (then readers show processes; else the session as before)."""
        return len(self.parts) + len(self.not_followed) > 1


def surveyed_parts(path: str, root: Any = None, read: Callable[[str], Any] = survey) -> SessionParts:
    """The processes of the session at `path` with a survey of each readable part (`root`:
    the root's, when the caller has it already); `read`: `scan.glance` for a reader that
    checks the parts as it reads them (its `parts` then hold `Outlook`s)."""
    out = SessionParts([], [], [])
    for proc in session_processes(path):
        if proc.path is None:
            out.not_followed.append(proc)
            out.notes.append(f"{proc.title()}: {proc.status()}")
            continue
        try:
            info = root if proc.how == "root" and root is not None else read(proc.path)
        except (FormatError, OSError) as exc:
            out.notes.append(f"{proc.title()}: {exc}")
            continue
        if proc.how == "root" and proc.end is not None and proc.problem is not None:
            out.notes.append(proc.problem)  # the parts directory is missing
        out.parts.append((proc, info))
    return out


def spawning_calls(calls: Iterable[Call | Span], threads: Iterable[Any], origin_ns: int,
                   launches: list[dict[str, Any] | None]) -> list[int | None]:
    """For each child's `started_by` in `launches`, the id of the call in the parent's part
    that started it (one pass over `calls`, the parent's calls; `threads` its THRD definitions;
    `origin_ns` its META origin): the innermost call of the thread whose ident is
    `started_by["thread"]` that was running at `started_by["t"]`. None where the launch was not
    seen or no recorded call was running then."""
    by_ident: dict[Any, set[int]] = {}
    for t in threads:
        by_ident.setdefault(t.ident, set()).add(t.id)
    wanted: dict[int, list[tuple[int, int]]] = {}  # thread id -> sorted (time in the parent's clock, index)
    for i, launch in enumerate(launches):
        t_abs = launch.get("t") if isinstance(launch, dict) else None
        tids = by_ident.get(launch.get("thread")) if isinstance(launch, dict) else None
        for tid in tids or () if isinstance(t_abs, int) else ():
            wanted.setdefault(tid, []).append((t_abs - origin_ns, i))
    for pairs in wanted.values():
        pairs.sort()
    best: list[Call | Span | None] = [None] * len(launches)
    if wanted:
        for call in calls:
            pairs = wanted.get(call.thread)
            if not pairs:
                continue
            end = call.end_ns if call.end_ns is not None else pairs[-1][0]
            lo = bisect.bisect_left(pairs, (call.start_ns, -1))
            hi = bisect.bisect_right(pairs, (end, len(launches)))
            for _t, i in pairs[lo:hi]:  # launches while this call ran: the latest-started is innermost
                held = best[i]
                if held is None or (call.start_ns, call.id) > (held.start_ns, held.id):
                    best[i] = call
    return [c.id if c is not None else None for c in best]


class Span(NamedTuple):
    """What `spawning_calls` reads of a call: its id, thread and times (`end_ns` None when it
    did not return or raise: as `Call.end_ns`)."""

    id: int
    thread: int
    start_ns: int
    end_ns: int | None


def call_spans(info: SessionInfo) -> Iterator[Span]:
    """Every call of a surveyed part as a `Span`, from its CALL and EXIT columns only: no text,
    no `Call`, no sorting (an export of a session of several processes made a whole
    `ordered_calls` pass over each parent for this, as long as the export's own pass). In the
    order the calls end; the calls still running last. Memory: the running calls."""
    running: dict[int, tuple[int, int]] = {}  # call id -> (thread, start)
    ended = F.RAISED | {F.END_RETURN}  # (any other end leaves end_ns None)
    for rows in chunks(info, {F.CALL, F.EXIT}):
        if isinstance(rows, D.CallRows):
            base = rows.base
            running.update(zip(range(base, base + rows.rows), zip(rows.thread.values(), rows.t0.values())))
            continue
        for cid, t1, how in zip(rows.call.values(), rows.t1.values(), rows.how.values()):
            started = running.pop(cid, None)
            if started is not None:
                yield Span(cid, started[0], started[1], t1 if how in ended else None)
    for cid, (thread, t0) in running.items():
        yield Span(cid, thread, t0, None)


def parent_index(procs: list[Process], proc: Process) -> int | None:
    """Where `proc`'s parent is in `procs` (None for the root or a parent not listed)."""
    for i, other in enumerate(procs):
        if proc in other.children:
            return i
    return None


def spawning_calls_of(procs: list[Process], traces: list[Any]) -> list[int | None]:
    """For each process of `procs` (with its part's trace, each a Trace or SessionInfo in the
    same order), the call of its parent's part that started it (spawning_calls), reading each
    parent's calls once: a loaded Trace's calls, or a survey's CALL and EXIT columns
    (`call_spans`)."""
    out: list[int | None] = [None] * len(procs)
    for i, parent in enumerate(procs):
        kids = [j for j, p in enumerate(procs) if p in parent.children and p.started_by]
        if not kids:
            continue
        trace = traces[i]
        calls = trace.calls if trace.calls else call_spans(trace)
        found = spawning_calls(calls, trace.threads.values(), int(trace.meta.get("origin_ns") or 0),
                               [procs[j].started_by for j in kids])
        for j, call in zip(kids, found):
            out[j] = call
    return out
