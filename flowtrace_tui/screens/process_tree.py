"""The process tree of a session of several processes (T): parent -> children, with each
process's pid, command, duration, how it ended and its calls. Enter opens the process in the
call tree (the screen is dismissed with its index). A live session's tree is read again every
half second, so processes appear as they start and show their exit status when they end.
"""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ..model.loader import TraceData
from ..model.process_view import ProcessRow, process_rows
from ..model.units import fmt_ns

REFRESH_S = 0.5  # a live session's tree is read again this often


def _cells(row: ProcessRow, last_child: bool) -> tuple[Text, Text, Text, Text, Text]:
    guide = "" if row.depth == 0 else "   " * (row.depth - 1) + ("└─ " if last_child else "├─ ")
    name = Text(guide, style="dim") + Text(row.command, style="bold" if row.depth == 0 else "")
    status_style = "bold red" if row.failed else ("yellow" if row.duration_ns is None else "green")
    return (name, Text(str(row.pid), justify="right"),
            Text(fmt_ns(row.duration_ns) if row.duration_ns is not None else "", justify="right"),
            Text(row.status, style=status_style), Text(f"{row.calls:,}", justify="right"))


def _last_children(rows: list[ProcessRow]) -> list[bool]:
    """Whether each row is the last child of its parent (for the └─ guide)."""
    out = []
    for i, row in enumerate(rows):
        nxt = next((r.depth for r in rows[i + 1 :] if r.depth <= row.depth), -1)
        out.append(nxt != row.depth)
    return out


class ProcessTreeScreen(ModalScreen[int | None]):
    """The session's processes as a tree; dismissed with the chosen process's index."""

    DEFAULT_CSS = """
    ProcessTreeScreen {
        align: center middle;
        & > #proc-box { width: 95%; height: 80%; border: thick $primary 60%; background: $surface; }
        #proc-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
        DataTable { height: 1fr; }
    }
    """

    BINDINGS = [
        Binding("enter", "open", "Open in the tree", id="procs.open"),
        Binding("j", "cursor(1)", "Down", show=False, id="procs.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="procs.up"),
        Binding("escape,q,T", "close", "Close", id="procs.close"),
    ]

    def __init__(self, data: TraceData, live: Callable[[], int] | None = None, selected: int = 0) -> None:
        """`live`: the session clock now (ns) while it is being written, else None."""
        super().__init__()
        self.data = data
        self.live = live
        self.selected = selected
        self.rows: list[ProcessRow] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="proc-box"):
            yield Static("", id="proc-title", markup=False)
            table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
            for label in ("process", "pid", "duration", "status", "calls"):
                table.add_column(label, key=label)
            yield table

    def on_mount(self) -> None:
        self.refresh_rows(select=self.selected)
        self.query_one(DataTable).focus()
        if self.live is not None:
            self.set_interval(REFRESH_S, self.refresh_rows)

    def refresh_rows(self, select: int | None = None) -> None:
        """Read the processes again (keeping the selected one selected)."""
        table = self.query_one(DataTable)
        if select is None and self.rows and 0 <= table.cursor_row < len(self.rows):
            select = self.rows[table.cursor_row].index
        now = self.live() if self.live is not None else 0
        rows = process_rows(self.data, live=self.live is not None, now_ns=now)
        if rows == self.rows:
            return
        self.rows = rows
        table.clear()
        for row, last in zip(rows, _last_children(rows)):
            table.add_row(*_cells(row, last), key=str(row.index))
        failed = sum(r.failed for r in rows)
        running = sum(r.status == "running" for r in rows)
        title = f"{len(rows)} processes" + (f", {failed} failed" if failed else "")
        if self.live is not None:
            title += f", {running} running"
        self.query_one("#proc-title", Static).update(title + " — enter opens one in the call tree")
        at = next((i for i, r in enumerate(rows) if r.index == select), 0)
        table.move_cursor(row=at)

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=max(0, table.cursor_row + int(step)))

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if 0 <= table.cursor_row < len(self.rows):
            self.dismiss(self.rows[table.cursor_row].index)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_close(self) -> None:
        self.dismiss(None)
