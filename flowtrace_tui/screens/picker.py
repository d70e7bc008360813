"""`flowtrace-tui DIR`: pick one of the sessions in a directory (pytest --flowtrace writes one
per test into .flowtrace/).

One row per session: outcome, test id, duration, calls; failed and erroring tests first, then
the newest first (`model.pytest_sessions.list_sessions`). Enter opens the session in the
explorer; quitting the explorer comes back here. `/` filters the rows as you type (a suite
recorded with --flowtrace=all leaves one session per test: thousands). The listing function is
injected, so tests give the picker fixed entries.
"""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ..model.pytest_sessions import SessionEntry, list_sessions
from ..model.units import fmt_ns

_STYLE = {"failed": "bold red", "error": "bold red", "passed": "green", "xpassed": "yellow",
          "skipped": "yellow", "xfailed": "yellow", "unreadable": "dim red"}


def matches(e: SessionEntry, words: list[str]) -> bool:
    """Every word (lower case) is in the entry's test id, outcome or file name."""
    text = f"{e.test} {e.outcome} {e.path}".lower()
    return all(w in text for w in words)


class _FilterInput(Input):
    """The filter line: escape empties and hides it (the screen's escape would quit)."""

    BINDINGS = [Binding("escape", "screen.clear_filter", "Clear filter", id="picker.clear_filter")]
    can_focus = False  # until / shows it (else the screen's first focus would land in it, hidden)


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
        #picker-filter { height: 1; border: none; padding: 0 1; display: none; }
        #picker-filter.-shown { display: block; }
    }
    """

    BINDINGS = [
        Binding("enter", "open", "Open", id="picker.open"),
        Binding("slash", "filter", "Filter", id="picker.filter"),
        Binding("r", "reload", "Reload", id="picker.reload"),
        Binding("j", "cursor(1)", "Down", show=False, id="picker.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="picker.up"),
        Binding("q", "app.quit", "Quit", id="picker.quit"),
        Binding("escape", "escape", "Quit", show=False, id="picker.escape"),
    ]

    def __init__(self, directory: str, lister: Callable[[str], list[SessionEntry]], selected: str | None,
                 filter_text: str = "") -> None:
        super().__init__()
        self.directory = directory
        self.lister = lister
        self.selected = selected
        self.filter_text = filter_text
        self.entries: list[SessionEntry] = []
        self.shown: list[SessionEntry] = []  # the entries the filter lets through, as the rows
        self.last_path: str | None = selected  # the row the cursor was on (while a filter shows none)
        self.problem: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="picker-title", markup=False)
        yield _FilterInput(placeholder="filter: words of the test id or outcome (escape clears)", id="picker-filter")
        table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_column("outcome", key="outcome")
        table.add_column("test", key="test")
        table.add_column("duration", key="duration")
        table.add_column("calls", key="calls")
        yield table
        yield Static("", id="picker-empty")
        yield Footer()

    def on_mount(self) -> None:
        if self.filter_text:
            box = self.query_one(_FilterInput)
            box.value = self.filter_text
            box.add_class("-shown")
        self.action_reload()

    def action_reload(self) -> None:
        current = self._current()  # (r keeps the cursor on its session; at the start: `selected`)
        try:
            self.entries = self.lister(self.directory)
            self.problem = None
        except OSError as exc:
            self.entries, self.problem = [], f"Cannot list {self.directory}: {exc.strerror or exc}"
        self._fill(current.path if current else self.selected)

    def _fill(self, selected: str | None) -> None:
        """The rows of the entries the filter lets through, the cursor on `selected` (a path)
        when it is among them, else on the first."""
        words = self.query_one(_FilterInput).value.lower().split()
        self.shown = [e for e in self.entries if matches(e, words)]
        table = self.query_one(DataTable)
        table.clear()
        for i, e in enumerate(self.shown):
            table.add_row(*_row(e), key=str(i))
        n, failed = len(self.entries), sum(e.failed for e in self.entries)
        title = f"{self.directory}: {n} session{'s' if n != 1 else ''}" + (f", {failed} failed" if failed else "")
        if words:
            title += f"; {len(self.shown)} match {' '.join(words)!r}"
        self.query_one("#picker-title", Static).update(title + (" (enter opens one)" if self.shown else ""))
        empty = self.query_one("#picker-empty", Static)
        empty.update(self.problem or ("" if self.entries else
                                      "No sessions here. pytest --flowtrace writes one per failing test into .flowtrace/."))
        empty.display = not self.entries
        table.display = bool(self.entries)
        selected = selected or self.last_path
        chosen = next((i for i, e in enumerate(self.shown) if e.path == selected), 0)
        if self.shown:
            table.move_cursor(row=chosen)
        if self.entries and not self.query_one(_FilterInput).has_focus:
            table.focus()

    def action_escape(self) -> None:
        """Escape: clears the filter while there is one, else quits."""
        if self.query_one(_FilterInput).has_class("-shown"):
            self.action_clear_filter()
        else:
            self.app.exit()

    def action_filter(self) -> None:
        if self.entries:
            box = self.query_one(_FilterInput)
            box.add_class("-shown")
            box.can_focus = True
            box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one(_FilterInput)
        current = self._current()
        box.value = ""  # (Changed refills the rows)
        box.remove_class("-shown")
        box.can_focus = False
        self.query_one(DataTable).focus()
        self._fill(current.path if current else None)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        current = self._current()
        self._fill(current.path if current else None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter: the rows take the keys (j/k, enter opens); / edits it again."""
        event.stop()
        self.query_one(DataTable).focus()

    def _current(self) -> SessionEntry | None:
        row = self.query_one(DataTable).cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        current = self._current()
        if current is not None:
            self.last_path = current.path

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=max(0, table.cursor_row + int(step)))

    def action_open(self) -> None:
        entry = self._current()
        if entry is None:
            return
        if entry.outcome == "unreadable":
            self.notify(entry.problem or "not a readable session", severity="error")
            return
        if isinstance(self.app, PickerApp):
            self.app.filter_text = self.filter_text  # (the next picker starts with it)
        self.app.exit(entry.path)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()


class PickerApp(App[str]):
    """`PickerApp(dir).run()` returns the chosen session's path, or None when the user quit;
    `filter_text` is then the filter it was chosen with (the next picker starts with it)."""

    TITLE = "flowtrace sessions"

    def __init__(self, directory: str, lister: Callable[[str], list[SessionEntry]] = list_sessions,
                 selected: str | None = None, filter_text: str = "") -> None:
        super().__init__()
        self.directory = directory
        self.lister = lister
        self.selected = selected
        self.filter_text = filter_text

    def on_mount(self) -> None:
        self.push_screen(SessionPicker(self.directory, self.lister, self.selected, self.filter_text))
