"""Merged call paths (model/merged.py): exact merged trees of small sessions, a reference
implementation on generated sessions, and the view moving between calls and merged paths."""

from __future__ import annotations

import random

import numpy as np
import pytest

from flowtrace_tui.model import TreeRows, build_index
from flowtrace_tui.model.call_detail import detail_of
from flowtrace_tui.model.filters import Filters, hidden_mask
from flowtrace_tui.model.merged import MergeCancelled, merge_calls, merge_paths, same_nodes
from flowtrace_tui.model.merged_view import MergedDetail, merged_row
from flowtrace_tui.model.search import Query, find

from trace_builder import TraceBuilder, load, loop_program, random_trace, sample_program


def listing(m) -> list[tuple]:
    """(indent + name, count, running total, self, raised) per merged row in preorder."""
    out = []
    for p in range(m.size):
        node = m.node(p)
        if m.is_group(node):
            name = m.group(node).label
        else:
            name = m.data.func_name(int(m.func[node]))
        out.append(("  " * int(m.depth[p]) + name, int(m.count[node]), int(m.run[node]),
                    int(m.self_time[node]), int(m.raised[node])))
    return out


def test_loop_merged_exactly():
    ix = build_index(load(loop_program().data()))
    m = merge_paths(ix)
    # every event takes 10 ns: parse, save, validate 10 each; a step with a save 70, without 50
    assert listing(m) == [
        ("main", 1, 310, 60, 1),
        ("  step", 4, 240, 140, 1),
        ("    parse", 4, 40, 40, 0),
        ("    save", 2, 20, 20, 0),
        ("    validate", 4, 40, 40, 1),
        ("  report", 1, 10, 10, 0),
    ]
    assert m.n == 6 and m.size == 6 and not m.groups
    assert m.end.tolist() == [6, 5, 3, 4, 5, 6]
    assert [len(lv) for lv in m.levels] == [1, 2, 3]
    # every call belongs to the merged node of its path; a merged node stands for its first call
    names = [m.data.func_name(int(m.data.col("func")[c])) for c in range(1, ix.n + 1)]
    assert [m.data.func_name(int(m.func[m.node_of[c]])) for c in range(1, ix.n + 1)] == names
    step = m.node(1)
    assert m.first_call[step] == 2 and m.calls_of(step).tolist() == [2, 6, 9, 13]
    assert m.calls_of(step, 2).tolist() == [2, 6]
    assert m.data.strings.text(int(m.data.col("args")[m.slowest_call(step)])) == "i=0"  # 70 ns, the first of two


def test_sample_program_with_generator_and_recursion():
    m = merge_paths(build_index(load(sample_program().data())))
    # the two consume calls (one each side of a generator resume) merge; fib's children merge
    assert listing(m) == [
        ("main", 1, 300, 90, 1),
        ("  parse", 1, 30, 20, 0),
        ("    tokenize", 1, 10, 10, 0),
        ("  fib", 1, 100, 60, 0),
        ("    fib", 2, 40, 40, 0),
        ("  numbers", 1, 50, 40, 0),
        ("    helper", 1, 10, 10, 0),
        ("  consume", 2, 20, 20, 0),
        ("  check", 1, 10, 10, 1),
    ]


def threads_loop() -> TraceBuilder:
    """Two threads each running work() -> item x2, and a second root on the main thread."""
    b = TraceBuilder()
    for t in (1, 2):
        w = b.enter("work", thread=t)
        for _ in range(2):
            i = b.enter("item", thread=t)
            b.leave(i)
        b.leave(w)
    w = b.enter("work", thread=1)
    b.leave(w)
    return b


def test_threads_stay_apart_when_grouped_and_merge_when_not():
    d = load(threads_loop().data())
    grouped = merge_paths(build_index(d))
    assert [row[:2] for row in listing(grouped)] == [
        ("MainThread", 4), ("  work", 2), ("    item", 2), ("Thread-2", 3), ("  work", 1), ("    item", 2)]
    assert [g.node for g in grouped.groups] == [5, 6] and grouped.n == 4
    flat = merge_paths(build_index(d, grouped=False))
    assert [row[:2] for row in listing(flat)] == [("work", 3), ("  item", 4)]


def reference(ix) -> list[tuple]:
    """Merged paths the slow way: walk the preorder, key = (parent's path, function or group)."""
    key_of: dict[int, tuple] = {}
    first: dict[tuple, int] = {}
    sums: dict[tuple, list[int]] = {}
    kids: dict[tuple, list[tuple]] = {(): []}
    how = ix.data.col("how")
    for p in range(ix.size):
        node = ix.node(p)
        par = int(ix.parent[node])
        me = ("g", ix.group(node).key) if ix.is_group(node) else int(ix.data.col("func")[node])
        key = key_of.get(par, ()) + (me,)
        key_of[node] = key
        if key not in sums:
            sums[key] = [0, 0, 0, 0]
            kids[key] = []
            kids[key[:-1]].append(key)
            first[key] = node
        s = sums[key]
        s[0] += 1 if not ix.is_group(node) else ix.descendants(p)
        s[1] += int(ix.run[node])
        s[2] += int(ix.self_time[node])
        s[3] += int(not ix.is_group(node) and how[node] == 2)
    out = []

    def walk(key: tuple) -> None:
        for k in kids[key]:
            out.append((len(k) - 1, *sums[k], first[k]))
            walk(k)

    walk(())
    return out


@pytest.mark.parametrize("seed", range(40))
def test_random_sessions_match_the_reference(seed):
    rng = random.Random(seed)
    d = load(random_trace(seed).data(finish=rng.random() < 0.5))
    ix = build_index(d, grouped=rng.random() < 0.7)
    m = merge_paths(ix)
    got = [(int(m.depth[p]), int(m.count[m.node(p)]), int(m.run[m.node(p)]), int(m.self_time[m.node(p)]),
            int(m.raised[m.node(p)]), int(m.first_call[m.node(p)])) for p in range(m.size)]
    assert got == reference(ix)
    # the arrays a TreeIndex promises: preorder ends, parents, levels
    for p in range(m.size):
        node = m.node(p)
        assert m.pos_of[node] == p
        assert m.parent_pos(p) == (int(m.pos_of[m.parent[node]]) if m.parent[node] else -1)
        assert m.end[p] == p + 1 + sum(m.end[c] - c for c in m.children(p))
    assert np.array_equal(np.sort(m.level_pos), np.arange(m.size))
    # every source node sits in the merged node of its path
    for p in range(ix.size):
        node = ix.node(p)
        if not ix.is_group(node):
            assert m.func[m.node_of[node]] == d.col("func")[node]


def test_cancelled_between_levels():
    ix = build_index(load(loop_program().data()))
    with pytest.raises(MergeCancelled):
        merge_paths(ix, lambda: True)


def test_rows_search_filters_and_detail_on_merged_paths():
    ix = build_index(load(loop_program().data()))
    m = merge_paths(ix)
    rows = TreeRows(m)
    rows.initial_expand()
    assert rows.rows.tolist() == [0, 1, 5]  # main open: step, report
    rows.expand(1)
    assert rows.rows.tolist() == [0, 1, 2, 3, 4, 5]
    # search by name and by argument text hits merged paths
    assert find(m, Query("valid")).tolist() == [4]
    assert find(m, Query("v=2", in_text=True)).tolist() == [3, 4]  # save(v=2), validate(v=2)
    # a filter hides paths whose summed time is short: save (2 calls, 20 ns), report (10 ns)
    assert np.flatnonzero(hidden_mask(m, Filters(min_dur_ns=30))).tolist() == [3, 5]
    row = merged_row(m, 1)
    assert (row.name, row.count, row.raised, row.total_ns, row.self_ns) == ("step", 4, 1, 240, 140)
    assert row.share == pytest.approx(240 / 310)
    det = detail_of(m, 4)
    assert isinstance(det, MergedDetail)
    assert (det.title, det.count, det.raised, det.total_ns, det.children, det.more_calls) == ("validate", 4, 1, 40, 0, 0)
    assert [(c.call, c.args, c.end, c.value) for c in det.calls] == [
        (5, "v=0", "return", "True"), (8, "v=1", "return", "True"), (12, "v=2", "return", "True"),
        (15, "v=3", "raise", "ValueError: 3")]
    assert [c.pos for c in det.calls] == [int(ix.pos_of[c.call]) for c in det.calls]


def test_view_carried_between_calls_and_merged_paths():
    ix = build_index(load(loop_program().data()))
    m = merge_paths(ix)
    calls = TreeRows(ix)
    calls.initial_expand()
    calls.expand(int(ix.pos_of[9]))  # the third step
    merged = calls.carry_to(m)
    # main and step are open in the merged view: the paths of the expanded calls
    assert merged.rows.tolist() == [0, 1, 2, 3, 4, 5]
    back = merged.carry_to(ix)
    # back to calls: each expanded path opens its first call (step #2), main stays open
    assert [int(ix.node(p)) for p in back.rows.tolist()] == [1, 2, 3, 4, 5, 6, 9, 13, 16]
    assert same_nodes(m, np.array([2]), ix).tolist() == [2]
    assert same_nodes(ix, np.array([6, 13]), m).tolist() == [2, 2]
    # a newer merged index (more calls) keeps the same paths open
    b = loop_program()
    m2 = merge_paths(build_index(load(b.data())))
    assert merged.carry_to(m2).rows.tolist() == [0, 1, 2, 3, 4, 5]


def paths_of(m) -> dict[tuple, tuple]:
    """{path of function ids: (count, running total, self, raised, unfinished)} of a merged index."""
    out = {}
    for p in range(m.size):
        node = m.node(p)
        path = tuple(int(m.func[m.node(a)]) for a in [*m.ancestors(p), p])
        out[path] = (int(m.count[node]), int(m.run[node]), int(m.self_time[node]), int(m.raised[node]),
                     int(m.unfinished[node]))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_merged_from_the_columns_equals_merged_from_the_index(seed):
    d = load(random_trace(seed).data(finish=seed % 2 == 0))
    from_index = merge_paths(build_index(d, grouped=False))
    direct = merge_calls(d)
    assert paths_of(direct) == paths_of(from_index)
    assert direct.source is None and direct.n_calls == d.n
    # every call in its path's node; each node's first call is its earliest
    for c in range(1, d.n + 1):
        assert direct.func[direct.node_of[c]] == d.col("func")[c]
    for node in range(1, direct.n + 1):
        assert direct.first_call[node] == direct.calls_of(node)[0]
