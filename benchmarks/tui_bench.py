"""Explorer benchmark: open a big trace in the real app (headless) and time what a user feels.

    python benchmarks/tui_bench.py [--calls 10000000] [--processes K] [--file trace.ftr | --real]

Without --file a synthetic trace is written first (benchmarks/synth.py; cached in /tmp by size);
--processes K writes a session of K processes instead (the root file and K-1 parts beside it, as
`flowtrace run` follows children: docs/FORMAT.md), the calls split evenly between them;
--real records a real program instead (benchmarks/real_trace.py; cached too).
Measured in one process, side by side, against the goals of issue 4:
first screen, full index, peak RSS, key press -> repaint (action + drawing every visible line,
i.e. our cost without the Pilot driver's own ~70 ms), also on the node with the most children,
next search hit, name search and argument-text search over the whole trace.

What is searched comes from the trace itself, so that any trace gives real hits: the most
frequent function's name, a function of middling frequency (whose hits `n`/`N` walk), and one
captured argument's text when the trace has arguments.
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
import real_trace  # noqa: E402
import synth  # noqa: E402

from flowtrace_tui.app import FlowtraceApp  # noqa: E402
from flowtrace_tui.model.search import Query, find  # noqa: E402
from flowtrace_tui.model.source import TraceSource  # noqa: E402

ROWS: list[tuple[str, float, float, str]] = []  # (what, value, goal, unit)


def record(what: str, value: float, goal: float, unit: str = "ms") -> None:
    ROWS.append((what, value, goal, unit))


def repaint(tree) -> None:
    """Draw every visible line, as a repaint does (bypassing the strip cache)."""
    tree._cache.clear()
    for y in range(tree.scrollable_content_region.height):
        tree.render_line(y)


def queries(data) -> tuple[Query, Query, Query | None]:
    """Searches that hit in this trace: the most frequent function's name, one of middling
    frequency (the median of the functions' call counts), and a captured argument (None when
    the trace has no argument text)."""
    n = data.n
    counts = np.bincount(data.col("func")[1 : n + 1])
    used = np.flatnonzero(counts)
    by_count = used[np.argsort(counts[used], kind="stable")]
    top = int(by_count[-1])
    mid = int(by_count[len(by_count) // 2])
    name = lambda f: data.functions[f].qualname  # noqa: E731
    text = None
    args = data.col("args")[1 : n + 1]
    have = np.flatnonzero(args[n // 2 :]) + n // 2  # a call from the middle of the trace
    if len(have):
        t = data.strings.text(int(args[have[0]])).split(", ")[0]
        text = Query(t[:40], in_text=True)
    return Query(name(top)), Query(name(mid)), text


def widest(data, ix) -> int:
    """Position of the call with the most children."""
    kids = np.bincount(data.col("parent")[1 : data.n + 1])
    kids[0] = 0  # the roots' "parent"
    return int(ix.pos_of[int(np.argmax(kids))])


def timed_key(tree, label: str, action, goal_ms: float = 50) -> None:
    t = time.perf_counter()
    action()
    repaint(tree)
    record(f"key: {label}", (time.perf_counter() - t) * 1000, goal_ms)


async def run(path: str) -> None:
    from flowtrace_tui.widgets.call_tree import CallTree

    first_draw: list[float] = []
    draw = CallTree._draw

    def spy(self, *args, **kwargs):  # the moment the first tree line is drawn
        if not first_draw:
            first_draw.append(time.perf_counter())
        return draw(self, *args, **kwargs)

    CallTree._draw = spy  # type: ignore[method-assign]
    t0 = time.perf_counter()
    src = TraceSource.open(path)
    app = FlowtraceApp(src, show_detail=True)
    async with app.run_test(size=(120, 40)) as pilot:
        while not first_draw:
            await asyncio.sleep(0.002)
        record("first screen (open → first tree line drawn)", (first_draw[0] - t0) * 1000, 1000)
        while app.loading:
            await asyncio.sleep(0.01)
        record("full index (open → final index applied)", (time.perf_counter() - t0), 10, "s")
        await pilot.pause()
        tree = app.tree
        ix = app.index
        timed_key(tree, "down", tree.action_cursor_down)
        timed_key(tree, "page down", tree.action_page_down)
        timed_key(tree, "expand to depth 3", lambda: tree.action_expand_depth(3))
        timed_key(tree, "G (bottom)", tree.action_last)
        timed_key(tree, "g (top)", tree.action_first)
        timed_key(tree, "collapse all", tree.action_collapse_all)
        # the node with the most children (1 M in the synthetic trace)
        wide = widest(src.data, ix)
        if wide >= 0:
            tree.move_to_pos(wide)
            if app.rows.is_expanded(wide):  # measure its expansion, not a cursor move
                app.rows.collapse(wide)
                tree.changed()
            kids = len(ix.children(wide))
            timed_key(tree, f"expand node with {kids:,} children", tree.action_expand_or_child)
            timed_key(tree, "down inside it", tree.action_cursor_down)
            timed_key(tree, "page down inside it", tree.action_page_down)
            timed_key(tree, "G: last of its children", tree.action_last)
            timed_key(tree, "p: back to the parent", tree.action_parent)
            timed_key(tree, "collapse it", tree.action_toggle)
        timed_key(tree, "H hot path (from it)", tree.action_hot_path)
        tree.action_collapse_all()
        tree.action_first()
        timed_key(tree, "H hot path (from the top, all collapsed)", tree.action_hot_path)
        # search: what is searched comes from the trace
        q_top, q, qt = queries(src.data)
        t = time.perf_counter()
        top_hits = find(ix, q_top, app.rows.hidden)
        record(f"name search {q_top.text!r} ({len(top_hits):,} hits)", (time.perf_counter() - t), 2, "s")
        t = time.perf_counter()
        hits = find(ix, q, app.rows.hidden)
        record(f"name search {q.text!r} ({len(hits):,} hits)", (time.perf_counter() - t), 2, "s")
        if qt is not None:
            t = time.perf_counter()
            thits = find(ix, qt, app.rows.hidden)
            record(f"arg-text search {qt.text[:20]!r} ({len(thits):,} hits)", (time.perf_counter() - t), 2, "s")
        tree.action_collapse_all()
        app.query = q
        app.hits = hits
        tree.set_hits(hits)
        tree.action_first()
        for i in range(3):
            timed_key(tree, f"n: next hit #{i + 1} (reveals it)", lambda: app._goto_hit(True), 100)
        timed_key(tree, "N: previous hit", lambda: app._goto_hit(False), 100)
    record("peak RSS (whole process)", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1536, "MB")


def write_processes(calls: int, processes: int) -> str:
    """A synthetic session of `processes` processes (cached in /tmp): the root file and a part
    per child in `<root>.d/`, each of calls/processes calls (a different seed each)."""
    path = f"/tmp/flowtrace-synth-{calls}-p{processes}.ftr"
    if os.path.exists(path):
        return path
    print(f"writing {path} and its {processes - 1} parts …", flush=True)
    each = calls // processes
    os.makedirs(path + ".d", exist_ok=True)
    for i in range(1, processes):
        info = {"pid": 1 + i, "ppid": 1, "argv": ["-c", "--multiprocessing-fork"], "command": "exec",
                "process": {"how": "exec", "started_by": None, "root": path}}
        synth.write(os.path.join(path + ".d", f"{1 + i}.ftr"), each, seed=1 + i, meta_extra=info)
    synth.write(path, each, meta_extra={"parts": os.path.basename(path) + ".d"})
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--file", help="an existing .ftr to open instead of a synthetic one")
    ap.add_argument("--real", action="store_true", help="a recorded real program (benchmarks/real_trace.py)")
    ap.add_argument("--processes", type=int, default=1, help="a synthetic session of this many processes")
    a = ap.parse_args(argv)
    path = real_trace.record() if a.real else a.file
    if path is None and a.processes > 1:
        path = write_processes(a.calls, a.processes)
    elif path is None:
        path = f"/tmp/flowtrace-synth-{a.calls}.ftr"
        if not os.path.exists(path):
            print(f"writing {path} …", flush=True)
            synth.write(path, a.calls)
    size = os.path.getsize(path) + sum(e.stat().st_size for e in os.scandir(path + ".d")) if os.path.isdir(path + ".d") \
        else os.path.getsize(path)
    print(f"{path}: {size / 1e6:.1f} MB; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # the model alone (no UI), in a child process so its memory does not count here
    import subprocess

    code = (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from flowtrace_tui.model.source import TraceSource\n"
        "from flowtrace_tui.model import build_index\n"
        "t = time.perf_counter(); src = TraceSource.open(%r)\n"
        "while not src.done and src.step().more: pass\n"
        "l = time.perf_counter() - t; build_index(src.data)\n"
        "print(l, time.perf_counter() - t)\n"
    ) % (os.path.join(os.path.dirname(__file__), ".."), path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    record(f"model alone: load {float(out[0]):.1f} s + index (no UI)", float(out[1]), 10, "s")
    asyncio.run(run(path))
    print(f"\n{'measure':<56} {'value':>10} {'goal':>10} {'':>4} ok")
    for what, value, goal, unit in ROWS:
        ok = "yes" if value <= goal else "NO"
        print(f"{what:<56} {value:>10.3f} {goal:>10g} {unit:>4} {ok}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
