"""The memory a chain of grown indexes lives in, so that a live update writes only what changed.

Indexes are immutable snapshots (the UI draws one while the next is made), so an update cannot
write into the arrays of the index it grows from. Instead each per-node array (order, depth,
end, pos_of, parent, dur, run, self_time, heavy) has a few buffers in a `BufferPool`; an update
takes one that no living index uses any more (no numpy view of it exists: its reference count
says so) and brings it up to date by copying from the previous index only the entries that
changed since the version the buffer holds. Every version logs what it changed (everything
from `lo` on, plus a few entries before). In a steady live session two buffers take turns, and
each update copies the previous update's changes: work in proportion to what is new, not to
the session.

Levels (positions per depth) grow at their ends: a level buffer is appended in place, past the
length every older index sees, and copied only when an update inserts into its middle.

One update is one `Checkout`: `take` the arrays it writes, say what it `changed`, `commit`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

POOL_MAX = 3  # buffers kept per array: the index on screen, the one on its way, one spare
LOG_KEEP = 6  # versions whose changes are remembered (a buffer older than that is recopied)


class PooledBuffer:
    """One buffer of a pool; `version`: the index version whose content it holds (None: the
    content is unknown, e.g. being written)."""

    __slots__ = ("buf", "version")

    def __init__(self, buf: np.ndarray, version: int | None) -> None:
        self.buf = buf
        self.version = version

    def unused(self) -> bool:
        """No index and no view holds the buffer: 2 = this attribute + getrefcount's argument
        (a helper taking the array as an argument would hold a third reference)."""
        return sys.getrefcount(self.buf) <= 2


@dataclass
class _Level:
    """A level's buffer and how much of it the newest index claims."""

    buf: np.ndarray | None = None
    claimed: int = -1


# What one version changed in an array: every entry from `lo` on, and the entries `ids` before.
Changes = tuple[int, np.ndarray]


class BufferPool:
    """Buffers per array name, the log of what each version changed, and the level buffers."""

    def __init__(self) -> None:
        self.pools: dict[str, list[PooledBuffer]] = {}
        self.log: dict[int, tuple[int | None, dict[str, Changes]]] = {}  # version -> (parent, changes)
        self.next_version = 1
        self.levels: list[_Level] = []
        self.n_allocated = 0  # buffers allocated so far (spreads their capacities, see `take`)

    def checkout(self, base_version: int | None) -> "Checkout":
        """Start an update of the index at `base_version` (None: not from this pool)."""
        version = self.next_version
        self.next_version += 1
        return Checkout(self, base_version, version)

    def take(self, name: str, old_arr: np.ndarray, base_version: int | None, size: int) -> tuple[PooledBuffer, np.ndarray]:
        """A buffer view of `size` elements whose first len(old_arr) hold `old_arr`."""
        pool = self.pools.setdefault(name, [])
        for e in pool:
            if not e.unused() or e.buf.dtype != old_arr.dtype or len(e.buf) < size:
                continue
            since = self._versions_since(base_version, e.version)
            if since is None:
                continue
            self._bring_up_to_date(e.buf, old_arr, name, since)
            e.version = None
            return e, e.buf[:size]
        return self._allocate(pool, old_arr, size)

    def _bring_up_to_date(self, buf: np.ndarray, old_arr: np.ndarray, name: str, since: list[int]) -> None:
        """Copy into `buf` what the versions `since` changed in `old_arr`."""
        n_old = len(old_arr)
        lo, idx = n_old, []
        for v in since:
            l, i = self.log[v][1].get(name, (0, None))
            lo = min(lo, l)
            if i is not None and len(i):
                idx.append(i)
        if lo < n_old:
            buf[lo:n_old] = old_arr[lo:]
        if idx:
            i = np.concatenate(idx)
            i = i[i < lo]
            buf[i] = old_arr[i]

    def _allocate(self, pool: list[PooledBuffer], old_arr: np.ndarray, size: int) -> tuple[PooledBuffer, np.ndarray]:
        """None usable: a new buffer, with room to grow (capacity never written costs no memory).
        A free buffer too small for this size is of no more use (sizes only grow): let it go now,
        not when the pool is full (its memory was written: it counts until freed)."""
        pool[:] = [e for e in pool if not e.unused() or len(e.buf) >= size]
        free = [e for e in pool if e.unused()]
        while len(pool) >= POOL_MAX and free:
            pool.remove(free.pop(0))
        # Capacity 3x-5x the size, a different factor for each new buffer (a low-discrepancy
        # sequence): every array of an update has the same size, and with one factor they would
        # all outgrow their buffers in the same update -- one stall copying them all (~70 ms at
        # 2M calls, and the throttle then waits twice that); spread, each copy comes on its own.
        self.n_allocated += 1
        grow = 3.0 + 2.0 * ((self.n_allocated * 0.6180339887) % 1.0)
        b = np.empty(max(1024, int(grow * size)), dtype=old_arr.dtype)
        b[: len(old_arr)] = old_arr
        e = PooledBuffer(b, None)
        pool.append(e)
        return e, b[:size]

    def _versions_since(self, v: int | None, held: int | None) -> list[int] | None:
        """Versions after `held` up to `v` (newest first), None when `held` is not an ancestor
        of `v` within the log."""
        if v is None or held is None:
            return None
        out: list[int] = []
        while v != held:
            entry = self.log.get(v)
            if entry is None or len(out) > LOG_KEEP:
                return None
            out.append(v)
            v = entry[0]
            if v is None:
                return None
        return out

    def commit(self, version: int, parent: int | None, changes: dict[str, Changes], used: list[PooledBuffer]) -> None:
        """Log `version` (made from `parent`: what each array changed) and tag its buffers."""
        self.log[version] = (parent, changes)
        for old in [v for v in self.log if v <= version - LOG_KEEP]:
            del self.log[old]
        for e in used:
            e.version = version

    def level(self, d: int, lv: np.ndarray, keep: int, tail: np.ndarray) -> np.ndarray:
        """Level `d` of the new index: `lv[:keep]` (the old level's unchanged part) then
        `tail` (sorted positions). Appended in place when `lv` is the newest claim on its
        buffer and nothing of it changed."""
        while len(self.levels) <= d:
            self.levels.append(_Level())
        ent = self.levels[d]
        buf = ent.buf
        n = keep + len(tail)
        if keep == len(lv) and buf is not None and ent.claimed == len(lv) and (len(lv) == 0 or lv.base is buf):
            if not len(tail):
                return lv
            if n > len(buf):  # full: a bigger buffer (older indexes keep the old one)
                nb = np.empty(max(1024, 2 * n), dtype=np.int32)
                nb[: len(lv)] = lv
                ent.buf = buf = nb
            buf[len(lv) : n] = tail
        else:
            buf = np.empty(max(1024, 2 * n), dtype=np.int32)
            buf[:keep] = lv[:keep]
            buf[keep:n] = tail
            ent.buf = buf
        ent.claimed = n
        return buf[:n]


@dataclass
class Checkout:
    """One update's use of a pool: the arrays it took, what it changed, its version."""

    pool: BufferPool
    base_version: int | None
    version: int
    used: list[PooledBuffer] = field(default_factory=list)
    changes: dict[str, Changes] = field(default_factory=dict)

    def take(self, name: str, old_arr: np.ndarray, size: int) -> np.ndarray:
        """A writable array of `size` elements starting with `old_arr`'s (see `BufferPool.take`)."""
        e, view = self.pool.take(name, old_arr, self.base_version, size)
        self.used.append(e)
        return view

    def changed(self, name: str, lo: int, ids: np.ndarray) -> None:
        """This update wrote every entry of array `name` from `lo` on, and `ids` before it."""
        self.changes[name] = (lo, ids)

    def commit(self) -> None:
        self.pool.commit(self.version, self.base_version, self.changes, self.used)
