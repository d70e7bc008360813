"""The shared rules of a diff (flowtrace/diff_rules.py): path names, outcomes, noise."""

from flowtrace import diff_rules as R


def facts(calls=1, total=1000, own=1000, raised=0, types=(), outcomes=0):
    return R.SideFacts(calls, total, own, raised, frozenset(types), outcomes)


def test_names():
    assert R.function_key("app.db", "Session.query") == "app.db:Session.query"
    assert R.path_text(("__main__:<module>", "__main__:main", "app:Load.run")) == "<module> › main › Load.run"
    assert R.path_text(("__main__:<module>", "json:<module>", "json.decoder:<module>")) == (
        "<module> › <module json> › <module json.decoder>")
    assert R.path_text(("m:<module>", "m:fib", "m:fib", "m:fib", "m:g", "m:fib")) == "<module m> › fib (×3) › g › fib"


def test_addresses_are_not_a_change():
    a = R.outcome_hash("self=<m.C object at 0x7f12ab34cd50>", "return", "None")
    b = R.outcome_hash("self=<m.C object at 0x7f99aa00cc10>", "return", "None")
    assert a == b
    assert R.outcome_hash("n=1", "return", "1") != R.outcome_hash("n=1", "return", "2")
    assert R.outcome_hash("n=1", "return", None) != R.outcome_hash("n=1", "raise", None)


def test_outcome_digest_ignores_order():
    h1, h2 = R.outcome_hash("i=1", "return", "1"), R.outcome_hash("i=2", "return", "4")
    assert R.add_hash(R.add_hash(0, h1), h2) == R.add_hash(R.add_hash(0, h2), h1)


def test_outcomes_swapped_between_calls_are_another_digest():
    """Two calls that swap their results (or arguments, or ends) are other outcomes: the sums
    of their hashes differ (a plain tuple hash summed to the same digest about half of the
    time); and a path's digest is the same made from texts or from each text's hash."""
    def digest(*outcomes):
        total = 0
        for o in outcomes:
            total = R.add_hash(total, R.outcome_hash(*o))
        return total

    for i in range(2000):
        a, b = f"i={i}", f"i={i + 1}"
        assert digest((a, "return", "1"), (b, "return", "0")) != digest((a, "return", "0"), (b, "return", "1"))
        assert digest((a, "return", "x"), (b, "raise", "x")) != digest((a, "raise", "x"), (b, "return", "x"))
        assert digest(("n=1", "return", a), ("n=2", "return", b)) != digest(("n=2", "return", a), ("n=1", "return", b))
    assert R.outcome_hash("i=1", "return", None) == R.combine_outcome(R.text_hash("i=1"), "return", R.text_hash(None))


def test_exception_type():
    assert R.exception_type("ValueError: n=0") == "ValueError"
    assert R.exception_type("KeyError") == "KeyError"
    assert R.exception_type(None) == "?"


def test_thresholds():
    th = R.Thresholds()
    assert th.floor_ns(1_000_000, 2_000_000) == R.MIN_ABS_NS  # 0.5 % of 2 ms is below 50 µs
    assert th.floor_ns(0, 1_000_000_000) == 5_000_000
    assert R.Thresholds(absolute_ns=7).floor_ns(0, 10**12) == 7
    floor = 50_000
    assert th.time_change(1_000_000, 1_090_000, floor) == 0  # 9 %: noise
    assert th.time_change(1_000_000, 1_200_000, floor) == 1
    assert th.time_change(1_000_000, 800_000, floor) == -1
    assert th.time_change(100_000, 140_000, floor) == 0  # 40 % but under the floor
    assert th.time_change(0, 60_000, floor) == 1


def test_change_kinds():
    th, floor = R.Thresholds(), 50_000
    assert R.change_kinds(None, facts(), th, floor) == [R.NEW]
    assert R.change_kinds(facts(), None, th, floor) == [R.GONE]
    assert R.change_kinds(facts(), facts(), th, floor) == [R.SAME]
    assert R.change_kinds(facts(calls=2), facts(calls=3), th, floor) == [R.CALLS]
    assert R.change_kinds(facts(outcomes=1), facts(outcomes=2), th, floor) == [R.OUTCOME]
    assert R.change_kinds(facts(calls=2, outcomes=1), facts(calls=3, outcomes=2), th, floor) == [R.CALLS]
    assert R.change_kinds(facts(), facts(raised=1, types={"ValueError"}), th, floor) == [R.RAISED]
    assert R.change_kinds(facts(raised=1, types={"KeyError"}), facts(raised=1, types={"ValueError"}), th,
                          floor) == [R.RAISED]
    slow = facts(total=2_000_000, own=1_500_000)
    assert R.change_kinds(facts(total=1_000_000, own=1_000_000), slow, th, floor) == [R.SLOWER]
    assert R.change_kinds(slow, facts(total=1_000_000, own=1_000_000), th, floor) == [R.FASTER]
    # children slower by more than the function itself got faster: slower
    mixed = facts(total=3_000_000, own=500_000)
    assert R.change_kinds(facts(total=1_000_000, own=1_000_000), mixed, th, floor) == [R.SLOWER]
    assert R.primary_kind([R.CALLS, R.SLOWER]) == R.CALLS
    assert R.primary_kind([R.OUTCOME, R.RAISED]) == R.RAISED
