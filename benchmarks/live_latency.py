"""Live-view latency: from a call's start in a running program to that call being in the
explorer's index and view (what the call tree draws from), as the live view polls the growing file.

    python benchmarks/live_latency.py [--poll 0.1] [--flush 0.1] [--seconds 4] [--rebuild] [--no-window]

A child process runs under `python -m flowtrace run --flush-interval FLUSH` (the default
recorder, default flush 0.1 s). This process runs the explorer's own loader loop on the growing
file -- `Pipeline.run` (model/pipeline.py): reads aimed just after the recorder's next flush,
the update policy, `grow_index` from the previous index -- and does with each published
snapshot what the explorer's UI does: the view carried over (`TreeRows.carry_to`) and the
newest call selected (follow mode: its ancestors opened). For every call that is new in that
snapshot, latency = (this process's clock when the view is ready) - (the call's start time in
the file). Both are CLOCK_MONOTONIC (`perf_counter_ns`) on this machine: the session's origin
is in META, so no extra instrumentation of the child is needed. 'model' is the same for the
read that brought the call into TraceData; 'written' is how old the newest call of a read
already was when the file was last written (its modification time): the recorder's share. The pipeline asks for the heaviest children (`H`)
after each snapshot, as in the explorer.

To compare two checkouts, run this file from each (it imports the explorer next to it):
`cp benchmarks/live_latency.py OTHER/benchmarks/ && python OTHER/benchmarks/live_latency.py`.

`--rebuild` indexes with a whole `build_index` each time instead (the explorer before grow.py),
to compare. `--no-window`: the whole index is always brought up to date (no window of the newest
calls while it is behind, the explorer before model/window.py).

Two programs, measured side by side in one run:
- "paced": one call every 10 ms (a program doing I/O-bound work);
- "busy": calls as fast as the recorder allows (the index grows by ~10^5 calls per poll);
- "forked" (with `--programs`): the busy loop in two processes, a parent and its followed child
  (a session of several processes).
Goal (issue 5): <= 0.5 s from a call's start to the screen with the default flush interval.
The screen adds one frame of the UI (repaint of the visible lines, ~ms; see tui_bench.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from flowtrace_tui.model.pipeline import Event, Pipeline, Snapshot  # noqa: E402
from flowtrace_tui.model.rows import TreeRows  # noqa: E402
from flowtrace_tui.model.source import TraceSource  # noqa: E402
from flowtrace_tui.model.update_policy import UpdatePolicy  # noqa: E402

PROGRAMS = {
    "paced": """
        import time
        def tick(i):
            return i
        end = time.monotonic() + {seconds}
        i = 0
        while time.monotonic() < end:
            tick(i)
            i += 1
            time.sleep(0.01)
    """,
    "busy": """
        import time
        def leaf(i):
            return i
        def work(i):
            return leaf(i) + leaf(i + 1)
        end = time.monotonic() + {seconds}
        i = 0
        while time.monotonic() < end:
            work(i)
            i += 1
    """,
    "forked": """
        import os, time
        def leaf(i):
            return i
        def work(i):
            return leaf(i) + leaf(i + 1)
        def loop(seconds):
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                work(i)
                i += 1
        pid = os.fork()  # a followed child: a session of two processes, both busy
        loop({seconds})
        if pid:
            os.waitpid(pid, 0)
        else:
            os._exit(0)
    """,
}
DEFAULT_PROGRAMS = ("paced", "busy")


class Observer:
    """What the explorer does with each snapshot the pipeline publishes -- the view carried to
    it, follow mode revealing the newest call -- and when each call got there. A snapshot is
    the index of the whole session, or, while that is far behind, a window of the newest calls
    (flowtrace_tui/model/window.py)."""

    def __init__(self, src: TraceSource, origin: int) -> None:
        self.src, self.origin = src, origin
        self.rows: TreeRows | None = None
        self.indexed = src.data.n  # calls in the newest index of the whole session
        self.read = src.data.n  # calls read into the model
        self.lat: list[np.ndarray] = []  # per whole index: latencies of its new calls (ns)
        self.lat_model: list[np.ndarray] = []
        self.newest: list[int] = []  # per snapshot: how old its newest call was when ready (ns)
        self.first_seen = np.full(1 << 16, -1, dtype=np.int64)  # per call: first on screen (ns)
        self.windows = 0  # snapshots that were windows
        self.written: list[float] = []  # per read: the newest call's age (ns) when its write landed
        self.updates: list[float] = []  # seconds each index took to make
        self.proc: subprocess.Popen | None = None  # the recorded program
        self.ended: int | None = None  # when a read first found the program ended (ns)
        self.whole_at = 0  # when the newest index of the whole session was ready (ns)
        self.indexed_at_end = 0  # calls in the index of the whole session then

    def after_read(self) -> None:
        """The source read some more: its new calls are in the model (TraceData) now."""
        if self.ended is None and (self.src.data.finished or (self.proc is not None and self.proc.poll() is not None)):
            self.ended = time.perf_counter_ns() - self.origin  # (within one read of the end)
            self.indexed_at_end = self.indexed
        n = self.src.data.n
        if n > self.read:
            seen = time.perf_counter_ns() - self.origin
            t0 = self.src.data.col("t0")[self.read + 1 : n + 1]
            self.lat_model.append(seen - t0)
            age = self.src.write_age()  # since the file's last write (its modification time)
            if age is not None:  # the recorder's side: how old the newest call was when written
                self.written.append(seen - int(t0[-1]) - age * 1e9)
            self.read = n

    def publish(self, event: Event) -> None:
        if not isinstance(event, Snapshot):
            return
        ix = event.index
        if self.rows is None or self.rows.index.size == 0:
            self.rows = TreeRows(ix)
            self.rows.initial_expand()
        else:
            self.rows = self.rows.carry_to(ix)
        if ix.n:
            self.rows.reveal(int(ix.pos_of[ix.n]))
        now = time.perf_counter_ns() - self.origin  # index and view ready: the tree can draw it
        window = ix.data.window
        lo, hi = (window.first, window.through) if window is not None else (1, ix.n)
        self.windows += window is not None
        t0 = self.src.data.col("t0")
        if hi:
            self.newest.append(now - int(t0[hi]))
            while len(self.first_seen) <= hi:
                self.first_seen = np.concatenate((self.first_seen, np.full(len(self.first_seen), -1, np.int64)))
            part = self.first_seen[lo : hi + 1]
            part[part < 0] = now
        if window is None:
            self.whole_at = now
        if window is None and ix.n > self.indexed:
            self.lat.append(now - t0[self.indexed + 1 : ix.n + 1])
            self.indexed = ix.n

    def every_call(self) -> np.ndarray:
        """Per call: from its start to its first snapshot (window or whole index), ns."""
        n = min(self.src.data.n, len(self.first_seen) - 1)
        seen = self.first_seen[1 : n + 1]
        got = seen >= 0
        return seen[got] - self.src.data.col("t0")[1 : n + 1][got]


def observe(pipeline: Pipeline, obs: Observer, rebuild: bool) -> None:
    """Run the explorer's loader loop (`Pipeline.run`) with `obs` watching: the source's reads
    and the index updates are timed where they happen, nothing else changes."""
    src = pipeline.source
    read = src.step

    def step():
        result = read()
        obs.after_read()
        return result

    src.step = step  # type: ignore[method-assign]
    make = pipeline._update

    def update(prev, window, catch_up=True):
        t = time.perf_counter()
        if rebuild:
            ix = pipeline.build()
            made = (ix, ix, False)
        else:
            made = make(prev, window, catch_up)
        obs.updates.append(time.perf_counter() - t)
        return made

    pipeline._update = update  # type: ignore[method-assign]
    pipeline.run(lambda: False, obs.publish)


def measure(kind: str, poll: float, flush: float, seconds: float, rebuild: bool = False,
            window: bool = True) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, f"{kind}.py")
        with open(script, "w") as fh:
            fh.write(textwrap.dedent(PROGRAMS[kind]).format(seconds=seconds))
        out = os.path.join(tmp, f"{kind}.ftr")
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowtrace", "run", "-o", out, "--flush-interval", str(flush), script],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + seconds + 30
        while not (os.path.exists(out) and os.path.getsize(out) > 16):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{kind}: the recorded program did not start: {proc.stderr.read().decode()}")
            time.sleep(0.005)
        src = TraceSource.open(out)
        obs = Observer(src, int(src.data.meta["origin_ns"]))
        obs.proc = proc
        policy = UpdatePolicy(poll) if window else UpdatePolicy(poll, window_after=float("inf"))
        observe(Pipeline(src, poll_interval=poll, policy=policy), obs, rebuild)
        proc.wait(30)
        src.close()
    lat = np.sort(np.concatenate(obs.lat)) / 1e9
    lat_model = np.sort(np.concatenate(obs.lat_model)) / 1e9
    newest = np.sort(np.array(obs.newest)) / 1e9
    every = np.sort(obs.every_call()) / 1e9
    return {
        "recorder": src.data.meta.get("recorder", "?"),
        "calls": float(len(lat)),
        "windows": float(obs.windows),
        "snapshots": float(len(newest)),
        "model_median": float(np.median(lat_model)),
        "model_p95": _p95(lat_model),
        "newest_median": float(np.median(newest)),
        "newest_p95": _p95(newest),
        "every_median": float(np.median(every)),
        "every_p95": _p95(every),
        "median": float(np.median(lat)),
        "p95": _p95(lat),
        "max": float(lat[-1]),
        "written_median": statistics.median(obs.written) / 1e9 if obs.written else 0.0,
        "build_median": statistics.median(obs.updates) if obs.updates else 0.0,
        "build_max": max(obs.updates) if obs.updates else 0.0,
        # from the program's end (as the reads saw it) to the index of the whole session
        "end_to_whole": (obs.whole_at - obs.ended) / 1e9 if obs.ended is not None else float("nan"),
        "behind_at_end": src.data.n - obs.indexed_at_end if obs.ended is not None else 0,
    }


def _p95(sorted_values: np.ndarray) -> float:
    return float(sorted_values[int(0.95 * (len(sorted_values) - 1))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--poll", type=float, default=0.1, help="live view poll interval (default 0.1 s, the explorer's)")
    ap.add_argument("--flush", type=float, default=0.1, help="recorder flush interval (default 0.1 s, flowtrace run's)")
    ap.add_argument("--seconds", type=float, default=4.0, help="how long each program runs")
    ap.add_argument("--rebuild", action="store_true", help="index with a whole build_index each time (as before grow.py)")
    ap.add_argument("--no-window", action="store_true", help="never show a window of the newest calls (as before window.py)")
    ap.add_argument("--programs", default=",".join(DEFAULT_PROGRAMS),
                    help=f"which, comma-separated, of {', '.join(PROGRAMS)} (default {','.join(DEFAULT_PROGRAMS)})")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, poll {args.poll} s, flush {args.flush} s, {args.seconds} s per program")
    print("latency from a call's start to: the model (TraceData) | the screen: the newest call of each snapshot,")
    print("every call (the first snapshot holding it: a window or the whole index) | the whole index")
    print(f"{'program':8} {'calls':>9} {'written':>7} {'model med':>9} {'p95':>7} | {'newest med':>10} {'p95':>7} "
          f"{'every med':>9} {'p95':>7} | {'whole med':>9} {'p95':>7} {'max':>7}  "
          f"{'end>whole':>9} {'behind':>7}  {'rebuild' if args.rebuild else 'update'} med/max, windows/snapshots")
    for kind in args.programs.split(","):
        r = measure(kind, args.poll, args.flush, args.seconds, args.rebuild, not args.no_window)
        ms = {k: f"{v * 1e3:.0f}ms" for k, v in r.items() if isinstance(v, float)}
        print(f"{kind:8} {int(r['calls']):9d} {ms['written_median']:>7} {ms['model_median']:>9} {ms['model_p95']:>7} | "
              f"{ms['newest_median']:>10} {ms['newest_p95']:>7} {ms['every_median']:>9} {ms['every_p95']:>7} | "
              f"{ms['median']:>9} {ms['p95']:>7} {ms['max']:>7} {ms['end_to_whole']:>9} {r['behind_at_end'] / 1e6:6.2f}M"
              f"  {r['build_median'] * 1e3:.1f} / {r['build_max'] * 1e3:.1f} ms, "
              f"{int(r['windows'])}/{int(r['snapshots'])}  ({r['recorder']} recorder)")
    print("goal: call start -> visible <= 500 ms (plus one UI frame): the newest call of every snapshot.\n"
          "'written': how old a write's newest call already was when the write landed in the file (median;\n"
          "the recorder's side). 'model' is when the rows are read (recorder flush + poll). While the index\n"
          "of the whole session is far behind, the explorer shows a window of the newest calls (model/window.py)\n"
          "and catches up in steps: 'every' counts a call left out of the windows when the whole index gets it.\n"
          "'update': making the snapshot (the catch-up step and the window), med/max. 'end>whole': from the\n"
          "program's end (seen by the reads) to the index of the whole session: what a user waits for the whole tree;\n"
          "'behind': the calls that index lacked then.")


if __name__ == "__main__":
    main()
