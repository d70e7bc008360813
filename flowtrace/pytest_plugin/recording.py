"""The recording plugin: each test into its own session (registered by `--flowtrace`).

A session starts before the test's setup and stops after its teardown report, with the test's
outcome in its ENDS chunk (`outcome.TestOutcome`); its roots are the three phases
(`phases.PhaseRoots`). Sessions of tests that passed (or were skipped) are deleted unless
`--flowtrace=all`; the others are listed in the terminal summary with the command that opens
them. Under pytest-xdist each worker records its own tests; the teardown report carries the
kept session's path to the controller, which prints the summary.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from ..recorder import fallback_warning
from ..recorder.base import RecorderConfig
from ..session import Session
from ..untraced import suspended
from .outcome import KEPT_OUTCOMES, TestOutcome, session_file_name
from .phases import PhaseRoots

EXCLUSIVE = "pytest --flowtrace records each test"
_GITIGNORE = "# Created by flowtrace's pytest plugin: test sessions, not sources.\n*\n"


class _Recording:
    """One test being recorded."""

    def __init__(self, item: Any, session: Session, path: Path, nodeid: str) -> None:
        self.item = item
        self.session = session
        self.path = path
        self.outcome = TestOutcome(nodeid)
        self.done = False


class FlowtracePlugin:
    """Registered by the entry point when `--flowtrace` (or the ini option) asks for it."""

    def __init__(self, config: Any, mode: str) -> None:
        self.config = config
        self.keep_all = mode == "all"
        given = config.getoption("flowtrace_dir")
        base = Path(config.invocation_params.dir)
        self.directory = (base / given) if given else (Path(config.rootpath) / ".flowtrace")
        self.recorder_config = RecorderConfig(
            args=config.getoption("flowtrace_args") or "safe",
            include=list(config.getoption("flowtrace_include") or []),
            exclude=list(config.getoption("flowtrace_exclude") or []),
        )
        self.roots = PhaseRoots()
        self.roots.install()
        self.current: _Recording | None = None
        self.kept: list[tuple[str, str, str]] = []  # (node id, outcome, session path)
        self.problems: list[str] = []

    def pytest_unconfigure(self, config: Any) -> None:
        self.roots.uninstall()

    # -- one test --------------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Any:
        rec = self._start(item)
        try:
            return (yield)
        finally:
            if rec is not None and not rec.done:  # interrupted (Ctrl-C, pytest.exit): keep it
                self._finish(rec, keep=True)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        report = yield  # outermost: the report as every other plugin (xfail) left it
        rec = self.current
        if rec is not None and rec.item is item:
            with suspended():  # while recording: the report's properties are pytest's code
                rec.outcome.add(report, call.excinfo, self.recorder_config.args)
            if call.when == "teardown":
                outcome = rec.outcome.outcome
                if self._finish(rec, keep=self.keep_all or outcome in KEPT_OUTCOMES):
                    report.flowtrace_session = str(rec.path)  # travels to the xdist controller
                    report.flowtrace_outcome = outcome
        return report

    def pytest_runtest_logreport(self, report: Any) -> None:
        path = getattr(report, "flowtrace_session", None)
        if path and report.when == "teardown":
            self.kept.append((report.nodeid, getattr(report, "flowtrace_outcome", "?"), path))

    def _start(self, item: Any) -> _Recording | None:
        # What is asked of pytest (item.nodeid is a property: pytest's code) or of the recorder
        # package is asked before recording starts: `--flowtrace-include '*'` would record it.
        nodeid = item.nodeid
        fallback = fallback_warning()
        path = self.directory / session_file_name(nodeid)
        try:
            self._make_directory()
            session = Session(
                path, self.recorder_config, command="pytest", exclusive=EXCLUSIVE,
                meta={"pytest": {"nodeid": nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER")}},
            )
            session.start()
        except Exception as exc:  # no free tool id, a recording already running, unwritable dir
            self._problem(f"{nodeid} not recorded: {exc}")
            return None
        if session.recorder_name == "python":  # a built C recorder that failed to import: said once
            for line in (fallback or "").splitlines():
                self._problem(line.removeprefix("flowtrace: "))
        self.current = _Recording(item, session, path, nodeid)
        self.roots.active = True
        return self.current

    def _finish(self, rec: _Recording, keep: bool) -> bool:
        """Stop the test's session; delete the file unless `keep`. True if it was kept."""
        rec.done = True
        self.roots.active = False
        self.current = None
        with suspended():
            test = rec.outcome.ends()
        rec.session.stop(error=test["exception"] if test["outcome"] in KEPT_OUTCOMES else None,
                         extra={"test": test})
        if rec.session.error:
            self._problem(rec.session.error)
        if keep:
            return True
        try:
            os.unlink(rec.path)
        except OSError:
            pass
        return False

    def _make_directory(self) -> None:
        if self.directory.is_dir():
            return
        try:
            self.directory.mkdir(parents=True)
        except FileExistsError:  # another xdist worker made it meanwhile
            return
        try:
            (self.directory / ".gitignore").write_text(_GITIGNORE)
        except OSError:
            pass

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    # -- the summary -------------------------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        tr.write_sep("-", "flowtrace")
        for text in self.problems[:5]:
            tr.write_line(f"flowtrace: {text}", yellow=True)
        if not self.kept:
            why = "" if self.keep_all else " (no test failed; --flowtrace=all keeps every test's)"
            tr.write_line(f"flowtrace: no session kept{why}")
            return
        for nodeid, outcome, path in sorted(self.kept, key=lambda k: k[2]):
            tr.write_line(f"{outcome.upper()} {nodeid}")
            tr.write_line(f"    flowtrace-tui {shlex.quote(self._shown(path))}")
        where = self._shown(str(self.directory))
        tr.write_line(f"{len(self.kept)} session{'s' if len(self.kept) != 1 else ''} in {where}; "
                      f"pick one: flowtrace-tui {shlex.quote(where + os.sep)}")

    def _shown(self, path: str) -> str:
        """`path` relative to where pytest was started, when it is under it."""
        base = str(self.config.invocation_params.dir)
        rel = os.path.relpath(path, base)
        return path if rel.startswith("..") else rel
