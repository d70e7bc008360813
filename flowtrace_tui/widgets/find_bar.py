"""The find bar: a pattern, case / regex / argument-text toggles, validation while typing."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label

from ..model.search import Query, validate


class FindBar(Horizontal):
    """Posts `FindBar.Search` on enter and `FindBar.Closed` on escape."""

    DEFAULT_CSS = """
    FindBar {
        height: 1;
        background: $panel;
        display: none;
        &.-shown { display: block; }
        /* one row: no border, also when focused (Textual's `Input:focus` draws a tall border,
           which in one row shows only its top edge and hides the text being typed) */
        Input, Input:focus { width: 1fr; height: 1; border: none; padding: 0 1; background: $surface; }
        Input.-invalid { color: $error; }
        .toggle { width: auto; padding: 0 1; color: $foreground 50%; }
        .toggle.-on { color: $accent; text-style: bold; }
        #find-error { width: auto; color: $error; padding: 0 1; }
    }
    """

    BINDINGS = [
        Binding("escape", "close", "Close search", id="find.close"),
        Binding("alt+c,f2", "toggle_case", "Case", id="find.case"),
        Binding("alt+r,f3", "toggle_regex", "Regex", id="find.regex"),
        Binding("alt+t,f4", "toggle_text", "Args text", id="find.text"),
    ]

    case: reactive[bool] = reactive(False)
    regex: reactive[bool] = reactive(False)
    in_text: reactive[bool] = reactive(False)

    @dataclass
    class Search(Message):
        """Enter: search for `query`."""

        query: Query

    class Closed(Message):
        """Escape: the bar closed (the focus given back where it was)."""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search function names (enter: find, esc: close)", id="find-input")
        yield Label("", id="find-error")
        yield Label("Aa", classes="toggle", id="find-case")
        yield Label(".*", classes="toggle", id="find-regex")
        yield Label("args", classes="toggle", id="find-text")

    def open(self) -> None:
        """Show the bar with the focus in its input, at once: the keys typed after / (held by
        the app until now, search_app.py) go to the input. (`Widget.focus` moves the focus only
        after the messages already queued.) Enter and escape give it back, as at once."""
        self.add_class("-shown")
        field = self.query_one(Input)
        if self.screen.focused is not field:
            self._return_to = self.screen.focused
        self.screen.set_focus(field)

    def _give_focus_back(self) -> None:
        """The focus back where it was when the bar opened (the call tree, the functions
        table), at once: the keys typed after enter or escape go there."""
        back = getattr(self, "_return_to", None)
        if self.screen.focused is self.query_one(Input) and back is not None and back.is_attached:
            self.screen.set_focus(back)

    @property
    def has_the_focus(self) -> bool:
        return self.screen.focused is self.query_one(Input)

    @property
    def query_value(self) -> Query:
        return Query(self.query_one(Input).value, regex=self.regex, case=self.case, in_text=self.in_text)

    def _revalidate(self) -> None:
        q = self.query_value
        err = validate(q) if q.text else None
        self.query_one("#find-error", Label).update(err or "")
        self.query_one(Input).set_class(err is not None, "-invalid")

    def watch_case(self, v: bool) -> None:
        self.query_one("#find-case").set_class(v, "-on")

    def watch_regex(self, v: bool) -> None:
        self.query_one("#find-regex").set_class(v, "-on")
        self._revalidate()

    def watch_in_text(self, v: bool) -> None:
        self.query_one("#find-text").set_class(v, "-on")
        self.query_one(Input).placeholder = (
            "search names and argument/result text" if v else "search function names (enter: find, esc: close)"
        )

    def action_toggle_case(self) -> None:
        self.case = not self.case

    def action_toggle_regex(self) -> None:
        self.regex = not self.regex

    def action_toggle_text(self) -> None:
        self.in_text = not self.in_text

    def action_close(self) -> None:
        self.remove_class("-shown")
        self._give_focus_back()
        self.post_message(self.Closed())

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self._revalidate()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        q = self.query_value
        if q.text and validate(q) is None:
            self._give_focus_back()
            self.post_message(self.Search(q))
