"""The functions view's table: one row per function, aggregated over every call of an index.

The numbers are `flowtrace stats`' (flowtrace/profile.py), computed here with numpy over the
index's columns instead of one streaming pass: `calls` (a generator or coroutine is one call per
object), `total` (the running time of the function's *outermost* calls -- calls with no ancestor
of the same function -- so recursion is not counted twice), `self`, `sum` and `max` of the calls'
running times (`mean` = sum / calls), `raised` (calls left by an exception) and the session's
total (the running time of the root calls), which a function's share is taken of.

Outermost calls come from the preorder: a call is inside an earlier call of its own function
exactly when that call's subtree [pos, end) holds its position. Sorted by (function, position)
-- a radix sort when there are fewer than 65,536 functions -- a call is outermost when no
earlier call of its function in that order ends after its position: one cumulative maximum over
all functions at once (each function's ends lifted above the previous function's).

`function_table` does it in two steps, so that a big session shows rows early: first everything
but `total` (per-call-id sums, no sort), then the outermost calls and `total`.

In a session of several processes each part's functions have their own ids; the table counts a
function (same module, qualified name, file and line) of several processes as one row, as
`flowtrace stats` sums it (`session_funcs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .index import TreeIndex, build_index
from .loader import HOW_RAISE, TraceData

COLUMNS = ("calls", "total", "self", "mean", "max", "share", "raised")  # sortable numbers


@dataclass(frozen=True)
class FunctionTable:
    """Per function with calls (aligned arrays, in function id order): `fids`, `calls`,
    `total`, `self_ns`, `sum_ns`, `max_ns`, `raised` (int64). `outer`: per call id 0..n, is the
    call outermost (None until `complete`); `session_total`: running time of the root calls.
    `index`: what it was computed from (its `n` calls); `func`: per call id 0..n its row's
    function id (`session_funcs`)."""

    index: TreeIndex
    func: np.ndarray
    fids: np.ndarray
    calls: np.ndarray
    total: np.ndarray
    self_ns: np.ndarray
    sum_ns: np.ndarray
    max_ns: np.ndarray
    raised: np.ndarray
    session_total: int
    outer: np.ndarray | None

    @property
    def complete(self) -> bool:
        """`total` is known (else the first step's table: total is 0 everywhere)."""
        return self.outer is not None

    @property
    def mean(self) -> np.ndarray:
        return self.sum_ns / np.maximum(self.calls, 1)

    @property
    def share(self) -> np.ndarray:
        return self.total / self.session_total if self.session_total else np.zeros(len(self.fids))

    def __len__(self) -> int:
        return len(self.fids)

    def row_of(self, fid: int) -> int:
        """The row of function id `fid`, -1 when it has no call."""
        i = int(np.searchsorted(self.fids, fid))
        return i if i < len(self.fids) and int(self.fids[i]) == fid else -1

    def column(self, name: str) -> np.ndarray:
        """A sortable column by its name in `COLUMNS`."""
        return {"calls": self.calls, "total": self.total, "self": self.self_ns, "mean": self.mean,
                "max": self.max_ns, "share": self.total, "raised": self.raised}[name]


def function_table(index: TreeIndex, first: Callable[[FunctionTable], None] | None = None,
                   cancelled: Callable[[], bool] = lambda: False) -> FunctionTable | None:
    """The table of every call of `index`; `first` is handed the table without `total` as soon
    as it is known. None when `cancelled()` said so between the steps."""
    data, n = index.data, index.n
    call_funcs = session_funcs(data, n)
    func = call_funcs[1:].astype(np.intp)  # once: every scatter below would convert it
    nf = len(data.functions)
    run = index.run[1 : n + 1]
    calls = np.bincount(func, minlength=nf)
    sum_ns = _sum_by(func, run, nf)
    self_ns = _sum_by(func, index.self_time[1 : n + 1], nf)
    max_ns = np.zeros(nf, dtype=np.int64)
    np.maximum.at(max_ns, func, run)
    raised = np.bincount(func[data.col("how")[1 : n + 1] == HOW_RAISE], minlength=nf)
    session_total = int(run[data.col("parent")[1 : n + 1] == 0].sum())
    fids = np.flatnonzero(calls)
    table = FunctionTable(index, call_funcs, fids, calls[fids], np.zeros(len(fids), dtype=np.int64), self_ns[fids],
                          sum_ns[fids], max_ns[fids], raised[fids].astype(np.int64), session_total, None)
    if first is not None:
        first(table)
    if cancelled():
        return None
    outer = outermost_calls(index)
    inner = np.flatnonzero(~outer[1:])  # calls inside a call of their own function: few
    total = sum_ns - _sum_by(func[inner], run[inner], nf)
    return FunctionTable(index, call_funcs, fids, table.calls, total[fids], table.self_ns, table.sum_ns, table.max_ns,
                         table.raised, session_total, outer)


def session_funcs(data: TraceData, n: int) -> np.ndarray:
    """Per call id 0..n its function id, one id per function over the processes of a session
    (`same_functions`); in a session of one process, the calls' own column."""
    func = data.col("func")[: n + 1]
    return same_functions(data)[func] if data.multi_process else func


def same_functions(data: TraceData) -> np.ndarray:
    """Per function id the id its row goes by: the first id with the same (module, qualified
    name, file, line). The n-th code object of that place in a process goes with the n-th of the
    others, so two `<string>` codes of one process stay two rows: how `flowtrace stats` merges
    processes (commands/stats.merged_times)."""
    same = np.arange(len(data.functions), dtype=data.col("func").dtype)
    first: dict[tuple[str, str, str, int, int], int] = {}
    seen: dict[tuple[int, str, str, str, int], int] = {}
    for fid, f in enumerate(data.functions):
        if f is None:
            continue
        place = (f.module, f.qualname, f.file, f.line)
        key = (data.process_of_function(fid), *place)
        nth = seen[key] = seen.get(key, 0) + 1
        same[fid] = first.setdefault((*place, nth), fid)
    return same


def _sum_by(func: np.ndarray, values: np.ndarray, nf: int) -> np.ndarray:
    """Per function id, the sum of `values` (int64, exact: an integer scatter-add)."""
    out = np.zeros(nf, dtype=np.int64)
    np.add.at(out, func, values)
    return out


def outermost_calls(index: TreeIndex) -> np.ndarray:
    """Per call id 0..n: True for a call with no ancestor of the same function (row 0: False).

    Ancestors are the call tree's: the task view's index (task roots taken out of their
    callers) is not that tree, so it is indexed again without groups for this."""
    if index.tasks_view:
        index = build_index(index.data, index.n, grouped=False)
    n, size = index.n, index.size
    fpos = index.data.col("func")[np.minimum(index.order, n)]  # per position (groups fixed below)
    fpos[index.pos_of[n + 1 :]] = 0  # group rows: function 0, sorted before every call
    small = int(fpos.max(initial=0)) < 1 << 16
    by_func = np.argsort(fpos.astype(np.uint16) if small else fpos, kind="stable")  # radix when small
    # positions grouped by function, increasing within each; lifted by (size + 1) per function
    # so that one running maximum restarts per function: an earlier function's lifted subtree
    # ends stay below any later function's lifted positions
    lift = fpos[by_func].astype(np.int64)
    del fpos
    lift *= size + 1
    reach = index.end[by_func] + lift
    np.maximum.accumulate(reach, out=reach)
    lift += by_func  # now each call's lifted position
    inside = np.empty(len(lift), dtype=bool)
    inside[:1] = False
    np.greater(reach[:-1], lift[1:], out=inside[1:])  # an earlier call of its function ends after it
    del reach, lift
    nodes = index.order[by_func]
    calls = nodes <= n
    outer = np.zeros(n + 1, dtype=bool)
    outer[nodes[calls]] = ~inside[calls]
    return outer
