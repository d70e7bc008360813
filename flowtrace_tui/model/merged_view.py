"""What the call tree and the detail pane say about a merged call path (model/merged.py).

A merged row reads like a call's row -- the function's name, total, self and share -- with the
number of calls it stands for and how many of them raised or did not end, instead of one
call's arguments and result. Its detail lists those numbers, the function's definition, and
its first calls (arguments, result or exception, time), each a link into the call tree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from flowtrace.printing import BODY_KINDS, short_path

from .loader import HOW_OPEN, HOW_RAISE, HOW_UNFINISHED
from .merged import MergedIndex
from .row_view import END_OPEN, END_RAISE, END_RETURN, RowView, call_title, one_line, recorded_cwd, recorded_stdlib, row_view
from .source_text import Excerpt, NoSource, excerpt

MAX_CALLS = 20  # calls listed in a merged path's detail (the rest are counted)


def merged_row(index: MergedIndex, pos: int) -> RowView:
    """The tree line of merged node at `pos`: `count` calls, `raised` of them raised."""
    node = index.node(pos)
    total, own = int(index.run[node]), int(index.self_time[node])
    par = int(index.parent[node])
    prun = int(index.run[par]) if par else 0
    share = min(1.0, total / prun) if prun > 0 else None
    count = int(index.count[node])
    if index.is_group(node) and index.source is not None:  # the source group's own line, summed
        src = index.source
        line = row_view(src, int(src.pos_of[int(index.first_call[node])]))
        return replace(line, node=node, total_ns=total, share=share, count=count)
    name, is_body = call_title(index.data, int(index.func[node]))
    raised, unfinished = int(index.raised[node]), int(index.unfinished[node])
    end = END_RAISE if raised else END_OPEN if unfinished == count else END_RETURN
    return RowView(node, None, name, is_body, "", 0, end, "", None, total, own, share,
                   count=count, raised=raised, unfinished=unfinished)


@dataclass(frozen=True, slots=True)
class PathCall:
    """One call of a merged path: its id and position in the call tree (-1: no call tree), arguments (None: not
    captured; "": none), how it ended (row_view's END_*), its result or exception text, and
    its running time."""

    call: int
    pos: int
    args: str | None
    end: str
    value: str | None
    run_ns: int


@dataclass(frozen=True, slots=True)
class MergedDetail:
    """A merged call path: `count` calls of one function at one path, their summed running
    and self times, the longest one, how many raised / did not end, the merged children, and
    the first MAX_CALLS calls (`more_calls`: how many are not listed)."""

    node: int
    title: str
    module: str | None
    kind: str | None
    is_body: bool
    count: int
    total_ns: int
    self_ns: int
    slowest: PathCall | None
    raised: int
    unfinished: int
    children: int
    calls: list[PathCall]
    more_calls: int
    file: str
    line: int
    source: Excerpt | NoSource | None  # None: no file recorded
    creator: None = None  # (the pane's path line asks every detail for it)


def path_call(index: MergedIndex, call: int) -> PathCall:
    """What the detail pane lists about one call of a merged path."""
    data, src = index.data, index.source
    col = data.col
    how = int(col("how")[call])
    end = END_RAISE if how == HOW_RAISE else END_OPEN if how in (HOW_OPEN, HOW_UNFINISHED) else END_RETURN
    args_id, val_id = int(col("args")[call]), int(col("val")[call])
    return PathCall(call, int(src.pos_of[call]) if src is not None else -1,
                    one_line(data.strings.text(args_id)) if args_id else None, end,
                    one_line(data.strings.text(val_id)) if val_id else None, int(index.call_run[call]))


def merged_detail(index: MergedIndex, pos: int) -> MergedDetail | None:
    """The detail of the merged node at `pos` (None for a group: the caller shows its own)."""
    node = index.node(pos)
    if index.is_group(node):
        return None
    data = index.data
    fid = int(index.func[node])
    info = data.func(fid)
    count = int(index.count[node])
    calls = index.calls_of(node, MAX_CALLS)
    slow = index.slowest_call(node, calls)
    return MergedDetail(
        node=node, title=call_title(data, fid)[0],
        module=info.module if info is not None else None, kind=info.kind if info is not None else None,
        is_body=info is not None and info.kind in BODY_KINDS, count=count,
        total_ns=int(index.run[node]), self_ns=int(index.self_time[node]),
        slowest=path_call(index, slow) if slow else None,
        raised=int(index.raised[node]), unfinished=int(index.unfinished[node]),
        children=len(index.children(pos)),
        calls=[path_call(index, c) for c in calls.tolist()], more_calls=max(0, count - len(calls)),
        file=short_path(info.file, recorded_cwd(data)) if info is not None else "",
        line=info.line if info is not None else 0,
        source=excerpt(info.file, info.line, recorded_stdlib(data)) if info is not None and info.file else None,
    )
