"""GIVEN one session, WHEN the object reader (ftr/reader.py) and the explorer's numpy loader
(model/loader.py) read it, THEN they agree on every call, definition and end: both decode with
the one decoder (flowtrace/ftr/decode.py), and the rules docs/FORMAT.md states for a writer
that repeats itself (a repeated EXIT: the last row wins; a repeated TASK: fills in) hold in both."""

from __future__ import annotations

import random

from flowtrace.ftr import decode as D
from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.reader import load
from flowtrace_tui.model import TraceData

from trace_builder import TraceBuilder

END_OF = {F.END_RETURN: "return", F.END_RAISE: "raise", F.END_UNFINISHED: "unfinished", 0: "unfinished"}


def loaded(data: bytes) -> TraceData:
    d = TraceData("t")
    d.feed(ChunkReader.from_bytes(data).poll())
    return d


def assert_agree(data: bytes) -> None:
    trace, d = load(data), loaded(data)
    assert trace.status == "finished" and d.n == len(trace.calls)
    how, t1, val = d.col("how"), d.col("t1"), d.col("val")
    for c in trace.calls:
        text = d.strings.text(int(val[c.id])) or None
        assert END_OF[int(how[c.id])] == c.end, c.id
        if c.end == "return":
            assert (int(t1[c.id]), text) == (c.end_ns, c.result)
        elif c.end == "raise":
            assert (int(t1[c.id]), text) == (c.end_ns, c.exception)
        assert d.func(int(d.col("func")[c.id])) == c.function
        assert int(d.col("parent")[c.id]) == (c.parent or 0)
    assert d.tasks == trace.tasks and d.threads == trace.threads


def test_repeated_exit_last_row_wins_in_both() -> None:
    b = TraceBuilder()
    a = b.enter("a")
    b.leave(a, result="first")
    b.flush()
    b.leave(a, raised="ValueError: second")  # a later chunk ends it again
    c = b.enter("c")
    b.leave(c, result="one")
    b.leave(c, result="two")  # twice in one chunk
    data = b.data()
    trace = load(data)
    assert (trace.call(a).end, trace.call(a).exception, trace.call(a).result) == ("raise", "ValueError: second", None)
    assert trace.call(c).result == "two"
    assert_agree(data)


def test_repeated_task_definition_fills_in_in_both() -> None:
    b = TraceBuilder()
    b.task(1, "Task-1")
    b.flush()
    b.batch.tasks.append({"id": 1, "creator": 0, "root": 0, "thread": 0})  # learns nothing new
    b.enter("a", task=1)
    data = b.data()
    assert load(data).tasks[1] == D.Task(1, "Task-1", 1, None, None)
    assert_agree(data)


def test_unknown_function_kind_reads_as_function() -> None:
    b = TraceBuilder()
    b.func("odd", kind="a-kind-of-the-future")
    b.enter("odd")
    data = b.data()
    assert load(data).calls[0].kind == "function"
    assert_agree(data)


def test_random_sessions_agree() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        b = TraceBuilder()
        ended: list[int] = []
        for _ in range(rng.randint(5, 60)):
            stack = b.stacks.get(1, [])
            r = rng.random()
            if r < 0.5 or not stack:
                b.enter(rng.choice("abc"), args=f"x={rng.randint(0, 9)}")
            elif r < 0.85:
                cid = stack[-1]
                if rng.random() < 0.3:
                    b.leave(cid, raised="KeyError: 1")
                else:
                    b.leave(cid, result=str(rng.randint(0, 9)))
                ended.append(cid)
            elif ended:
                b.leave(rng.choice(ended), result="again")
            if rng.random() < 0.2:
                b.flush()
        assert_agree(b.data())
