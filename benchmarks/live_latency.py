"""Live-view latency: from a call's start in a running program to that call being in the
explorer's index and view (what the call tree draws from), as the live view polls the growing file.

    python benchmarks/live_latency.py [--poll 0.1] [--flush 0.1] [--seconds 4] [--rebuild]

A child process runs under `python -m flowtrace run --flush-interval FLUSH` (the default
recorder, default flush 0.1 s). The observer in this process does what the explorer's loader
does: reads aimed just after the recorder's next flush (`PollTimer`), each `LiveTail.poll()`
(only the new complete chunks); then -- not more often than half a poll interval, nor than
twice the CPU time an update takes, as the explorer -- `grow_index` from the previous index
(model/grow.py: work for the new calls, not the whole tree), the view carried over
(`TreeRows.carry_to`) and the newest call selected (follow mode: its ancestors opened). For
every call that is new in that index, latency = (observer's clock when the view is ready) -
(the call's start time in the file). Both are CLOCK_MONOTONIC (`perf_counter_ns`) on this
machine: the session's origin is in META, so no extra instrumentation of the child is needed.
After each update the observer asks for the heaviest children (`H`), as the explorer does: a
whole pass the first time, kept up to date by the next grown indexes.

`--rebuild` indexes with a whole `build_index` each time instead (the explorer before grow.py),
to compare.

Two programs, measured side by side in one run:
- "paced": one call every 10 ms (a program doing I/O-bound work);
- "busy": calls as fast as the recorder allows (the index grows by ~10^5 calls per poll).
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

from flowtrace_tui.model.update_policy import UpdatePolicy  # noqa: E402
from flowtrace_tui.model.grow import grow_index  # noqa: E402
from flowtrace_tui.model.index import build_index  # noqa: E402
from flowtrace_tui.model.rows import TreeRows  # noqa: E402
from flowtrace_tui.model.live import LiveTail, PollTimer  # noqa: E402
from flowtrace_tui.model.source import TraceSource  # noqa: E402

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
}


def measure(kind: str, poll: float, flush: float, seconds: float, rebuild: bool = False) -> dict[str, float]:
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
        tail = LiveTail(src)
        origin = int(src.data.meta["origin_ns"])
        lat: list[float] = []
        lat_model: list[float] = []
        builds: list[float] = []
        indexed = src.data.n
        ix = None
        rows = None
        timer = PollTimer(poll)
        last_build, build_cost = 0.0, 0.0
        while not tail.done and time.monotonic() < deadline:
            read_at = time.monotonic()
            batch = tail.poll()
            n = src.data.n
            # the explorer's throttle: at most one update per poll interval, and not more often
            # than twice the CPU time an update takes (FlowtraceApp.load)
            if n > indexed and time.monotonic() - last_build >= max(UpdatePolicy.live_min_update * poll, 2 * build_cost):
                seen = time.perf_counter_ns() - origin  # in the model (TraceData), not indexed yet
                lat_model.extend(((seen - src.data.col("t0")[indexed + 1 : n + 1]) / 1e9).tolist())
                t = time.perf_counter()
                c = time.thread_time()
                ix = build_index(src.data) if rebuild or ix is None else grow_index(ix, src.data)
                build_cost = time.thread_time() - c
                last_build = time.monotonic()
                builds.append(time.perf_counter() - t)
                # the view, as the explorer's worker carries it and follow mode moves to the newest
                if rows is None:
                    rows = TreeRows(ix)
                    rows.initial_expand()
                else:
                    rows = rows.carry_to(ix)
                rows.reveal(int(ix.pos_of[ix.n]))
                now = time.perf_counter_ns() - origin  # index and view ready: the tree can draw it
                t0 = src.data.col("t0")[indexed + 1 : n + 1]
                lat.extend(((now - t0) / 1e9).tolist())
                indexed = n
                ix.heavy  # noqa: B018 -- after posting, as the explorer (once: grown indexes keep them)
            time.sleep(timer.wait(batch.bytes_read > 0, time.monotonic() - read_at, src.write_age()))
        proc.wait(30)
        src.close()
    lat.sort()
    lat_model.sort()
    return {
        "recorder": src.data.meta.get("recorder", "?"),
        "calls": float(len(lat)),
        "model_median": statistics.median(lat_model),
        "model_p95": lat_model[int(0.95 * (len(lat_model) - 1))],
        "median": statistics.median(lat),
        "p95": lat[int(0.95 * (len(lat) - 1))],
        "max": lat[-1],
        "build_median": statistics.median(builds) if builds else 0.0,
        "build_max": max(builds) if builds else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--poll", type=float, default=0.1, help="live view poll interval (default 0.1 s, the explorer's)")
    ap.add_argument("--flush", type=float, default=0.1, help="recorder flush interval (default 0.1 s, flowtrace run's)")
    ap.add_argument("--seconds", type=float, default=4.0, help="how long each program runs")
    ap.add_argument("--rebuild", action="store_true", help="index with a whole build_index each time (as before grow.py)")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, poll {args.poll} s, flush {args.flush} s, {args.seconds} s per program")
    print("latency from a call's start to: the model (TraceData) | the index (what the tree draws)")
    print(f"{'program':8} {'calls':>9} {'model med':>9} {'p95':>7} | {'index med':>9} {'p95':>7} {'max':>7}  "
          f"{'rebuild' if args.rebuild else 'grow'} med/max")
    for kind in PROGRAMS:
        r = measure(kind, args.poll, args.flush, args.seconds, args.rebuild)
        ms = {k: f"{v * 1e3:.0f}ms" for k, v in r.items() if isinstance(v, float)}
        print(f"{kind:8} {int(r['calls']):9d} {ms['model_median']:>9} {ms['model_p95']:>7} | {ms['median']:>9} {ms['p95']:>7} {ms['max']:>7}"
              f"  {r['build_median'] * 1e3:.1f} / {r['build_max'] * 1e3:.1f} ms  ({r['recorder']} recorder)")
    print("goal: call start -> visible <= 500 ms (plus one UI frame). 'model' is when the rows are\n"
          "read (recorder flush + poll); the gap from 'model' to 'index' is the viewer updating its\n"
          "index and view (the last column: the index update alone).")


if __name__ == "__main__":
    main()
