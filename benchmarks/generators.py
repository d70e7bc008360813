"""Generator resumes: what a yield costs untraced, under `flowtrace run` and under the
`viztracer` command, each a separate whole process, side by side (issue 8 item 1).

    python benchmarks/generators.py [--n 5000000] [--repeat 3] [--viztracer PATH]
                                    [--checkout NAME=DIR ...] [--python PY]

The workload is benchmarks/programs/gen_yield.py: one generator yielding N values to a `for`
loop. Each configuration runs it as its own process, interleaved `--repeat` times:

- untraced: `PY gen_yield.py N`
- flowtrace / flowtrace-noargs (per checkout): `PY -m flowtrace run [--no-args] -o F gen_yield.py N`
  with PYTHONPATH at the checkout (built in place: `python setup.py build_ext --inplace`), so
  two versions (before/after a change) can be compared in one run; default: this checkout
- viztracer: `VIZTRACER -o F.json gen_yield.py N` (VizTracer is not a dependency: give the
  command of a separate venv, e.g. /path/venv/bin/viztracer; skipped without it)

Columns (medians): the loop's yields per second (its own perf_counter: start-up and saving
left out), the recording cost per yield over untraced (ns), the whole process's wall time
(start-up, recording, flowtrace's final flush / VizTracer's JSON save), and the output size.
The summary says whether flowtrace's per-yield cost is at most VizTracer's per resume.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAM = os.path.join(HERE, "programs", "gen_yield.py")


def run_once(argv: list[str], env: dict[str, str], out: str | None, cwd: str) -> dict[str, float]:
    """One whole process: its loop time (printed by the program), wall time, output size.
    (`cwd` is a scratch directory: `python -m flowtrace` puts the working directory before
    PYTHONPATH, and a checkout's own directory would win over the one asked for.)"""
    if out is not None and os.path.exists(out):
        os.unlink(out)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("yields="))
    fields = dict(part.split("=") for part in line.split())
    size = os.path.getsize(out) if out is not None and os.path.exists(out) else 0
    return {"loop": float(fields["seconds"]), "wall": wall, "size": float(size)}


def configs(args: argparse.Namespace, tmp: str) -> list[tuple[str, list[str], dict[str, str], str | None]]:
    """(name, argv, env, output file) of every configuration."""
    n = str(args.n)
    base_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FLOWTRACE_RECORDER")}
    out = [("untraced", [args.python, PROGRAM, n], base_env, None)]
    for name, path in args.checkout or [("this", ROOT)]:
        env = {**base_env, "PYTHONPATH": path}
        for flag, label in (([], ""), (["--no-args"], "-noargs")):
            f = os.path.join(tmp, f"{name}{label}.ftr")
            out.append((f"flowtrace{label} [{name}]", [args.python, "-m", "flowtrace", "run", *flag, "-o", f,
                                                      PROGRAM, n], env, f))
    if args.viztracer:
        f = os.path.join(tmp, "viz.json")
        out.append(("viztracer", [args.viztracer, "--quiet", "-o", f, PROGRAM, n], base_env, f))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5_000_000, help="values the generator yields")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--python", default=sys.executable, help="interpreter for untraced and flowtrace runs")
    ap.add_argument("--viztracer", help="the viztracer command (of a venv that has it)")
    ap.add_argument("--checkout", action="append", type=lambda s: tuple(s.split("=", 1)),
                    help="NAME=DIR: a flowtrace checkout to measure (repeatable; default: this one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfgs = configs(args, tmp)
        results: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in cfgs}
        for _ in range(args.repeat):  # interleaved: machine noise hits every configuration alike
            for name, argv, env, out in cfgs:
                results[name].append(run_once(argv, env, out, tmp))
    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    base = med["untraced"]["loop"]
    print(f"generator yielding {args.n:,} values, median of {args.repeat} whole processes each")
    print(f"{'configuration':28} {'yields/s':>12} {'ns/yield over untraced':>23} {'process s':>10} {'output':>12}")
    for name, m in med.items():
        cost = (m["loop"] - base) / args.n * 1e9
        print(f"{name:28} {args.n / m['loop']:12,.0f} {cost:23.1f} {m['wall']:10.2f} {int(m['size']):12,}")
    if "viztracer" in med:
        viz = (med["viztracer"]["loop"] - base) / args.n
        for name, m in med.items():
            if name.startswith("flowtrace"):
                ours = (m["loop"] - base) / args.n
                verdict = "PASS" if ours <= viz else "MISS"
                print(f"{verdict}: {name} per-yield cost / VizTracer's per resume = {ours / viz:.2f}")


if __name__ == "__main__":
    main()
