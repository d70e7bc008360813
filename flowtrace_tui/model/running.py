"""Times of a call in a live session, where calls still running keep getting longer.

An index is a snapshot: a call open when it was built lasts until the session's end known then,
and its self time was computed from that. Between index updates the live view ticks a clock
(`now`, session ns); the tree row and the detail pane both ask `live_times` for the call's total
and self time at that clock, so that they agree. No Textual imports.
"""

from __future__ import annotations

from .index import TreeIndex


def live_times(index: TreeIndex, pos: int, now: int) -> tuple[int, int]:
    """(total, self) of the node at `pos` at session time `now` (0: not live, the index's).

    A running call's total is its elapsed time; the time since the snapshot is its own (self)
    unless a child of it is running too (then that time is the child's), or it is a generator
    or coroutine that was suspended (it may be suspended now: that time is nobody's). A call
    that ended after the snapshot has its recorded end in the data already."""
    node = index.node(pos)
    total, own = int(index.dur[node]), int(index.self_time[node])
    if not now or not 0 < node <= index.n:
        return total, own
    data = index.data
    t0 = int(data.col("t0")[node])
    if index.is_open(node):
        elapsed = max(total, now - t0)
        kids = index.children(pos)
        child_running = len(kids) > 0 and index.is_open(index.node(int(kids[-1])))
        if not child_running and not int(data.col("nsusp")[node]):
            own += elapsed - total
        return elapsed, own
    return int(data.col("t1")[node]) - t0, own
