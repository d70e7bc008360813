"""Where a new call's way to the screen goes in the real explorer following a busy program:
`flowtrace-tui run` in tmux (as benchmarks/live_screen.py runs it), with each index snapshot
timed at every stage, from the start of its newest call (the session clock is CLOCK_MONOTONIC,
as this process's):

    python benchmarks/live_stages.py [--seconds 12] [--explorer-path DIR]

  read      the end of the read (TraceSource.step) that brought the newest call in
  published the snapshot handed to the UI thread (Pipeline._publish)
  handled   the UI thread took it (FlowtraceApp.on_index_ready began)
  applied   the view carried to it and the status/detail updated (on_index_ready ended)
  written   the next screen update written to the terminal (App._display)

and the CPU seconds the explorer's threads used (the UI thread, the loader), from /proc. The
explorer is the checkout's own (or DIR's), instrumented from outside by wrapping those four
methods in a driver script; nothing in flowtrace_tui knows of it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_screen import PROGRAM, start_in_tmux, tmux, watch  # noqa: E402

DRIVER = """
    import json, sys, threading, time
    sys.argv = ["flowtrace-tui", "run", "busy.py"]
    from textual.app import App
    from flowtrace_tui import app as A
    from flowtrace_tui.cli import main
    from flowtrace_tui.model import pipeline as P, source as S
    log = open({log!r}, "w", buffering=1)
    reads, snaps, drawn = [], {{}}, []

    def wrap(cls, name, before=None, after=None):
        inner = getattr(cls, name)
        def call(self, *a, **k):
            token = before(self, *a) if before else None
            out = inner(self, *a, **k)
            if after:
                after(self, token, *a)
            return out
        setattr(cls, name, call)

    wrap(S.TraceSource, "step", after=lambda src, _t: reads.append((time.monotonic(), src.data.n)))

    def published(p, publish, ix, final, *a):
        data = ix.data
        n = data.n if data.window is not None else ix.n  # (a whole index's data grows on: its n is read, not shown)
        newest = data.window.through if data.window is not None else n
        if not n:
            return
        start = (data.meta["origin_ns"] + int(data.col("t0")[n])) / 1e9
        read = next((t for t, n in reads if n >= newest), float("nan"))
        snaps[id(ix)] = dict(start=start, read=read, published=time.monotonic(), window=data.window is not None)
    wrap(P.Pipeline, "_publish", before=published)

    def handled(app, msg):
        return time.monotonic()
    def applied(app, began, msg):
        s = snaps.pop(id(msg.index), None)
        if s is not None:
            s.update(handled=began, applied=time.monotonic())
            drawn.append(s)
    wrap(A.FlowtraceApp, "on_index_ready", before=handled, after=applied)

    def written(app, _t, screen, renderable):
        if renderable is not None and drawn:
            now = time.monotonic()
            for s in drawn:
                log.write(json.dumps(dict(s, written=now)) + "\\n")
            drawn.clear()
    wrap(App, "_display", after=written)

    def cpu():
        while True:
            time.sleep(0.5)
            out = {{}}
            for th in threading.enumerate():
                try:
                    with open(f"/proc/self/task/{{th.native_id}}/stat") as fh:
                        f = fh.read().rsplit(")", 1)[1].split()
                    out[th.name] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
                except OSError:
                    pass
            log.write(json.dumps(dict(cpu=out, at=time.monotonic())) + "\\n")
    import os
    threading.Thread(target=cpu, daemon=True).start()
    raise SystemExit(main())
"""
STAGES = ("read", "published", "handled", "applied", "written")


def one_round(seconds: float, pythonpath: str | None) -> tuple[list[dict], list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "stages.jsonl")
        with open(os.path.join(tmp, "busy.py"), "w") as fh:
            fh.write(textwrap.dedent(PROGRAM).format(progress=os.devnull, seconds=seconds))
        with open(os.path.join(tmp, "driver.py"), "w") as fh:
            fh.write(textwrap.dedent(DRIVER).format(log=log))
        server = f"ft-live-stages-{os.getpid()}"
        start_in_tmux(server, tmp, pythonpath, "driver.py")
        try:
            watch(server, seconds + 2, every=0.1)  # (the sessions' priority: see live_screen.py)
        finally:
            tmux(server, "kill-server")
        with open(log) as fh:
            rows = [json.loads(line) for line in fh if line.endswith("\n")]
    return [r for r in rows if "written" in r], [r for r in rows if "cpu" in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="how long the program runs")
    ap.add_argument("--explorer-path", help="the explorer of another checkout (PYTHONPATH=DIR)")
    args = ap.parse_args()
    snaps, cpu = one_round(args.seconds, args.explorer_path)
    print(f"python {sys.version.split()[0]}, {args.seconds:g} s busy loop, `flowtrace-tui run` in tmux 160x45, "
          f"explorer {args.explorer_path or 'of this checkout'}; load average {os.getloadavg()[0]:.1f}")
    if not snaps:
        raise SystemExit("no snapshot reached the screen")
    print(f"{len(snaps)} snapshots on screen ({sum(s['window'] for s in snaps)} windows); age of the newest call (ms) at:")
    print(f"{'':10}" + "".join(f"{name:>11}" for name in STAGES))
    for label, pick in (("median", statistics.median), ("p95", lambda v: sorted(v)[int(0.95 * (len(v) - 1))])):
        print(f"{label:10}" + "".join(f"{pick([s[n] - s['start'] for s in snaps]) * 1e3:11.0f}" for n in STAGES))
    gaps = [b["written"] - a["written"] for a, b in zip(snaps, snaps[1:])]
    if gaps:
        print(f"between two snapshots on screen: median {statistics.median(gaps) * 1e3:.0f} ms "
              "(a capture at any moment sees, on average, half of it more)")
    if len(cpu) > 2:
        first, last = cpu[1], cpu[-1]  # (from the first half second: the explorer's start left out)
        span = last["at"] - first["at"]
        used = {k: last["cpu"][k] - first["cpu"].get(k, 0) for k in last["cpu"]}
        print(f"CPU of the explorer's threads over {span:.1f} s: " +
              ", ".join(f"{k} {v:.2f} s" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.01))


if __name__ == "__main__":
    main()
