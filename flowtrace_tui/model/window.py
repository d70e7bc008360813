"""The newest calls of a live session as a small session of their own: what the live view shows
while its index catches up with a program that makes calls faster than they can be indexed.

Indexing costs ~0.2-0.4 µs a call (grow.py) and a busy program makes 2-2.5 M calls a second on
this machine, on the same two cores: the index of the whole session can fall behind, and a
view that waits for it shows calls seconds old. `window_data(data, count)` takes the newest
`count` calls and their ancestors (the calls still running around them, e.g. `<module>`) out
of `data`, numbered 1..m in id order (ancestors first: their ids are smaller), as a
`TraceData` of its own; `build_index` indexes it in proportion to `count`, not to the session.
The pipeline (pipeline.py) publishes that index while the whole one is behind, and the whole
one again once it has caught up.

What a window shows differently from the whole session: its ancestors' children are only
those in the window (their self time counts the children left out), and searches, the
function list and `H` see the window's calls only. The status line says so (live_view.py).

`Window` maps window call ids to session call ids and back, so that the view (expanded
calls, the cursor) is carried between a window and the whole index (rows.py, app.py).
Functions, threads, texts and META are shared with the session's `TraceData` (they only grow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtrace.ftr.decode import Task

from .loader import TraceData
from .units import fmt_count


CATCHING_UP = "the earlier calls are still being indexed"
READING = "the earlier calls are still being read"  # a window read from the file's end (newest.py)
TOO_BIG = "the earlier calls are not indexed: the whole session needs more memory than the explorer may use"


def held_only(columns: int) -> str:
    """Why a window is all a followed session whose call columns are full shows (tail.py)."""
    return f"the earlier calls are not indexed: the explorer's memory holds the first {fmt_count(columns)} calls and the newest"


@dataclass(frozen=True)
class Window:
    """Calls `first..through` of a session and `n_ancestors` earlier calls (their ancestors):
    `ids[i]` is the session id of window call i (ids[0] = 0, then the ancestors, then
    first..through). `why`: why the view shows a window and not the whole session (what a
    search, the function list or `H` of it says)."""

    first: int
    through: int
    n_ancestors: int
    ids: np.ndarray
    why: str = CATCHING_UP

    @property
    def left_out(self) -> int:
        """Session calls before the window that it does not hold."""
        return self.first - 1 - self.n_ancestors

    def local(self, session_ids: np.ndarray) -> np.ndarray:
        """Window ids of session call ids (0 for a call the window does not hold)."""
        sid = np.asarray(session_ids, dtype=np.int64)
        out = np.zeros(len(sid), dtype=np.int64)
        a = self.n_ancestors
        inside = (sid >= self.first) & (sid <= self.through)
        out[inside] = sid[inside] - self.first + a + 1
        before = np.flatnonzero((sid > 0) & (sid < self.first))
        if a and len(before):
            anc = self.ids[1 : a + 1]
            j = np.minimum(np.searchsorted(anc, sid[before]), a - 1)
            out[before] = np.where(anc[j] == sid[before], j + 1, 0)
        return out


def window_data(data: TraceData, count: int, too_big: bool = False, why: str | None = None) -> TraceData:
    """The newest `count` calls of `data` and their ancestors as a TraceData of their own
    (see the module docstring); `data` itself is left as it is. A session of several processes
    keeps its process records (shared): the window's calls are grouped by process too. A
    session whose columns are full takes them from its tail (tail.py): its newest calls, and
    those still held of the ones they descend from. `too_big`: the whole session's index
    needs more memory than there is (windows only, not while catching up: `Window.why`);
    `why`: another reason (newest.py's windows, whose data holds the newest calls only)."""
    n = data.calls_read
    first = max(1, n - count + 1)
    if data.tail is not None:
        first = max(first, data.tail.first)
    anc = _ancestors(data, first, n)
    a = len(anc)
    m = a + n - first + 1
    ids = np.empty(m + 1, dtype=np.int64)
    ids[0] = 0
    ids[1 : a + 1] = anc
    ids[a + 1 :] = np.arange(first, n + 1, dtype=np.int64)
    if why is None:
        why = held_only(data.n) if data.tail is not None else TOO_BIG if too_big else CATCHING_UP
    win = Window(first, n, a, ids, why)
    out = TraceData(data.name, capacity=m)
    cols = out._calls.arrays
    for name, arr in cols.items():
        arr[: a + 1] = data.call_values(name, ids[: a + 1])
        arr[a + 1 : m + 1] = data.call_range(name, first, n)
    for name in ("parent", "root"):  # session ids -> window ids (every ancestor is held)
        cols[name][: m + 1] = win.local(cols[name][: m + 1])
    out._calls.size = m + 1
    _window_marks(data, out, win)
    out.functions, out.threads, out.strings = data.functions, data.threads, data.strings
    out.tasks = {tid: _task_in(t, win) for tid, t in list(data.tasks.items())}
    out.meta, out.ends, out.damage = data.meta, data.ends, data.damage
    out.processes, out.thread_process, out.function_process = data.processes, data.thread_process, data.function_process
    out.t_max, out.exits_seen = data.t_max, data.exits_seen
    out.window = win
    return out


def _ancestors(data: TraceData, first: int, n: int) -> np.ndarray:
    """The calls before `first` that calls first..n descend from (sorted session ids): the
    calls that were running when the window starts, a few per thread."""
    p = data.call_range("parent", first, n)
    cur = np.unique(p[(p > 0) & (p < first)]).astype(np.int64)
    found = [cur]
    while len(cur):
        cur = data.call_values("parent", cur).astype(np.int64)
        cur = np.unique(cur[cur > 0])
        found.append(cur)
    return np.unique(np.concatenate(found))


def _window_marks(data: TraceData, out: TraceData, win: Window) -> None:
    """The MARK rows of the window's calls (suspensions, resumes, exceptions), their call ids
    made the window's. One pass over the session's MARK rows (and its tail's)."""
    parts = [data._marks] + ([data.tail.marks] if data.tail is not None else [])
    picked = [(m, _window_rows(m.arrays["call"][: m.size], win)) for m in parts if m.size]
    total = sum(len(rows) for _, rows in picked)
    if not total:
        return
    g = out._marks
    g.reserve(total)
    for name, arr in g.arrays.items():
        arr[:total] = np.concatenate([m.arrays[name][rows] for m, rows in picked])
    for name in ("call", "other"):
        col = g.arrays[name][:total]
        col[:] = win.local(col)
    g.size = total


def _window_rows(call: np.ndarray, win: Window) -> np.ndarray:
    """The MARK rows (of `call`, their calls) that the window's calls have."""
    sel = call >= win.first
    if win.n_ancestors:
        sel |= np.isin(call, win.ids[1 : win.n_ancestors + 1])
    return np.flatnonzero(sel)


def _task_in(t: Task, win: Window) -> Task:
    """A task whose creator and root call are named by window ids (None: not in the window)."""
    def local(call: int | None) -> int | None:
        if not call:
            return call
        return int(win.local(np.array([call]))[0]) or None

    return Task(t.id, t.name, t.thread, local(t.creator), local(t.root))


def same_calls(old_data: TraceData, ids: np.ndarray, new_data: TraceData, new_n: int) -> np.ndarray:
    """Call ids of `old_data` as call ids of `new_data` (either may be a window), 0 where
    `new_data`'s first `new_n` calls do not hold the call."""
    ow, nw = old_data.window, new_data.window
    sid = ow.ids[ids] if ow is not None else np.asarray(ids, dtype=np.int64)
    out = nw.local(sid) if nw is not None else sid.astype(np.int64)
    out[out > new_n] = 0
    return out


def window_scope(data: TraceData, why: bool = False) -> str | None:
    """What a search or the function list says while it sees a window's calls only (the whole
    index is behind, or cannot be had): "newest 20,000 calls only" and, with `why`, the
    window's reason in brackets; None for the whole session."""
    win = data.window
    if win is None or not win.left_out:
        return None
    scope = f"newest {win.through - win.first + 1:,} calls only"
    return f"{scope} ({win.why})" if why else scope
