"""Merged call paths (key m) on a big session: merging time next to indexing, and the keys.

    python benchmarks/merged_paths_bench.py [--calls 10000000] [--file trace.ftr] [--repeat 3]

Without --file a synthetic trace is written first (benchmarks/synth.py; cached in /tmp by size,
as tui_bench.py does). Printed side by side, measured in one process:
- the model: `build_index` and `merge_paths` of the same session (medians of --repeat), and
  their ratio -- merging must cost no more than indexing did;
- the app (headless, 120x40, detail pane on): m pressed -> the merged tree on screen (the
  worker, the view carried over, the lines drawn); keys in the merged tree, including the
  detail pane of the path with the most calls (its calls are found by a scan); m back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import synth  # noqa: E402
from tui_bench import ROWS, record, repaint, timed_key  # noqa: E402

from flowtrace_tui.app import FlowtraceApp  # noqa: E402
from flowtrace_tui.model import build_index  # noqa: E402
from flowtrace_tui.model.merged import merge_paths  # noqa: E402
from flowtrace_tui.model.search import Query, find  # noqa: E402
from flowtrace_tui.model.source import TraceSource  # noqa: E402


def model_side_by_side(app: FlowtraceApp, repeat: int) -> None:
    """build_index and merge_paths of the loaded session, alternating, medians."""
    data = app.source.data
    t_ix, t_mp = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        ix = build_index(data)
        t_ix.append(time.perf_counter() - t)
        t = time.perf_counter()
        m = merge_paths(ix)
        t_mp.append(time.perf_counter() - t)
    a, b = statistics.median(t_ix), statistics.median(t_mp)
    record(f"model: build_index, {data.n:,} calls (median of {repeat})", a, 10, "s")
    record(f"model: merge_paths -> {m.size:,} paths (median of {repeat})", b, 2, "s")
    record("ratio merge_paths / build_index", b / a, 1, "x")


async def wait_for(pilot, cond, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        await pilot.pause(0.005)


async def run(path: str, repeat: int) -> None:
    app = FlowtraceApp(TraceSource.open(path), show_detail=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: not app.loading and app.index is not None)
        await pilot.pause()
        model_side_by_side(app, repeat)
        tree = app.tree
        t = time.perf_counter()
        await pilot.press("m")
        await wait_for(pilot, lambda: app.index.merged)
        repaint(tree)
        record("m: merged tree on screen (worker + carry + draw)", time.perf_counter() - t, 2, "s")
        m = app.index
        timed_key(tree, "down", tree.action_cursor_down)
        timed_key(tree, "expand to depth 9", lambda: tree.action_expand_depth(9))
        timed_key(tree, "page down", tree.action_page_down)
        timed_key(tree, "H hot path from the top", lambda: (tree.action_first(), tree.action_hot_path()))
        big = int(m.pos_of[int(np.argmax(m.count[: m.n + 1]))])
        tree.move_to_pos(big)
        name = m.data.func_name(int(m.func[m.node(big)]))
        timed_key(tree, f"detail of the path {name} x{int(m.count[m.node(big)]):,}", app.update_detail)
        t = time.perf_counter()
        hits = find(m, Query(name), app.rows.hidden)
        record(f"name search {name!r} ({len(hits):,} paths)", (time.perf_counter() - t) * 1000, 50)
        t = time.perf_counter()
        await pilot.press("m")
        await wait_for(pilot, lambda: not app.index.merged)
        repaint(tree)
        record("m again: calls on screen, on the path's first call", (time.perf_counter() - t) * 1000, 300)
    record("peak RSS (whole process)", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 2048, "MB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--file", help="an existing .ftr to open instead of a synthetic one")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    path = a.file or f"/tmp/flowtrace-synth-{a.calls}.ftr"
    if not os.path.exists(path):
        print(f"writing {path} …", flush=True)
        synth.write(path, a.calls)
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    asyncio.run(run(path, a.repeat))
    print(f"\n{'measure':<62} {'value':>10} {'goal':>8} {'':>4} ok")
    for what, value, goal, unit in ROWS:
        print(f"{what:<62} {value:>10.3f} {goal:>8g} {unit:>4} {'yes' if value <= goal else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
