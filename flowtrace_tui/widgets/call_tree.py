"""The call tree: a line-drawn virtual tree over `TreeRows` (ScrollView + render_line).

Only the lines on screen are drawn, each from a handful of array lookups, so the cost of a
repaint does not depend on the size of the trace. Strips are cached by (position, cursor,
hit, width, generation); any change to rows/index bumps the generation.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.color import Color
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollDown, ScrollTo, ScrollUp
from textual.strip import Strip

from ..model.merged_view import merged_row
from ..model.row_view import END_OPEN, END_RAISE, RowView, row_view
from ..model.rows import EXPAND_GUARD, TreeRows
from ..model.process_view import process_group_pos, started_processes, starting_call
from ..model.tasks import task_creator
from ..model.units import fmt_count, fmt_ns
from ..model.window import window_scope
from .columns import Col, columns_for, columns_width

INDENT = 2  # cells per level
MAX_GUIDE_LEVELS = 24  # deeper rows show "…[depth]" + the last levels (deep recursion stays readable)
GUIDE_SHARE = 3  # guides take at most a third of the name column: the names stay readable
SUSPEND_GLYPH = "‖"  # before a generator/coroutine's suspension count (help text says so too)
COOL, HOT = Color.parse("#4f8fd8"), Color.parse("#e8503a")


class CallTree(ScrollView, can_focus=True):
    """One line per visible call. Posts `CursorMoved` when the selected call changes."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="tree.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="tree.page_down"),
        Binding("g,home", "first", "Top", show=False, id="tree.top"),
        Binding("G,end", "last", "Bottom", show=False, id="tree.bottom"),
        Binding("left,h", "collapse_or_parent", "Collapse/parent", show=False, id="tree.left"),
        Binding("right,l", "expand_or_child", "Expand/child", show=False, id="tree.right"),
        Binding("space,enter", "toggle", "Toggle", id="tree.toggle"),
        Binding("e", "expand_subtree", "Expand subtree", id="tree.expand_subtree"),
        Binding("c", "collapse_all", "Collapse all", show=False, id="tree.collapse_all"),
        Binding("H", "hot_path", "Hot path", id="tree.hot_path"),
        Binding("p", "parent", "Parent", show=False, id="tree.parent"),
        Binding("C", "task_creator", "Task creator", show=False, id="tree.task_creator",
                tooltip="Select the call that created the asyncio task of the selected call"),
        Binding("S", "process_link", "Started process / starting call", show=False, id="tree.process_link"),
        Binding("left_square_bracket", "prev_sibling", "Prev sibling", show=False, id="tree.prev_sibling"),
        Binding("right_square_bracket", "next_sibling", "Next sibling", show=False, id="tree.next_sibling"),
        *[
            Binding(str(d), f"expand_depth({d})", f"Expand to depth {d}", show=False, id=f"tree.depth_{d}")
            for d in range(1, 10)
        ],
    ]

    COMPONENT_CLASSES = {
        "calltree--cursor",
        "calltree--guide",
        "calltree--marker",
        "calltree--name",
        "calltree--args",
        "calltree--result",
        "calltree--raise",
        "calltree--unfinished",
        "calltree--suspend",
        "calltree--task",
        "calltree--group",
        "calltree--time",
        "calltree--count",
        "calltree--hit",
    }

    DEFAULT_CSS = """
    CallTree {
        height: 1fr;
        overflow-x: hidden;
        background: $surface;
        & > .calltree--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
        &:blur > .calltree--cursor { background: $block-cursor-blurred-background; }
        & > .calltree--guide { color: $foreground 35%; }
        & > .calltree--marker { color: $accent; }
        & > .calltree--name { color: $foreground; text-style: bold; }
        & > .calltree--args { color: $foreground 70%; }
        & > .calltree--result { color: $success; }
        & > .calltree--raise { color: $error; text-style: bold; }
        & > .calltree--unfinished { color: $warning; text-style: bold; }
        & > .calltree--suspend { color: $text-secondary; }  /* readable on $surface (plain $secondary was too dark) */
        & > .calltree--group { color: $text-primary; text-style: bold; }
        & > .calltree--task { color: $text-accent; }
        & > .calltree--time { color: $foreground 80%; }
        & > .calltree--count { color: $foreground 55%; }
        & > .calltree--hit { background: $warning 35%; }
    }
    """

    @dataclass
    class CursorMoved(Message):
        """The selected row changed. `pos` is a preorder position (-1: nothing)."""

        tree: "CallTree"
        pos: int

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, CallTree.CursorMoved)

    @dataclass
    class Scrolled(Message):
        """The user scrolled the view (mouse wheel, scroll bar) without moving the cursor: manual
        navigation all the same (it ends the live view's follow mode)."""

        tree: "CallTree"

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, CallTree.Scrolled)

    @dataclass
    class GutterChanged(Message):
        """The vertical scroll bar appeared or went: `width` cells at the right hold no row text
        (the column header leaves them out to stay aligned with the rows)."""

        tree: "CallTree"
        width: int

    @dataclass
    class Notice(Message):
        """Something for the user (e.g. the expand guard)."""

        text: str

    cursor_row: reactive[int] = reactive(0, always_update=True, init=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: TreeRows | None = None
        self.hits: np.ndarray = np.empty(0, dtype=np.int64)
        self.generation = 0
        self._cache: LRUCache[tuple, Strip] = LRUCache(1024)
        self._guard_pos = -1  # `e` pressed once on a huge subtree: a second press forces it
        self.expand_guard = EXPAND_GUARD
        self.placeholder = "Loading…"
        self.live_now = 0  # session time now (ns) in a live session: running calls tick; 0 = off
        self._keep_scroll = False  # set_rows: leave the view where the user scrolled it
        self._pct_styles = [Style(color=COOL.blend(HOT, i / 10).rich_color) for i in range(11)]

    # -- data -------------------------------------------------------------------------------
    def set_rows(self, rows: TreeRows | None, cursor_pos: int | None = None, top_pos: int | None = None) -> None:
        """Show new rows (a new index, filters...). Keeps the cursor on `cursor_pos` if visible.

        `top_pos` (a live update): the position now of the node that was the top line; the view
        stays on it, and a cursor the user had scrolled out of sight is not scrolled back to."""
        h = self.scrollable_content_region.height
        cursor_shown = self.scroll_offset.y <= self.cursor_row < self.scroll_offset.y + h
        self.rows = rows
        self.changed()
        row = 0
        if rows is not None and cursor_pos is not None and cursor_pos >= 0:
            r = rows.row_of(cursor_pos)
            if r < 0:
                r = rows.rows_before(cursor_pos) - 1
            row = max(0, r)
        if rows is not None and top_pos is not None and top_pos >= 0:
            top = rows.row_of(top_pos)
            self.scroll_to(y=max(0, top if top >= 0 else rows.rows_before(top_pos)), animate=False, immediate=True)
            self._keep_scroll = not cursor_shown
        self.cursor_row = row
        self._keep_scroll = False

    def set_hits(self, hits: np.ndarray) -> None:
        self.hits = hits
        self.changed()

    def changed(self) -> None:
        """Rows or their content changed: recompute the virtual size and repaint."""
        self.generation += 1
        self._cache.clear()
        n = len(self.rows) if self.rows is not None else 1
        size = Size(self.scrollable_content_region.width, n)
        if size.width == self.virtual_size.width and self.is_mounted:
            # only the number of rows changed: the scroll bar is told (as Textual does for a
            # size change that needs no layout, Widget._size_updated) instead of the whole
            # screen being laid out again -- a live view shows new rows several times a second,
            # and each layout took the UI thread (and the GIL the loader needs) ~10-40 ms. A
            # scroll bar that comes or goes still lays the screen out (its reactive does).
            self.set_reactive(CallTree.virtual_size, size)
            self._scroll_update(size)  # (textual 8.2.8, pinned)
        else:
            self.virtual_size = size
        self.refresh()

    @property
    def cursor_pos(self) -> int:
        """Preorder position of the selected row, -1 when there is none."""
        if self.rows is None or len(self.rows) == 0:
            return -1
        return self.rows.pos(min(self.cursor_row, len(self.rows) - 1))

    def move_to_pos(self, pos: int, reveal: bool = True) -> None:
        """Select a position, expanding its ancestors if needed."""
        if self.rows is None:
            return
        if reveal and self.rows.row_of(pos) < 0:
            self.rows.reveal(pos)
            self.changed()
        r = self.rows.row_of(pos)
        if r >= 0:
            self.cursor_row = r
            self._center(r)

    # -- cursor -------------------------------------------------------------------------------
    def validate_cursor_row(self, row: int) -> int:
        n = len(self.rows) if self.rows is not None else 0
        return max(0, min(row, n - 1)) if n else 0

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh()
        if not self._keep_scroll:
            self.scroll_to_region(Region(0, new, 1, 1), animate=False, immediate=True, force=True)
        self.post_message(self.CursorMoved(self, self.cursor_pos))

    def _center(self, row: int) -> None:
        h = self.scrollable_content_region.height
        if not (self.scroll_offset.y <= row < self.scroll_offset.y + h):
            self.scroll_to(y=max(0, row - h // 3), animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self.changed()

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        self.post_message(self.GutterChanged(self, self.styles.scrollbar_size_vertical if shown else 0))

    # -- drawing ------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_offset.y) + y
        rows = self.rows
        if rows is None or row >= len(rows):
            if rows is None or len(rows) == 0:  # no row: say why (wrapped to the width)
                lines = textwrap.wrap(self.placeholder, max(10, width - 2)) or [""]
                if y < len(lines):
                    return Strip([Segment(set_cell_size(f" {lines[y]}", width), Style(dim=True))])
            return Strip.blank(width, self.rich_style)
        pos = rows.pos(row)
        is_cursor = row == self.cursor_row
        hit = self._is_hit(pos)
        key = (pos, is_cursor, hit, width, self.generation, self.has_focus)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._draw(pos, width, is_cursor, hit)
            self._cache[key] = strip
        return strip

    def _is_hit(self, pos: int) -> bool:
        h = self.hits
        if len(h) == 0:
            return False
        i = int(np.searchsorted(h, pos))
        return i < len(h) and h[i] == pos

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def _hit_style(self) -> Style:
        """The search-hit background blended onto the tree's own background: the rich style of a
        component drops the alpha of `$warning 35%`, which painted hits solid orange (the
        row's text then hard to read)."""
        tint = self.get_component_styles("calltree--hit").background
        return Style(bgcolor=(self.background_colors[1] + tint).rich_color)

    def _draw(self, pos: int, width: int, is_cursor: bool, hit: bool) -> Strip:
        rows = self.rows
        assert rows is not None
        idx = rows.index
        view = self.row_at(pos)
        depth = int(idx.depth[pos])
        base = self.rich_style
        cols = self.columns(width)
        left_w = max(10, width - columns_width(cols))
        segs: list[Segment] = []
        guide = self._style("calltree--guide")
        # guides: one cell pair per ancestor level (capped for deep recursion)
        prefix = self._guides(pos, depth, left_w)
        segs.append(Segment(prefix, guide))
        used = cell_len(prefix)
        if rows.has_children(pos):
            marker = "▼ " if rows.is_expanded(pos) else "▶ "
        else:
            marker = "  "
        segs.append(Segment(marker, self._style("calltree--marker")))
        used += 2
        room = left_w - used - 1
        label = self._label(view, room, with_count=not any(c.key == "count" for c in cols))
        for text, style in label:
            segs.append(Segment(text, style))
        used += sum(cell_len(t) for t, _ in label)
        if used < left_w:
            segs.append(Segment(" " * (left_w - used)))
        segs.extend(self._cells(view, cols, pos))
        # the cursor and hit backgrounds must win over each part's own style: post-styles
        post = None
        if hit:
            post = self._hit_style()
        if is_cursor:
            cur = self._style("calltree--cursor")
            post = cur if post is None else post + cur
        segments = list(Segment.apply_style(segs, base, post))
        return Strip(segments).crop_extend(0, width, base + post if post else base)

    # -- what a row shows: a subclass (the diff view's tree) shows other things -------------------
    def row_at(self, pos: int) -> RowView:
        """The view model of the line at `pos` (a call, or a merged call path)."""
        idx = self.rows.index  # type: ignore[union-attr]
        return merged_row(idx, pos) if idx.merged else row_view(idx, pos, self.live_now)

    def columns(self, width: int) -> list[Col]:
        """The right-hand columns at this width (the column header asks too)."""
        return columns_for(width)

    def _cells(self, view: RowView, cols: list[Col], pos: int) -> list[Segment]:
        """The right-aligned columns of one line."""
        rows = self.rows
        assert rows is not None
        idx = rows.index
        segs: list[Segment] = []
        for col in cols:
            if col.key == "total":
                segs.append(Segment(fmt_ns(view.total_ns).rjust(col.width - 1) + " ", self._style("calltree--time")))
            elif col.key == "self":
                text = fmt_ns(view.self_ns) if view.self_ns is not None else ""
                segs.append(Segment(text.rjust(col.width - 1) + " ", self._style("calltree--time")))
            elif col.key == "pct":
                if view.share is not None:
                    frac = view.share
                    segs.append(Segment(f"{frac * 100:3.0f}%".rjust(col.width - 1) + " ", self._pct_styles[int(frac * 10 + 0.5)]))
                else:
                    segs.append(Segment(" " * col.width))
            elif col.key == "count":
                desc = idx.descendants(pos)
                text = fmt_count(desc) if desc and not rows.is_expanded(pos) else ""
                if view.count:  # a merged path: the calls it stands for
                    text = fmt_count(view.count)
                segs.append(Segment(text.rjust(col.width - 1) + " ", self._style("calltree--count")))
        return segs

    def _guides(self, pos: int, depth: int, left_w: int) -> str:
        """Tree guides for a row: '│ ' where an ancestor has a later sibling, '├─'/'└─' last.

        At most a third of the name column (`left_w` cells) and MAX_GUIDE_LEVELS levels: a
        deeper row shows `…[depth]` and the guides of its last levels, so deep recursion keeps
        the names on screen and still tells how deep a row is."""
        if depth == 0:
            return ""
        rows = self.rows
        assert rows is not None
        idx = rows.index
        room = max(4, min(MAX_GUIDE_LEVELS, left_w // GUIDE_SHARE // INDENT))
        label = f"…[{depth}] " if depth > room else ""
        levels = max(1, room - (len(label) + 1) // INDENT) if label else depth
        parts: list[str] = []
        p = pos
        for i in range(levels):
            has_next = self._has_next_visible_sibling(p)
            if i == 0:
                parts.append("├─" if has_next else "└─")
            else:
                parts.append("│ " if has_next else "  ")
            p = idx.parent_pos(p)
        return label + "".join(reversed(parts))

    def _has_next_visible_sibling(self, pos: int) -> bool:
        idx = self.rows.index  # type: ignore[union-attr]
        hidden = self.rows.hidden  # type: ignore[union-attr]
        nxt = idx.next_sibling(pos)
        while nxt >= 0 and hidden is not None and hidden[nxt]:
            nxt = idx.next_sibling(nxt)
        return nxt >= 0

    def _label(self, view: RowView, room: int, with_count: bool = False) -> list[tuple[str, Style]]:
        """Name, arguments (shortened to fit) and the end marker of one call. A merged path:
        its name, how many of its calls raised or did not end, and (`with_count`: no count
        column on screen) how many calls it stands for."""
        out: list[tuple[str, Style]] = []
        if view.group is not None:
            # a process says how it ended, and that stays on screen: the name gives way first
            if view.end == END_RAISE:
                tail = [(" ✗ " + view.exception, self._style("calltree--raise"))]
            elif view.group == "process" and view.end == END_OPEN:
                tail = [(" ⋯", self._style("calltree--unfinished"))]
            else:
                tail = [(" → " + view.result, self._style("calltree--result"))] if view.result is not None else []
            tail = _fit(tail, room // 2)
            name_room = room - sum(cell_len(t) for t, _ in tail)
            return _fit([(view.name, self._style("calltree--group"))], name_room) + tail
        if view.count:
            return _fit(self._merged_label(view, with_count), room)
        tail: list[tuple[str, Style]] = []
        if view.started_note:  # a call that started processes (P goes to the first)
            tail.append((f" {{{view.started_note}}}", self._style("calltree--task")))
        if view.task_note:  # a task's coroutine: which task, and the call that created it (C goes there)
            tail.append((f" {{{view.task_note}}}", self._style("calltree--task")))
        if view.suspensions:
            # "‖" (U+2016), not "⏸" (U+23F8): common monospace fonts lack the latter
            tail.append((f" {SUSPEND_GLYPH}{view.suspensions}", self._style("calltree--suspend")))
        if view.end == END_RAISE:
            tail.append((" ✗ " + view.exception, self._style("calltree--raise")))
        elif view.end == END_OPEN:
            tail.append((" ⋯", self._style("calltree--unfinished")))
        elif view.result is not None:
            tail.append((" → " + view.result, self._style("calltree--result")))
        name, name_s = view.name, self._style("calltree--name")
        if view.is_body:
            out.append((name, name_s))
            out.extend(tail)
            return _fit(out, room)
        args = view.args
        args_s = self._style("calltree--args")
        tail_len = sum(cell_len(t) for t, _ in tail[:-1]) + min(cell_len(tail[-1][0]), 14) if tail else 0
        name_len = cell_len(name)
        # the name always shows; arguments get what is left after the end markers
        arg_room = room - name_len - 2 - tail_len
        if arg_room >= 4:
            shown = args if cell_len(args) <= arg_room else set_cell_size(args, arg_room - 1) + "…"
            out.append((name, name_s))
            out.append(("(" + shown + ")", args_s))
        else:
            out.append((name, name_s))
            if args:
                out.append(("(…)", args_s))
        out.extend(tail)
        return _fit(out, room)

    def _merged_label(self, view: RowView, with_count: bool) -> list[tuple[str, Style]]:
        """A merged path's name, how many calls it stands for (`with_count`), raised, unfinished."""
        out = [(view.name, self._style("calltree--name"))]
        if with_count and view.count > 1:
            out.append((f" ×{view.count:,}", self._style("calltree--count")))
        if view.raised:
            out.append((f" ✗ {view.raised:,} raised", self._style("calltree--raise")))
        if view.unfinished:
            out.append((f" ⋯ {view.unfinished:,} unfinished", self._style("calltree--unfinished")))
        return out

    # -- mouse --------------------------------------------------------------------------------
    # Scrolling itself is Textual's (Widget._on_mouse_scroll_*, _on_scroll_* for the scroll bar,
    # which run after these); these only tell the app when the view is really about to move.
    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        if not (event.ctrl or event.shift) and self.scroll_offset.y < self.max_scroll_y:
            self.post_message(self.Scrolled(self))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if not (event.ctrl or event.shift) and self.scroll_offset.y > 0:
            self.post_message(self.Scrolled(self))

    def on_scroll_to(self, message: ScrollTo) -> None:
        if message.y is not None and int(message.y) != int(self.scroll_offset.y):
            self.post_message(self.Scrolled(self))

    def on_scroll_up(self, message: ScrollUp) -> None:
        if self.scroll_offset.y > 0:
            self.post_message(self.Scrolled(self))

    def on_scroll_down(self, message: ScrollDown) -> None:
        if self.scroll_offset.y < self.max_scroll_y:
            self.post_message(self.Scrolled(self))

    def on_click(self, event: events.Click) -> None:
        if self.rows is None:
            return
        row = int(self.scroll_offset.y) + event.y
        if 0 <= row < len(self.rows):
            pos = self.rows.pos(row)
            width = self.scrollable_content_region.width
            left_w = max(10, width - columns_width(self.columns(width)))
            depth_cells = cell_len(self._guides(pos, int(self.rows.index.depth[pos]), left_w))
            if row == self.cursor_row and (event.chain >= 2 or depth_cells <= event.x < depth_cells + 2):
                self.action_toggle()
            elif depth_cells <= event.x < depth_cells + 2:
                self.cursor_row = row
                self.action_toggle()
            else:
                self.cursor_row = row

    # -- actions ------------------------------------------------------------------------------
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_cursor_up(self) -> None:
        self.cursor_row -= 1

    def action_cursor_down(self) -> None:
        self.cursor_row += 1

    def action_page_up(self) -> None:
        self.scroll_to(y=max(0, self.scroll_offset.y - self._page()), animate=False, immediate=True)
        self.cursor_row -= self._page()

    def action_page_down(self) -> None:
        self.scroll_to(y=self.scroll_offset.y + self._page(), animate=False, immediate=True)
        self.cursor_row += self._page()

    def action_first(self) -> None:
        self.cursor_row = 0

    def action_last(self) -> None:
        if self.rows is not None:
            self.cursor_row = len(self.rows) - 1

    def _after_edit(self, pos: int) -> None:
        self.changed()
        if self.rows is not None:
            r = self.rows.row_of(pos)
            if r >= 0:
                self.cursor_row = r

    def action_toggle(self) -> None:
        pos = self.cursor_pos
        if pos >= 0 and self.rows is not None and self.rows.toggle(pos):
            self._after_edit(pos)

    def action_collapse_or_parent(self) -> None:
        pos = self.cursor_pos
        if pos < 0 or self.rows is None:
            return
        if self.rows.is_expanded(pos):
            self.rows.collapse(pos)
            self._after_edit(pos)
        else:
            self.action_parent()

    def action_expand_or_child(self) -> None:
        pos = self.cursor_pos
        if pos < 0 or self.rows is None or not self.rows.has_children(pos):
            return
        if not self.rows.is_expanded(pos):
            self.rows.expand(pos)
            self._after_edit(pos)
        else:
            self.cursor_row += 1

    def action_parent(self) -> None:
        pos = self.cursor_pos
        if pos >= 0 and self.rows is not None:
            par = self.rows.index.parent_pos(pos)
            if par >= 0:
                self.move_to_pos(par)

    def action_task_creator(self) -> None:
        """Select the call that created the asyncio task the selected call runs in."""
        pos = self.cursor_pos
        if pos < 0 or self.rows is None:
            return
        idx = self.rows.index
        creator = task_creator(idx.data, idx.node(pos))
        if creator and creator <= idx.n:
            self.move_to_pos(int(idx.pos_of[creator]))
        else:
            self.post_message(self.Notice("The selected call runs in no asyncio task whose creator was recorded"))

    def action_process_link(self) -> None:
        """From a call that started processes of the session to the (first) one it started;
        from a process's row to the call in its parent that started it."""
        pos = self.cursor_pos
        if pos < 0 or self.rows is None:
            return
        idx = self.rows.index
        data, node = idx.data, idx.node(pos)
        g = idx.group(node) if idx.is_group(node) else None
        if g is not None and g.kind == "process":
            call = starting_call(data, g.process)
            if call and call <= idx.n:
                self.move_to_pos(int(idx.pos_of[call]))
            else:
                self.post_message(self.Notice(f"Where pid {data.processes[g.process].pid} was started from is not "
                                              "recorded (multiprocessing's spawn and forkserver do not say)"))
            return
        started = started_processes(data, node) if g is None else []
        targets = [t for t in (process_group_pos(idx, p) for p in started) if t >= 0]
        if targets:
            self.move_to_pos(targets[0])
        elif started:
            self.post_message(self.Notice(f"pid {data.processes[started[0]].pid} recorded no calls (yet)"))
        else:
            self.post_message(self.Notice("The selected call started no process of this session"))

    def action_next_sibling(self) -> None:
        self._sibling(True)

    def action_prev_sibling(self) -> None:
        self._sibling(False)

    def _sibling(self, forward: bool) -> None:
        pos = self.cursor_pos
        if pos < 0 or self.rows is None:
            return
        idx = self.rows.index
        hidden = self.rows.hidden
        s = pos
        while True:
            s = idx.next_sibling(s) if forward else idx.prev_sibling(s)
            if s < 0 or hidden is None or not hidden[s]:
                break
        if s >= 0:
            self.move_to_pos(s)

    def action_expand_subtree(self) -> None:
        pos = self.cursor_pos
        if pos < 0 or self.rows is None:
            return
        force = self._guard_pos == pos
        if self.rows.expand_subtree(pos, force=force, guard=self.expand_guard):
            self._guard_pos = -1
            self._after_edit(pos)
        else:
            self._guard_pos = pos
            n = self.rows.subtree_rows_if_expanded(pos)
            self.post_message(self.Notice(f"This subtree has {n:,} calls: press e again to expand it all"))

    def action_collapse_all(self) -> None:
        if self.rows is None:
            return
        pos = self.cursor_pos
        self.rows.collapse_all()
        top = self.rows.index.ancestors(pos)[:1] if pos >= 0 else []
        self.changed()
        self.cursor_row = self.rows.row_of(top[0]) if top else max(0, self.rows.row_of(pos))

    def action_expand_depth(self, depth: int) -> None:
        if self.rows is None:
            return
        pos = self.cursor_pos
        self.rows.expand_to_depth(depth)
        self.changed()
        if pos >= 0:
            r = self.rows.row_of(pos)
            if r < 0:
                r = max(0, self.rows.rows_before(pos) - 1)
            self.cursor_row = r
            self._center(r)

    def action_hot_path(self) -> None:
        pos = self.cursor_pos
        if pos < 0 or self.rows is None:
            return
        last = self.rows.hot_path(pos)
        self.changed()
        self.move_to_pos(last)
        scope = window_scope(self.rows.index.data, why=True)
        if scope:  # a window of the newest calls is shown (the whole index catches up, or cannot be had)
            self.post_message(self.Notice(f"Hot path of the {scope}"))


def _fit(parts: list[tuple[str, Style]], room: int) -> list[tuple[str, Style]]:
    """Cut the parts to `room` cells, ending with '…' when something was cut."""
    out: list[tuple[str, Style]] = []
    left = room
    for text, style in parts:
        if left <= 0:
            break
        w = cell_len(text)
        if w <= left:
            out.append((text, style))
            left -= w
        else:
            out.append((set_cell_size(text, max(0, left - 1)) + "…", style))
            left = 0
    return out
