"""What the live view spends per call of a busy program, in CPU time: reading (TraceData.feed:
decoding the chunks into columns) and indexing (grow_index), replayed from a recorded session.

    python benchmarks/live_cost.py [FILE.ftr] [--batch 200000] [--calls 3000000] [--explorer-path DIR]

Without FILE, the busy loop of live_latency.py is recorded for 4 s first. The session's chunks
are read once, then fed to a fresh TraceData in batches of about `--batch` calls (a live poll
of a busy program brings ~10^5), with grow_index after each, as the live view does -- without
the recorder running beside it, and timed with this thread's CPU time (time.thread_time), so
that a loaded machine moves the figures less than wall-clock ones. `--explorer-path DIR` runs
the same replay with another checkout's explorer (PYTHONPATH=DIR) in alternating rounds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))

BUSY = """
    import time
    def leaf(i):
        return i
    def work(i):
        return leaf(i) + leaf(i + 1)
    end = time.monotonic() + 4
    i = 0
    while time.monotonic() < end:
        work(i)
        i += 1
"""


def replay(path: str, batch: int, limit: int) -> tuple[int, float, float]:
    """(calls, feed s, grow s): the session fed in batches of ~`batch` calls, grown after each."""
    from flowtrace.ftr import format as F
    from flowtrace.ftr.chunks import ChunkReader
    from flowtrace_tui.model.grow import grow_index
    from flowtrace_tui.model.index import build_index
    from flowtrace_tui.model.loader import TraceData

    reader = ChunkReader(path, read_size=1 << 16)
    chunks = []
    while got := reader.poll():
        chunks.extend(got)
    data = TraceData("replay")
    ix = None
    feed_s = grow_s = 0.0
    pending: list = []
    rows = 0
    for i, chunk in enumerate(chunks):
        pending.append(chunk)
        if chunk.kind == F.CALL:
            rows += F.COLUMNS_HEADER.unpack_from(chunk.payload)[1]
        if rows < batch and i + 1 < len(chunks) and data.n + rows <= limit:
            continue
        t = time.thread_time()
        data.feed(pending)
        t1 = time.thread_time()
        if data.n:
            ix = build_index(data) if ix is None else grow_index(ix, data)
        feed_s += t1 - t
        grow_s += time.thread_time() - t1
        pending, rows = [], 0
        if data.n > limit:
            break
    return data.n, feed_s, grow_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", help="a recorded session (default: record the busy loop for 4 s)")
    ap.add_argument("--batch", type=int, default=200_000, help="calls per live update (default 200000)")
    ap.add_argument("--calls", type=int, default=3_000_000, help="replay at most about this many calls")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--explorer-path", help="another checkout to compare with (alternating rounds)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a single replay (a child run)
    args = ap.parse_args()
    if args.one:
        n, feed_s, grow_s = replay(args.file, args.batch, args.calls)
        print(n, feed_s, grow_s)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            script = os.path.join(tmp, "busy.py")
            with open(script, "w") as fh:
                fh.write(textwrap.dedent(BUSY))
            path = os.path.join(tmp, "busy.ftr")
            subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", path, script], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": os.path.join(HERE, "..")})
        sides = [("this checkout", os.path.join(HERE, ".."))]
        if args.explorer_path:
            sides.append((args.explorer_path, args.explorer_path))
        print(f"python {sys.version.split()[0]}, {os.path.basename(path)} replayed in batches of {args.batch:,} calls; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'explorer':40} {'calls':>9} {'feed ns/call':>12} {'grow ns/call':>12}   (CPU time of the replaying thread)")
        for _ in range(args.rounds):
            for name, root in sides:
                out = subprocess.run([sys.executable, os.path.abspath(__file__), path, "--one", "--batch", str(args.batch),
                                      "--calls", str(args.calls)], capture_output=True, text=True, check=True,
                                     env={**os.environ, "PYTHONPATH": root})
                n, feed_s, grow_s = out.stdout.split()
                calls = int(n)
                print(f"{name:40} {calls:9d} {float(feed_s) * 1e9 / calls:12.0f} {float(grow_s) * 1e9 / calls:12.0f}")


if __name__ == "__main__":
    main()
