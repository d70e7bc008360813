"""The live view's part of the explorer: follow mode, pause, ticking elapsed times, the program's
output pane and exit status, and quitting while the program runs.

`FlowtraceApp` derives from `LiveApp` and calls its hooks (`_live_*`) from the loader and the
index/cursor handlers; everything here uses the app's `tree`, `index`, `rows`, `source` and
`_update_status`. The bookkeeping itself (what is new, what follow mode means) is in
`model/live.py`, free of Textual.
"""

from __future__ import annotations

from textual import work
from textual.app import App
from textual.binding import Binding

from .launch import Child, describe_status
from .messages import IndexReady
from .model.live import FINISHED, GONE, LIVE, UNKNOWN, FollowState, session_now_ns
from .model.output_log import OutputLog
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

    def _live_init(self, program: Child | None = None, attacher: Child | None = None,
                   log_path: str | None = None) -> None:
        self.tail = self.pipeline.tail  # type: ignore[attr-defined]
        # a session without its end chunk whose process has not gone is followed from the start
        self.live = (not self.source.data.finished and self.poll_interval is not None  # type: ignore[attr-defined]
                     and not self.tail.process_dead())
        self.follow = FollowState(following=self.live)
        self.program = program
        self.attacher = attacher
        self.log_path = log_path or (program.log_path if program is not None else None)
        self.program_status: int | None = None
        self._held: IndexReady | None = None
        self._stopping = False

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
        if self.follow.paused and self.rows is not None:  # type: ignore[attr-defined]
            final = msg.final or (self._held is not None and self._held.final)
            self._held = IndexReady(msg.index, final)
            self._update_status()  # type: ignore[attr-defined]
            return True
        return False

    def _live_index_shown(self) -> None:
        """A new index is on screen: follow the newest call, count what is new."""
        ix = self.index  # type: ignore[attr-defined]
        if ix is None:
            return
        if self.tree.live_now:  # type: ignore[attr-defined]
            self.tree.live_now = self._live_now()  # type: ignore[attr-defined]  (a new call ticks at once)
        if self.follow.following and ix.n:
            self._goto_newest()
        self.follow.shown(ix.n)

    def _live_cursor_moved(self) -> None:
        """Any move of the cursor away from where follow mode put it ends follow mode."""
        ix, pos = self.index, self.tree.cursor_pos  # type: ignore[attr-defined]
        if ix is not None and pos >= 0 and self.follow.cursor_moved_to(ix.node(pos)):
            self.refresh_bindings()

    def on_call_tree_scrolled(self, msg: CallTree.Scrolled) -> None:
        """Scrolling the tree by mouse or scroll bar is manual navigation: follow mode ends
        (else the next update would scroll the view back to the newest call)."""
        if self.follow.following:
            self.follow.following = False
            self.refresh_bindings()
            self._update_status()  # type: ignore[attr-defined]

    def _live_state(self) -> str | None:
        """The status line's state text for a session without an end chunk (None: finished)."""
        state = self.tail.state
        if state == FINISHED or self.source.damage:  # type: ignore[attr-defined]
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
        data = self.source.data  # type: ignore[attr-defined]
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
        failures = self.pipeline.grow_failures  # type: ignore[attr-defined]
        if failures:  # a bug in the live index update: the view goes on with whole builds
            parts.append(f"[$error]{plural(failures, 'index update')} failed (rebuilt)[/]")
        return parts

    def _live_now(self) -> int:
        """Session time now for a live session (the elapsed time of running calls), else 0."""
        data = self.source.data  # type: ignore[attr-defined]
        if not self.live or data.finished or self.tail.gone or self.follow.paused:
            return 0
        return session_now_ns(data.meta, data.t_max)

    # -- periodic ----------------------------------------------------------------------------------
    def _read_output(self) -> None:
        """Show what the program printed since the last look."""
        panes = self._main.query(LogPane)  # type: ignore[attr-defined]  (closing: widgets gone)
        if panes:
            panes.first().append(self.output.read_new())

    def _live_tick(self) -> None:
        if not self._main.query(CallTree):  # type: ignore[attr-defined]  (closing: widgets gone)
            return
        if self.program is not None:
            code = self.program.poll()
            if code is not None and self.program_status is None:
                self.program_status = code
                self.notify(f"The program ended: {describe_status(code)}", timeout=6)
                self._live_log_pane().set_status(describe_status(code))
        if self.follow.paused:
            return
        self._update_placeholder()  # type: ignore[attr-defined]  (an empty live session's note)
        tree = self.tree  # type: ignore[attr-defined]
        now = self._live_now()
        if now or tree.live_now:
            tree.live_now = now
            tree.changed()  # only the lines on screen are drawn again
        self._update_status()  # type: ignore[attr-defined]

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
        self._update_status()  # type: ignore[attr-defined]

    def _resume_follow(self) -> None:
        ix = self.index  # type: ignore[attr-defined]
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
        self._update_status()  # type: ignore[attr-defined]

    def action_toggle_output(self) -> None:
        self._live_log_pane().toggle_class("-shown")

    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:  # type: ignore[override]
        # G / End in the call tree resume follow mode in a live session (they jump to the newest
        # call instead of the last row)
        if (getattr(self, "live", False) and isinstance(default_namespace, CallTree)
                and action == "last" and not self.follow.following):
            self._resume_follow()
            self.refresh_bindings()
            self._update_status()  # type: ignore[attr-defined]
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
        ix, tree = self.index, self.tree  # type: ignore[attr-defined]
        newest = ix.n
        tree.move_to_pos(int(ix.pos_of[newest]))
        pos = tree.cursor_pos
        # a filter may hide it: then follow mode holds on to wherever the cursor ended
        self.follow.follow_node = ix.node(pos) if pos >= 0 else 0

    def _live_log_pane(self) -> LogPane:
        return self._main.query_one(LogPane)  # type: ignore[attr-defined]
