"""The preorder index: where every call sits in the displayed tree, computed with numpy.

Call-id order is start order, which is *not* preorder once generators or threads are involved:
a generator's children interleave with its consumer's, and threads interleave with each other.
So positions are computed from parent pointers, level by level (each level is one vectorised
step, the total work is O(N log N) with no per-call Python):

1. bottom-up: subtree sizes, by adding each level's sizes into its parents (`np.add.at`);
2. top-down: a node's position = its parent's position + 1 + sizes of its earlier siblings.

Roots are grouped under synthetic *group nodes* (ids n+1 .. n+G) by thread, and by asyncio task,
when the trace has more than one; with grouping off they are plain top-level rows.

A `TreeIndex` is an immutable snapshot of the first `n` calls; a live session builds a new one
off the UI thread and the view state (kept by call id) is carried over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .loader import HOW_OPEN, TraceData


@dataclass(frozen=True)
class Group:
    """A synthetic node that holds the roots of one thread or asyncio task."""

    node: int  # node id (> n)
    kind: str  # "thread" or "task"
    thread: int
    task: int
    label: str

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.kind, self.thread, self.task)


class TreeIndex:
    """Preorder arrays over nodes (calls 1..n plus group nodes n+1..n+G).

    Per position p (0..M-1): `order[p]` node id, `depth[p]`, `end[p]` (one past the subtree).
    Per node id: `pos_of`, `parent` (with roots pointing at their group), `dur`, `self_time`.
    """

    def __init__(
        self,
        data: TraceData,
        n: int,
        groups: list[Group],
        order: np.ndarray,
        pos_of: np.ndarray,
        depth: np.ndarray,
        end: np.ndarray,
        parent: np.ndarray,
        dur: np.ndarray,
        self_time: np.ndarray,
        t_end: int,
        grouped: bool,
    ) -> None:
        self.data = data
        self.n = n
        self.groups = groups
        self.order = order
        self.pos_of = pos_of
        self.depth = depth
        self.end = end
        self.parent = parent
        self.dur = dur
        self.self_time = self_time
        self.t_end = t_end
        self.grouped = grouped
        self._group_by_node = {g.node: g for g in groups}

    @property
    def size(self) -> int:
        """Number of positions (calls + group nodes)."""
        return len(self.order)

    def group(self, node: int) -> Group | None:
        return self._group_by_node.get(node)

    def is_group(self, node: int) -> bool:
        return node > self.n

    def node(self, pos: int) -> int:
        return int(self.order[pos])

    def descendants(self, pos: int) -> int:
        return int(self.end[pos]) - pos - 1

    def parent_pos(self, pos: int) -> int:
        """Position of the parent row, -1 for a top-level row."""
        par = int(self.parent[self.order[pos]])
        return int(self.pos_of[par]) if par else -1

    def ancestors(self, pos: int) -> list[int]:
        """Positions from the top-level row down to the parent of `pos`."""
        out = []
        p = self.parent_pos(pos)
        while p >= 0:
            out.append(p)
            p = self.parent_pos(p)
        out.reverse()
        return out

    def children(self, pos: int) -> np.ndarray:
        """Positions of the direct children, in order (one vectorised scan of the subtree)."""
        end = int(self.end[pos])
        if end == pos + 1:
            return np.empty(0, dtype=np.int64)
        d = self.depth[pos] + 1
        return np.flatnonzero(self.depth[pos + 1 : end] == d) + (pos + 1)

    def top_level(self) -> np.ndarray:
        return np.flatnonzero(self.depth == 0)

    def next_sibling(self, pos: int) -> int:
        """Position of the next sibling, or -1."""
        nxt = int(self.end[pos])
        if nxt < self.size and self.depth[nxt] == self.depth[pos]:
            return nxt
        return -1

    def prev_sibling(self, pos: int) -> int:
        """Position of the previous sibling, or -1."""
        par = self.parent_pos(pos)
        lo = par + 1 if par >= 0 else 0
        if pos == lo:
            return -1
        d = self.depth[pos]
        # the previous sibling is the last row before pos at the same depth
        hits = np.flatnonzero(self.depth[lo:pos] == d)
        return int(hits[-1]) + lo if len(hits) else -1

    def is_open(self, node: int) -> bool:
        """The call has no end yet (running, or the process died)."""
        return 0 < node <= self.n and int(self.data.col("how")[node]) == HOW_OPEN


def _first_index(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys in order of first appearance and that first index."""
    uniq, first = np.unique(keys, return_index=True)
    order = np.argsort(first, kind="stable")
    return uniq[order], first[order]


def build_index(data: TraceData, n: int | None = None, grouped: bool = True) -> TreeIndex:
    """Index the first `n` calls of `data` (all loaded calls by default)."""
    if n is None:
        n = data.n
    parent_c = data.col("parent")[: n + 1]
    thread = data.col("thread")[: n + 1]
    task = data.col("task")[: n + 1]
    t0 = data.col("t0")[: n + 1]
    t1 = data.col("t1")[: n + 1]
    how = data.col("how")[: n + 1]
    cdepth = data.col("depth")[: n + 1]
    croot = data.col("root")[: n + 1]
    t_end = data.t_end

    # --- groups --------------------------------------------------------------------------
    roots = np.flatnonzero(parent_c[1:] == 0) + 1
    rthr = thread[roots].astype(np.int64)
    rtask = task[roots].astype(np.int64)
    by_thread = grouped and len(np.unique(rthr)) > 1
    by_task = grouped and len(np.unique(rtask[rtask > 0])) > 1
    groups: list[Group] = []
    first_root: list[int] = []
    thread_node: dict[int, int] = {}
    if by_thread:
        uthr, first = _first_index(rthr)
        for thr, f in zip(uthr.tolist(), first.tolist()):
            node = n + 1 + len(groups)
            thread_node[thr] = node
            groups.append(Group(node, "thread", thr, 0, data.thread_name(thr)))
            first_root.append(int(roots[f]))
    task_node: dict[int, int] = {}
    if by_task:
        sel = rtask > 0
        key = rtask[sel]
        utask, first = _first_index(key)
        troots = roots[sel]
        for tk, f in zip(utask.tolist(), first.tolist()):
            node = n + 1 + len(groups)
            task_node[tk] = node
            thr = int(thread[troots[f]])
            groups.append(Group(node, "task", thr, tk, data.task_name(tk)))
            first_root.append(int(troots[f]))
    G = len(groups)
    M = n + G  # positions

    # parent over node ids 0..M (roots re-pointed at their group)
    parent = np.zeros(M + 1, dtype=np.int32)
    parent[: n + 1] = parent_c
    gdepth_of_root = np.zeros(len(roots), dtype=np.int32)
    if by_thread:
        tn = np.array([thread_node[t] for t in rthr.tolist()], dtype=np.int32) if len(roots) else np.zeros(0, np.int32)
        parent[roots] = tn
        gdepth_of_root += 1
    if by_task:
        has = rtask > 0
        parent[roots[has]] = np.array([task_node[t] for t in rtask[has].tolist()], dtype=np.int32)
        gdepth_of_root[has] += 1
        for g in groups:
            if g.kind == "task" and by_thread:
                parent[g.node] = thread_node[g.thread]

    # depth over node ids
    depth = np.zeros(M + 1, dtype=np.int32)
    extra = np.zeros(n + 1, dtype=np.int32)
    if G:
        extra[roots] = gdepth_of_root
        depth[: n + 1] = cdepth + extra[croot]
    else:
        depth[: n + 1] = cdepth
    del extra
    for g in groups:
        depth[g.node] = 1 if (g.kind == "task" and by_thread) else 0

    # durations: an open call lasts until the end of what we know
    dur = np.zeros(M + 1, dtype=np.int64)
    ended = how != HOW_OPEN
    dur[: n + 1] = np.where(ended, t1, t_end) - t0
    np.maximum(dur, 0, out=dur)
    dur[0] = 0
    childsum = np.bincount(parent[1 : n + 1], weights=dur[1 : n + 1], minlength=M + 1).astype(np.int64)
    # task groups first (their children are roots), then thread groups (roots + task groups)
    for g in groups:
        if g.kind == "task":
            dur[g.node] = childsum[g.node]
            if by_thread:
                childsum[parent[g.node]] += childsum[g.node]
    for g in groups:
        if g.kind == "thread":
            dur[g.node] = childsum[g.node]
    self_time = dur - childsum
    np.maximum(self_time, 0, out=self_time)
    for g in groups:
        self_time[g.node] = 0
    del childsum

    # enumerate nodes in sibling order: calls by id, each group just before its first root
    enum = np.arange(1, n + 1, dtype=np.int32)
    if G:
        at = np.searchsorted(enum, np.array(first_root, dtype=np.int32))
        enum = np.insert(enum, at, np.arange(n + 1, M + 1, dtype=np.int32))
    dkey = depth[enum]
    if M and int(dkey.max()) < 32767:
        dkey = dkey.astype(np.int16)  # a stable sort of int16 is a radix sort: O(N)
    by_level = enum[np.argsort(dkey, kind="stable")]
    del enum, dkey
    counts = np.bincount(depth[by_level], minlength=1) if M else np.zeros(1, np.int64)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    levels = len(counts)

    # 1. bottom-up subtree sizes
    size = np.ones(M + 1, dtype=np.int32)
    for lv in range(levels - 1, 0, -1):
        nodes = by_level[bounds[lv] : bounds[lv + 1]]
        np.add.at(size, parent[nodes], size[nodes])

    # 2. top-down positions
    pos = np.full(M + 1, -1, dtype=np.int32)
    for lv in range(levels):
        nodes = by_level[bounds[lv] : bounds[lv + 1]]
        if len(nodes) == 0:
            continue
        s = size[nodes].astype(np.int64)
        if lv == 0:
            pos[nodes] = np.cumsum(s) - s
            continue
        pp = pos[parent[nodes]].astype(np.int64)
        if len(pp) > 1 and (pp[1:] < pp[:-1]).any():
            # siblings interleave in id order (generators, threads): group them by parent
            k = np.argsort(pp, kind="stable")
            nodes, pp, s = nodes[k], pp[k], s[k]
        excl = np.cumsum(s) - s
        start = np.ones(len(pp), dtype=bool)
        start[1:] = pp[1:] != pp[:-1]
        first_of_run = np.maximum.accumulate(np.where(start, np.arange(len(pp)), 0))
        pos[nodes] = pp + 1 + excl - excl[first_of_run]
    del by_level

    order = np.empty(M, dtype=np.int32)
    order[pos[1:]] = np.arange(1, M + 1, dtype=np.int32)
    end_pre = (pos[order] + size[order]).astype(np.int32)
    depth_pre = depth[order]
    return TreeIndex(data, n, groups, order, pos, depth_pre, end_pre, parent, dur, self_time, t_end, grouped)
