"""The explorer app: wires the model (in workers) to the widgets.

The data source is injected (`TraceSource`, or anything with its interface), so tests run the
app on in-memory sessions; so is the loading pipeline (model/pipeline.py: source, update policy,
the loader loop), which runs in a thread worker and publishes progress and index snapshots (the
first screen early, then as the policy says). The UI thread carries its view (expanded state,
cursor, search) to each snapshot by call id. `poll_interval` (None: read to the end once) keeps
polling a growing file. The live view (follow, pause, the program: live_view.py) is one object
the app holds and forwards its live keys and events to, the same for every kind of session.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Callable, Iterable

import numpy as np
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import get_current_worker

from .messages import IndexReady, LoadFinished, LoadProgress
from .model.call_detail import detail_of, path_to
from .model.empty import no_calls_reason
from .model.filters import Filters
from .model.index import TreeIndex
from .model.live import LIVE, UNKNOWN
from .model.merged import same_nodes
from .model.pipeline import Event, Finished, Pipeline, Progress, Snapshot
from .model.pytest_sessions import failure_call
from .model.rows import TreeRows
from .model.search import Query, find
from .model.source import TraceSource
from .model.units import fmt_ns, plural
from .model.window import same_calls, window_scope
from .launch import Child
from .functions_view import FUNCTIONS_BINDINGS, FUNCTIONS_HELP, FunctionsView
from .live_view import LIVE_BINDINGS, STDIN_NOTE, LiveView
from .model.history import FUNCTIONS, TREE, Place
from .model.process_view import process_at, process_group_pos
from .merged_paths import MergedPaths
from .screens.functions import FunctionsScreen, OpenCall, OpenFunction, SearchAll
from .screens import ErrorScreen, FilterDialog, HelpScreen
from .screens.help import PROCESSES_NOTE
from .screens.process_tree import ProcessTreeScreen
from .search_app import SearchingApp, search_bindings
from .widgets import CallTree, ColumnHeader, DetailPane, FindBar, LoadingBar, StatusLine
from .widgets.key_footer import KeyFooter
from .widgets.log_pane import LogPane

SYNC_VIEW_LIMIT = 300_000  # view changes on an index this small run on the UI thread (~ms)
# How long the loader thread may hold the GIL while the UI thread waits for it (Python's default
# is 5 ms). The UI thread gives the GIL up at every turn of its event loop (each select of
# asyncio, dozens per screen update) and then waits up to this long to get it back while the
# loader reads or indexes: following a busy program, a screen update of ~25 ms of CPU took
# 100-400 ms of wall time at 5 ms (each snapshot's way to the screen measured in the real
# explorer, benchmarks/live_stages.py). Set while the explorer runs, restored when it ends.
UI_SWITCH_INTERVAL_S = 0.0005


def _same_node(old: TreeIndex, node: int, ix: TreeIndex) -> int:
    """Position in `ix` of `old`'s node `node` (calls by id, groups by key); the cursor's
    fallback for a group gone: the first row (0); -1 for no node."""
    if 0 < node <= old.n and (old.merged or ix.merged):  # to or from merged call paths
        same = same_nodes(old, [node], ix)
        return int(ix.pos_of[same[0]]) if len(same) else 0
    if 0 < node <= old.n and (old.data.window is not None or ix.data.window is not None):
        call = int(same_calls(old.data, np.array([node]), ix.data, ix.n)[0])  # to or from a window
        return int(ix.pos_of[call]) if call else 0
    if 0 < node <= min(ix.n, old.n):
        return int(ix.pos_of[node])
    if node > old.n:
        g = old.group(node)
        match = [h for h in ix.groups if g is not None and h.key == g.key]
        return int(ix.pos_of[match[0].node]) if match else 0
    return -1


class FlowtraceApp(SearchingApp):
    """`FlowtraceApp(TraceSource.open(path))`; tests pass a source over in-memory bytes."""

    CSS_PATH = "app.tcss"
    TITLE = "flowtrace"

    BINDINGS = [
        *LIVE_BINDINGS,
        *search_bindings("app"),
        Binding("f", "filter", "Filter", id="app.filter"),
        *FUNCTIONS_BINDINGS,
        Binding("t", "toggle_grouping", "Group", show=False, id="app.grouping"),
        Binding("T", "process_tree", "Processes", id="app.processes"),
        Binding("m", "toggle_merged", "Merged paths", show=False, id="app.merged"),
        Binding("d", "toggle_detail", "Detail", id="app.detail"),
        Binding("less_than_sign", "detail_width(-5)", "Detail narrower", show=False, id="app.detail_narrower"),
        Binding("greater_than_sign", "detail_width(5)", "Detail wider", show=False, id="app.detail_wider"),
        Binding("escape", "cancel_loading", "Cancel loading", show=False, id="app.cancel_loading"),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, source: TraceSource, *, poll_interval: float | None = None, show_detail: bool = True,
                 program: Child | None = None, attacher: Child | None = None, log_path: str | None = None,
                 pipeline: Pipeline | None = None) -> None:
        """`pipeline`: how the session is read and indexed (default: a `Pipeline` over
        `source`, following the file every `poll_interval` s when given)."""
        super().__init__()
        self.source = source
        self.pipeline = pipeline or Pipeline(source, poll_interval=poll_interval)
        self.index: TreeIndex | None = None  # the index on screen
        self.rows: TreeRows | None = None  # the view on screen
        self._main: Screen | None = None  # the main screen, once mounted
        self._switch_interval = sys.getswitchinterval()  # the process's own, restored on unmount
        self._found: dict[type, Widget] = {}  # main_widget's widgets, by kind
        self.live_view = LiveView(self, self.pipeline, program=program, attacher=attacher, log_path=log_path)
        self.functions = FunctionsView(self)
        self.filters = Filters()
        self.grouped = True
        self.grouping = "thread"  # t cycles: "thread" -> "task" (tasks out of their callers) -> "off"
        self.loading = True
        self.load_cancelled = False
        self.detail_width = 45
        self._show_detail = show_detail
        self._progress = (0, 0)
        self._load_error: str | None = None
        self._failure_shown = False
        self.paths = MergedPaths(self)  # the merged-paths toggle (m)

    # -- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield LoadingBar(id="loading")
        with Horizontal(id="main"):
            with Vertical(id="tree-area"):
                yield ColumnHeader(id="header")
                yield CallTree(id="tree")
                yield LogPane(id="log")
            yield DetailPane(id="detail")
        yield FindBar(id="find")
        yield StatusLine(id="status")
        yield KeyFooter()

    def _w(self, kind):
        """A widget of the main screen (app.query_one would search a modal screen on top)."""
        assert self._main is not None
        widget = self.main_widget(kind)
        return widget if widget is not None else self._main.query_one(kind)  # (raises NoMatches)

    @property
    def tree(self) -> CallTree:
        """The main screen's call tree."""
        return self._w(CallTree)

    def main_widget(self, kind: type):
        """The main screen's widget of this kind, None once the app closes (widgets gone).
        Kept once found (a query walks the whole screen: ~10% of the UI thread's time while
        following a busy program, where the status line, ticks and snapshots ask many times a
        second); found again once it is no longer attached."""
        widget = self._found.get(kind)
        if widget is not None and widget.is_attached:
            return widget
        found = self._main.query(kind) if self._main is not None else None
        widget = found.first() if found else None
        if widget is not None:
            self._found[kind] = widget
        return widget

    def on_mount(self) -> None:
        self._main = self.screen
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(UI_SWITCH_INTERVAL_S, self._switch_interval))
        # the objects made so far (modules, the screen's widgets and styles) live as long as the
        # app: left out of the collector's full passes, which hold the GIL for the UI and the
        # loader alike (following a busy program: 8 in 12 s, 40-110 ms each). Undone on unmount.
        gc.freeze()
        self.on_resize()
        if self._show_detail:
            self._w(DetailPane).add_class("-shown")
        # the focus moves now, not after the keys already queued (`Widget.focus` defers it): a
        # / typed as the app starts opens the find bar, which this must not take back
        self.screen.set_focus(self.tree)
        self.live_view.mount()
        self.update_status()
        self.load()
        self.call_after_refresh(self.pipeline.screen_up)  # (a session far behind: pipeline.py)

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)
        gc.unfreeze()

    def on_resize(self) -> None:
        (self._main if self._main is not None else self.screen).set_class(self.size.width < 100, "-narrow")

    # -- loading (thread worker) ----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        """The loader thread: the pipeline's loop, its events posted as messages."""
        worker = get_current_worker()
        self.pipeline.run(lambda: worker.is_cancelled, self._post_event, screen=True)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Show a snapshot the live view held back (the UI thread), now: posted, it came after
        the loader's snapshots already queued, all newer, and stayed on screen over them (when
        the last of them came first: "reading N earlier" after the session ended)."""
        self.on_index_ready(IndexReady(snapshot.index, snapshot.final))

    def _post_event(self, event: Event) -> None:
        """Worker side: one pipeline event as a message to the UI thread."""
        if isinstance(event, Snapshot):
            self.post_message(IndexReady(event.index, event.final))
        elif isinstance(event, Progress):
            self.post_message(LoadProgress(event.done, event.total, event.calls))
        elif isinstance(event, Finished):
            self.post_message(LoadFinished(event.cancelled, event.error))

    def on_load_progress(self, msg: LoadProgress) -> None:
        self._progress = (msg.done, msg.total)
        bar = self.main_widget(LoadingBar)  # (None: posted as the app closed)
        if self.loading and bar is not None:
            bar.show_progress(msg.done, msg.total, msg.calls)

    def on_index_ready(self, msg: IndexReady) -> None:
        closing = self.main_widget(CallTree) is None  # (posted as the app closed: widgets gone)
        if closing or self.live_view.hold(Snapshot(msg.index, msg.final)):  # paused: shown when the pause ends
            self.pipeline.drawn(msg.index)
            return
        self.call_after_refresh(self.pipeline.drawn, msg.index)  # (a catch-up step waits for the redraw)
        first = self.index is None
        self._apply_index(msg.index)
        self.live_view.index_shown()
        self.functions.index_shown(msg.index)
        # the selected call's details come from the new index at once (when the cursor stays
        # on the same call no CursorMoved follows; in follow mode the pane lagged an update);
        # the first index's once the tree is drawn: its source excerpt's highlighting makes
        # Pygments' lexer first (~50-60 ms at load 23), which held the first screen back
        if first:
            self.call_after_refresh(self.update_detail)
        else:
            self.update_detail()
        if msg.final:
            self.loading = False
            self._w(LoadingBar).finish()
        self.update_placeholder()
        self.update_status()

    def _open_on_failure(self) -> None:
        """A failed test's session (pytest --flowtrace) opens on the call where the failing
        exception was raised: selected, its callers expanded, its exception in the detail pane."""
        if self.index is not None and not self.index.merged and not self._failure_shown:
            self._failure_shown = True
            node = failure_call(self.source.data)
            if 0 < node <= self.index.n:
                self.tree.move_to_pos(int(self.index.pos_of[node]))

    def on_load_finished(self, msg: LoadFinished) -> None:
        self.loading = False
        self.load_cancelled = msg.cancelled
        bar = self.main_widget(LoadingBar)
        if bar is None or self.main_widget(CallTree) is None:
            return  # (posted as the app closed: the loader's last event; widgets going or gone)
        bar.finish()
        self._load_error = msg.error
        if msg.error is not None:
            self.live_view.loading_failed()
        self.update_placeholder()
        self._open_on_failure()
        if msg.error:
            self.push_screen(ErrorScreen("Reading the session failed", msg.error))
        elif self.source.damage:
            self.push_screen(ErrorScreen("The session file is damaged",
                                         f"{self.source.damage}.\nEverything before that point was loaded."))
        self.update_status()

    def update_placeholder(self) -> None:
        """What the tree says where it has no row: why there is no call (see model/empty.py),
        or that the filters hide every call."""
        tree = self.tree
        if self.index is not None and self.index.size:
            text = "Every call is hidden by the filters (f changes them)."
        elif self._load_error is not None:
            text = f"Could not load: {self._load_error}"
        elif self.loading and not self.live_view.active:
            text = "Loading…"
        else:
            data = self.source.data
            live = self.live_view.active and self.live_view.tail.state in (LIVE, UNKNOWN)
            text = no_calls_reason(data.meta, data.ends, self.source.damage, live)
        if text != tree.placeholder:
            tree.placeholder = text
            tree.changed()

    def _apply_index(self, ix: TreeIndex) -> None:
        """Show a new index: the view (expanded nodes, cursor, top line) carried over to it,
        here on the UI thread that owns the view (a grown index: in proportion to what is new)."""
        if self.paths.divert(ix):  # merged paths on: shown once merged
            return
        tree = self.tree
        cursor_pos = -1
        top_pos = None
        if self.rows is None or self.rows.index.size == 0:
            rows = TreeRows(ix, self.filters)
            rows.initial_expand()
        else:
            old = self.index
            pos = tree.cursor_pos
            node = old.node(pos) if old is not None and pos >= 0 else 0
            rows = self.rows.carry_to(ix)
            cursor_pos = _same_node(old, node, ix) if old is not None else -1
            if old is not None and len(self.rows) and 0 <= tree.scroll_offset.y < len(self.rows):
                top_pos = _same_node(old, old.node(self.rows.pos(int(tree.scroll_offset.y))), ix)
        self.index, self.rows = ix, rows
        tree.set_rows(rows, cursor_pos if cursor_pos >= 0 else 0, top_pos)
        if self.query is not None:
            self.run_search(self.query)

    def action_cancel_loading(self) -> None:
        if self.loading:
            for w in self.workers:
                if w.group == "load":
                    w.cancel()

    # -- selection -> detail pane and status ------------------------------------------------------
    @on(CallTree.CursorMoved)
    def _cursor_moved(self, msg: CallTree.CursorMoved) -> None:
        if not msg.tree.is_attached:  # a move queued while the app closed: nothing to show it in
            return
        self.live_view.cursor_moved()
        self.update_detail()
        self.update_status()

    @on(CallTree.GutterChanged)
    def _gutter_changed(self, msg: CallTree.GutterChanged) -> None:
        header = self.main_widget(ColumnHeader)  # None: posted as the app closed (widgets gone)
        if header is not None:
            header.gutter = msg.width

    @on(CallTree.Notice)
    def _notice(self, msg: CallTree.Notice) -> None:
        self.notify(msg.text, timeout=4)

    def update_detail(self) -> None:
        """Show the selected call in the detail pane (when shown)."""
        pane = self._w(DetailPane)
        if pane.has_class("-shown"):
            ix, pos = self.index, self.tree.cursor_pos
            if ix is None or not 0 <= pos < ix.size:
                pane.show(None, [])
            else:
                pane.show(detail_of(ix, pos, self.tree.live_now), path_to(ix, pos))

    def status_parts(self) -> list[str]:
        """The status line's parts (also used by tests)."""
        return [text for _, text in self._status_items()]

    def _status_items(self) -> list[tuple[int, str]]:
        """(importance, markup) of each part of the status line, in order; a narrow terminal
        leaves out the least important (highest number) first: the state and the search hit
        count stay, the duration and thread counts go."""
        src, data = self.source, self.source.data
        items: list[tuple[int, str]] = []

        def add(importance: int, text: str) -> None:
            items.append((importance, text))

        add(3, f"[b]{os.path.basename(src.path)}[/b]")
        # the state comes second so that a narrow terminal still shows it
        if self.loading:
            done, total = self._progress
            add(0, f"[$warning]loading {100 * done // max(1, total)}%[/]")
        elif self._load_error is not None:
            add(0, "[$error]loading failed[/]")
        elif self.load_cancelled:
            add(0, "[$warning]loading cancelled[/]")
        elif src.damage:
            add(0, f"[$error]damaged: {src.damage}[/]")
        elif data.finished:
            ends = data.ends or {}
            reason = ends.get("reason") or "finished"
            code = ends.get("exit_code")
            if ends.get("error"):
                add(0, f"[$error]finished: {ends['error']}[/]")
            else:
                add(0, "finished" + (f" ({reason})" if reason not in ("exit", "finished") else "") + ("" if code is None else f", exit {code}"))
        else:
            add(0, self.live_view.state_text() or "[$error]unfinished (no end: crashed or still running)[/]")
        for p in self.live_view.status_parts():
            add(1, p)
        add(2, plural(data.calls_read, "call"))
        if data.multi_process:
            add(4, f"{len(data.processes):,} processes")
        threads = len(data.program_threads())
        if threads > 1:
            add(5, plural(threads, "thread"))
        if data.tasks:
            add(5, plural(len(data.tasks), "task"))
        add(4, fmt_ns(self.live_view.now_ns() or data.t_end))
        if self.filters.active:
            add(2, f"filter {self.filters.describe()}")
        if self.paths.status():
            add(1, self.paths.status())
        if not self.grouped:
            add(3, "ungrouped")
        elif self.grouping == "task":
            add(3, "by task")
        search = self.search_status()
        if search is not None:
            scope = window_scope(self.index.data) if self.index is not None and not self.searching else None
            # a window of the newest calls is searched while the whole index catches up
            add(0, search + (f" [$warning]in the {scope}[/]" if scope else ""))
        return items

    def update_status(self) -> None:
        """Redraw the status line (not once the app closes: a live tick may come after the
        status line is gone; test_mouse_scrolling_ends_follow_mode failed so under load)."""
        line = self.main_widget(StatusLine)
        if line is not None:
            line.show(self._status_items())

    # -- search (search_app.py: the find bar, n / N, the hits) ------------------------------------
    @property
    def query(self) -> Query | None:  # type: ignore[override]
        """The find bar's last query: the explorer's name for `search_query` (functions_view.py
        sets it). Like the plain attribute it was, it hides App.query (the DOM query)."""
        return self.search_query

    @query.setter
    def query(self, value: Query | None) -> None:
        self.search_query = value

    def find_bar(self) -> FindBar:
        return self._w(FindBar)

    def find_hits(self, index: TreeIndex, query: Query, hidden: np.ndarray | None,
                  cancelled: Callable[[], bool]) -> np.ndarray:
        return find(index, query, hidden, cancelled=cancelled)

    def action_jump(self, pos: int) -> None:
        """Select a call by position (links in the detail pane's path)."""
        self.tree.move_to_pos(int(pos))
        self.tree.focus()

    # -- filters, grouping, detail pane -----------------------------------------------------------
    def action_filter(self) -> None:
        mods = sorted({f.module for f in self.source.data.functions if f is not None})
        self.push_screen(FilterDialog(self.filters, mods), self._apply_filters)

    def _apply_filters(self, filters: Filters | None) -> None:
        if filters is None or self.rows is None:
            return
        self.filters = filters
        rows = self.rows
        if rows.index.size <= SYNC_VIEW_LIMIT:
            self._show_filtered(rows.with_filters(filters))
        else:  # O(N): computed in a worker while the current view stays usable
            self._filter_worker(rows, rows.version, filters)
        self.update_status()

    @work(thread=True, exclusive=True, group="filter", exit_on_error=False)
    def _filter_worker(self, rows: TreeRows, version: int, filters: Filters) -> None:
        try:
            new = rows.with_filters(filters)
        except Exception:  # the view changed under us: redone from the new one
            new = None
        self.call_from_thread(self._filtered, rows, version, filters, new)

    def _filtered(self, rows: TreeRows, version: int, filters: Filters, new: TreeRows | None) -> None:
        if filters != self.filters or self.rows is None:
            return  # superseded by other filters
        unchanged = rows is self.rows and rows.version == version
        if new is not None and unchanged:
            self._show_filtered(new)
        elif unchanged:  # the worker failed on a view nobody touched: do it here
            self._show_filtered(rows.with_filters(filters))
        else:  # the view or the index changed meanwhile: filter the current one
            self._filter_worker(self.rows, self.rows.version, filters)

    def _show_filtered(self, rows: TreeRows) -> None:
        pos = self.tree.cursor_pos
        self.rows = rows
        self.tree.set_rows(rows, pos)
        if self.query is not None:
            self.run_search(self.query)
        self.update_status()

    def action_toggle_grouping(self) -> None:
        cycle = ["thread", "task", "off"] if self.source.data.tasks else ["thread", "off"]
        self.grouping = cycle[(cycle.index(self.grouping) + 1) % len(cycle)] if self.grouping in cycle else "thread"
        self.grouped = self.grouping != "off"
        self._regroup()
        self.update_status()

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def _regroup(self) -> None:
        tasks = self.grouping == "task"
        self.pipeline.set_grouped(self.grouped, tasks)  # the loader's next indexes too
        self._post_event(Snapshot(self.pipeline.build(self.grouped, tasks), not self.loading))

    def action_toggle_merged(self) -> None:
        self.paths.toggle()

    def action_jump_call(self, call: int) -> None:
        """Select a call of the call tree (links in a merged path's detail)."""
        self.paths.jump_to_call(int(call))

    def action_toggle_detail(self) -> None:
        pane = self._w(DetailPane)
        pane.toggle_class("-shown")
        self.update_detail()

    def action_detail_width(self, delta: int) -> None:
        pane = self._w(DetailPane)
        self.detail_width = max(20, min(80, self.detail_width + int(delta)))
        if self._main.has_class("-narrow"):
            pane.styles.height = f"{self.detail_width}%"
        else:
            pane.styles.width = f"{self.detail_width}%"

    def action_help(self) -> None:
        live = self.live_view
        # the live keys on offer now (follow and pause only while the session may still grow)
        live_keys = [b for b in LIVE_BINDINGS if live.can(b.action)]
        if live.followed:
            live_keys.append(Binding("G,end", "", "Resume follow mode: select the newest call"))
        if live.program is not None:
            live_keys.append(Binding("stdin", "", STDIN_NOTE))
        several = self.source.data.multi_process  # the process keys only where they do something
        shown = [b for b in CallTree.BINDINGS if isinstance(b, Binding) and not b.id.startswith("tree.depth_")
                 and (several or b.id != "tree.process_link")]
        self.push_screen(HelpScreen([
            ("Moving", shown),
            ("Depth", [Binding("1-9", "", "Expand everything to depth N")]),
            ("Search and view", [b for b in self.BINDINGS if isinstance(b, Binding) and b not in LIVE_BINDINGS
                                 and b not in FUNCTIONS_BINDINGS and (several or b.id != "app.processes")]),
            ("In the find bar", [b for b in FindBar.BINDINGS if isinstance(b, Binding)]),
            ("Functions view (v)", FUNCTIONS_HELP),
            *([("Live view", live_keys)] if live_keys else []),
        ], PROCESSES_NOTE if several else ""))

    # -- the functions view's keys and events (functions_view.py) --------------------------------
    def action_functions(self) -> None:
        self.functions.toggle()

    def action_history(self, step: int) -> None:
        self.functions.step(int(step))

    def on_open_function(self, msg: OpenFunction) -> None:
        self.functions.jump(Place(FUNCTIONS, msg.fid))

    def on_open_call(self, msg: OpenCall) -> None:
        self.functions.jump(Place(TREE, msg.call))

    def on_search_all(self, msg: SearchAll) -> None:
        self.functions.search(msg.query)

    # -- the live view's keys and events (live_view.py) --------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.functions.can(action):
            return False
        if action == "process_tree":  # a session of several processes only
            return self.source.data.multi_process
        return self.live_view.can(action)

    def action_process_tree(self) -> None:
        """The process tree (screens/process_tree.py); the chosen process is selected here."""
        if not self.source.data.multi_process:
            return
        live = self.live_view.now_ns if self.live_view.active else None
        at = process_at(self.index, self.tree.cursor_pos) if self.index is not None else 0
        self.push_screen(ProcessTreeScreen(self.source.data, live, at), self._open_process)

    def _open_process(self, process: int | None) -> None:
        if process is None or self.index is None:
            return
        pos = process_group_pos(self.index, process)
        if pos < 0:
            self.notify(f"pid {self.source.data.processes[process].pid} recorded no calls (yet)")
            return
        self.tree.move_to_pos(pos)

    def action_toggle_follow(self) -> None:
        self.live_view.toggle_follow()

    def action_toggle_pause(self) -> None:
        self.live_view.toggle_pause()

    def action_toggle_output(self) -> None:
        self.live_view.toggle_output()

    async def action_quit(self) -> None:
        self.live_view.quit()

    def on_call_tree_scrolled(self, msg: CallTree.Scrolled) -> None:
        self.live_view.tree_scrolled()

    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:  # type: ignore[override]
        # G / End in the call tree may resume follow mode (see LiveView.last_key)
        if isinstance(default_namespace, CallTree) and action == "last" and self.live_view.last_key():
            return True
        return await super().run_action(action, default_namespace, namespaces)

    # -- command palette ----------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from self.functions.commands(isinstance(screen, FunctionsScreen))
        if isinstance(screen, FunctionsScreen):
            yield SystemCommand("Keys", "Show every key binding (?)", self.action_help)
            return
        tree = self.tree

        def tree_action(name: str, *args: object):
            return lambda: getattr(tree, f"action_{name}")(*args)

        yield from self.search_commands()
        yield SystemCommand("Filter calls", "Hide short calls or whole modules (f)", self.action_filter)
        yield SystemCommand("Clear filters", "Show every call again", lambda: self._apply_filters(Filters()))
        yield SystemCommand("Change grouping", "Group by thread, by asyncio task (each task on its own), or not at all (t)",
                            self.action_toggle_grouping)
        yield SystemCommand("Toggle merged call paths", "Merge the calls of each function under each node, with counts (m)",
                            self.action_toggle_merged)
        yield SystemCommand("Toggle detail pane", "Show or hide the selected call's details (d)", self.action_toggle_detail)
        yield SystemCommand("Expand hot path", "Follow the most expensive child down (H)", tree_action("hot_path"))
        yield SystemCommand("Expand subtree", "Expand everything under the selected call (e)", tree_action("expand_subtree"))
        yield SystemCommand("Collapse all", "Collapse every call (c)", tree_action("collapse_all"))
        for d in range(1, 10):
            yield SystemCommand(f"Expand to depth {d}", f"Show {plural(d, 'level')} below the roots ({d})", tree_action("expand_depth", d))
        yield SystemCommand("Go to parent", "Select the caller of the selected call (p)", tree_action("parent"))
        if self.source.data.multi_process:
            yield SystemCommand("Process tree", "The session's processes, parent → children (T)", self.action_process_tree)
            yield SystemCommand("Started process / starting call",
                                "From a call that started a process to it, and back (S)", tree_action("process_link"))
        if self.loading:
            yield SystemCommand("Cancel loading", "Stop reading the file; keep what was read (esc)", self.action_cancel_loading)
        yield SystemCommand("Keys", "Show every key binding (?)", self.action_help)
