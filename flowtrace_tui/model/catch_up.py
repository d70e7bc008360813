"""Whether a live session's whole index gains on the session by catching up: a pure tracker,
fed the loader's clock, tested on its own.

While the whole index of a followed session is behind, the live view shows windows of the
newest calls and the whole index catches up by bounded steps (pipeline.py). A busy program
makes calls faster than that: 2.6-4.4 M calls a second against the 1-2.6 M a second the steps
index beside the reads on a loaded 2-core machine. Then the steps never reach the session's end
(and a whole build replaces what they made once the session is over, UpdatePolicy.build_whole),
but each costs the reads their time: ~0.5 of a core and ~200 MB a second of fresh memory,
memory whose first touch costs ~3 ms a MB when the machine's free memory is cold (a VM whose
host took back freed pages), more than the reads' own columns. The reads then fell behind the
file and the newest calls reached the screen seconds late (benchmarks/live_timeline.py).

`CatchUpPace` measures over spans of `span` seconds of windows: when a span of catching up
ends with the index further behind than at its start, the steps pause (`paused`), and the
rate they reached (calls indexed per second) is kept. They resume once calls arrive more
slowly than that rate, or after `probe_after` seconds paused (a rate measured in a moment of
heavy load must not pause them for good: the probe measures it again).
"""

from __future__ import annotations


class CatchUpPace:
    """See the module docstring. `note` after each update; `paused` says whether to step."""

    def __init__(self, span: float = 2.0, probe_after: float = 8.0) -> None:
        self.span = span
        self.probe_after = probe_after
        self.paused = False
        self.rate = 0.0  # calls indexed per second over the last span that lost ground
        self._start: tuple[float, int, int] | None = None  # (time, calls read, calls indexed)
        self._paused_at = 0.0

    def note(self, now: float, calls: int, indexed: int, behind: bool) -> None:
        """After an update at `now`: `calls` read, `indexed` in the whole index; `behind`: a
        window is shown (the whole index is behind). An index level with the session ends the
        measure (and any pause)."""
        if not behind:
            self._start, self.paused = None, False
            return
        if self._start is None:
            self._start = (now, calls, indexed)
            return
        t0, calls0, indexed0 = self._start
        seconds = now - t0
        if seconds < self.span:
            return
        arrived, gained = calls - calls0, indexed - indexed0
        if not self.paused and gained < arrived:  # a whole span of steps lost ground
            self.paused, self.rate, self._paused_at = True, max(0, gained) / seconds, now
        elif self.paused and (arrived / seconds < self.rate or now - self._paused_at >= self.probe_after):
            self.paused = False
        self._start = (now, calls, indexed)
