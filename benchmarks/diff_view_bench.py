"""The explorer's diff view (`flowtrace-tui diff BASE NEW`) on two big sessions: what a user
waits for and what each key costs.

    python benchmarks/diff_view_bench.py [--calls 5000000] [--base FILE --new FILE]
                                         [--road auto|processes|here]

Without files, two synthetic sessions (benchmarks/synth.py, seeds 1 and 2: the same program
shapes, other random trees) are written to /tmp once and reused. Measured in the real app,
headless at 120x40, in one process:
- open: the app started -> both sessions read, indexed, merged by name, matched, and the
  first tree line drawn (goal: 3 s for 2 x 5 M calls);
- outcomes: then -> every call's outcome compared (a worker; the tree is usable meanwhile);
- keys (action + drawing every visible line, as tui_bench.py does): next/previous change,
  hide unchanged subtrees, expand to depth, the detail pane of the path with the most calls.
The model alone (read + merge one session, no UI) is printed beside it for reference: big
sessions are read in two child processes at the same time (model/diff_sides.py), so one of
those plus a child's start (~0.2 s quiet) and the match is the floor of the open time.
`--road here` reads both in this process, one after the other (the road of small sessions):
the two roads side by side. Peak RSS: this process's, and the largest child's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import synth  # noqa: E402
from tui_bench import ROWS, record, timed_key  # noqa: E402

from flowtrace_tui.diff_app import DiffApp  # noqa: E402
from flowtrace_tui.model.diff_sides import read_side  # noqa: E402
from flowtrace_tui.model.source import TraceSource  # noqa: E402


def model_alone(path: str) -> None:
    t = time.perf_counter()
    src = TraceSource.open(path)
    side = read_side(src)
    record(f"model alone, one session: read + merge ({side.data.n:,} calls)", time.perf_counter() - t, 3, "s")
    src.close()


def cpu_seconds() -> tuple[float, float]:
    """User + system CPU seconds of this process and of its ended children so far."""
    me, kids = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


async def run(base: str, new: str, processes: bool | None) -> None:
    from flowtrace_tui.widgets.diff_tree import DiffTree

    first_draw: list[float] = []
    draw = DiffTree._draw

    def spy(self, *args, **kwargs):  # the moment the first tree line is drawn
        if not first_draw:
            first_draw.append(time.perf_counter())
        return draw(self, *args, **kwargs)

    DiffTree._draw = spy  # type: ignore[method-assign]
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    app = DiffApp(TraceSource.open(base), TraceSource.open(new), processes=processes)
    async with app.run_test(size=(120, 40)) as pilot:
        while not first_draw:
            await asyncio.sleep(0.002)
        opened = first_draw[0] - t0
        cpu = [b - a for a, b in zip(cpu0, cpu_seconds())]
        record(f"open: 2 sessions -> first tree line ({app.index.n:,} paths)", opened, 3, "s")
        record("  CPU meanwhile: this process", cpu[0], 3, "s")
        record("  CPU meanwhile: the reader processes, together", cpu[1], 6, "s")
        while app.comparing:
            await asyncio.sleep(0.01)
        record("outcomes compared (after the first screen)", time.perf_counter() - first_draw[0], 10, "s")
        await pilot.pause()
        tree = app.tree
        timed_key(tree, f"J: next change (of {len(app.changes):,})", app.action_next_change)
        timed_key(tree, "J again", app.action_next_change)
        timed_key(tree, "K: previous change", app.action_prev_change)
        timed_key(tree, "u: hide unchanged subtrees", app.action_toggle_unchanged)
        timed_key(tree, "u: show them again", app.action_toggle_unchanged)
        timed_key(tree, "expand to depth 5", lambda: tree.action_expand_depth(5))
        timed_key(tree, "page down", tree.action_page_down)
        ix = app.index
        calls = np.maximum(ix.base.merged.count[ix.base.node], ix.new.merged.count[ix.new.node])
        big = int(ix.pos_of[int(np.argmax(calls))])
        tree.move_to_pos(big)
        timed_key(tree, f"detail of the path with the most calls ({int(calls.max()):,})", app.update_detail)
    record("peak RSS (this process)", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 3072, "MB")
    record("peak RSS (the largest reader process)", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
           3072, "MB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=5_000_000)
    ap.add_argument("--base")
    ap.add_argument("--new")
    ap.add_argument("--road", choices=("auto", "processes", "here"), default="auto",
                    help="read the sessions in child processes, here, or as the app decides (default)")
    ap.add_argument("--no-model", action="store_true", help="skip the model-alone line")
    a = ap.parse_args(argv)
    paths = [a.base, a.new]
    for i, seed in enumerate((1, 2)):
        if paths[i] is None:
            paths[i] = f"/tmp/flowtrace-diffview-{a.calls}-s{seed}.ftr"
            if not os.path.exists(paths[i]):
                print(f"writing {paths[i]} …", flush=True)
                synth.write(paths[i], a.calls, seed=seed)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"road: {a.road}")
    if not a.no_model:
        model_alone(paths[0])
    asyncio.run(run(*paths, {"auto": None, "processes": True, "here": False}[a.road]))
    print(f"\n{'measure':<72} {'value':>10} {'goal':>8} {'':>4} ok")
    for what, value, goal, unit in ROWS:
        print(f"{what:<72} {value:>10.3f} {goal:>8g} {unit:>4} {'yes' if value <= goal else 'NO'}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
