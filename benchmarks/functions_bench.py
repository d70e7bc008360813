"""The functions view on a big session: how soon its first rows and its whole table come, what
it costs in memory, and `flowtrace stats` on the same file side by side.

    python benchmarks/functions_bench.py [--calls 10000000] [--file S.ftr] [--mem-gb 6]

Without --file a synthetic session is written first (benchmarks/synth.py; cached in /tmp by
size). Each measure runs in a process of its own under `prlimit --as` (--mem-gb: a big session
must not take the machine down), as a user meets it:

- the explorer (flowtrace-tui's app, headless through Textual's pilot): the session opened and
  indexed, then `v` pressed on the first call; time from the key to the first rows on screen
  (everything but total) and to the whole table, then to the selected function's callers,
  callees and slowest calls; the process's peak RSS, and its peak before `v` (what the view adds);
- the model alone on the loaded index: `function_table` (first step, whole), without the UI;
- `flowtrace stats FILE` (the streaming command line) as a separate process: wall time, peak RSS.

Goal (issue 13): the whole table in <= 2 s for 10 M calls, the first rows sooner. Wall times
are printed with the CPU times of the same stretch: on a machine shared by other jobs the wall
time says more about the machine than about the code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import synth  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")

APP = r"""
import asyncio, json, resource, sys, time
sys.path.insert(0, ROOT)
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.screens.functions import FunctionsScreen

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

async def main():
    app = FlowtraceApp(TraceSource.open(PATH), show_detail=False)
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        t = time.perf_counter()
        while app.loading or app.rows is None:
            await pilot.pause(0.05)
        out["open_s"] = time.perf_counter() - t
        out["rss_before_mb"] = rss()
        t, cpu = time.perf_counter(), time.process_time()
        await pilot.press("v")
        while not (isinstance(app.screen, FunctionsScreen) and app.screen.is_mounted):
            await pilot.pause(0.005)
        out["screen_s"] = time.perf_counter() - t
        while not (app.screen.table is not None
                   and app.screen.functions.count):
            await pilot.pause(0.005)
        out["first_rows_s"] = time.perf_counter() - t
        while not app.screen.table.complete:
            await pilot.pause(0.005)
        out["whole_table_s"] = time.perf_counter() - t
        out["whole_table_cpu_s"] = time.process_time() - cpu
        while app.screen.links is None:
            await pilot.pause(0.005)
        out["links_s"] = time.perf_counter() - t
        out["functions"] = len(app.screen.table)
        out["calls"] = app.screen.table.index.n
        out["rss_mb"] = rss()
        await app.workers.wait_for_complete()
    print(json.dumps(out))

asyncio.run(main())
"""

MODEL = r"""
import json, resource, sys, time
sys.path.insert(0, ROOT)
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.model import build_index
from flowtrace_tui.model.functions import function_table

src = TraceSource.open(PATH)
while not src.done and src.step().more:
    pass
ix = build_index(src.data)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
first, first_cpu = [], []
t, cpu = time.perf_counter(), time.process_time()
table = function_table(ix, first=lambda _t: (first.append(time.perf_counter() - t),
                                             first_cpu.append(time.process_time() - cpu)))
whole, whole_cpu = time.perf_counter() - t, time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"first_s": first[0], "whole_s": whole, "first_cpu_s": first_cpu[0], "whole_cpu_s": whole_cpu,
                  "rss_added_mb": after - before, "rss_mb": after}))
"""


def child(code: str, path: str, mem_gb: float) -> dict:
    """Run `code` (PATH, ROOT filled in) in a python of its own under an address-space cap."""
    src = f"ROOT = {ROOT!r}\nPATH = {path!r}\n" + code
    cmd = ["prlimit", f"--as={int(mem_gb * 1e9)}", "--", sys.executable, "-c", src]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def stats_command(path: str, mem_gb: float) -> dict:
    """`flowtrace stats FILE` as a user runs it: wall time and peak RSS of the whole process."""
    cmd = ["prlimit", f"--as={int(mem_gb * 1e9)}", "--", sys.executable, "-m", "flowtrace", "stats", path,
           "--limit", "0"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"flowtrace stats failed: {proc.stderr.read().decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--file", help="an existing .ftr instead of a synthetic one")
    ap.add_argument("--mem-gb", type=float, default=6.0, help="address-space cap of each process (GB)")
    a = ap.parse_args(argv)
    path = a.file
    if path is None:
        path = f"/tmp/flowtrace-synth-{a.calls}.ftr"
        if not os.path.exists(path):
            print(f"writing {path} …", flush=True)
            synth.write(path, a.calls)
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    app = child(APP, path, a.mem_gb)
    model = child(MODEL, path, a.mem_gb)
    stats = stats_command(path, a.mem_gb)
    rows = [
        ("explorer: v -> the functions screen shown (no row yet)", app["screen_s"], "s", None),
        ("explorer: v -> first rows on screen (no total yet)", app["first_rows_s"], "s", 2.0),
        ("explorer: v -> whole table", app["whole_table_s"], "s", 2.0),
        ("explorer: v -> whole table, CPU time of the process", app["whole_table_cpu_s"], "s", 2.0),
        ("explorer: v -> callers, callees, slowest calls", app["links_s"], "s", None),
        ("explorer: opening (load + index), before v", app["open_s"], "s", None),
        ("explorer: peak RSS before v", app["rss_before_mb"], "MB", None),
        ("explorer: peak RSS after the functions view", app["rss_mb"], "MB", None),
        ("model alone: first step (everything but total)", model["first_s"], "s", None),
        ("model alone: whole table", model["whole_s"], "s", 2.0),
        ("model alone: first step, CPU time", model["first_cpu_s"], "s", None),
        ("model alone: whole table, CPU time", model["whole_cpu_s"], "s", 2.0),
        ("model alone: peak RSS added by the table", model["rss_added_mb"], "MB", None),
        ("flowtrace stats FILE (whole process)", stats["wall_s"], "s", None),
        ("flowtrace stats FILE: CPU time", stats["cpu_s"], "s", None),
        ("flowtrace stats FILE: peak RSS", stats["rss_mb"], "MB", None),
    ]
    print(f"{app['calls']:,} calls, {app['functions']:,} functions\n")
    print(f"{'measure':<52} {'value':>10} {'':<3} {'goal':>6} ok")
    for what, value, unit, goal in rows:
        ok = "" if goal is None else "yes" if value <= goal else "NO"
        print(f"{what:<52} {value:>10.3f} {unit:<3} {'' if goal is None else f'{goal:g}':>6} {ok}")
    print(f"\nthe explorer's whole table / flowtrace stats: {app['whole_table_s'] / stats['wall_s']:.2f}x the wall time, "
          f"model CPU {model['whole_cpu_s'] / stats['cpu_s']:.3f}x stats' CPU (the session already loaded and indexed; "
          f"stats reads it whole), peak RSS {app['rss_mb'] / stats['rss_mb']:.1f}x")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
