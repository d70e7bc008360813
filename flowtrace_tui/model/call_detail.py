"""Everything the detail pane says about one node, read from the index and the data.

`detail_of(index, pos)` gathers it (with the source excerpt: the one file read the explorer
does for a call, see source_text.py); the pane (widgets/detail_pane.py) only lays it out.
`path_to` is the chain of ancestors above a position, for the pane's clickable path.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowtrace.ftr import format as F
from flowtrace.printing import BODY_KINDS, short_path

from .index import TreeIndex
from .loader import HOW_OPEN, HOW_RAISE, HOW_RETURN, HOW_UNFINISHED, TraceData
from .parts import process_parents
from .process_view import starting_call
from .merged_view import MergedDetail, merged_detail
from .row_view import call_title, recorded_cwd, recorded_stdlib, task_lifetime
from .running import live_times
from .source_text import Excerpt, NoSource, excerpt
from .tasks import task_creator
from .units import fmt_ns

MAX_EVENTS = 20  # events listed (the rest are counted)
PATH_MAX = 12  # ancestors shown in the path (the nearest ones)

# CallDetail.end (END_RUNNING: no end yet in a live session, whose clock says how long so far)
END_RETURN, END_RAISE, END_UNFINISHED, END_OPEN, END_RUNNING = "return", "raise", "unfinished", "open", "running"
_END_OF = {HOW_RETURN: END_RETURN, HOW_RAISE: END_RAISE, HOW_UNFINISHED: END_UNFINISHED, HOW_OPEN: END_OPEN}


@dataclass(frozen=True, slots=True)
class GroupDetail:
    """A process, thread or task group node; `facts`: a process's (name, text) lines (pid,
    command, how it was started and ended, when)."""

    label: str
    busy_ns: int
    roots: int
    calls: int
    facts: tuple[tuple[str, str], ...] = ()
    lifetime_ns: int | None = None  # a task's: its coroutine's first run to its end


@dataclass(frozen=True, slots=True)
class Event:
    """One MARK of the call: when, what ("suspend", "3 runs, … running, first yield", …) and
    its text (the yielded value or the exception, one line), "" for none."""

    t_ns: int
    what: str
    text: str


@dataclass(frozen=True, slots=True)
class CallDetail:
    """A call. `kind`/`module` are None when its function is not defined in the file; `is_body`:
    class or module code (no arguments, no result). `args` None: not captured (`partial`: it was
    already running when recording started, so they could not be). `end`: END_*; `value` the
    result (return) or the exception text (raise), None when not captured. `running_ns` is the
    lifetime minus the suspensions (`suspensions` > 0: a generator or coroutine). `args` "": a
    call without arguments. `creator`: (position, title) of the call that created the asyncio
    task this call runs in, when recorded. `file`: where the function is defined, relative to
    the recorded program's working directory when inside it (as the tree names module code)."""

    node: int
    title: str
    module: str | None
    kind: str | None
    is_body: bool
    args: str | None
    partial: bool
    end: str
    value: str | None
    thread: str
    task: str | None
    start_ns: int
    end_ns: int | None
    lifetime_ns: int
    running_ns: int
    self_ns: int
    suspensions: int
    events: list[Event]
    more_events: int
    children: int
    descendants: int
    file: str  # relative to the recorded program's working directory when inside it
    line: int
    source: Excerpt | NoSource | None  # None: no file recorded
    creator: tuple[int, str] | None = None


def process_facts(data: TraceData, process: int, live_now: int = 0) -> tuple[tuple[str, str], ...]:
    """What the detail pane says about a process of a session of several."""
    proc = data.processes[process]
    start = starting_call(data, process)
    parents = process_parents(data.processes)
    facts = [("pid", str(proc.pid)), ("command", proc.command()),
             ("started", {"root": "the recorded program", "fork": "forked (os.fork, no exec)"}.get(proc.how, "a new interpreter")),
             ("parent", data.processes[parents[process]].title() if parents[process] >= 0 else "none recorded")]
    if process:
        facts.append(("by call", data.func_name(int(data.col("func")[start])) + f" (call {start}, S selects it)"
                      if start else "not recorded"))
    end = proc.end_ns if process else (data.t_end if data.ends else None)
    facts += [("status", proc.status(live=bool(live_now))), ("start", fmt_ns(proc.shift)),
              ("lifetime", fmt_ns(max(0, (end if end is not None else live_now or data.t_end) - proc.shift))
               + ("" if end is not None else " so far")),
              ("threads", str(len(data.program_threads(proc.threads)))), ("calls", f"{proc.calls:,}")]
    return tuple(facts)


def node_name(index: TreeIndex, pos: int) -> str:
    """How the node at `pos` is named in a path: its call's title, or "thread X" / "task Y"."""
    node = index.node(pos)
    if index.is_group(node):
        g = index.group(node)
        return f"{g.kind} {g.label}" if g else "group"
    return call_title(index.data, int(index.node_funcs()[node]))[0]


def path_to(index: TreeIndex, pos: int) -> list[tuple[int, str]]:
    """(position, name) of the nearest PATH_MAX ancestors of `pos`, then of `pos` itself."""
    return [(p, node_name(index, p)) for p in [*index.ancestors(pos)[-PATH_MAX:], pos]]


def detail_of(index: TreeIndex, pos: int, live_now: int = 0) -> CallDetail | GroupDetail | MergedDetail:
    """What the pane shows for `pos`; `live_now`: a live session's clock (0: not live), at which
    a running call's times are taken (model/running.py, as its row does)."""
    data = index.data
    node = index.node(pos)
    if index.merged and not index.is_group(node):
        return merged_detail(index, pos)  # type: ignore[arg-type]
    kids = len(index.children(pos))
    desc = index.descendants(pos)
    if index.is_group(node):
        g = index.group(node)
        facts = process_facts(data, g.process, live_now) if g is not None and g.kind == "process" else ()
        lifetime = task_lifetime(index, pos, live_now) if g is not None and g.kind == "task" else None
        return GroupDetail(f"{g.kind} {g.label}" if g else "", int(index.dur[node]), kids, desc, facts, lifetime)
    col = data.col
    fid = int(col("func")[node])
    info = data.func(fid)
    how = int(col("how")[node])
    args_id, val_id = int(col("args")[node]), int(col("val")[node])
    task = int(col("task")[node])
    events, more = _events(index, node)
    lifetime, own = live_times(index, pos, live_now)
    creator = task_creator(data, node)
    end = _END_OF.get(how, END_OPEN)
    return CallDetail(
        node=node, title=call_title(data, fid)[0],
        module=info.module if info is not None else None, kind=info.kind if info is not None else None,
        is_body=info is not None and info.kind in BODY_KINDS,
        args=data.strings.text(args_id) if args_id else None, partial=bool(int(col("flag")[node]) & F.CALL_PARTIAL),
        end=END_RUNNING if end == END_OPEN and live_now else end, value=data.strings.text(val_id) or None,
        thread=data.thread_name(int(col("thread")[node])), task=data.task_name(task) if task else None,
        start_ns=int(col("t0")[node]), end_ns=int(col("t1")[node]) if how != HOW_OPEN else None,
        lifetime_ns=lifetime, running_ns=int(index.run[node]), self_ns=own,
        suspensions=int(col("nsusp")[node]), events=events, more_events=more, children=kids, descendants=desc,
        # the program's own files named relative to where it ran, as in the tree
        file=short_path(info.file, recorded_cwd(data)) if info is not None else "",
        line=info.line if info is not None else 0,
        source=excerpt(info.file, info.line, recorded_stdlib(data)) if info is not None and info.file else None,
        creator=(int(index.pos_of[creator]), call_title(data, int(col("func")[creator]))[0]) if creator else None,
    )


def _events(index: TreeIndex, node: int) -> tuple[list[Event], int]:
    """The call's first MAX_EVENTS marks, and how many more there are."""
    data = index.data
    rows = data.marks_of(node)
    kind, t, ref = data.mark_col("kind"), data.mark_col("t"), data.mark_col("ref")
    out = []
    for i in rows[:MAX_EVENTS].tolist():
        what = F.MARK_NAMES.get(int(kind[i]), "?")
        if kind[i] == F.MARK_FOLD:  # n runs in one row: how many, and how long they ran
            what = f"{int(data.mark_col('n')[i]):,} runs, {fmt_ns(int(data.mark_col('run')[i]))} running, first yield"
        out.append(Event(int(t[i]), what, data.strings.text(int(ref[i]))))
    return out, max(0, len(rows) - MAX_EVENTS)
