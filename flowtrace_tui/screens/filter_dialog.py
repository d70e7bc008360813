"""The filter dialog: hide calls shorter than a duration, hide modules."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from ..model.filters import Filters
from ..model.units import fmt_ns, parse_duration


class FilterDialog(ModalScreen[Filters | None]):
    """Dismisses with the new `Filters`, or None when cancelled."""

    DEFAULT_CSS = """
    FilterDialog {
        align: center middle;
        & > Vertical {
            width: 70; max-width: 95%; height: auto;
            border: thick $primary 60%; background: $surface; padding: 1 2;
        }
        Label { margin-top: 1; }
        #filter-error { color: $error; height: 1; }
        Horizontal { height: auto; margin-top: 1; }
        Button { margin-right: 1; }
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="filter.cancel")]

    def __init__(self, current: Filters, modules: list[str]) -> None:
        super().__init__()
        self.current = current
        self.modules = modules

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Filter calls[/b]")
            yield Label("Hide calls shorter than (e.g. 1ms, 250us, 2s; empty: none)")
            yield Input(fmt_ns(self.current.min_dur_ns).replace(" ", "") if self.current.min_dur_ns else "",
                        id="filter-duration")
            hint = ", ".join(self.modules[:6]) + (" …" if len(self.modules) > 6 else "")
            yield Label(f"Hide modules, comma-separated (in this trace: {hint})")
            yield Input(", ".join(sorted(self.current.hidden_modules)), id="filter-modules")
            yield Label("", id="filter-error")
            with Horizontal():
                yield Button("Apply", variant="primary", id="filter-apply")
                yield Button("Clear", id="filter-clear")
                yield Button("Cancel", id="filter-cancel")

    def _read(self) -> Filters | None:
        err = self.query_one("#filter-error", Label)
        try:
            dur = parse_duration(self.query_one("#filter-duration", Input).value)
        except ValueError as exc:
            err.update(str(exc))
            return None
        mods = frozenset(m.strip() for m in self.query_one("#filter-modules", Input).value.split(",") if m.strip())
        return Filters(dur, mods)

    @on(Input.Submitted)
    @on(Button.Pressed, "#filter-apply")
    def _apply(self) -> None:
        f = self._read()
        if f is not None:
            self.dismiss(f)

    @on(Button.Pressed, "#filter-clear")
    def _clear(self) -> None:
        self.dismiss(Filters())

    @on(Button.Pressed, "#filter-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
