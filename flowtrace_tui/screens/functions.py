"""The functions view's screen: the functions table on top, the selected function's callers,
callees and slowest calls below, a find bar, a status line and the footer.

Everything it shows is computed in thread workers from the index on screen (model/functions.py:
the table, first without `total`, then whole; model/function_links.py: one function's links)
and posted back tagged with what it was computed from, so a result for an older index or
another function is shown only while nothing newer is there. A live session's new indexes are
handed in by `show_index`; while a table is being made, only the newest index waiting is made
next (the view follows a growing session at the pace the table can be made).

Where the user goes from here (a caller, a call in the tree) is the app's `FunctionsView`
(functions_view.py): the screen posts `OpenFunction` / `OpenCall`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input

from ..model.function_links import Links, SlowCalls, callees, callers, slowest_calls
from ..model.function_rows import FunctionSort, call_line, function_line, link_line, ordered_rows, search_keep
from ..model.functions import FunctionTable, function_table
from ..model.index import TreeIndex
from ..model.search import Query
from ..model.units import plural
from ..model.window import window_scope
from ..widgets.find_bar import FindBar
from ..widgets.key_footer import KeyFooter
from ..widgets.line_table import TITLE, Col, LineTable, TableLine
from ..widgets.status_line import StatusLine

SLOWEST = 200  # calls listed under a function

FUNCTION_COLUMNS = (
    Col("function", width_min=16), Col("module", 16, drop=2), Col("file:line", 24, drop=3, keep_end=True),
    Col("calls", 9, right=True), Col("total", 8, right=True), Col("self", 8, right=True),
    Col("mean", 8, right=True, drop=1), Col("max", 8, right=True), Col("share", 7, right=True),
    Col("raised", 7, right=True),
)
_SORTED_COLUMN = {"calls": 3, "total": 4, "self": 5, "mean": 6, "max": 7, "share": 8, "raised": 9}
LINK_COLUMNS = (Col("function", width_min=16), Col("module", 16, drop=1), Col("calls", 9, right=True),
                Col("total", 8, right=True), Col("self", 8, right=True))
CALL_COLUMNS = (Col("call", 9), Col("start", 10, right=True), Col("total", 8, right=True),
                Col("end", 7), Col("thread", 12, drop=1), Col("arguments", width_min=10))


@dataclass
class TableReady(Message):
    table: FunctionTable


@dataclass
class TableFailed(Message):
    error: str


@dataclass
class LinksReady(Message):
    table: FunctionTable
    fid: int
    up: Links
    down: Links
    calls: SlowCalls


@dataclass
class FilterReady(Message):
    table: FunctionTable
    query: Query
    keep: np.ndarray


@dataclass
class OpenFunction(Message):
    """Show this function's row (a caller or callee was chosen)."""

    fid: int


@dataclass
class OpenCall(Message):
    """Show this call in the call tree."""

    call: int


class FunctionsScreen(Screen):
    BINDINGS = [
        Binding("v,escape", "app.functions", "Call tree", id="functions.tree",
                tooltip="Back to the call tree (at the call it showed)"),
        Binding("s", "sort(1)", "Sort", id="functions.sort", tooltip="Sort by the next column"),
        Binding("S", "sort(-1)", "Sort back", show=False, id="functions.sort_back"),
        Binding("r", "reverse", "Reverse", show=False, id="functions.reverse"),
        Binding("slash,ctrl+f", "find", "Search", id="functions.find"),
        Binding("x", "clear_filter", "Clear search", show=False, id="functions.clear"),
    ]

    DEFAULT_CSS = """
    FunctionsScreen {
        layout: vertical;
        #functions { height: 1fr; }
        #links { height: 45%; border-top: hkey $primary 50%; }
    }
    """

    def __init__(self) -> None:
        super().__init__(id="functions-screen")
        self.index: TreeIndex | None = None  # the newest index handed in
        self.table: FunctionTable | None = None  # the table shown
        self.sort = FunctionSort()
        self.search_query: Query | None = None  # the search the table is filtered by
        self.keep: np.ndarray | None = None  # per table row, with `query`
        self.order = np.zeros(0, dtype=np.int64)  # table rows in display order
        self.want_fid = 0  # the function to select (kept across tables)
        self.links: LinksReady | None = None
        self.link_targets: list[tuple[str, int]] = []  # per links line: ("function", fid) / ("call", id) / ("", 0)
        self.error: str | None = None
        self._making: TreeIndex | None = None  # the index a table is being made of
        self._linking: tuple[FunctionTable, int] | None = None  # the links being made

    def compose(self) -> ComposeResult:
        yield LineTable(id="functions")
        yield LineTable(id="links")
        yield FindBar(id="functions-find")
        yield StatusLine(id="functions-status")
        yield KeyFooter()

    def on_mount(self) -> None:
        # now, not after the keys already queued: a / typed with the v that opened the view
        # focuses the find bar before this runs (search_app.py), and keeps it
        if not isinstance(self.focused, Input):
            self.set_focus(self.query_one("#functions", LineTable))
        self._show_table()
        if self.index is not None:
            self.call_after_refresh(self.show_index, self.index)

    @property
    def functions(self) -> LineTable:
        return self.query_one("#functions", LineTable)

    @property
    def link_list(self) -> LineTable:
        return self.query_one("#links", LineTable)

    @property
    def selected_fid(self) -> int:
        """The function on the cursor's row (0: none)."""
        row = self.functions.cursor_row if self.is_mounted else -1
        if self.table is None or not 0 <= row < len(self.order):
            return self.want_fid
        return int(self.table.fids[self.order[row]])

    # -- the table ------------------------------------------------------------------------------
    def show_index(self, index: TreeIndex) -> None:
        """A new index (a live session grew, or the view was regrouped): made into a table now,
        or after the one being made."""
        self.index = index
        if not self.is_mounted:  # made once the screen is drawn (on_mount): the key shows at once
            return
        if self._making is None and (self.table is None or self.table.index is not index):
            self._making = index
            self._make_table(index)

    @work(thread=True, group="functions-table", exit_on_error=False)
    def _make_table(self, index: TreeIndex) -> None:
        try:
            table = function_table(index, first=lambda t: self.post_message(TableReady(t)))
        except Exception as exc:  # shown in the status line; the view stays usable
            self.post_message(TableFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(TableReady(table))

    def on_table_ready(self, msg: TableReady) -> None:
        table = msg.table
        if self.table is not None and self.table.complete and not table.complete and table.index is self.table.index:
            return
        fid = self.selected_fid
        self.want_fid = fid or self.want_fid
        self.table = table
        self.error = None
        if self.search_query is not None:
            self.keep = None
            self._filter(table, self.search_query)
        self._show_table()
        if table.complete:
            self._making = None
            if self.index is not None and self.index is not table.index:
                self.show_index(self.index)  # the newest index that came meanwhile
            self._request_links()

    def on_table_failed(self, msg: TableFailed) -> None:
        self._making = self._linking = None
        self.error = msg.error
        self.update_status()

    def _show_table(self) -> None:
        if not self.is_mounted:
            return
        table = self.table
        if table is None:
            self.functions.set_content((FUNCTION_COLUMNS,), self._header(), 0, lambda i: TableLine(()),
                                       placeholder="Counting calls per function…")
            self.update_status()
            return
        keep = self.keep if self.search_query is not None else None
        if self.search_query is not None and keep is None:  # the filter is on its way
            keep = np.zeros(len(table), dtype=bool)
        self.order = ordered_rows(table, self.sort, keep)
        order = self.order
        row = self._row_of(self.want_fid)

        def line(i: int) -> TableLine:
            v = function_line(table, int(order[i]))
            return TableLine((v.name, v.module, v.where, v.calls, v.total, v.self_time, v.mean, v.max_time, v.share,
                              v.raised), 0, "error" if v.raised != "0" else "")

        placeholder = "No function matches the search (x clears it)." if self.search_query is not None else "No calls yet."
        self.functions.set_content((FUNCTION_COLUMNS,), self._header(), len(order), line, max(0, row), placeholder)
        self.update_status()

    def _row_of(self, fid: int) -> int:
        if self.table is None or not fid:
            return -1
        r = self.table.row_of(fid)
        where = np.flatnonzero(self.order == r) if r >= 0 else []
        return int(where[0]) if len(where) else -1

    def _header(self) -> tuple[str, ...]:
        titles = [c.title for c in FUNCTION_COLUMNS]
        i = _SORTED_COLUMN[self.sort.column]
        titles[i] = ("↓" if self.sort.descending else "↑") + titles[i]
        return tuple(titles)

    def select_function(self, fid: int) -> bool:
        """Put the cursor on `fid`'s row (also once the table comes); False when it has no row."""
        self.want_fid = fid
        row = self._row_of(fid)
        if (row < 0 and self.search_query is not None and self.keep is not None and self.table is not None
                and self.table.row_of(fid) >= 0):
            self.search_query, self.keep = None, None  # the search hid it: show every function again
            self._show_table()
            row = self._row_of(fid)
        if row >= 0 and self.is_mounted:
            self.functions.cursor_row = row
        return row >= 0 or self.table is None or not self.table.complete

    # -- sorting and the search ---------------------------------------------------------------------
    def action_sort(self, step: int) -> None:
        self.want_fid = self.selected_fid
        self.sort = self.sort.next(int(step))
        self._show_table()

    def action_reverse(self) -> None:
        self.want_fid = self.selected_fid
        self.sort = self.sort.reversed()
        self._show_table()

    def action_find(self) -> None:
        self.query_one(FindBar).open()

    @on(FindBar.Search)
    def _search(self, msg: FindBar.Search) -> None:
        msg.stop()
        self.post_message(SearchAll(msg.query))
        self.filter_by(msg.query)
        self._find_closed(msg)

    @on(FindBar.Closed)
    def _find_closed(self, msg: FindBar.Closed | FindBar.Search) -> None:
        msg.stop()
        if self.query_one(FindBar).has_the_focus:  # (the bar gives it back at once if it can)
            self.set_focus(self.functions)

    def filter_by(self, query: Query | None) -> None:
        """Show only the functions with a call the tree's search `query` finds (None: all)."""
        if query == self.search_query:
            return
        self.want_fid = self.selected_fid
        self.search_query, self.keep = query, None
        if query is not None and self.table is not None:
            self._filter(self.table, query)
        self._show_table()

    def action_clear_filter(self) -> None:
        self.filter_by(None)

    @work(thread=True, group="functions-filter", exit_on_error=False)
    def _filter(self, table: FunctionTable, query: Query) -> None:
        self.post_message(FilterReady(table, query, search_keep(table, query)))

    def on_filter_ready(self, msg: FilterReady) -> None:
        if msg.table is self.table and msg.query == self.search_query:
            self.keep = msg.keep
            self._show_table()

    # -- callers, callees, calls ----------------------------------------------------------------------
    @on(LineTable.Highlighted, "#functions")
    def _function_highlighted(self, msg: LineTable.Highlighted) -> None:
        if msg.row >= 0:
            self.want_fid = self.selected_fid
        self._request_links()
        self.update_status()

    def _request_links(self) -> None:
        table, fid = self.table, self.selected_fid if self.table is not None and len(self.order) else 0
        if table is None or not fid or not table.complete:
            self._show_links()
            return
        if self.links is not None and self.links.table is table and self.links.fid == fid:
            return
        if self._linking is None:  # else asked again when the one being made is there
            self._linking = (table, fid)
            self._make_links(table, fid)

    @work(thread=True, group="functions-links", exit_on_error=False)
    def _make_links(self, table: FunctionTable, fid: int) -> None:
        try:
            self.post_message(LinksReady(table, fid, callers(table, fid), callees(table, fid),
                                         slowest_calls(table, fid, SLOWEST)))
        except Exception as exc:  # said in the status line; the next move asks again
            self.post_message(TableFailed(f"callers of function {fid}: {type(exc).__name__}: {exc}"))

    def on_links_ready(self, msg: LinksReady) -> None:
        self._linking = None
        if msg.table is self.table and msg.fid == self.selected_fid:
            self.links = msg
            self._show_links()
        else:  # the cursor or the table moved on meanwhile
            self._request_links()

    def _show_links(self) -> None:
        links = self.links
        fid = self.selected_fid
        if links is None or links.fid != fid or self.table is None or links.table.index is not self.table.index:
            text = "" if not fid else "Finding its callers, callees and calls…"
            self.link_targets = []
            self.link_list.set_content((LINK_COLUMNS, CALL_COLUMNS), None, 0, lambda i: TableLine(()),
                                       placeholder=text)
            return
        data = links.table.index.data
        lines: list[TableLine] = []
        targets: list[tuple[str, int]] = []
        name = data.func_name(fid)
        for title, part in ((f"Called by ({plural(len(links.up), 'function')}): calls, total, self of {name}",
                             links.up),
                            (f"Calls ({plural(len(links.down), 'function')}): calls, total, self", links.down)):
            lines.append(TableLine((title,), TITLE))
            targets.append(("", 0))
            for i in range(len(part)):
                v = link_line(data, part, i)
                lines.append(TableLine((v.name, v.module, v.calls, v.total, v.self_time), 0,
                                       "dim" if not v.fid else ""))
                targets.append(("function", v.fid))
        calls = links.calls
        shown = f"the {len(calls.ids):,} slowest of {calls.count:,}" if calls.count > len(calls.ids) else f"{calls.count:,}"
        lines.append(TableLine((f"Its calls, slowest first ({shown}): enter shows one in the call tree",), TITLE))
        targets.append(("", 0))
        for i in range(len(calls.ids)):
            v = call_line(links.table, calls, i)
            lines.append(TableLine((f"#{v.call}", v.start, v.total, v.end, v.thread, v.args), 1,
                                   "error" if v.end == "raised" else ""))
            targets.append(("call", v.call))
        self.link_targets = targets
        self.link_list.set_content((LINK_COLUMNS, CALL_COLUMNS), None, len(lines), lines.__getitem__)

    @on(LineTable.Chosen, "#functions")
    def _function_chosen(self, msg: LineTable.Chosen) -> None:
        self.link_list.focus()

    @on(LineTable.Chosen, "#links")
    def _link_chosen(self, msg: LineTable.Chosen) -> None:
        kind, key = self.link_targets[msg.row] if msg.row < len(self.link_targets) else ("", 0)
        if kind == "function" and key:
            self.post_message(OpenFunction(key))
        elif kind == "call":
            self.post_message(OpenCall(key))

    # -- status -----------------------------------------------------------------------------------
    def update_status(self) -> None:
        if not self.is_mounted:
            return
        items: list[tuple[int, str]] = [(0, "[b]functions[/b]")]
        source = self.app.source if hasattr(self.app, "source") else None
        if source is not None:
            items.append((3, f"[b]{os.path.basename(source.path)}[/b]"))
        table = self.table
        if self.error is not None:
            items.append((0, f"[$error]failed: {self.error}[/]"))
        elif table is None:
            items.append((0, "[$warning]counting…[/]"))
        else:
            shown = len(self.order)
            items.append((1, plural(len(table), "function") if shown == len(table) else f"{shown:,} of {len(table):,} functions"))
            scope = window_scope(table.index.data)  # the whole index is catching up: a window's calls
            items.append((0, f"[$warning]{scope}[/]") if scope else (2, plural(table.index.n, "call")))
            if scope:  # (and why in short, where there is room: the call tree's status line says more)
                items.append((2, f"[$warning]{table.index.data.window.why.split(':')[0]}[/]"))
            if not table.complete:
                items.append((0, "[$warning]totals…[/]"))
            elif self._making is not None:
                items.append((4, "updating…"))
        items.append((1, f"sort {self.sort.describe()} (s, r)"))
        if self.search_query is not None:
            items.append((0, f"search /{self.search_query.text}/ (x clears)"))
        self.query_one(StatusLine).show(items)


@dataclass
class SearchAll(Message):
    """A search typed in the functions view: the tree's search too (its hits, n/N)."""

    query: Query
