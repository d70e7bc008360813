"""The program's output (stdout and stderr of `flowtrace-tui run`), as plain text.

The app reads the log file (model/output_log.py: only the new bytes, cleaned of escape
sequences) and appends what it got here; this pane shows it under a title line.
"""

from __future__ import annotations

import os

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Log

MAX_LINES = 5000
SHOWN_MAX = 200_000  # characters of `shown_text` kept


class LogPane(Vertical):
    """A title line and the tail of the program's output. Hidden until the app adds `-shown`."""

    DEFAULT_CSS = """
    LogPane {
        height: 35%;
        display: none;
        border-top: hkey $primary 50%;
        &.-shown { display: block; }
        #log-title { height: 1; width: 100%; background: $panel; color: $foreground 80%; padding: 0 1; }
        Log { height: 1fr; background: $surface; }
    }
    """

    def __init__(self, path: str | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path = path
        self.shown_text = ""  # everything shown so far (bounded like the Log), for tests and copying
        self._status = ""

    def compose(self) -> ComposeResult:
        yield Label(self._title(), id="log-title")
        yield Log(max_lines=MAX_LINES, auto_scroll=True)

    def _title(self) -> str:
        name = os.path.basename(self.path) if self.path else "no output log"
        return f"Program output ({name}){'  ' + self._status if self._status else ''}  ·  o hides"

    def _show_title(self) -> None:
        if self.is_mounted:
            self.query_one("#log-title", Label).update(self._title())

    def set_path(self, path: str) -> None:
        """The log file whose output this pane shows (for the title)."""
        self.path = path
        self._show_title()

    def set_status(self, status: str) -> None:
        """Text after the title, e.g. the program's exit status."""
        self._status = status
        self._show_title()

    def append(self, text: str) -> None:
        """Show more of the program's output (already plain text)."""
        if text:
            self.shown_text = (self.shown_text + text)[-SHOWN_MAX:]
            self.query_one(Log).write(text)
