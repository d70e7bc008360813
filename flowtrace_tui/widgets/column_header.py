"""One-line header over the call tree, aligned with its right-hand columns."""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .columns import Col, columns_for, columns_width


class ColumnHeader(Widget):
    DEFAULT_CSS = """
    ColumnHeader {
        height: 1;
        background: $panel;
        color: $foreground 80%;
        text-style: bold;
    }
    """

    # cells at the right that the rows below do not use (the tree's vertical scroll bar): the
    # header lays out its columns for the rows' width, so that each title sits over its figures
    gutter: reactive[int] = reactive(0)

    def __init__(self, *, columns: Callable[[int], list[Col]] = columns_for, first: str = "call",
                 id: str | None = None) -> None:
        """`columns`: the tree's columns at a width; `first`: the title over the names."""
        super().__init__(id=id)
        self.columns = columns
        self.first = first

    def render(self) -> Text:
        width = max(0, self.size.width - self.gutter)
        cols = self.columns(width)
        left = max(0, width - columns_width(cols))
        text = Text(f" {self.first}".ljust(left)[:left])
        for col in cols:
            text.append(col.title.rjust(col.width - 1) + " ")
        return text
