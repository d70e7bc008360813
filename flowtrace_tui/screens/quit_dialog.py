"""Asked when quitting while the program started by `flowtrace-tui run` is still running."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class QuitDialog(ModalScreen[str | None]):
    """Dismissed with "stop" (stop the program, then quit), "leave" (quit, the program keeps
    running and recording) or None (stay)."""

    DEFAULT_CSS = """
    QuitDialog {
        align: center middle;
        & > Vertical {
            width: 64; height: auto; padding: 1 2;
            border: thick $primary 60%; background: $surface;
        }
        Label { width: 100%; margin-bottom: 1; }
        Horizontal { height: auto; }
        Button { margin-right: 1; }
    }
    """

    BINDINGS = [
        Binding("s,y", "choose('stop')", "Stop and quit", id="quit.stop"),
        Binding("l", "choose('leave')", "Leave running", id="quit.leave"),
        Binding("escape,n", "choose('')", "Cancel", id="quit.cancel"),
    ]

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"The program (pid {self.pid}) is still running.\n"
                        "Stop it (Ctrl-C, so its session file is finished) and quit?")
            with Horizontal():
                yield Button("Stop and quit (s)", variant="error", id="stop")
                yield Button("Leave it running (l)", id="leave")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose("" if event.button.id == "cancel" else str(event.button.id))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)
