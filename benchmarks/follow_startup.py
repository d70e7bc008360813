"""What following child processes costs (issue 12), measured on whole processes, side by side.

    python benchmarks/follow_startup.py [--repeat 20] [--viztracer PATH]

1. A followed child's start-up: the same interpreter started plain, and started the way
   `flowtrace run` leaves its descendants to start (the follow variables in the environment,
   flowtrace/_boot first on PYTHONPATH: the child records itself into a part), and with -I
   (the hook is not read). Then end to end: `flowtrace run` of a parent that starts 10 Python
   children one after the other, with and without --no-follow: the difference over 10 is what
   each followed child adds to the user's run.
2. Recording overhead of a Pool workload against the single-process figure: the same calls
   (2000 items, 200 calls each) made by a fork Pool of 4 and by one process, each untraced and
   under `flowtrace run`; the overhead (traced / untraced - 1) of both, and their ratio. The
   `viztracer` command on the Pool too, when given (it follows multiprocessing as well).
Every cell is a separate process; configurations are interleaved, tables show medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from pyc import precompile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHILD = "def f():\n    return 1\nf()"
PARENT = """
import subprocess, sys
def launch(i):
    return subprocess.run([sys.executable, "-c", "def f():\\n    return 1\\nf()"]).returncode
for i in range(10):
    launch(i)
"""
WORK = """
def leaf(i):
    return i + 1

def work(x):
    total = 0
    for i in range(200):
        total += leaf(i)
    return total + x
"""
POOL = WORK + """
import multiprocessing as mp
if __name__ == "__main__":
    with mp.get_context("fork").Pool(4) as pool:
        print(sum(pool.map(work, range(2000), chunksize=50)))
"""
SINGLE = WORK + """
if __name__ == "__main__":
    print(sum(map(work, range(2000))))
"""


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _follow_env(parts: str) -> dict[str, str]:
    env = dict(os.environ)
    env["FLOWTRACE_FOLLOW_DIR"] = parts
    env["FLOWTRACE_FOLLOW_OPTS"] = json.dumps({"args": "safe", "include": [], "exclude": [], "flush_interval": 0.1, "platform": "linux", "hostname": "bench"})
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.path.join(ROOT, "flowtrace", "_boot") + (os.pathsep + old if old else "")
    return env


def _medians(rows: dict[str, tuple[list[str], dict[str, str]]], repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeat):
        for name, (cmd, env) in rows.items():
            times[name].append(_time(cmd, env))
    return {name: statistics.median(values) for name, values in times.items()}


def _write(folder: str, name: str, text: str) -> str:
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def startup(py: str, tmp: str, repeat: int) -> None:
    parts = os.path.join(tmp, "trace.ftr.d")
    os.makedirs(parts)
    plain_env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_")}
    med = _medians({"plain": ([py, "-c", CHILD], plain_env),
                    "followed": ([py, "-c", CHILD], _follow_env(parts)),
                    "followed, -I": ([py, "-I", "-c", CHILD], _follow_env(parts))}, repeat)
    print(f"1. a child's start-up, median of {repeat} whole processes ({py}):")
    for name, value in med.items():
        print(f"  {name:22s} {value * 1000:8.1f} ms   {value / med['plain']:5.2f}x")
    parent = _write(tmp, "parent.py", PARENT)
    out = os.path.join(tmp, "p.ftr")
    med = _medians({"untraced": ([py, parent], plain_env),
                    "flowtrace run --no-follow": ([py, "-m", "flowtrace", "run", "--no-follow", "-o", out, parent],
                                                  plain_env),
                    "flowtrace run": ([py, "-m", "flowtrace", "run", "-o", out, parent], plain_env)},
                   max(3, repeat // 3))
    print("   a parent starting 10 Python children, whole process:")
    for name, value in med.items():
        print(f"  {name:26s} {value * 1000:8.1f} ms")
    per_child = (med["flowtrace run"] - med["flowtrace run --no-follow"]) / 10
    print(f"   following adds {per_child * 1000:.1f} ms per child")


def pool(py: str, tmp: str, repeat: int, viztracer: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_")}
    rows: dict[str, tuple[list[str], dict[str, str]]] = {}
    for label, text in (("pool", POOL), ("single", SINGLE)):
        script = _write(tmp, f"{label}.py", text)
        rows[f"{label} untraced"] = ([py, script], env)
        rows[f"{label} flowtrace run"] = ([py, "-m", "flowtrace", "run", "-o", os.path.join(tmp, f"{label}.ftr"),
                                          script], env)
    if viztracer:
        rows["pool viztracer"] = ([viztracer, "-o", os.path.join(tmp, "viz.json"), "--quiet",
                                   os.path.join(tmp, "pool.py")], env)
    med = _medians(rows, repeat)
    print(f"2. 2000 items x 200 calls, median of {repeat} whole processes:")
    for name, value in med.items():
        base = med[name.split()[0] + " untraced"]
        print(f"  {name:24s} {value * 1000:8.1f} ms   overhead {value / base - 1:6.2f}x")
    pool_over = med["pool flowtrace run"] / med["pool untraced"] - 1
    single_over = med["single flowtrace run"] / med["single untraced"] - 1
    print(f"   Pool overhead / single-process overhead: {pool_over / single_over:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--viztracer", help="the viztracer command (a separate venv of the same Python)")
    args = ap.parse_args()
    precompile(os.path.join(ROOT, "flowtrace"))  # as installed: its .pyc files written
    with tempfile.TemporaryDirectory() as tmp:
        startup(args.python, tmp, args.repeat)
        pool(args.python, tmp, max(3, args.repeat // 4), args.viztracer)


if __name__ == "__main__":
    main()
