"""Pilot tests wait for what they assert, also on a loaded machine.

`pilot.press` returns once the process "is idle" (textual._wait.wait_for_idle: under 1 ms of
CPU used in 20 ms), which a process that other processes starve of CPU always is: a test that
asserted right after a press then saw the keys not yet handled (27 tests of tests/tui failed so
when starved on purpose, the load flakes of earlier sessions among them). Here every press also
waits until the app has handled the keys (`apps.at_rest`: every queue empty, nothing left to
draw). FLOWTRACE_TEST_STARVED=1 runs every Pilot test as if starved (`apps.starved`): how to
find such a test without a loaded machine."""

from __future__ import annotations

import os

import pytest
from textual.pilot import Pilot

from .apps import at_rest, starve


@pytest.fixture(autouse=True)
def press_waits_for_the_app(monkeypatch):
    press = Pilot.press

    async def press_and_wait(self, *keys: str) -> None:
        await press(self, *keys)
        await at_rest(self)

    monkeypatch.setattr(Pilot, "press", press_and_wait)
    if os.environ.get("FLOWTRACE_TEST_STARVED") == "1":
        starve(monkeypatch)
