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
