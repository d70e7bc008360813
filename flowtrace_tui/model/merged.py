"""Merged call paths (uftrace's `graph`): the call tree with identical call paths merged.

Under each node, the children that call the same function are one node, recursively: a loop
that calls `step` ten million times under `main` becomes one row `main › step` (×10,000,000)
with the children of all those calls merged below it in turn. A merged node carries how many
calls it stands for, their summed running and self times, and how many raised or did not end.

The merged tree is built from a `TreeIndex` level by level with numpy, no per-call Python:

1. per depth, each call's key is (its parent's merged node, its function); `np.unique` of the
   keys gives that level's merged nodes, numbered by (parent's number, first appearance in
   preorder) -- so each level's numbers are in the merged tree's preorder, siblings adjacent;
2. counts and times are scatter-adds of the calls' columns into their merged nodes;
3. subtree sizes bottom-up, sibling offsets and positions top-down (as index.py does).

The result is a `MergedIndex`: a `TreeIndex` whose nodes are merged paths, so that `TreeRows`
and the call tree show, expand, collapse and search it unchanged. Thread and task groups stay
nodes of their own (the paths of each thread are merged apart). `node_of` maps every node of
the source index to its merged node, `first_call` every merged node back to its first call:
that is how a view moves between the two trees.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable

import numpy as np

from .index import Group, TreeIndex, move_elsewhere
from .loader import HOW_OPEN, HOW_RAISE, HOW_UNFINISHED, TraceData
from .timing import all_elsewhere_runs, running_time

Cancelled = Callable[[], bool]
# A level's (parent, function) keys are counted in a dense table (no sort) when the table is
# no bigger than this many entries per call of the level (or this minimum): the usual case,
# as merged trees are narrow; else np.unique sorts the keys.
_DENSE_PER_CALL = 4
_DENSE_MIN = 1 << 16
_SCAN = 1 << 16  # calls per piece of `MergedIndex.calls_of`'s scan


class MergeCancelled(Exception):
    """`merge_paths` was asked to stop (a newer index arrived)."""


class MergedIndex(TreeIndex):
    """A `TreeIndex` over merged paths (nodes 1..n: merged calls; n+1..: the source's groups).

    `dur`/`run`: the summed running time of the calls merged; `self_time`: their summed self
    time. Per node: `count` (calls merged; a group: its calls), `raised` (calls that ended by
    an exception), `unfinished` (calls with no end), `func` (function id; 0 for a group),
    `first_call` (the first of its calls in the source's preorder; a group: its group node).
    `node_of`: per node id of `source`, its merged node. `source`: the call index it was
    merged from (None: merged from the loaded columns, `merge_calls`); `call_run` per call id
    its running time."""

    merged = True

    def __init__(self, *, data: TraceData, source: TreeIndex | None, n_calls: int, call_run: np.ndarray,
                 count: np.ndarray, raised: np.ndarray, unfinished: np.ndarray, func: np.ndarray,
                 first_call: np.ndarray, node_of: np.ndarray, **arrays) -> None:
        super().__init__(data=data, t_end=data.t_end, grouped=source.grouped if source is not None else False,
                         **arrays)
        self.source = source
        self._n_calls = n_calls
        self.call_run = call_run
        self.count = count
        self.raised = raised
        self.unfinished = unfinished
        self.func = func
        self.first_call = first_call
        self.node_of = node_of

    def is_open(self, node: int) -> bool:
        """A merged path is a summary, not a running call: never ticks with a live clock."""
        return False

    def node_funcs(self) -> np.ndarray:
        return self.func

    @property
    def n_calls(self) -> int:
        return self._n_calls

    def pos_of_call(self, call: int) -> int:
        return int(self.pos_of[self.node_of[call]])

    def nodes_of_calls(self, by_call: np.ndarray) -> np.ndarray:
        """Per node: does one of its calls have `by_call` (a mask over call ids 0..n_calls)?"""
        out = np.zeros(self.n + 1, dtype=bool)
        out[self.node_of[np.flatnonzero(by_call[: self._n_calls + 1])]] = True
        out[0] = False
        return out

    def calls_of(self, node: int, limit: int | None = None) -> np.ndarray:
        """Source call ids merged into `node`, in id (start) order: all of them, or the first
        `limit` (a scan in pieces that stops once it has them)."""
        of = self.node_of[: self._n_calls + 1]
        if limit is None:
            return np.flatnonzero(of == node)
        found: list[np.ndarray] = []
        have = 0
        for a in range(0, len(of), _SCAN):
            hit = np.flatnonzero(of[a : a + _SCAN] == node)
            found.append(hit + a)
            have += len(hit)
            if have >= limit:
                break
        return np.concatenate(found)[:limit] if found else np.zeros(0, dtype=np.int64)

    def slowest_call(self, node: int, calls: np.ndarray | None = None) -> int:
        """The call of `node` that ran longest (the first of equals; 0: none). `calls`: all of
        its calls when the caller has them already."""
        if calls is None or len(calls) < int(self.count[node]):
            calls = self.calls_of(node)
        if not len(calls):
            return 0
        return int(calls[np.argmax(self.call_run[calls])])


def merge_paths(ix: TreeIndex, cancelled: Cancelled = lambda: False) -> MergedIndex:
    """The merged-path tree of `ix` (see the module docstring). Raises `MergeCancelled` when
    `cancelled()` says so between levels."""
    data, n, groups = ix.data, ix.n, ix.groups
    fn = data.col("func")[: n + 1]
    nf = int(fn.max()) + 1 if n else 1
    key = np.empty(ix.size + 1, dtype=np.int32)
    key[: n + 1] = fn
    key[n + 1 :] = nf + np.arange(len(groups))  # each group a key of its own
    mid = np.zeros(ix.size + 1, dtype=np.int32)  # source node -> merged node (level numbering)
    levels = (ix.order[lv] for lv in ix.levels)  # preorder within each level
    par, first_node, bounds = _merge_levels(levels, ix.parent, key, nf + len(groups), mid, cancelled)
    # numbers: merged calls 1..K in level order, the groups K+1.. in the source's group order
    remap = _groups_last(ix, mid, len(par) - 1)
    counts = [(g, ix.descendants(int(ix.pos_of[g.node]))) for g in groups]
    return _assemble(data, n, mid, (ix.run, ix.self_time), par, first_node, bounds, remap, counts, ix)


def merge_calls(data: TraceData, keys: np.ndarray | None = None, cancelled: Cancelled = lambda: False) -> MergedIndex:
    """The merged paths of every loaded call straight from the columns, without a preorder
    index (the diff view's road: it never shows the calls as a tree): threads merged (no
    groups), siblings in start order. `keys`: per function id, what calls are merged by
    (default: the function; the diff view merges by name, model/diff_tree.py)."""
    n = data.n
    fn = data.col("func")[: n + 1]
    key = (keys[fn] if keys is not None else fn).astype(np.int32)
    d = data.col("depth")[1 : n + 1]
    if n and int(d.max()) < 32000:
        d = d.astype(np.int16)  # a stable argsort of int16 is a radix sort
    by_depth = np.argsort(d, kind="stable").astype(np.int32)  # calls by depth, in id order
    by_depth += 1
    cuts = [0, *np.cumsum(np.bincount(d)).tolist()] if n else [0]
    levels = (by_depth[lo:hi] for lo, hi in zip(cuts[:-1], cuts[1:]))
    mid = np.zeros(n + 1, dtype=np.int32)
    span = int(key.max()) + 1 if n else 1
    par, first_node, bounds = _merge_levels(levels, data.col("parent")[: n + 1], key, span, mid, cancelled)
    remap = np.arange(len(par), dtype=np.int32)  # no groups: the level numbers are the ids
    return _assemble(data, n, mid, call_times(data, n), par, first_node, bounds, remap, [], None)


def _merge_levels(levels: Iterable[np.ndarray], parent: np.ndarray, key: np.ndarray, span: int, mid: np.ndarray,
                  cancelled: Cancelled) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Merge the source nodes level by level (`levels`: per depth, its node ids in the order
    that decides first appearance), numbering merged nodes into `mid` (per source node).
    Returns per merged number its parent's number and its first source node, and the numbers
    where each level starts."""
    parents, firsts, bounds = [], [], [1]
    for nodes in levels:
        if cancelled():
            raise MergeCancelled
        nums, par_m, first = merge_level(mid[parent[nodes]], key[nodes], span, bounds[-1])
        mid[nodes] = nums
        parents.append(par_m)
        firsts.append(nodes[first])
        bounds.append(bounds[-1] + len(par_m))
    total = bounds[-1] - 1
    par = np.zeros(total + 1, dtype=np.int32)
    first_node = np.zeros(total + 1, dtype=np.int64)
    if parents:
        par[1:] = np.concatenate(parents)
        first_node[1:] = np.concatenate(firsts)
    return par, first_node, bounds


def call_times(data: TraceData, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Running and self time per call id 0..n, as `build_index` computes them without groups
    (its times phase; kept apart so that `merge_calls` needs no preorder index)."""
    t0 = data.col("t0")[: n + 1]
    dur = data.col("t1")[: n + 1] - t0
    open_ = np.flatnonzero(data.col("how")[: n + 1] == HOW_OPEN)
    dur[open_] = data.t_end - t0[open_]
    np.maximum(dur, 0, out=dur)
    dur[0] = 0
    run = running_time(data, n, t0, dur)
    own = run.copy()
    kids = np.zeros(n + 1, dtype=np.int64)
    np.add.at(kids, data.col("parent")[1 : n + 1], run[1 : n + 1])
    move_elsewhere(kids, run, data.col("parent"), all_elsewhere_runs(data, n, data.col("parent"),
                                                                       lambda ids: t0[ids] + dur[ids]))
    own -= kids
    np.maximum(own, 0, out=own)
    own[0] = 0
    return run, own


def merge_level(pm: np.ndarray, fk: np.ndarray, span: int, base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge the nodes of one depth level, given in preorder with their parents' merged numbers
    `pm` (0: top level; `pm` is overwritten) and their keys `fk` (0 <= key < span): per node its
    merged number (from `base`); per merged node, in number order, its parent's number and the
    index of its first node. Merged nodes are numbered by parent, then first appearance."""
    lo, hi = (int(pm.min()), int(pm.max())) if len(pm) else (0, 0)
    width = (hi - lo + 1) * span  # the possible (parent, key) pairs
    if width <= max(_DENSE_MIN, _DENSE_PER_CALL * len(pm)):
        # few pairs possible: a table over all of them (no sort), int32 throughout
        k = pm.astype(np.int32, copy=False)
        k -= lo
        k *= span
        k += fk
        first_of = np.full(width, len(pm), dtype=np.int32)
        np.minimum.at(first_of, k, np.arange(len(pm), dtype=np.int32))  # first appearance
        uniq = np.flatnonzero(first_of < len(pm))
        first = first_of[uniq]
        slot = np.zeros(width, dtype=np.int32)  # key -> its index in uniq
        slot[uniq] = np.arange(len(uniq), dtype=np.int32)
        inv = slot[k]
        del first_of, slot
    else:
        k = pm.astype(np.int64)
        k -= lo
        k *= span
        k += fk
        uniq, inv = np.unique(k, return_inverse=True)
        inv = inv.reshape(-1)
        first = np.full(len(uniq), len(pm), dtype=np.int64)
        np.minimum.at(first, inv, np.arange(len(pm), dtype=np.int64))  # first appearance
    del k
    m = len(uniq)
    par_m = uniq // span + lo
    # sorted by parent already (the keys are); within a parent: by first appearance
    o = np.lexsort((first, par_m))
    rank = np.empty(m, dtype=np.int32)
    rank[o] = np.arange(m, dtype=np.int32)
    return (rank[inv] + np.int32(base)), par_m[o].astype(np.int32), first[o]


def _groups_last(ix: TreeIndex, mid: np.ndarray, total: int) -> np.ndarray:
    """Per level number 0..total: the merged node id (calls 1..K, then the groups)."""
    g_nums = np.array([int(mid[g.node]) for g in ix.groups], dtype=np.int64)
    is_group = np.zeros(total + 1, dtype=bool)
    is_group[g_nums] = True
    remap = np.zeros(total + 1, dtype=np.int32)
    calls = np.flatnonzero(~is_group[1:]) + 1
    remap[calls] = np.arange(1, len(calls) + 1, dtype=np.int32)
    remap[g_nums] = len(calls) + 1 + np.arange(len(g_nums), dtype=np.int32)
    return remap


def _assemble(data: TraceData, n: int, mid: np.ndarray, times: tuple[np.ndarray, np.ndarray], par: np.ndarray,
              first_node: np.ndarray, bounds: list[int], remap: np.ndarray, groups: list[tuple[Group, int]],
              source: TreeIndex | None) -> MergedIndex:
    """Sums, preorder positions and the `MergedIndex` arrays from the level numbering. `mid`,
    `times` (running, self) and `first_node` are over source node ids (calls 1..n, then the
    groups: `groups`, each with how many calls it holds)."""
    total = len(par) - 1
    src = mid[1:]  # every source node (calls and groups) has a merged number
    count = np.bincount(src, minlength=total + 1).astype(np.int64)
    run = np.zeros(total + 1, dtype=np.int64)
    np.add.at(run, src, times[0][1:])
    own = np.zeros(total + 1, dtype=np.int64)
    np.add.at(own, src, times[1][1:])
    how = data.col("how")[: n + 1]
    raised = np.bincount(mid[: n + 1][how == HOW_RAISE], minlength=total + 1)
    unfinished = np.bincount(mid[: n + 1][(how == HOW_OPEN) | (how == HOW_UNFINISHED)], minlength=total + 1)
    unfinished[0] = raised[0] = 0
    func = np.zeros(total + 1, dtype=np.int64)
    func[mid[1 : n + 1]] = data.col("func")[1 : n + 1]
    for g, calls in groups:  # a group's count: the calls under it
        count[mid[g.node]] = calls
    pos, size = _preorder(par, bounds)
    K = total - len(groups)
    # into node-id order (groups last)
    nid = remap
    order = np.empty(total, dtype=np.int32)
    order[pos[1:]] = nid[1:]
    pos_of = np.zeros(total + 1, dtype=np.int32)
    pos_of[nid] = pos
    pos_of[0] = -1
    parent = np.zeros(total + 1, dtype=np.int32)
    parent[nid[1:]] = nid[par[1:]]
    parent[0] = 0

    def by_id(a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        out[nid] = a
        return out

    lvl = np.zeros(total + 1, dtype=np.int32)
    for d in range(len(bounds) - 1):
        lvl[bounds[d] : bounds[d + 1]] = d
    depth_dtype = np.int16 if len(bounds) < 32000 else np.int32
    depth = np.empty(total, dtype=depth_dtype)
    depth[pos[1:]] = lvl[1:]
    end = np.empty(total, dtype=np.int32)
    end[pos[1:]] = (pos + size)[1:]
    levels = [pos[bounds[d] : bounds[d + 1]].astype(np.int32) for d in range(len(bounds) - 1)]
    first_call = by_id(first_node.astype(np.int64))
    first_call[0] = 0
    merged_groups = [replace(g, node=K + 1 + i) for i, (g, _) in enumerate(groups)]
    run_id = by_id(run)
    return MergedIndex(data=data, source=source, n_calls=n, call_run=times[0], count=by_id(count),
                       raised=by_id(raised.astype(np.int64)), unfinished=by_id(unfinished.astype(np.int64)),
                       func=by_id(func), first_call=first_call, node_of=nid[mid], n=K, groups=merged_groups,
                       order=order, pos_of=pos_of, depth=depth, end=end, parent=parent, dur=run_id, run=run_id,
                       self_time=by_id(own), levels=levels)


def _preorder(par: np.ndarray, bounds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Preorder position and subtree size of each merged node (level numbering, where each
    level's numbers run in preorder and siblings are adjacent)."""
    total = len(par) - 1
    size = np.ones(total + 1, dtype=np.int64)
    for d in range(len(bounds) - 2, 0, -1):
        lo, hi = bounds[d], bounds[d + 1]
        np.add.at(size, par[lo:hi], size[lo:hi])
    pos = np.zeros(total + 1, dtype=np.int64)
    for d in range(len(bounds) - 1):
        lo, hi = bounds[d], bounds[d + 1]
        s = size[lo:hi]
        p = par[lo:hi]
        excl = np.cumsum(s) - s  # sizes of the earlier nodes of the level
        new_run = np.ones(hi - lo, dtype=bool)
        new_run[1:] = p[1:] != p[:-1]
        starts = np.flatnonzero(new_run)
        run_of = np.cumsum(new_run) - 1
        off = excl - excl[starts][run_of]  # sizes of the earlier siblings
        pos[lo:hi] = off if d == 0 else pos[p] + 1 + off
    return pos, size


def same_nodes(old: TreeIndex, nodes: np.ndarray, new: TreeIndex) -> np.ndarray:
    """The node ids of `new` that hold the same calls as the call nodes `nodes` of `old`, either
    of them merged or not: a merged node stands for its first call, a call for its merged
    node. Nodes whose call is not in `new` are left out. (Groups are matched by their key.)"""
    calls = np.asarray(nodes, dtype=np.int64)
    calls = calls[(calls > 0) & (calls <= old.n)]
    if old.merged:
        calls = old.first_call[calls]  # type: ignore[attr-defined]
    calls = calls[(calls > 0) & (calls <= new.n_calls)]
    return new.node_of[calls].astype(np.int64) if new.merged else calls  # type: ignore[attr-defined]
