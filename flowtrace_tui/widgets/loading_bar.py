"""Progress of the background loading, with the key that cancels it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


LABEL_WIDTH = len("Loading 100,000,000 calls")


class LoadingBar(Horizontal):
    DEFAULT_CSS = """
    LoadingBar {
        height: 1;
        background: $panel;
        padding: 0 1;
        display: none;
        &.-loading { display: block; }
        Label { width: auto; padding-right: 1; }
        ProgressBar { width: 1fr; }
        #loading-hint { color: $foreground 60%; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Label("Loading", id="loading-label")
        yield ProgressBar(total=100, show_eta=False, id="loading-progress")
        yield Label("esc to cancel", id="loading-hint")

    def show_progress(self, done: int, total: int, calls: int) -> None:
        """Bytes `done` of `total` read, `calls` loaded: the bar shows while loading lasts."""
        self.add_class("-loading")
        bar = self.query_one(ProgressBar)
        bar.update(total=max(1, total), progress=min(done, total))
        label = self.query_one("#loading-label", Label)
        # as wide as for 100 million calls: a new layout of the whole screen only when the
        # label's width changes (ten updates a second); a busy program's count grew a digit
        # group every second or so at first, each a layout (30-100 ms of the UI thread at load
        # 11-19) while the live view's first screens were due
        text = f"Loading {calls:,} calls".ljust(LABEL_WIDTH)
        label.update(text, layout=len(text) != len(str(label.content)))

    def finish(self) -> None:
        """Loading is over (or cancelled): the bar goes."""
        self.remove_class("-loading")
