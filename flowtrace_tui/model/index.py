"""The preorder index: where every call sits in the displayed tree, computed with numpy.

Call-id order is start order, which is *not* preorder once generators or threads are involved:
a generator's children interleave with its consumer's, and threads interleave with each other.
So positions are computed from parent pointers, level by level, with no per-call Python:

1. nodes are sorted once by (depth, thread group) — a radix sort of an int16 key;
2. bottom-up: subtree sizes, by adding each level's sizes into its parents (`np.add.at`);
3. each node's offset under its parent (1 + the sizes of its earlier siblings) is one segmented
   cumulative sum over all levels at once — siblings are adjacent because, within one thread,
   calls that start in preorder have non-decreasing parent ids; only a level where generators'
   or tasks' children interleave with other calls is regrouped by parent first;
4. top-down: a node's position = its parent's position + its offset (one gather per level).

Two by-products make the explorer's per-key work independent of fan-out: the positions of each
depth level in increasing order (a node's children are one `searchsorted` slice of the next
level, so expanding a node with millions of children never scans its subtree), and every node's
heaviest child (two scatter passes), which turns `H` (hot path) into a walk of O(depth) steps.
Only `H` needs the heaviest children, so they are computed on first use, not by `build_index`:
drawing the tree never needs them, and a live session's grown indexes keep them up to date
once they exist (grow.py).

Roots are grouped under synthetic *group nodes* (ids n+1 .. n+G) by thread, and by asyncio task,
when the trace has more than one; with grouping off they are plain top-level rows. A session of
several processes has a group per process at the top, always (model/parts.py); thread groups
are then made within a process that has more than one thread, task groups within those.

A `TreeIndex` is an immutable snapshot of the first `n` calls. A live session grows the next one
from it off the UI thread (grow.py: work in proportion to the new calls; `growth` records how the
positions moved) and the view state is carried over (rows.py).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from .bufpool import BufferPool
from .loader import HOW_OPEN, TraceData, _depth_and_root
from .parts import process_order
from .timing import ElsewhereRuns, all_elsewhere_runs, running_time


@dataclass(frozen=True)
class GrowState:
    """The little that `grow.grow_index` keeps about an index besides its arrays, so that a
    live update touches only the new calls and the few old ones that can still change.

    `roots`: root call ids; `root_threads`/`root_tasks`: their distinct threads and (non-zero)
    tasks, which decide the groups; `open`: calls with no end yet (their duration moves with the
    session's end); `csum_ids`/`csum`: children's running-time total of every open call, every
    open call's parent and every group (the only nodes whose total can change without being
    one of the new calls' parents); `n_marks`: MARK rows seen; `cdepth_max`: deepest call;
    `cross_thread`: some call runs in another thread than its parent (with thread groups, that
    orders siblings by thread: such a trace is always rebuilt)."""

    roots: np.ndarray
    root_threads: frozenset
    root_tasks: frozenset
    open: np.ndarray
    csum_ids: np.ndarray
    csum: np.ndarray
    n_marks: int
    cdepth_max: int
    cross_thread: bool | None  # None: not looked at yet (grow.py does, once, when it matters)
    n_reexited: int = 0  # entries of `TraceData.reexited` seen
    elsewhere: ElsewhereRuns = field(default_factory=ElsewhereRuns.none)  # runs not in their parent


@dataclass(frozen=True)
class Moves:
    """Where the old positions went when an index grew: for carrying a view (expanded nodes,
    visible rows) to the new index without a whole-tree pass.

    Old positions before `first_moved` did not move; one at p >= first_moved moves by
    `shift[searchsorted(insert_at, p, "right")]` (calls were inserted before it). `new_tops`
    are the new positions of the new calls hung under old nodes, `attach_at` the old positions
    of those nodes (-1: the top level; each once: they are few, the new tops many) and
    `top_attachment` each top's index into `attach_at`."""

    first_moved: int
    insert_at: np.ndarray
    shift: np.ndarray
    new_tops: np.ndarray
    attach_at: np.ndarray
    top_attachment: np.ndarray

    @property
    def tops_at(self) -> np.ndarray:
        """The old position each new top hangs under (-1: the top level)."""
        return self.attach_at[self.top_attachment]

    def move(self, pos: np.ndarray) -> np.ndarray:
        """New positions of old positions (increasing in, increasing out): the shift is constant
        between two insertion points, so one add per piece."""
        out = pos.copy()
        at = np.searchsorted(pos, self.insert_at, side="left").tolist() + [len(pos)]
        for j in range(len(self.insert_at)):
            if at[j] < at[j + 1]:
                out[at[j] : at[j + 1]] += int(self.shift[j + 1])
        return out


@dataclass(frozen=True)
class Growth:
    """How a grown index extends the one it grew from (`grew_from`, a weak reference): how its
    positions moved; and where its arrays live (`pool`, `version`: see bufpool.py), for growing
    the next one."""

    grew_from: weakref.ref
    moves: Moves
    pool: BufferPool
    version: int


@dataclass(frozen=True)
class Group:
    """A synthetic node that holds the roots of one process, thread or asyncio task. A process
    group's `thread` is its first root's thread (it sorts with it), `process` its index in
    `TraceData.processes` (0 in a session of one process)."""

    node: int  # node id (> n)
    kind: str  # "process", "thread" or "task"
    thread: int
    task: int
    label: str
    process: int = 0

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.kind, self.thread, self.task)

    @property
    def title(self) -> str:
        """The row's text: a process's own title, `thread NAME` or `task NAME`."""
        return self.label if self.kind == "process" else f"{self.kind} {self.label}"


class TreeIndex:
    """Preorder arrays over nodes (calls 1..n plus group nodes n+1..n+G); `tasks_view`: built
    with `build_index(tasks=True)` (never grown: grow.py keeps the call tree's parents).

    Per position p (0..M-1): `order[p]` node id, `depth[p]`, `end[p]` (one past the subtree).
    Per node id: `pos_of`, `parent` (with roots pointing at their group), `dur` (lifetime),
    `run` (running time: lifetime minus suspensions, see timing.py; `dur` itself when nothing
    was suspended), `self_time` (own running time minus the children's), `heavy` (position of
    the first child with the largest `run`, -1 for a leaf; computed on first use).
    Per depth d: `level(d)`, that level's positions in increasing order (read-only; `levels`
    holds them, one array per depth, so that a live index can grow each level at its end), and
    `level_bounds[d]`: how many positions lie at depths < d.
    `grow_state`: what grow.py needs to extend this index (None: the next one is rebuilt);
    `growth`: how this index extends the one it grew from (None: built whole).
    """

    tasks_view = False
    merged = False  # a MergedIndex (merged.py): nodes are merged call paths, not calls

    def __init__(
        self,
        *,
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
        levels: list[np.ndarray],
        heavy: np.ndarray | None = None,
        run: np.ndarray | None = None,
        grow_state: GrowState | None = None,
        growth: Growth | None = None,
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
        self.run = dur if run is None else run
        self.self_time = self_time
        self.t_end = t_end
        self.grouped = grouped
        level_bounds = np.zeros(len(levels) + 1, dtype=np.int64)
        np.cumsum([len(lv) for lv in levels], out=level_bounds[1:])
        for lv in levels:
            lv.flags.writeable = False  # children() hands out views of them
        self.levels = levels
        self.level_bounds = level_bounds
        self._heavy = heavy
        self._heavy_lock = threading.Lock()
        self._group_by_node = {g.node: g for g in groups}
        self.grow_state = grow_state
        self.growth = growth

    @property
    def heavy(self) -> np.ndarray:
        """Per node id: position of the first child with the largest `run`, -1 for a leaf.

        Computed on first use (only `H` needs it; ~20 ms per million calls that a live rebuild
        would otherwise pay each time). The lock makes a second thread asking meanwhile wait for
        the one computation instead of doing it again."""
        heavy = self._heavy
        if heavy is None:
            with self._heavy_lock:
                heavy = self._heavy
                if heavy is None:
                    heavy = self._heavy = _heaviest_child(self.parent, self.run, self.pos_of)
        return heavy

    @property
    def heavy_if_known(self) -> np.ndarray | None:
        """`heavy` when it was computed already (or kept up to date by grow.py), else None."""
        return self._heavy

    def adopt_heavy(self, heavy: np.ndarray) -> None:
        """Take heaviest children computed elsewhere (grow.py keeps them up to date from the
        previous index's); only while the index is being made, before anyone reads it."""
        self._heavy = heavy

    @property
    def level_pos(self) -> np.ndarray:
        """Every level's positions, one after the other (a copy: for tests and tools)."""
        return np.concatenate(self.levels) if self.levels else _NO_POS

    @property
    def n_calls(self) -> int:
        """Calls of the session this index shows (1..n_calls): `n` here; a merged index's source's."""
        return self.n

    def node_funcs(self) -> np.ndarray:
        """Function id per node id 0..n (a merged index has its own)."""
        return self.data.col("func")[: self.n + 1]

    def pos_of_call(self, call: int) -> int:
        """Position of the row that shows call `call` (a merged index: its path's)."""
        return int(self.pos_of[call])

    def nodes_of_calls(self, by_call: np.ndarray) -> np.ndarray:
        """A mask over calls 0..n_calls as a mask over nodes 0..n (the same here)."""
        return by_call

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

    def level(self, depth: int) -> np.ndarray:
        """Positions at `depth`, increasing (a read-only view; empty past the deepest level)."""
        if depth >= len(self.levels):
            return _NO_POS
        return self.levels[depth]

    def children(self, pos: int) -> np.ndarray:
        """Positions of the direct children, in order (a read-only view).

        The children are exactly the next level's positions inside the subtree: two binary
        searches, whatever the subtree's size."""
        end = int(self.end[pos])
        if end == pos + 1:
            return _NO_POS
        lv = self.level(int(self.depth[pos]) + 1)
        return lv[find_sorted(lv, pos + 1) : find_sorted(lv, end)]

    def top_level(self) -> np.ndarray:
        return self.level(0)

    def heaviest_child(self, pos: int) -> int:
        """Position of the first child with the largest total time, -1 for a leaf."""
        return int(self.heavy[self.order[pos]])

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
        # the previous sibling is the last position before pos at the same depth
        lv = self.level(int(self.depth[pos]))
        i = find_sorted(lv, pos)
        prev = int(lv[i - 1]) if i else -1
        return prev if prev >= lo else -1

    def is_open(self, node: int) -> bool:
        """The call has no end yet (running, or the process died)."""
        return 0 < node <= self.n and int(self.data.col("how")[node]) == HOW_OPEN


_NO_POS = np.zeros(0, dtype=np.int32)
_NO_POS.flags.writeable = False


def find_sorted(a: np.ndarray, x: int) -> int:
    """`searchsorted(a, x)` (left) for an int array `a`. The needle is made `a`'s own type:
    a Python int next to an int32 array makes numpy convert the whole array first (~5 ms for
    3.5 M positions instead of microseconds)."""
    return int(np.searchsorted(a, a.dtype.type(x)))


def _first_index(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys in order of first appearance and that first index."""
    uniq, first = np.unique(keys, return_index=True)
    order = np.argsort(first, kind="stable")
    return uniq[order], first[order]


@dataclass
class _Grouping:
    """Which group node each root goes under (phase 1 of `build_index`)."""

    roots: np.ndarray  # ids of the calls without a parent
    root_threads: np.ndarray  # (int64) their threads
    root_tasks: np.ndarray  # (int64) their asyncio tasks (0: none)
    by_thread: bool  # roots grouped by thread (more than one thread has roots)
    by_task: bool  # roots in a task grouped by task (more than one task has roots)
    groups: list[Group]  # the group nodes, ids n+1 .. n+G
    first_root: list[int]  # each group's first root (a group sorts just before it)
    thread_node: dict[int, int]  # thread -> its group node
    task_node: dict[int, int]  # task -> its group node
    process_node: dict[int, int] = field(default_factory=dict)  # process -> its group node (several)

    @property
    def by_process(self) -> bool:
        return bool(self.process_node)

    def holder(self, thread: int, data: TraceData) -> int:
        """The group node a root of `thread` (in no task group) goes under; 0: none."""
        return self.thread_node.get(thread) or self.process_node.get(data.process_of_thread(thread), 0)


def build_index(data: TraceData, n: int | None = None, grouped: bool = True, tasks: bool = False) -> TreeIndex:
    """Index the first `n` calls of `data` (all loaded calls by default).

    `tasks`: the task view: each asyncio task's root coroutine becomes a root of its own (out
    of the call the event loop ran it under), so that grouping puts every task under a group
    of its own. Self times stay those of the call tree (a task's time is not added to the self
    time of the call it was taken from).

    Phases: groups, parents, depths, times, positions, preorder columns. Each works on
    whole-trace columns (40-80 MB each on a 10M-call trace) that die as soon as it returns or
    are reused in place: the order in which they live decides the peak RSS tui_bench checks.
    grow.py's phases are the same steps for an update."""
    if n is None:
        n = data.n
    parent_c = data.col("parent")[: n + 1]
    thread = data.col("thread")[: n + 1]
    cdepth = data.col("depth")[: n + 1]
    croot = data.col("root")[: n + 1]
    taken = np.zeros(0, dtype=np.int64)  # task roots taken out of their parent (task view)
    if tasks:
        parent_c, cdepth, croot, taken = _tasks_detached(data, n, parent_c)
    g = _grouping(data, n, parent_c, thread, grouped)
    parent, gdepth_of_root = _node_parents(data, n, g, parent_c)
    depth, dmax = _node_depths(n, g, cdepth, croot, gdepth_of_root, parent)
    dur, run, self_time, open_ids, csum_ids, csum_kept, elsewhere = _times(data, n, g.groups, parent, taken)

    ranked = _ranked_threads(data, g)
    size, pos, level_pos, level_bounds = _positions(parent, depth, thread, n, g.groups, g.first_root, ranked)
    # the preorder columns, each node column freed as soon as it is reordered
    order = np.empty(n + len(g.groups), dtype=np.int32)
    order[pos[1:]] = np.arange(1, n + len(g.groups) + 1, dtype=np.int32)
    size += pos  # now the subtree end of each node (in place: no new column)
    end_pre = size[order]
    del size
    depth_pre = depth[order]
    del depth
    grow = GrowState(g.roots.astype(np.int64), frozenset(np.unique(g.root_threads).tolist()),
                     frozenset(np.unique(g.root_tasks[g.root_tasks > 0]).tolist()), open_ids.astype(np.int64),
                     csum_ids.astype(np.int64), csum_kept, data.n_marks, dmax - 2 if n else 0, None,
                     len(data.reexited), elsewhere)
    b = level_bounds.tolist()
    levels = [level_pos[b[d] : b[d + 1]] for d in range(len(b) - 1)]  # views of one array
    ix = TreeIndex(data=data, n=n, groups=g.groups, order=order, pos_of=pos, depth=depth_pre, end=end_pre,
                   parent=parent, dur=dur, self_time=self_time, t_end=data.t_end, grouped=grouped, levels=levels,
                   run=run, grow_state=grow)
    ix.tasks_view = tasks
    return ix


def _grouping(data: TraceData, n: int, parent_c: np.ndarray, thread: np.ndarray, grouped: bool) -> _Grouping:
    """Phase 1: the roots, and a group node per thread / per task when there is more than one
    (task groups under their thread's group when both)."""
    task = data.col("task")[: n + 1]
    roots = np.flatnonzero(parent_c[1:] == 0) + 1
    rthr = thread[roots].astype(np.int64)
    rtask = task[roots].astype(np.int64)
    by_task = grouped and len(np.unique(rtask[rtask > 0])) > 1
    if data.multi_process:  # a group per process, then threads within each (see _process_groups)
        g = _Grouping(roots, rthr, rtask, False, by_task, [], [], {}, {})
        _process_groups(data, n, g, grouped)
    else:
        g = _Grouping(roots, rthr, rtask, grouped and len(np.unique(rthr)) > 1, by_task, [], [], {}, {})
    if g.by_thread and not g.by_process:
        uthr, first = _first_index(rthr)
        for thr, f in zip(uthr.tolist(), first.tolist()):
            node = n + 1 + len(g.groups)
            g.thread_node[thr] = node
            g.groups.append(Group(node, "thread", thr, 0, data.thread_name(thr)))
            g.first_root.append(int(roots[f]))
    if by_task:
        sel = rtask > 0
        utask, first = _first_index(rtask[sel])
        troots = roots[sel]
        for tk, f in zip(utask.tolist(), first.tolist()):
            node = n + 1 + len(g.groups)
            g.task_node[tk] = node
            thr = int(thread[troots[f]])
            g.groups.append(Group(node, "task", thr, tk, data.task_name(tk), data.process_of_thread(thr)))
            g.first_root.append(int(troots[f]))
    return g


def _node_parents(data: TraceData, n: int, g: _Grouping, parent_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase 2: the parent of every node id 0..M (roots re-pointed at their group, task groups
    at their thread's group, thread groups at their process's), and how many group levels sit
    above each root."""
    roots, rthr, rtask = g.roots, g.root_threads, g.root_tasks
    parent = np.zeros(n + len(g.groups) + 1, dtype=np.int32)
    parent[: n + 1] = parent_c
    gdepth_of_root = np.zeros(len(roots), dtype=np.int32)
    if g.by_thread or g.by_process:
        holder = {t: g.holder(t, data) for t in np.unique(rthr).tolist()}
        parent[roots] = np.array([holder[t] for t in rthr.tolist()], dtype=np.int32) if len(roots) else 0
        gdepth_of_root += 1
        if g.by_process:
            for grp in g.groups:
                if grp.kind == "thread":
                    parent[grp.node] = g.process_node[grp.process]
            gdepth_of_root += np.isin(rthr, list(g.thread_node))  # a thread group below the process
    if g.by_task:
        has = rtask > 0
        parent[roots[has]] = np.array([g.task_node[t] for t in rtask[has].tolist()], dtype=np.int32)
        gdepth_of_root[has] += 1
        for grp in g.groups:
            if grp.kind == "task" and (g.by_thread or g.by_process):
                parent[grp.node] = g.holder(grp.thread, data)
    return parent, gdepth_of_root


def _node_depths(n: int, g: _Grouping, cdepth: np.ndarray, croot: np.ndarray,
                 gdepth_of_root: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, int]:
    """Phase 3: the depth of every node id (a call's depth in its thread plus the group levels
    above its root) and the deepest call depth + 2. int16 when the tree is shallow enough (half
    the memory, and a stable argsort of int16 is a radix sort); int32 for pathological recursion."""
    dmax = int(cdepth.max()) + 2 if n else 2
    dtype = np.int16 if dmax < 32000 else np.int32
    depth = np.zeros(n + len(g.groups) + 1, dtype=dtype)
    if g.by_task or g.by_process:
        extra = np.zeros(n + 1, dtype=dtype)
        extra[g.roots] = gdepth_of_root
        np.add(cdepth, extra[croot], out=depth[: n + 1], casting="unsafe")
        del extra
    else:  # no group, or one thread group per root: every call is one level deeper
        np.add(cdepth, 1 if g.by_thread else 0, out=depth[: n + 1], casting="unsafe")
    depth[0] = 0
    for grp in g.groups:  # (a group's parent group comes before it in `groups`)
        depth[grp.node] = depth[parent[grp.node]] + 1 if parent[grp.node] else 0
    return depth, dmax


def _times(data: TraceData, n: int, groups: list[Group], parent: np.ndarray,
           taken: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                       ElsewhereRuns]:
    """Phase 4: duration, running time and self time of every node id; and for `grow_index` the
    open calls and the children's totals a later update may have to adjust (a few nodes)."""
    t0 = data.col("t0")[: n + 1]
    t1 = data.col("t1")[: n + 1]
    how = data.col("how")[: n + 1]
    M = n + len(groups)
    # durations: an open call lasts until the end of what we know (fixed up by index: few)
    dur = np.zeros(M + 1, dtype=np.int64)
    np.subtract(t1, t0, out=dur[: n + 1])
    open_ = np.flatnonzero(how == HOW_OPEN)
    dur[open_] = data.t_end - t0[open_]
    del open_
    np.maximum(dur, 0, out=dur)
    dur[0] = 0
    # children's total per parent: an integer scatter-add (exact, and ~10x faster than a
    # float-weighted bincount)
    run = running_time(data, n, t0, dur)  # generators/coroutines: without their suspensions
    childsum = np.zeros(M + 1, dtype=np.int64)
    np.add.at(childsum, parent[1 : n + 1], run[1 : n + 1])
    if len(taken):  # the task view: a task root's time is still its call-tree parent's child time
        np.add.at(childsum, data.col("parent")[taken].astype(np.int64), run[taken])
    elsewhere = all_elsewhere_runs(data, n, data.col("parent"), lambda ids: t0[ids] + dur[ids])
    move_elsewhere(childsum, run, data.col("parent"), elsewhere)
    inside = _inside_a_call(n, M, parent, taken, run)
    # task groups first (their children are roots), then thread groups (roots + task groups),
    # then processes: each group's total counts in the group holding it, but for the time of
    # task roots that a call of the thread holds already
    for kind in ("task", "thread", "process"):
        for grp in groups:
            if grp.kind == kind:
                dur[grp.node] = run[grp.node] = childsum[grp.node]
                if parent[grp.node] > n:  # under another group
                    childsum[parent[grp.node]] += childsum[grp.node] - inside[grp.node]
    open_ids = np.flatnonzero(how == HOW_OPEN)
    open_ids = open_ids[open_ids > 0]
    keep = np.concatenate((open_ids, parent[open_ids], np.arange(n + 1, M + 1)))
    csum_ids = np.unique(keep[keep > 0])
    csum_kept = childsum[csum_ids].copy()
    self_time = np.subtract(run, childsum, out=childsum)  # in place: one 8-byte column less
    del childsum
    np.maximum(self_time, 0, out=self_time)
    self_time[0] = 0
    for grp in groups:
        self_time[grp.node] = 0
    return dur, run, self_time, open_ids, csum_ids, csum_kept, elsewhere


def move_elsewhere(childsum: np.ndarray, run: np.ndarray, cparent: np.ndarray, elsewhere: ElsewhereRuns) -> None:
    """Move the runs that ran elsewhere than in their call's parent (timing.py) from the
    parents' children's totals to the calls they ran in (grow.py's `_elsewhere_moves` does the
    same for the rows an update replaces)."""
    for ids, ns in elsewhere.moves(run, cparent):
        np.add.at(childsum, ids, ns)


def _inside_a_call(n: int, M: int, parent: np.ndarray, taken: np.ndarray,
                   run: np.ndarray) -> np.ndarray:
    """Per node id: the running time of the task roots under it (a task group) that the task
    view took out of a call (`_tasks_detached`). That time stays its call-tree parent's child
    time (self times are the call tree's), so it is inside a root of the thread already and its
    task's group must not add it to the thread's total again."""
    inside = np.zeros(M + 1, dtype=np.int64)
    if len(taken):
        np.add.at(inside, parent[taken].astype(np.int64), run[taken])
    return inside


def _process_groups(data: TraceData, n: int, g: _Grouping, grouped: bool) -> None:
    """A session of several processes: a group per process with calls, in tree order, then
    (with `grouped`) a group per thread of each process whose roots run in several threads."""
    uthr, first = _first_index(g.root_threads)  # root threads in order of their first root
    threads_of: dict[int, list[tuple[int, int]]] = {}
    for thr, f in zip(uthr.tolist(), first.tolist()):
        threads_of.setdefault(data.process_of_thread(thr), []).append((thr, int(g.roots[f])))
    order = [p for p, _depth in process_order(data.processes) if p in threads_of]
    for p in order:
        thr, root = threads_of[p][0]
        g.process_node[p] = n + 1 + len(g.groups)
        g.groups.append(Group(g.process_node[p], "process", thr, 0, data.processes[p].title(), p))
        g.first_root.append(root)
    for p in order:
        if grouped and len(threads_of[p]) > 1:
            for thr, root in threads_of[p]:
                g.thread_node[thr] = n + 1 + len(g.groups)
                g.groups.append(Group(g.thread_node[thr], "thread", thr, 0, data.thread_name(thr), p))
                g.first_root.append(root)
    g.by_thread = bool(g.thread_node)


def _ranked_threads(data: TraceData, g: _Grouping) -> list[int]:
    """The threads whose calls `_positions` keeps apart in each level, in the order of their
    groups: the thread groups' (one process); with processes, every root thread, process by
    process in the order of their groups (a process's threads stay together, as the children
    of its group must), each process's in the order of their first roots."""
    if not g.by_process:
        return [grp.thread for grp in g.groups if grp.kind == "thread"] if g.by_thread else []
    rank_of = {grp.process: i for i, grp in enumerate(g.groups) if grp.kind == "process"}
    uthr, first = _first_index(g.root_threads)
    keyed = sorted((rank_of.get(data.process_of_thread(thr), len(rank_of)), f, thr)
                   for thr, f in zip(uthr.tolist(), first.tolist()))
    return [thr for _, _, thr in keyed]


def _tasks_detached(data: TraceData, n: int, parent_c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parents, depths and roots of calls 1..n with every task's root coroutine made a root
    (see `build_index`'s task view), and the ids of the task roots that had a parent."""
    roots = np.array(sorted({t.root for t in data.tasks.values() if t.root and 0 < t.root <= n}), dtype=np.int64)
    taken = roots[parent_c[roots] > 0] if len(roots) else roots
    if not len(taken):
        return parent_c, data.col("depth")[: n + 1], data.col("root")[: n + 1], taken
    parent = parent_c.copy()
    parent[taken] = 0
    depth = np.zeros(n + 1, dtype=np.int32)
    root = np.zeros(n + 1, dtype=np.uint32)
    d, r = _depth_and_root(parent[1:], 1, depth, root)
    depth[1:] = d
    root[1:] = r
    return parent, depth, root, taken


_CHUNK = 1 << 20  # nodes per pass of `_heaviest_child`: bounds its temporaries to a few MB


def _heaviest_child(parent: np.ndarray, dur: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Per node id: position of its first child (in preorder) with the largest `dur`, -1 if none.

    The same choice as an argmax over the children in order, for every node at once: one
    scatter-max of the children's durations into their parents, then a scatter-min of the
    positions of the children that reach it (ties: the earliest wins). Done in chunks so that
    the int64 gathers never cost a full column.
    """
    M = len(parent) - 1
    top = np.zeros(M + 1, dtype=np.int64)
    heavy = np.full(M + 1, M, dtype=np.int32)  # M: no child (no position is M)
    for a in range(1, M + 1, _CHUNK):
        b = min(M + 1, a + _CHUNK)
        np.maximum.at(top, parent[a:b], dur[a:b])
    for a in range(1, M + 1, _CHUNK):
        b = min(M + 1, a + _CHUNK)
        par = parent[a:b]
        best = np.flatnonzero(dur[a:b] == top[par])
        np.minimum.at(heavy, par[best], pos[a:b][best])
    del top
    heavy[heavy == M] = -1
    return heavy


def _positions(parent: np.ndarray, depth: np.ndarray, thread: np.ndarray, n: int, groups: list[Group],
               first_root: list[int], ranked: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Subtree size and preorder position of every node (ids 0..M), level by level; and the
    positions of each level in increasing order with the level bounds (see `TreeIndex`).

    Nodes are sorted once by (depth, thread group), stable, so that within one level the nodes
    of each thread come in id order. Within one thread, calls that start in preorder (everything
    but generators/coroutines resumed later) then have their parents in increasing position
    order, so most levels need no sort of their own: only a level where a generator's or a
    task's children interleave with other calls is regrouped by parent (a stable sort).
    """
    # Longer than ~80 lines, on purpose: the four steps of the module docstring share a
    # dozen arrays over all nodes, sorted once; as functions they would pass them all along.
    G = len(groups)
    M = n + G
    # enumerate nodes in sibling order: calls by id, each group just before its first root.
    # Thread groups alone make up level 0, already in that order (node ids follow first roots),
    # so only task groups need to be moved among the calls.
    if any(g.kind == "task" for g in groups):
        enum = np.arange(1, n + 1, dtype=np.int32)
        at = np.searchsorted(enum, np.array(first_root, dtype=np.int32))
        enum = np.insert(enum, at, np.arange(n + 1, M + 1, dtype=np.int32))
    else:
        enum = None  # ids 1..M
    levels = int(depth[1:].max()) + 1 if M else 1
    blocks = len(ranked)  # the threads kept apart (see _ranked_threads)
    stride = 1  # key = depth * stride (+ a thread rank below stride)
    if M and blocks > 1 and levels * blocks < 32000:
        # key = depth * blocks + the thread's rank: one radix sort, threads unmixed
        rank = np.zeros(max(int(thread.max()) if n else 0, max(ranked)) + 1, dtype=np.int16)
        for i, thr in enumerate(ranked):
            rank[thr] = i
        key = np.empty(M + 1, dtype=np.int16)
        np.multiply(depth, blocks, out=key, casting="unsafe")
        key[1 : n + 1] += rank[thread[1 : n + 1]]
        for g in groups:  # a task group sits in its thread's block
            key[g.node] += rank[g.thread]
        del rank
        stride = blocks
    else:
        key = depth
    dkey = key[1:] if enum is None else key[enum]
    del key
    k = np.argsort(dkey, kind="stable")  # stable: a radix sort for int16 keys
    if enum is None:
        by_level = k.astype(np.int32)
        by_level += 1
    else:
        by_level = enum[k]
    skey = dkey[k]
    del enum, dkey, k
    # level bounds: where each depth's keys start in the sorted keys (a few binary searches,
    # not a bincount pass over every node)
    bounds = np.searchsorted(skey, (np.arange(levels + 1) * stride).astype(skey.dtype)).tolist()
    par = parent[by_level]  # the parent of each node, in level order

    # 1. bottom-up subtree sizes
    size = np.ones(M + 1, dtype=np.int32)
    for lv in range(levels - 1, 0, -1):
        lo, hi = bounds[lv], bounds[lv + 1]
        np.add.at(size, par[lo:hi], size[by_level[lo:hi]])

    # 2. siblings must be adjacent within their level. Children of one thread's calls that
    # start in preorder come with non-decreasing parent ids; a level where a generator's or a
    # task's children interleave with other calls is regrouped by parent (stable: siblings
    # keep their order). Thread blocks may restart the parent ids: that is no interleaving.
    down = np.flatnonzero(par[1:] < par[:-1]) + 1
    down = down[skey[down] == skey[down - 1]]  # not a new level or thread block
    del skey
    if len(down):
        lv_of = np.searchsorted(bounds, down, side="right") - 1
        for lv in np.unique(lv_of).tolist():
            lo, hi = bounds[lv], bounds[lv + 1]
            seg = par[lo:hi]
            # only a real interleave needs the sort: a parent seen again after another one
            k = np.argsort(seg, kind="stable")
            if (np.diff(seg[k]) != 0).sum() != (np.diff(seg) != 0).sum():
                by_level[lo:hi] = by_level[lo:hi][k]
                par[lo:hi] = seg[k]
    del down

    # 3. offset of each node under its parent: 1 + the sizes of its earlier siblings
    # (an exclusive cumulative sum restarted at each run of siblings)
    # Done without a per-element repeat: w[i] = s[i-1], minus the previous run's total at a
    # run start, so that cumsum(w) restarts at 0 there. Partial sums stay within 0..M: int32.
    s = size[by_level]
    new_run = np.empty(M, dtype=bool)
    new_run[:1] = True  # (a session without calls has no node: M = 0)
    np.not_equal(par[1:], par[:-1], out=new_run[1:])
    new_run[bounds[1:-1]] = True  # a level starts a run even under the same parent id
    starts = np.flatnonzero(new_run)
    del new_run
    # each run's total but the last's (not needed): differences of the running sum of `s` at
    # the run ends -- a third of np.add.reduceat's time over ~M/3 runs. The running sum over all
    # levels may pass 2**31 in a deep tree: int32 then wraps around, and the differences (true
    # values within 0..M) still come out exact, modulo 2**32.
    csum = np.cumsum(s, dtype=np.int32)
    totals = np.diff(csum[starts[1:] - 1], prepend=np.int32(0))
    del csum
    off = np.empty(M, dtype=np.int32)
    if M:
        off[0] = 0
        off[1:] = s[:-1]
    del s
    off[starts[1:]] -= totals
    del starts, totals
    np.cumsum(off, out=off)
    off += 1

    # 4. top-down positions: a node's position = its parent's + its offset (top level: - 1)
    pos = np.full(M + 1, -1, dtype=np.int32)
    for lv in range(levels):
        lo, hi = bounds[lv], bounds[lv + 1]
        if lv == 0:
            pos[by_level[lo:hi]] = off[lo:hi] - 1
        else:
            pos[by_level[lo:hi]] = pos[par[lo:hi]] + off[lo:hi]
    del par

    # 5. each level's positions, increasing: the level-order node list mapped to positions (into
    # `off`, which is free now: no new column). Levels are usually in position order already
    # (same thread, start order); a level that a regrouping or a thread mix left unordered is
    # sorted on its own.
    level_pos = np.take(pos, by_level, out=off)
    del by_level
    if M > 1:
        down = np.flatnonzero(level_pos[1:] < level_pos[:-1]) + 1
        down = down[~np.isin(down, bounds)]  # a new level starts low again: not disorder
        if len(down):
            for lv in np.unique(np.searchsorted(bounds, down, side="right") - 1).tolist():
                level_pos[bounds[lv] : bounds[lv + 1]].sort()
        del down
    return size, pos, level_pos, np.array(bounds, dtype=np.int64)
