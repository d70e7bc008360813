"""`flowtrace-tui DIR`: pick one of the sessions in a directory (pytest --flowtrace writes one
per test into .flowtrace/).

One row per session: outcome, test id, duration, calls; failed and erroring tests first, then
the newest first (`model.pytest_sessions.list_sessions`). Enter opens the session in the
explorer; quitting the explorer comes back here. The listing function is injected, so tests
give the picker fixed entries.
"""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..model.pytest_sessions import SessionEntry, list_sessions
from ..model.units import fmt_ns

_STYLE = {"failed": "bold red", "error": "bold red", "passed": "green", "xpassed": "yellow",
          "skipped": "yellow", "xfailed": "yellow", "unreadable": "dim red"}


def _row(e: SessionEntry) -> tuple[Text, Text, Text, Text]:
    outcome = Text(e.outcome.upper(), style=_STYLE.get(e.outcome, "dim"))
    test = Text(e.test) if e.problem is None or e.outcome != "unreadable" else Text(e.problem, style="dim")
    duration = Text(fmt_ns(int(e.duration_s * 1e9)) if e.duration_s is not None else "", justify="right")
    calls = Text(f"{e.calls:,}" if e.calls is not None else "", justify="right")
    return outcome, test, duration, calls


class SessionPicker(Screen[None]):
    """The list of sessions; `app.exit(path)` with the chosen one."""

    DEFAULT_CSS = """
    SessionPicker {
        #picker-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
        DataTable { height: 1fr; }
        #picker-empty { padding: 1 2; color: $foreground 70%; }
    }
    """

    BINDINGS = [
        Binding("enter", "open", "Open", id="picker.open"),
        Binding("r", "reload", "Reload", id="picker.reload"),
        Binding("j", "cursor(1)", "Down", show=False, id="picker.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="picker.up"),
        Binding("q,escape", "app.quit", "Quit", id="picker.quit"),
    ]

    def __init__(self, directory: str, lister: Callable[[str], list[SessionEntry]], selected: str | None) -> None:
        super().__init__()
        self.directory = directory
        self.lister = lister
        self.selected = selected
        self.entries: list[SessionEntry] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="picker-title", markup=False)
        table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_column("outcome", key="outcome")
        table.add_column("test", key="test")
        table.add_column("duration", key="duration")
        table.add_column("calls", key="calls")
        yield table
        yield Static("", id="picker-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        table = self.query_one(DataTable)
        try:
            self.entries = self.lister(self.directory)
            problem = None
        except OSError as exc:
            self.entries, problem = [], f"Cannot list {self.directory}: {exc.strerror or exc}"
        table.clear()
        for i, e in enumerate(self.entries):
            table.add_row(*_row(e), key=str(i))
        failed = sum(e.failed for e in self.entries)
        self.query_one("#picker-title", Static).update(
            f"{self.directory}: {len(self.entries)} session{'s' if len(self.entries) != 1 else ''}"
            + (f", {failed} failed" if failed else "") + (" (enter opens one)" if self.entries else ""))
        empty = self.query_one("#picker-empty", Static)
        empty.update(problem or ("" if self.entries else
                                 "No sessions here. pytest --flowtrace writes one per failing test into .flowtrace/."))
        empty.display = not self.entries
        table.display = bool(self.entries)
        chosen = next((i for i, e in enumerate(self.entries) if e.path == self.selected), 0)
        if self.entries:
            table.move_cursor(row=chosen)
            table.focus()

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=max(0, table.cursor_row + int(step)))

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.entries or not 0 <= table.cursor_row < len(self.entries):
            return
        entry = self.entries[table.cursor_row]
        if entry.outcome == "unreadable":
            self.notify(entry.problem or "not a readable session", severity="error")
            return
        self.app.exit(entry.path)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()


class PickerApp(App[str]):
    """`PickerApp(dir).run()` returns the chosen session's path, or None when the user quit."""

    TITLE = "flowtrace sessions"

    def __init__(self, directory: str, lister: Callable[[str], list[SessionEntry]] = list_sessions,
                 selected: str | None = None) -> None:
        super().__init__()
        self.directory = directory
        self.lister = lister
        self.selected = selected

    def on_mount(self) -> None:
        self.push_screen(SessionPicker(self.directory, self.lister, self.selected))
