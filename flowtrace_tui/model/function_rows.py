"""What the functions view shows: the table's rows in the chosen order, the search's filter, and
each line's texts (the widgets only lay them out).

Order: by a column of `functions.COLUMNS`, largest first by default, ties by (qualified name,
module, function id) as `flowtrace stats` orders them. A table still without `total` (the first
step of `function_table`) is ordered by the sum of its calls' times in place of total: the same
number for a function that does not recurse, so rows rarely move when total arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtrace.printing import short_path

from .function_links import NO_CALLER, Links, SlowCalls
from .functions import COLUMNS, FunctionTable
from .loader import HOW_OPEN, HOW_RAISE, HOW_UNFINISHED, TraceData
from .row_view import call_title, one_line, recorded_cwd
from .search import Query, find, name_lut
from .units import fmt_ns

PENDING = "…"  # a number not computed yet


@dataclass(frozen=True)
class FunctionSort:
    column: str = "total"
    descending: bool = True

    def next(self, step: int = 1) -> "FunctionSort":
        """The next (or previous) column, largest first."""
        return FunctionSort(COLUMNS[(COLUMNS.index(self.column) + step) % len(COLUMNS)], True)

    def reversed(self) -> "FunctionSort":
        return FunctionSort(self.column, not self.descending)

    def describe(self) -> str:
        return f"{self.column} {'↓' if self.descending else '↑'}"


def name_order(data: TraceData, fids: np.ndarray) -> np.ndarray:
    """Rank of each function by (qualified name, module, id): the tie-break of every order."""
    funcs = data.functions
    keys = [(f.qualname, f.module, f.id) if f is not None else ("", "", fid)
            for fid, f in ((int(i), funcs[int(i)] if int(i) < len(funcs) else None) for i in fids)]
    rank = np.empty(len(fids), dtype=np.int64)
    rank[sorted(range(len(keys)), key=keys.__getitem__)] = np.arange(len(keys))
    return rank


def ordered_rows(table: FunctionTable, sort: FunctionSort, keep: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of `table` in display order (only rows where `keep` is True, when given)."""
    if sort.column in ("total", "share") and not table.complete:
        values = table.sum_ns
    else:
        values = table.column(sort.column)
    values = -values if sort.descending else values
    order = np.lexsort((name_order(table.index.data, table.fids), values))
    return order if keep is None else order[keep[order]]


def search_keep(table: FunctionTable, query: Query) -> np.ndarray:
    """Per row: does the function have a call the tree's search finds? By name alone the function
    table is matched (no pass over the calls); with argument text, the hits' functions."""
    data = table.index.data
    if not query.in_text:
        lut = name_lut(data, query.compile())
        return lut[table.fids]
    hits = find(table.index, query)
    nodes = table.index.order[hits]
    hit_funcs = np.unique(table.func[nodes[nodes <= table.index.n]])
    return np.isin(table.fids, hit_funcs)


@dataclass(frozen=True, slots=True)
class FunctionLine:
    """One row of the functions table as texts: `name` (qualified), `module`, `where`
    (file:line, relative to the recorded working directory when inside it), then the numbers."""

    fid: int
    name: str
    module: str
    where: str
    calls: str
    total: str
    self_time: str
    mean: str
    max_time: str
    share: str
    raised: str


def function_line(table: FunctionTable, row: int) -> FunctionLine:
    data = table.index.data
    fid = int(table.fids[row])
    info = data.func(fid)
    where = f"{short_path(info.file, recorded_cwd(data))}:{info.line}" if info is not None and info.file else ""
    done = table.complete
    share = f"{100 * table.total[row] / table.session_total:.1f}%" if table.session_total else "-"
    return FunctionLine(fid, data.func_name(fid), info.module if info is not None else "", where,
                        f"{int(table.calls[row]):,}", fmt_ns(int(table.total[row])) if done else PENDING,
                        fmt_ns(int(table.self_ns[row])), fmt_ns(round(float(table.mean[row]))),
                        fmt_ns(int(table.max_ns[row])), share if done else PENDING, f"{int(table.raised[row]):,}")


@dataclass(frozen=True, slots=True)
class LinkLine:
    """One caller or callee: the function's name and module, calls, total and self."""

    fid: int
    name: str
    module: str
    calls: str
    total: str
    self_time: str


def link_line(data: TraceData, links: Links, i: int) -> LinkLine:
    fid = int(links.fids[i])
    info = data.func(fid)
    name = "(no caller: a root call)" if fid == NO_CALLER else data.func_name(fid)
    return LinkLine(fid, name, info.module if info is not None else "", f"{int(links.calls[i]):,}",
                    fmt_ns(int(links.total[i])), fmt_ns(int(links.self_ns[i])))


@dataclass(frozen=True, slots=True)
class CallLine:
    """One of a function's calls: when it started (from the session's first call), its running
    time, how it ended, its thread, its arguments."""

    call: int
    start: str
    total: str
    end: str
    thread: str
    args: str


def call_line(table: FunctionTable, calls: SlowCalls, i: int) -> CallLine:
    data = table.index.data
    cid = int(calls.ids[i])
    first = int(data.col("t0")[1]) if table.index.n else 0
    how = int(data.col("how")[cid])
    end = "raised" if how == HOW_RAISE else "running" if how in (HOW_OPEN, HOW_UNFINISHED) else ""
    _, is_body = call_title(data, int(data.col("func")[cid]))
    args = "" if is_body else one_line(data.strings.text(int(data.col("args")[cid])))
    return CallLine(cid, "+" + fmt_ns(int(data.col("t0")[cid]) - first), fmt_ns(int(calls.run[i])), end,
                    data.thread_name(int(data.col("thread")[cid])), args)
