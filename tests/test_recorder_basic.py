"""Exact trees for plain calls: recursion, exceptions, excluded code in between, calls already
running at start, tool ids. Run once per available recorder (see conftest.py)."""

from __future__ import annotations

import cProfile
import sys

import pytest

from treeutil import check_balanced, record, shape


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def test_recursion(recorder_name):
    trace = record(lambda: fib(3), recorder_name)
    assert shape(trace) == [
        "<lambda>() = 2",
        "  fib(n=3) = 2",
        "    fib(n=2) = 1",
        "      fib(n=1) = 1",
        "      fib(n=0) = 0",
        "    fib(n=1) = 1",
    ]
    check_balanced(trace)
    assert trace.status == "finished"


def test_no_args_mode(recorder_name):
    trace = record(lambda: fib(2), recorder_name, args="off")
    assert shape(trace) == ["<lambda>()", "  fib()", "    fib()", "    fib()"]


def boom(x):
    raise ValueError(f"bad {x}")


def level3(x):
    return boom(x) + 1


def level2(x):
    return level3(x) * 2


def catcher():
    try:
        level2(7)
    except ValueError:
        return "caught"


def test_exception_caught_frames_up(recorder_name):
    trace = record(catcher, recorder_name)
    assert shape(trace, marks=True) == [
        "catcher() = 'caught' [handled:ValueError]",
        "  level2(x=7) ! ValueError: bad 7",
        "    level3(x=7) ! ValueError: bad 7",
        "      boom(x=7) ! ValueError: bad 7 [raise:ValueError]",
    ]


def escaping():
    level2(1)


def test_exception_escaping(recorder_name):
    def run():
        try:
            escaping()
        except ValueError:
            pass

    trace = record(run, recorder_name)
    assert shape(trace, marks=True) == [
        "run() = None [handled:ValueError]",
        "  escaping() ! ValueError: bad 1",
        "    level2(x=1) ! ValueError: bad 1",
        "      level3(x=1) ! ValueError: bad 1",
        "        boom(x=1) ! ValueError: bad 1 [raise:ValueError]",
    ]


def reraiser():
    try:
        boom(2)
    except ValueError as exc:
        raise RuntimeError("wrapped") from exc


def test_new_exception_in_handler(recorder_name):
    def run():
        try:
            reraiser()
        except RuntimeError:
            pass

    trace = record(run, recorder_name)
    assert shape(trace, marks=True) == [
        "run() = None [handled:RuntimeError]",
        "  reraiser() ! RuntimeError: wrapped [handled:ValueError,raise:RuntimeError]",
        "    boom(x=2) ! ValueError: bad 2 [raise:ValueError]",
    ]


def key(v):
    return -v


def uses_sorted():
    return sorted([2, 3, 1], key=key)


def test_excluded_code_in_between(recorder_name):
    # sorted() and the stdlib are not recorded: key() is a child of uses_sorted()
    trace = record(uses_sorted, recorder_name)
    assert shape(trace) == [
        "uses_sorted() = [3, 2, 1]",
        "  key(v=2) = -2",
        "  key(v=3) = -3",
        "  key(v=1) = -1",
    ]


def test_stdlib_python_code_in_between(recorder_name):
    import functools

    def run():
        return functools.reduce(lambda a, b: a + key(b), [1, 2], 0)

    trace = record(run, recorder_name)
    assert shape(trace) == [
        "run() = -3",
        "  <lambda>(a=0, b=1) = -1",
        "    key(v=1) = -1",
        "  <lambda>(a=-1, b=2) = -3",
        "    key(v=2) = -2",
    ]


def test_exclude_pattern_children_attach_to_ancestor(recorder_name):
    def run():
        return level2_ok(3)

    trace = record(run, recorder_name, exclude=["*.level2_ok_never_matches", __name__ + "_nope"])
    assert [line.strip() for line in shape(trace)] == ["run() = 9", "level2_ok(x=3) = 9", "square(x=3) = 9"]
    trace = record(run, recorder_name, exclude=["*test_recorder_basic.py"])
    assert shape(trace) == []  # the whole file is excluded (run() too)


def square(x):
    return x * x


def level2_ok(x):
    return square(x)


# -- calls already running when recording starts ------------------------------------------------

def test_calls_running_at_start_are_ignored(recorder_name):
    from flowtrace.ftr.reader import load
    import io
    from flowtrace.session import Session

    buf = io.BytesIO()
    holder = {}

    def outer():
        middle()
        square(5)  # recorded: a root (outer itself started before recording)
        return 1

    def middle():
        holder["s"] = s = Session(buf, recorder=recorder_name)
        s.start()
        square(2)
        return 0  # returns without a recorded start: ignored

    outer()
    holder["s"].stop()
    trace = load(buf.getvalue())
    assert shape(trace) == ["square(x=2) = 4", "square(x=5) = 25"]


def test_calls_running_at_start_seeded_as_partial(recorder_name):
    from flowtrace.ftr.reader import load
    from flowtrace.recorder.base import RecorderConfig
    import io
    from flowtrace.session import Session

    buf = io.BytesIO()
    holder = {}

    def outer():
        middle()
        square(5)
        return 1

    def middle():
        holder["s"] = s = Session(buf, RecorderConfig(seed_running=True), recorder=recorder_name)
        s.start()
        square(2)
        return 0

    def top():
        outer()
        holder["s"].stop()  # top is still running: unfinished

    top()
    trace = load(buf.getvalue())
    main_thread = trace.calls[0].thread
    lines = shape(trace, thread=main_thread)
    tail = [line.strip() for line in lines[-5:]]
    assert tail == ["top(…) ~", "outer(…) = 1", "middle(…) = 0", "square(x=2) = 4", "square(x=5) = 25"]
    assert all(c.partial for c in trace.calls if c.qualname.endswith(("top", "outer", "middle")))


# -- tool ids -----------------------------------------------------------------------------------

def test_cprofile_keeps_working_while_recording(recorder_name):
    def run():
        prof = cProfile.Profile()
        prof.enable()
        square(3)
        prof.disable()
        return 1

    trace = record(run, recorder_name)
    assert shape(trace) == ["run() = 1", "  square(x=3) = 9"]


def test_recording_while_cprofile_is_active(recorder_name):
    prof = cProfile.Profile()
    prof.enable()
    try:
        trace = record(lambda: square(4), recorder_name)
    finally:
        prof.disable()
    assert shape(trace) == ["<lambda>() = 16", "  square(x=4) = 16"]


def test_no_free_tool_id_is_a_clear_error(recorder_name):
    from flowtrace.session import Session
    import io

    mon = sys.monitoring
    taken = []
    for tool in range(6):
        if mon.get_tool(tool) is None:
            mon.use_tool_id(tool, f"test-{tool}")
            taken.append(tool)
    try:
        s = Session(io.BytesIO(), recorder=recorder_name)
        with pytest.raises(RuntimeError, match="tool id"):
            s.start()
    finally:
        for tool in taken:
            mon.free_tool_id(tool)
    for tool in taken:
        assert mon.get_tool(tool) is None


def test_tool_id_released_after_stop(recorder_name):
    before = [sys.monitoring.get_tool(i) for i in range(6)]
    record(lambda: square(1), recorder_name)
    assert [sys.monitoring.get_tool(i) for i in range(6)] == before


def test_two_sessions_in_a_row_see_the_same_code(recorder_name):
    # DISABLE from the first session must not hide code from the second (gh-118327)
    first = record(lambda: square(2), recorder_name, exclude=["*/test_recorder_basic.py"])
    second = record(lambda: square(2), recorder_name)
    assert shape(first) == []
    assert shape(second) == ["<lambda>() = 4", "  square(x=2) = 4"]
