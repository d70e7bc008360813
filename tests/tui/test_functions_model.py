"""The functions view's model (model/functions.py, function_links.py, function_rows.py, history.py):
exact tables for small sessions (recursion, generators, threads, exceptions); the same numbers as
`flowtrace stats` on random sessions: tests/test_functions_view_stats.py."""

from __future__ import annotations

import numpy as np
import pytest

from flowtrace.ftr import format as F
from flowtrace_tui.model import build_index
from flowtrace_tui.model.function_links import NO_CALLER, callees, callers, slowest_calls
from flowtrace_tui.model.function_rows import (PENDING, FunctionSort, call_line, function_line, link_line,
                                               ordered_rows, search_keep)
from flowtrace_tui.model.functions import FunctionTable, function_table, outermost_calls
from flowtrace_tui.model.history import FUNCTIONS, TREE, History, Place
from flowtrace_tui.model.search import Query

from trace_builder import TraceBuilder, load


def table_of(b: TraceBuilder, **index_args) -> FunctionTable:
    return function_table(build_index(load(b.data()), **index_args))


def rows(t: FunctionTable) -> dict[str, tuple[int, int, int, int, int, int]]:
    """name -> (calls, total, self, sum, max, raised)."""
    d = t.index.data
    return {d.func_name(int(f)): (int(t.calls[i]), int(t.total[i]), int(t.self_ns[i]), int(t.sum_ns[i]),
                                  int(t.max_ns[i]), int(t.raised[i])) for i, f in enumerate(t.fids)}


def at(b: TraceBuilder, t: int) -> TraceBuilder:
    """The builder's clock just before `t` (suspend/resume take the next tick)."""
    b.now = t - b.step
    return b


def recursion() -> TraceBuilder:
    b = TraceBuilder()
    m = b.enter("main", t=0)
    f1 = b.enter("fact", args="n=3", t=10)
    f2 = b.enter("fact", args="n=2", t=20)
    f3 = b.enter("fact", args="n=1", t=30)
    b.leave(f3, "1", t=40)
    b.leave(f2, "2", t=60)
    h = b.enter("helper", t=65)
    f4 = b.enter("fact", args="n=0", t=70)  # indirect recursion: fact -> helper -> fact
    b.leave(f4, "1", t=75)
    b.leave(h, t=80)
    b.leave(f1, "6", t=90)
    f5 = b.enter("fact", args="n=1", t=92)  # a second outermost call
    b.leave(f5, "1", t=95)
    b.leave(m, t=100)
    return b


def test_recursion_is_counted_once_in_total() -> None:
    t = table_of(recursion())
    # fact's calls run 80, 40, 10, 5, 3 ns; only the two outermost (80 + 3) make its total
    assert rows(t) == {"main": (1, 100, 17, 100, 100, 0), "fact": (5, 83, 73, 138, 80, 0),
                       "helper": (1, 15, 10, 15, 15, 0)}
    assert t.session_total == 100 and t.complete
    assert outermost_calls(t.index).tolist() == [False, True, True, False, False, True, False, True]


def test_generators_count_once_per_object_without_their_suspensions() -> None:
    b = TraceBuilder()
    m = b.enter("main", t=0)
    g = b.enter("numbers", kind="generator", t=10)
    at(b, 20).suspend(g)
    c = b.enter("consume", t=30)
    b.leave(c, t=40)
    at(b, 50).resume(g, by=m)
    at(b, 55).suspend(g)
    at(b, 70).resume(g, by=m)
    b.leave(g, "None", t=75)  # lifetime 65, suspended 30 + 15: runs 20
    g2 = b.enter("numbers", kind="generator", t=80)
    at(b, 85).suspend(g2)  # never resumed: suspended until main ends... and its own end
    b.leave(m, t=100)
    b.leave(g2, "None", t=100)
    t = table_of(b)
    assert rows(t) == {"main": (1, 100, 65, 100, 100, 0), "numbers": (2, 25, 25, 25, 20, 0),
                       "consume": (1, 10, 10, 10, 10, 0)}


def test_threads_and_exceptions() -> None:
    b = TraceBuilder()
    m = b.enter("main", t=0)
    w = b.enter("work", t=10)
    b.leave(w, "1", t=30)
    k = b.enter("worker", thread=2, t=20)
    w2 = b.enter("work", thread=2, t=25)
    v = b.enter("check", thread=2, t=30)
    b.leave(v, raised="ValueError: bad", t=35)
    b.leave(w2, raised="ValueError: bad", t=45)  # the exception goes through work too
    b.leave(k, "None", t=60)  # caught in worker
    b.leave(m, t=100)
    t = table_of(b)
    assert rows(t) == {"main": (1, 100, 80, 100, 100, 0), "work": (2, 40, 35, 40, 20, 1),
                       "worker": (1, 40, 20, 40, 40, 0), "check": (1, 5, 5, 5, 5, 1)}
    assert t.session_total == 140  # the roots of both threads
    main = t.row_of(1)
    assert t.share[main] == pytest.approx(100 / 140)
    line = function_line(t, t.row_of(2))
    assert (line.name, line.module, line.where, line.calls, line.total, line.raised) == (
        "work", "__main__", "/flowtrace-test/prog.py:1", "2", "40 ns", "1")
    assert line.share == "28.6%"


def test_callers_callees_and_slowest_calls() -> None:
    t = table_of(recursion())
    d = t.index.data
    fact = d.col("func")[2]

    def named(links) -> list[tuple[str, int, int, int]]:
        return [(d.func_name(int(f)) if f else "-", int(c), int(tot), int(s))
                for f, c, tot, s in zip(links.fids, links.calls, links.total, links.self_ns)]

    # fact is called by main twice (outermost: 80 + 3), by itself twice and by helper once
    # (nested in an outer fact: no total)
    assert named(callers(t, fact)) == [("main", 2, 83, 28), ("fact", 2, 0, 40), ("helper", 1, 0, 5)]
    assert named(callees(t, fact)) == [("helper", 1, 15, 10), ("fact", 2, 0, 40)]
    assert named(callers(t, 1)) == [("-", 1, 100, 17)]
    assert link_line(d, callers(t, 1), 0).name == "(no caller: a root call)" and NO_CALLER == 0
    slow = slowest_calls(t, fact)
    assert slow.ids.tolist() == [2, 3, 4, 6, 7] and slow.run.tolist() == [80, 40, 10, 5, 3] and slow.count == 5
    top = slowest_calls(t, fact, limit=2)
    assert top.ids.tolist() == [2, 3] and top.count == 5
    line = call_line(t, slow, 0)
    assert (line.call, line.start, line.total, line.end, line.thread, line.args) == (
        2, "+10 ns", "80 ns", "", "MainThread", "n=3")


def test_ties_among_the_slowest_go_by_call_id() -> None:
    b = TraceBuilder()
    m = b.enter("main", t=0)
    for i in range(6):
        c = b.enter("f", t=10 + 10 * i)
        b.leave(c, t=15 + 10 * i + (i % 2))  # runs 5, 6, 5, 6, 5, 6
    b.leave(m, t=100)
    t = table_of(b)
    assert slowest_calls(t, 2, limit=3).ids.tolist() == [3, 5, 7]
    assert slowest_calls(t, 2, limit=4).ids.tolist() == [3, 5, 7, 2]


def test_first_step_has_everything_but_total() -> None:
    seen: list[FunctionTable] = []
    t = function_table(build_index(load(recursion().data())), first=seen.append)
    first = seen[0]
    assert not first.complete and first.calls.tolist() == t.calls.tolist()
    assert first.sum_ns.tolist() == t.sum_ns.tolist() and first.self_ns.tolist() == t.self_ns.tolist()
    line = function_line(first, first.row_of(2))
    assert (line.total, line.share, line.self_time) == (PENDING, PENDING, "73 ns")
    # ordered by the sum of the calls' times until total is known
    assert ordered_rows(first, FunctionSort()).tolist() == [1, 0, 2]
    assert ordered_rows(t, FunctionSort()).tolist() == [0, 1, 2]
    assert function_table(t.index, cancelled=lambda: True) is None


def test_order_by_any_column_and_the_search_filter() -> None:
    t = table_of(recursion())
    names = lambda order: [t.index.data.func_name(int(t.fids[i])) for i in order]  # noqa: E731
    assert names(ordered_rows(t, FunctionSort("calls"))) == ["fact", "helper", "main"]  # ties by name
    assert names(ordered_rows(t, FunctionSort("calls", descending=False))) == ["helper", "main", "fact"]
    assert names(ordered_rows(t, FunctionSort("self"))) == ["fact", "main", "helper"]
    assert names(ordered_rows(t, FunctionSort("max").reversed())) == ["helper", "fact", "main"]
    sort = FunctionSort()
    seen = [sort.column]
    for _ in range(7):
        sort = sort.next()
        seen.append(sort.column)
    assert seen == ["total", "self", "mean", "max", "share", "raised", "calls", "total"]
    assert FunctionSort().next(-1).column == "calls"
    keep = search_keep(t, Query("FAC"))
    assert names(ordered_rows(t, sort, keep)) == ["fact"]
    assert names(ordered_rows(t, sort, search_keep(t, Query("n=0", in_text=True)))) == ["fact"]
    assert names(ordered_rows(t, sort, search_keep(t, Query("^(main|helper)$", regex=True)))) == ["main", "helper"]


def test_history_back_and_forward() -> None:
    h = History()
    assert h.go(Place(TREE, 1), -1) is None
    h.jump(Place(TREE, 5), Place(FUNCTIONS, 2))
    h.jump(Place(FUNCTIONS, 2), Place(FUNCTIONS, 3))  # a callee
    assert h.go(Place(FUNCTIONS, 3), -1) == Place(FUNCTIONS, 2)
    assert h.go(Place(FUNCTIONS, 2), -1) == Place(TREE, 5)
    assert h.go(Place(TREE, 7), -1) is None  # the cursor moved to call 7 meanwhile
    assert h.go(Place(TREE, 7), +1) == Place(FUNCTIONS, 2)
    assert h.go(Place(FUNCTIONS, 2), -1) == Place(TREE, 7)  # where the cursor was, not the jump's start
    h.go(Place(TREE, 7), +1)
    h.jump(Place(FUNCTIONS, 2), Place(TREE, 9))  # a new jump drops what was forward
    assert not h.can_go(+1) and h.entries == [Place(TREE, 7), Place(FUNCTIONS, 2), Place(TREE, 9)]
    small = History(limit=3)
    for i in range(5):
        small.jump(Place(TREE, i), Place(TREE, i + 1))
    assert small.entries == [Place(TREE, 3), Place(TREE, 4), Place(TREE, 5)] and small.at == 2


def test_a_marks_fold_span_counts_as_seen_time() -> None:
    """An unfinished session's open calls end at the latest time seen, fold spans included, as
    flowtrace's own readers take it (the explorer's numbers equal flowtrace stats')."""
    b = TraceBuilder()
    m = b.enter("main", t=0)
    g = b.enter("numbers", kind="generator", t=10)
    at(b, 20).suspend(g)
    b.fold(g, n=3, run=6, span=50, t=30)
    data = load(b.data(finish=False))
    assert data.t_end == 80 and np.array_equal(data.col("how")[1:], [0, 0])
    t = function_table(build_index(data))
    assert rows(t)["main"][1] == 80 and F.MARK_FOLD in data.mark_col("kind").tolist()
