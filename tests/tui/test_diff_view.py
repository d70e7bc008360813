"""The explorer's diff view (model/diff_tree.py): exact diffs of small pairs of sessions, the
same program twice, and the tree's change positions and unchanged subtrees."""

from __future__ import annotations

import numpy as np

from flowtrace import diff_rules as R
import pytest

from flowtrace_tui.model.diff_tree import DiffIndex, compare_outcomes, diff_tree, merged_by_name, name_keys
from flowtrace_tui.model.diff_view import MAX_CALLS, diff_detail, diff_row
from flowtrace_tui.model.diff_calls import pair_calls
from trace_builder import load, loop_nodes as loop, nested_session as session


def diff(a: bytes, b: bytes, outcomes: bool = True, thresholds: R.Thresholds | None = None) -> DiffIndex:
    da, db = load(a), load(b)
    names, keys = name_keys([da, db])
    ix = diff_tree(("a.ftr", da, merged_by_name(da, keys[0])), ("b.ftr", db, merged_by_name(db, keys[1])),
                   names, keys, thresholds)
    if outcomes:
        ix.set_outcomes(compare_outcomes(ix))
    return ix


def table(ix: DiffIndex) -> list[tuple]:
    """(indent + name, calls BASE, calls NEW, kinds) per path in preorder."""
    out = []
    for p in range(ix.size):
        r = diff_row(ix, p)
        out.append(("  " * int(ix.depth[p]) + r.name, *r.calls, *r.kinds))
    return out


def test_called_more_and_a_new_function():
    ix = diff(session(loop(3)), session(loop(4, work="work2")))
    assert table(ix) == [
        ("main", 1, 1, "same"),
        ("  step", 3, 4, "calls"),
        ("    parse", 3, 4, "calls"),
        ("    work", 3, 0, "gone"),
        ("    work2", 0, 4, "new"),
    ]
    assert ix.changed_positions().tolist() == [1, 2, 3, 4]
    assert ix.unchanged_subtrees().tolist() == [False] * 5


def test_an_exception_appears_and_a_result_changes():
    ix = diff(session(loop(3)), session(loop(3, raise_at=1, result="2")))
    assert table(ix) == [
        ("main", 1, 1, "same"),
        ("  step", 3, 3, "raised", "outcome"),  # i=1 raised instead of returning
        ("    parse", 3, 3, "outcome"),
        ("    work", 3, 3, "same"),
    ]
    d = diff_detail(ix, 1)
    assert (d.path, d.kinds, d.base.raised, d.new.raised, d.new.exception_types) == (
        "main › step", ("raised", "outcome"), 0, 1, ("ValueError",))
    assert [(c.args, c.end, c.value) for c in d.new.listed] == [
        ("i=0", "return", "None"), ("i=1", "raise", "ValueError: bad"), ("i=2", "return", "None")]
    # before the outcomes are compared, an other result is no change yet
    assert [k for *_, k in table(diff(session(loop(3)), session(loop(3, result="2")), outcomes=False))] == [
        "same"] * 4


def calls_of_f_and_g(n: int, changes: dict[str, dict[int, str]]) -> bytes:
    """main calling f(i=…) n times, then g(i=…) n times, each returning "0" but where
    `changes[name][i]` says otherwise."""
    return session([("main", "", "=0", [(name, f"i={i}", "=" + changes.get(name, {}).get(i, "0"), [])
                                         for name in ("f", "g") for i in range(n)])])


@pytest.mark.parametrize("at", [0, 8, 999, 1499], ids=["call 1", "call 9", "call 1000", "the last call"])
def test_the_detail_names_the_first_differing_call_wherever_it_is(at):
    """f differs at call `at` (and at the last), g at call 701: each path's detail says which
    call differs first and lists the calls from just before it (or from the first)."""
    ix = diff(calls_of_f_and_g(1500, {}), calls_of_f_and_g(1500, {"f": {1499: "y", at: "x"}, "g": {700: "z"}}))
    assert table(ix)[1:] == [("  f", 1500, 1500, "outcome"), ("  g", 1500, 1500, "outcome")]
    for pos, differs in ((1, at), (2, 700)):
        d = diff_detail(ix, pos)
        assert d.differs == differs
        first = 0 if differs < MAX_CALLS else min(differs - 2, 1500 - MAX_CALLS)
        assert (d.base.first, d.new.first, d.new.more) == (first, first, 1500 - first - MAX_CALLS)
        assert [c.args for c in d.new.listed] == [f"i={i}" for i in range(first, first + MAX_CALLS)]
        pairs = pair_calls(d.base.listed, d.new.listed, d.base.first)
        assert [p.number for p in pairs if not p.same][0] == differs + 1
        assert [(c.value) for c in d.new.listed][differs - first] in ("x", "y", "z")
    # before the outcomes are compared, nothing is named
    assert diff_detail(diff(calls_of_f_and_g(30, {}), calls_of_f_and_g(30, {"f": {3: "x"}}), outcomes=False), 1).differs is None
    # a path with other call counts has no first differing call
    assert diff_detail(diff(calls_of_f_and_g(30, {}), calls_of_f_and_g(31, {})), 1).differs is None


def test_recursion_one_level_deeper():
    def fib(depth: int) -> tuple:
        return ("fib", f"n={depth}", "=1", [fib(depth - 1)] if depth else [])

    ix = diff(session([fib(2)]), session([fib(3)]))
    assert table(ix) == [
        ("fib", 1, 1, "outcome"),  # fib(n=2) became fib(n=3)
        ("  fib", 1, 1, "outcome"),
        ("    fib", 1, 1, "outcome"),
        ("      fib", 0, 1, "new"),
    ]
    assert diff_detail(ix, 3).path == "fib (×4)"


def test_threads_are_merged():
    work = [("work", "", "=None", [("item", "", "=None", [])])]
    ix = diff(session(work, threads=(1, 2)), session(work * 2))  # two threads vs twice on one
    assert table(ix) == [("work", 2, 2, "same"), ("  item", 2, 2, "same")]


def test_the_same_program_twice_is_no_change():
    a = session(loop(5) + [("show", "self=<Obj object at 0x7f0012345678>", "=None", [])])
    b = session(loop(5) + [("show", "self=<Obj object at 0x7fee87654321>", "=None", [])], step=11)
    ix = diff(a, b)
    assert {k for *_, k in table(ix)} == {"same"}  # addresses and 10 % faster clocks are noise
    assert len(ix.changed_positions()) == 0 and ix.unchanged_subtrees().all()


def test_slower_and_faster_beyond_the_thresholds():
    a = session(loop(2), step=1000)
    b = session(loop(2), step=2000)
    strict = R.Thresholds(absolute_ns=1)
    assert {k for *_, k in table(diff(a, b, thresholds=strict))} == {"slower"}
    assert {k for *_, k in table(diff(b, a, thresholds=strict))} == {"faster"}
    assert {k for *_, k in table(diff(a, b))} == {"same"}  # µs changes: under the 50 µs floor
    r = diff_row(diff(a, b, thresholds=strict), 0)
    assert (r.total_ns, r.delta_ns, r.percent) == ((13_000, 26_000), 13_000, 100.0)


def test_unchanged_subtrees_are_those_without_a_change_below():
    a = session(loop(2) + [("tail", "", "=None", [("leaf", "", "=None", [])])])
    b = session(loop(2, work="other") + [("tail", "", "=None", [("leaf", "", "=None", [])])])
    ix = diff(a, b)
    names = [row[0].strip() for row in table(ix)]
    hidden = dict(zip(names, ix.unchanged_subtrees().tolist()))
    assert hidden == {"main": False, "step": False, "parse": True, "work": False, "other": False, "tail": True,
                      "leaf": True}
    assert np.array_equal(ix.changed_positions(), [names.index("work"), names.index("other")])
