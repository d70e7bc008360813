"""Generators are one call each, with suspend/resume marks naming the resumer."""

from __future__ import annotations

import contextlib
import gc
import sys

from treeutil import check_balanced, record, shape


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
        "  first(g=<generator object at " + lines[1].split(" object at ")[1],
        "    worker_gen() " + lines[2].split("worker_gen() ")[1],
        "      square(x=3) = 9",
        "  second(g=<generator object at " + lines[4].split(" object at ")[1],
    ]
    wg = next(c for c in trace.calls if c.qualname == "worker_gen")
    kinds = [(m.kind, trace.call(m.other).qualname if m.other else None) for m in wg.marks]
    if sys.version_info[:3] == (3, 13, 0):
        # gh-140373: closing a generator suspended outside try/with gives no event at all
        assert kinds == [("suspend", None), ("resume", "second"), ("suspend", None)]
        assert wg.end == "unfinished"
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
        assert lines[2:] == ["    count(n=5) ~ [suspend]"]
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
