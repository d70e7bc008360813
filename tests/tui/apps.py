"""Explorer apps over in-memory sessions for Pilot and snapshot tests (the source is injected),
and how those tests wait for them (`settle`, `until`). The sessions come from trace_builder."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

import pytest

from flowtrace.ftr.chunks import ChunkReader
from textual import events
from textual.keys import _character_to_key
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
    await at_rest(pilot)
    assert app.pipeline.grow_failures == 0, app.pipeline.last_failure


def pending_screen_work(app) -> list[str]:
    """What the top screen still has to do before what it shows is final (empty: at rest).
    `pilot.pause` waits only for the messages queued when it is called: work they start --
    a message one posts (a bubbling one, a reactive's watcher), a callback after the next
    refresh (`call_after_refresh`: the footer recomposing for its width), the layout a mount
    asks for -- waits for the screen's update timer, which a loaded machine delays past it.
    (Textual is pinned: these are its private flags for exactly that work.)"""
    screen = app.screen
    flags = ("_layout_required", "_scroll_required", "_repaint_required", "_recompose_required")
    why = [f"screen {flag}" for flag in flags if getattr(screen, flag)]
    if screen._dirty_widgets:
        why.append(f"{len(screen._dirty_widgets)} widgets to draw")
    if screen._callbacks:
        why.append(f"{len(screen._callbacks)} callbacks after the refresh")
    for node in (app, *screen.walk_children(with_self=True)):
        if node._message_queue.qsize() or node._next_callbacks:
            why.append(f"messages for {node!r}")
        elif node is not screen and any(getattr(node, flag, False) for flag in flags[:1] + flags[3:]):
            why.append(f"{node!r} to lay out or compose")
    return why


async def at_rest(pilot, timeout: float = 30.0, turns: int = 3) -> None:
    """Wait until the screen has nothing left to do (`pending_screen_work`) at `turns`
    consecutive looks, each after a pause; fail loudly (with what is pending) after `timeout` s.
    A condition, not a time: a loaded machine only makes it slower."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < turns:
        if pilot.app._exit or not pilot.app.is_running:  # (exiting: nothing more is drawn)
            return
        await pilot.pause()
        why = pending_screen_work(pilot.app)
        quiet = 0 if why else quiet + 1
        if why and time.monotonic() > deadline:
            raise AssertionError(f"the screen did not come to rest in {timeout} s: {', '.join(why)}")


async def until(pilot, cond, timeout: float = 10.0) -> None:
    """Wait (handling messages) until `cond()` holds; fail loudly after `timeout` seconds.
    For what only a clock or another process moves on (a live file growing, a program ending)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout} s: {' | '.join(pilot.app.status_parts())}")
        await pilot.pause(0.02)


def notices(app) -> list[str]:
    """Every notification the app raises from now on (a list that grows). A test must not read
    app._notifications: Textual drops a notification from it once its few seconds (wall clock)
    are over, which a loaded machine reaches between the key that raised it and the assertion."""
    seen: list[str] = []
    notify = app.notify

    def recording(message, *args, **kwargs):
        seen.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = recording
    return seen


def screen_lines(app) -> list[str]:
    """The text on the terminal now, one string per line (the top screen, as a user sees it)."""
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip) for strip in strips]



def type_ahead(app, text: str) -> None:
    """Queue a key press for each character of `text` at once, as the terminal delivers what a
    user types while the app is busy (loading, following a big session): every key waits in the
    app's queue before the first one is handled. (`pilot.press` waits for each key to be handled
    before it sends the next, which no busy app does.) Textual is pinned: `_character_to_key` is
    the name pilot.press gives a character key."""
    for ch in text:
        key = ch if ch.isalnum() else _character_to_key(ch)
        event = events.Key(key, ch)
        event.set_sender(app)
        app.post_message(event)


def starve(monkeypatch) -> None:
    """Pilot as on a machine whose CPU other processes take (load 30-49 at nice -15 beside the
    tests): `pilot.press` waits between keys and `pilot.pause` waits for the app until the
    process "is idle", judged by it using under 1 ms of CPU in 20 ms of wall time
    (textual._wait.wait_for_idle), which a process that gets no CPU always is, busy or not.
    Here that wait returns at once: a test must wait for what it asserts (`at_rest`, `until`;
    conftest.py makes every press wait `at_rest`), not count on the pilot's wait; what a busy app does with keys typed meanwhile shows."""
    import textual.app
    import textual.pilot

    async def no_wait(min_sleep: float = 0.0, max_sleep: float = 0.0) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(textual.app, "wait_for_idle", no_wait)
    monkeypatch.setattr(textual.pilot, "wait_for_idle", no_wait)


@pytest.fixture
def starved(monkeypatch):
    """This test's Pilot as if starved of CPU (`starve`)."""
    starve(monkeypatch)
