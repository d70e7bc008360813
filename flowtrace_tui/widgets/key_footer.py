"""The footer's key hints, keeping the keys that matter most on a narrow terminal.

Textual's footer lists the focused widget's keys first and the app's last, and a narrow terminal
cuts the end: `? Help` and `q Quit` were the first to go at 80 columns. This footer keeps the
order but, when the keys do not fit, turns compact and then leaves out the least important ones
(see `IMPORTANCE`); every key stays listed in the help screen (?). It composes its keys again
only when what it would show changes (`recompose`).
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer

# Actions from the most to the least important to keep on screen; anything else comes last.
IMPORTANCE = (
    "quit", "help", "find", "functions", "next_change", "toggle_unchanged", "toggle", "choose", "sort",
    "toggle_follow", "toggle_pause", "next_hit", "filter",
    "toggle_detail", "hot_path", "expand_subtree", "toggle_output", "command_palette",
)


def _width(key_display: str, description: str, compact: bool, palette: bool) -> int:
    """Cells one key hint takes (Footer/FooterKey's CSS: padding, margins, the palette's border)."""
    text = cell_len(key_display) + 1 + cell_len(description)
    if palette:
        return text + (2 if compact else 3)
    return text + (1 if compact else 2) + (0 if compact else 1)


def _rank(action: str) -> int:
    name = action.rsplit(".", 1)[-1].split("(", 1)[0]  # "screen.sort(1)" -> "sort"
    return IMPORTANCE.index(name) if name in IMPORTANCE else len(IMPORTANCE)


class KeyFooter(Footer):
    """`Footer` that fits its key hints to the width, most important first (see module doc)."""

    _composed: tuple | None = None  # what the keys on it show (`_shows`), once composed

    def _shows(self) -> tuple:
        """What a compose would show now: the width and each key hint's binding, whether it is
        enabled and its tooltip (the screen's active bindings, as Footer.compose reads them)."""
        width = self.size.width or self.app.size.width
        if not self._bindings_ready:
            return (width,)
        palette = self.app.COMMAND_PALETTE_BINDING  # (shown though not `show`)
        hints = tuple((binding, enabled, tooltip) for key, (_, binding, enabled, tooltip)
                      in self.screen.active_bindings.items() if binding.show or key == palette)
        return (width, self.show_command_palette, self.combine_groups, hints)

    async def recompose(self) -> None:
        """Compose the keys again only when what they show changed. Textual's footer recomposes
        whenever the screen's bindings may have changed (the focus moved, an action's check
        asked again) and this one when its width changes: at a live session's start that was
        four times in its first half second, each mounting every key anew and laying the whole
        screen out again (~40-60 ms of the UI thread's CPU, 100 ms and more of wall time on a
        loaded machine), which held the first screens of calls back."""
        if not self.is_attached or self._shows() == self._composed:
            return
        await super().recompose()

    def compose(self) -> ComposeResult:
        self._composed = self._shows()
        keys = list(super().compose())  # FooterKey widgets (this app uses no binding groups)
        width = self.size.width or self.app.size.width

        def total(kept: list, compact: bool) -> int:
            return sum(_width(k.key_display, k.description, compact, k.has_class("-command-palette")) for k in kept)

        compact = total(keys, False) > width
        self.set_reactive(Footer.compact, compact)
        self.set_class(compact, "-compact")
        kept = list(keys)
        for key in sorted(keys, key=lambda k: -_rank(k.action)):  # the least important first
            if total(kept, compact) <= width:
                break
            kept.remove(key)
        for key in kept:
            key.compact = compact
        yield from kept

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != getattr(self, "_composed_width", None):
            self._composed_width = event.size.width
            self.call_after_refresh(self.recompose)
