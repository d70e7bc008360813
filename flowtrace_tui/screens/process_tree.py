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
BOX_WIDTH = 0.95  # of the screen (the box's CSS width, which has a border of one cell each side)
MIN_COLUMN = 24  # cells the process and status columns keep however long the other is


def _cells(row: ProcessRow, last_child: bool, widths: tuple[int, int]) -> tuple[Text, Text, Text, Text, Text]:
    """A row's cells, its command and status cut to `widths` cells (…)."""
    guide = "" if row.depth == 0 else "   " * (row.depth - 1) + ("└─ " if last_child else "├─ ")
    name = Text(guide, style="dim") + Text(row.command, style="bold" if row.depth == 0 else "")
    name.truncate(widths[0], overflow="ellipsis")
    status_style = "bold red" if row.failed else ("yellow" if row.duration_ns is None else "green")
    status = Text(row.status, style=status_style)
    status.truncate(widths[1], overflow="ellipsis")
    return (name, Text(_pid(row), justify="right"),
            Text(fmt_ns(row.duration_ns) if row.duration_ns is not None else "", justify="right"),
            status, Text(f"{row.calls:,}", justify="right"))


def _widths(rows: list[ProcessRow], room: int) -> tuple[int, int]:
    """Cells for the process and status columns: their longest texts, cut so that the row fits
    in `room` with the pid, duration and calls columns (a pip or build child's command line is
    hundreds of characters, and so can a status be: why a process was not followed); the line
    under the table shows the selected process's whole command and status."""
    command = max((3 * r.depth + len(r.command) for r in rows), default=7)
    status = max((len(r.status) for r in rows), default=6)
    fixed = sum(max(len(c) for c in column) for column in zip(("pid", "duration", "calls"), *(
        (_pid(r), fmt_ns(r.duration_ns) if r.duration_ns is not None else "", f"{r.calls:,}") for r in rows)))
    flexible = room - fixed - (2 * 5 + 2)  # (a cell's padding on either side; the scroll bar)
    if command + status <= flexible:
        return command, status
    status = max(MIN_COLUMN, min(status, flexible // 2))
    command = max(MIN_COLUMN, min(command, flexible - status))
    return command, max(MIN_COLUMN, min(status, flexible - command))


def _pid(row: ProcessRow) -> str:
    return str(row.pid) if row.pid else "?"  # (a process not followed whose pid is not known)


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
        #proc-detail { height: auto; max-height: 6; padding: 0 1; background: $panel; }
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
        self.widths = (0, 0)

    def compose(self) -> ComposeResult:
        with Vertical(id="proc-box"):
            yield Static("", id="proc-title", markup=False)
            table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
            for label in ("process", "pid", "duration", "status", "calls"):
                table.add_column(label, key=label)
            yield table
            yield Static("", id="proc-detail", markup=False)

    def on_mount(self) -> None:
        self.refresh_rows(select=self.selected)
        self.call_after_refresh(self.refresh_rows)  # (the columns again, now that the table has its width)
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
        widths = _widths(rows, table.size.width or int(self.app.size.width * BOX_WIDTH) - 2)
        if rows == self.rows and widths == self.widths:
            return
        self.rows, self.widths = rows, widths
        table.clear()
        for row, last in zip(rows, _last_children(rows)):
            table.add_row(*_cells(row, last, widths), key=str(row.index))
        failed = sum(r.failed for r in rows)
        running = sum(r.status == "running" for r in rows)
        title = f"{len(rows)} processes" + (f", {failed} failed" if failed else "")
        if self.live is not None:
            title += f", {running} running"
        self.query_one("#proc-title", Static).update(title + " — enter opens one in the call tree")
        at = next((i for i, r in enumerate(rows) if r.index == select), 0)
        table.move_cursor(row=at)
        self._show_selected(at)

    def _show_selected(self, at: int) -> None:
        """The selected process's whole command and status, under the table."""
        if 0 <= at < len(self.rows):
            row = self.rows[at]
            self.query_one("#proc-detail", Static).update(f"pid {_pid(row)}: {row.command}\n{row.status}")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected(event.cursor_row)

    def on_resize(self) -> None:
        self.refresh_rows()

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
