"""Recording as users pay for it: `flowtrace run` against the `viztracer` command, end to end.

    python benchmarks/e2e.py [--viztracer PATH] [--repeat 3] [--scale 3] [--workloads fib,...]

Every cell is a separate process running the same script (one per workload, generated in a
temporary directory) the way a user runs it:

- untraced:      python script.py
- ft / ft-noargs / ft-full:  python -m flowtrace run -o F [--no-args | --repr full] script.py
- viz / viz-args: viztracer -o F.json --quiet [--log_func_args --log_func_retval] script.py

The script times its own workload (`--scale` runs of the workload's run()) from the inside:
CPU time of the whole process (time.process_time: every thread, so flowtrace's flusher and
writer count) and wall time. For VizTracer that is recording only (it saves after the script
ends); the whole-process wall time -- interpreter start to a finished file -- is VizTracer's
record+save. The parent also reads each child's peak RSS (wait4; it includes the ~15 MB of
this process's own RSS, which a forked child starts with) and the size of its file.
Configurations run interleaved, `--repeat` rounds; the tables show medians.

VizTracer is not a dependency of flowtrace: give its command with --viztracer (install it in a
separate venv of the same Python, e.g. `python3.12 -m venv /work/bench/venv312 &&
/work/bench/venv312/bin/pip install viztracer`). Without it, its rows are skipped with a note.

The goals (issue 10) are ratios of overheads (overhead = time / untraced - 1):
- ft workload CPU and wall overhead <= 1.0x viz's, on every workload;
- ft-noargs <= 0.7x viz; ft-full <= 0.5x viz-args;
- ft whole-process wall overhead <= 0.3x viz's (record+save);
- ft-noargs <= 8 bytes per call on disk;
- a program making calls nonstop for 10 s (--rss-seconds): the tracer's extra peak RSS <= 64 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import workloads  # benchmarks/workloads: the shared workload programs
from pyc import precompile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = workloads.NAMES + workloads.PROGRAMS
CONFIGS = ["untraced", "ft", "ft-noargs", "ft-full", "viz", "viz-args"]

DRIVER = """\
import json, os, sys, time
sys.path.insert(0, {wl_dir!r})
import {name} as workload

c0, w0 = time.process_time(), time.perf_counter()
for _ in range({scale}):
    workload.run()
c1, w1 = time.process_time(), time.perf_counter()
with open(os.environ["E2E_OUT"], "w") as fh:
    json.dump({{"cpu": c1 - c0, "wall": w1 - w0}}, fh)
"""


NONSTOP = """\
import time

def leaf(i):
    return i + 1

def branch(i):
    return leaf(i) * 2

end = time.monotonic() + {seconds}
while time.monotonic() < end:
    for i in range(1000):
        branch(i)
"""


def nonstop_rss(opts: argparse.Namespace) -> dict:
    """Peak RSS of a program making calls nonstop for --rss-seconds, untraced and under
    `flowtrace run` (default and --no-args): the tracer's extra memory under backpressure."""
    tmp = tempfile.mkdtemp(prefix="e2e-rss-")
    env = dict(os.environ, PYTHONPATH=ROOT)
    out: dict = {}
    try:
        script = os.path.join(tmp, "nonstop.py")
        with open(script, "w") as fh:
            fh.write(NONSTOP.format(seconds=opts.rss_seconds))
        for config in ("untraced", "ft", "ft-noargs"):
            ftr = os.path.join(tmp, "out.ftr")
            proc = subprocess.Popen(command(config, script, ftr, None), env=env, cwd=tmp,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            out[config] = {"rss_mb": usage.ru_maxrss / 1024, "exit": os.waitstatus_to_exitcode(status),
                           "bytes": os.path.getsize(ftr) if os.path.exists(ftr) else 0}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = out["untraced"]["rss_mb"]
    print(f"\nnonstop calls for {opts.rss_seconds} s: peak RSS untraced {base:.0f} MB; extra under "
          + ", ".join(f"{c} {out[c]['rss_mb'] - base:.0f} MB ({out[c]['bytes'] / 1e6:.0f} MB file)"
                      for c in ("ft", "ft-noargs")) + " (goal <= 64 MB)")
    return out


def command(config: str, script: str, out: str, viztracer: str | None) -> list[str]:
    """The command line a user would type for this configuration ("base-ft..." are the same
    as "ft..." with another flowtrace checkout: see --baseline)."""
    if config == "untraced":
        return [sys.executable, script]
    if config.startswith(("ft", "base-ft")):
        extra = {"ft": [], "ft-noargs": ["--no-args"], "ft-full": ["--repr", "full"]}[config.removeprefix("base-")]
        return [sys.executable, "-m", "flowtrace", "run", "-o", out, *extra, script]
    extra = ["--log_func_args", "--log_func_retval"] if config == "viz-args" else []
    return [viztracer, "-o", out, "--quiet", *extra, script]


def run_cell(config: str, script: str, tmp: str, viztracer: str | None, env: dict) -> dict:
    """One process: its in-script figures, whole wall time, peak RSS (MB) and file size."""
    if config.startswith("base-"):
        env = dict(env, PYTHONPATH=env["E2E_BASELINE"])
    out = os.path.join(tmp, "out.json" if config.startswith("viz") else "out.ftr")
    report = os.path.join(tmp, "report.json")
    for p in (out, report):
        if os.path.exists(p):
            os.unlink(p)
    t0 = time.perf_counter()
    # (cwd: the temporary directory -- `python -m` puts the cwd first on sys.path, which must not
    # pick the flowtrace checkout the benchmark was started in over PYTHONPATH's)
    proc = subprocess.Popen(command(config, script, out, viztracer), env=dict(env, E2E_OUT=report), cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    whole = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not os.path.exists(report):
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"{config} failed (exit {proc.returncode}): {tail}")
    with open(report) as fh:
        res = json.load(fh)
    res.update(whole=whole, rss_mb=usage.ru_maxrss / 1024,
               bytes=os.path.getsize(out) if os.path.exists(out) else 0)
    if config == "ft" and "calls" not in res:
        # counted in a child: this process must stay small, as a child's peak RSS (wait4) starts
        # from the RSS of the process it was forked from (Linux counts the pre-exec copy)
        count = subprocess.run([sys.executable, "-c", "import sys; from flowtrace.ftr.reader import load; "
                                "print(len(load(sys.argv[1])))", out], env=env, cwd=tmp,
                               capture_output=True, text=True, check=True)
        res["calls"] = int(count.stdout)
    return res


def measure(opts: argparse.Namespace, configs: list[str], chosen: list[str]) -> dict:
    results: dict = {(w, c): [] for w in chosen for c in configs}
    env = dict(os.environ, PYTHONPATH=ROOT, E2E_BASELINE=opts.baseline or "")
    env.pop("FLOWTRACE_RECORDER", None)
    # as installed: flowtrace's .pyc files written (the workloads' too, alike for every cell)
    precompile(os.path.join(ROOT, "flowtrace"), workloads.HERE,
               *([os.path.join(opts.baseline, "flowtrace")] if opts.baseline else []))
    tmp = tempfile.mkdtemp(prefix="e2e-")
    try:
        scripts = {}
        for w in chosen:
            scripts[w] = os.path.join(tmp, f"bench_{w}.py")
            with open(scripts[w], "w") as fh:
                fh.write(DRIVER.format(wl_dir=workloads.HERE, name=w, scale=opts.scale))
        for rep in range(opts.repeat):
            for w in chosen:
                for c in configs:  # interleaved: noise hits every configuration alike
                    try:
                        results[(w, c)].append(run_cell(c, scripts[w], tmp, opts.viztracer, env))
                    except RuntimeError as exc:
                        print(f"{w}/{c}: {exc}", file=sys.stderr)
            print(f"round {rep + 1}/{opts.repeat} done", file=sys.stderr)
            if opts.every_round and rep + 1 < opts.repeat:
                report(medians(results), configs, chosen, opts)  # (medians of the rounds so far)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def medians(results: dict) -> dict:
    med: dict = {}
    for key, runs in results.items():
        if runs:
            med[key] = {m: statistics.median(r[m] for r in runs) for m in runs[0] if m != "calls"}
            calls = [r["calls"] for r in runs if "calls" in r]
            if calls:
                med[key]["calls"] = calls[0]
    return med


def report(med: dict, configs: list[str], chosen: list[str], opts: argparse.Namespace) -> dict:
    calls = {w: med.get((w, "ft"), {}).get("calls") for w in chosen}

    def ovh(w: str, c: str, m: str) -> float | None:
        base, t = med.get((w, "untraced")), med.get((w, c))
        return None if not base or not t or base[m] <= 0 else t[m] / base[m] - 1

    print(f"\nPython {sys.version.split()[0]}; medians of {opts.repeat} runs; workload = {opts.scale} "
          f"run() calls; slowdown = time / untraced; calls = recorded by `flowtrace run`\n")
    for metric, title in (("cpu", "workload CPU time"), ("wall", "workload wall time"),
                          ("whole", "whole process wall time (to a finished file)")):
        print(f"{title}:")
        print(f"{'workload':<11}{'calls':>9}" + "".join(f"{c:>15}" for c in configs))
        for w in chosen:
            cells = []
            for c in configs:
                t, base = med.get((w, c)), med.get((w, "untraced"))
                if t is None or base is None:
                    cells.append(f"{'-':>15}")
                elif c == "untraced":
                    cells.append(f"{t[metric] * 1000:13.0f}ms")
                else:
                    cells.append(f"{t[metric] / base[metric]:14.2f}x")
            print(f"{w:<11}{calls[w] or 0:>9}" + "".join(cells))
        print()
    print("peak RSS (MB) and bytes per call on disk:")
    print(f"{'workload':<11}" + "".join(f"{c:>15}" for c in configs))
    for w in chosen:
        cells = []
        for c in configs:
            t = med.get((w, c))
            if t is None:
                cells.append(f"{'-':>15}")
            elif c == "untraced" or not calls[w]:
                cells.append(f"{t['rss_mb']:12.0f}MB ")
            else:
                cells.append(f"{t['rss_mb']:8.0f}MB/{t['bytes'] / calls[w]:3.0f}B")
        print(f"{w:<11}" + "".join(cells))

    goals = [("ft", "viz", "cpu", 1.0), ("ft", "viz", "wall", 1.0), ("ft-noargs", "viz", "cpu", 0.7),
             ("ft-noargs", "viz", "wall", 0.7), ("ft-full", "viz-args", "cpu", 0.5),
             ("ft-full", "viz-args", "wall", 0.5), ("ft", "viz", "whole", 0.3)]
    if "base-ft" in configs:
        goals += [("base-" + a, b, m, limit) for a, b, m, limit in goals]
    summary: dict = {"python": sys.version.split()[0], "medians": {f"{w}/{c}": v for (w, c), v in med.items()},
                     "goals": {}}
    print("\nGoals: overhead ratio (flowtrace overhead / VizTracer overhead) per workload, PASS when <= the goal")
    print(f"{'goal':<32}" + "".join(f"{w[:10]:>11}" for w in chosen))
    for a, b, m, limit in goals:
        cells = []
        for w in chosen:
            fa, fb = ovh(w, a, m), ovh(w, b, m)
            if fa is None or fb is None or fb <= 0:
                cells.append(f"{'-':>11}")
                continue
            r = fa / fb
            summary["goals"][f"{w}: {a}/{b} {m} <= {limit}"] = [round(r, 3), r <= limit]
            cells.append(f"{r:6.2f} {'ok' if r <= limit else 'MISS':>4}")
        print(f"{a + '/' + b + ' ' + m + ' <= ' + str(limit):<32}" + "".join(cells))
    for c in ("base-ft-noargs", "ft-noargs"):
        if c in configs:
            print(f"\n{c} bytes per call (goal <= 8):", ", ".join(
                f"{w} {med[(w, c)]['bytes'] / calls[w]:.1f}" for w in chosen if (w, c) in med and calls[w]))
    return summary


def viztracer_python(viztracer: str) -> tuple[int, int] | None:
    """The Python version (major, minor) the viztracer command runs on: its script's #! line."""
    try:
        with open(viztracer, "rb") as fh:
            first = fh.readline().decode(errors="replace")
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    try:
        out = subprocess.run([*first[2:].split(), "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viztracer", default=shutil.which("viztracer"),
                    help="path of the viztracer command (default: the one on PATH)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale", type=int, default=3, help="workload run() calls per process")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--json", help="also write the medians and goal ratios to this file")
    ap.add_argument("--baseline", metavar="CHECKOUT",
                    help="another flowtrace checkout (built): adds base-ft, base-ft-noargs, base-ft-full "
                         "rows run with it, side by side with this one's")
    ap.add_argument("--every-round", action="store_true", help="print the tables after every round too")
    ap.add_argument("--rss-seconds", type=float, default=10.0,
                    help="also run a program making calls nonstop this long (0: skip) for the peak RSS")
    opts = ap.parse_args()
    configs = opts.configs.split(",")
    if opts.baseline:
        configs[1:1] = ["base-ft", "base-ft-noargs", "base-ft-full"]
    if not (opts.viztracer and os.access(opts.viztracer, os.X_OK)):
        print("skipping viz, viz-args: no viztracer command (give --viztracer PATH; install it in a "
              "separate venv: it is not a flowtrace dependency)", file=sys.stderr)
        configs = [c for c in configs if not c.startswith("viz")]
    if any(c.startswith("viz") for c in configs):
        # every ratio divides by this Python's untraced run: VizTracer on another Python (3.13
        # .venv against a 3.12 VizTracer venv) made its overhead, and the goals, meaningless
        viz_py = viztracer_python(opts.viztracer)
        if viz_py is not None and viz_py != tuple(sys.version_info[:2]):
            raise SystemExit(f"viztracer runs on Python {viz_py[0]}.{viz_py[1]}, this benchmark on "
                             f"{sys.version.split()[0]}: run it with a Python of the same version (the ratios "
                             "compare both tools against one untraced run)")
    chosen = opts.workloads.split(",")
    unknown = [w for w in chosen if w not in WORKLOADS] + [c for c in configs if c.removeprefix("base-") not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown workload or configuration: {', '.join(unknown)}")
    med = medians(measure(opts, configs, chosen))
    summary = report(med, configs, chosen, opts)
    if opts.rss_seconds > 0:
        summary["nonstop"] = nonstop_rss(opts)
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()
