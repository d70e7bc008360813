"""What one line of the call tree says about its node: the per-row view model.

The call tree (widgets/call_tree.py) only draws: it asks `row_view` for the name, arguments,
end, times and share of the node on a line, and fits them into cells. Everything that reads the
index's and the data's columns is here, including the live clock: in a live session a running
call's time is the elapsed time so far, and a call that ended after the index was made already
shows its end (the data has it before the next index does).
"""

from __future__ import annotations

from dataclasses import dataclass

from flowtrace.printing import body_title

from .index import TreeIndex
from .loader import HOW_OPEN, HOW_RAISE, HOW_UNFINISHED, TraceData
from .running import live_times
from .process_view import started_processes
from .tasks import task_root_note

END_RETURN, END_RAISE, END_OPEN = "return", "raise", "open"  # RowView.end


def recorded_cwd(data: TraceData) -> str | None:
    """The recorded program's working directory (META), to show module files relative to it."""
    cwd = data.meta.get("cwd")
    return cwd if isinstance(cwd, str) else None


def recorded_stdlib(data: TraceData) -> str | None:
    """The recorded interpreter's standard library directory (META), where frozen modules'
    source is."""
    stdlib = data.meta.get("stdlib")
    return stdlib if isinstance(stdlib, str) else None


def call_title(data: TraceData, fid: int) -> tuple[str, bool]:
    """The name a call of function `fid` is shown by, and whether it is class or module code
    (`class Name` / `<module> file`: no arguments, no result)."""
    info = data.func(fid)
    title = body_title(info.kind, info.qualname, info.file, recorded_cwd(data), info.module) if info is not None else None
    return (title, True) if title is not None else (data.func_name(fid), False)


def one_line(text: str) -> str:
    """A text on one line: newlines shown as ⏎, tabs as spaces."""
    return text.replace("\n", "⏎").replace("\r", "").replace("\t", " ")


@dataclass(frozen=True, slots=True)
class RowView:
    """One line of the tree. `group` is "process"/"thread"/"task" for a group node (then `name`
    is its label and the call fields are empty; a process's `end`, `exception` and `result` say
    how it ended: END_RAISE and "exit 3", END_RETURN and "exit 0", END_OPEN). `end`: END_RETURN, END_RAISE or END_OPEN (running or
    unfinished); `exception` the raised exception's type, `result` the returned value's text
    (one line; None when not captured, or for class/module code). `share`: the node's running time
    as a fraction of its parent's (0..1), None for a top-level node or a parent that did not
    run."""

    node: int
    group: str | None
    name: str
    is_body: bool
    args: str
    suspensions: int
    end: str
    exception: str
    result: str | None
    total_ns: int
    self_ns: int | None
    share: float | None
    task_note: str | None = None  # a task's root coroutine: "Task-2 ← main" (model/tasks.py)
    started_note: str | None = None  # a call that started processes: "started pid 123"
    # a merged call path (model/merged_view.py): the calls it stands for (0: a plain call),
    # how many of them raised and how many did not end
    count: int = 0
    raised: int = 0
    unfinished: int = 0


def row_view(index: TreeIndex, pos: int, live_now: int = 0) -> RowView:
    """The line of position `pos`. `live_now`: the session's time now in a live session (the
    elapsed time of running calls), 0 otherwise."""
    node = index.node(pos)
    total, own = live_times(index, pos, live_now)
    share = _share(index, node, total, live_now)
    if index.is_group(node):
        g = index.group(node)
        if g is not None and g.kind == "process":
            return _process_row(index, g, total, share, live_now)
        kind = "thread" if g is None or g.kind == "thread" else "task"
        if kind == "task":
            total = task_lifetime(index, pos, live_now)
        return RowView(node, kind, g.title if g else f"{kind} {node}", False, "", 0, END_RETURN, "", None,
                       total, None, share)
    data = index.data
    name, is_body = call_title(data, int(data.col("func")[node]))
    how = int(data.col("how")[node])
    exception, result = "", None
    if how == HOW_RAISE:
        exc = data.strings.text(int(data.col("val")[node]))
        end, exception = END_RAISE, exc.split(":", 1)[0] if exc else "raised"
    elif how in (HOW_OPEN, HOW_UNFINISHED):
        end = END_OPEN
    else:
        end = END_RETURN
        val = int(data.col("val")[node])
        if val and not is_body:
            result = one_line(data.strings.text(val))
    args = "" if is_body else one_line(data.strings.text(int(data.col("args")[node])))
    return RowView(node, None, name, is_body, args, int(data.col("nsusp")[node]), end, exception, result,
                   total, own, share, task_root_note(data, node), _started_note(data, node))


def task_lifetime(index: TreeIndex, pos: int, live_now: int = 0) -> int:
    """A task group's lifetime: its roots' (its coroutine's: one root, as a rule), the measure
    its root's line shows. The group's own total is the task's busy time, which counts in its
    thread's and which its share is taken of; shown in the total column it would sit above a
    root whose line says a thousand times more (a task waits for most of its life)."""
    return sum(live_times(index, int(kid), live_now)[0] for kid in index.children(pos))


def _started_note(data: TraceData, call: int) -> str | None:
    """`started pid 123` (`… 2 processes`) on a call that started processes of the session."""
    started = started_processes(data, call)
    if not started:
        return None
    if len(started) == 1:
        return f"started pid {data.processes[started[0]].pid}"
    return f"started {len(started)} processes"


def _process_row(index: TreeIndex, g, total: int, share: float | None, live_now: int) -> RowView:
    """A process's line: its title, and how it ended (✗ for a failure, ⋯ while running)."""
    proc = index.data.processes[g.process]
    status = proc.status(live=bool(live_now))
    if proc.ends is None:
        end, exception, result = END_OPEN, "", None
    elif proc.failed():
        end, exception, result = END_RAISE, status, None
    else:
        end, exception, result = END_RETURN, "", status
    return RowView(g.node, "process", g.label, False, "", 0, end, exception, result, total, None, share)


def _share(index: TreeIndex, node: int, total: int, live_now: int) -> float | None:
    """Running time as a share of the parent's (a suspended generator/coroutine's lifetime
    overstates it): the index's, moved by what the live clock added since it was made."""
    par = int(index.parent[node])
    prun = int(index.run[par]) if par else 0
    if live_now and index.is_open(par):
        prun += max(0, live_now - int(index.data.col("t0")[par]) - int(index.dur[par]))
    if prun <= 0:
        return None
    return min(1.0, max(0, int(index.run[node]) + total - int(index.dur[node])) / prun)
