"""Shared fixtures.

`recorder_name` runs a recorder-dependent test once per recorder named in
FLOWTRACE_TEST_RECORDERS (comma-separated, default "python,c": the reference recorder and the
C recorder, checked against the same exact trees), keeping only those that can run here (the
C recorder when its extension is built)."""

from __future__ import annotations

import os

import pytest


def _recorders() -> list[str]:
    from flowtrace.recorder import available_recorders

    wanted = os.environ.get("FLOWTRACE_TEST_RECORDERS", "python,c").split(",")
    return [n for n in available_recorders() if n in wanted]


@pytest.fixture(params=_recorders())
def recorder_name(request: pytest.FixtureRequest) -> str:
    return request.param
