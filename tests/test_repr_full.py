"""`--repr full`: rendering the arguments and the result is not part of the call's time (the
start is taken after the arguments' texts, the end before the result's), and every captured
text is one line -- a multi-line `__repr__` or exception message is escaped at capture time
(`\\n`), the same text from both recorders, so `flowtrace print` and the explorer keep one
row per call."""

from __future__ import annotations

import time

from treeutil import check_balanced, record, shape

from flowtrace.printing import format_tree
from flowtrace.ftr.reader import trace_to_events

REPR_S = 0.15


class Slow:
    def __repr__(self) -> str:
        time.sleep(REPR_S)
        return "Slow()"


class Lines:
    def __repr__(self) -> str:
        return "   a  b\n0  1  2\n1  3\t4"


class Boom(Exception):
    pass


def identity(x):
    return x


def fail(x):
    raise ValueError("first line\nsecond line")


def slow_program():
    return identity(Slow())


def test_repr_time_is_outside_the_call(recorder_name: str) -> None:
    trace = record(slow_program, recorder_name, args="full")
    check_balanced(trace)
    assert shape(trace) == ["slow_program() = Slow()", "  identity(x=Slow()) = Slow()"]
    outer, inner = trace.calls
    # identity's argument and result were each rendered in REPR_S: not inside its own time
    assert inner.duration_ns < REPR_S * 1e9 / 2, inner.duration_ns
    assert outer.duration_ns >= REPR_S * 1e9  # (the caller did wait for them)


def multi_line_program():
    identity(Lines())
    try:
        fail(Lines())
    except ValueError:
        pass


def test_multi_line_texts_are_one_line(recorder_name: str) -> None:
    trace = record(multi_line_program, recorder_name, args="full")
    check_balanced(trace)
    assert shape(trace) == [
        "multi_line_program() = None",
        "  identity(x=   a  b\\n0  1  2\\n1  3\\t4) =    a  b\\n0  1  2\\n1  3\\t4",
        "  fail(x=   a  b\\n0  1  2\\n1  3\\t4) ! ValueError: first line\\nsecond line",
    ]
    marks = [m.text for c in trace.calls for m in c.marks]
    assert "ValueError: first line\\nsecond line" in marks
    lines = format_tree(trace_to_events(trace))  # what `flowtrace print` writes
    assert all("\n" not in line for line in lines)
    assert len("\n".join(lines).splitlines()) == len(lines) == len(trace.calls) + 1  # + the ← line
