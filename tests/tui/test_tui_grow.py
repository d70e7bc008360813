"""The live index grows with the new calls (model/grow.py) and is exactly what a full
`build_index` makes of the same data, at every step of a session read chunk by chunk; the view
carried over to it (expanded nodes, visible rows) is exactly the one a whole rebuild gives."""

from __future__ import annotations

import random

import numpy as np
import pytest

from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.model import TraceData, TreeRows, build_index
from flowtrace_tui.model.filters import Filters
from flowtrace_tui.model import grow as grow_mod
from flowtrace_tui.model import sortedsets
from flowtrace_tui.model.grow import grow_index

from trace_builder import TraceBuilder, random_trace

FIELDS = ("order", "pos_of", "depth", "end", "parent", "dur", "run", "self_time", "level_pos", "level_bounds")


def assert_same(got, want) -> None:
    assert (got.n, got.size, got.t_end, got.grouped) == (want.n, want.size, want.t_end, want.grouped)
    for f in FIELDS:
        a, b = getattr(got, f), getattr(want, f)
        assert a.dtype == b.dtype, f
        assert np.array_equal(a, b), f
    assert [(g.node, g.kind, g.thread, g.task, g.label) for g in got.groups] == \
        [(g.node, g.kind, g.thread, g.task, g.label) for g in want.groups]
    if got.heavy_if_known is not None:  # kept up to date by grow (the index it grew from had them)
        assert got.heavy_if_known.dtype == want.heavy.dtype
        assert np.array_equal(got.heavy_if_known, want.heavy), "heavy"


def live_trace(seed: int) -> TraceBuilder:
    """Threads, asyncio tasks, generators (suspended past their caller's return, resumed in
    another thread, thrown into), calls already running when recording started (partial), a
    writer that repeats an EXIT, roots arriving in early threads after later ones."""
    rng = random.Random(seed)
    b = TraceBuilder()
    if rng.random() < 0.4:
        outer = b.enter("partial_outer", flag=1)
        b.enter("partial_inner", parent=outer, flag=1)
    gens: list[int] = []
    ended: list[int] = []
    for _ in range(rng.randint(30, 160)):
        thread = rng.choice((1, 1, 1, 2, 3, 4))
        stack = b.stacks.get(thread, [])
        r = rng.random()
        if r < 0.45 or not stack:
            kind = "generator" if rng.random() < 0.2 else "function"
            task = rng.choice((0, 0, 1, 2, 3)) if thread == 1 else 0
            if task:
                b.task(task, f"Task-{task}")
            cid = b.enter(rng.choice("abcdefg"), thread=thread, task=task, kind=kind, args=f"v={rng.randint(0, 9)}")
            if kind == "generator":
                b.suspend(cid)
                gens.append(cid)
        elif r < 0.75:
            cid = stack[-1]
            b.leave(cid, "r")
            ended.append(cid)
        elif r < 0.85 and gens:
            g = rng.choice(gens)
            if g not in b.stacks[b.thread_of[g]]:
                if rng.random() < 0.3:  # quiet runs folded into one row
                    span = rng.randint(1, 60)
                    b.fold(g, rng.randint(1, 4), rng.randint(0, span), span, by=rng.choice((0, g - 1)))
                # resumed by nobody recorded, or by the call running there (its runs then count
                # in that call, not in its parent: timing.py)
                by = rng.choice((0, stack[-1])) if stack and b.thread_of[stack[-1]] == b.thread_of[g] else 0
                if rng.random() < 0.3:
                    b.mark(g, F.MARK_THROW, other=by)
                    b.stacks[b.thread_of[g]].append(g)
                else:
                    b.resume(g, by=by)
                if rng.random() < 0.5:
                    b.leave(g)
                    gens.remove(g)
        elif r < 0.9 and gens:
            # a generator's child made in another thread (it was resumed there)
            g = rng.choice(gens)
            other = rng.choice((2, 3))
            b.leave(b.enter("x", parent=g, thread=other), "r")
        elif r < 0.93 and ended:
            b.leave(rng.choice(ended), "again")  # a repeated EXIT row
        if rng.random() < 0.15:
            b.flush()
    return b


def single_thread_trace(seed: int) -> TraceBuilder:
    """One thread, plain calls: the case of a busy program (grows only at the end)."""
    rng = random.Random(seed)
    b = TraceBuilder()
    b.enter("<module>")
    for _ in range(rng.randint(50, 200)):
        stack = b.stacks[1]
        if rng.random() < 0.55 or len(stack) == 1:
            b.enter(rng.choice("abc"))
        else:
            b.leave(stack[-1], "r")
        if rng.random() < 0.1:
            b.flush()
    return b


def grow_steps(data: bytes, rng: random.Random, grouped: bool):
    """Feed the chunks a few at a time; yield (grown index, full index, previous grown index)."""
    chunks = ChunkReader.from_bytes(data).poll()
    d = TraceData("t")
    ix = None
    i = 0
    while i < len(chunks):
        j = i + rng.randint(1, 4)
        d.feed(chunks[i:j])
        i = j
        if d.n == 0:
            continue
        prev = ix
        ix = build_index(d, grouped=grouped) if ix is None else grow_index(ix, d)
        if rng.random() < 0.5:
            ix.heavy  # noqa: B018  (then the next grown index keeps them up to date)
        yield ix, build_index(d, grouped=grouped), prev


def random_view(ix, rng: random.Random) -> TreeRows:
    rows = TreeRows(ix)
    rows.initial_expand()
    for _ in range(rng.randint(0, 12)):
        if len(rows) == 0:
            break
        p = rows.pos(rng.randrange(len(rows)))
        op = rng.random()
        if op < 0.6:
            rows.toggle(p)
        elif op < 0.7:
            rows.expand_subtree(p, force=True)
        elif op < 0.8:
            rows.expand_to_depth(rng.randint(0, 4))
        elif op < 0.85:
            rows.collapse_all()
    return rows


@pytest.mark.parametrize("maker", [random_trace, live_trace])
@pytest.mark.parametrize("seed", range(40))
def test_grown_index_equals_full_build_at_every_step(maker, seed):
    rng = random.Random(seed)
    data = maker(seed).data(finish=rng.random() < 0.5)
    grouped = rng.random() < 0.7
    view = None
    for ix, full, prev in grow_steps(data, rng, grouped):
        assert_same(ix, full)
        # the view carried over: the same as carrying it by a whole rebuild
        if view is not None and view.index is prev:
            fast = view.carry_to(ix)
            slow = view.carry_full(ix)
            assert np.array_equal(fast.expanded, slow.expanded)
            assert fast.rows.tolist() == slow.rows.tolist()
            assert (fast._rows is None) == (slow._rows is None)
        view = random_view(ix, rng) if rng.random() < 0.5 else (fast if view is not None and view.index is prev else TreeRows(ix))


@pytest.mark.parametrize("seed", range(10))
def test_single_thread_grows_at_the_end_only(seed):
    """A one-thread session never moves an old position: each update is an append."""
    rng = random.Random(seed)
    grown = 0
    for ix, full, prev in grow_steps(single_thread_trace(seed).data(finish=False), rng, True):
        assert_same(ix, full)
        if prev is not None:
            assert ix.growth is not None and ix.growth.grew_from() is prev
            assert ix.growth.moves.first_moved == prev.size  # nothing before the old end moved
            assert np.array_equal(ix.order[: prev.size], prev.order)
            grown += 1
    assert grown > 0


def test_threads_grow_without_rebuild():
    """Calls landing in an earlier thread's group move the later groups' positions, and the
    index still grows (no rebuild): one thread group's growth is an insertion."""
    b = TraceBuilder()
    a = b.enter("main", thread=1)
    w = b.enter("worker", thread=2)
    b.leave(b.enter("w1", thread=2))
    b.flush()
    cut = len(b.out.getvalue())
    b.leave(b.enter("m1", thread=1))
    b.leave(b.enter("w2", thread=2))
    b.leave(w)
    b.leave(a)
    chunks = ChunkReader.from_bytes(b.data(finish=True)).poll()
    d = TraceData("t")
    d.feed([c for c in chunks if c.offset < cut])
    ix = build_index(d)
    rows = TreeRows(ix)
    rows.initial_expand()
    rows.expand(int(ix.pos_of[w]))
    d.feed([c for c in chunks if c.offset >= cut])
    grown = grow_index(ix, d)
    assert grown.growth is not None and grown.growth.moves.first_moved < ix.size
    assert_same(grown, build_index(d))
    carried = rows.carry_to(grown)
    assert carried.rows.tolist() == rows.carry_full(grown).rows.tolist()
    labels = [grown.group(node).label if grown.is_group(node) else d.func_name(int(d.col("func")[node]))
              for node in (grown.node(p) for p in carried.rows.tolist())]
    # main had no children when it was drawn (nothing to expand): m1 stays folded under it
    assert labels == ["MainThread", "main", "Thread-2", "worker", "w1", "w2"]


def test_filters_carry_by_a_whole_pass():
    b = single_thread_trace(3)
    rng = random.Random(3)
    view = None
    for ix, full, prev in grow_steps(b.data(finish=False), rng, True):
        if view is not None:
            got = view.carry_to(ix)
            want = view.carry_full(ix)
            assert got.rows.tolist() == want.rows.tolist()
        view = TreeRows(ix, Filters(min_dur_ns=25))
        view.expand_to_depth(3)


def snapshot_arrays(ix) -> dict:
    out = {f: getattr(ix, f).copy() for f in FIELDS}
    if ix.heavy_if_known is not None:
        out["heavy_if_known"] = ix.heavy_if_known.copy()
    return out


@pytest.mark.parametrize("small", [False, True])
@pytest.mark.parametrize("seed", range(30))
def test_buffers_are_reused_but_never_under_a_living_index(seed, small, monkeypatch):
    """Grown indexes share and recycle memory (bufpool.BufferPool): an index still referenced never
    changes, whatever is grown after it -- also from an older index again (a branch), or after
    indexes were dropped and their buffers reused. `small`: the limits that matter on big traces
    (moved positions handled in chunks, many moved calls logged as "everything") made tiny."""
    if small:
        monkeypatch.setattr(grow_mod, "_SHIFT_CHUNK", 3)
        monkeypatch.setattr(grow_mod, "_SPARSE_MAX", 2)
    rng = random.Random(seed)
    maker = (live_trace, single_thread_trace, random_trace)[seed % 3]
    chunks = ChunkReader.from_bytes(maker(seed).data(finish=False)).poll()
    d = TraceData("t")
    d.feed(chunks[:1])
    while d.n == 0:
        d.feed(chunks[1:2])
        chunks = chunks[1:]
    ix = build_index(d)
    kept = [(ix, snapshot_arrays(ix))]
    i = 1
    while i < len(chunks):
        j = i + rng.randint(1, 3)
        d.feed(chunks[i:j])
        i = j
        base = ix if rng.random() < 0.8 or len(kept) < 2 else rng.choice(kept)[0]
        if rng.random() < 0.5:
            base.heavy  # noqa: B018
        ix = grow_index(base, d)
        assert_same(ix, build_index(d))
        kept.append((ix, snapshot_arrays(ix)))
        if len(kept) > 3 and rng.random() < 0.6:
            kept.pop(rng.randrange(len(kept) - 1))  # drop one: its buffers may be reused
        for old, arrays in kept:
            for f, a in arrays.items():
                assert np.array_equal(getattr(old, f), a), f


def test_steady_growth_reuses_two_buffers():
    """One index on screen, the next being made: updates alternate between two buffers per
    array, each brought up to date by copying the last update's changes only."""
    b = TraceBuilder()
    b.enter("<module>")
    d = TraceData("t")
    reader_pos = 0
    ix = None
    for step in range(12):
        for _ in range(50):
            b.leave(b.enter("work"), "r")
        b.flush()
        data = b.out.getvalue()
        chunks = ChunkReader.from_bytes(data).poll()
        d.feed(chunks[reader_pos:])
        reader_pos = len(chunks)
        ix = build_index(d) if ix is None else grow_index(ix, d)  # the previous one is dropped
    store = ix.growth.pool
    assert all(len(pool) <= 2 for pool in store.pools.values())
    assert ix.order.base is not None and ix.order.base is store.pools["order"][0].buf or \
        ix.order.base is store.pools["order"][1].buf
    assert_same(ix, build_index(d))


def _shaped(rng: random.Random, n: int, hi: int, shape: str) -> np.ndarray:
    a = np.array([rng.randint(0, hi) for _ in range(n)], dtype=np.int64)
    if shape == "up":
        a.sort()
    elif shape == "down":
        a = np.sort(a)[::-1].copy()
    elif shape == "same":
        a[:] = hi // 2
    return a


@pytest.mark.parametrize("seed", range(40))
def test_set_helpers_equal_numpy(seed):
    """grow's shortcuts for sets of ids (in order already: no sort) give exactly np.unique,
    np.union1d and a scatter-add by key, whatever the order of their input."""
    rng = random.Random(seed)
    shapes = ("up", "down", "same", "any")
    parts = [_shaped(rng, rng.randint(0, 9), rng.choice((3, 50)), rng.choice(shapes)) for _ in range(rng.randint(1, 3))]
    got = sortedsets.unique(*parts)
    assert got.dtype == np.int64
    assert np.array_equal(got, np.unique(np.concatenate(parts)))
    a = np.unique(_shaped(rng, rng.randint(0, 9), 40, "any"))
    b = np.unique(_shaped(rng, rng.randint(0, 9), 40, "any"))
    if rng.random() < 0.3:
        b = b + (int(a.max()) + 1 if len(a) else 0)  # all after a
    assert np.array_equal(sortedsets.union(a, b), np.union1d(a, b))
    assert np.array_equal(sortedsets.union(b, a), np.union1d(a, b))
    kv = [(k, np.array([rng.randint(-5, 9) for _ in k], dtype=np.int64)) for k in parts]
    ids, sums = sortedsets.sum_by_key(*kv)
    keys = np.concatenate([k for k, _ in kv])
    want_ids, inv = np.unique(keys, return_inverse=True)
    want = np.zeros(len(want_ids), dtype=np.int64)
    np.add.at(want, inv, np.concatenate([v for _, v in kv]))
    assert np.array_equal(ids, want_ids) and np.array_equal(sums, want)


@pytest.mark.parametrize("maker", [random_trace, live_trace, single_thread_trace])
@pytest.mark.parametrize("seed", range(8))
def test_heaviest_of_many_nodes_at_once(maker, seed):
    """grow.heaviest_children_of (all children of many nodes at once) = the whole-index heavy."""
    rng = random.Random(seed)
    ix = build_index(_data_of(maker(seed).data(finish=rng.random() < 0.5)), grouped=rng.random() < 0.7)
    nodes = np.array([0] + rng.sample(range(1, ix.size + 1), min(ix.size, rng.randint(1, 40))), dtype=np.int64)
    assert np.array_equal(grow_mod.heaviest_children_of(ix, nodes), ix.heavy[nodes].astype(np.int64))


def _data_of(data: bytes) -> TraceData:
    d = TraceData("t")
    d.feed(ChunkReader.from_bytes(data).poll())
    return d


@pytest.mark.parametrize("seed", range(60))
def test_local_preorder_equals_the_general_layout(seed):
    """grow.local_preorder (new calls already in preorder: sizes only) gives exactly what
    _depth_and_root and _positions give, and declines whenever the id order is not a preorder
    (a generator's child arriving after other calls)."""
    from flowtrace_tui.model.index import _positions
    from flowtrace_tui.model.loader import _depth_and_root

    rng = random.Random(seed)
    k = rng.randint(1, 40)
    lp = np.zeros(k, dtype=np.int64)
    stack: list[int] = []
    for i in range(1, k + 1):  # a stack walk: preorder unless a jump below is made
        while stack and rng.random() < 0.35:
            stack.pop()
        if stack and rng.random() < 0.15 * (seed % 3):
            lp[i - 1] = rng.randint(1, i - 1)  # any earlier call: maybe out of preorder
        else:
            lp[i - 1] = stack[-1] if stack else 0
        stack.append(i)
    base = np.array([rng.randint(0, 5) for _ in range(k)], dtype=np.int32)
    cd = np.zeros(k, dtype=np.int32)
    for i in range(k):
        cd[i] = cd[lp[i] - 1] + 1 if lp[i] else base[i]
    dl, top = _depth_and_root(lp.astype(np.uint32), 1, np.zeros(1, np.int32), np.zeros(1, np.uint32))
    lpar = np.concatenate(([0], lp)).astype(np.int32)
    ldepth = np.concatenate(([0], dl)).astype(np.int16)
    size, pos, _, _ = _positions(lpar, ldepth, np.zeros(k + 1, np.uint32), k, [], [], [])
    got = grow_mod.local_preorder(lp, cd)
    if got is None:
        assert not np.array_equal(pos[1:], np.arange(k))
    else:
        assert np.array_equal(pos[1:], np.arange(k))
        for a, b in zip(got, (size, pos, dl, top)):
            assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("seed", range(12))
def test_carried_rows_share_a_buffer_but_never_change_an_older_view(seed):
    """Views carried along a live session append their new rows in one buffer (rows._append_rows):
    an older view's rows stay what they were, also when it is carried again (a branch) or
    toggled; every carried view equals the whole-pass carry."""
    rng = random.Random(seed)
    maker = single_thread_trace if seed % 2 else live_trace
    kept = []
    view = None
    for ix, full, prev in grow_steps(maker(seed).data(finish=False), rng, True):
        base = view if rng.random() < 0.75 or not kept else rng.choice(kept)[0]
        if base is None or base.index is not prev:
            view = TreeRows(ix)
            view.initial_expand()
        else:
            if rng.random() < 0.4:  # a branch first: the same view carried to another grown index
                other = grow_index(prev, ix.data, rng.randint(prev.n, ix.n))
                if other.growth is not None:
                    branch = base.carry_to(other)
                    assert branch.rows.tolist() == base.carry_full(other).rows.tolist()
                    kept.append((branch, branch.rows.copy()))
            view = base.carry_to(ix)
            assert view.rows.tolist() == base.carry_full(ix).rows.tolist()
        if rng.random() < 0.2 and len(view):  # a view is toggled only before it is kept
            view.toggle(view.pos(rng.randrange(len(view))))
        kept.append((view, view.rows.copy()))
        for v, rows in kept:
            assert np.array_equal(v.rows, rows)
