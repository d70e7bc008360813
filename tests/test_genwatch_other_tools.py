"""Another sys.monitoring tool's callback runs Python with every tool's events off: a generator
freed there is closed with no event. 3.12's C recorder watches its generator map's entries only
lazily (genwatch.c genwatch_lazy, before its own hooks run Python), reading each entry's frame --
which such a free leaves as freed memory. With another tool about (others_may_run), it reads no
entry and watches every new one at once, as 3.13 always does: that close is then recorded."""

from __future__ import annotations

import sys

import pytest

from flowtrace.recorder import available_recorders
from treeutil import check_balanced, record, shape

MON = sys.monitoring
RECORDERS = ["python", "c"] if "c" in available_recorders() else ["python"]


def _trigger() -> int:
    return 0


@pytest.fixture
def other_tool():
    """Another tool whose PY_START callback, at _trigger's start, drops what `held` holds."""
    held: list = []
    tool = next(t for t in (1, 0, 5, 4) if MON.get_tool(t) is None)
    MON.use_tool_id(tool, "flowtrace-test-other-tool")

    def on_start(code, offset):
        if code is _trigger.__code__:
            held.clear()  # a generator's last reference: freed inside a monitoring callback

    MON.register_callback(tool, MON.events.PY_START, on_start)
    MON.set_events(tool, MON.events.PY_START)
    yield held
    MON.set_events(tool, 0)
    MON.register_callback(tool, MON.events.PY_START, None)
    MON.free_tool_id(tool)


@pytest.mark.parametrize("recorder", RECORDERS)
def test_a_generator_freed_in_another_tools_callback_ends_there(recorder: str, other_tool: list) -> None:
    """The generator suspended at its first yield is freed inside the other tool's callback (no
    hook of ours ran Python since it suspended): it ends `raise GeneratorExit` there, not
    unfinished at stop (3.12's C recorder before: `gen() ~`)."""

    def gen():
        yield 1
        yield 2

    def prog() -> None:
        _trigger()  # (its code known: no hook of ours runs at its next start)
        g = gen()
        next(g)
        other_tool.append(g)
        del g
        _trigger()

    trace = record(prog, recorder, args="off", flush_interval=3600)
    check_balanced(trace)
    assert shape(trace) == [
        "prog()", "  _trigger()", "  gen() ! GeneratorExit", "  _trigger()"]
