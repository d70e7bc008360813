"""The functions view, one object the app holds: switching between the call tree and the
functions screen (screens/functions.py), the jumps between them, and back/forward history.

Jumps: `v` in the tree opens the functions view on the selected call's function; in the
functions view a caller or callee opens that function's row, a call opens the tree on it, and
`v`/esc goes back to the tree. Each jump is recorded (model/history.py); alt+left / alt+right
go back and forward through them. The app forwards its keys (`v`, alt+left, alt+right), each new
index and the search typed in the functions view; the screen is made once and kept (installed),
so its sort, search and cursor stay while the tree is shown, and its table is brought up to
date only while it is shown.
"""

from __future__ import annotations

from typing import Any, Protocol

from textual.app import SystemCommand
from textual.binding import Binding

from .model.functions import same_functions
from .model.history import FUNCTIONS, TREE, History, Place
from .model.index import TreeIndex
from .model.search import Query
from .screens.functions import FunctionsScreen
from .widgets.call_tree import CallTree

FUNCTIONS_BINDINGS = [
    Binding("v", "functions", "Functions", id="app.functions",
            tooltip="Switch between the call tree and the functions table (from a call: its function's row)"),
    Binding("alt+left", "history(-1)", "Back", show=False, id="app.back",
            tooltip="Back to where the last jump started (functions view, call tree)"),
    Binding("alt+right", "history(1)", "Forward", show=False, id="app.forward",
            tooltip="Forward again along the jumps"),
]

FUNCTIONS_HELP = [
    Binding("v", "", "Functions view / back to the call tree (from a call in the tree: its function's row)"),
    Binding("alt+left,alt+right", "", "Back / forward along the jumps (v, enter on a caller, callee or call)"),
    *FunctionsScreen.BINDINGS[1:],
    Binding("tab", "", "Between the functions table and the selected function's callers, callees and calls"),
    Binding("enter", "", "On a function: to its callers/callees/calls; on a caller or callee: its row; "
                         "on a call: the call tree at that call"),
]

# the app's keys that act on the call tree's screen: not offered while the functions view is shown
TREE_ACTIONS = frozenset({"find", "next_hit", "prev_hit", "filter", "toggle_grouping", "toggle_detail",
                          "detail_width", "cancel_loading", "toggle_follow", "toggle_pause", "toggle_output",
                          "process_tree"})


class FunctionsHost(Protocol):
    """What the functions view uses of the app it is part of."""

    index: TreeIndex | None
    query: Query | None

    @property
    def tree(self) -> CallTree: ...

    @property
    def screen(self) -> Any: ...

    def run_search(self, query: Query) -> None: ...

    def install_screen(self, screen: Any, name: str) -> Any: ...

    def push_screen(self, screen: Any) -> Any: ...

    def pop_screen(self) -> Any: ...

    def notify(self, message: str, *, timeout: float | None = None) -> None: ...


class FunctionsView:
    def __init__(self, host: FunctionsHost) -> None:
        self.host = host
        self.history = History()
        self.screen: FunctionsScreen | None = None

    @property
    def shown(self) -> bool:
        return self.screen is not None and self.host.screen is self.screen

    def can(self, action: str) -> bool:
        """Whether an app action is offered now (the tree's keys are not, over the functions)."""
        return not (self.shown and action in TREE_ACTIONS)

    # -- events the app forwards -----------------------------------------------------------------
    def index_shown(self, index: TreeIndex) -> None:
        if self.shown:
            self.screen.show_index(index)

    def search(self, query: Query) -> None:
        """A search typed in the functions view: the tree's search as well."""
        self.host.query = query
        self.host.run_search(query)

    def commands(self, over_functions: bool) -> list[SystemCommand]:
        """The command palette's entries for the functions view (`over_functions`: the palette
        was opened over it)."""
        out = [SystemCommand("Call tree" if over_functions else "Functions view",
                             "Back to the call tree (v)" if over_functions else
                             "One row per function: calls, total, self, mean, max, share, raised (v)", self.toggle)]
        if self.history.can_go(-1):
            out.append(SystemCommand("Back", "Back to where the last jump started (alt+left)", lambda: self.step(-1)))
        if self.history.can_go(1):
            out.append(SystemCommand("Forward", "Forward along the jumps (alt+right)", lambda: self.step(1)))
        if over_functions and self.screen is not None:
            screen = self.screen
            out += [SystemCommand("Sort by the next column", f"Now: {screen.sort.describe()} (s)",
                                  lambda: screen.action_sort(1)),
                    SystemCommand("Reverse the order", "Largest or smallest first (r)", screen.action_reverse),
                    SystemCommand("Search functions", "Functions with a call the search finds (/)", screen.action_find)]
            if screen.search_query is not None:
                out.append(SystemCommand("Clear the search", "Show every function (x)", screen.action_clear_filter))
        return out

    # -- places --------------------------------------------------------------------------------------
    def here(self) -> Place:
        if self.shown:
            return Place(FUNCTIONS, self.screen.selected_fid)
        ix, pos = self.host.index, self.host.tree.cursor_pos
        node = ix.node(pos) if ix is not None and 0 <= pos < ix.size else 0
        return Place(TREE, node if ix is not None and node <= ix.n else 0)

    def toggle(self) -> None:
        """`v`: from a call in the tree to its function's row; from the functions back to the tree."""
        if self.shown:
            self.jump(Place(TREE, self._tree_call()))
            return
        here = self.here()
        ix = self.host.index
        fid = int(ix.data.col("func")[here.key]) if ix is not None and here.key else 0
        if fid and ix is not None and ix.data.multi_process:  # the row of that function over all processes
            fid = int(same_functions(ix.data)[fid])
        self.jump(Place(FUNCTIONS, fid))

    def _tree_call(self) -> int:
        """The call selected in the tree (0: none)."""
        ix, pos = self.host.index, self.host.tree.cursor_pos
        node = ix.node(pos) if ix is not None and 0 <= pos < ix.size else 0
        return node if ix is not None and node <= ix.n else 0

    def jump(self, there: Place) -> None:
        self.history.jump(self.here(), there)
        self.go_to(there)

    def step(self, step: int) -> None:
        """alt+left (-1) / alt+right (+1)."""
        place = self.history.go(self.here(), step)
        if place is None:
            self.host.notify("No earlier jump to go back to." if step < 0 else "No later jump to go forward to.",
                             timeout=3)
            return
        self.go_to(place)

    def go_to(self, place: Place) -> None:
        if place.view == FUNCTIONS:
            self._show_functions()
            if place.key and not self.screen.select_function(place.key):
                self.host.notify("That function has no call in this view.", timeout=3)
            return
        if self.shown:
            self.host.pop_screen()
        ix = self.host.index
        if place.key and ix is not None and place.key <= ix.n:
            self.host.tree.move_to_pos(int(ix.pos_of[place.key]))
        self.host.tree.focus()

    def _show_functions(self) -> None:
        if self.screen is None:
            self.screen = FunctionsScreen()
            self.host.install_screen(self.screen, "functions")
        if not self.shown:
            self.host.push_screen("functions")
        if self.host.query is not None:
            self.screen.filter_by(self.host.query)
        if self.host.index is not None:
            self.screen.show_index(self.host.index)
