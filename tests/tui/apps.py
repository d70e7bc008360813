"""Explorer apps over in-memory sessions for Pilot and snapshot tests (the source is injected),
and how those tests wait for them (`settle`, `until`). The sessions come from trace_builder."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.source import StepResult, TraceSource

from trace_builder import sample_program, threads_program


def source(data: bytes, name: str = "sample.ftr") -> TraceSource:
    return TraceSource(ChunkReader.from_bytes(data, name=name), len(data))


def sample_app(**kw) -> FlowtraceApp:
    return FlowtraceApp(source(sample_program().data()), **kw)


def threads_app(**kw) -> FlowtraceApp:
    return FlowtraceApp(source(threads_program().data(), "shop.ftr"), **kw)


class GatedSource(TraceSource):
    """Reads one chunk per step and, once it holds a call, waits before each further step until
    the test opens `gate`: loading that is still under way for exactly as long as the test
    needs (no timing, so a loaded machine cannot make it finish early)."""

    def __init__(self, reader: ChunkReader, size: int) -> None:
        super().__init__(reader, size)
        self.gate = threading.Event()

    def step(self) -> StepResult:
        self.reader.read_size = 16
        if self.data.n > 0:
            self.gate.wait(60)  # (a bound, so that a broken test cannot hang the suite)
        return super().step()


def sync(fn):
    """Run an async test with asyncio.run (no pytest-asyncio needed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def settle(pilot, timeout: float = 60.0) -> None:
    """Wait until loading and searching are over and the screen is drawn. Fails loudly when
    that does not happen within `timeout` seconds (with what the status line says), or when a
    live index update failed on the way (the pipeline counts them; strict under tests, see
    tests/conftest.py). A condition, not a count of turns: a loaded machine only makes it slower."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    turns = 0
    while not (not app.loading and not app.searching and app.rows is not None):
        if time.monotonic() > deadline:
            raise AssertionError(f"the app did not settle in {timeout} s: {' | '.join(app.status_parts())}")
        turns += 1
        # lets every pending message be handled; after the first turns, also lets the workers run
        await pilot.pause(None if turns < 50 else 0.01)
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert app.pipeline.grow_failures == 0, app.pipeline.last_failure


async def until(pilot, cond, timeout: float = 10.0) -> None:
    """Wait (handling messages) until `cond()` holds; fail loudly after `timeout` seconds.
    For what only a clock or another process moves on (a live file growing, a program ending)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout} s: {' | '.join(pilot.app.status_parts())}")
        await pilot.pause(0.02)


def screen_lines(app) -> list[str]:
    """The text on the terminal now, one string per line (the top screen, as a user sees it)."""
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip) for strip in strips]

