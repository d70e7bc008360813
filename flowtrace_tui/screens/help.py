"""The help screen: every key binding (from the bindings themselves, so it cannot drift)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "flowtrace-tui shows one line per call: tree guides, ▶/▼ to expand, the function with its "
    "arguments (a class body as 'class Name'), → result, ✗ exception, ⋯ unfinished, ‖N suspensions of a generator or coroutine; "
    "then total time (for a generator or coroutine: its lifetime, suspensions included), self time "
    "(running time minus the children's; time suspended never counts), share of the parent's running "
    "time (blue cool → red hot) and the number of calls under a collapsed row. H follows the child "
    "that ran longest. A row deeper than the guides can show starts with …[depth]. {Task-2 ← main}: "
    "the first call of an asyncio task and the call that created it (C selects that call; t groups "
    "by thread, by task, or not at all). m merges identical call paths: under each row, the calls "
    "of one function are one row, with how many calls it stands for (×N or the calls column), their "
    "summed times and how many raised (✗ N raised); m again shows the calls."
)
PROCESSES_NOTE = (
    "This session has several processes (flowtrace run follows children): each is at the top, "
    "named by pid and command, with how it ended (→ exit 0, ✗ exit 3, ⋯ running), then its threads "
    "and tasks. {started pid 123} marks the call that started a process (S goes there and back); "
    "T shows the process tree."
)


def _key_names(binding: Binding) -> str:
    names = {"left_square_bracket": "[", "right_square_bracket": "]", "question_mark": "?",
             "slash": "/", "space": "space", "pageup": "PgUp", "pagedown": "PgDn",
             "less_than_sign": "<", "greater_than_sign": ">"}
    return " ".join(names.get(k.strip(), k.strip()) for k in binding.key.split(","))


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > VerticalScroll {
            width: 90%; max-width: 100; height: 90%;
            border: thick $primary 60%; background: $surface; padding: 0 1;
        }
    }
    """

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]], notes: str = "", intro: str = INTRO) -> None:
        """`notes`: said after the introduction (what this session has that others do not);
        `intro`: the introduction (the diff view has its own)."""
        super().__init__()
        self.sections = sections
        self.notes = notes
        self.intro = intro
        # (keys, description) rows, as shown
        self.rows = [(_key_names(b), b.description) for _, bs in sections for b in bs if b.description]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True, min_width=14)
        table.add_column()
        for title, bindings in self.sections:
            table.add_row(Text(title, style="bold underline"), "")
            for b in bindings:
                if b.description:
                    table.add_row(Text(_key_names(b), style="bold"), b.description)
            table.add_row("", "")
        with VerticalScroll():
            yield Static(Text("flowtrace-tui — keys", style="bold"))
            yield Static(Text(self.intro + ("\n\n" + self.notes if self.notes else "") + "\n"))
            yield Static(table)
            yield Static(Text("ctrl+p opens the command palette (all commands, themes). esc closes this.", style="dim"))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
