"""Generators are one call each, with suspend/resume marks naming the resumer."""

from __future__ import annotations

import contextlib
import gc
import sys

from treeutil import check_balanced, record, shape, time_nesting_errors


def count(n):
    for i in range(n):
        yield i
    return "done"


def square(x):
    return x * x


def consume():
    total = 0
    for v in count(2):
        total += square(v)
    return total


def test_generator_one_call_with_marks(recorder_name):
    trace = record(consume, recorder_name)
    assert shape(trace, marks=True) == [
        "consume() = 1",
        "  count(n=2) = 'done' [suspend,resume<consume,suspend,resume<consume]",
        "  square(x=0) = 0",
        "  square(x=1) = 1",
    ]
    check_balanced(trace)


def worker_gen():
    x = yield 1
    square(x)
    yield 2


def resumed_elsewhere():
    g = worker_gen()
    first(g)
    second(g)
    g.close()


def first(g):
    return next(g)


def second(g):
    return g.send(3)


def test_parent_is_first_runner_and_resume_names_resumer(recorder_name):
    trace = record(resumed_elsewhere, recorder_name)
    lines = shape(trace, marks=True)
    assert lines[:5] == [
        "resumed_elsewhere() = None",
        "  first(g=<generator object worker_gen at " + lines[1].split(" worker_gen at ")[1],
        "    worker_gen() " + lines[2].split("worker_gen() ")[1],
        "      square(x=3) = 9",
        "  second(g=<generator object worker_gen at " + lines[4].split(" worker_gen at ")[1],
    ]
    wg = next(c for c in trace.calls if c.qualname == "worker_gen")
    kinds = [(m.kind, trace.call(m.other).qualname if m.other else None) for m in wg.marks]
    if sys.version_info[:3] == (3, 13, 0):
        # gh-140373: closing a generator suspended outside try/with gives no event at all; it
        # ends when it is freed (genwatch.c), with no throw mark
        assert kinds == [("suspend", None), ("resume", "second"), ("suspend", None)]
        assert wg.end == "raise" and wg.exception == "GeneratorExit"
    else:
        assert kinds == [("suspend", None), ("resume", "second"), ("suspend", None),
                         ("throw", "resumed_elsewhere")]
        assert wg.end == "raise" and wg.exception == "GeneratorExit"
    assert len(lines) == 5


def guarded():
    try:
        yield 1
        yield 2
    except KeyError:
        yield "recovered"
    finally:
        square(2)


def thrower():
    g = guarded()
    next(g)
    g.throw(KeyError("k"))
    g.close()


def test_throw_caught_inside_generator_and_close(recorder_name):
    trace = record(thrower, recorder_name)
    assert shape(trace, marks=True) == [
        "thrower() = None",
        "  guarded() ! GeneratorExit [suspend,throw<thrower,handled:KeyError,suspend,"
        "throw<thrower,square_placeholder]".replace(",square_placeholder", ""),
        "    square(x=2) = 4",
    ]


def inner():
    yield 1
    yield 2
    return "inner-done"


def outer():
    result = yield from inner()
    yield result


def delegating():
    return list(outer())


def test_yield_from(recorder_name):
    trace = record(delegating, recorder_name)
    assert shape(trace, marks=True) == [
        "delegating() = [1, 2, 'inner-done']",
        "  outer() = None [suspend,fold<delegating*2,resume<delegating]",
        "    inner() = 'inner-done' [suspend,resume<outer,suspend,resume<outer]",
    ]


def abandon():
    g = count(5)
    next(g)
    return "left"


def test_abandoned_generator(recorder_name):
    def run():
        abandon()
        gc.collect()

    trace = record(run, recorder_name)
    lines = shape(trace, marks=True)
    assert lines[:2] == ["run() = None", "  abandon() = 'left'"]
    if sys.version_info[:3] == (3, 13, 0):
        # freed at abandon's return and closed without an event (gh-140373): it ends there
        assert lines[2:] == ["    count(n=5) ! GeneratorExit [suspend]"]
    else:
        # 3.12: collecting a suspended generator throws GeneratorExit into it (from run's gc)
        assert lines[2:] == ["    count(n=5) ! GeneratorExit [suspend,throw<run]"]
    check_balanced(trace)


@contextlib.contextmanager
def managed(tag):
    square(1)
    yield tag
    square(2)


def with_cm():
    with managed("x") as t:
        square(3)
    return t


def test_contextmanager(recorder_name):
    trace = record(with_cm, recorder_name)
    assert shape(trace, marks=True) == [
        "with_cm() = 'x'",
        "  managed(tag='x') = None [suspend,resume<with_cm]",
        "    square(x=1) = 1",
        "    square(x=2) = 4",
        "  square(x=3) = 9",
    ]


def with_cm_raising():
    try:
        with managed("y"):
            raise KeyError("inside")
    except KeyError:
        return "ok"


def test_contextmanager_with_exception(recorder_name):
    trace = record(with_cm_raising, recorder_name)
    assert shape(trace, marks=True) == [
        "with_cm_raising() = 'ok' [raise:KeyError,handled:KeyError]",
        "  managed(tag='y') ! KeyError: 'inside' [suspend,throw<with_cm_raising]",
        "    square(x=1) = 1",
    ]


def test_generator_started_before_recording_is_partial(recorder_name):
    g = count(3)
    next(g)

    def run():
        return next(g)

    trace = record(run, recorder_name)
    assert shape(trace, marks=True) == ["run() = 1", "  count(…) ~ [suspend]"]
    assert trace.calls[1].partial


# CPython versions whose close of a generator suspended outside any try block sends no event
# (gh-140373; genwatch.c's close_unseen): such a generator gets no throw mark
SILENT_CLOSE = (3, 13) <= sys.version_info[:3] < (3, 13, 10) or sys.version_info[:3] == (3, 14, 0)


def above(x):
    return x > 2


def short_circuits():
    found = any(above(x) for x in range(10))
    for v in count(3):
        break
    return found


def test_generators_left_early_end_where_they_are_freed(recorder_name):
    # any() stops at the first true value and `break` leaves the loop: both generators are
    # freed suspended and closed (GeneratorExit thrown in). A close that sends no event
    # (SILENT_CLOSE) ends them all the same, when the tracer learns they are gone.
    trace = record(short_circuits, recorder_name)
    throw = "" if SILENT_CLOSE else ",throw<short_circuits"
    assert shape(trace, marks=True) == [
        "short_circuits() = True",
        "  <genexpr>() ! GeneratorExit [suspend" + ",resume<short_circuits,suspend" * 3 + throw + "]",
        "    above(x=0) = False",
        "    above(x=1) = False",
        "    above(x=2) = False",
        "    above(x=3) = True",
        "  count(n=3) ! GeneratorExit [suspend" + throw + "]",
    ]
    assert time_nesting_errors(trace) == []


def guarded_count():
    try:
        yield 1
        yield 2
    finally:
        square(5)


def leaves_guarded():
    for v in guarded_count():
        break
    return v


def leaves_a_chain():
    for v in outer():
        break
    return v


def test_a_close_that_runs_the_frame_ends_the_generator_once(recorder_name):
    # suspended inside try: the close runs the frame (PY_THROW, the finally's call, PY_UNWIND)
    # on every version -- its events end it, not the weak reference's callback
    trace = record(leaves_guarded, recorder_name)
    assert shape(trace, marks=True) == [
        "leaves_guarded() = 1",
        "  guarded_count() ! GeneratorExit [suspend,throw<leaves_guarded]",
        "    square(x=5) = 25",
    ]


def test_a_chain_left_early_ends_each_generator(recorder_name):
    # outer's close is seen (it is suspended in `yield from`); it first closes inner, which
    # SILENT_CLOSE versions do without an event: inner ends when outer's frame frees it
    trace = record(leaves_a_chain, recorder_name)
    assert shape(trace, marks=True) == [
        "leaves_a_chain() = 1",
        "  outer() ! GeneratorExit [suspend,throw<leaves_a_chain]",
        "    inner() ! GeneratorExit [suspend" + ("" if SILENT_CLOSE else ",throw<leaves_a_chain") + "]",
    ]
    check_balanced(trace)


def closed_early_freed_late():
    g = count(4)
    next(g)
    g.close()  # 3.13.0: no event; the generator ends when it is freed (below)
    square(6)
    del g
    square(7)


def test_a_generator_closed_by_the_program_ends_by_the_time_it_is_freed(recorder_name):
    trace = record(closed_early_freed_late, recorder_name)
    lines = shape(trace, marks=True)
    assert lines == [
        "closed_early_freed_late() = None",
        "  count(n=4) ! GeneratorExit [suspend" + ("" if SILENT_CLOSE else ",throw<closed_early_freed_late") + "]",
        "  square(x=6) = 36",
        "  square(x=7) = 49",
    ]
    gen = next(c for c in trace.calls if c.qualname == "count")
    ends = {c.args: c.end_ns for c in trace.calls if c.qualname == "square"}
    assert gen.end_ns < ends["x=7"]  # at the close, or at the latest where it is freed


def churn():
    # generators made, advanced, finished and dropped in a shuffled order, many at once (the
    # C recorder's generator map grows, moves entries and deletes them while they are watched),
    # some in reference cycles that only a (frequent) collection frees
    import random

    rnd = random.Random(7)
    threshold = gc.get_threshold()
    gc.set_threshold(20)
    try:
        live = []
        for i in range(600):
            g = count(rnd.randrange(1, 4))
            next(g)
            live.append([g] if i % 3 else _cycle(g))
            if rnd.random() < 0.5:
                victim = live.pop(rnd.randrange(len(live)))
                for _ in victim[0]:  # finish it: count returns
                    pass
            if rnd.random() < 0.4 and live:
                live.pop(rnd.randrange(len(live)))  # drop it suspended
        del live
    finally:
        gc.set_threshold(*threshold)
    gc.collect()


def _cycle(g):
    box = [g]
    box.append(box)
    return box


def test_many_generators_each_end_once(recorder_name):
    for _ in range(2):  # a second session in the same recorder starts from a clean map
        trace = record(churn, recorder_name)
        check_balanced(trace)
        ends = [(c.end, c.exception if c.end == "raise" else None) for c in trace.calls if c.qualname == "count"]
        assert len(ends) == 600
        assert set(ends) <= {("return", None), ("raise", "GeneratorExit")}, set(ends)
        gc.collect()  # no weak reference of the tracer's outlives its session
        assert [o for o in gc.get_objects() if type(o).__name__ == "GenRef"] == []
