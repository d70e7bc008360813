"""A suspended generator closed while one of the recorder's own hooks runs Python code (here a
program's __repr__ in --repr full, which drops the generator's last reference) ends `raise
GeneratorExit`, as its close's unwind would have -- CPython delivers no event inside a monitoring
callback, so only the generator watch (genwatch.c) sees it."""

from __future__ import annotations

import sys

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


@pytest.mark.parametrize("recorder", [
    pytest.param(r, marks=pytest.mark.xfail(
        r == "c" and sys.version_info < (3, 13), strict=True,
        reason="3.12's C recorder watches no generator (GENWATCH is 3.13+): watching every one "
               "costs +21 M instructions on the generators workload (ft/viz 1.00 -> 1.09, "
               "e2e.py --instructions, scale 3); a watch taken only when a hook runs Python is "
               "still to build"))
    for r in RECORDERS])
def test_generator_closed_in_a_hook_ends_with_generator_exit(recorder: str) -> None:
    trace = record(_closed_in_repr, recorder, args="full", flush_interval=3600)
    assert shape(trace)[:2] == ["_closed_in_repr() = None", "  _gen() ! GeneratorExit"]
