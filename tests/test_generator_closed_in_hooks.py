"""A suspended generator closed while one of the recorder's own hooks runs Python code (here a
program's __repr__ in --repr full, which drops the generator's last reference) ends `raise
GeneratorExit`, as its close's unwind would have -- CPython delivers no event inside a monitoring
callback, so only the generator watch (genwatch.c) sees it."""

from __future__ import annotations

import gc

import pytest

from flowtrace.recorder import available_recorders
from treeutil import record, shape

RECORDERS = ["python", "c"] if "c" in available_recorders() else ["python"]


def _gen():
    try:
        yield 1
        yield 2
    finally:
        pass


class _Holder:
    def __init__(self, gen) -> None:
        self.gen = gen

    def __repr__(self) -> str:
        self.gen = None  # the suspended generator's last reference: it is closed right here
        return "Holder()"


def _take(holder: _Holder) -> int:
    return 1


def _closed_in_repr() -> None:
    g = _gen()
    next(g)
    h = _Holder(g)
    del g
    _take(h)  # --repr full: the recorder's hook calls repr(h) as the call starts


class _Collecting:
    def __repr__(self) -> str:
        gc.collect()  # the cycle's generator is closed right here, inside the recorder's hook
        return "Collecting()"


def _collected_in_repr() -> None:
    cycle = [_gen()]
    cycle.append(cycle)  # (only the collector frees it)
    next(cycle[0])
    del cycle
    _take(_Collecting())


@pytest.mark.parametrize("program, label", [(_closed_in_repr, "Holder()"), (_collected_in_repr, "Collecting()")])
@pytest.mark.parametrize("recorder", RECORDERS)
def test_generator_closed_in_a_hook_ends_with_generator_exit(recorder: str, program, label: str) -> None:
    """3.12's C recorder watches the generator map's entries lazily, just before a hook runs
    Python code (genwatch.c): before, such a generator ended `unfinished`."""
    gc.disable()  # (only the __repr__'s collection frees the cycle)
    try:
        trace = record(program, recorder, args="full", flush_interval=3600)
    finally:
        gc.enable()
    lines = shape(trace)
    assert lines[:2] == [f"{program.__name__}() = None", "  _gen() ! GeneratorExit"]
    assert lines[-1] == f"  _take(holder={label}) = 1"
