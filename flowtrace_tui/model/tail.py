"""The newest calls of a followed session whose call columns are full: what keeps the live view
moving once a busy program has made more calls than the explorer holds.

A followed session's call columns are sized once (TraceData.expect_calls: 2^26 calls, 54 bytes
each) and are not grown: growing copies every column (seconds at that size: a frozen view) and
needs the old and the new columns at once, past a 6 GB address-space limit (the live view of a
program making 5 M calls a second stopped at 2^26 calls, ~13 s in). Once they are full, the
session's first calls stay as they are (`TraceData.n`: the session as its whole index, searches
and statistics see it) and each later call goes to a `TailCalls`: a fixed number of rows that
hold the newest calls and, pinned, the earlier calls they descend from (the calls still running
around them: the loop's caller, `<module>`). When its rows are full, the older half of the
newest calls is let go, with the texts that only they named (`StringTable.let_go`); the live
view shows windows of the newest calls (window.py) from then on.

The rows a `TailCalls` holds: its pins (sorted session ids) first, then the newest calls
`first..last` in order. Rows past `calls.size` are zero, as the loader's columns are.
"""

from __future__ import annotations

import numpy as np

from .loader import _CALL_COLS, _MARK_COLS, _Growable

TAIL_ROWS = 1 << 20  # the rows of a tail: 54 MB; half of them (~0.1 s of a busy program) kept at a let-go


class TailCalls:
    """See the module docstring. `first`: the session id of the first call it will hold."""

    def __init__(self, first: int, rows: int | None = None) -> None:
        self.calls = _Growable(_CALL_COLS, sentinel_row=False, capacity=rows or TAIL_ROWS)
        self.marks = _Growable(_MARK_COLS, sentinel_row=False)  # the MARK rows of the calls it holds
        self.pins = np.zeros(0, dtype=np.int64)
        self.first = first  # session id of the oldest newest call held (at row len(pins))
        self.last = first - 1  # the newest call read
        self.let_go = 0  # calls let go so far (neither held nor pinned any more)

    @property
    def held(self) -> int:
        """Calls held: pinned and newest."""
        return self.calls.size

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The rows of session call ids (-1 for a call not held)."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.full(len(ids), -1, dtype=np.int64)
        p = len(self.pins)
        run = (ids >= self.first) & (ids <= self.last)
        out[run] = ids[run] - self.first + p
        rest = np.flatnonzero(~run & (ids > 0))
        if p and len(rest):
            j = np.minimum(np.searchsorted(self.pins, ids[rest]), p - 1)
            out[rest] = np.where(self.pins[j] == ids[rest], j, -1)
        return out

    def values(self, name: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values of column `name` for `ids`, whether each is held); 0 where not."""
        rows = self.rows_of(ids)
        ok = rows >= 0
        col = self.calls.arrays[name]
        return np.where(ok, col[np.maximum(rows, 0)], 0).astype(col.dtype), ok

    def run(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Column `name` of the newest calls lo..hi (session ids, all held)."""
        p = len(self.pins)
        return self.calls.arrays[name][lo - self.first + p : hi - self.first + p + 1]

    def make_room(self, rows: int, whole: int) -> None:
        """Room for `rows` more calls: when full, only the newer half of the newest calls stays,
        with (pinned) the earlier calls they or later calls may descend from: those still running
        and the ancestors of those kept. `whole`: calls up to it are the session's columns'."""
        g = self.calls
        if g.size + rows <= g.cap:
            return
        p, size = len(self.pins), g.size
        keep = min(size - p, max(0, g.cap // 2 - rows))
        new_first = self.last + 1 - keep
        gone = np.concatenate([self.pins, np.arange(self.first, new_first, dtype=np.int64)])  # sorted
        a = g.arrays
        running = gone[a["how"][: len(gone)] == 0]  # (no EXIT row yet: later calls may be theirs)
        parents = a["parent"][size - keep : size]
        parents = parents[(parents > whole) & (parents < new_first)]  # (most are the columns' or kept: no sort of them)
        pins = self._ancestors_in(gone, np.concatenate([parents.astype(np.int64), running]), whole)
        kept_rows = np.concatenate([np.searchsorted(gone, pins), np.arange(size - keep, size)])
        for arr in a.values():
            arr[: len(kept_rows)] = arr[kept_rows]  # (the index makes a copy first)
            arr[len(kept_rows) : size] = 0
        self.let_go += len(gone) - len(pins)
        g.size, self.pins, self.first = len(kept_rows), pins, new_first
        self._keep_marks()
        if g.size + rows > g.cap:  # (a chunk larger than half the rows, or many pins)
            g.reserve(rows)

    def _ancestors_in(self, gone: np.ndarray, start: np.ndarray, whole: int) -> np.ndarray:
        """The calls of `gone` (sorted ids) among `start` and their ancestors (sorted)."""
        a = self.calls.arrays["parent"]
        found: list[np.ndarray] = []
        cur = np.unique(start[start > whole])
        while len(cur) and len(gone):
            j = np.minimum(np.searchsorted(gone, cur), len(gone) - 1)
            cur = cur[gone[j] == cur]
            found.append(cur)
            parents = a[np.searchsorted(gone, cur)].astype(np.int64)  # (rows of `gone` are 0..len-1)
            cur = np.unique(parents[parents > whole])
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def _keep_marks(self) -> None:
        """Only the MARK rows of the calls still held."""
        g = self.marks
        size = g.size
        if not size:
            return
        rows = np.flatnonzero(self.rows_of(g.arrays["call"][:size]) >= 0)
        for arr in g.arrays.values():
            arr[: len(rows)] = arr[rows]
            arr[len(rows) : size] = 0
        g.size = len(rows)

    def texts_named(self) -> np.ndarray:
        """The string ids the calls held and their MARK rows name (arguments, values, texts)."""
        c, m = self.calls, self.marks
        return np.concatenate([c.arrays["args"][: c.size], c.arrays["val"][: c.size],
                               m.arrays["ref"][: m.size]]).astype(np.int64)
