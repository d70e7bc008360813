"""StopIteration/StopAsyncIteration that only carry CPython's iteration protocol (an awaited
result delivered at SEND, the end of an `async for`, a thrown-into subgenerator's result) are
not exception marks; the same exceptions raised or caught by the program still are. Both
recorders, exact trees."""

from __future__ import annotations

import asyncio

from treeutil import check_balanced, record, shape


async def leaf(n):
    await asyncio.sleep(0)
    return n > 0


async def gathers():
    return await asyncio.gather(leaf(1), leaf(2))


def run_gather():
    return asyncio.run(gathers())


def test_awaited_gather_result_is_not_a_raise(recorder_name):
    # CPython delivers the gather future's result as StopIteration([True, True]) raised at the
    # awaiting coroutine's SEND: no `raise` mark on gathers().
    trace = record(run_gather, recorder_name)
    assert shape(trace, marks=True) == [
        "run_gather() = [True, True]",
        "  gathers() = [True, True] [suspend,resume<run_gather]",
        "  leaf(n=1) = True [suspend,resume<run_gather]",
        "  leaf(n=2) = True [suspend,resume<run_gather]",
    ]
    check_balanced(trace)


def next_of_empty():
    try:
        next(iter([]))
    except StopIteration:
        return "caught"


def test_user_stop_iteration_is_still_marked(recorder_name):
    trace = record(next_of_empty, recorder_name)
    assert shape(trace, marks=True) == [
        "next_of_empty() = 'caught' [raise:StopIteration,handled:StopIteration]",
    ]


async def agen():
    yield 1


async def async_for_then_anext():
    seen = [x async for x in agen()]  # the comprehension's loop end: protocol
    async for x in agen():  # the loop end: protocol
        seen.append(x)
    ag = agen()
    seen.append(await ag.__anext__())  # the value arrives at SEND: protocol
    try:
        await ag.__anext__()  # the program awaits an exhausted generator: a real exception
    except StopAsyncIteration:
        seen.append("end")
    return seen


def run_async_for():
    return asyncio.run(async_for_then_anext())


def test_async_for_end_is_not_marked_but_explicit_anext_is(recorder_name):
    trace = record(run_async_for, recorder_name)
    assert shape(trace, marks=True) == [
        "run_async_for() = [1, 1, 1, 'end']",
        "  async_for_then_anext() = [1, 1, 1, 'end'] [raise:StopAsyncIteration,handled:StopAsyncIteration]",
        "    agen() = None [suspend,resume<async_for_then_anext]",
        "    agen() = None [suspend,resume<async_for_then_anext]",
        "    agen() = None [suspend,resume<async_for_then_anext]",
    ]
    check_balanced(trace)


def sub():
    try:
        yield 1
    except ValueError:
        return 5


def delegator():
    r = yield from sub()
    return r


def throw_through():
    g = delegator()
    next(g)
    try:
        g.throw(ValueError("stop"))
    except StopIteration as e:
        return e.value


def test_subgenerator_result_after_throw_is_not_handled_mark(recorder_name):
    # sub() catches the thrown ValueError and returns 5; CPython hands 5 to delegator() as a
    # StopIteration caught by CLEANUP_THROW: no `handled` mark on delegator(). throw_through()
    # does catch delegator()'s StopIteration: that one is the program's.
    trace = record(throw_through, recorder_name)
    assert shape(trace, marks=True) == [
        "throw_through() = 5 [raise:StopIteration,handled:StopIteration]",
        "  delegator() = 5 [suspend,throw<throw_through]",
        "    sub() = 5 [suspend,throw<throw_through,handled:ValueError]",
    ]
    check_balanced(trace)
