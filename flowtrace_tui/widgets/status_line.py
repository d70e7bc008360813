"""The status line: file, calls, threads/tasks, duration, finished or not, filters, search hits."""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.widgets import Static

SEPARATOR = " │ "


def fit_parts(items: list[tuple[int, str]], width: int) -> list[str]:
    """The parts (markup) that fit in `width` cells, in their order: while the line is too long,
    the least important part (highest number; the later one on a tie) is left out."""
    kept = [(imp, text, Content.from_markup(text).cell_length) for imp, text in items if text]

    def length() -> int:
        return sum(w for _, _, w in kept) + len(SEPARATOR) * max(0, len(kept) - 1)

    while len(kept) > 1 and length() > width:
        worst = max(range(len(kept)), key=lambda i: (kept[i][0], i))
        if kept[worst][0] == 0:  # what matters most stays (cut at the end if it must)
            break
        del kept[worst]
    return [text for _, text, _ in kept]


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    _items: list[tuple[int, str]] = []

    def show(self, items: list[tuple[int, str]]) -> None:
        """Show (importance, markup) parts joined by separators, fitted to the width."""
        self._items = items
        width = self.content_region.width or self.app.size.width - 2
        # one line whatever it says: no layout of the whole screen (the detail pane's body is
        # drawn again by each one), several times a second in a live session
        self.update(SEPARATOR.join(fit_parts(items, width)), layout=False)

    def on_resize(self, event: events.Resize) -> None:
        self.show(self._items)
