"""The status line: file, calls, threads/tasks, duration, finished or not, filters, search hits."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def show(self, parts: list[str]) -> None:
        """Join non-empty parts with separators (parts may hold Textual markup)."""
        self.update(" │ ".join(p for p in parts if p))
