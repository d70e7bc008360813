"""Growing a live session's index with the calls that arrived, instead of rebuilding it.

`grow_index(old, data)` returns exactly what `build_index(data, grouped=old.grouped)` would
(same arrays, same groups), doing work in proportion to what is new. Indexes stay immutable
snapshots (the UI draws one while the next is made); the memory they live in is recycled by
a `BufferPool` (bufpool.py), so an update copies only what the previous update changed, not the session.

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

One update runs in phases, each a function over the records of the ones before (`_grow` reads
as the list): groups (`_regroup`), the new calls and where they hang (`_new_calls`), times
(`_times`), parents, children's totals and self times (`_totals`), positions (`_reshape`:
layout of the new calls, blocks, old positions moved, levels) and the heaviest children
(`_grow_heaviest`). The arrays are written into recycled buffers (bufpool.py); the set
operations on sorted ids are in sortedsets.py.

Rebuilt from scratch instead (rare, and always correct): new groups (a new thread or task among
the roots, or grouping turned on), a depth that needs another integer type, calls running in
another thread than their parent while threads are grouped (siblings are then ordered by thread);
and, for now, every update of a session of several processes (model/parts.py: process groups
are not grown yet).

Costs that still follow the session rather than the update: inserting calls before the end of
the preorder (an earlier thread group, an old generator) moves every position after that point;
a session with generators or coroutines scans the MARK columns once per update; the first
update after a whole build copies the arrays once (into the store).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from .bufpool import BufferPool, Checkout
from .index import Group, GrowState, Growth, Moves, TreeIndex, _positions, build_index
from .loader import HOW_OPEN, TraceData, _depth_and_root
from .sortedsets import MISSING, lookup, sum_by_key, union, unique
from .timing import _WAKE, ElsewhereRuns, elsewhere_runs, suspension_gaps

_WAKE_LUT = np.zeros(256, dtype=bool)  # by MARK kind (a u8 column)
_WAKE_LUT[list(_WAKE)] = True
_SHIFT_CHUNK = 1 << 20  # positions moved per pass when calls land before the end
_SPARSE_MAX = 1 << 16  # more moved calls than this are logged as "pos_of changed everywhere"
_NONE = np.zeros(0, dtype=np.int64)


class _Rebuild(Exception):
    """This update cannot be an incremental one (see the module docstring)."""


def grow_index(old: TreeIndex, data: TraceData, n: int | None = None) -> TreeIndex:
    """The index of the first `n` calls (all loaded by default) of the data `old` indexes, grown
    from `old`; equal to `build_index(data, n, old.grouped)`."""
    n1 = data.n if n is None else n
    st = old.grow_state
    if st is None or old.data is not data or n1 < old.n or old.n == 0 or data.multi_process:
        return build_index(data, n1, old.grouped)
    try:
        return _grow(old, st, data, n1)
    except _Rebuild:
        return build_index(data, n1, old.grouped)


# --- the records the phases hand on ----------------------------------------------------------
@dataclass(frozen=True)
class _Groups:
    """The old groups, renumbered (group nodes follow the calls), and what decides them."""

    groups: list[Group]
    root_threads: frozenset
    root_tasks: frozenset
    cross_thread: bool | None
    cdepth_max: int


@dataclass(frozen=True)
class _NewCalls:
    """Calls n0+1 .. n1, new in this update. `parent`: their parents, roots pointed at their
    group node (new numbering); `local_parent`: the same as local ids (1..k, 0: hung under an
    old node or the top level -- a *top*); `tops`: local indexes (0-based) of the tops,
    `attach`: the node each top hangs under (new numbering, 0: the top level)."""

    n0: int
    n1: int
    ids: np.ndarray
    roots: np.ndarray
    parent: np.ndarray
    local_parent: np.ndarray
    tops: np.ndarray
    attach: np.ndarray

    @property
    def k(self) -> int:
        return self.n1 - self.n0


@dataclass(frozen=True)
class _Times:
    """Durations and running times of the new index. `was_open`: old calls that were open (or
    ended again); `open_now`: calls still open; `changed_old`: old calls whose running time may
    have changed (sorted)."""

    dur: np.ndarray
    run: np.ndarray
    was_open: np.ndarray
    open_now: np.ndarray
    changed_old: np.ndarray
    elsewhere: ElsewhereRuns  # every call's runs not in its parent (timing.py), now
    gone: ElsewhereRuns  # the rows of the last update's that this one replaced
    came: ElsewhereRuns  # ... and the rows that replaced them


@dataclass(frozen=True)
class _Totals:
    """Parents, self times and the children's totals kept for the next update."""

    parent: np.ndarray
    self_time: np.ndarray
    kept_ids: np.ndarray
    kept_totals: np.ndarray


@dataclass(frozen=True)
class _Shape:
    """The new preorder: per-position arrays, levels, and how old positions moved."""

    order: np.ndarray
    depth: np.ndarray
    end: np.ndarray
    pos_of: np.ndarray
    levels: list[np.ndarray]
    new_pos: np.ndarray  # position of each new call
    moves: Moves


# --- one update, phase by phase --------------------------------------------------------------
def _grow(old: TreeIndex, st: GrowState, data: TraceData, n1: int) -> TreeIndex:
    groups = _regroup(old, st, data, n1)
    new = _new_calls(old, data, n1, groups.groups)
    pool = old.growth.pool if old.growth is not None else BufferPool()
    co = pool.checkout(old.growth.version if old.growth is not None else None)
    times = _times(old, st, data, new, co)
    totals = _totals(old, st, new, groups.groups, times, co)
    shape = _same_shape(old, new, co) if new.k == 0 else _reshape(old, data, new, groups.groups, co)
    grow_state = GrowState(np.concatenate((st.roots, new.roots)), groups.root_threads, groups.root_tasks,
                           times.open_now, totals.kept_ids, totals.kept_totals, data.n_marks,
                           groups.cdepth_max, groups.cross_thread, len(data.reexited), times.elsewhere)
    growth = Growth(weakref.ref(old), shape.moves, pool, co.version)
    ix = TreeIndex(data=data, n=n1, groups=groups.groups, order=shape.order, pos_of=shape.pos_of,
                   depth=shape.depth, end=shape.end, parent=totals.parent, dur=times.dur,
                   self_time=totals.self_time, t_end=data.t_end, grouped=old.grouped, levels=shape.levels,
                   run=None if times.run is times.dur else times.run, grow_state=grow_state, growth=growth)
    if old.heavy_if_known is not None:
        ix.adopt_heavy(_grow_heaviest(old, ix, new, times.changed_old, shape.new_pos, co))
    co.commit()
    return ix


def _regroup(old: TreeIndex, st: GrowState, data: TraceData, n1: int) -> _Groups:
    """The same groups, renumbered; `_Rebuild` when the update needs others, or when siblings
    would have to be ordered by thread (calls running in another thread than their parent)."""
    n0 = old.n
    dn = n1 - n0
    parent_c, thread, task = data.col("parent"), data.col("thread"), data.col("task")
    pc_new = parent_c[n0 + 1 : n1 + 1]
    new_roots = np.flatnonzero(pc_new == 0) + (n0 + 1)
    root_threads, root_tasks = st.root_threads, st.root_tasks
    if len(new_roots):
        rthr = set(unique(thread[new_roots]).tolist())
        rtk = unique(task[new_roots])
        rtk = set(rtk[rtk > 0].tolist())
        if old.grouped and (not rthr <= root_threads or not rtk <= root_tasks):
            raise _Rebuild  # a new thread or task group (or grouping starts)
        root_threads, root_tasks = root_threads | rthr, root_tasks | rtk
    groups = [Group(g.node + dn, g.kind, g.thread, g.task,
                    data.thread_name(g.thread) if g.kind == "thread" else data.task_name(g.task)) for g in old.groups]
    cross = st.cross_thread
    if sum(g.kind == "thread" for g in groups) > 1:
        if cross is None:
            cross = _cross_thread(parent_c, thread, n0)
        if cross:
            raise _Rebuild
        has = np.flatnonzero(pc_new > 0)
        if (thread[has + n0 + 1] != thread[pc_new[has]]).any():
            raise _Rebuild
    cdmax = max(st.cdepth_max, int(data.col("depth")[n0 + 1 : n1 + 1].max()) if dn else 0)
    if (np.int16 if cdmax + 2 < 32000 else np.int32) != old.depth.dtype.type:
        raise _Rebuild  # the depths need another integer type
    return _Groups(groups, root_threads, root_tasks, cross, cdmax)


def _new_calls(old: TreeIndex, data: TraceData, n1: int, groups: list[Group]) -> _NewCalls:
    """The new calls' parents (roots pointed at their group) and where their subtrees hang."""
    n0 = old.n
    new = np.arange(n0 + 1, n1 + 1, dtype=np.int64)
    par_new = data.col("parent")[n0 + 1 : n1 + 1].astype(np.int64)
    new_roots = new[par_new == 0]
    if groups and len(new_roots):
        par_new[new_roots - (n0 + 1)] = _group_of_roots(data, groups, new_roots)
    is_top = ~((par_new > n0) & (par_new <= n1))
    lp = np.where(is_top, 0, par_new - n0)
    tops = np.flatnonzero(is_top)
    return _NewCalls(n0, n1, new, new_roots, par_new, lp, tops, par_new[tops])


def _group_of_roots(data: TraceData, groups: list[Group], roots: np.ndarray) -> np.ndarray:
    """The group node of each root: its task's group, else its thread's (new numbering)."""
    target = np.zeros(len(roots), dtype=np.int64)
    thread_groups = [g for g in groups if g.kind == "thread"]
    if thread_groups:
        keys = np.array([g.thread for g in thread_groups], dtype=np.int64)
        nodes = np.array([g.node for g in thread_groups], dtype=np.int64)
        k = np.argsort(keys)
        target = nodes[k][np.searchsorted(keys[k], data.col("thread")[roots].astype(np.int64))]
    task_groups = [g for g in groups if g.kind == "task"]
    if task_groups:
        keys = np.array([g.task for g in task_groups], dtype=np.int64)
        nodes = np.array([g.node for g in task_groups], dtype=np.int64)
        k = np.argsort(keys)
        rt = data.col("task")[roots].astype(np.int64)
        sel = rt > 0
        target[sel] = nodes[k][np.searchsorted(keys[k], rt[sel])]
    return target


def _times(old: TreeIndex, st: GrowState, data: TraceData, new: _NewCalls, co: Checkout) -> _Times:
    """Durations change only for the new calls and those that were open (the session's end
    moved, or they ended); running times also for calls with new MARK rows."""
    n0, n1 = new.n0, new.n1
    size = n1 + len(old.groups) + 1
    t0c, t1c, howc = data.col("t0"), data.col("t1"), data.col("how")
    t_end = data.t_end
    dur = co.take("dur", old.dur, size)
    nd = t1c[n0 + 1 : n1 + 1] - t0c[n0 + 1 : n1 + 1]
    open_new = howc[n0 + 1 : n1 + 1] == HOW_OPEN
    nd[open_new] = t_end - t0c[n0 + 1 : n1 + 1][open_new]
    np.maximum(nd, 0, out=nd)
    dur[n0 + 1 : n1 + 1] = nd
    was_open = st.open
    if len(data.reexited) > st.n_reexited:  # ended again (a repeating writer): read their end again
        again = np.concatenate(data.reexited[st.n_reexited :]).astype(np.int64)
        was_open = union(was_open, unique(again[again <= n0]))
    still = howc[was_open] == HOW_OPEN
    od = np.where(still, t_end, t1c[was_open]) - t0c[was_open]
    np.maximum(od, 0, out=od)
    dur[was_open] = od
    open_now = np.concatenate((was_open[still], new.ids[open_new]))
    end_of = lambda ids: t0c[ids] + dur[ids]  # noqa: E731
    marked_old, susp_ids, susp_val, came = _suspensions(st, data, new, was_open, end_of)
    changed_old = union(was_open, marked_old)
    # the last update's rows of the calls whose runs are found again here (none: no isin's sort)
    kept, gone = st.elsewhere, st.elsewhere
    if len(st.elsewhere.call):
        kept, gone = st.elsewhere.split(np.concatenate((changed_old, new.ids)))
    if susp_ids is None and old.run is old.dur:
        run = dur
    else:
        # (at the first suspension old.run is old.dur: running times part from durations here)
        run = co.take("run", old.run, size)
        run[n0 + 1 :] = dur[n0 + 1 :]
        run[was_open] = dur[was_open]
        run[marked_old] = dur[marked_old]  # no-op at the first suspension (their dur is as before)
        if susp_ids is not None:
            run[susp_ids] = dur[susp_ids] - np.minimum(susp_val, dur[susp_ids])
    co.changed("dur", n0 + 1, was_open)
    co.changed("run", n0 + 1, was_open if run is dur else changed_old)
    elsewhere = kept.merged(came) if len(gone.call) or len(came.call) else st.elsewhere
    return _Times(dur, run, was_open, open_now, changed_old, elsewhere, gone, came)


def _suspensions(st: GrowState, data: TraceData, new: _NewCalls, was_open: np.ndarray, end_of):
    """Old calls with new wake MARK rows, and the suspended time and the runs elsewhere (timing.py)
    of every call among those, the open ones and the new ones: (marked_old, ids, suspended ns,
    runs elsewhere), ids None when none."""
    if not data.n_marks:
        return _NONE, None, None, ElsewhereRuns.none()
    n0, n1 = new.n0, new.n1
    mcall = data.mark_col("call")
    mkind = data.mark_col("kind")
    fresh = mcall[st.n_marks :]
    fresh = fresh[_WAKE_LUT[mkind[st.n_marks :]]]
    marked_old = unique(fresh[(fresh > 0) & (fresh <= n0)]).astype(np.int64)
    # every wake row of the new calls and of those: one pass over the MARK columns, with
    # lookup tables (np.isin sorts: ~40 ms per update on a 2M-mark session)
    want = np.zeros(n1 + 2, dtype=bool)
    want[n0 + 1 : n1 + 1] = True
    want[union(was_open, marked_old)] = True
    sel = want[np.minimum(mcall, n1 + 1)]
    sel &= _WAKE_LUT[mkind]
    if not sel.any():
        return marked_old, None, None, ElsewhereRuns.none()
    call, t, kind, run = mcall[sel].astype(np.int64), data.mark_col("t")[sel], mkind[sel], data.mark_col("run")[sel]
    ids, val = _suspended_rows(call, t, kind, run, end_of)
    parent = data.col("parent")
    came = elsewhere_runs(call, t, kind, data.mark_col("other")[sel], run, lambda c: parent[c], end_of, n1)
    return marked_old, ids, val, came


def _parents(old: TreeIndex, st: GrowState, new: _NewCalls, co: Checkout) -> np.ndarray:
    """The parent array of the new index: the new calls', and the roots' and group nodes'
    renumbered (group nodes follow the calls)."""
    n0, n1, dn = new.n0, new.n1, new.k
    parent = co.take("parent", old.parent, n1 + len(old.groups) + 1)
    if old.groups:
        r = st.roots
        v = parent[r]
        parent[r] = np.where(v > n0, v + dn, v)
        for g_old in old.groups:
            p = int(old.parent[g_old.node])
            parent[g_old.node + dn] = p + dn if p > n0 else p
    parent[n0 + 1 : n1 + 1] = new.parent
    parent[0] = 0
    co.changed("parent", n0 + 1, np.append(st.roots, 0) if old.groups else np.zeros(1, dtype=np.int64))
    return parent


class _ChildrenTotals:
    """Children's running-time totals of the nodes an update looks at (new numbering): the new
    calls' (their children are all new), the changed old nodes' and groups', and those kept from
    the last update; any other node's, summed over its children now (rare)."""

    def __init__(self, old: TreeIndex, new: _NewCalls, run: np.ndarray, local: np.ndarray,
                 changed_ids: np.ndarray, changed_totals: np.ndarray, kept_ids: np.ndarray,
                 kept_totals: np.ndarray, elsewhere: ElsewhereRuns) -> None:
        self.old, self.new, self.run, self.local, self.elsewhere = old, new, run, local, elsewhere
        self.changed_ids, self.changed_totals = changed_ids, changed_totals
        self.kept_ids, self.kept_totals = kept_ids, kept_totals

    def of(self, ids: np.ndarray) -> np.ndarray:
        n0, n1 = self.new.n0, self.new.n1
        out = lookup(self.changed_ids, self.changed_totals, ids)
        is_new = (ids > n0) & (ids <= n1)
        out[is_new] = self.local[ids[is_new] - n0]
        left = out == MISSING
        if left.any():
            out[left] = lookup(self.kept_ids, self.kept_totals, ids[left])
            for i in np.flatnonzero(out == MISSING).tolist():
                out[i] = _children_total(self.old, int(ids[i]), self.new, self.run, self.elsewhere)
        return out


def _totals(old: TreeIndex, st: GrowState, new: _NewCalls, groups: list[Group], times: _Times,
            co: Checkout) -> _Totals:
    """Children's totals change only for the new calls' parents and the parents of calls whose
    running time changed; self times follow. `GrowState` keeps the totals the next update needs
    (open calls, their parents, the groups)."""
    n0, n1, dn = new.n0, new.n1, new.k
    run = times.run
    parent = _parents(old, st, new, co)
    kept_ids = np.where(st.csum_ids > n0, st.csum_ids + dn, st.csum_ids)
    kept_totals = st.csum
    local = np.zeros(new.k + 1, dtype=np.int64)  # the new calls' own totals (by local id)
    if new.k:
        np.add.at(local, new.local_parent, run[n0 + 1 : n1 + 1])
    moved_ids, moved = _elsewhere_moves(old, times)
    is_new = moved_ids > n0
    np.add.at(local, moved_ids[is_new] - n0, moved[is_new])
    # old nodes' totals move by their changed children's running time and their new children's,
    # and by the runs that ran elsewhere than in their parent
    changed = times.changed_old
    c_ids, c_val = sum_by_key((parent[changed].astype(np.int64), run[changed] - old.run[changed]),
                              (new.attach, run[new.tops + n0 + 1]), (moved_ids[~is_new], moved[~is_new]))
    sel = c_ids > 0
    c_ids, c_val = c_ids[sel], c_val[sel]
    # new totals of the old calls among them (groups below): kept total + change, or (a node
    # whose total was not kept: rare) the sum over its children now
    calls = c_ids <= n0
    a_ids = c_ids[calls]
    a_val = lookup(kept_ids, kept_totals, a_ids)
    miss = np.flatnonzero(a_val == MISSING)
    a_val = a_val + c_val[calls]
    for i in miss.tolist():
        a_val[i] = _children_total(old, int(a_ids[i]), new, run, times.elsewhere)
    kept = kept_ids > n1  # the groups' kept totals
    g_cs = _group_totals(groups, parent, dict(zip(kept_ids[kept].tolist(), kept_totals[kept].tolist())),
                         dict(zip(c_ids[~calls].tolist(), c_val[~calls].tolist())))
    for node, v in g_cs.items():
        times.dur[node] = v
        if run is not times.dur:
            run[node] = v
    g_ids = sorted(g_cs)
    totals = _ChildrenTotals(old, new, run, local,
                             np.concatenate((a_ids, np.array(g_ids, dtype=np.int64))),
                             np.concatenate((a_val, np.array([g_cs[x] for x in g_ids], dtype=np.int64))),
                             kept_ids, kept_totals, times.elsewhere)
    self_time = co.take("self_time", old.self_time, n1 + len(groups) + 1)
    if new.k:
        st_new = run[n0 + 1 : n1 + 1] - local[1:]
        np.maximum(st_new, 0, out=st_new)
        self_time[n0 + 1 : n1 + 1] = st_new
    xs = union(changed, a_ids)
    xs = xs[xs > 0]
    if len(xs):
        self_time[xs] = np.maximum(run[xs] - totals.of(xs), 0)
    self_time[0] = 0
    for g in groups:
        self_time[g.node] = 0
    co.changed("self_time", n0 + 1, np.append(xs, 0))
    keep = unique(times.open_now, parent[times.open_now].astype(np.int64),
                  np.arange(n1 + 1, n1 + len(groups) + 1, dtype=np.int64))
    keep = keep[keep > 0]
    return _Totals(parent, self_time, keep, totals.of(keep))


def _group_totals(groups: list[Group], parent: np.ndarray, kept: dict[int, int],
                  change: dict[int, int]) -> dict[int, int]:
    """Group node -> its children's total now: kept total + the change under it. Task groups
    first: they count in their thread's group."""
    out: dict[int, int] = {}
    for g in groups:
        if g.kind == "task":
            out[g.node] = kept[g.node] + change.get(g.node, 0)
    for g in groups:
        if g.kind == "thread":
            extra = sum(out[t.node] - kept[t.node] for t in groups if t.kind == "task" and int(parent[t.node]) == g.node)
            out[g.node] = kept[g.node] + change.get(g.node, 0) + extra
    return out


# --- positions -------------------------------------------------------------------------------
def _same_shape(old: TreeIndex, new: _NewCalls, co: Checkout) -> _Shape:
    """No new call: the tree keeps its shape, and the new index the old one's arrays."""
    m0 = old.size
    for name in ("order", "depth", "end"):
        co.changed(name, m0, _NONE)
    co.changed("pos_of", m0 + 1, _NONE)
    return _Shape(old.order, old.depth, old.end, old.pos_of, list(old.levels), _NONE,
                  Moves(m0, np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int32),
                        np.zeros(0, np.int32), np.zeros(0, np.int64)))


@dataclass(frozen=True)
class _Layout:
    """The new calls laid out among themselves (the tops are the roots of this small forest),
    by local id 1..k: subtree `size`, position `pos`; per new call: `depth` below its top and
    `top` (its top's local id)."""

    size: np.ndarray
    pos: np.ndarray
    depth: np.ndarray
    top: np.ndarray


def _layout(data: TraceData, new: _NewCalls, depth_dtype: np.dtype) -> _Layout:
    k, n0, n1 = new.k, new.n0, new.n1
    local = local_preorder(new.local_parent, data.col("depth")[n0 + 1 : n1 + 1])
    if local is not None:  # in id order already (one thread, no generator resumed): no layout
        return _Layout(*local)
    lp = new.local_parent
    dl_, top_local = _depth_and_root(lp.astype(np.uint32), 1, np.zeros(1, np.int32), np.zeros(1, np.uint32))
    lpar = np.zeros(k + 1, dtype=np.int32)
    lpar[1:] = lp
    ldepth = np.zeros(k + 1, dtype=depth_dtype)
    ldepth[1:] = dl_
    thread = data.col("thread")
    lthread = np.zeros(k + 1, dtype=thread.dtype)
    lthread[1:] = thread[n0 + 1 : n1 + 1]
    lsize, lpos, _, _ = _positions(lpar, ldepth, lthread, k, [], [], [])
    return _Layout(lsize, lpos, dl_, top_local)


@dataclass(frozen=True)
class _Blocks:
    """Where the new calls go: under each attachment `q` (an old node, or 0: the top level) its
    new subtrees come after all its old children, as one block of `size` calls at `q`'s old
    subtree end. Per attachment (sorted by node id): `node`, `node_old` (old numbering), `pos`
    and `end` (old positions; -1 and the old size for the top level), `depth`. Per top:
    `block` (its attachment's index) and `offset` in the block."""

    node: np.ndarray
    node_old: np.ndarray
    size: np.ndarray
    pos: np.ndarray
    end: np.ndarray
    depth: np.ndarray
    block: np.ndarray
    offset: np.ndarray
    insert_at: np.ndarray  # block positions (old), sorted
    shift: np.ndarray  # shift[i]: calls inserted at the first i of them
    pos_sorted: np.ndarray  # attachment positions, sorted
    grown: np.ndarray  # grown[i]: calls attached under the first i of them

    def moved_by(self, p: np.ndarray) -> np.ndarray:
        """How far old positions `p` move: the new calls in blocks inserted at or before p (a
        block at q's end precedes the old node found there)."""
        return self.shift[np.searchsorted(self.insert_at, p, side="right")]

    def attached_before(self, t: np.ndarray) -> np.ndarray:
        """New calls attached under old nodes at positions < t: a subtree [p, e) grows by
        attached_before(e) - attached_before(p)."""
        return self.grown[np.searchsorted(self.pos_sorted, t, side="left")]


def _blocks(old: TreeIndex, new: _NewCalls, layout: _Layout) -> _Blocks:
    tops, tq = new.tops, new.attach
    order_t = np.argsort(tq, kind="stable")  # the tops of each attachment, in id order
    tq_s = tq[order_t]
    tsize = layout.size[tops + 1].astype(np.int64)[order_t]
    cums = np.cumsum(tsize)
    first_of = np.ones(len(tq_s), dtype=bool)
    first_of[1:] = tq_s[1:] != tq_s[:-1]
    starts = np.flatnonzero(first_of)
    run_base = np.repeat(cums[starts] - tsize[starts], np.diff(np.append(starts, len(tq_s))))
    offset = np.empty(len(tops), dtype=np.int64)
    offset[order_t] = cums - tsize - run_base
    node = tq_s[starts]
    size = np.add.reduceat(tsize, starts)
    node_old = np.where(node > new.n1, node - new.k, node)
    pos = np.where(node == 0, -1, old.pos_of[node_old]).astype(np.int64)
    end = np.where(node == 0, old.size, old.end[np.maximum(pos, 0)]).astype(np.int64)
    depth = np.where(node == 0, -1, old.depth[np.maximum(pos, 0)]).astype(np.int64)
    by_end = np.argsort(end, kind="stable")
    by_pos = np.argsort(pos, kind="stable")
    return _Blocks(node, node_old, size, pos, end, depth, np.searchsorted(node, tq), offset,
                   end[by_end], np.concatenate(([0], np.cumsum(size[by_end]))),
                   pos[by_pos], np.concatenate(([0], np.cumsum(size[by_pos]))))


def _reshape(old: TreeIndex, data: TraceData, new: _NewCalls, groups: list[Group], co: Checkout) -> _Shape:
    """The new preorder: old positions after the first insertion point move (block copies),
    the attachments' ancestors' subtrees grow, the new calls are written into their blocks."""
    n0, n1, k = new.n0, new.n1, new.k
    m0, m1 = old.size, n1 + len(groups)
    layout = _layout(data, new, old.depth.dtype)
    blocks = _blocks(old, new, layout)
    first = int(blocks.insert_at[0])  # nothing before it moves
    # each top's position: its block's start + its offset in the block; each new call's: its
    # top's + its offset in the top's subtree
    block_end = blocks.pos + blocks.moved_by(blocks.pos) + (blocks.end - blocks.pos) \
        + blocks.attached_before(blocks.end) - blocks.attached_before(blocks.pos)
    top_pos = (block_end - blocks.size)[blocks.block] + blocks.offset
    tl = layout.top.astype(np.int64)
    top_of = np.empty(k + 1, dtype=np.int64)
    top_of[new.tops + 1] = top_pos
    new_pos = top_of[tl] + (layout.pos[1:] - layout.pos[tl])
    dtop = np.empty(k + 1, dtype=np.int64)
    dtop[new.tops + 1] = blocks.depth[blocks.block] + 1
    depth_new = dtop[tl] + layout.depth

    order = co.take("order", old.order, m1)
    depth = co.take("depth", old.depth, m1)
    end = co.take("end", old.end, m1)
    pos_of = co.take("pos_of", old.pos_of, m1 + 1)
    cuts = unique(blocks.insert_at)
    _move_old_positions(old, n0, blocks, cuts, order, depth, end, pos_of)
    grown_ends = _grow_ancestors(old, blocks, end, first)
    group_pos = []
    for g_old in old.groups:  # group nodes: renumbered, maybe moved
        p = int(old.pos_of[g_old.node])
        q = p if p < first else int(blocks.moved_by(np.array([p]))[0]) + p
        pos_of[g_old.node + k] = q
        order[q] = g_old.node + k
        group_pos.append(q)
    order[new_pos] = new.ids
    depth[new_pos] = depth_new
    end[new_pos] = new_pos + layout.size[1:]
    pos_of[n0 + 1 : n1 + 1] = new_pos
    levels = _grow_levels(old, co.pool, new_pos, depth_new, first, cuts, blocks)

    gp = np.array(group_pos, dtype=np.int64)
    co.changed("order", first, gp[gp < first])
    co.changed("depth", first, _NONE)
    co.changed("end", first, grown_ends)
    if m0 - first > _SPARSE_MAX:  # many moved: the next buffers copy pos_of whole (4 bytes a call)
        co.changed("pos_of", 0, _NONE)
    else:
        ids = old.order[first:m0]
        co.changed("pos_of", n0 + 1, ids[ids <= n0].astype(np.int64))
    attach_at = np.where(blocks.node == 0, -1, blocks.pos).astype(np.int32)
    return _Shape(order, depth, end, pos_of, levels, new_pos,
                  Moves(first, blocks.insert_at, blocks.shift, top_pos.astype(np.int32), attach_at, blocks.block))


def _move_old_positions(old: TreeIndex, n0: int, blocks: _Blocks, cuts: np.ndarray, order: np.ndarray,
                        depth: np.ndarray, end: np.ndarray, pos_of: np.ndarray) -> None:
    """Old nodes after the first insertion point move by `moved_by`, constant between two
    insertion points: block copies. Their subtree ends move the same way, except for the
    attachments' ancestors (`_grow_ancestors`); group ids among them are renumbered later."""
    m0 = old.size
    for j, a0 in enumerate(cuts.tolist()):
        b0 = int(cuts[j + 1]) if j + 1 < len(cuts) else m0
        c = int(blocks.shift[np.searchsorted(blocks.insert_at, a0, side="right")])
        for a in range(a0, min(b0, m0), _SHIFT_CHUNK):  # in chunks: temporaries stay small
            b = min(b0, m0, a + _SHIFT_CHUNK)
            order[a + c : b + c] = old.order[a:b]
            depth[a + c : b + c] = old.depth[a:b]
            np.add(old.end[a:b], c, out=end[a + c : b + c])
            ids = old.order[a:b]
            calls = ids <= n0
            pos_of[ids[calls]] = np.arange(a + c, b + c, dtype=np.int32)[calls]


def _grow_ancestors(old: TreeIndex, blocks: _Blocks, end: np.ndarray, first: int) -> np.ndarray:
    """The attachments and their ancestors: their subtrees grew. Returns the old positions
    before `first` whose end changed (the others are logged as moved anyway)."""
    cur = unique(blocks.node_old[blocks.node_old > 0])
    anc = [cur]
    while len(cur):
        cur = old.parent[cur]
        cur = unique(cur[cur > 0])
        anc.append(cur)
    ap = old.pos_of[unique(np.concatenate(anc))].astype(np.int64)
    ap = ap[ap >= 0]
    if len(ap):
        ae = old.end[ap].astype(np.int64)
        moved = blocks.moved_by(ap)
        end[ap + moved] = ae + moved + blocks.attached_before(ae) - blocks.attached_before(ap)
        ap = ap[ap < first]
    return ap


def _grow_levels(old: TreeIndex, pool: BufferPool, new_pos: np.ndarray, depth_new: np.ndarray, first: int,
                 cuts: np.ndarray, blocks: _Blocks) -> list[np.ndarray]:
    """Per-depth positions: each level's old positions (moved) merged with its new ones."""
    if len(new_pos) > 1 and (new_pos[1:] > new_pos[:-1]).all():  # appended in id order: by depth alone
        nl = np.argsort(depth_new.astype(old.depth.dtype), kind="stable")  # a radix sort (16-bit keys)
    else:
        nl = np.lexsort((new_pos, depth_new))
    new_sorted, new_depth_sorted = new_pos[nl], depth_new[nl]
    n_levels = max(len(old.levels), int(depth_new.max()) + 1)
    nb = np.searchsorted(new_depth_sorted, np.arange(n_levels + 1))
    shifts = [int(blocks.shift[np.searchsorted(blocks.insert_at, c, side="right")]) for c in cuts.tolist()]
    levels: list[np.ndarray] = []
    for d in range(n_levels):
        lv = old.level(d)
        i = int(np.searchsorted(lv, lv.dtype.type(first))) if len(lv) else 0
        add = new_sorted[nb[d] : nb[d + 1]]
        if i < len(lv):
            moved = lv[i:].astype(np.int64)
            # + moved_by, constant between insertion points: one add per piece, not a search each
            at = np.searchsorted(moved, cuts).tolist() + [len(moved)]
            for j in range(len(cuts)):
                moved[at[j] : at[j + 1]] += shifts[j]
            add = np.concatenate((moved, add))
            add.sort(kind="stable")  # two sorted runs: timsort merges them
        levels.append(pool.level(d, lv, i, add))
    return levels


def _grow_heaviest(old: TreeIndex, ix: TreeIndex, new: _NewCalls, changed_old: np.ndarray, new_pos: np.ndarray,
                   co: Checkout) -> np.ndarray:
    """`ix`'s heaviest children (for `H`), kept up to date when `old` had them computed: a
    whole pass costs ~15 ms per million calls, too much for every live update, and a key
    should not wait for it either. Only the nodes whose children changed are looked at: the
    new calls (their children are all new), the nodes the new calls hang under and the parents
    of calls whose running time changed -- from their previous heaviest child, the changed and
    the new children; all children only when the previous heaviest one ran less now (its end
    came in earlier than the session's end), and for group nodes (their children's times move
    with the calls under them)."""
    h_old = old.heavy_if_known
    assert h_old is not None and ix.growth is not None
    n0, n1, G = old.n, ix.n, len(ix.groups)
    dn = n1 - n0
    P = ix.growth.moves.first_moved
    lp, tops, tq, R_old = new.local_parent, new.tops, new.attach, changed_old
    heavy = co.take("heavy", h_old, ix.size + 1)
    touched = [np.zeros(1, dtype=np.int64)]
    if P < old.size:  # heaviest children after P moved
        v = heavy[: n0 + 1]
        m = np.flatnonzero(v >= P)
        if len(m):
            vals = v[m].astype(np.int64)
            o = np.argsort(vals, kind="stable")  # `move` takes increasing positions
            moved = np.empty_like(vals)
            moved[o] = ix.growth.moves.move(vals[o])
            heavy[m] = moved
            touched.append(m)
    # new calls: from their own children, all new (first child with the largest time)
    k = dn
    if k:
        inner = np.flatnonzero(lp > 0)
        hl = np.full(k + 1, -1, dtype=np.int64)
        if len(inner):
            first, has = _first_largest(lp[inner], k + 1, ix.run[inner + n0 + 1], new_pos[inner].astype(np.int64))
            hl[has] = first[has]
        heavy[n0 + 1 : n1 + 1] = hl[1:]
    # old calls (and the top level, node 0) whose children changed: candidates
    cp = np.concatenate((ix.parent[R_old].astype(np.int64), tq))
    cc = np.concatenate((R_old, tops + n0 + 1))
    calls = cp <= n0
    cp, cc = cp[calls], cc[calls]
    n_r = int(np.count_nonzero(calls[: len(R_old)]))
    aff = unique(cp[:n_r], cp[n_r:])  # each part usually in order: no sort
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
        # per parent (an index into `aff`, which holds every cand_p)
        first, got = _first_largest(np.searchsorted(aff, cand_p), len(aff), ix.run[cand_c],
                                    ix.pos_of[cand_c].astype(np.int64))
        heavy[aff[got]] = first[got]
        touched.append(aff)
    if full:
        heavy[full] = heaviest_children_of(ix, np.array(full, dtype=np.int64))
    touched.append(np.array([p for p in full if p <= n0], dtype=np.int64))
    co.changed("heavy", n0 + 1, np.concatenate(touched))
    return heavy


def _first_largest(group: np.ndarray, n_groups: int, value: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group 0..n_groups-1: the smallest `pos` among its members with the group's largest
    `value`, and whether the group has members -- two scatters instead of a lexsort of all."""
    top = np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(top, group, value)
    best = value == top[group]
    first = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, group[best], pos[best])
    return first, first != np.iinfo(np.int64).max


def local_preorder(lp: np.ndarray, cd: np.ndarray) -> tuple[np.ndarray, ...] | None:
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


def heaviest_children_of(ix: TreeIndex, nodes: np.ndarray) -> np.ndarray:
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
    for d in unique(dch).tolist():
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


def _children_total(old: TreeIndex, p: int, new: _NewCalls, run: np.ndarray, elsewhere: ElsewhereRuns) -> int:
    """Children's running-time total of old call `p` over its children now (its old children in
    `old`, plus the new calls hung under it; less their runs elsewhere, plus the runs that ran
    in it: timing.py): for the rare node whose total was not kept."""
    n0, dn, tops, tq = new.n0, new.k, new.tops, new.attach
    po = p - dn if p > n0 + dn else p
    kids = old.order[old.children(int(old.pos_of[po]))].astype(np.int64)
    kids = np.concatenate((np.where(kids > n0, kids + dn, kids), tops[tq == p] + n0 + 1))
    total = int(run[kids].sum())
    if p > new.n1:  # a group: its roots count whole, as in index._times
        return total
    ids, away = elsewhere.away()
    gone = lookup(ids, away, kids)
    has = gone != MISSING
    total -= int(np.minimum(run[kids[has]], gone[has]).sum())
    runners, ns = elsewhere.credits()
    got = lookup(runners, ns, np.array([p], dtype=np.int64))
    return total + (int(got[0]) if got[0] != MISSING else 0)


def _elsewhere_moves(old: TreeIndex, times: _Times) -> tuple[np.ndarray, np.ndarray]:
    """The change this update makes to calls' children's totals through runs that ran elsewhere
    than in their call's parent (timing.py; index.move_elsewhere for a whole index): the rows it
    replaced are taken back, the rows that replaced them put in. (call ids, change), sorted."""
    gone, came, run = times.gone, times.came, times.run
    if not len(gone.call) and not len(came.call):
        return _NONE, _NONE
    cparent = old.data.col("parent")
    taken_back = [(ids, -ns) for ids, ns in gone.moves(old.run, cparent)]
    return sum_by_key(*taken_back, *came.moves(run, cparent))


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
