"""Coroutines, async generators and asyncio tasks: one call per coroutine, tasks labelled with
their creator, cancellation and timeouts balanced."""

from __future__ import annotations

import asyncio

from treeutil import check_balanced, record, shape


def square(x):
    return x * x


async def leaf(n):
    await asyncio.sleep(0)
    return square(n)


async def parent_coro():
    a = await leaf(2)
    b = await leaf(3)
    return a + b


def run_simple():
    return asyncio.run(parent_coro())


def test_awaited_coroutines(recorder_name):
    trace = record(run_simple, recorder_name)
    assert shape(trace, marks=True, tasks=True) == [
        "run_simple() = 13",
        "  parent_coro() = 13 [suspend,resume<run_simple,suspend,resume<run_simple] {#1}",
        "    leaf(n=2) = 4 [suspend,resume<parent_coro] {#1}",
        "      square(x=2) = 4 {#1}",
        "    leaf(n=3) = 9 [suspend,resume<parent_coro] {#1}",
        "      square(x=3) = 9 {#1}",
    ]
    task = trace.tasks[trace.calls[1].task]
    assert task.root == 2 and task.creator == 1
    check_balanced(trace)


async def gather_main():
    return await asyncio.gather(leaf(1), leaf(2))


def run_gather():
    return asyncio.run(gather_main())


def test_gather_tasks_and_creator(recorder_name):
    trace = record(run_gather, recorder_name)
    lines = shape(trace, tasks=True)
    assert lines == [
        "run_gather() = [1, 4]",
        "  gather_main() = [1, 4] {#1}",
        "  leaf(n=1) = 1 {#2}",
        "    square(x=1) = 1 {#2}",
        "  leaf(n=2) = 4 {#3}",
        "    square(x=2) = 4 {#3}",
    ]
    gm = next(c for c in trace.calls if c.qualname == "gather_main")
    assert trace.tasks[2].creator == gm.id and trace.tasks[3].creator == gm.id
    assert trace.call(trace.tasks[2].root).qualname == "leaf"
    assert trace.tasks[1].creator == 1  # asyncio.run's task: created by run_gather


async def sleeper():
    await asyncio.sleep(10)


async def cancel_main():
    t = asyncio.create_task(sleeper(), name="victim")
    await asyncio.sleep(0)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        return "cancelled"


def test_create_task_and_cancel(recorder_name):
    trace = record(lambda: asyncio.run(cancel_main()), recorder_name)
    assert shape(trace, marks=True, tasks=True) == [
        "<lambda>() = 'cancelled'",
        # awaiting the cancelled task throws CancelledError into cancel_main, which catches it
        "  cancel_main() = 'cancelled' [suspend,resume<<lambda>,suspend,throw<<lambda>,"
        "handled:asyncio.exceptions.CancelledError] {#1}",
        "  sleeper() ! asyncio.exceptions.CancelledError [suspend,throw<<lambda>] {victim}",
    ]
    victim = next(t for t in trace.tasks.values() if t.name == "victim")
    assert trace.call(victim.creator).qualname == "cancel_main"


async def cancel_before_start():
    t = asyncio.create_task(sleeper(), name="never-ran")
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        return "gone"


def test_task_cancelled_before_first_step(recorder_name):
    # THROW with no START: the coroutine's call starts at the throw and ends at once
    trace = record(lambda: asyncio.run(cancel_before_start()), recorder_name)
    lines = shape(trace, marks=True, tasks=True)
    assert lines[-1] == "  sleeper() ! asyncio.exceptions.CancelledError [throw<<lambda>] {never-ran}"
    assert not trace.calls[-1].partial
    check_balanced(trace)


async def timeout_main():
    try:
        async with asyncio.timeout(0.01):
            await sleeper()
    except TimeoutError:
        return "timeout"


def test_timeout(recorder_name):
    trace = record(lambda: asyncio.run(timeout_main()), recorder_name)
    assert shape(trace, tasks=True) == [
        "<lambda>() = 'timeout'",
        "  timeout_main() = 'timeout' {#1}",
        "    sleeper() ! asyncio.exceptions.CancelledError {#1}",
    ]


async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield square(i)


async def agen_main():
    out = [v async for v in agen(2)]
    g = agen(5)
    await g.__anext__()
    await g.aclose()
    return out


def test_async_generator(recorder_name):
    trace = record(lambda: asyncio.run(agen_main()), recorder_name)
    lines = shape(trace)
    assert lines[0] == "<lambda>() = [0, 1]"
    assert lines[1] == "  agen_main() = [0, 1]"
    names = [line.strip().split("(")[0] for line in lines[2:]]
    # the comprehension is inlined (PEP 709) except that async comprehensions are not:
    assert "agen" in names and names.count("square") == 3
    ends = [c.end for c in trace.calls if c.qualname == "agen"]
    assert ends == ["return", "raise"]  # exhausted; closed by aclose() (GeneratorExit)
    check_balanced(trace)


async def tg_main():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(leaf(4), name="tg-child")
    return "ok"


def test_taskgroup_creator(recorder_name):
    trace = record(lambda: asyncio.run(tg_main()), recorder_name)
    child = next(t for t in trace.tasks.values() if t.name == "tg-child")
    assert trace.call(child.creator).qualname == "tg_main"
    assert shape(trace, tasks=True) == [
        "<lambda>() = 'ok'",
        "  tg_main() = 'ok' {#1}",
        "  leaf(n=4) = 16 {tg-child}",
        "    square(x=4) = 16 {tg-child}",
    ]
