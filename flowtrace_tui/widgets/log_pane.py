"""The program's output (stdout and stderr of `flowtrace-tui run`), tailed from its log file.

The child writes to a file, never to our terminal; this pane reads what was appended since the
last look (a few times a second, only the new bytes) and shows it as plain text: escape
sequences and other control characters are dropped so that the program cannot draw on the UI.
"""

from __future__ import annotations

import codecs
import os
import re

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Log

POLL_S = 0.2
MAX_LINES = 5000
READ_MAX = 1 << 20  # per look: a program that prints a flood cannot stall the UI

# CSI/OSC escape sequences, then any other control character except newline and tab
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """Plain text of program output: CRLF as LF, escapes and control characters removed."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


class LogPane(Vertical):
    """A title line and the tail of one log file. Hidden until the app adds `-shown`."""

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
        self._read_offset = 0
        self.shown_text = ""  # everything shown so far (bounded like the Log), for tests and copying
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._status = ""

    def compose(self) -> ComposeResult:
        yield Label(self._title(), id="log-title")
        yield Log(max_lines=MAX_LINES, auto_scroll=True)

    def _title(self) -> str:
        name = os.path.basename(self.path) if self.path else "no output log"
        return f"Program output ({name}){'  ' + self._status if self._status else ''}  ·  o hides"

    def on_mount(self) -> None:
        if self.path:
            self.follow(self.path)

    def follow(self, path: str) -> None:
        """Start showing the file `path` (polled every POLL_S seconds)."""
        first = self.path is None or not hasattr(self, "_timer")
        self.path = path
        self.query_one("#log-title", Label).update(self._title())
        self.poll()
        if first:
            self._timer = self.set_interval(POLL_S, self.poll)

    def set_status(self, status: str) -> None:
        """Text after the title, e.g. the program's exit status."""
        self._status = status
        if self.is_mounted:
            self.query_one("#log-title", Label).update(self._title())

    def poll(self) -> int:
        """Show what was appended to the log since the last poll; returns the bytes read."""
        if not self.path:
            return 0
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._read_offset)
                chunk = fh.read(READ_MAX)
        except OSError:
            return 0
        if not chunk:
            return 0
        self._read_offset += len(chunk)
        text = clean(self._decoder.decode(chunk))
        if text:
            self.shown_text = (self.shown_text + text)[-200_000:]
            self.query_one(Log).write(text)
        return len(chunk)
