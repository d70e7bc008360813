"""Growing a live session's index with the calls that arrived, instead of rebuilding it.

`grow_index(old, data)` returns exactly what `build_index(data, grouped=old.grouped)` would
(same arrays, same groups), doing work in proportion to what is new. Indexes stay immutable
snapshots (the UI draws one while the next is made); the memory they live in is recycled by
`_Store`, so an update copies only what the previous update changed, not the session.

Where new calls go. A new call's parent is a new call or an old node (a call still running,
a suspended generator, a thread/task group, or the top level): the new calls form subtrees hung
under such *attachment* nodes. Siblings keep start (id) order, so under an attachment `q` the new
subtrees come after all of `q`'s old children: as one block at `q`'s (old) subtree end. With the
old preorder kept, everything is then an insertion of blocks:

- an old node at position p moves to p + C(p), C(p) = the new calls in blocks inserted at or
  before p (a block at q's end precedes the old node found there);
- its subtree grows by the new calls attached inside it: S(end) - S(pos), S(t) = the new calls
  attached under nodes at positions < t;
- the block of `q` ends where `q`'s new subtree ends; within it, the new subtrees are laid out by
  `index._positions` run on the new calls alone -- or, when their id order is already their
  preorder (one thread, no generator resumed under an older caller: the usual update), by their
  ids, with only their subtree sizes computed (`_local_preorder`).

Nothing before the first insertion point P moves: there only the subtree ends of the attachments'
ancestors change. A single-threaded program only ever grows at the end of the preorder (P = the
old size): no old position moves at all. A call landing in an earlier thread's group or under an
old suspended generator moves the positions after it, which is one vectorised pass over them.

Times: durations change only for calls that were open (the session's end moved, or they ended),
running times only for those and calls with new MARK rows, and children's totals only for
their parents and the attachments; `GrowState` keeps the totals those need.

Rebuilt from scratch instead (rare, and always correct): new groups (a new thread or task among
the roots, or grouping turned on), a depth that needs another integer type, calls running in
another thread than their parent while threads are grouped (siblings are then ordered by thread).

Costs that still follow the session rather than the update: inserting calls before the end of
the preorder (an earlier thread group, an old generator) moves every position after that point;
a session with generators or coroutines scans the MARK columns once per update; the first
update after a whole build copies the arrays once (into the store).
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass

import numpy as np

from flowtrace.ftr import format as F

from .index import Group, GrowState, TreeIndex, _positions, build_index
from .loader import HOW_OPEN, TraceData, _depth_and_root
from .timing import _WAKE, suspension_gaps

_WAKE_LUT = np.zeros(256, dtype=bool)  # by MARK kind (a u8 column)
_WAKE_LUT[list(_WAKE)] = True


class _Rebuild(Exception):
    """This update cannot be an incremental one (see the module docstring)."""


@dataclass(frozen=True)
class GrowDelta:
    """How an index extends the one it grew from (`prev`, a weak reference): old positions at or
    after `first` move by `kcum[searchsorted(ins, p, "right")]`; `new_tops` are the new positions of
    the new calls hung under old nodes, `att_at` the old positions of those nodes (-1: the top
    level; each once: they are few, the new tops many) and `top_att` each top's index into it.
    Used to carry the view (expanded nodes, visible rows) without a whole-tree pass."""

    prev: weakref.ref
    first: int
    ins: np.ndarray
    kcum: np.ndarray
    new_tops: np.ndarray
    att_at: np.ndarray
    top_att: np.ndarray

    @property
    def tops_at(self) -> np.ndarray:
        """The old position each new top hangs under (-1: the top level)."""
        return self.att_at[self.top_att]

    def move(self, pos: np.ndarray) -> np.ndarray:
        """New positions of old positions (increasing in, increasing out): the shift is constant
        between two insertion points, so one add per piece."""
        out = pos.copy()
        at = np.searchsorted(pos, self.ins, side="left").tolist() + [len(pos)]
        for j in range(len(self.ins)):
            if at[j] < at[j + 1]:
                out[at[j] : at[j + 1]] += int(self.kcum[j + 1])
        return out


_POOL_MAX = 3  # buffers kept per array: the index on screen, the one on its way, one spare
_LOG_KEEP = 6  # versions whose changes are remembered (a buffer older than that is recopied)
_SHIFT_CHUNK = 1 << 20  # positions moved per pass when calls land before the end
_SPARSE_MAX = 1 << 16  # more changed entries than this are logged as "everything" (memory)


class _Buf:
    """One buffer of a `_Store` pool; `tag`: the version whose content it holds (None: the
    content is unknown, e.g. being written)."""

    __slots__ = ("buf", "tag")

    def __init__(self, buf: np.ndarray, tag: int | None) -> None:
        self.buf = buf
        self.tag = tag


class _Store:
    """The memory a chain of grown indexes lives in, so that an update writes only what changed.

    Snapshots are immutable (the UI draws one while the next is made), so an update cannot
    write into the arrays of the index it grows from. Instead each array (order, depth, end,
    pos_of, parent, dur, run, self_time) has a few buffers; an update takes one that no living
    index uses any more (no numpy view of it exists: its reference count says so), brings it up
    to date by copying from the previous index only the entries that changed since the version
    the buffer holds (every version logs what it changed: everything from `lo` on, plus a few
    entries before), then writes its own changes. In a steady live session two buffers take
    turns, and each update copies the previous update's changes: work in proportion to what is
    new, not to the session. Levels (positions per depth) grow at their ends: a level buffer is
    appended in place, past the length every older index sees (`levels`: [buffer, length
    claimed by the newest index]), and copied only when an update inserts into its middle."""

    def __init__(self) -> None:
        self.pools: dict[str, list[_Buf]] = {}
        self.log: dict[int, tuple[int | None, dict[str, tuple[int, np.ndarray]]]] = {}
        self.next_ver = 1
        self.levels: list[list] = []
        self.n_new = 0  # buffers allocated so far (spreads their capacities, see `take`)

    def take(self, name: str, old_arr: np.ndarray, old_ver: int | None, size: int) -> tuple[_Buf, np.ndarray]:
        """A buffer view of `size` elements whose first len(old_arr) hold `old_arr`."""
        pool = self.pools.setdefault(name, [])
        n_old = len(old_arr)
        for e in pool:
            # 2 = the attribute + getrefcount's argument: no index, no view uses it
            if sys.getrefcount(e.buf) > 2 or e.buf.dtype != old_arr.dtype or len(e.buf) < size:
                continue
            path = self._path(old_ver, e.tag)
            if path is None:
                continue
            lo, idx = n_old, []
            for v in path:
                l, i = self.log[v][1].get(name, (0, None))
                lo = min(lo, l)
                if i is not None and len(i):
                    idx.append(i)
            b = e.buf
            if lo < n_old:
                b[lo:n_old] = old_arr[lo:]
            if idx:
                i = np.concatenate(idx)
                i = i[i < lo]
                b[i] = old_arr[i]
            e.tag = None
            return e, b[:size]
        # none usable: a new one, with room to grow (capacity never written costs no memory).
        # A free buffer too small for this size is of no more use (sizes only grow): let it go
        # now, not when the pool is full (its memory was written: it counts until freed).
        pool[:] = [e for e in pool if sys.getrefcount(e.buf) > 2 or len(e.buf) >= size]
        free = [e for e in pool if sys.getrefcount(e.buf) <= 2]
        while len(pool) >= _POOL_MAX and free:
            pool.remove(free.pop(0))
        # Capacity 3x-5x the size, a different factor for each new buffer (a low-discrepancy
        # sequence): every array of an update has the same size, and with one factor they would
        # all outgrow their buffers in the same update -- one stall copying them all (~70 ms at
        # 2M calls, and the throttle then waits twice that); spread, each copy comes on its own.
        self.n_new += 1
        grow = 3.0 + 2.0 * ((self.n_new * 0.6180339887) % 1.0)
        b = np.empty(max(1024, int(grow * size)), dtype=old_arr.dtype)
        b[:n_old] = old_arr
        e = _Buf(b, None)
        pool.append(e)
        return e, b[:size]

    def _path(self, v: int | None, tag: int | None) -> list[int] | None:
        """Versions after `tag` up to `v` (newest first), None when `tag` is not an ancestor."""
        if v is None or tag is None:
            return None
        out: list[int] = []
        while v != tag:
            entry = self.log.get(v)
            if entry is None or len(out) > _LOG_KEEP:
                return None
            out.append(v)
            v = entry[0]
            if v is None:
                return None
        return out

    def commit(self, parent: int | None, dirty: dict[str, tuple[int, np.ndarray]], used: list[_Buf]) -> int:
        """Log a new version made from `parent` (what each array changed) and tag its buffers."""
        ver = self.next_ver
        self.next_ver += 1
        self.log[ver] = (parent, dirty)
        for old in [v for v in self.log if v <= ver - _LOG_KEEP]:
            del self.log[old]
        for e in used:
            e.tag = ver
        return ver

    def level(self, d: int, lv: np.ndarray, keep: int, tail: np.ndarray) -> np.ndarray:
        """Level `d` of the new index: `lv[:keep]` (the old level's unchanged part) then
        `tail` (sorted positions). Appended in place when `lv` is the newest claim on its
        buffer and nothing of it changed."""
        while len(self.levels) <= d:
            self.levels.append([None, -1])
        ent = self.levels[d]
        buf, claimed = ent
        n = keep + len(tail)
        if keep == len(lv) and buf is not None and claimed == len(lv) and (len(lv) == 0 or lv.base is buf):
            if not len(tail):
                return lv
            if n > len(buf):  # full: a bigger buffer (older indexes keep the old one)
                nb = np.empty(max(1024, 2 * n), dtype=np.int32)
                nb[: len(lv)] = lv
                ent[0] = buf = nb
            buf[len(lv) : n] = tail
        else:
            buf = np.empty(max(1024, 2 * n), dtype=np.int32)
            buf[:keep] = lv[:keep]
            buf[keep:n] = tail
            ent[0] = buf
        ent[1] = n
        return buf[:n]


def grow_index(old: TreeIndex, data: TraceData, n: int | None = None) -> TreeIndex:
    """The index of the first `n` calls (all loaded by default) of the data `old` indexes, grown
    from `old`; equal to `build_index(data, n, old.grouped)`."""
    n1 = data.n if n is None else n
    st = old._grow
    if st is None or old.data is not data or n1 < old.n or old.n == 0:
        return build_index(data, n1, old.grouped)
    try:
        return _grow(old, st, data, n1)
    except _Rebuild:
        return build_index(data, n1, old.grouped)


def _grow(old: TreeIndex, st: GrowState, data: TraceData, n1: int) -> TreeIndex:
    n0 = old.n
    dn = n1 - n0
    G = len(old.groups)
    M0, M1 = n0 + G, n1 + G
    parent_c = data.col("parent")
    thread = data.col("thread")
    task = data.col("task")
    t0c = data.col("t0")
    t1c = data.col("t1")
    howc = data.col("how")
    cdepth = data.col("depth")
    t_end = data.t_end

    new = np.arange(n0 + 1, n1 + 1, dtype=np.int64)
    pc_new = parent_c[n0 + 1 : n1 + 1].astype(np.int64)

    # -- groups: the same ones, renumbered (group nodes follow the calls) ----------------------
    new_roots = new[pc_new == 0]
    root_threads, root_tasks = st.root_threads, st.root_tasks
    if len(new_roots):
        rthr = set(_uniq(thread[new_roots]).tolist())
        rtk = _uniq(task[new_roots])
        rtk = set(rtk[rtk > 0].tolist())
        if old.grouped and (not rthr <= root_threads or not rtk <= root_tasks):
            raise _Rebuild  # a new thread or task group (or grouping starts)
        root_threads, root_tasks = root_threads | rthr, root_tasks | rtk
    groups = [Group(g.node + dn, g.kind, g.thread, g.task,
                    data.thread_name(g.thread) if g.kind == "thread" else data.task_name(g.task)) for g in old.groups]
    thread_groups = [g for g in groups if g.kind == "thread"]
    by_thread = bool(thread_groups)
    by_task = any(g.kind == "task" for g in groups)
    cross = st.cross_thread
    if by_thread and len(thread_groups) > 1:
        if cross is None:
            cross = _cross_thread(parent_c, thread, n0)
        if cross:
            raise _Rebuild
        has = pc_new > 0
        if (thread[new[has]] != thread[pc_new[has]]).any():
            raise _Rebuild
    cdmax = max(st.cdepth_max, int(cdepth[n0 + 1 : n1 + 1].max()) if dn else 0)
    if (np.int16 if cdmax + 2 < 32000 else np.int32) != old.depth.dtype.type:
        raise _Rebuild

    # parents of the new calls, roots pointed at their group (new numbering)
    par_new = pc_new.copy()
    if G and len(new_roots):
        ri = new_roots - (n0 + 1)
        target = np.zeros(len(new_roots), dtype=np.int64)
        if by_thread:
            keys = np.array([g.thread for g in thread_groups], dtype=np.int64)
            nodes = np.array([g.node for g in thread_groups], dtype=np.int64)
            k = np.argsort(keys)
            target = nodes[k][np.searchsorted(keys[k], thread[new_roots].astype(np.int64))]
        if by_task:
            tgs = [g for g in groups if g.kind == "task"]
            keys = np.array([g.task for g in tgs], dtype=np.int64)
            nodes = np.array([g.node for g in tgs], dtype=np.int64)
            k = np.argsort(keys)
            rt = task[new_roots].astype(np.int64)
            sel = rt > 0
            target[sel] = nodes[k][np.searchsorted(keys[k], rt[sel])]
        par_new[ri] = target

    # -- durations, running times, children's totals -----------------------------------------
    store = getattr(old, "_store", None) or _Store()
    old_ver = getattr(old, "_ver", None)
    used: list[_Buf] = []
    dirty: dict[str, tuple[int, np.ndarray]] = {}

    def take(name: str, old_arr: np.ndarray, size: int) -> np.ndarray:
        e, view = store.take(name, old_arr, old_ver, size)
        used.append(e)
        return view

    dur = take("dur", old.dur, M1 + 1)
    nd = t1c[n0 + 1 : n1 + 1] - t0c[n0 + 1 : n1 + 1]
    open_new = howc[n0 + 1 : n1 + 1] == HOW_OPEN
    nd[open_new] = t_end - t0c[n0 + 1 : n1 + 1][open_new]
    np.maximum(nd, 0, out=nd)
    dur[n0 + 1 : n1 + 1] = nd
    oo = st.open
    if len(data.reexited) > st.n_reexited:  # ended again (a repeating writer): read their end again
        again = np.concatenate(data.reexited[st.n_reexited :]).astype(np.int64)
        oo = _union(oo, _uniq(again[again <= n0]))
    still = howc[oo] == HOW_OPEN
    od = np.where(still, t_end, t1c[oo]) - t0c[oo]
    np.maximum(od, 0, out=od)
    dur[oo] = od
    open1 = np.concatenate((oo[still], new[open_new]))

    # running time: calls with new MARK rows, the calls that were open, the new calls
    marked_old = np.zeros(0, dtype=np.int64)
    susp_ids = susp_val = None
    if data.n_marks:
        mcall = data.mark_col("call")
        mkind = data.mark_col("kind")
        fresh = mcall[st.n_marks :]
        fresh = fresh[_WAKE_LUT[mkind[st.n_marks :]]]
        marked_old = _uniq(fresh[(fresh > 0) & (fresh <= n0)]).astype(np.int64)
        look = _union(oo, marked_old)
        # every wake row of the new calls and of those: one pass over the MARK columns, with
        # lookup tables (np.isin sorts: ~40 ms per update on a 2M-mark session)
        want = np.zeros(n1 + 2, dtype=bool)
        want[n0 + 1 : n1 + 1] = True
        want[look] = True
        sel = want[np.minimum(mcall, n1 + 1)]
        sel &= _WAKE_LUT[mkind]
        if sel.any():
            susp_ids, susp_val = _suspended_rows(mcall[sel].astype(np.int64), data.mark_col("t")[sel], mkind[sel],
                                                 data.mark_col("run")[sel], lambda ids: t0c[ids] + dur[ids])
    R_old = _union(oo, marked_old)  # old calls whose running time may have changed (sorted)
    if susp_ids is None and old.run is old.dur:
        run = dur
    else:
        if old.run is not old.dur:
            run = take("run", old.run, M1 + 1)
            run[n0 + 1 :] = dur[n0 + 1 :]
            run[oo] = dur[oo]
            run[marked_old] = dur[marked_old]
        else:  # the first suspension: running times part from durations
            run = take("run", old.dur, M1 + 1)
            run[n0 + 1 :] = dur[n0 + 1 :]
            run[oo] = dur[oo]
        if susp_ids is not None:
            run[susp_ids] = dur[susp_ids] - np.minimum(susp_val, dur[susp_ids])

    parent = take("parent", old.parent, M1 + 1)
    if G:
        r = st.roots
        v = parent[r]
        parent[r] = np.where(v > n0, v + dn, v)
        for g_old, g in zip(old.groups, groups):
            p = int(old.parent[g_old.node])
            parent[g.node] = p + dn if p > n0 else p
    parent[n0 + 1 : n1 + 1] = par_new
    parent[0] = 0

    # children's totals kept from the last update (sorted ids, new numbering)
    k_ids = np.where(st.csum_ids > n0, st.csum_ids + dn, st.csum_ids)
    k_val = st.csum
    # the new calls' own totals: their children are all new
    k = dn
    is_top = ~((par_new > n0) & (par_new <= n1))
    lp = np.where(is_top, 0, par_new - n0)
    cs_local = np.zeros(k + 1, dtype=np.int64)
    if k:
        np.add.at(cs_local, lp, run[n0 + 1 : n1 + 1])
    tops = np.flatnonzero(is_top)  # local indexes (0-based) of the new calls under old nodes
    tq = par_new[tops]
    # old nodes' totals move by their changed children's running time and their new children's
    c_ids, c_val = _sum_by((parent[R_old].astype(np.int64), run[R_old] - old.run[R_old]),
                           (tq, run[tops + n0 + 1]))
    sel = c_ids > 0
    c_ids, c_val = c_ids[sel], c_val[sel]
    # new totals of the old calls among them (groups below): kept total + change, or (a node
    # whose total was not kept: rare) the sum over its children now
    calls = c_ids <= n0
    a_ids = c_ids[calls]
    a_val = _lookup(k_ids, k_val, a_ids)
    miss = np.flatnonzero(a_val == _MISSING)
    a_val = a_val + c_val[calls]
    for i in miss.tolist():
        a_val[i] = _children_total(old, int(a_ids[i]), n0, dn, run, tops, tq)
    contrib = dict(zip(c_ids[~calls].tolist(), c_val[~calls].tolist()))
    kd = dict(zip(k_ids[k_ids > n1].tolist(), k_val[k_ids > n1].tolist()))  # the groups' kept totals
    # groups: task groups first (they count in their thread's group), then thread groups
    g_cs: dict[int, int] = {}
    for g in groups:
        if g.kind == "task":
            g_cs[g.node] = kd[g.node] + contrib.get(g.node, 0)
    for g in groups:
        if g.kind == "thread":
            extra = sum(g_cs[t.node] - kd[t.node] for t in groups if t.kind == "task" and int(parent[t.node]) == g.node)
            g_cs[g.node] = kd[g.node] + contrib.get(g.node, 0) + extra
    for node, v in g_cs.items():
        dur[node] = v
        if run is not dur:
            run[node] = v
    comp_ids = np.concatenate((a_ids, np.array(sorted(g_cs), dtype=np.int64)))
    comp_val = np.concatenate((a_val, np.array([g_cs[x] for x in sorted(g_cs)], dtype=np.int64)))

    def cs_of(ids: np.ndarray) -> np.ndarray:
        """Children's running-time totals now, for any node ids (new numbering)."""
        out = _lookup(comp_ids, comp_val, ids)
        new_ = (ids > n0) & (ids <= n1)
        out[new_] = cs_local[ids[new_] - n0]
        left = out == _MISSING
        if left.any():
            out[left] = _lookup(k_ids, k_val, ids[left])
            for i in np.flatnonzero(out == _MISSING).tolist():
                out[i] = _children_total(old, int(ids[i]), n0, dn, run, tops, tq)
        return out

    self_time = take("self_time", old.self_time, M1 + 1)
    if k:
        st_new = run[n0 + 1 : n1 + 1] - cs_local[1:]
        np.maximum(st_new, 0, out=st_new)
        self_time[n0 + 1 : n1 + 1] = st_new
    xs = _union(R_old, a_ids)
    xs = xs[xs > 0]
    if len(xs):
        self_time[xs] = np.maximum(run[xs] - cs_of(xs), 0)
    self_time[0] = 0
    for g in groups:
        self_time[g.node] = 0

    # totals kept for the next update: open calls, their parents, the groups
    keep = _uniq(open1, parent[open1].astype(np.int64), np.arange(n1 + 1, M1 + 1, dtype=np.int64))
    keep = keep[keep > 0]
    csum = cs_of(keep)
    grow = GrowState(np.concatenate((st.roots, new_roots)), root_threads, root_tasks, open1, keep, csum,
                     data.n_marks, cdmax, cross, len(data.reexited))

    # what changed below each per-node array's new part (for the next updates' buffers)
    none = np.zeros(0, dtype=np.int64)
    dirty["dur"] = (n0 + 1, oo)
    dirty["run"] = dirty["dur"] if run is dur else (n0 + 1, R_old)
    dirty["parent"] = (n0 + 1, np.append(st.roots, 0) if G else np.zeros(1, dtype=np.int64))
    dirty["self_time"] = (n0 + 1, np.append(xs, 0))

    if k == 0:  # no new call: the tree is the same shape
        for name in ("order", "depth", "end"):
            dirty[name] = (M0, none)
        dirty["pos_of"] = (M0 + 1, none)
        ix = TreeIndex(data, n1, groups, old.order, old.pos_of, old.depth, old.end, parent,
                       dur, self_time, t_end, old.grouped, list(old.levels), None, None, None if run is dur else run, grow)
        ix._delta = GrowDelta(weakref.ref(old), M0, np.zeros(0, np.int64), np.zeros(1, np.int64),
                              np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64))
        _grow_heavy(old, ix, take, dirty, R_old, tops, tq, posn=none, lp=lp, delta=ix._delta)
        ix._store, ix._ver = store, store.commit(old_ver, dirty, used)
        return ix

    # -- positions ----------------------------------------------------------------------------
    # the new calls laid out among themselves (tops are roots of this small forest)
    dtype = old.depth.dtype
    local = _local_preorder(lp, cdepth[n0 + 1 : n1 + 1])
    if local is not None:  # in id order already (one thread, no generator resumed): no layout
        lsize, lpos, dl_, top_local = local
    else:
        dl_, top_local = _depth_and_root(lp.astype(np.uint32), 1, np.zeros(1, np.int32), np.zeros(1, np.uint32))
        lpar = np.zeros(k + 1, dtype=np.int32)
        lpar[1:] = lp
        ldepth = np.zeros(k + 1, dtype=dtype)
        ldepth[1:] = dl_
        lthread = np.zeros(k + 1, dtype=thread.dtype)
        lthread[1:] = thread[n0 + 1 : n1 + 1]
        lsize, lpos, _, _ = _positions(lpar, ldepth, lthread, k, [], [], False)
    # blocks: the tops of each attachment, in id order, one after the other
    order_t = np.argsort(tq, kind="stable")
    tq_s = tq[order_t]
    tsize = lsize[tops + 1].astype(np.int64)[order_t]
    cums = np.cumsum(tsize)
    first_of = np.ones(len(tq_s), dtype=bool)
    first_of[1:] = tq_s[1:] != tq_s[:-1]
    starts = np.flatnonzero(first_of)
    run_base = np.repeat(cums[starts] - tsize[starts], np.diff(np.append(starts, len(tq_s))))
    off_in_block = np.empty(len(tops), dtype=np.int64)
    off_in_block[order_t] = cums - tsize - run_base
    uq = tq_s[starts]  # attachments (new numbering; 0: the top level)
    kq = np.add.reduceat(tsize, starts)
    uq_old = np.where(uq > n1, uq - dn, uq)
    pq = np.where(uq == 0, -1, old.pos_of[uq_old]).astype(np.int64)
    eq = np.where(uq == 0, M0, old.end[np.maximum(pq, 0)]).astype(np.int64)
    dq = np.where(uq == 0, -1, old.depth[np.maximum(pq, 0)]).astype(np.int64)

    o = np.argsort(eq, kind="stable")
    ins = eq[o]
    kcum = np.concatenate(([0], np.cumsum(kq[o])))
    o = np.argsort(pq, kind="stable")
    at_sorted = pq[o]
    scum = np.concatenate(([0], np.cumsum(kq[o])))

    def C(p: np.ndarray) -> np.ndarray:
        return kcum[np.searchsorted(ins, p, side="right")]

    def S(t: np.ndarray) -> np.ndarray:
        return scum[np.searchsorted(at_sorted, t, side="left")]

    P = int(ins[0])
    new_end_q = pq + C(pq) + (eq - pq) + S(eq) - S(pq)
    block_start = new_end_q - kq
    tq_idx = np.searchsorted(uq, tq)  # attachment of each top, as an index into uq
    top_pos = block_start[tq_idx] + off_in_block  # new position of each top
    # every new call: its top's position + its offset inside the top's subtree
    tl = top_local.astype(np.int64)  # local id of each new call's top
    top_of = np.empty(k + 1, dtype=np.int64)
    top_of[tops + 1] = top_pos
    posn = top_of[tl] + (lpos[1:] - lpos[tl])
    dnew = (dq[tq_idx])  # depth of each top's attachment
    dtop = np.empty(k + 1, dtype=np.int64)
    dtop[tops + 1] = dnew + 1
    depth_new = dtop[tl] + dl_

    order = take("order", old.order, M1)
    depth = take("depth", old.depth, M1)
    end = take("end", old.end, M1)
    pos_of = take("pos_of", old.pos_of, M1 + 1)
    moved_ids = none
    # old nodes after P move
    # old nodes after P move by C, constant between two insertion points: block copies. Their
    # subtree ends move the same way, except for the attachments' ancestors (fixed below)
    cuts = _uniq(ins)
    for j, a0 in enumerate(cuts.tolist()):
        b0 = int(cuts[j + 1]) if j + 1 < len(cuts) else M0
        c = int(kcum[np.searchsorted(ins, a0, side="right")])
        for a in range(a0, min(b0, M0), _SHIFT_CHUNK):  # in chunks: temporaries stay small
            b = min(b0, M0, a + _SHIFT_CHUNK)
            order[a + c : b + c] = old.order[a:b]  # group ids among them: renumbered below
            depth[a + c : b + c] = old.depth[a:b]
            np.add(old.end[a:b], c, out=end[a + c : b + c])
            ids = old.order[a:b]
            calls = ids <= n0
            pos_of[ids[calls]] = np.arange(a + c, b + c, dtype=np.int32)[calls]
    if M0 - P > _SPARSE_MAX:  # many moved: the next buffers copy pos_of whole (4 bytes a call)
        moved_ids = None
    elif P < M0:
        ids = old.order[P:M0]
        moved_ids = ids[ids <= n0].astype(np.int64)
    # the attachments and their ancestors: their subtrees grew
    cur = _uniq(uq_old[uq_old > 0])
    anc = [cur]
    while len(cur):
        cur = old.parent[cur]
        cur = _uniq(cur[cur > 0])
        anc.append(cur)
    anc = _uniq(np.concatenate(anc))
    ap = old.pos_of[anc].astype(np.int64)
    ap = ap[ap >= 0]
    if len(ap):
        ae = old.end[ap].astype(np.int64)
        end[ap + C(ap)] = ae + C(ap) + S(ae) - S(ap)
        ap = ap[ap < P]  # logged: the changed ends before P
    # group nodes: renumbered, maybe moved
    group_pos = []
    for g_old, g in zip(old.groups, groups):
        p = int(old.pos_of[g_old.node])
        q = p if p < P else int(C(np.array([p]))[0]) + p
        pos_of[g.node] = q
        order[q] = g.node
        group_pos.append(q)
    # the new calls
    order[posn] = new
    depth[posn] = depth_new
    end[posn] = posn + lsize[1:]
    pos_of[n0 + 1 : n1 + 1] = posn

    # per-depth positions: each level's old positions (moved) merged with its new ones
    if len(posn) > 1 and (posn[1:] > posn[:-1]).all():  # appended in id order: by depth alone
        nl = np.argsort(depth_new.astype(dtype), kind="stable")  # a radix sort (16-bit keys)
    else:
        nl = np.lexsort((posn, depth_new))
    new_sorted, new_depth_sorted = posn[nl], depth_new[nl]
    n_levels = max(len(old.levels), int(depth_new.max()) + 1)
    nb = np.searchsorted(new_depth_sorted, np.arange(n_levels + 1))
    levels: list[np.ndarray] = []
    for d in range(n_levels):
        lv = old.level(d)
        i = int(np.searchsorted(lv, lv.dtype.type(P))) if len(lv) else 0
        add = new_sorted[nb[d] : nb[d + 1]]
        if i < len(lv):
            moved = lv[i:].astype(np.int64)
            # + C, constant between insertion points: one add per piece, not a search each
            at = np.searchsorted(moved, cuts).tolist() + [len(moved)]
            for j in range(len(cuts)):
                moved[at[j] : at[j + 1]] += int(kcum[np.searchsorted(ins, cuts[j], side="right")])
            add = np.concatenate((moved, add))
            add.sort(kind="stable")  # two sorted runs: timsort merges them
        levels.append(store.level(d, lv, i, add))
    gp = np.array(group_pos, dtype=np.int64)
    dirty["order"] = (P, gp[gp < P])
    dirty["depth"] = (P, none)
    dirty["end"] = (P, ap)
    dirty["pos_of"] = (0, none) if moved_ids is None else (n0 + 1, moved_ids)
    ix = TreeIndex(data, n1, groups, order, pos_of, depth, end, parent, dur, self_time, t_end, old.grouped,
                   levels, None, None, None if run is dur else run, grow)
    att_at = np.where(uq == 0, -1, pq).astype(np.int32)
    ix._delta = GrowDelta(weakref.ref(old), P, ins, kcum, top_pos.astype(np.int32), att_at, tq_idx)
    _grow_heavy(old, ix, take, dirty, R_old, tops, tq, posn=posn, lp=lp, delta=ix._delta)
    ix._store, ix._ver = store, store.commit(old_ver, dirty, used)
    return ix


def _grow_heavy(old: TreeIndex, ix: TreeIndex, take, dirty: dict, R_old: np.ndarray, tops: np.ndarray,
                tq: np.ndarray, posn: np.ndarray, lp: np.ndarray, delta: GrowDelta) -> None:
    """`ix`'s heaviest children (for `H`), kept up to date when `old` had them computed: a
    whole pass costs ~15 ms per million calls, too much for every live update, and a key
    should not wait for it either. Only the nodes whose children changed are looked at: the
    new calls (their children are all new), the nodes the new calls hang under and the parents
    of calls whose running time changed -- from their previous heaviest child, the changed and
    the new children; all children only when the previous heaviest one ran less now (its end
    came in earlier than the session's end), and for group nodes (their children's times move
    with the calls under them)."""
    h_old = old._heavy
    if h_old is None:
        return
    n0, n1, G = old.n, ix.n, len(ix.groups)
    dn = n1 - n0
    P = delta.first
    heavy = take("heavy", h_old, ix.size + 1)
    touched = [np.zeros(1, dtype=np.int64)]
    if P < old.size:  # heaviest children after P moved
        v = heavy[: n0 + 1]
        m = np.flatnonzero(v >= P)
        if len(m):
            vals = v[m].astype(np.int64)
            o = np.argsort(vals, kind="stable")  # `move` takes increasing positions
            moved = np.empty_like(vals)
            moved[o] = delta.move(vals[o])
            heavy[m] = moved
            touched.append(m)
    # new calls: from their own children, all new (first child with the largest time)
    k = dn
    if k:
        inner = np.flatnonzero(lp > 0)
        hl = np.full(k + 1, -1, dtype=np.int64)
        if len(inner):
            par_l = lp[inner]
            r = ix.run[inner + n0 + 1]
            top = np.full(k + 1, np.iinfo(np.int64).min, dtype=np.int64)
            np.maximum.at(top, par_l, r)
            best = r == top[par_l]
            first = np.full(k + 1, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first, par_l[best], posn[inner][best].astype(np.int64))
            has = first != np.iinfo(np.int64).max
            hl[has] = first[has]
        heavy[n0 + 1 : n1 + 1] = hl[1:]
    # old calls (and the top level, node 0) whose children changed: candidates
    cp = np.concatenate((ix.parent[R_old].astype(np.int64), tq))
    cc = np.concatenate((R_old, tops + n0 + 1))
    calls = cp <= n0
    cp, cc = cp[calls], cc[calls]
    n_r = int(np.count_nonzero(calls[: len(R_old)]))
    aff = _uniq(cp[:n_r], cp[n_r:])  # each part usually in order: no sort
    full: list[int] = [g.node for g in ix.groups]  # groups: always all their children
    if G:
        full.append(0)  # the top level holds thread groups: their times moved
        keep = aff != 0
        cp, cc, aff = cp[cp != 0], cc[cp != 0], aff[keep]
    if len(aff):
        hb = h_old[aff].astype(np.int64)  # previous heaviest (old positions; -1: none)
        has = hb >= 0
        bnode = np.zeros(len(aff), dtype=np.int64)
        bnode[has] = old.order[hb[has]]
        bnode[has & (bnode > n0)] += dn  # a group child (of node 0): renumbered
        ran_less = has & (ix.run[bnode] < old.run[np.where(bnode > n1, bnode - dn, bnode)])
        full.extend(aff[ran_less].tolist())
        ok = has & ~ran_less
        cand_p = np.concatenate((cp, aff[ok]))
        cand_c = np.concatenate((cc, bnode[ok]))
        cand_r = ix.run[cand_c]
        cand_pos = ix.pos_of[cand_c].astype(np.int64)
        # per parent (an index into `aff`, which holds every cand_p): the largest time, then
        # the first position reaching it -- two scatters instead of a lexsort of all candidates
        ai = np.searchsorted(aff, cand_p)
        top = np.full(len(aff), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(top, ai, cand_r)
        best = cand_r == top[ai]
        first = np.full(len(aff), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, ai[best], cand_pos[best])
        got = first != np.iinfo(np.int64).max
        heavy[aff[got]] = first[got]
        touched.append(aff)
    if full:
        heavy[full] = _heaviest_of(ix, np.array(full, dtype=np.int64))
    touched.append(np.array([p for p in full if p <= n0], dtype=np.int64))
    ix._heavy = heavy
    dirty["heavy"] = (n0 + 1, np.concatenate(touched))


def _local_preorder(lp: np.ndarray, cd: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """What `_depth_and_root` and `_positions` give for the new calls' own forest (`lp`: local
    parent ids 1..k, 0 for a top; `cd`: their call depths) -- sizes, positions, local depths, tops
    -- when their id order is already its preorder, else None. That is the usual case (calls of
    one thread start in preorder unless a generator or task is resumed under an older caller),
    and then only the sizes need computing: summed bottom-up by call depth (a radix sort).

    The check: with `size` the true subtree sizes, id order is the preorder iff each call's
    range [i, i + size) lies inside its parent's and the tops' ranges follow one another from 1
    to k: children then tile their parent's range (disjoint subtrees, sizes adding up)."""
    k = len(lp)
    if k == 0:
        return None
    lo = int(cd.min())
    span = int(cd.max()) - lo + 1
    if span >= 32000:
        return None
    key = (cd - lo).astype(np.int16)
    o = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[o], np.arange(span + 1, dtype=np.int16)).tolist()
    size = np.ones(k + 1, dtype=np.int64)
    lpx = np.zeros(k + 1, dtype=np.int64)
    lpx[1:] = lp
    for d in range(span - 1, 0, -1):  # children before their parents; the top depth holds only tops
        ids = o[bounds[d] : bounds[d + 1]] + 1
        np.add.at(size, lpx[ids], size[ids])
    size[0] = 1
    inner = np.flatnonzero(lp) + 1
    p = lpx[inner]
    if (inner + size[inner] > p + size[p]).any():
        return None
    tops = np.flatnonzero(lp == 0) + 1
    t_end = tops + size[tops]
    if tops[0] != 1 or t_end[-1] != k + 1 or (tops[1:] != t_end[:-1]).any():
        return None
    mark = np.zeros(k + 1, dtype=np.int64)
    mark[tops] = tops
    top_local = np.maximum.accumulate(mark)[1:]  # a call's top: the last top before it
    dl_ = cd.astype(np.int64) - cd[top_local - 1]
    return size.astype(np.int32), np.arange(-1, k, dtype=np.int32), dl_, top_local


_BIG_FAMILY = 1 << 12


def _heaviest_of(ix: TreeIndex, nodes: np.ndarray) -> np.ndarray:
    """For each node id (0: the top level), the position of its first child with the largest
    `run` over all its children, -1 for none. Vectorised: many open calls ending in one update
    put ~10^4 nodes here, and a loop over them cost ~0.2 s. A node's children are the next
    level's positions inside its subtree (two binary searches per node), gathered for all the
    nodes of one depth at once; then a segment max, the first child reaching it wins (argmax)."""
    out = np.full(len(nodes), -1, dtype=np.int64)
    top = nodes == 0
    pos = ix.pos_of[nodes].astype(np.int64)
    pos[top] = -1
    safe = np.maximum(pos, 0)
    end = np.where(top, ix.size, ix.end[safe]).astype(np.int64)
    dch = np.where(top, 0, ix.depth[safe].astype(np.int64) + 1)
    for d in _uniq(dch).tolist():
        at = np.flatnonzero(dch == d)
        lv = ix.level(d)
        # keys in the level's dtype: mixed types would convert the whole level first
        lo = np.searchsorted(lv, (pos[at] + 1).astype(lv.dtype))
        cnt = np.searchsorted(lv, end[at].astype(lv.dtype)) - lo
        big = cnt > _BIG_FAMILY  # a slice each: no gathered copy of their positions
        for i in np.flatnonzero(big).tolist():
            kids = lv[lo[i] : lo[i] + cnt[i]]
            out[at[i]] = kids[int(np.argmax(ix.run[ix.order[kids]]))]
        some = (cnt > 0) & ~big
        at, lo, cnt = at[some], lo[some], cnt[some]
        if not len(at):
            continue
        starts = np.cumsum(cnt) - cnt  # each node's first child in the gathered list
        kids = lv[np.arange(int(cnt.sum())) + np.repeat(lo - starts, cnt)]
        r = ix.run[ix.order[kids]]
        seg = np.repeat(np.arange(len(at)), cnt)
        best = np.flatnonzero(r == np.maximum.reduceat(r, starts)[seg])
        bseg = seg[best]
        firsts = np.ones(len(best), dtype=bool)
        firsts[1:] = bseg[1:] != bseg[:-1]
        out[at] = kids[best[firsts]]  # every segment has its max: one first per node, in order
    return out


def _dedupe(a: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (a new array)."""
    if len(a) < 2:
        return a.copy()
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _uniq(*parts: np.ndarray) -> np.ndarray:
    """np.unique of the parts together (int64). numpy 2's np.unique hashes (~8 ms for 5e4 ids,
    a sort and a pass take 0.5); and here each part is usually in order already (ids of open
    calls, their parents, the nodes the new calls hang under in a single thread): then a check
    and a pass, and only the few distinct values left are sorted together."""
    out = []
    for a in parts:
        a = np.asarray(a, dtype=np.int64)
        if len(a) > 1 and (a[1:] < a[:-1]).any():
            a = a[::-1] if not (a[1:] > a[:-1]).any() else np.sort(a)
        out.append(_dedupe(a))
    if len(out) == 1:
        return out[0]
    return _dedupe(np.sort(np.concatenate(out)))


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.union1d of two sorted arrays of distinct values (int64), without a sort when one is
    empty or all of one comes after the other (the usual case)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if not len(b):
        return a.copy()
    if not len(a):
        return b.copy()
    if a[-1] < b[0]:
        return np.concatenate((a, b))
    if b[-1] < a[0]:
        return np.concatenate((b, a))
    c = np.concatenate((a, b))
    c.sort(kind="stable")  # two sorted runs: merged in one pass
    return _dedupe(c)


def _sum_by(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (sorted) and the sum of the values of each, over (keys, values) parts (int64):
    `np.unique(keys, return_inverse=True)` and a scatter-add, without the sort when a part's
    keys are in order (increasing or decreasing: a run per key, summed by reduceat)."""
    ids, sums = [], []
    for k, v in parts:
        k = np.asarray(k, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        if not len(k):
            continue
        if len(k) > 1 and (k[1:] < k[:-1]).any():
            if (k[1:] > k[:-1]).any():
                o = np.argsort(k, kind="stable")
                k, v = k[o], v[o]
            else:
                k, v = k[::-1], v[::-1]
        starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
        ids.append(k[starts])
        sums.append(np.add.reduceat(v, starts))
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(ids) == 1:
        return ids[0], sums[0]
    return _sum_by((np.concatenate(ids), np.concatenate(sums)))


_MISSING = np.iinfo(np.int64).min
_CROSS_CHUNK = 1 << 20


def _cross_thread(parent_c: np.ndarray, thread: np.ndarray, n: int) -> bool:
    """Does any of calls 1..n run in another thread than its parent? (In chunks: the
    temporaries stay a few MB on a big trace.)"""
    for a in range(1, n + 1, _CROSS_CHUNK):
        b = min(n + 1, a + _CROSS_CHUNK)
        par = parent_c[a:b]
        has = par > 0
        if (thread[a:b][has] != thread[par[has]]).any():
            return True
    return False


def _lookup(ids: np.ndarray, vals: np.ndarray, want: np.ndarray) -> np.ndarray:
    """`vals` at the positions of `want` in the sorted `ids`; _MISSING where absent."""
    out = np.full(len(want), _MISSING, dtype=np.int64)
    if len(ids) and len(want):
        i = np.searchsorted(ids, want)
        i[i == len(ids)] = 0
        hit = ids[i] == want
        out[hit] = vals[i[hit]]
    return out


def _children_total(old: TreeIndex, p: int, n0: int, dn: int, run: np.ndarray, tops: np.ndarray,
                    tq: np.ndarray) -> int:
    """Children's running-time total of old call `p` over its children now (its old children in
    `old`, plus the new calls hung under it): for the rare node whose total was not kept."""
    po = p - dn if p > n0 + dn else p
    kids = old.order[old.children(int(old.pos_of[po]))].astype(np.int64)
    kids = np.where(kids > n0, kids + dn, kids)
    total = int(run[kids].sum())
    return total + int(run[tops[tq == p] + n0 + 1].sum())


def _suspended_rows(call: np.ndarray, t: np.ndarray, kind: np.ndarray, run: np.ndarray,
                    end_of) -> tuple[np.ndarray, np.ndarray]:
    """`timing._suspended` over the given wake MARK rows only (all the rows of each call in it):
    the calls and their suspended nanoseconds."""
    call, susp, gap = suspension_gaps(call, t, kind, run, end_of)
    first = np.empty(len(call), dtype=bool)  # calls are sorted: runs of equal ids
    first[0] = True
    np.not_equal(call[1:], call[:-1], out=first[1:])
    ids = call[first]
    inv = np.cumsum(first) - 1
    out = np.zeros(len(ids), dtype=np.int64)
    np.add.at(out, inv[susp], gap)
    return ids, out
