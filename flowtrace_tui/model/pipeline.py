"""The loading pipeline: a data source, an update policy and a worker loop that publishes
immutable snapshots. One object serves the file view, `flowtrace-tui run` and `attach` alike.

    TraceSource --step()--> TraceData --UpdatePolicy.due?--> build_index / grow_index
        --publish(Snapshot)--> the app (UI thread) carries its view to the new index

`Pipeline.run(cancelled, publish)` is the body of the app's loader thread. It reads the source
a bounded step at a time, asks the policy whether to index, and publishes `Progress`,
`Snapshot` and, last, `Finished`. It reads nothing the UI thread changes: the UI asks it for
another grouping through `set_grouped` (a queue the loop drains), and carries its own view to
each new index on its side. A failure of `grow_index` (a bug) is counted and the index built
whole instead, so the live view goes on; `grow_failures` is shown in the status line, and with
`strict` (tests) the failure ends loading with its message instead.
A live session whose index falls far behind (a busy program on a busy machine) is shown as a
window of its newest calls while the index catches up in bounded steps (window.py, `_update`);
one whose reads are far behind the file (the start of `flowtrace-tui run`: what the program
wrote while the UI came up) as windows of the newest calls read from the file's end
(newest.py, `_show_newest`) until the reads have caught up.
No Textual imports: tests drive it with a plain callback.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Union

from flowtrace.ftr import format as F

from .catch_up import CatchUpPace
from .empty import META_CUT
from .grow import grow_index
from .index import TreeIndex, build_index
from .live import LiveTail, PollTimer
from .loader import CALL_BYTES
from .newest import NEWEST_BEHIND_BYTES, NEWEST_STEP_BYTES, NewestReader
from .source import TraceSource
from .update_policy import ReadState, UpdatePolicy
from .window import window_data

STRICT_ENV = "FLOWTRACE_TUI_STRICT"  # set (tests): a failed index update ends loading
# the calls a followed session's columns are sized for at once (TraceData.expect_calls): ~15 s
# of a busy program; 3.6 GB of address space, memory only as the calls arrive. Later calls go to a
# tail of the newest (tail.py). Under an address-space limit the columns take at most LIVE_SHARE
# of it: what was read before the tail began stays (texts ~14 bytes a call of a busy program),
# and the whole index took ~1 GB more there (a 6 GB limit: 44 M calls, 2.4 GB)
LIVE_CALLS = 1 << 26
LIVE_SHARE = 0.4


def live_calls(limit: int | None = None) -> int:
    """The calls a followed session's call columns are sized for: LIVE_CALLS, or fewer under
    the process's address-space limit (`limit` bytes; None: RLIMIT_AS as set)."""
    if limit is None:
        try:
            import resource

            limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        except (ImportError, OSError, ValueError):  # (no such limit on this system)
            return LIVE_CALLS
        if limit == resource.RLIM_INFINITY:
            return LIVE_CALLS
    return max(1 << 20, min(LIVE_CALLS, int(limit * LIVE_SHARE) // CALL_BYTES))


@dataclass(frozen=True)
class Progress:
    """Bytes of the file read so far, and calls loaded."""

    done: int
    total: int
    calls: int


@dataclass(frozen=True)
class Snapshot:
    """A new index of what is loaded. `final`: loading is over (a live session: caught up)."""

    index: TreeIndex
    final: bool


@dataclass(frozen=True)
class Finished:
    """Loading ended: cancelled, or `error` (one line) when the file could not be read."""

    cancelled: bool
    error: str | None = None


Event = Union[Progress, Snapshot, Finished]


def newest_call(ix: TreeIndex) -> int:
    """The session's newest call `ix` holds: a window's last, or the index's. The reads in order,
    come within NEWEST_BEHIND_BYTES of the file's end, made windows (and indexes) of calls older
    than those of the window read from the end before them, and the screen went back to them (at
    a busy program's end: 39,218 calls back, to a call made 849 ms before; live_timeline)."""
    return ix.data.window.through if ix.data.window is not None else ix.n


class GrowFailed(Exception):
    """`grow_index` raised (strict mode): the message says what."""


class Pipeline:
    """Reads one session and makes its indexes (see the module docstring)."""

    def __init__(self, source: TraceSource, *, poll_interval: float | None = None, grouped: bool = True,
                 policy: UpdatePolicy | None = None, tail: LiveTail | None = None, strict: bool | None = None) -> None:
        self.source = source
        self.poll_interval = poll_interval
        self.policy = policy or UpdatePolicy(poll_interval)
        self.tail = tail or LiveTail(source)
        self.strict = bool(os.environ.get(STRICT_ENV)) if strict is None else strict
        self.grow_failures = 0  # written by the loop, read by the status line
        self.last_failure: str | None = None
        self._grouped = grouped  # the loop's own copy; the UI changes it through `set_grouped`
        self._tasks = False  # the task view (build_index(tasks=True)); never grown
        self._requests: queue.SimpleQueue[tuple[bool, bool]] = queue.SimpleQueue()
        self._s_per_call: float | None = None  # wall seconds per call of the index updates
        self._timed_calls = 0  # the most calls of an update that was timed (`_note_speed`)
        self._window_of: tuple[int, int, int] | None = None  # (calls, ends, marks) of the last window
        self._s_per_rebuilt_call: float | None = None  # a whole rebuild's wall seconds per call (processes)
        self._rebuilt_at = 0.0  # when the last whole rebuild ended (monotonic)
        # a live session's whole index needs more memory than this process may use (MemoryError
        # making or growing it): from then on the newest calls are shown as windows only (read by
        # the status line)
        self.whole_too_big = False
        self._screen = False  # run(screen=True): a screen says when it has drawn a snapshot
        self._drawn = threading.Event()  # set by `drawn` (the UI thread) for the last snapshot
        self._drawn.set()  # (none published yet: none to wait for)
        self._screen_up = threading.Event()  # set by `screen_up` (the UI thread): drawn once
        self._drawing: TreeIndex | None = None  # the last snapshot published (see `drawn`)
        # whether the whole index's catch-up steps gain on a live session (catch_up.py): paused
        # while a busy program makes calls faster than they index (read by the status line)
        self.pace = CatchUpPace(self.policy.catch_up_span, self.policy.catch_up_probe)
        self.newest = NewestReader(source.reader)  # windows read from the file's end (`_show_newest`)

    @property
    def live(self) -> bool:
        """The file is followed as it grows (else read once to its end)."""
        return self.poll_interval is not None

    def set_grouped(self, grouped: bool, tasks: bool = False) -> None:
        """From the UI thread: index with (or without) thread/task groups from now on; `tasks`:
        the task view (each task's calls under a group of their own, see build_index)."""
        self._requests.put((grouped, tasks))

    def build(self, grouped: bool | None = None, tasks: bool | None = None) -> TreeIndex:
        """A whole index of everything loaded now (any thread: the data only grows)."""
        return build_index(self.source.data, grouped=self._grouped if grouped is None else grouped,
                           tasks=self._tasks if tasks is None else tasks)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, cancelled: Callable[[], bool], publish: Callable[[Event], None], screen: bool = False) -> None:
        """Read until done (or cancelled), publishing as it goes; always ends with `Finished`.
        `screen`: the snapshots go to a screen that calls `drawn()` once it has drawn each one
        (or decided not to): a catch-up step waits for that (see `_catch_up`)."""
        self._screen = screen
        try:
            self._run(cancelled, publish)
        except F.FormatError as exc:  # an unreadable file: its one-line reason
            publish(Finished(False, str(exc)))
        except Exception as exc:  # a bug, or out of memory: tell the user, keep what we have
            publish(Finished(False, f"{type(exc).__name__}: {exc}"))

    def _run(self, cancelled: Callable[[], bool], publish: Callable[[Event], None]) -> None:
        # (one loop over the loader's state, its locals: longer than most, read top to bottom)
        src, data, tail = self.source, self.source.data, self.tail
        live = self.live
        timer = PollTimer(self.poll_interval or 0.05)
        last_ix: TreeIndex | None = None  # the newest index of the whole session (maybe behind)
        shown: TreeIndex | None = None  # the newest index published (that one, or a window)
        indexed = (-1, -1)  # (calls, ends) in the newest index of the whole session
        indexed_at = cost = last_progress = 0.0
        caught_up = False  # a live session was read up to its current end once
        if live and not data.finished:
            data.expect_calls(live_calls())
        if live and not src.ended_when_opened:
            # a followed file in smaller steps: when the reads are far behind it, windows of its
            # newest calls come between them (their usual 8 MB took 0.1-0.3 s on a loaded machine)
            src.step_bytes = NEWEST_STEP_BYTES
        self._take_requests()
        far = live and not data.finished and self._far_behind()
        if far and self._screen:  # the newest calls as of the screen's first paint, not before it
            self._screen_up.wait(self.policy.screen_up_wait)
        newest = self._show_newest(publish, first=True) if far else None
        if newest is not None:  # the first screen: the newest calls, read from the file's end
            shown, cost, indexed_at = newest
        elif data.n > 0 and not (live and not src.ended_when_opened and self.newest.behind() > 0):
            # the first screen: index what `TraceSource.open` already read (a small slice); a
            # live session's file that grew meanwhile is read first (less than NEWEST_BEHIND_BYTES):
            # the slice was read before the UI came up, and showed calls that old (0.3-1.4 s)
            last_ix = shown = self._publish(publish, self.build(), False)
            indexed, indexed_at = (data.n, data.exits_seen), time.monotonic()
        while not cancelled():
            self._take_requests()
            dead = live and tail.process_dead()  # sampled before reading: see LiveTail
            read_at = time.monotonic()
            step = src.step()
            if not data.meta and not step.more and src.meta_cut(live=live):
                raise F.FormatError(META_CUT)  # else a cut file would be followed forever
            now = time.monotonic()
            if now - last_progress > 0.1:  # ten updates a second are plenty
                last_progress = now
                publish(Progress(src.bytes_read, src.current_size(), data.calls_read))
            if live and not step.more:
                tail.note_caught_up(dead)
            done = src.done or (not step.more and (not live or tail.gone))
            if data.tail is not None and not self.whole_too_big:  # the call columns are full (tail.py)
                last_ix = self._tail_began(last_ix)
            state = (data.calls_read, data.exits_seen)
            read = ReadState(data.calls_read, indexed[0], state != indexed, done, live, step.more,
                             time.monotonic() - indexed_at, cost, src.bytes_read, src.file_size)
            far = live and not done and self._far_behind()
            if far and self._newest_due(time.monotonic() - indexed_at, cost):
                newest = self._show_newest(publish, first=shown is None)
                far = newest is not None  # (else the reads' own windows, below)
                if newest is not None:
                    shown, cost, indexed_at = newest
            if far:
                pass  # the reads' own windows would hold older calls than the screen's
            elif read.changed and data.n > 0:
                if self.policy.due(read):
                    # the work itself (this thread's CPU time), not the wall time: waiting for
                    # the GIL while the UI draws is no reason to update less often
                    if done and shown is not None and shown.data.window is not None:
                        shown = self._last_window(publish, shown)
                    t = time.thread_time()
                    last_ix, ix, catch_up = self._update(last_ix, window=live and not done, catch_up=not step.more)
                    cost = time.thread_time() - t  # (the work before the screen gets its index)
                    indexed_at = time.monotonic()
                    if ix is not None and not done and shown is not None and newest_call(ix) < newest_call(shown):
                        ix = None  # (the reads, come near the file's end, are still behind the window read there)
                    if ix is not None:  # (None: the window on screen is still the newest)
                        first, shown = shown is None, self._publish(publish, ix, done or (live and not step.more))
                        if first and live and self._screen:  # the first screen before more reads
                            self._drawn.wait(self.policy.first_draw_wait)
                    if catch_up:  # after the window is on its way: the step holds no new call
                        last_ix = self._catch_up(last_ix, drawn_first=ix is not None)
                        if last_ix.n >= data.n:  # (level: the whole index replaces the window)
                            shown = self._publish(publish, last_ix, live and not step.more)
                    elif ix is not None and ix.data.window is not None:
                        self._wait_drawn()  # the next read waits for the screen as a step would
                    if self.whole_too_big and last_ix.n:  # windows only from now on: the memory of
                        last_ix = build_index(data, 0, grouped=self._grouped)  # the whole index goes back
                    indexed = (last_ix.n, data.exits_seen)
                    stepping = shown is not None and shown.data.window is not None and not data.multi_process
                    self.pace.note(time.monotonic(), data.n, last_ix.n, stepping)  # (processes: rebuilt, no steps)
            elif done and indexed[0] < 0:
                self._publish(publish, self.build(), True)
            elif live and not step.more and not caught_up:  # live: loading is over
                self._publish(publish, shown if shown is not None else self.build(), True)
            caught_up = caught_up or (live and not step.more)
            if done:
                break
            if not step.more:
                # timed from the read, not from the end of the work that followed it: the wait
                # is part of a new call's way to the screen (see PollTimer)
                time.sleep(timer.wait(step.bytes_read > 0, time.monotonic() - read_at, src.write_age()))
        if cancelled() and (data.n, data.exits_seen) != indexed and not self.whole_too_big:
            self._publish(publish, self.build(), True)
        publish(Finished(cancelled()))

    def screen_up(self) -> None:
        """From the UI thread: the screen has been drawn once. A session far behind shows its
        newest calls as of then: read before it, at load their window waited 0.5-1 s for the
        screen's first layout and was that old when it came."""
        self._screen_up.set()

    def drawn(self, ix: TreeIndex) -> None:
        """From the UI thread: the snapshot of `ix` is on screen (or held, or given up). Only
        the last one published counts: the screen's word for an earlier snapshot, coming late
        (a loaded machine delays the redraw it waits for), let a step start beside the newer
        one's drawing."""
        if ix is self._drawing:
            self._drawn.set()

    def _publish(self, publish: Callable[[Event], None], ix: TreeIndex, final: bool) -> TreeIndex:
        self._drawing = ix  # (before the clear: a late word for the one before is ignored)
        self._drawn.clear()
        publish(Snapshot(ix, final))
        # the heaviest children (only `H` uses them) are computed here, once the index is on its
        # way to the screen, so that a key rarely waits for them -- except while a live session
        # grows: keeping them up to date costs each update about a third more (grow._grow_heaviest;
        # measured on a busy program), time every new call waits to be shown, for a key rarely
        # pressed. There `H` makes them the first time (a whole pass, ~15-40 ms per million
        # calls) and the next grown indexes keep them from then on.
        if not self.live or self.source.done or self.tail.gone:
            ix.heavy  # noqa: B018
        return ix

    def _take_requests(self) -> None:
        """Apply what the UI asked for since the last look (the newest grouping wins)."""
        while not self._requests.empty():
            self._grouped, self._tasks = self._requests.get()

    def _update(self, prev: TreeIndex | None, window: bool,
                catch_up: bool = True) -> tuple[TreeIndex, TreeIndex | None, bool]:
        """(the next index of the whole session, the index to show, whether the whole index is
        to catch up by a step once that is shown). The whole index is brought up to date, except
        in a live session (`window`: followed, not over) whose index is so far behind that this
        would keep new calls off the screen for long (UpdatePolicy.windowed): then the newest
        calls are shown as a window of their own (window.py) and the whole index catches up by
        a bounded step (`_catch_up`) after the window is published: the step holds none of the
        calls a user waits for (stepping first kept every window off the screen for the step's
        0.15 s). A new window only when something arrived since the last one (else None:
        nothing to show). No step while the reads are behind the file (not `catch_up`): the
        newest calls are not read yet, and reading them comes first. Once the session is over,
        an index far behind is built whole rather than grown, if that is cheaper
        (UpdatePolicy.build_whole)."""
        data = self.source.data
        if self.whole_too_big and prev is not None:
            return prev, self._window(), False
        if data.multi_process and window and prev is not None and self._growable(prev):
            return (*self._update_rebuilt(prev), False)
        if (prev is None and window and not data.multi_process
                and self.policy.windowed(data.n, self._s_per_call, self._timed_calls)):
            # the first screen of a program that made many calls while the explorer started (a
            # busy one: ~0.5 M): a window of the newest now, the whole index grown by the steps
            # of catching up from none. Built whole first, it held that screen back by the
            # build (~80 ms at load 23), the view carried to it (~75 ms) and its layout (~90 ms)
            prev = build_index(data, 0, grouped=self._grouped)
        t = time.monotonic()
        if (prev is None or not window or not self._growable(prev) or data.multi_process
                or not self.policy.windowed(data.n - prev.n, self._s_per_call, self._timed_calls)):
            start = prev
            if prev is not None and not window and self.policy.build_whole(data.n - prev.n, data.n):
                start = None  # over, and far behind: built whole, as opening the finished file would
            try:
                ix = self._next_index(start)
            except MemoryError:
                if not self._windows_instead(prev):
                    raise
                return prev, self._window(), False
            built = start is None or not self._growable(start)  # (as _next_index decides)
            self._note_speed(ix.n - (0 if built else start.n), time.monotonic() - t, built)
            self._window_of = None
            return ix, ix, False
        return prev, self._window(), catch_up and self.policy.catch_up > 0 and not self.pace.paused

    def _far_behind(self) -> bool:
        """The reads in order are so far behind the file (NEWEST_BEHIND_BYTES) that the screen
        shows windows of its newest calls read from its end (newest.py). Not for a file that had
        ended when opened (it loads from its start, as a file read once does), nor once the
        session has parts of other processes (the root's ids are mapped to the session's then:
        parts.py). Also once the call columns are full (tail.py): the reads' own windows held
        calls as old as the reads were behind (a long session of a busy program: seconds)."""
        data = self.source.data
        return (not self.source.ended_when_opened and not data.processes
                and self.newest.behind() >= NEWEST_BEHIND_BYTES)

    def _newest_due(self, since_index: float, cost: float) -> bool:
        """Time for the next window read from the file's end: as the policy spaces them, (with
        a screen) once the last snapshot is drawn -- they come faster than a loaded machine
        draws them, and the reads wait for the GIL while it does -- and once the file holds
        newer calls than the last one (NewestReader.grown)."""
        return (self.policy.newest_due(since_index, cost) and (not self._screen or self._drawn.is_set())
                and self.newest.grown())

    def _show_newest(self, publish: Callable[[Event], None], first: bool) -> tuple[TreeIndex, float, float] | None:
        """Publish the index of a window of the newest calls read from the file's end
        (newest.py): (that index, the CPU seconds it took, when it was published); None when it
        cannot be read that way. `first`: the first screen, drawn before the loop reads on (at
        most `first_draw_wait`: the reads of the calls behind took the GIL from its layout)."""
        t = time.thread_time()
        window = self.newest.window(self.source.data, self.policy.window_calls)
        if window is None:
            return None
        self._window_of = None  # (the reads' next window is shown, whatever it holds)
        ix = self._publish(publish, build_index(window, grouped=self._grouped), False)
        cost, at = time.thread_time() - t, time.monotonic()
        if first and self._screen:
            self._drawn.wait(self.policy.first_draw_wait)
        else:
            self._wait_drawn()  # (the reads behind are no part of the newest calls' way)
        return ix, cost, at

    def _tail_began(self, prev: TreeIndex | None) -> TreeIndex:
        """A followed session's call columns are full and its newest calls go to a tail
        (tail.py): windows of them only from now on, as when the whole index runs out of memory
        (`whole_too_big`); the whole index's memory goes back (the index of no call)."""
        self._windows_instead(prev)
        self.whole_too_big = True
        return build_index(self.source.data, 0, grouped=self._grouped)

    def _windows_instead(self, prev: TreeIndex | None) -> bool:
        """Making or growing a live session's whole index ran out of memory (a busy program's
        tens of millions of calls, or a limit on the process's memory): say whether the view
        goes on with windows of the newest calls only (True: `whole_too_big` from now on; the
        status line says so). A session read once, or one with no index yet, fails as before."""
        if not self.live or prev is None:
            return False
        self.whole_too_big = True
        self._window_of = None  # (a window of the newest calls now, even if one was shown)
        return True

    def _catch_up(self, prev: TreeIndex, drawn_first: bool = False) -> TreeIndex:
        """The whole index grown towards the session's end for at most `UpdatePolicy.catch_up`
        s, in slices of `catch_up_slice` s, stopping early once the file has grown since the
        last read (the recorder flushed: new calls to read and show first). The loader would
        otherwise sleep until that flush; a slice at a time, the next window is held back by a
        slice at most. Each slice is timed (the speed `windowed` decides by).
        `drawn_first` (a window was just published): with a screen (`run(screen=True)`), the
        step first waits until it has drawn the window, at most `draw_wait` s -- the step is
        background work, and sharing the GIL with it made the screen's update (~25 ms of the
        UI thread's CPU) take twice that. The wait is no part of the update's cost (the spacing
        of the updates) and holds no read back: it is time the step would have taken."""
        if drawn_first:
            self._wait_drawn()
        data, src = self.source.data, self.source
        size_read = src.file_size  # (as of the last read: `step` noted it)
        end = time.monotonic() + self.policy.catch_up
        ix = prev
        while ix.n < data.n:
            t = time.monotonic()
            calls = self.policy.catch_up_calls(self._s_per_call or self.policy.first_s_per_call,
                                               self.policy.catch_up_slice)
            try:
                grown = self._next_index(ix, ix.n + calls)
            except MemoryError:
                self._windows_instead(ix)
                return ix
            self._note_speed(grown.n - ix.n, time.monotonic() - t)
            ix = grown
            if time.monotonic() >= end or src.current_size() > size_read:
                break
        if ix.n >= data.n:
            self._window_of = None
        return ix

    def _wait_drawn(self) -> None:
        """With a screen (`run(screen=True)`): wait until it has drawn the snapshot just
        published, at most `draw_wait` s. What the loader does next (a catch-up step, or the
        next read) is no part of the newest calls' way to the screen, and sharing the GIL with
        it made the screen's update (~25 ms of the UI thread's CPU) take about twice that: a
        busy program's windows (live_timeline, load 6) came on screen 117 ms (median; p90 198,
        max 322) after they were published while the reads in order went on beside them."""
        if self._screen:
            self._drawn.wait(self.policy.draw_wait)

    def _update_rebuilt(self, prev: TreeIndex) -> tuple[TreeIndex, TreeIndex | None]:
        """`_update` of a live session of several processes, whose index is rebuilt whole each
        time (grow.py does not grow process groups yet): work in proportion to the session.
        Once a rebuild takes longer than `window_after`, it is done only a `whole_share` of
        the time (UpdatePolicy.rebuild_due), and windows of the newest calls come in between."""
        data = self.source.data
        rebuild_s = data.n * self._s_per_rebuilt_call if self._s_per_rebuilt_call is not None else None
        if self.policy.rebuild_due(rebuild_s, time.monotonic() - self._rebuilt_at):
            t = time.monotonic()
            ix = self._next_index(prev)
            self._rebuilt_at = time.monotonic()
            self._s_per_rebuilt_call = (self._rebuilt_at - t) / max(1, ix.n)
            self._window_of = None
            return ix, ix
        return prev, self._window()

    def _last_window(self, publish: Callable[[Event], None], shown: TreeIndex) -> TreeIndex:
        """The session is over while a window is shown: a last window, holding its end, is on
        screen while the whole index is made (seconds for millions of calls)."""
        ix = self._window()
        if ix is None:
            return shown
        publish(Snapshot(ix, False))
        return ix

    def _window(self) -> TreeIndex | None:
        """The index of a window of the newest calls; None when nothing arrived since the last."""
        data = self.source.data
        seen = (data.calls_read, data.exits_seen, data.n_marks, data.tail.marks.size if data.tail is not None else 0)
        if seen == self._window_of:
            return None
        self._window_of = seen
        return build_index(window_data(data, self.policy.window_calls, self.whole_too_big), grouped=self._grouped)

    def _note_speed(self, calls: int, seconds: float, built: bool = False) -> None:
        """Keep the wall time per call of the updates (smoothed): what growing the whole index
        would take, for `_update` to decide. Small updates say more about fixed costs: not
        kept. `built`: the index was built whole, not grown: a grown call costs
        `grow_per_build` times a built one (taken at a built one's cost, a live session's first
        index, built whole, had the next update grow ~0.45 M calls in 140-290 ms of wall time at
        load 11-14 instead of showing a window: the first screen stayed ~0.6 s). The most calls
        timed at once are kept too: the speed is not taken for many more (UpdatePolicy.extrapolate)."""
        if calls >= self.policy.speed_sample and calls > 0:
            s = seconds / calls * (self.policy.grow_per_build if built else 1.0)
            self._s_per_call = s if self._s_per_call is None else (self._s_per_call + s) / 2
            self._timed_calls = max(self._timed_calls, calls)

    def _growable(self, prev: TreeIndex) -> bool:
        """Can the next index grow from `prev` (else it is built whole)?"""
        return self.live and prev.grouped == self._grouped and not (self._tasks or prev.tasks_view)

    def _next_index(self, prev: TreeIndex | None, n: int | None = None) -> TreeIndex:
        """The index of everything loaded now (of the first `n` calls): a live session's
        grows from the previous one (work in proportion to what is new, see grow.py), any
        other is built whole."""
        data = self.source.data
        n = data.n if n is None else min(n, data.n)
        if prev is not None and self._growable(prev):
            try:
                return grow_index(prev, data, n)
            except MemoryError:
                raise  # (no bug; a whole build would need more memory still: see _windows_instead)
            except Exception as exc:  # a bug: counted and shown; the whole build is right
                self.grow_failures += 1
                self.last_failure = f"{type(exc).__name__}: {exc}"
                if self.strict:
                    raise GrowFailed(f"grow_index failed: {self.last_failure}") from exc
        return build_index(data, n, grouped=self._grouped, tasks=self._tasks)
