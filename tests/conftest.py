"""Shared fixtures. `recorder_name` runs a test once per recorder that can run here
("python", and "c" when the extension is built); FLOWTRACE_TEST_RECORDERS=python,c narrows it."""

from __future__ import annotations

import os

import pytest


def _recorders() -> list[str]:
    from flowtrace.recorder import available_recorders

    names = available_recorders()
    wanted = os.environ.get("FLOWTRACE_TEST_RECORDERS")
    if wanted:
        names = [n for n in names if n in wanted.split(",")]
    return names


@pytest.fixture(params=_recorders())
def recorder_name(request: pytest.FixtureRequest) -> str:
    return request.param
