"""When the explorer makes a new index of what it has read: a pure decision, tested on its own.

After each read the loading pipeline (pipeline.py) describes where it stands in a `ReadState`
and asks `UpdatePolicy.due`. The answers balance two costs: an index of everything read takes
work in proportion to the session (a whole build) or to what is new (a live session's grown
index), and the screen should show new calls soon.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadState:
    """Where loading stands after one read. Times in seconds (one monotonic clock).

    `indexed_calls`: calls in the newest index (-1: none made yet); `changed`: calls or ends
    arrived since it was made; `done`: nothing more will come; `more`: the read stopped at its
    size bound (more is waiting in the file); `since_index`: seconds since it was made;
    `index_cost`: the CPU seconds making it took."""

    calls: int
    indexed_calls: int
    changed: bool
    done: bool
    live: bool
    more: bool
    since_index: float
    index_cost: float
    bytes_read: int
    file_size: int


@dataclass(frozen=True)
class UpdatePolicy:
    """`poll_interval`: the live view's (None: a file read once).

    While a file loads, intermediate indexes show the first screen early and then only while
    they are cheap: when the calls read have grown `first_growth`-fold, at most every
    `min_rebuild_interval` s, in the first `rebuild_before` of the file (later the final index
    is near). A live session updates at most every `live_min_update` poll intervals, and not
    more often than twice what an update costs: reads aimed just after the recorder's flushes
    come about one interval apart, sometimes a little less, and a full interval here made such
    a read wait for the next one. A live view whose reads have not caught up with the file (a
    busy program on a busy machine) still shows what it has read every `live_behind_update` s:
    waiting to catch up could freeze the view for good.

    A live index that is behind by more calls than one update indexes in `window_after` s
    (measured: the wall time per call of the updates so far) is not brought up to date at once:
    each update indexes `catch_up` s worth of the calls behind, and the newest `window_calls`
    calls are shown as a window of their own meanwhile (window.py), so that a new call is on
    screen within ~0.5 s however far behind the whole index is. The window goes to the screen
    first and the step follows, in slices of `catch_up_slice` s, ending early when the recorder
    has flushed again (Pipeline._catch_up): the updates are spaced by the window's cost (it is
    what the screen waits for), not the step's. Steps that lose ground over `catch_up_span` s
    of windows (a program making calls faster than they index) pause until calls arrive more
    slowly than they indexed, or for a probe after `catch_up_probe` s (catch_up.py).

    Once the session is over (nothing more will come) an index still behind is brought up to
    date in one go: grown from where it is, or built whole when growing the calls it lacks would
    cost more (`build_whole`: a call grown costs `grow_per_build` times a call built)."""

    poll_interval: float | None = None
    first_growth: float = 8.0
    min_rebuild_interval: float = 1.0
    rebuild_before: float = 0.4
    live_min_update: float = 0.5
    live_behind_update: float = 0.3
    # (the next update comes at least twice an update's cost later, `_live_due`: a new call
    # waits for that spacing, the update and the draw -- at 0.2, two whole-index updates of
    # 0.20-0.24 s in a row (half of it page faults; load 8) kept the screen 0.94 s old)
    window_after: float = 0.1
    catch_up: float = 0.15
    catch_up_slice: float = 0.02  # a step is grown in slices: see Pipeline._catch_up
    # a step, or the next read, waits at most this long for the screen to draw a window first
    draw_wait: float = 0.15
    # a live session's first screen: the reads of the calls behind wait at most this long for
    # it to be drawn (they took the GIL from its first layout: ~0.2-0.4 s later at load 23)
    first_draw_wait: float = 0.3
    # a session far behind (newest.py): its first window waits at most this long for the screen's
    # first paint (pipeline.screen_up)
    screen_up_wait: float = 1.0
    # steps that lose ground over a span pause until calls arrive more slowly, or for a probe
    # (catch_up.py: a busy program outpaces them, and they cost the reads their time)
    catch_up_span: float = 2.0
    catch_up_probe: float = 8.0
    window_calls: int = 20_000
    speed_sample: int = 10_000  # an update of fewer calls is not timed for `windowed` (fixed costs)
    # seconds per call before an update was timed: a busy machine's (loaded: ~1 µs a call, wall
    # time); the first updates of a busy session are its largest, and waiting for them to be
    # timed kept the screen seconds behind from the start
    first_s_per_call: float = 1e-6
    # a session of several processes: its index is rebuilt whole (grow.py does not grow process
    # groups yet); once that takes longer than `window_after`, at most this share of the time
    whole_share: float = 0.2
    # a call grown into a live index costs 2-4 times a call of a whole build (CPU, a busy loop's
    # 1.28 M calls, load 16: 167-211 ns grown, 40-71 ns built; the window commits: ~180 vs ~90)
    grow_per_build: float = 2.5
    # a speed timed on an update of N calls tells what one of at most this many times N takes;
    # beyond, a loaded machine's (`first_s_per_call`) is assumed. A busy program's first catch-up
    # step (20,000 calls: 90 ns a call, no page fault) had the next update grow 2.13 M calls at
    # once, taken for 0.19 s (window_after was 0.2): it took 0.70 s (107,512 page faults, 0.27 s
    # of them; load 7), and the screen stayed on its window that long (captures 0.74-1.68 s old)
    extrapolate: float = 4.0

    def due(self, s: ReadState) -> bool:
        """Make a new index now?"""
        if not s.changed or s.calls <= 0:
            return False
        if s.indexed_calls < 0 or s.done:
            return True
        if s.live and self._live_due(s):
            return True
        return (s.calls >= self.first_growth * s.indexed_calls
                and s.since_index >= self.min_rebuild_interval
                and s.bytes_read < self.rebuild_before * max(1, s.file_size))

    def _live_due(self, s: ReadState) -> bool:
        spaced = s.since_index >= max(self.live_min_update * (self.poll_interval or 0), 2 * s.index_cost)
        return spaced and (not s.more or s.since_index >= self.live_behind_update)

    def newest_due(self, since_index: float, index_cost: float) -> bool:
        """A window of the newest calls read from the file's end (newest.py), while the reads
        are far behind it: every poll interval, whatever the reads' progress (and at most half
        the time: twice what one costs)."""
        return since_index >= max(self.poll_interval or 0, 2 * index_cost)

    def windowed(self, behind: int, s_per_call: float | None, timed: int | None = None) -> bool:
        """Show a window of the newest calls instead of indexing the `behind` calls the live
        index lacks (`s_per_call`: seconds an update takes per call, None: not timed yet;
        `timed`: the most calls an update it was timed on held, None: not said)? More than
        `extrapolate` times those are taken at a loaded machine's speed."""
        if s_per_call is None or (timed is not None and behind > self.extrapolate * timed):
            s_per_call = max(s_per_call or 0.0, self.first_s_per_call)
        return behind > self.window_calls and behind * s_per_call > self.window_after

    def catch_up_calls(self, s_per_call: float, seconds: float | None = None) -> int:
        """How many of the calls behind one update (or one slice of it: `seconds`) indexes
        while a window is shown (at least a window's worth; none with `catch_up` 0: the whole
        index waits for the session's end)."""
        if self.catch_up <= 0:
            return 0
        seconds = self.catch_up if seconds is None else seconds
        return max(self.window_calls, int(seconds / max(s_per_call, 1e-9)))

    def build_whole(self, behind: int, calls: int) -> bool:
        """Bring an index that lacks the newest `behind` of `calls` calls up to date by a whole
        build instead of growing it (the cheaper of the two)?"""
        return behind * self.grow_per_build > calls

    def rebuild_due(self, rebuild_s: float | None, since_rebuild: float) -> bool:
        """A session whose index is rebuilt whole (several processes): rebuild now (else show a
        window of the newest calls)? `rebuild_s`: what a rebuild would take now (None: not
        timed yet), `since_rebuild`: seconds since the last one ended."""
        if rebuild_s is None or rebuild_s <= self.window_after:
            return True
        return since_rebuild * self.whole_share >= rebuild_s * (1 - self.whole_share)
