"""From one function of the functions table: who calls it, what it calls, and its slowest calls.

Callers and callees are aggregated per function pair as `flowtrace export --format pstats`
writes them (flowtrace/profile.py's edges): per (caller, callee) pair, `calls` (every call of the
callee made directly by a call of the caller), `total` (the running time of those calls that are
outermost for the callee -- recursion is not counted twice) and `self` (their self time). A root
call's caller is function 0 ("no caller"). Each is a pass over the call columns (a compare and a
gather), done in a worker when a function is selected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .functions import FunctionTable, outermost_calls

NO_CALLER = 0  # the caller "function" of root calls


@dataclass(frozen=True)
class Links:
    """Callers or callees of one function, largest total first (then by function id): aligned
    arrays `fids`, `calls`, `total`, `self_ns`."""

    fids: np.ndarray
    calls: np.ndarray
    total: np.ndarray
    self_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.fids)


@dataclass(frozen=True)
class SlowCalls:
    """A function's calls, slowest (running time) first, ties by call id; at most `limit` of
    `count` calls."""

    ids: np.ndarray
    run: np.ndarray
    count: int


def _outer(table: FunctionTable) -> np.ndarray:
    return table.outer if table.outer is not None else outermost_calls(table.index)


def callers(table: FunctionTable, fid: int) -> Links:
    """The functions whose calls called `fid` directly (NO_CALLER for its root calls)."""
    func = table.func
    ids = np.flatnonzero(func == fid)
    ids = ids[ids > 0]
    return _aggregate(table, func[table.index.data.col("parent")[ids]], ids)


def callees(table: FunctionTable, fid: int) -> Links:
    """The functions that calls of `fid` called directly."""
    data, n = table.index.data, table.index.n
    func = table.func
    ids = np.flatnonzero(func[data.col("parent")[1 : n + 1]] == fid) + 1  # func[0] is 0: no root
    return _aggregate(table, func[ids], ids)


def _aggregate(table: FunctionTable, keys: np.ndarray, ids: np.ndarray) -> Links:
    """Per distinct key (a function id), the calls `ids` with that key added up."""
    fids, which = np.unique(keys.astype(np.int64), return_inverse=True)
    k = len(fids)
    run = table.index.run[ids]
    calls = np.bincount(which, minlength=k).astype(np.int64)
    total = np.zeros(k, dtype=np.int64)
    np.add.at(total, which, np.where(_outer(table)[ids], run, 0))
    own = np.zeros(k, dtype=np.int64)
    np.add.at(own, which, table.index.self_time[ids])
    order = np.lexsort((fids, -total))
    return Links(fids[order], calls[order], total[order], own[order])


def slowest_calls(table: FunctionTable, fid: int, limit: int = 1000) -> SlowCalls:
    """The calls of `fid`, longest running time first, ties by call id (at most `limit`)."""
    ids = np.flatnonzero(table.func == fid)
    ids = ids[ids > 0]
    count = len(ids)
    run = table.index.run[ids]
    if count > limit:  # only the slowest `limit` are sorted: those above the limit's time, then
        cut = np.partition(run, count - limit)[count - limit]  # the first (by id) at that time
        keep = np.flatnonzero(run > cut)
        ties = np.flatnonzero(run == cut)[: limit - len(keep)]
        pick = np.concatenate((keep, ties))
        ids, run = ids[pick], run[pick]
    order = np.lexsort((ids, -run))
    return SlowCalls(ids[order], run[order], count)
