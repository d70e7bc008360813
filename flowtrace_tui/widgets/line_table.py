"""A table of text lines drawn on demand (ScrollView + render_line): the functions view's list
of functions and its list of callers, callees and calls.

It lays out what it is given: column layouts (titles, widths, alignment; the narrow terminal's
columns to leave out first), an optional header line that stays on top, and `count` lines got
from `line(i)` only when on screen (a table of 100,000 functions costs what is visible). A line
is either cells in one of the layouts or a section title, which the cursor skips. It posts
`Highlighted` when the cursor moves and `Chosen` on enter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

TITLE = -1  # TableLine.layout of a section title


@dataclass(frozen=True)
class Col:
    """A column: `width` cells (0: takes what is left, at least `width_min`), numbers `right`
    aligned; `drop`: columns with a higher number are left out first when the table is narrow
    (0: always shown)."""

    title: str
    width: int = 0
    right: bool = False
    drop: int = 0
    width_min: int = 12
    keep_end: bool = False  # a text too long loses its start (a file path), not its end


@dataclass(frozen=True)
class TableLine:
    """One line: `cells` in `layout` (an index into the table's layouts), or a section title
    (`layout` TITLE: its one cell spans the line; the cursor skips it). `tone`: "" or a
    component name's suffix ("error", "dim") for the whole line."""

    cells: tuple[str, ...]
    layout: int = 0
    tone: str = ""


def fit_columns(cols: tuple[Col, ...], width: int) -> list[tuple[int, int]]:
    """(column index, width) of the columns shown in `width` cells: the droppable ones go,
    highest `drop` first, while the rest does not fit; the flexible column takes what is left."""
    shown = list(range(len(cols)))

    def need() -> int:
        return sum(cols[i].width or cols[i].width_min for i in shown) + len(shown) - 1

    for i in sorted((i for i in shown if cols[i].drop), key=lambda i: -cols[i].drop):
        if need() <= width:
            break
        shown.remove(i)
    rest = width - sum(cols[i].width for i in shown) - (len(shown) - 1)
    return [(i, cols[i].width or max(cols[i].width_min, rest)) for i in shown]


class LineTable(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "move(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("g,home", "edge(-1)", "Top", show=False, id="table.top"),
        Binding("G,end", "edge(1)", "Bottom", show=False, id="table.bottom"),
        Binding("enter", "choose", "Open", id="table.choose"),
    ]

    COMPONENT_CLASSES = {"linetable--cursor", "linetable--header", "linetable--title", "linetable--error",
                         "linetable--dim"}

    DEFAULT_CSS = """
    LineTable {
        height: 1fr;
        overflow-x: hidden;
        background: $surface;
        & > .linetable--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
        &:blur > .linetable--cursor { background: $block-cursor-blurred-background; }
        & > .linetable--header { color: $text-primary; text-style: bold; background: $panel; }
        & > .linetable--title { color: $text-accent; text-style: bold; }
        & > .linetable--error { color: $error; }
        & > .linetable--dim { color: $foreground 55%; }
    }
    """

    @dataclass
    class Highlighted(Message):
        table: "LineTable"
        row: int  # -1: no line

        @property
        def control(self) -> "LineTable":
            return self.table

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, LineTable.Highlighted) and message.table is self.table

    @dataclass
    class Chosen(Message):
        table: "LineTable"
        row: int

        @property
        def control(self) -> "LineTable":
            return self.table

    cursor_row: reactive[int] = reactive(0, always_update=True, init=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.layouts: tuple[tuple[Col, ...], ...] = ((Col(""),),)
        self.header: tuple[str, ...] | None = None
        self.count = 0
        self.line: Callable[[int], TableLine] = lambda i: TableLine(("",))
        self.placeholder = ""
        self._cache: LRUCache[tuple, Strip] = LRUCache(512)
        self._generation = 0

    # -- content ------------------------------------------------------------------------------
    def set_content(self, layouts: tuple[tuple[Col, ...], ...], header: tuple[str, ...] | None, count: int,
                    line: Callable[[int], TableLine], cursor: int = 0, placeholder: str = "") -> None:
        """Show `count` lines (`line(i)` draws line i); the cursor goes to `cursor` (or the first
        line that is not a title after it)."""
        self.layouts, self.header, self.count, self.line = layouts, header, count, line
        self.placeholder = placeholder
        self._changed()
        self.cursor_row = self._selectable(cursor, 1)

    def _changed(self) -> None:
        self._generation += 1
        self._cache.clear()
        self.virtual_size = Size(self.scrollable_content_region.width, max(1, self.count + self._top))
        self.refresh()

    @property
    def _top(self) -> int:
        return 1 if self.header is not None else 0

    def _selectable(self, row: int, step: int) -> int:
        """`row`, or the nearest line from it in direction `step` that is not a title (then the
        other way); -1 when there is none."""
        for direction in (step, -step):
            r = max(0, min(row, self.count - 1))
            while 0 <= r < self.count:
                if self.line(r).layout != TITLE:
                    return r
                r += direction
        return -1

    # -- cursor ---------------------------------------------------------------------------------
    def validate_cursor_row(self, row: int) -> int:
        return max(-1, min(row, self.count - 1))

    def watch_cursor_row(self, row: int) -> None:
        self.refresh()
        if row >= 0:
            h = self.scrollable_content_region.height - self._top
            top = int(self.scroll_offset.y)
            if not top <= row < top + max(1, h):
                self.scroll_to(y=max(0, row - h + 1) if row >= top + h else row, animate=False, immediate=True)
        self.post_message(self.Highlighted(self, row))

    def action_move(self, step: int) -> None:
        r = self.cursor_row + step
        while 0 <= r < self.count and self.line(r).layout == TITLE:
            r += step
        if 0 <= r < self.count:
            self.cursor_row = r

    def action_page(self, step: int) -> None:
        h = max(1, self.scrollable_content_region.height - self._top)
        self.cursor_row = self._selectable(self.cursor_row + step * h, step)

    def action_edge(self, step: int) -> None:
        self.cursor_row = self._selectable(0 if step < 0 else self.count - 1, -step)

    def action_choose(self) -> None:
        if 0 <= self.cursor_row < self.count:
            self.post_message(self.Chosen(self, self.cursor_row))

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_offset.y) + event.y - self._top
        if 0 <= row < self.count and self.line(row).layout != TITLE and event.y >= self._top:
            if row == self.cursor_row and event.chain > 1:
                self.action_choose()
            self.cursor_row = row

    def on_resize(self, event: events.Resize) -> None:
        self._changed()

    # -- drawing ------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y < self._top and self.header is not None:
            return self._draw(TableLine(self.header), width, "linetable--header")
        row = int(self.scroll_offset.y) + y - self._top
        if not 0 <= row < self.count:
            if self.count == 0 and row == 0 and self.placeholder:
                return Strip([Segment(set_cell_size(f" {self.placeholder}", width), Style(dim=True))])
            return Strip.blank(width, self.rich_style)
        key = (row, row == self.cursor_row, width, self._generation, self.has_focus)
        strip = self._cache.get(key)
        if strip is None:
            line = self.line(row)
            tone = "linetable--title" if line.layout == TITLE else f"linetable--{line.tone}" if line.tone else ""
            strip = self._draw(line, width, tone, row == self.cursor_row)
            self._cache[key] = strip
        return strip

    def _draw(self, line: TableLine, width: int, tone: str, cursor: bool = False) -> Strip:
        base = self.rich_style
        if tone:
            base = base + self.get_component_rich_style(tone, partial=True)
        if line.layout == TITLE:
            text = " " + (line.cells[0] if line.cells else "")
        else:
            parts = []
            for i, w in fit_columns(self.layouts[line.layout], width):
                col = self.layouts[line.layout][i]
                cell = line.cells[i] if i < len(line.cells) else ""
                if cell_len(cell) > w:
                    cell = _cut(cell, w, col.keep_end)
                parts.append(" " * (w - cell_len(cell)) + cell if col.right else set_cell_size(cell, w))
            text = " ".join(parts)
        post = self.get_component_rich_style("linetable--cursor", partial=True) if cursor else None
        segments = list(Segment.apply_style([Segment(set_cell_size(text, width))], base, post))
        return Strip(segments).crop_extend(0, width, base + post if post else base)


def _cut(text: str, width: int, keep_end: bool) -> str:
    """`text` cut to `width` cells with an ellipsis where it was cut."""
    if width <= 1:
        return set_cell_size(text, width)
    if keep_end:
        tail = text[-(width - 1):]
        while cell_len(tail) > width - 1:  # wide characters
            tail = tail[1:]
        return "…" + tail
    return set_cell_size(text, width - 1) + "…"
