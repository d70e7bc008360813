"""A pretend web crawler on asyncio: tasks, gather, a timeout and a cancelled task.

There is no network: fetching a page is an `asyncio.sleep`, and the "web" is a dict. The output
is the same on every run (pages are reported in sorted order).
"""

from __future__ import annotations

import asyncio

WEB = {
    "/": ["/docs", "/blog", "/about"],
    "/docs": ["/docs/install", "/docs/usage"],
    "/docs/install": [],
    "/docs/usage": ["/"],
    "/blog": ["/blog/2024", "/slow"],
    "/blog/2024": [],
    "/about": [],
    "/slow": [],
}
DELAY = {"/slow": 1.0}  # seconds; longer than the crawler waits


async def fetch(url: str) -> list[str]:
    """Pretend to download `url` and return the links on it."""
    await asyncio.sleep(DELAY.get(url, 0.001))
    if url not in WEB:
        raise LookupError(f"404 {url}")
    return WEB[url]


async def crawl_page(url: str, seen: set[str], timeout: float) -> None:
    try:
        links = await asyncio.wait_for(fetch(url), timeout)
    except TimeoutError:
        print(f"timed out: {url}")
        return
    new = [link for link in links if link not in seen]
    seen.update(new)
    await asyncio.gather(*(crawl_page(link, seen, timeout) for link in new))


async def idle_watchdog() -> None:
    await asyncio.sleep(3600)  # cancelled when the crawl is done


async def main() -> None:
    seen = {"/"}
    watchdog = asyncio.create_task(idle_watchdog(), name="watchdog")
    await crawl_page("/", seen, timeout=0.05)
    watchdog.cancel()
    try:
        await watchdog
    except asyncio.CancelledError:
        print("watchdog cancelled")
    print(f"crawled {len(seen)} pages: {sorted(seen)}")


if __name__ == "__main__":
    asyncio.run(main())
