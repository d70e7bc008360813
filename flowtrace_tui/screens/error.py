"""A problem found after the explorer started (e.g. damage further into the file)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class ErrorScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ErrorScreen {
        align: center middle;
        & > Vertical {
            width: 80%; max-width: 90; height: auto;
            border: thick $error; background: $surface; padding: 1 2;
        }
        #error-title { text-style: bold; color: $error; }
        #error-hint { color: $foreground 60%; margin-top: 1; }
    }
    """

    BINDINGS = [
        Binding("escape,enter", "dismiss", "Continue", id="error.continue"),
        Binding("q", "app.quit", "Quit", id="error.quit"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="error-title")
            yield Static(self.message, id="error-message", markup=False)
            yield Label("esc: look at what was read   q: quit", id="error-hint")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
