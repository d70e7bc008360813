"""A real trace for the explorer's benchmarks: a bundled program recorded by `flowtrace run`.

    python benchmarks/real_trace.py [--scale 1.0] [--no-args] [--force]

Records `benchmarks/programs/shop_sim.py` (deterministic: ~6.4 M calls at scale 1 — a node with
1 M children, recursion, methods, generators, caught exceptions) with the `flowtrace` of this
checkout, into a file cached in /tmp under a name made from the program's text, the scale and
the options, so a changed program is recorded again. Prints the path. `tui_bench.py --real`
uses it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "programs", "shop_sim.py")


def cached_path(scale: float = 1.0, args: bool = True) -> str:
    """Where the recording of this program at this scale is cached."""
    with open(PROGRAM, "rb") as f:
        digest = hashlib.sha256(f.read() + f"|{scale}|{args}".encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"flowtrace-real-{digest}.ftr")


def record(scale: float = 1.0, args: bool = True, force: bool = False) -> str:
    """Path of the recorded trace; records it first unless it is cached."""
    path = cached_path(scale, args)
    if os.path.exists(path) and not force:
        return path
    tmp = path + ".part"
    cmd = [sys.executable, "-m", "flowtrace", "run", "-o", tmp, *([] if args else ["--no-args"]), PROGRAM, str(scale)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(HERE, ".."), os.environ.get("PYTHONPATH", "")]))
    print(f"recording {os.path.relpath(PROGRAM)} (scale {scale}) …", file=sys.stderr, flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    os.replace(tmp, path)  # only a complete recording is ever cached
    print(f"recorded in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--no-args", action="store_true", help="record without arguments and results")
    ap.add_argument("--force", action="store_true", help="record again even when cached")
    a = ap.parse_args(argv)
    print(record(a.scale, not a.no_args, a.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
