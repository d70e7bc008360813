"""What a test's session says about the test: its file name, and how the test ended.

`session_file_name(nodeid)` names the session after the node id, safe on every file system
(no path separators, no character Windows forbids, no reserved device name, at most 150
characters) and unique: when the name is not the node id spelled plainly (`::` and `/` as
`__`), a short hash of the node id is added, so parametrized ids that differ only in
characters replaced here still get different files.

`TestOutcome` follows a test through its phase reports and gives the `test` object that the
plugin writes in the session's ENDS chunk (docs/FORMAT.md, "Test sessions").
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

MAX_NAME = 150  # far below every file system's 255-byte limit, with room for a hash and .ftr
_UNSAFE = re.compile(r'[^A-Za-z0-9._\-\[\]=,+@]')  # also every non-ASCII character: one spelling
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
KEPT_OUTCOMES = ("failed", "error")


def session_file_name(nodeid: str) -> str:
    """`tests/test_x.py::TestA::test_y[1-2]` -> `tests__test_x.py__TestA__test_y[1-2].ftr`."""
    path, sep, names = nodeid.partition("::")
    plain = path.replace("/", "__") + sep.replace("::", "__") + names.replace("::", "__")
    name = _UNSAFE.sub("_", plain).strip(" .") or "test"
    # the plain spelling reads back only when "/" and "__" come from nowhere else
    lossy = name != plain or "__" in nodeid or "/" in names or len(name) > MAX_NAME
    if name.split(".")[0].upper() in _RESERVED:
        name, lossy = "_" + name, True
    if lossy:
        digest = hashlib.sha1(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        name = f"{name[:MAX_NAME]}-{digest}"
    return name + ".ftr"


class TestOutcome:
    """The reports of one test's phases, as they come (`add`), and what they add up to."""

    __test__ = False  # not a test class, whatever pytest's name rules say

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.phases: dict[str, str] = {}  # when -> passed / failed / skipped
        self.duration_s = 0.0
        self.wasxfail = False
        self.failed_phase: str | None = None
        self.exception: str | None = None  # the failing exception's text, as the recorder writes it
        self.location: dict[str, Any] | None = None  # where pytest says it crashed
        self.message: str | None = None  # pytest's one-line crash message

    def add(self, report: Any, excinfo: Any, args_mode: str) -> None:
        """One phase's report (and the exception of its CallInfo, or None)."""
        when = report.when
        self.phases[when] = report.outcome
        self.duration_s += float(getattr(report, "duration", 0.0) or 0.0)
        if hasattr(report, "wasxfail"):
            self.wasxfail = True
        if report.failed and self.failed_phase is None:
            self.failed_phase = when
            if excinfo is not None:
                from ..reprs import exception_text

                self.exception = exception_text(excinfo.value, "full" if args_mode == "full" else "safe")
            crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
            if crash is not None:
                self.location = {"file": str(crash.path), "line": int(crash.lineno)}
                self.message = str(crash.message)
            elif report.longrepr is not None:
                lines = str(report.longrepr).strip().splitlines()
                self.message = lines[-1] if lines else None

    @property
    def outcome(self) -> str:
        """passed, failed, error, skipped, xfailed or xpassed -- pytest's own words."""
        phases = self.phases
        if phases.get("setup") == "failed":
            return "error"
        if phases.get("call") == "failed":
            return "failed"
        if phases.get("teardown") == "failed":
            return "error"
        if "skipped" in (phases.get("setup"), phases.get("call")):
            return "xfailed" if self.wasxfail else "skipped"
        if phases.get("call") == "passed" and self.wasxfail:
            return "xpassed"
        return "passed" if phases.get("call") == "passed" else "unfinished"

    def ends(self) -> dict[str, Any]:
        """The ENDS chunk's `test` object."""
        return {
            "nodeid": self.nodeid, "outcome": self.outcome, "phases": dict(self.phases),
            "duration_s": round(self.duration_s, 6), "failed_phase": self.failed_phase,
            "exception": self.exception, "message": self.message, "location": self.location,
        }
