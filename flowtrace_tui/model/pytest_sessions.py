"""Sessions written by flowtrace's pytest plugin: which test, how it ended, where it failed.

The plugin writes the test's node id in META (`pytest.nodeid`) and its outcome in ENDS (`test`,
docs/FORMAT.md "Test sessions"). `list_sessions(dir)` lists a directory of sessions from those
two chunks alone (failed and erroring tests first, then the newest first); `failure_call(data)`
finds the call in which the exception that failed the test was raised, so that the explorer
opens on it. No Textual here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from flowtrace.ftr import format as F
from flowtrace.ftr.summary import read_summary

PHASE_FILE = "<pytest phase>"  # flowtrace.pytest_plugin.phases.PHASE_FILE (not imported: no pytest here)
FAILED = ("failed", "error")


def test_info(ends: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ENDS chunk's `test` object, when the session is a test's."""
    test = (ends or {}).get("test")
    return test if isinstance(test, dict) else None


test_info.__test__ = False  # type: ignore[attr-defined]  # a name pytest would collect


@dataclass(frozen=True)
class SessionEntry:
    """One session file of a directory, as the picker lists it."""

    path: str
    test: str  # the node id, or the file name for a session that is not a test's
    outcome: str  # passed, failed, error, skipped, xfailed, xpassed; unfinished; unreadable
    duration_s: float | None
    calls: int | None
    mtime: float
    problem: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED


def read_entry(path: str) -> SessionEntry:
    """The picker's line for one file; a file that is not a readable session says why."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = 0.0
    name = os.path.basename(path)
    try:
        summary = read_summary(path)
    except F.FormatError as exc:
        return SessionEntry(path, name, "unreadable", None, None, mtime, str(exc))
    nodeid = (summary.meta.get("pytest") or {}).get("nodeid") if isinstance(summary.meta.get("pytest"), dict) else None
    test = test_info(summary.end)
    end = summary.end or {}
    calls = end.get("calls") if isinstance(end.get("calls"), int) else None
    if test is None:
        outcome = "unfinished" if summary.end is None else "finished"
        return SessionEntry(path, nodeid or name, outcome, None, calls, mtime, summary.problem)
    duration = test.get("duration_s")
    return SessionEntry(path, str(test.get("nodeid") or nodeid or name), str(test.get("outcome") or "?"),
                        float(duration) if isinstance(duration, (int, float)) else None, calls, mtime)


def list_sessions(directory: str) -> list[SessionEntry]:
    """Every `.ftr` file directly in `directory`: failed and erroring tests first, then the
    others; the newest first within each. OSError if the directory cannot be listed."""
    paths = [os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".ftr")]
    entries = [read_entry(p) for p in paths if os.path.isfile(p)]
    entries.sort(key=lambda e: (not e.failed, -e.mtime, e.test))
    return entries


def _phase_root(data: Any, phase: str) -> int:
    """The last root call that is the test phase `phase` (setup/call/teardown), else 0."""
    parent, func = data.col("parent"), data.col("func")
    for cid in np.flatnonzero(parent == 0)[::-1]:
        info = data.func(int(func[cid]))
        if cid > 0 and info is not None and info.file == PHASE_FILE and info.qualname == phase:
            return int(cid)
    return 0


def _raised_below(data: Any, node: int, text: str | None) -> int:
    """The call under `node` that the same exception left last: a child, or a generator that
    `node` resumed (a yield fixture's teardown), ending with `raise` and the same text; 0 if
    none (the exception was raised in `node` itself)."""
    how, val, t1 = data.col("how"), data.col("val"), data.col("t1")
    kids = np.flatnonzero(data.col("parent") == node)
    if data.n_marks:
        kind, other = data.mark_col("kind"), data.mark_col("other")
        resumed = data.mark_col("call")[((kind == F.MARK_RESUME) | (kind == F.MARK_THROW)) & (other == node)]
        kids = np.union1d(kids, resumed.astype(np.int64))
    kids = kids[(kids > 0) & (how[kids] == F.END_RAISE)]
    if text:
        kids = np.array([k for k in kids if not val[k] or data.strings.text(int(val[k])) == text], dtype=np.int64)
    if not len(kids):
        return 0
    best = int(kids[np.argmax(t1[kids])])
    if data.n_marks:  # caught in `node` after that call ended: a different exception
        mine = data.mark_col("call") == node
        handled = mine & (data.mark_col("kind") == F.MARK_HANDLED) & (data.mark_col("t") >= t1[best])
        if handled.any():
            return 0
    return best


def failure_call(data: Any) -> int:
    """The id of the call where the exception that failed the test was raised (the deepest call
    it left, following it down from the phase that failed), or that phase's root when the
    exception left no recorded call; 0 when the test did not fail or the session is not a test's."""
    test = test_info(data.ends)
    if test is None or test.get("outcome") not in FAILED or data.n == 0:
        return 0
    node = _phase_root(data, str(test.get("failed_phase") or ""))
    if not node:
        return 0
    text = test.get("exception") if isinstance(test.get("exception"), str) else None
    for _ in range(data.n):  # bounded: each step goes to another call
        below = _raised_below(data, node, text)
        if not below:
            break
        node = below
    return node
