"""Live index update cost against session size: growing the index (model/grow.py) vs rebuilding
it, as the live view does after each poll.

    python benchmarks/index_growth.py [--seconds 5] [--poll-calls 100000] [--file trace.ftr]

Without --file a busy program (calls nonstop, the default recorder) is recorded first (cached in
/tmp by duration). The trace is then fed to a fresh `TraceData` in polls of about --poll-calls
calls (whole chunks, as `LiveTail.poll` reads them), and after each poll the index and the view
are updated the way the explorer does:
- grow: `grow_index` from the previous index + `TreeRows.carry_to` (the view moved, new calls
  merged) + the heaviest children for `H` (kept up to date by grow_index);
- rebuild: `build_index` + `TreeRows.carry_to` (a whole pass) + the heaviest children (another).
Each mode runs in its own child process (same file, same polls), one after the other, twice,
interleaved; the table shows medians of the updates around 1M, 2M, 3M ... calls (the 5 nearest in each run)
and each child's peak RSS. Goal (issue 5): the per-update cost no longer grows with the session.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from live_latency import PROGRAMS  # noqa: E402  (the same busy program)


def record(seconds: float) -> str:
    path = os.path.join(tempfile.gettempdir(), f"flowtrace-busy-{seconds:g}s.ftr")
    if not os.path.exists(path):
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "busy.py")
            with open(script, "w") as fh:
                fh.write(textwrap.dedent(PROGRAMS["busy"]).format(seconds=seconds))
            subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", path + ".part", script],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(path + ".part", path)
    return path


def child(mode: str, path: str, poll_calls: int) -> None:
    from flowtrace.ftr import format as F
    from flowtrace.ftr.chunks import ChunkReader
    from flowtrace_tui.model import TraceData, TreeRows, build_index
    from flowtrace_tui.model.grow import grow_index

    chunks = ChunkReader(path).poll()
    data = TraceData("bench")
    ix = rows = None
    steps: list[tuple[int, float]] = []
    i = 0
    while i < len(chunks):
        n0 = data.n
        # a poll: whole chunks, stopping before a CALL chunk once enough calls came in
        while i < len(chunks) and (data.n - n0 < poll_calls or chunks[i].kind != F.CALL):
            data.feed(chunks[i : i + 1])
            i += 1
        if data.n == 0:
            continue
        t = time.perf_counter()
        if ix is None:
            ix = build_index(data)
            ix.heavy  # noqa: B018
            rows = TreeRows(ix)
            rows.initial_expand()
            continue
        ix = grow_index(ix, data) if mode == "grow" else build_index(data)
        rows = rows.carry_to(ix)
        ix.heavy  # noqa: B018 -- as the explorer after posting (grown: kept up to date, rebuilt: a whole pass)
        steps.append((data.n, time.perf_counter() - t))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"steps": steps, "rss": rss}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="how long the busy program runs")
    ap.add_argument("--poll-calls", type=int, default=100_000, help="calls per poll (~0.1 s of a busy program)")
    ap.add_argument("--file", help="a recorded trace to use instead")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "FILE"))
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.poll_calls)
        return
    path = args.file or record(args.seconds)
    runs: dict[str, list[dict]] = {"grow": [], "rebuild": []}
    for _ in range(2):
        for mode in runs:
            out = subprocess.run([sys.executable, __file__, "--child", mode, path, "--poll-calls", str(args.poll_calls)],
                                 check=True, capture_output=True, text=True).stdout
            runs[mode].append(json.loads(out))
    total = runs["grow"][0]["steps"][-1][0]
    print(f"python {sys.version.split()[0]}, {os.path.basename(path)}: {total:,} calls, polls of ~{args.poll_calls:,} calls")
    print(f"{'session size':>14} | {'grow':>10} | {'rebuild':>10} | ratio   (index + view + H's heaviest children)")
    for m in range(1, total // 1_000_000 + 1):
        target = m * 1_000_000
        med = {}
        for mode, rs in runs.items():
            near = sorted((abs(n - target), s) for r in rs for n, s in r["steps"])[:10]
            med[mode] = statistics.median(s for _, s in near)
        print(f"{m:>12}M  | {med['grow'] * 1e3:>7.1f} ms | {med['rebuild'] * 1e3:>7.1f} ms | {med['rebuild'] / med['grow']:5.1f}x")
    for mode, rs in runs.items():
        print(f"peak RSS, {mode}: {statistics.median(r['rss'] for r in rs):.0f} MB")


if __name__ == "__main__":
    main()
