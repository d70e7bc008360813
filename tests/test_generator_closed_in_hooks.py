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


class _Plain:
    def __repr__(self) -> str:
        return "Plain()"


def _gen_running_in_a_hook():
    try:
        yield 1
        _take(_Plain())  # a hook runs Python while this generator runs (its map record running)
        yield 2
        yield 3
    finally:
        pass


def _closed_after_running_in_a_hook() -> None:
    g = _gen_running_in_a_hook()
    next(g)
    next(g)  # suspended again without a hook since: its watch is the one taken while it ran
    h = _Holder(g)
    del g
    _take(h)


@pytest.mark.parametrize("recorder", RECORDERS)
def test_generator_watched_while_running_then_closed_in_a_hook(recorder: str) -> None:
    """3.12's lazy watch also takes a running generator's (its record's code is NULL while it
    runs: genwatch_lazy checks the frame's code against its code_idx's): the hook that ran while
    it ran was the last chance before its close in a later hook; unwatched, it ended `unfinished`."""
    gc.disable()
    try:
        trace = record(_closed_after_running_in_a_hook, recorder,
                       args="full", flush_interval=3600)
    finally:
        gc.enable()
    lines = shape(trace)
    assert lines[:3] == ["_closed_after_running_in_a_hook() = None",
                         "  _gen_running_in_a_hook() ! GeneratorExit",
                         "    _take(holder=Plain()) = 1"]
    assert lines[-1] == "  _take(holder=Holder()) = 1"
