"""Running time of generators and coroutines: their lifetime minus the time they were suspended.

A generator or coroutine is one call from its first run to its end (docs/FORMAT.md, "Meaning of
the tree"), so its lifetime (`t1 - t0`) includes every stretch it spent suspended at a `yield`
or `await`. Shown as is, that misleads: an `asyncio.run` caller whose tasks' coroutines are its
children would get "self 0 ns" because its children's lifetimes overlap each other and add up
to more than its own. The index therefore works with the *running* time: a call is suspended
from each `suspend` mark to the call's next mark (the `resume` or `throw` that ran it again),
or to its end when nothing ran it again (a generator left suspended, closed silently, or still
alive when the session stopped). A `fold` mark (n runs in one row, FORMAT 1.1) runs only its
`run` nanoseconds from its first resume to the call's next mark: the rest of that stretch is
suspended (between its runs, and after its last yield).

Everything is vectorised over the MARK rows: one sort by (call, time), then each suspend's
interval is the gap to the next row of the same call, scatter-added per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from flowtrace.ftr import format as F

from .loader import TraceData

_WAKE = (F.MARK_SUSPEND, F.MARK_RESUME, F.MARK_THROW, F.MARK_FOLD)  # the marks that start/stop a run


def suspended_time(data: TraceData, n: int, end: np.ndarray) -> np.ndarray | None:
    """Per call id 0..n: nanoseconds spent suspended (int64), or None when no call of the
    first `n` was ever suspended.

    `end` (indexed by call id, at least n+1 long) is each call's end time, the session's "now"
    for a call with no end yet: a suspension that nothing resumed lasts until then. Marks of
    calls past `n` (a live session indexed up to n) are ignored."""
    return _suspended(data, n, lambda ids: end[ids])


def _suspended(data: TraceData, n: int, end_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    """`suspended_time` with the end times asked for only where needed (`end_of(call ids)`):
    a whole-trace end column would cost a full int64 pass even for a trace with no suspension."""
    mcall = data.mark_col("call")
    if len(mcall) == 0:
        return None
    kind = data.mark_col("kind")
    keep = np.isin(kind, _WAKE) & (mcall > 0) & (mcall <= n)
    if not keep.any():
        return None
    call = mcall[keep].astype(np.int64)
    t = data.mark_col("t")[keep]
    kind = kind[keep]
    if not ((kind == F.MARK_SUSPEND) | (kind == F.MARK_FOLD)).any():
        return None
    call, susp, gap = suspension_gaps(call, t, kind, data.mark_col("run")[keep], end_of)
    out = np.zeros(n + 1, dtype=np.int64)
    np.add.at(out, call[susp], gap)
    return out


def suspension_gaps(call: np.ndarray, t: np.ndarray, kind: np.ndarray, run: np.ndarray,
                    end_of: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wake MARK rows (suspend/resume/throw/fold; every such row of each call given, with the
    `run` column) in (call, time) order: their call ids, which rows suspend, and how long each
    such row kept its call suspended -- up to the call's next mark, else its end
    (`end_of(call ids)`), less a fold's running time."""
    # lexsort is stable, so equal times keep file order (a suspend then a resume written in the
    # same nanosecond stay in that order)
    order = np.lexsort((t, call))
    call = call[order]
    t = t[order]
    kind = kind[order]
    run = run[order]
    # each row's next event in the same call, else the call's end
    nxt = np.empty_like(t)
    nxt[:-1] = t[1:]
    last = np.ones(len(call), dtype=bool)
    np.not_equal(call[1:], call[:-1], out=last[:-1])
    nxt[last] = end_of(call[last])
    susp = (kind == F.MARK_SUSPEND) | (kind == F.MARK_FOLD)
    gap = nxt[susp] - t[susp] - run[susp]  # run is 0 on suspend rows
    np.maximum(gap, 0, out=gap)  # clock oddities and an end before a mark never add time
    return call, susp, gap


def running_time(data: TraceData, n: int, t0: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """Per node id (the layout of `dur`: calls 0..n, then any group nodes): lifetime minus
    suspended time, clipped to 0..lifetime.

    Returns `dur` itself (no copy) when no call was suspended: then both are the same."""
    susp = _suspended(data, n, lambda ids: t0[ids] + dur[ids])
    if susp is None:
        return dur
    run = dur.copy()
    np.subtract(run[: n + 1], np.minimum(susp, dur[: n + 1]), out=run[: n + 1])
    return run


# --- where each run of a generator or coroutine counts -----------------------------------------
# A call's self time is its running time less what ran inside it (flowtrace/profile.py): its
# children, and the runs of generators and coroutines that ran in it. A generator's first run is
# its parent's child time; a later run counts in the call its resume, throw or fold names (a
# context manager's generator runs first in `__enter__`, after its yield in `__exit__`). The
# index adds every call's running time to its parent and then moves the runs that ran elsewhere:
# few (only calls resumed by another call than their parent), kept as rows (call, runner, ns).

_NO_ROWS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class ElsewhereRuns:
    """Runs of calls that ran in another call than the call's parent, one row per run (sorted by
    call): `runner` 0 when no recorded call ran it (nobody's child time)."""

    call: np.ndarray
    runner: np.ndarray
    ns: np.ndarray

    @staticmethod
    def none() -> "ElsewhereRuns":
        return ElsewhereRuns(_NO_ROWS, _NO_ROWS, _NO_ROWS)

    def away(self) -> tuple[np.ndarray, np.ndarray]:
        """(calls, ns of their runs elsewhere), the calls sorted."""
        return sum_sorted(self.call, self.ns)

    def credits(self) -> tuple[np.ndarray, np.ndarray]:
        """(runner calls, ns that ran in them), sorted by runner; nobody's left out."""
        has = self.runner > 0
        order = np.argsort(self.runner[has], kind="stable")
        return sum_sorted(self.runner[has][order], self.ns[has][order])

    def split(self, calls: np.ndarray) -> tuple["ElsewhereRuns", "ElsewhereRuns"]:
        """(the rows of other calls than `calls`, the rows of `calls`)."""
        of = np.isin(self.call, calls)
        return (ElsewhereRuns(self.call[~of], self.runner[~of], self.ns[~of]),
                ElsewhereRuns(self.call[of], self.runner[of], self.ns[of]))

    def moves(self, run: np.ndarray, cparent: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """What these runs do to children's totals, as (call ids, ns) parts: each call's parent
        gives back the runs that were not its (at most the call's running time `run`), and the
        calls they ran in take them (`cparent`: the call tree's parents)."""
        ids, away = self.away()
        up = cparent[ids].astype(np.int64)
        has = up > 0
        return [(up[has], -np.minimum(run[ids[has]], away[has])), self.credits()]

    def merged(self, other: "ElsewhereRuns") -> "ElsewhereRuns":
        """These rows and `other`'s, sorted by call."""
        call = np.concatenate((self.call, other.call))
        order = np.argsort(call, kind="stable")
        return ElsewhereRuns(call[order], np.concatenate((self.runner, other.runner))[order],
                             np.concatenate((self.ns, other.ns))[order])


def sum_sorted(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys, summed values) of keys in sorted order."""
    if not len(keys):
        return _NO_ROWS, _NO_ROWS
    first = np.empty(len(keys), dtype=bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return keys[first].astype(np.int64), np.add.reduceat(values.astype(np.int64), np.flatnonzero(first))


def elsewhere_runs(call: np.ndarray, t: np.ndarray, kind: np.ndarray, other: np.ndarray, run: np.ndarray,
                   parent_of: Callable[[np.ndarray], np.ndarray], end_of: Callable[[np.ndarray], np.ndarray],
                   n: int) -> ElsewhereRuns:
    """The runs elsewhere of the calls whose wake MARK rows are given (every such row of each
    call; `other` is the resumer column). A run begins at a resume or throw naming a call other
    than the parent and lasts to the call's next wake row, or to its end (`end_of(ids)`); a
    fold naming another call runs its `run` ns there. A run counts in a runner that had not ended
    before it did (else, as in profile.py's pass, it stays the parent's: rows of a stopped
    session); a runner beyond `n` is not known yet (the same)."""
    if not len(call):
        return ElsewhereRuns.none()
    # only the calls with a run elsewhere need their rows sorted (few: a whole-trace sort of
    # the MARK rows again was +40 % of an index build)
    wake = (kind == F.MARK_RESUME) | (kind == F.MARK_THROW) | (kind == F.MARK_FOLD)
    some = wake & (other.astype(np.int64) != parent_of(call))
    if not some.any():
        return ElsewhereRuns.none()
    wanted = np.zeros(int(call.max()) + 1, dtype=bool)
    wanted[call[some]] = True
    sel = wanted[call]
    call, t, kind, other, run = call[sel], t[sel], kind[sel], other[sel], run[sel]
    order = np.lexsort((t, call))  # stable: equal times keep file order, as timing does
    call = call[order].astype(np.int64)
    t = t[order].astype(np.int64)
    kind = kind[order]
    other = other[order].astype(np.int64)
    run = run[order].astype(np.int64)
    nxt = np.empty_like(t)
    nxt[:-1] = t[1:]
    last = np.ones(len(call), dtype=bool)
    np.not_equal(call[1:], call[:-1], out=last[:-1])
    nxt[last] = end_of(call[last])
    away = other != parent_of(call)
    starts = away & ((kind == F.MARK_RESUME) | (kind == F.MARK_THROW))
    folds = away & (kind == F.MARK_FOLD)
    rc = np.concatenate((call[starts], call[folds]))
    rr = np.concatenate((other[starts], other[folds]))
    ns = np.concatenate((nxt[starts] - t[starts], run[folds]))
    ends = np.concatenate((nxt[starts], t[folds]))
    keep = ns > 0
    known = (rr > 0) & (rr <= n)
    alive = np.zeros(len(rr), dtype=bool)
    alive[known] = end_of(rr[known]) >= ends[known]
    keep &= (rr == 0) | alive
    order = np.argsort(rc[keep], kind="stable")
    return ElsewhereRuns(rc[keep][order], rr[keep][order], ns[keep][order])


def all_elsewhere_runs(data: TraceData, n: int, parent: np.ndarray, end_of: Callable[[np.ndarray], np.ndarray]) -> ElsewhereRuns:
    """`elsewhere_runs` of calls 1..n from every wake MARK row (`parent`: the call tree's)."""
    mcall = data.mark_col("call")
    if len(mcall) == 0:
        return ElsewhereRuns.none()
    kind = data.mark_col("kind")
    keep = np.isin(kind, _WAKE) & (mcall > 0) & (mcall <= n)
    if not keep.any():
        return ElsewhereRuns.none()
    return elsewhere_runs(mcall[keep], data.mark_col("t")[keep], kind[keep], data.mark_col("other")[keep],
                          data.mark_col("run")[keep], lambda ids: parent[ids], end_of, n)
