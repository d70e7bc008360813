"""The call tree's search, wired once for the explorer (app.py) and the diff view (diff_app.py).

/ opens the find bar; its query is searched in a worker over the index on screen (leaving out
what the view hides); the hits are marked in the tree and the cursor goes to the first one
unless it is on one already; n / N walk them, wrapping; the status line says where the cursor
is among them. Each app says how its index is searched (`find_hits`: calls by function name or
text, or merged paths by name), what n / N say when nothing matches (`NO_HITS`) and what the
search finds, for the command palette (`SEARCHED`).

Keys typed after a key that moves the focus wait for it (`on_event`): / (ctrl+f) opening a find
bar, and escape or enter leaving a text field. Textual hands each key the app takes from its
queue to the focused widget, and runs the key's binding only once the key has bubbled back up to
the app, behind the keys queued meanwhile: typed while the app is busy (loading or following a
big session), the word after / reached the call tree (m turned merged paths on, e expanded, c
collapsed) before / had opened the find bar, and a / after escape went into the closing bar. So
the app holds the keys behind such a key until it comes back to the app and its binding has run
(the bar open and its input focused, or closed and the tree focused), then hands them on in
order. (In a text field / is a character: it moves nothing there.)"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.widgets import Input, TextArea
from textual.worker import get_current_worker

from .messages import SearchDone
from .model.search import Query, hit_status, next_hit
from .widgets import FindBar


FIND_KEYS = ("slash", "ctrl+f")  # the keys that open a find bar (here and in the functions view)


def search_bindings(prefix: str) -> list[Binding]:
    """/ (ctrl+f) opens the find bar, n / N go to the next / previous hit; ids `<prefix>.find`,
    `<prefix>.next_hit`, `<prefix>.prev_hit`."""
    return [
        Binding(",".join(FIND_KEYS), "find", "Search", id=f"{prefix}.find"),
        Binding("n", "next_hit", "Next hit", id=f"{prefix}.next_hit"),
        Binding("N", "prev_hit", "Prev hit", show=False, id=f"{prefix}.prev_hit"),
    ]


class SearchingApp(App[None]):
    """An app with a call tree (`tree`), the index it shows (`index`, None while loading) and
    its view (`rows`: `rows.hidden` is left out of the hits), searched with the find bar."""

    NO_HITS: str | None = None  # what n / N notify when there is no hit (None: nothing)
    SEARCHED = "calls"  # what a search finds: "Find calls by function name or argument text"

    index: Any
    rows: Any

    def __init__(self) -> None:
        super().__init__()
        self.search_query: Query | None = None  # the find bar's last query
        self.hits = np.empty(0, dtype=np.int64)  # its hits in the index on screen (positions, sorted)
        self.searching = False  # a search worker is running
        self._waited: events.Key | None = None  # a key that moves the focus, on its way
        self._waited_at: Any = None  # the widget it went to
        self._held: list[events.Key] = []  # the keys typed behind it, in order

    def _moves_focus(self, key: str) -> bool:
        """Whether `key`, pressed now, moves the focus once its binding runs: / (ctrl+f) opens
        a find bar (not in a text field: there it is a character), escape or enter leave one."""
        if isinstance(self.focused, Input):
            return key in ("escape", "enter")
        return key in FIND_KEYS and not isinstance(self.focused, TextArea)

    async def on_event(self, event: events.Event) -> None:
        """Keys typed behind a key that moves the focus wait until its binding has run (see the
        module's docstring)."""
        if not isinstance(event, events.Key):
            await super().on_event(event)
        elif event.is_forwarded:  # back from the focused widget: its bindings run now
            await super().on_event(event)
            if event is self._waited:
                await self._release_keys()
        elif self._waited is not None and self._waited_at.is_attached:
            self._held.append(event)
        else:
            if self._waited is not None:  # the widget went away with the key: nothing to wait for
                await self._release_keys()
            if self._moves_focus(event.key):
                self._waited, self._waited_at = event, self.focused or self.screen
            await super().on_event(event)

    async def _release_keys(self) -> None:
        """Hand the keys held on, in order (to the widget focused now), each as if just typed
        (one that moves the focus is waited for again)."""
        held, self._held, self._waited = self._held, [], None
        for i, key in enumerate(held):
            if self._waited is not None:
                self._held = held[i:] + self._held
                return
            await self.on_event(key)

    @property
    def tree(self) -> Any:
        raise NotImplementedError

    def find_hits(self, index: Any, query: Query, hidden: np.ndarray | None,
                  cancelled: Callable[[], bool]) -> np.ndarray:
        """The positions in `index` that `query` finds (sorted); runs in a worker thread."""
        raise NotImplementedError

    def update_status(self) -> None:
        """Redraw the status line (with `search_status()` in it)."""

    def find_bar(self) -> FindBar:
        return self.query_one(FindBar)

    def action_find(self) -> None:
        self.find_bar().open()

    @on(FindBar.Search)
    def _search(self, msg: FindBar.Search) -> None:
        self.search_query = msg.query
        self.run_search(msg.query)
        self._find_closed()

    @on(FindBar.Closed)
    def _find_closed(self) -> None:
        """The focus to the tree if the bar could not give it back (it is given back at once,
        before the keys typed behind enter / escape: a deferred focus here would take it from
        a bar they opened again)."""
        if self.find_bar().has_the_focus:
            self.screen.set_focus(self.tree)

    def run_search(self, query: Query | None = None) -> None:
        """Search the index on screen for `query` (default: the last one) in a worker; its hits
        come back as `SearchDone`."""
        query = query if query is not None else self.search_query
        if self.index is None or query is None:
            return
        self.searching = True
        self.update_status()
        self._search_worker(query, self.index, self.rows.hidden if self.rows else None)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search_worker(self, query: Query, index: Any, hidden: np.ndarray | None) -> None:
        worker = get_current_worker()
        hits = self.find_hits(index, query, hidden, lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(SearchDone(query, index, hits))

    def on_search_done(self, msg: SearchDone) -> None:
        if msg.index is not self.index or msg.query != self.search_query:
            return  # an older search, or one of an index no longer shown
        first = not self.searching or len(self.hits) == 0  # a new search: to its first hit
        self.searching = False
        self.hits = msg.hits
        self.tree.set_hits(msg.hits)
        if len(msg.hits) and first:
            pos = self.tree.cursor_pos
            i = int(np.searchsorted(msg.hits, pos))
            if i >= len(msg.hits) or msg.hits[i] != pos:
                self._goto_hit(True)
        self.update_status()

    def _goto_hit(self, forward: bool) -> None:
        """To the next (previous) hit after the cursor, wrapping."""
        i = next_hit(self.hits, self.tree.cursor_pos, forward)
        if i >= 0:
            self.tree.move_to_pos(int(self.hits[i]))
            self.update_status()
        elif self.NO_HITS is not None:
            self.notify(self.NO_HITS, timeout=3)

    def action_next_hit(self) -> None:
        if self.search_query is None:
            self.action_find()
        else:
            self._goto_hit(True)

    def action_prev_hit(self) -> None:
        if self.search_query is not None:
            self._goto_hit(False)

    def search_status(self) -> str | None:
        """The status line's word on the search: `searching…`, where the cursor is among the
        hits, or None before the first search."""
        if self.searching:
            return "searching…"
        return hit_status(self.hits, self.tree.cursor_pos) if self.search_query is not None else None

    def search_commands(self) -> Iterator[SystemCommand]:
        """The command palette's search entries."""
        yield SystemCommand("Search", f"Find {self.SEARCHED} by function name or argument text (/)", self.action_find)
        yield SystemCommand("Next search hit", "Jump to the next hit (n)", self.action_next_hit)
        yield SystemCommand("Previous search hit", "Jump to the previous hit (N)", self.action_prev_hit)
