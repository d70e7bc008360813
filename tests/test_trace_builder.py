"""The trace builder every test's sessions come from (tests/trace_builder.py): what each way of
building writes, read back with the one reader. When the builder is wrong, every test that
uses it is; these say what it promises."""

from __future__ import annotations

import pytest

from flowtrace.ftr import format as F
from flowtrace.ftr.reader import load
from trace_builder import (TraceBuilder, chunk_offsets, random_session, random_trace, sample_bytes, sample_program,
                           write_profile_sample)
from treeutil import check_balanced, shape


def test_the_fixed_sample_is_what_its_docstring_says():
    trace = load(sample_bytes())
    assert shape(trace) == [
        "main() = None",
        "  fib(n=2) = 1",
        "    fib(n=1) = 1",
        "    fib(n=0) ! ValueError: n=0",
        "  Shop.items(self=<shop.Shop object at 0x1>) = None",
        "  fetch(url='a') ~",
        "fib(n=5) ~",
    ]
    assert shape(trace, thread=2) == ["fib(n=5) ~"]
    assert trace.end is not None and load(sample_bytes(finish=False)).end is None
    kinds = [kind for kind, _, _ in chunk_offsets(sample_bytes())]
    assert kinds[0] == F.META and kinds[-1] == F.ENDS


def test_the_profile_sample_has_its_documented_times(tmp_path):
    write_profile_sample(tmp_path / "p.ftr")
    trace = load(tmp_path / "p.ftr")
    check_balanced(trace)
    main = trace.call(1)
    assert (main.qualname, main.end_ns - main.start_ns) == ("main", 1000)
    assert [c.qualname for c in trace.calls] == ["main", "fib", "fib", "fib", "numbers", "leaf", "Pool.work", "leaf"]


def test_a_program_acted_out_reads_back_as_acted():
    b = TraceBuilder()
    m = b.enter("main", args="x=1")
    g = b.enter("numbers", kind="generator")
    b.suspend(g, "0")
    b.leave(b.enter("helper", thread=2), "1")
    b.resume(g, m)
    b.leave(g, "None")
    b.leave(b.enter("check"), raised="ValueError: bad")
    b.flush()  # a second batch: ids and strings go on
    b.leave(m, "0")
    trace = load(b.data())
    assert shape(trace, marks=True) == [
        "main(x=1) = 0",
        "  numbers() = None [suspend,resume<main]",
        "  check() ! ValueError: bad",
        "helper() = 1",
    ]
    assert shape(trace, thread=2) == ["helper() = 1"]


def test_ready_made_programs_are_balanced():
    trace = load(sample_program().data())
    check_balanced(trace)
    assert shape(trace)[0] == "main() ! ValueError: negative"


@pytest.mark.parametrize("seed", range(5))
def test_random_traces_are_well_formed_and_repeatable(seed):
    assert random_trace(seed).data() == random_trace(seed).data()
    load(random_trace(seed).data())  # (the reader refuses a malformed session)


@pytest.mark.parametrize("ending", ["finished", "killed", "stopped"])
def test_random_sessions_end_as_asked(tmp_path, ending):
    path = tmp_path / "r.ftr"
    random_session(path, 3, ending=ending)
    trace = load(path)
    assert (trace.end is None) == (ending == "killed")
    if ending == "finished":
        check_balanced(trace)
    else:
        assert any(c.end == "unfinished" for c in trace.calls)
