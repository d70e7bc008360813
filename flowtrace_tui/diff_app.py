"""`flowtrace-tui diff BASE.ftr NEW.ftr`: the merged call paths of two runs in one tree.

A worker reads both sessions and merges each by name -- big ones in two child processes at the
same time (model/diff_sides.py) -- and matches them (model/diff_tree.py); the tree then shows
every path of either run with both runs' calls and times and the change, coloured by what
changed. A second worker digests every call's outcome (argument, result and exception texts)
and re-colours the paths whose outcomes differ when it is done. Keys: J / K the next /
previous change, u hides unchanged subtrees, d the detail pane (both runs' figures and first
calls side by side), / searches path names as the call tree's search does (its find bar and
query; n / N the next / previous hit), the call tree's keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

from .model.diff_search import find_paths
from .model.diff_sides import SideReadError, read_sides
from .model.diff_tree import DiffIndex, Outcomes, compare_outcomes, diff_tree, name_keys
from .model.diff_view import diff_detail, diff_path_names
from .model.loader import TraceData
from .model.merged import MergeCancelled
from .model.rows import TreeRows
from .model.search import Query, next_hit
from .model.source import TraceSource
from .model.units import plural
from .screens import ErrorScreen, HelpScreen
from .search_app import SearchingApp, search_bindings
from .widgets import CallTree, ColumnHeader, DetailPane, FindBar, StatusLine
from .widgets.diff_tree import DiffTree, diff_columns
from .widgets.key_footer import KeyFooter

HELP = (
    "flowtrace-tui diff shows the call paths of two runs in one tree: under each row, the calls of one "
    "function at that path are one row (threads merged), with each run's number of calls and total time "
    "and the change. Colours: + new (only NEW), − gone (only BASE), ✗ exceptions changed, calls: called "
    "another number of times, ≠ other outcomes (arguments, results, exceptions), ▲ slower, ▼ faster. A time "
    "change counts when it is at least 10 % and at least the noise floor the detail pane names."
)


@dataclass
class DiffReady(Message):
    index: DiffIndex
    notes: list[str]


@dataclass
class DiffFailed(Message):
    error: str


@dataclass
class KindsReady(Message):
    index: DiffIndex
    outcomes: Outcomes


def notes_for(base: TraceData, new: TraceData) -> list[str]:
    """What the user should know about what was matched: damaged or unfinished files, other
    programs, threads merged."""
    notes = []
    for label, d in (("BASE", base), ("NEW", new)):
        if d.damage:
            notes.append(f"{label} damaged ({d.damage}): compared as far as it could be read")
        elif not d.finished:
            notes.append(f"{label} unfinished (still running, or crashed): compared as far as recorded")
        if d.n == 0:
            notes.append(f"{label} has no calls")
    prog = [os.path.basename(str((d.meta.get("argv") or ["?"])[0])) for d in (base, new)]
    if prog[0] != prog[1]:
        notes.append(f"different programs ({prog[0]} / {prog[1]}): paths matched by function names")
    if len(base.program_threads()) > 1 or len(new.program_threads()) > 1:
        notes.append("threads merged")
    return notes


class DiffApp(SearchingApp):
    """`DiffApp(base_source, new_source)`: the two sessions (tests pass in-memory ones);
    `processes`: read them in child processes (None: when they are big, diff_sides.py)."""

    TITLE = "flowtrace diff"
    CSS_PATH = "app.tcss"
    NO_HITS = "No path matches"
    SEARCHED = "paths"

    BINDINGS = [
        Binding("J", "next_change", "Next change", id="diff.next"),
        Binding("K", "prev_change", "Prev change", show=False, id="diff.prev"),
        *search_bindings("diff"),
        Binding("u", "toggle_unchanged", "Hide unchanged", id="diff.unchanged"),
        Binding("d", "toggle_detail", "Detail", id="diff.detail"),
        Binding("question_mark,f1", "help", "Help", id="diff.help"),
        Binding("q", "quit", "Quit", id="diff.quit"),
    ]

    def __init__(self, base: TraceSource, new: TraceSource, *, show_detail: bool = True,
                 processes: bool | None = None) -> None:
        super().__init__()
        self.base, self.new = base, new
        self.processes = processes
        self.index: DiffIndex | None = None
        self.rows: TreeRows | None = None
        self.notes: list[str] = []
        self.hide_unchanged = False
        self.changes = np.zeros(0, dtype=np.int64)
        self.loading = True
        self.comparing = False
        self.error: str | None = None
        self._show_detail = show_detail

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="tree-area"):
                yield ColumnHeader(columns=diff_columns, first="path", id="header")
                yield DiffTree(id="tree")
            yield DetailPane(id="detail")
        yield FindBar(id="find")
        yield StatusLine(id="status")
        yield KeyFooter()

    @property
    def tree(self) -> DiffTree:
        return self.query_one(DiffTree)

    def on_mount(self) -> None:
        self.screen.set_class(self.size.width < 100, "-narrow")
        if self._show_detail:
            self.query_one(DetailPane).add_class("-shown")
        self.tree.placeholder = "Reading both sessions…"
        self.screen.set_focus(self.tree)  # now, not after the keys already queued (app.py's on_mount)
        self.update_status()
        self.load()

    def on_resize(self) -> None:
        self.screen.set_class(self.size.width < 100, "-narrow")

    # -- loading -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        """Both sessions read and merged by name (in child processes when big), then matched."""
        worker = get_current_worker()
        stop = lambda: worker.is_cancelled  # noqa: E731
        try:
            a, b = read_sides([self.base, self.new], stop, self.processes)
            names, keys = name_keys([a.data, b.data])
            index = diff_tree((os.path.basename(self.base.path), a.data, a.merged),
                              (os.path.basename(self.new.path), b.data, b.merged), names, keys,
                              types=(a.types, b.types))
        except MergeCancelled:
            return
        except SideReadError as exc:
            self.post_message(DiffFailed(str(exc)))
            return
        except Exception as exc:  # shown on screen: the diff view never ends in a traceback
            self.post_message(DiffFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(DiffReady(index, notes_for(a.data, b.data)))

    def on_diff_ready(self, msg: DiffReady) -> None:
        self.loading = False
        self.index, self.notes = msg.index, msg.notes
        rows = TreeRows(msg.index)
        rows.initial_expand()
        self.rows = rows
        self.changes = msg.index.changed_positions()
        self.tree.placeholder = "Neither session has a call."
        self.tree.set_rows(rows, 0)
        self.update_status()
        self.update_detail()
        self.comparing = True
        self.compare_outcomes(msg.index)

    def on_diff_failed(self, msg: DiffFailed) -> None:
        self.loading = False
        self.error = msg.error
        self.tree.placeholder = f"Could not compare the sessions: {msg.error}"
        self.tree.changed()
        self.update_status()
        self.push_screen(ErrorScreen("Comparing the sessions failed", msg.error))

    @work(thread=True, exclusive=True, group="outcomes", exit_on_error=False)
    def compare_outcomes(self, index: DiffIndex) -> None:
        """Every call's outcome digested per path in both runs, then the paths re-classified."""
        worker = get_current_worker()
        try:
            outcomes = compare_outcomes(index, lambda: worker.is_cancelled)
        except MergeCancelled:
            return
        self.post_message(KindsReady(index, outcomes))

    def on_kinds_ready(self, msg: KindsReady) -> None:
        self.comparing = False
        if msg.index is not self.index:
            return
        msg.index.set_outcomes(msg.outcomes)
        self.changes = msg.index.changed_positions()
        if self.hide_unchanged:
            self._apply_unchanged_filter()
        self.tree.changed()
        self.update_status()
        self.update_detail()

    # -- keys ------------------------------------------------------------------------------------
    def _goto(self, positions: np.ndarray, forward: bool, none: str) -> None:
        """To the next (previous) of `positions` after the cursor, wrapping; `none` if empty."""
        i = next_hit(positions, self.tree.cursor_pos, forward)
        if i >= 0:
            self.tree.move_to_pos(int(positions[i]))
        else:
            self.notify(none, timeout=3)

    def action_next_change(self) -> None:
        self._goto(self.changes, True, "No path changed")

    def action_prev_change(self) -> None:
        self._goto(self.changes, False, "No path changed")

    # -- search (search_app.py): the call tree's find bar and query, over path names ---------------
    def find_hits(self, index: DiffIndex, query: Query, hidden: np.ndarray | None,
                  cancelled: Callable[[], bool]) -> np.ndarray:
        return find_paths(index, query, hidden, cancelled)

    def action_toggle_unchanged(self) -> None:
        if self.rows is None:
            return
        self.hide_unchanged = not self.hide_unchanged
        self._apply_unchanged_filter()
        self.update_status()

    def _apply_unchanged_filter(self) -> None:
        rows, pos = self.rows, self.tree.cursor_pos
        assert rows is not None and self.index is not None
        rows.hidden = self.index.unchanged_subtrees() if self.hide_unchanged else None
        rows.rebuild()
        self.tree.set_rows(rows, pos)
        self.run_search()  # hidden paths are no hits

    def action_toggle_detail(self) -> None:
        self.query_one(DetailPane).toggle_class("-shown")
        self.update_detail()

    def action_jump(self, pos: int) -> None:
        """Select a path by position (links in the detail pane's path)."""
        self.tree.move_to_pos(int(pos))
        self.tree.focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen([
            ("Moving", [b for b in CallTree.BINDINGS if isinstance(b, Binding) and not b.id.startswith("tree.depth_")]),
            ("Depth", [Binding("1-9", "", "Expand everything to depth N")]),
            ("Changes and search", [b for b in self.BINDINGS if isinstance(b, Binding)]),
            ("In the find bar", [b for b in FindBar.BINDINGS if isinstance(b, Binding)]),
        ], intro=HELP))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Next change", "Select the next path that changed (J)", self.action_next_change)
        yield SystemCommand("Previous change", "Select the previous path that changed (K)", self.action_prev_change)
        yield from self.search_commands()
        yield SystemCommand("Hide unchanged subtrees", "Show only paths with a change below them (u)",
                            self.action_toggle_unchanged)
        yield SystemCommand("Toggle detail pane", "Both runs' figures and calls of the path (d)", self.action_toggle_detail)

    # -- detail and status -----------------------------------------------------------------------
    @on(CallTree.CursorMoved)
    def _cursor_moved(self, msg: CallTree.CursorMoved) -> None:
        if msg.tree.is_attached:
            self.update_detail()
            self.update_status()

    def update_detail(self) -> None:
        pane = self.query_one(DetailPane)
        if not pane.has_class("-shown"):
            return
        ix, pos = self.index, self.tree.cursor_pos
        if ix is None or not 0 <= pos < ix.size:
            pane.show(None, [])
        else:
            pane.show(diff_detail(ix, pos), diff_path_names(ix, pos))

    def status_parts(self) -> list[str]:
        return [text for _, text in self._status_items()]

    def _status_items(self) -> list[tuple[int, str]]:
        items = [(3, f"[b]{os.path.basename(self.base.path)}[/b] → [b]{os.path.basename(self.new.path)}[/b]")]
        if self.loading:
            items.append((0, "[$warning]reading both sessions…[/]"))
        elif self.error is not None:
            items.append((0, "[$error]failed[/]"))
        elif self.index is not None:
            ix = self.index
            items.append((1, plural(ix.n, "path")))
            items.append((0, f"{plural(len(self.changes), 'change')}" if len(self.changes) else "no change"))
            i = int(np.searchsorted(self.changes, self.tree.cursor_pos)) if len(self.changes) else 0
            if len(self.changes) and i < len(self.changes) and self.changes[i] == self.tree.cursor_pos:
                items.append((0, f"change {i + 1:,} of {len(self.changes):,}"))
            if self.comparing:
                items.append((1, "[$warning]comparing outcomes…[/]"))
            if self.hide_unchanged:
                items.append((1, "unchanged hidden"))
            search = self.search_status()
            if search is not None:
                items.append((0, search))
            items.extend((4, n) for n in self.notes)
        return items

    def update_status(self) -> None:
        self.query_one(StatusLine).show(self._status_items())
