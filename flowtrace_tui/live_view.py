"""The live view, one object the app holds: follow mode, pause, ticking elapsed times, the
program's output pane and exit status, and quitting while the program runs.

`FlowtraceApp` makes one `LiveView` for every session — a file read once, a file followed as
it grows, `flowtrace-tui run` and `attach` — and hands it itself as the `LiveHost`: the few
things of the app the live view uses are declared there, nothing else is reached. The app
forwards its live keys' actions and the events the live view cares about (a new index shown,
the cursor moved, the tree scrolled); the live view adds its parts to the status line. The
bookkeeping itself (what is new, what follow mode means, whether the process runs) is in
`model/live.py`, free of Textual.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

from textual.binding import Binding

from .launch import Child, describe_status
from .model.index import TreeIndex
from .model.live import FINISHED, GONE, LIVE, UNKNOWN, FollowState, session_now_ns
from .model.output_log import OutputLog
from .model.pipeline import Pipeline, Snapshot
from .model.rows import TreeRows
from .model.units import fmt_count, plural
from .model.window import READING
from .screens.quit_dialog import QuitDialog
from .widgets.call_tree import CallTree
from .widgets.log_pane import LogPane

TICK_S = 0.5  # running calls' elapsed time and the status line are redrawn this often
OUTPUT_POLL_S = 0.2  # the program's output log is read this often

STDIN_NOTE = ("flowtrace-tui run: the program's stdin is /dev/null (it cannot read the terminal); "
              "its stdout and stderr go to a log file shown in the output pane (o).")

LIVE_BINDINGS = [
    Binding("F", "toggle_follow", "Follow", id="live.follow",
            tooltip="Keep the newest call selected (G/End resumes it too)"),
    Binding("P", "toggle_pause", "Pause", id="live.pause",
            tooltip="Freeze the view; data keeps loading in the background"),
    Binding("o", "toggle_output", "Output", id="live.output",
            tooltip="Show or hide the program's output"),
]
LIVE_ACTIONS = ("toggle_follow", "toggle_pause")  # offered only while the session is followed


class LiveHost(Protocol):
    """What the live view uses of the app it is part of."""

    index: TreeIndex | None  # the index on screen
    rows: TreeRows | None  # the view on screen

    @property
    def tree(self) -> CallTree: ...

    def main_widget(self, kind: type) -> Any | None:
        """The main screen's widget of this kind (None once the app closes)."""

    def update_status(self) -> None: ...

    def update_placeholder(self) -> None: ...

    def update_detail(self) -> None: ...

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Show a held snapshot now, before the loader's newer ones already posted (UI thread)."""

    # Textual's App services
    def notify(self, message: str, *, timeout: float | None = None) -> None: ...

    def set_interval(self, interval: float, callback: Callable[[], Any]) -> Any: ...

    def refresh_bindings(self) -> None: ...

    def push_screen(self, screen: Any, callback: Callable[[Any], Any] | None = None) -> Any: ...

    def run_worker(self, work: Callable[[], Any], *, thread: bool, group: str, exit_on_error: bool) -> Any: ...

    def call_from_thread(self, callback: Callable[..., Any], *args: Any) -> Any: ...

    def exit(self) -> None: ...


def session_calls(ix: TreeIndex) -> int:
    """The session's calls an index shows up to: a window of the newest calls (model/window.py)
    numbers its own; a merged index counts the calls, not its paths."""
    window = ix.data.window
    return window.through if window is not None else ix.n_calls


class LiveView:
    """The live part of one explorer session (see the module docstring)."""

    def __init__(self, host: LiveHost, pipeline: Pipeline, *, program: Child | None = None,
                 attacher: Child | None = None, log_path: str | None = None) -> None:
        self.host = host
        self.pipeline = pipeline
        self.source = pipeline.source
        self.tail = pipeline.tail
        # a session without its end chunk whose process has not gone is followed from the start
        # (a file that held it when opened is not, whatever its pid is now: reused, it said
        # "following" while loading a finished session)
        ended = self.source.data.finished or self.source.ended_when_opened
        self.active = not ended and pipeline.live and not self.tail.process_dead()
        self.follow = FollowState(following=self.active)
        self.program = program
        self.attacher = attacher
        self.log_path = log_path or (program.log_path if program is not None else None)
        self.program_status: int | None = None
        self.output: OutputLog | None = None
        self._held: Snapshot | None = None
        self._stopping = False
        self._offered = self.followed  # F and P offered (bindings refreshed when it changes)
        self._shown_at = -1e9  # when the last index was shown (monotonic)

    @property
    def followed(self) -> bool:
        """The session is followed and may still grow: follow mode and pause mean something.
        Once it finished (or its process is gone, or it is damaged) F and P are not offered."""
        return self.active and self.tail.state in (LIVE, UNKNOWN) and not self.source.damage

    @property
    def held(self) -> Snapshot | None:
        """The newest snapshot kept while paused (shown when the pause ends)."""
        return self._held

    # -- events forwarded by the app ---------------------------------------------------------------
    def mount(self) -> None:
        """The app's main screen is up: show the program's output, start the clock."""
        if self.log_path:
            pane = self._log_pane()
            if pane is not None:
                pane.add_class("-shown")
                pane.set_path(self.log_path)
            self.output = OutputLog(self.log_path)
            self._read_output()
            self.host.set_interval(OUTPUT_POLL_S, self._read_output)
        if self.active or self.program is not None:
            self.host.set_interval(TICK_S, self._tick)

    def hold(self, snapshot: Snapshot) -> bool:
        """While paused, keep the newest index instead of showing it (True: held); also a
        window of the newest calls (model/window.py) while not following: the user reads the
        tree, and a window would move its calls under the cursor. Shown when following again;
        an index of the whole session is shown (and drops a window held before it), and so is
        a window once the session is over (the last: held, the screen kept a window read from
        the file's end and said "reading N earlier" for good when the whole index could not be
        had)."""
        window = snapshot.index.data.window is not None and not self.follow.following and self.followed
        if (self.follow.paused or window) and self.host.rows is not None:
            final = snapshot.final or (self._held is not None and self._held.final)
            self._held = Snapshot(snapshot.index, final)
            self.host.update_status()
            return True
        self._held = None
        return False

    def index_shown(self) -> None:
        """A new index is on screen: follow the newest call, count what is new."""
        ix = self.host.index
        if ix is None:
            return
        self._shown_at = time.monotonic()
        tree = self.host.tree
        if tree.live_now:
            tree.live_now = self.now_ns()  # (a new call ticks at once)
        if self.follow.following and ix.n_calls:
            self._goto_newest()
        self.follow.shown(session_calls(ix))
        self.offer_keys()

    def cursor_moved(self) -> None:
        """Any move of the cursor away from where follow mode put it ends follow mode."""
        ix, pos = self.host.index, self.host.tree.cursor_pos
        if ix is not None and pos >= 0 and self.follow.cursor_moved_to(ix.node(pos)):
            self.host.refresh_bindings()

    def tree_scrolled(self) -> None:
        """Scrolling the tree by mouse or scroll bar is manual navigation: follow mode ends
        (else the next update would scroll the view back to the newest call)."""
        if self.follow.following:
            self.follow.following = False
            self.host.refresh_bindings()
            self.host.update_status()

    def loading_failed(self) -> None:
        """Reading the session failed: nothing is followed any more."""
        if self.active:
            self.active = self.follow.following = False
            self.offer_keys()

    # -- what the status line says ----------------------------------------------------------------
    def state_text(self) -> str | None:
        """The status line's state for a session without an end chunk (None: finished)."""
        state = self.tail.state
        if state == FINISHED or self.source.damage:
            return None
        if state == GONE:
            return "[$error]ended without finishing (process gone)[/]"
        if state == LIVE and self.active:
            return "[$success]● LIVE[/]"
        if state == UNKNOWN and self.active:
            return "[$warning]unfinished (following; cannot tell if the process runs)[/]"
        return None

    def status_parts(self) -> list[str]:
        """Status parts after the state: follow/pause, new calls, the program, failed updates."""
        parts: list[str] = []
        data = self.source.data
        if self.followed:
            if self.follow.paused:
                parts.append("[$warning]paused[/]")
            elif self.follow.following:
                parts.append("following")
            new = self.follow.new_calls(data.calls_read)
            if new and not (self.follow.following and not self.follow.paused):
                parts.append(f"[$accent]+{fmt_count(new)} new[/]")
        if self.program is not None:
            code = self.program.poll()
            parts.append(f"program {describe_status(code)}" if code is not None else f"program pid {self.program.pid}")
        ix = self.host.index
        window = ix.data.window if ix is not None else None
        if window is not None and window.left_out:  # the whole index is behind (model/window.py)
            if window.why == READING:  # read from the file's end (model/newest.py)
                why = f"reading {fmt_count(window.left_out)} earlier"
            elif data.tail is not None:  # (model/tail.py)
                why = f"the explorer's memory holds the first {fmt_count(data.n)} calls and the newest"
            elif self.pipeline.whole_too_big:
                why = "the whole session needs more memory than the explorer may use"
            elif self.pipeline.pace.paused and self.followed:  # (model/catch_up.py; a file read once: no call arrives)
                why = f"indexing {fmt_count(window.left_out)} earlier paused: calls arrive faster"
            else:
                why = f"indexing {fmt_count(window.left_out)} earlier"
            parts.append(f"[$warning]newest {fmt_count(ix.n_calls - window.n_ancestors)} calls shown ({why})[/]")
        failures = self.pipeline.grow_failures
        if failures:  # a bug in the live index update: the view goes on with whole builds
            parts.append(f"[$error]{plural(failures, 'index update')} failed (rebuilt)[/]")
        return parts

    def now_ns(self) -> int:
        """Session time now for a live session (the elapsed time of running calls), else 0."""
        data = self.source.data
        if not self.active or data.finished or self.tail.gone or self.follow.paused:
            return 0
        return session_now_ns(data.meta, data.t_max)

    # -- keys ------------------------------------------------------------------------------------
    def can(self, action: str) -> bool:
        """Whether the app offers a live action now (footer, help, the key itself)."""
        if action in LIVE_ACTIONS:
            return self.followed
        if action == "toggle_output":
            return bool(self.log_path)
        return True

    def toggle_follow(self) -> None:
        """F: stop following, or follow again (select the newest call, ending a pause)."""
        if self.follow.following:
            self.follow.following = False
        else:
            self._resume_follow()
        self.host.refresh_bindings()
        self.host.update_status()

    def toggle_pause(self) -> None:
        """P: freeze the view (snapshots are held), or show the held one and go on."""
        self.follow.paused = not self.follow.paused
        if not self.follow.paused and self._held is not None:
            held, self._held = self._held, None
            self.host.show_snapshot(held)
        self.host.update_status()

    def toggle_output(self) -> None:
        """o: show or hide the program's output pane."""
        pane = self._log_pane()
        if pane is not None:
            pane.toggle_class("-shown")

    def last_key(self) -> bool:
        """G / End in the call tree: in a followed session they resume follow mode (jumping to
        the newest call instead of the last row). True: handled here."""
        if not self.followed or self.follow.following:
            return False
        self._resume_follow()
        self.host.refresh_bindings()
        self.host.update_status()
        return True

    def quit(self) -> None:
        """q: a running program asks whether to stop it or leave it running."""
        if self.program is not None and self.program.running and not self._stopping:
            self.host.push_screen(QuitDialog(self.program.pid), self._quit_choice)
        else:
            self.host.exit()

    def offer_keys(self) -> None:
        """Refresh the footer when F and P come or go (the session ended: see `followed`)."""
        if self.followed != self._offered:
            self._offered = self.followed
            self.host.refresh_bindings()

    # -- inside ----------------------------------------------------------------------------------
    def _quit_choice(self, choice: str | None) -> None:
        if choice == "leave":
            self.host.exit()
        elif choice == "stop":
            self._stopping = True
            self.host.notify("Stopping the program (Ctrl-C)…", timeout=10)
            self.host.run_worker(self._stop_program, thread=True, group="stop", exit_on_error=False)

    def _stop_program(self) -> None:
        """(A thread worker: stopping waits for the program.)"""
        if self.program is not None:
            self.program_status = self.program.stop()
        self.host.call_from_thread(self.host.exit)

    def _resume_follow(self) -> None:
        ix = self.host.index
        self.follow.resume(session_calls(ix) if ix is not None else 0)
        if self.follow.paused:
            self.toggle_pause()
        elif self._held is not None:  # a window held while not following: shown, newest selected
            held, self._held = self._held, None
            self.host.show_snapshot(held)
        elif ix is not None and ix.n_calls:
            self._goto_newest()

    def _goto_newest(self) -> None:
        """Select the newest call (the one that started last), opening its ancestors."""
        ix, tree = self.host.index, self.host.tree
        assert ix is not None
        tree.move_to_pos(ix.pos_of_call(ix.n_calls))  # (merged call paths: the newest call's path)
        pos = tree.cursor_pos
        # a filter may hide it: then follow mode holds on to wherever the cursor ended
        self.follow.follow_node = ix.node(pos) if pos >= 0 else 0

    def _read_output(self) -> None:
        """Show what the program printed since the last look."""
        pane = self._log_pane()
        if pane is not None and self.output is not None:  # (closing: widgets gone)
            pane.append(self.output.read_new())

    def _tick(self) -> None:
        if self.host.main_widget(CallTree) is None:  # (closing: widgets gone)
            return
        if self.program is not None:
            code = self.program.poll()
            if code is not None and self.program_status is None:
                self.program_status = code
                self.host.notify(f"The program ended: {describe_status(code)}", timeout=6)
                pane = self._log_pane()
                if pane is not None:
                    pane.set_status(describe_status(code))
        self.offer_keys()
        if self.follow.paused:
            return
        if time.monotonic() - self._shown_at < TICK_S / 2:
            # an index was shown just now, with the times and the status line as of then: a
            # busy program's live view shows several a second, and a redraw of the screen
            # here too took the UI thread's time (and the GIL) from them
            return
        self.host.update_placeholder()  # (an empty live session's note)
        tree = self.host.tree
        now = self.now_ns()
        if now or tree.live_now:
            tree.live_now = now
            tree.changed()  # only the lines on screen are drawn again
            ix, pos = self.host.index, tree.cursor_pos
            if ix is not None and pos >= 0 and ix.is_open(ix.node(pos)):
                self.host.update_detail()  # (its times tick too)
        self.host.update_status()

    def _log_pane(self) -> LogPane | None:
        return self.host.main_widget(LogPane)
