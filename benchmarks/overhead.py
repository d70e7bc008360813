"""Recording overhead, side by side in one run: CPU time per workload and configuration.

    python benchmarks/overhead.py [--repeat 5] [--workloads fib,oop,...] [--configs ...]

Each measurement runs in a fresh child process (`--child CONFIG WORKLOAD`), which times the
workload with `time.process_time()` (CPU of *all* its threads, so the flusher thread's
draining, encoding and writing counts) from just before recording starts to just after the
session file is finished. Configurations run interleaved, `--repeat` times each; the table
shows medians.

Configurations:
- untraced
- reference: a bare Python `sys.monitoring` PY_START/PY_RETURN callback pair that appends
  `(code, perf_counter_ns())` to a list (the yardstick of issue 2)
- ft-noargs: flowtrace (Python recorder), `--no-args`, writing a session file
- ft-safe: flowtrace (Python recorder), safe argument and result capture
- ft-c-noargs / ft-c-safe: the C recorder, when it is built
- cprofile, viztracer (when importable; not a dependency)

Columns: median CPU seconds, slowdown vs untraced, and for flowtrace the ratio of its overhead
to the reference's overhead ((t - untraced) / (reference - untraced); goal for ft-noargs:
<= 1.5). Bytes per call is the session file size divided by the calls it holds (no args).
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
CONFIGS = ["untraced", "reference", "ft-noargs", "ft-safe", "ft-c-noargs", "ft-c-safe", "cprofile", "viztracer"]



def child(config: str, workload: str) -> dict:
    sys.path.insert(0, ROOT)
    mod = workloads.load(workload)
    out: dict = {"calls": None, "bytes": None}
    mod.run()  # warm up: imports, specialisation, asyncio set-up
    if config == "untraced":
        t0 = time.process_time()
        mod.run()
        t1 = time.process_time()
    elif config == "reference":
        mon = sys.monitoring
        tool = 3
        mon.use_tool_id(tool, "reference")
        log: list = []
        append = log.append
        clock = time.perf_counter_ns

        def on_start(code, offset):
            append((code, clock()))

        def on_return(code, offset, value):
            append((code, clock()))

        mon.register_callback(tool, mon.events.PY_START, on_start)
        mon.register_callback(tool, mon.events.PY_RETURN, on_return)
        t0 = time.process_time()
        mon.set_events(tool, mon.events.PY_START | mon.events.PY_RETURN)
        mod.run()
        mon.set_events(tool, 0)
        t1 = time.process_time()
        out["calls"] = len(log) // 2
    elif config.startswith("ft-"):
        from flowtrace.ftr.reader import load
        from flowtrace.recorder.base import RecorderConfig
        from flowtrace.session import Session

        recorder = "c" if config.startswith("ft-c-") else "python"
        args = "off" if config.endswith("noargs") else "safe"
        fd, path = tempfile.mkstemp(suffix=".ftr")
        os.close(fd)
        try:
            session = Session(path, RecorderConfig(args=args), recorder=recorder)
            t0 = time.process_time()
            session.start()
            mod.run()
            session.stop()
            t1 = time.process_time()
            out["bytes"] = os.path.getsize(path)
            out["calls"] = len(load(path).calls)
        finally:
            os.unlink(path)
    elif config == "cprofile":
        import cProfile

        prof = cProfile.Profile()
        t0 = time.process_time()
        prof.enable()
        mod.run()
        prof.disable()
        t1 = time.process_time()
    elif config == "viztracer":
        t0, t1 = 0.0, workloads.viztracer_cpu(mod.run, args=False, save=True, entries=5_000_000)
    else:
        raise SystemExit(f"unknown config {config}")
    out["cpu"] = t1 - t0
    return out


def _available(config: str) -> bool:
    return workloads.unavailable(viztracer=config == "viztracer", c_recorder=config.startswith("ft-c-")) is None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=2, metavar=("CONFIG", "WORKLOAD"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--json", help="also write the medians to this file")
    opts = ap.parse_args()
    if opts.child:
        print(json.dumps(child(*opts.child)))
        return
    chosen = opts.workloads.split(",")
    configs = [c for c in opts.configs.split(",") if _available(c)]
    results: dict = {(w, c): [] for w in chosen for c in configs}
    extra: dict = {}
    env = dict(os.environ, PYTHONPATH=ROOT)
    for rep in range(opts.repeat):
        for w in chosen:
            for c in configs:  # interleaved: noise hits every configuration alike
                res = subprocess.run([sys.executable, __file__, "--child", c, w], capture_output=True,
                                     text=True, env=env)
                if res.returncode != 0:
                    print(f"{w}/{c} failed: {res.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                    continue
                data = json.loads(res.stdout.strip().splitlines()[-1])
                results[(w, c)].append(data["cpu"])
                extra[(w, c)] = data
        print(f"round {rep + 1}/{opts.repeat} done", file=sys.stderr)

    print(f"\nPython {sys.version.split()[0]}, median CPU time of {opts.repeat} runs per cell "
          "(process_time of every thread, recording start to file finished)\n")
    header = f"{'workload':<11} {'config':<12} {'calls':>7} {'cpu ms':>8} {'x untraced':>10} {'ovh/ref':>8} {'B/call':>7}"
    print(header)
    print("-" * len(header))
    summary = {}
    for w in chosen:
        base = statistics.median(results[(w, "untraced")]) if results.get((w, "untraced")) else None
        ref = statistics.median(results[(w, "reference")]) if results.get((w, "reference")) else None
        calls = (extra.get((w, "ft-noargs")) or extra.get((w, "reference")) or {}).get("calls")
        for c in configs:
            vals = results[(w, c)]
            if not vals:
                continue
            med = statistics.median(vals)
            slow = f"{med / base:.2f}x" if base else "-"
            ratio = "-"
            if base and ref and c.startswith("ft-") and ref > base:
                ratio = f"{(med - base) / (ref - base):.2f}"
            bpc = "-"
            info = extra.get((w, c), {})
            if c.endswith("noargs") and info.get("bytes") and info.get("calls"):
                bpc = f"{info['bytes'] / info['calls']:.1f}"
            print(f"{w:<11} {c:<12} {calls or '-':>7} {med * 1000:8.1f} {slow:>10} {ratio:>8} {bpc:>7}")
            summary[f"{w}/{c}"] = {"cpu_s": med, "slowdown": med / base if base else None,
                                   "overhead_vs_reference": ratio, "bytes_per_call": bpc}
        print()
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()
