"""With the event loop's own code recorded (`--include asyncio`), the tree still nests in time:
every call starts after its parent and, both finished, ends before it. A task's root coroutine
hangs from the nearest call of the program's own code (the one that runs the loop), not from
the loop step (`Handle._run`) that ran its first step and ended long before it -- so the
program's calls keep the place they have when asyncio is not recorded. Both recorders."""

from __future__ import annotations

import asyncio

from treeutil import check_balanced, record, time_nesting_errors


def work(n):
    return n * n


async def fetch(n):
    for _ in range(n % 3):  # steps without timers: the same interleaving every run
        await asyncio.sleep(0)
    return work(n)


async def ticker(k):
    for i in range(k):
        await asyncio.sleep(0)
        yield i


async def consumer(q):
    total = 0
    while (item := await q.get()) is not None:
        total += work(item)
    return total


async def never_started():
    return work(0)


async def main():
    rs = await asyncio.gather(*(fetch(i) for i in range(4)))
    async with asyncio.TaskGroup() as tg:
        for i in range(3):
            tg.create_task(fetch(i))
    background = asyncio.create_task(fetch(7))  # awaited later, after other steps
    q: asyncio.Queue = asyncio.Queue()
    cons = asyncio.create_task(consumer(q))
    async for i in ticker(3):
        await q.put(i)
    await q.put(None)
    try:
        await asyncio.wait_for(asyncio.sleep(1), 0.001)
    except TimeoutError:
        pass
    doomed = asyncio.create_task(never_started())
    doomed.cancel()  # thrown into before its first step
    try:
        await doomed
    except asyncio.CancelledError:
        pass
    return sum(rs) + await background + await cons


async def eager_main():
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
    t = asyncio.create_task(fetch(5))  # its first step runs inside create_task
    return await t


def program():
    return asyncio.run(main()), asyncio.run(eager_main())


def own_tree(trace) -> list[tuple[str, str | None]]:
    """(call, its nearest ancestor of this test module's code), for this module's calls."""
    def own(c):
        return c.function.module == __name__

    out = []
    for c in trace.calls:
        if not own(c):
            continue
        p = c.parent
        while p is not None and not own(trace.call(p)):
            p = trace.call(p).parent
        out.append((c.qualname, trace.call(p).qualname if p is not None else None))
    return out


def test_event_loop_recorded_with_the_program_nests_in_time(recorder_name: str) -> None:
    trace = record(program, recorder_name, include=["asyncio"])
    check_balanced(trace)
    names = {c.qualname for c in trace.calls}
    assert {"Handle._run", "BaseEventLoop._run_once", "Runner.run", "TaskGroup.__aexit__"} <= names  # the loop's code
    assert time_nesting_errors(trace) == []
    assert all(c.end != "unfinished" for c in trace.calls)


def test_program_calls_keep_their_place_whatever_is_included(recorder_name: str) -> None:
    plain = record(program, recorder_name)
    assert time_nesting_errors(plain) == []
    with_loop = record(program, recorder_name, include=["asyncio"])
    assert sorted(own_tree(with_loop)) == sorted(own_tree(plain))
    # the tasks' roots hang from program(), which ran the loops (the eager one from its creator)
    roots = [q for q, p in own_tree(plain) if p == "program"]
    assert sorted(roots) == sorted(["main", "eager_main", "consumer", "never_started", *["fetch"] * 8])
    assert ("fetch", "eager_main") in own_tree(plain)


async def quick(n):
    return n


def make_eager(n):
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(quick(i)) for i in range(n)]  # eager: each done before create_task returns
    addresses = {id(task) for task in tasks}
    del tasks  # freed: tasks made next are likely to take some of their addresses
    return addresses


def make_next(coros):
    loop = asyncio.get_running_loop()
    return [loop.create_task(coro) for coro in coros]


async def reused_addresses(n):
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
    coros = [quick(i) for i in range(n)]  # made first: they cannot take the tasks' memory
    freed = make_eager(n)
    tasks = make_next(coros)
    return len(freed & {id(task) for task in tasks})


def test_a_task_at_a_dead_eager_tasks_address_has_its_own_creator(recorder_name: str) -> None:
    # An eager task has run by the time create_task returns; the creator noted then must not
    # stay behind for the next task that takes its address (it was make_eager's, not make_next's).
    reused = []

    def run_loop():
        reused.append(asyncio.run(reused_addresses(50)))

    trace = record(run_loop, recorder_name)
    assert reused[0] > 0  # the case this test is about did happen
    creators = [trace.call(t.creator).qualname.rsplit(".", 1)[-1] for t in sorted(trace.tasks.values(), key=lambda t: t.id)]
    assert creators == ["run_loop", *["make_eager"] * 50, *["make_next"] * 50]
