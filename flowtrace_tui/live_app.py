"""The live view's part of the explorer: follow mode, pause, ticking elapsed times, the program's
output pane and exit status, and quitting while the program runs.

`LiveApp` owns what the live view works on, declared here: the session being read (`source`,
`pipeline`), the index and view on screen (`index`, `rows`, set by the app as it shows them)
and the main screen's call tree and log pane. `FlowtraceApp` derives from it, calls its hooks
(`_live_*`) from the index/cursor handlers and implements the two it asks for:
`_update_status` and `_update_placeholder`. The bookkeeping itself (what is new, what follow
mode means) is in `model/live.py`, free of Textual.
"""

from __future__ import annotations

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from .launch import Child, describe_status
from .messages import IndexReady
from .model.index import TreeIndex
from .model.live import FINISHED, GONE, LIVE, UNKNOWN, FollowState, session_now_ns
from .model.output_log import OutputLog
from .model.pipeline import Pipeline
from .model.rows import TreeRows
from .model.source import TraceSource
from .model.units import fmt_count, plural
from .screens.quit_dialog import QuitDialog
from .widgets.call_tree import CallTree
from .widgets.log_pane import LogPane

TICK_S = 0.5  # running calls' elapsed time and the status line are redrawn this often
OUTPUT_POLL_S = 0.2  # the program's output log is read this often

STDIN_NOTE = ("flowtrace-tui run: the program's stdin is /dev/null (it cannot read the terminal); "
              "its stdout and stderr go to a log file shown in the output pane (o).")


class LiveApp(App[None]):
    """Base of `FlowtraceApp` holding the live-view behaviour (see the module docstring)."""

    BINDINGS = [
        Binding("F", "toggle_follow", "Follow", id="live.follow",
                tooltip="Keep the newest call selected (G/End resumes it too)"),
        Binding("P", "toggle_pause", "Pause", id="live.pause",
                tooltip="Freeze the view; data keeps loading in the background"),
        Binding("o", "toggle_output", "Output", id="live.output",
                tooltip="Show or hide the program's output"),
    ]

    def __init__(self, source: TraceSource, pipeline: Pipeline, program: Child | None = None,
                 attacher: Child | None = None, log_path: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.pipeline = pipeline
        self.poll_interval = pipeline.poll_interval
        self.index: TreeIndex | None = None  # the index on screen (set by the app)
        self.rows: TreeRows | None = None  # the view on screen (set by the app)
        self._main: Screen | None = None  # the main screen, once mounted
        self.tail = pipeline.tail
        # a session without its end chunk whose process has not gone is followed from the start
        self.live = not source.data.finished and pipeline.live and not self.tail.process_dead()
        self.follow = FollowState(following=self.live)
        self.program = program
        self.attacher = attacher
        self.log_path = log_path or (program.log_path if program is not None else None)
        self.program_status: int | None = None
        self._held: IndexReady | None = None
        self._stopping = False

    # -- what the app provides ---------------------------------------------------------------------
    def _update_status(self) -> None:
        """Redraw the status line."""
        raise NotImplementedError

    def _update_placeholder(self) -> None:
        """Redraw what the tree says where it has no row."""
        raise NotImplementedError

    @property
    def tree(self) -> CallTree:
        """The main screen's call tree (app.query_one would search a modal screen on top)."""
        assert self._main is not None
        return self._main.query_one(CallTree)

    def _main_has(self, kind: type) -> bool:
        """The main screen still holds a widget of this kind (not while the app closes)."""
        return self._main is not None and bool(self._main.query(kind))

    # -- hooks called by FlowtraceApp -------------------------------------------------------------
    def _live_mount(self) -> None:
        if self.log_path:
            pane = self._live_log_pane()
            pane.add_class("-shown")
            pane.set_path(self.log_path)
            self.output = OutputLog(self.log_path)
            self._read_output()
            self.set_interval(OUTPUT_POLL_S, self._read_output)
        if self.live or self.program is not None:
            self.set_interval(TICK_S, self._live_tick)

    def _live_hold(self, msg: IndexReady) -> bool:
        """While paused, keep the newest index instead of showing it (True: held)."""
        if self.follow.paused and self.rows is not None:
            final = msg.final or (self._held is not None and self._held.final)
            self._held = IndexReady(msg.index, final)
            self._update_status()
            return True
        return False

    def _live_index_shown(self) -> None:
        """A new index is on screen: follow the newest call, count what is new."""
        ix = self.index
        if ix is None:
            return
        if self.tree.live_now:
            self.tree.live_now = self._live_now()  # (a new call ticks at once)
        if self.follow.following and ix.n:
            self._goto_newest()
        self.follow.shown(ix.n)

    def _live_cursor_moved(self) -> None:
        """Any move of the cursor away from where follow mode put it ends follow mode."""
        ix, pos = self.index, self.tree.cursor_pos
        if ix is not None and pos >= 0 and self.follow.cursor_moved_to(ix.node(pos)):
            self.refresh_bindings()

    def on_call_tree_scrolled(self, msg: CallTree.Scrolled) -> None:
        """Scrolling the tree by mouse or scroll bar is manual navigation: follow mode ends
        (else the next update would scroll the view back to the newest call)."""
        if self.follow.following:
            self.follow.following = False
            self.refresh_bindings()
            self._update_status()

    def _live_state(self) -> str | None:
        """The status line's state text for a session without an end chunk (None: finished)."""
        state = self.tail.state
        if state == FINISHED or self.source.damage:
            return None
        if state == GONE:
            return "[$error]ended without finishing (process gone)[/]"
        if state == LIVE and self.live:
            return "[$success]● LIVE[/]"
        if state == UNKNOWN and self.live:
            return "[$warning]unfinished (following; cannot tell if the process runs)[/]"
        return None

    def _live_parts(self) -> list[str]:
        """Status parts after the state: follow/pause, new calls, the program."""
        parts: list[str] = []
        data = self.source.data
        if self.live and self.tail.state in (LIVE, UNKNOWN):
            if self.follow.paused:
                parts.append("[$warning]paused[/]")
            elif self.follow.following:
                parts.append("following")
            new = self.follow.new_calls(data.n)
            if new and not (self.follow.following and not self.follow.paused):
                parts.append(f"[$accent]+{fmt_count(new)} new[/]")
        if self.program is not None:
            code = self.program.poll()
            parts.append(f"program {describe_status(code)}" if code is not None else f"program pid {self.program.pid}")
        failures = self.pipeline.grow_failures
        if failures:  # a bug in the live index update: the view goes on with whole builds
            parts.append(f"[$error]{plural(failures, 'index update')} failed (rebuilt)[/]")
        return parts

    def _live_now(self) -> int:
        """Session time now for a live session (the elapsed time of running calls), else 0."""
        data = self.source.data
        if not self.live or data.finished or self.tail.gone or self.follow.paused:
            return 0
        return session_now_ns(data.meta, data.t_max)

    # -- periodic ----------------------------------------------------------------------------------
    def _read_output(self) -> None:
        """Show what the program printed since the last look."""
        if self._main_has(LogPane):  # (closing: widgets gone)
            self._live_log_pane().append(self.output.read_new())

    def _live_tick(self) -> None:
        if not self._main_has(CallTree):  # (closing: widgets gone)
            return
        if self.program is not None:
            code = self.program.poll()
            if code is not None and self.program_status is None:
                self.program_status = code
                self.notify(f"The program ended: {describe_status(code)}", timeout=6)
                self._live_log_pane().set_status(describe_status(code))
        if self.follow.paused:
            return
        self._update_placeholder()  # (an empty live session's note)
        tree = self.tree
        now = self._live_now()
        if now or tree.live_now:
            tree.live_now = now
            tree.changed()  # only the lines on screen are drawn again
            ix, pos = self.index, tree.cursor_pos
            if ix is not None and pos >= 0 and ix.is_open(ix.node(pos)):
                self._update_detail()  # type: ignore[attr-defined]  (its times tick too)
        self._update_status()

    # -- actions -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("toggle_follow", "toggle_pause"):
            return getattr(self, "live", False)
        if action == "toggle_output":
            return bool(getattr(self, "log_path", None))
        return True

    def action_toggle_follow(self) -> None:
        if self.follow.following:
            self.follow.following = False
        else:
            self._resume_follow()
        self.refresh_bindings()
        self._update_status()

    def _resume_follow(self) -> None:
        ix = self.index
        self.follow.resume(ix.n if ix is not None else 0)
        if self.follow.paused:
            self.action_toggle_pause()
        elif ix is not None and ix.n:
            self._goto_newest()

    def action_toggle_pause(self) -> None:
        self.follow.paused = not self.follow.paused
        if not self.follow.paused and self._held is not None:
            held, self._held = self._held, None
            self.post_message(held)
        self._update_status()

    def action_toggle_output(self) -> None:
        self._live_log_pane().toggle_class("-shown")

    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:  # type: ignore[override]
        # G / End in the call tree resume follow mode in a live session (they jump to the newest
        # call instead of the last row)
        if (getattr(self, "live", False) and isinstance(default_namespace, CallTree)
                and action == "last" and not self.follow.following):
            self._resume_follow()
            self.refresh_bindings()
            self._update_status()
            return True
        return await super().run_action(action, default_namespace, namespaces)

    async def action_quit(self) -> None:
        if self.program is not None and self.program.running and not self._stopping:
            self.push_screen(QuitDialog(self.program.pid), self._quit_choice)
        else:
            self.exit()

    def _quit_choice(self, choice: str | None) -> None:
        if choice == "leave":
            self.exit()
        elif choice == "stop":
            self._stopping = True
            self.notify("Stopping the program (Ctrl-C)…", timeout=10)
            self._stop_program()

    @work(thread=True, group="stop", exit_on_error=False)
    def _stop_program(self) -> None:
        if self.program is not None:
            self.program_status = self.program.stop()
        self.call_from_thread(self.exit)

    # -- helpers -----------------------------------------------------------------------------------
    def _goto_newest(self) -> None:
        """Select the newest call (the one that started last), opening its ancestors."""
        ix, tree = self.index, self.tree
        newest = ix.n
        tree.move_to_pos(int(ix.pos_of[newest]))
        pos = tree.cursor_pos
        # a filter may hide it: then follow mode holds on to wherever the cursor ended
        self.follow.follow_node = ix.node(pos) if pos >= 0 else 0

    def _live_log_pane(self) -> LogPane:
        assert self._main is not None
        return self._main.query_one(LogPane)
