"""asyncio: tasks that await small coroutines (~40k coroutine calls, suspend/resume marks)."""

import asyncio


async def leaf(i):
    if i % 4 == 0:
        await asyncio.sleep(0)
    return i * 2


async def worker(n):
    total = 0
    for i in range(n):
        total += await leaf(i)
    return total


async def main():
    return sum(await asyncio.gather(*(worker(2000) for _ in range(10))))


def run():
    return asyncio.run(main())
