"""The C recorder's overhead against VizTracer, side by side in one run (issue 3's goals).

    python benchmarks/c_overhead.py [--repeat 5] [--scale 3] [--workloads fib,oop,...]

Run it with an interpreter that has VizTracer installed to see its columns (it is not a
dependency of flowtrace; e.g. `python3.12 -m venv /work/venv-bench && /work/venv-bench/bin/pip
install viztracer`, then `/work/venv-bench/bin/python benchmarks/c_overhead.py`); flowtrace is
taken from this checkout. Without VizTracer its rows are skipped with a message.

Each measurement is a fresh child process that runs the workload once to warm up, then times
`--scale` runs with `time.process_time()` (CPU time of every thread, so flowtrace's flusher
thread -- draining, rendering texts, compressing, writing -- counts). Configurations run
interleaved; the tables show medians.

Configurations:
- untraced
- py-safe: the pure-Python recorder, safe arguments (for reference)
- c-noargs / c-safe / c-full: the C recorder with `--no-args`, safe and full (`__repr__`)
  capture: recorder start -> stop -> drain() (the callbacks and the drain-time rendering of
  texts into a Batch; no file), like-for-like with VizTracer's start -> stop
- c-safe-file: safe capture through a Session to a finished `.ftr` file (adds the writer:
  delta coding and zlib, on the flusher thread) -- compare with viz+save
- viz: VizTracer defaults (no arguments), start -> stop (no JSON written)
- viz-args: VizTracer with log_func_args + log_func_retval, start -> stop
- viz+save: VizTracer defaults, start -> stop -> save() (its JSON file)
- py-safe: the pure-Python recorder, safe arguments, through a Session to a file

The summary prints issue 3's goals as ratios with PASS/MISS: c-safe overhead <= viz overhead
on every workload; viz overhead >= 1.3x c-noargs overhead on fib; c-full overhead <= 0.5x
viz-args overhead (overhead = slowdown - 1, the issue's measure; slowdowns shown alongside).
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

import workloads  # benchmarks/workloads: the shared workload programs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = workloads.NAMES
CONFIGS = ["untraced", "py-safe", "c-noargs", "c-safe", "c-full", "c-safe-file", "viz", "viz-args", "viz+save"]



def child(config: str, workload: str, scale: int) -> dict:
    sys.path.insert(0, ROOT)
    mod = workloads.load(workload)
    mod.run()  # warm up: imports, specialisation, asyncio set-up

    def work() -> None:
        for _ in range(scale):
            mod.run()

    out: dict = {}
    if config == "untraced":
        t0 = time.process_time()
        work()
        t1 = time.process_time()
    elif config in ("c-noargs", "c-safe", "c-full"):
        from flowtrace.recorder.base import RecorderConfig
        from flowtrace.recorder.c import CRecorder

        rec = CRecorder(RecorderConfig(args={"c-noargs": "off", "c-safe": "safe", "c-full": "full"}[config]))
        t0 = time.process_time()
        rec.start()
        work()
        rec.stop()
        batch = rec.drain()
        t1 = time.process_time()
        out["calls"] = len(batch.call_parent)
    elif config in ("py-safe", "c-safe-file"):
        from flowtrace.recorder.base import RecorderConfig
        from flowtrace.session import Session

        recorder, args = {"py-safe": ("python", "safe"), "c-safe-file": ("c", "safe")}[config]
        fd, path = tempfile.mkstemp(suffix=".ftr")
        os.close(fd)
        try:
            session = Session(path, RecorderConfig(args=args), recorder=recorder)
            t0 = time.process_time()
            session.start()
            work()
            session.stop()
            t1 = time.process_time()
            out["bytes"] = os.path.getsize(path)
        finally:
            os.unlink(path)
    elif config.startswith("viz"):
        t0, t1 = 0.0, workloads.viztracer_cpu(work, args=config == "viz-args", save=config == "viz+save",
                                              entries=10_000_000)
    else:
        raise SystemExit(f"unknown config {config}")
    out["cpu"] = t1 - t0
    return out


def _available(config: str) -> str | None:
    """None if the configuration can run here, else why not."""
    return workloads.unavailable(viztracer=config.startswith("viz"), c_recorder=config.startswith("c-"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=3, metavar=("CONFIG", "WORKLOAD", "SCALE"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=int, default=3, help="workload runs per measurement")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--json", help="also write the medians to this file")
    opts = ap.parse_args()
    if opts.child:
        config, workload, scale = opts.child
        print(json.dumps(child(config, workload, int(scale))))
        return
    chosen = opts.workloads.split(",")
    configs = []
    for c in opts.configs.split(","):
        why = _available(c)
        if why:
            print(f"skipping {c}: {why}", file=sys.stderr)
        else:
            configs.append(c)
    results: dict = {(w, c): [] for w in chosen for c in configs}
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("FLOWTRACE_RECORDER", None)
    for rep in range(opts.repeat):
        for w in chosen:
            for c in configs:  # interleaved: noise hits every configuration alike
                res = subprocess.run([sys.executable, __file__, "--child", c, w, str(opts.scale)],
                                     capture_output=True, text=True, env=env)
                if res.returncode != 0:
                    print(f"{w}/{c} failed: {res.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                    continue
                results[(w, c)].append(json.loads(res.stdout.strip().splitlines()[-1])["cpu"])
        print(f"round {rep + 1}/{opts.repeat} done", file=sys.stderr)

    print(f"\nPython {sys.version.split()[0]}; median CPU time of {opts.repeat} runs per cell "
          f"({opts.scale} workload runs each); slowdown = time / untraced\n")
    med = {k: statistics.median(v) for k, v in results.items() if v}
    print(f"{'workload':<11}" + "".join(f"{c:>12}" for c in configs))
    for w in chosen:
        base = med.get((w, "untraced"))
        cells = []
        for c in configs:
            t = med.get((w, c))
            cells.append(f"{'-':>12}" if t is None or not base else
                         (f"{t * 1000:10.1f}ms" if c == "untraced" else f"{t / base:11.2f}x"))
        print(f"{w:<11}" + "".join(cells))

    def ovh(w: str, c: str) -> float | None:
        base, t = med.get((w, "untraced")), med.get((w, c))
        return None if base is None or t is None else t / base - 1

    def slow(w: str, c: str) -> float | None:
        base, t = med.get((w, "untraced")), med.get((w, c))
        return None if base is None or t is None else t / base

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    # Issue 3's goals are stated on overhead (slowdown - 1: the time tracing adds); the slowdown
    # ratio is printed next to each for reference.
    print("\nIssue 3 goals (overhead = slowdown - 1; C recorder start->stop->drain vs VizTracer start->stop):")
    summary: dict = {"python": sys.version.split()[0], "medians_s": {f"{w}/{c}": v for (w, c), v in med.items()},
                     "goals": {}}
    for w in chosen:
        cs, viz = ovh(w, "c-safe"), ovh(w, "viz")
        if cs is not None and viz is not None and viz > 0:
            ok = cs <= viz
            summary["goals"][f"{w}: c-safe/viz overhead <= 1"] = [round(cs / viz, 3), ok]
            print(f"  {w:<11} c-safe overhead / viz overhead    = {cs / viz:5.2f}  (goal <= 1.00)  {verdict(ok)}"
                  f"   [{cs:.2f} vs {viz:.2f}; slowdowns {slow(w, 'c-safe'):.2f}x vs {slow(w, 'viz'):.2f}x]")
    cn, viz = ovh("fib", "c-noargs"), ovh("fib", "viz")
    if cn is not None and viz is not None and cn > 0:
        ok = viz / cn >= 1.3
        summary["goals"]["fib: viz/c-noargs overhead >= 1.3"] = [round(viz / cn, 3), ok]
        print(f"  {'fib':<11} viz overhead / c-noargs overhead  = {viz / cn:5.2f}  (goal >= 1.30)  {verdict(ok)}"
              f"   [{viz:.2f} vs {cn:.2f}; slowdown ratio {slow('fib', 'viz') / slow('fib', 'c-noargs'):.2f}]")
    for w in chosen:
        cf, va = ovh(w, "c-full"), ovh(w, "viz-args")
        if cf is not None and va is not None and va > 0:
            ok = cf / va <= 0.5
            summary["goals"][f"{w}: c-full/viz-args overhead <= 0.5"] = [round(cf / va, 3), ok]
            print(f"  {w:<11} c-full overhead / viz-args overhead = {cf / va:5.2f}  (goal <= 0.50)  {verdict(ok)}"
                  f"   [{cf:.2f} vs {va:.2f}]")
    print("\nEnd to end (recording to a finished file; not a goal): c-safe-file vs viz+save overhead")
    for w in chosen:
        cf, vs = ovh(w, "c-safe-file"), ovh(w, "viz+save")
        if cf is not None and vs is not None:
            print(f"  {w:<11} {cf:6.2f} vs {vs:6.2f}")
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()
