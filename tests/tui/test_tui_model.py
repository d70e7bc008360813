"""The explorer's data model on small traces with exact expectations, and a property test on
generated traces (rows are always in preorder, every visible row's ancestors are expanded...)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.model import TraceData, TreeRows, build_index
from flowtrace_tui.model.filters import Filters
from flowtrace_tui.model.search import Query, QueryError, find, next_hit, validate
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.model.units import fmt_ns, parse_duration, plural

from trace_builder import TraceBuilder, load, random_trace, sample_program


def names(ix, positions) -> list[str]:
    d = ix.data
    out = []
    for p in np.asarray(positions).tolist():
        node = ix.node(p)
        out.append(ix.group(node).label if ix.is_group(node) else d.func_name(int(d.col("func")[node])))
    return out


@pytest.fixture
def sample():
    d = load(sample_program().data())
    return d, build_index(d)


def test_loader_columns(sample):
    d, _ = sample
    assert d.n == 11
    assert d.col("parent")[1:].tolist() == [0, 1, 2, 1, 4, 4, 1, 1, 7, 1, 1]
    assert d.col("depth")[1:].tolist() == [0, 1, 2, 1, 2, 2, 1, 1, 2, 1, 1]
    assert d.col("nsusp")[7] == 2
    assert d.strings.text(int(d.col("args")[4])) == "n=3"
    assert d.strings.text(int(d.col("val")[11])) == "ValueError: negative"
    assert d.col("how")[11] == F.END_RAISE
    assert d.finished and d.ends["reason"] == "exit"


def test_preorder_with_generator(sample):
    _, ix = sample
    # helper (id 9) ran inside the generator: it sorts under `numbers`, before consume (id 8)
    assert ix.order.tolist() == [1, 2, 3, 4, 5, 6, 7, 9, 8, 10, 11]
    assert ix.depth.tolist() == [0, 1, 2, 1, 2, 2, 1, 2, 1, 1, 1]
    assert ix.end.tolist() == [11, 3, 3, 6, 5, 6, 8, 8, 9, 10, 11]
    assert [ix.descendants(p) for p in range(ix.size)] == [10, 1, 0, 2, 0, 0, 1, 0, 0, 0, 0]


def test_self_time(sample):
    _, ix = sample
    # running times: numbers lived 110 but was suspended 60 (see test_tui_timing.py)
    # main: 300 - (parse 30 + fib 100 + numbers 50 + consume 10 + consume 10 + check 10)
    assert ix.dur[1:12].tolist() == [300, 30, 10, 100, 30, 10, 110, 10, 10, 10, 10]
    assert ix.self_time[1:12].tolist() == [90, 20, 10, 60, 30, 10, 40, 10, 10, 10, 10]


def test_rows_expand_collapse(sample):
    _, ix = sample
    rows = TreeRows(ix)
    assert rows.rows.tolist() == [0]
    rows.initial_expand()
    assert names(ix, rows.rows) == ["main", "parse", "fib", "numbers", "consume", "consume", "check"]
    assert rows.expand(3)  # fib
    assert rows.rows.tolist() == [0, 1, 3, 4, 5, 6, 8, 9, 10]
    assert rows.collapse(0)
    assert rows.rows.tolist() == [0]
    rows.expand(0)  # fib stays expanded underneath
    assert rows.rows.tolist() == [0, 1, 3, 4, 5, 6, 8, 9, 10]
    rows.collapse_all()
    assert rows.rows.tolist() == [0]
    rows.expand_to_depth(1)
    assert rows.rows.tolist() == [0, 1, 3, 6, 8, 9, 10]
    rows.expand_to_depth(2)
    assert rows.rows.tolist() == list(range(11))


def test_hot_path_and_reveal(sample):
    _, ix = sample
    rows = TreeRows(ix)
    last = rows.hot_path(0)
    # main -> fib(n=3) (ran 100 ns: the most expensive child; numbers lived 110 but ran 50)
    # -> fib(n=2)
    assert names(ix, [last]) == ["fib"] and last == 4
    assert rows.rows.tolist() == [0, 1, 3, 4, 5, 6, 8, 9, 10]
    rows.collapse_all()
    rows.reveal(5)  # fib(n=1)
    assert rows.rows.tolist() == [0, 1, 3, 4, 5, 6, 8, 9, 10]


def test_expand_subtree_guard(sample):
    _, ix = sample
    rows = TreeRows(ix)
    assert not rows.expand_subtree(0, guard=5)
    assert rows.rows.tolist() == [0]
    assert rows.expand_subtree(0, force=True, guard=5)
    assert rows.rows.tolist() == list(range(11))


def test_siblings_and_ancestors(sample):
    _, ix = sample
    assert ix.children(0).tolist() == [1, 3, 6, 8, 9, 10]
    assert ix.next_sibling(3) == 6 and ix.prev_sibling(6) == 3 and ix.prev_sibling(1) == -1
    assert ix.next_sibling(10) == -1
    assert ix.ancestors(7) == [0, 6]
    assert ix.parent_pos(0) == -1


def test_search_names_and_text(sample):
    _, ix = sample
    assert names(ix, find(ix, Query("fib"))) == ["fib", "fib", "fib"]
    assert find(ix, Query("FIB", case=True)).tolist() == []
    assert find(ix, Query("^c.*e$", regex=True)).tolist() == [8, 9]  # consume x2 (check has no 'e' end)
    assert find(ix, Query("negative", in_text=True)).tolist() == [0, 10]
    assert find(ix, Query("negative")).tolist() == []
    # the yielded value "1" is a MARK text of `numbers`; "x=1" an argument of consume
    assert find(ix, Query("x=1", in_text=True)).tolist() == [9]
    hits = find(ix, Query("consume"))
    assert next_hit(hits, 0) == 0 and next_hit(hits, 8) == 1 and next_hit(hits, 9) == 0
    assert next_hit(hits, 9, forward=False) == 0 and next_hit(hits, 0, forward=False) == 1


def test_query_validation():
    assert validate(Query("a(", regex=True)).startswith("bad regular expression")
    assert validate(Query("a(")) is None
    with pytest.raises(QueryError):
        Query("", regex=True).compile()


def test_filters(sample):
    _, ix = sample
    rows = TreeRows(ix, Filters(min_dur_ns=20))
    rows.expand_to_depth(5)
    # calls shorter than 20 ns go, with their subtrees
    assert names(ix, rows.rows) == ["main", "parse", "fib", "fib", "numbers"]
    rows.set_filters(Filters(hidden_modules=frozenset({"__main__"})))
    assert rows.rows.tolist() == []
    assert Filters(1_000_000, frozenset({"json"})).describe() == "< 1.00 ms, -json"


def test_threads_and_tasks_grouping():
    b = TraceBuilder()
    a = b.enter("main")
    w = b.enter("work", thread=2)
    x = b.enter("inner", thread=2)
    b.leave(x)
    c = b.enter("child")  # thread 1, under main
    b.leave(c)
    b.leave(w)
    b.leave(a)
    d = load(b.data())
    ix = build_index(d)
    assert [g.label for g in ix.groups] == ["MainThread", "Thread-2"]
    assert names(ix, range(ix.size)) == ["MainThread", "main", "child", "Thread-2", "work", "inner"]
    assert ix.depth.tolist() == [0, 1, 2, 0, 1, 2]
    flat = build_index(d, grouped=False)
    assert names(flat, range(flat.size)) == ["main", "child", "work", "inner"]
    # state carries over by call id when grouping is toggled
    rows = TreeRows(ix)
    rows.expand(1)
    rows2 = rows.carry_to(flat)
    assert names(flat, rows2.rows) == ["main", "child", "work"]


def test_async_tasks_grouped():
    b = TraceBuilder()
    b.task(1, "Task-1")
    b.task(2, "Task-2")
    t1 = b.enter("fetch", task=1, kind="coroutine")
    b.suspend(t1)
    t2 = b.enter("fetch", task=2, kind="coroutine")
    s = b.enter("sleep", task=2)
    b.leave(s)
    b.suspend(t2)
    b.resume(t1)
    b.leave(t1)
    b.resume(t2)
    b.leave(t2)
    ix = build_index(load(b.data()))
    assert [(g.kind, g.label) for g in ix.groups] == [("task", "Task-1"), ("task", "Task-2")]
    assert names(ix, range(ix.size)) == ["Task-1", "fetch", "Task-2", "fetch", "sleep"]


def _portal_task_program() -> TraceBuilder:
    """A thread whose recorded bootstrap runs an event loop (as under --include '*'), and two
    tasks whose coroutines hang from the bootstrap: Task-1's runs 100..200 and 700..800 (lives
    100..800), Task-2's 300..400."""
    b = TraceBuilder()
    main = b.enter("main", t=0)
    boot = b.enter("bootstrap", thread=2, t=1)
    loop = b.enter("run_forever", thread=2, t=10)
    serve = b.enter("serve", parent=boot, thread=2, task=1, kind="coroutine", t=100)
    b.task(1, "Task-1", thread=2, root=serve, creator=loop)
    b.mark(serve, F.MARK_SUSPEND, t=200)
    tick = b.enter("tick", parent=boot, thread=2, task=2, kind="coroutine", t=300)
    b.task(2, "Task-2", thread=2, root=tick, creator=loop)
    b.leave(tick, t=400)
    b.mark(serve, F.MARK_RESUME, other=loop, t=700)
    b.leave(serve, t=800)
    b.leave(loop, t=900)
    b.leave(boot, t=1000)
    b.leave(main, t=1001)
    return b


def test_task_view_counts_a_tasks_time_once_and_shows_its_lifetime():
    """The task view takes a task's coroutine out of the call it hangs from; that call (here
    the thread's bootstrap) still holds the coroutine's running time, so the thread's total
    is its bootstrap's, not that plus the task's again. The task's line shows its lifetime,
    as its coroutine's line does; its busy time is in the detail beside it."""
    from flowtrace_tui.model.call_detail import GroupDetail, detail_of
    from flowtrace_tui.model.row_view import row_view

    ix = build_index(load(_portal_task_program().data()), tasks=True)
    assert names(ix, range(ix.size)) == ["MainThread", "main", "Thread-2", "bootstrap", "run_forever",
                                         "Task-1", "serve", "Task-2", "tick"]
    thread2, task = (int(ix.pos_of[g.node]) for g in ix.groups[1:3])
    assert int(ix.dur[ix.node(thread2)]) == 999
    assert row_view(ix, thread2 + 1).share == 1.0  # the bootstrap is all of its thread
    line = row_view(ix, task)
    assert (line.group, line.total_ns, line.share) == ("task", 700, pytest.approx(200 / 999))
    assert row_view(ix, task + 1).total_ns == 700
    assert (row_view(ix, task + 2).total_ns, row_view(ix, task + 2).share) == (100, pytest.approx(100 / 999))
    detail = detail_of(ix, task)
    assert isinstance(detail, GroupDetail)
    assert (detail.lifetime_ns, detail.busy_ns, detail.roots) == (700, 200, 1)
    assert detail_of(ix, thread2).lifetime_ns is None


def test_a_generators_later_runs_are_the_self_time_of_the_calls_that_ran_them(tmp_path):
    """The tree keeps a context manager's generator under `__enter__` (which first ran it), and
    its run after the yield is `__exit__`'s child time, not `__exit__`'s self time (as in
    `flowtrace stats`: tests/test_stats.py)."""
    from test_stats import context_manager_session

    context_manager_session(tmp_path / "cm.ftr")
    ix = build_index(load((tmp_path / "cm.ftr").read_bytes()))
    selfs = {name: int(ix.self_time[ix.node(pos)]) for pos, name in zip(range(ix.size), names(ix, range(ix.size)))}
    assert selfs == {"main": 325, "__enter__": 20, "resource": 190, "cleanup": 200, "work": 100, "__exit__": 20,
                     "prime": 10, "worker": 105, "feed": 30}
    assert names(ix, range(ix.size)) == ["main", "__enter__", "resource", "cleanup", "work", "__exit__", "prime",
                                         "worker", "feed"]


def test_incremental_feed_matches_one_shot():
    """Feeding chunk by chunk (a live file) gives the same columns as one feed; EXITs that come
    chunks later fill in earlier calls."""
    b = TraceBuilder()
    m = b.enter("main")
    g = b.enter("gen", kind="generator")
    b.suspend(g)
    b.flush()
    for i in range(3):
        x = b.enter("step", args=f"i={i}")
        b.flush()
        b.leave(x, str(i))
        b.resume(g, m)
        y = b.enter("inner")
        b.leave(y)
        b.suspend(g)
        b.flush()
    b.resume(g, m)
    b.leave(g)
    b.leave(m)
    raw = b.data()
    whole = load(raw)
    reader = ChunkReader.from_bytes(raw)
    inc = TraceData()
    for ch in reader.poll():
        res = inc.feed([ch])
        if ch.kind == F.CALL:
            assert res.new_calls >= 1
    for col in ("parent", "func", "t0", "t1", "how", "val", "depth", "root", "nsusp"):
        assert inc.col(col).tolist() == whole.col(col).tolist(), col
    ix = build_index(inc)
    assert names(ix, range(ix.size)) == ["main", "gen", "inner", "inner", "inner", "step", "step", "step"]


def test_unfinished_and_partial_tail(tmp_path):
    b = TraceBuilder()
    m = b.enter("main")
    c = b.enter("child")
    b.leave(c)
    b.enter("stuck")
    raw = b.data(finish=False)
    path = tmp_path / "t.ftr"
    path.write_bytes(raw + b"CALL\x01\x00\x00\x00\xff")  # the start of a chunk still being written
    src = TraceSource.open(path)
    while src.step().more:
        pass
    d = src.data
    assert d.n == 3 and not d.finished and src.damage is None
    assert src.reader.pending_bytes == 9
    ix = build_index(d)
    assert ix.is_open(m) and not ix.is_open(c)
    # an open call lasts until the latest time seen
    assert int(ix.dur[m]) == d.t_max - int(d.col("t0")[m])


def test_corrupt_chunk_keeps_what_came_before(tmp_path):
    b = TraceBuilder()
    m = b.enter("main")
    b.leave(m)
    b.flush()
    n2 = b.enter("second")
    b.leave(n2)
    raw = bytearray(b.data())
    raw[-30] ^= 0xFF  # damage the end chunk
    path = tmp_path / "c.ftr"
    path.write_bytes(bytes(raw))
    src = TraceSource.open(path)
    while not src.done and src.step().more:
        pass
    assert src.damage is not None and "offset" in src.damage
    assert src.data.n == 2


def test_open_errors(tmp_path):
    p = tmp_path / "x.ftr"
    p.write_bytes(b"hello world, not a trace")
    with pytest.raises(F.FormatError, match="not a flowtrace session"):
        TraceSource.open(p)
    p.write_bytes(F.FILE_HEADER.pack(F.MAGIC, 9, 0, 0))
    with pytest.raises(F.FormatError, match="newer than this flowtrace reads"):
        TraceSource.open(p)
    with pytest.raises(F.FormatError, match="no such file"):
        TraceSource.open(tmp_path / "missing.ftr")


def test_units():
    assert [fmt_ns(x) for x in (5, 1_500, 25_000_000, 3_400_000_000)] == ["5 ns", "1.50 µs", "25.0 ms", "3.40 s"]
    assert parse_duration("1ms") == 1_000_000 and parse_duration("250 us") == 250_000
    assert parse_duration("2s") == 2_000_000_000 and parse_duration("3") == 3_000_000
    with pytest.raises(ValueError):
        parse_duration("fast")
    assert [plural(n, "task") for n in (0, 1, 2, 12345)] == ["0 tasks", "1 task", "2 tasks", "12,345 tasks"]


# -- property test on generated traces -------------------------------------------------------------

@pytest.mark.parametrize("seed", range(25))
def test_rows_are_preorder_property(seed):
    rng = random.Random(seed)
    d = load(random_trace(seed).data(finish=rng.random() < 0.5))
    ix = build_index(d, grouped=rng.random() < 0.7)
    M = ix.size
    assert sorted(ix.order.tolist()) == list(range(1, M + 1))
    # preorder: every node's parent comes before it and its subtree is contiguous
    for p in range(M):
        par = ix.parent_pos(p)
        if par >= 0:
            assert par < p < ix.end[par]
            assert ix.depth[p] == ix.depth[par] + 1
        assert ix.end[p] <= M
    # among siblings, call-id (start) order is kept
    for p in range(M):
        kids = [ix.node(c) for c in ix.children(p).tolist()]
        calls = [k for k in kids if k <= ix.n]
        assert calls == sorted(calls)
    # self time + what ran inside it = running time: its children's running times, less their
    # runs elsewhere (timing.py), plus the runs of other calls that ran in it
    away, credit = {}, {}
    el = ix.grow_state.elsewhere
    for c, r, ns in zip(el.call.tolist(), el.runner.tolist(), el.ns.tolist()):
        away[c] = away.get(c, 0) + ns
        credit[r] = credit.get(r, 0) + ns
    for p in range(M):
        node = ix.node(p)
        if node <= ix.n:
            kids = sum(int(ix.run[k]) - min(int(ix.run[k]), away.get(k, 0))
                       for k in (ix.node(c) for c in ix.children(p).tolist()))
            assert int(ix.self_time[node]) == max(0, int(ix.run[node]) - kids - credit.get(node, 0))
    # random expand/collapse keeps rows sorted, unique, and exactly the nodes whose ancestors
    # are all expanded
    rows = TreeRows(ix)
    for _ in range(40):
        if len(rows) == 0:
            break
        p = rows.pos(rng.randrange(len(rows)))
        op = rng.random()
        if op < 0.5:
            rows.toggle(p)
        elif op < 0.6:
            rows.expand_subtree(p, force=True)
        elif op < 0.7:
            rows.expand_to_depth(rng.randint(0, 3))
        elif op < 0.8:
            q = rng.randrange(M)
            rows.reveal(q)
            assert rows.row_of(q) >= 0
        elif op < 0.9:
            rows.hot_path(p)
        else:
            rows.collapse(p)
        r = rows.rows.tolist()
        assert r == sorted(set(r))
        expected = [q for q in range(M) if all(rows.expanded[a] for a in ix.ancestors(q))]
        assert r == expected


def test_with_filters_and_version(sample):
    """`with_filters` (run by a worker on big traces) gives what `set_filters` gives and leaves
    the view it copies alone; every change to a view bumps its version (the app uses it to tell
    whether a view carried by a worker is still current)."""
    _, ix = sample
    rows = TreeRows(ix)
    rows.expand_to_depth(5)
    before, v = rows.rows.copy(), rows.version
    f = Filters(min_dur_ns=20)
    copy = rows.with_filters(f)
    assert rows.rows.tolist() == before.tolist() and rows.version == v and rows.filters == Filters()
    rows.set_filters(f)
    assert copy.rows.tolist() == rows.rows.tolist() == names_pos(ix, ["main", "parse", "fib", "fib", "numbers"], copy)
    for change in (lambda r: r.collapse_all(), lambda r: r.expand(int(r.rows[0])), lambda r: r.collapse(int(r.rows[0])),
                   lambda r: r.open_chain([int(r.rows[0])]), lambda r: r.expand_to_depth(2)):
        v = rows.version
        change(rows)
        assert rows.version > v


def names_pos(ix, expected: list[str], rows) -> list[int]:
    assert names(ix, rows.rows) == expected
    return rows.rows.tolist()
