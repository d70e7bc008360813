"""Recording as users pay for it: `flowtrace run` against the `viztracer` command, end to end.

    python benchmarks/e2e.py [--viztracer PATH] [--repeat 3] [--scale 3] [--workloads fib,...]
    python benchmarks/e2e.py --instructions [--baseline CHECKOUT] ...   (instruction counts)

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
Configurations run interleaved, `--repeat` rounds; the tables show medians and, under each row,
the rounds' min-max; a goal whose verdict those ranges could flip says "noise" (e2e_spread.py).
Each run() is timed too: the "median run()" rows take a cell's figure as its median run() times
the number of runs, which a burst of the VM's neighbours during a run() or two does not move.

--instructions: each cell runs once (or --repeat times) under valgrind's callgrind instead, and
the tables and goals use instruction counts -- all threads, the same workload phase the timings
take (the driver marks it; callgrind_phase.py says exactly what is in and out), and the whole
process. Counts hardly depend on the machine's load (flowtrace runs with a long --flush-interval
there: see callgrind_phase.py), so an A/B (--baseline) holds on a busy VM; --phase-only ends each
process after the workload (VizTracer's save is most of a run's time under valgrind). Counts are
not times (cache misses, GC pauses and GIL hand-offs cost time, not instructions). The phase
ends with the rows of a partial batch not drained yet; --drain-in-phase flushes flowtrace just
before the start mark and again before the end mark, so that an A/B of a change that makes more
or fewer rows counts the drain of every row of the phase on both sides.

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

import callgrind_phase
import workloads  # benchmarks/workloads: the shared workload programs
from e2e_spread import Spread, goal_verdict, range_text
from pyc import precompile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = workloads.NAMES + workloads.PROGRAMS
CONFIGS = ["untraced", "ft", "ft-noargs", "ft-full", "viz", "viz-args"]

DRIVER = """\
import json, os, sys, time
sys.path.insert(0, {wl_dir!r})
import {name} as workload
{mark_setup}
runs = []
def timed(run):
    c, w = time.process_time(), time.perf_counter()
    run()
    runs.append((time.process_time() - c, time.perf_counter() - w))
c0, w0 = time.process_time(), time.perf_counter()
{mark_start}for _ in range({scale}):
    timed(workload.run)
{mark_end}c1, w1 = time.process_time(), time.perf_counter()
with open(os.environ["E2E_OUT"], "w") as fh:
    json.dump({{"cpu": c1 - c0, "wall": w1 - w0, "runs": runs}}, fh)
{exit_now}"""


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


def _high_water_kb(pid: int) -> int:
    """A running process's peak resident set (VmHWM, kB); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
    except (OSError, ValueError):
        return 0


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
            # the child's own high-water mark, read while it runs: wait4's ru_maxrss starts
            # from this driver's RSS at the fork (Linux keeps it across exec), so every
            # configuration read the driver's ~18 MB and the tracer's extra as 0
            peak_kb = 0
            while proc.poll() is None:
                peak_kb = max(peak_kb, _high_water_kb(proc.pid))
                time.sleep(0.02)
            out[config] = {"rss_mb": peak_kb / 1024, "exit": proc.returncode,
                           "bytes": os.path.getsize(ftr) if os.path.exists(ftr) else 0}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = out["untraced"]["rss_mb"]
    print(f"\nnonstop calls for {opts.rss_seconds} s: peak RSS untraced {base:.0f} MB; extra under "
          + ", ".join(f"{c} {out[c]['rss_mb'] - base:.0f} MB ({out[c]['bytes'] / 1e6:.0f} MB file)"
                      for c in ("ft", "ft-noargs")) + " (goal <= 64 MB)")
    return out


# Counted cells with a poll interval: `python -m flowtrace` with the flusher's poll of the
# pending count (session._POLL_S: 25 ms of wall time) set first -- in any checkout, the baseline's
# too. Why, and what a user pays for those polls: callgrind_phase.py.
POLL_BOOT = ("import sys, flowtrace.session as s; s._POLL_S = {poll!r}; from flowtrace.cli import main; "
             "sys.exit(main())")


def command(config: str, script: str, out: str, viztracer: str | None, flush_interval: float = 0,
            poll_interval: float = 0) -> list[str]:
    """The command line a user would type for this configuration ("base-ft..." are the same
    as "ft..." with another flowtrace checkout: see --baseline); `flush_interval` (> 0) is
    given to flowtrace's; `poll_interval` (> 0) is set as its flusher's poll (POLL_BOOT)."""
    if config == "untraced":
        return [sys.executable, script]
    if config.startswith(("ft", "base-ft")):
        extra = {"ft": [], "ft-noargs": ["--no-args"], "ft-full": ["--repr", "full"]}[config.removeprefix("base-")]
        if flush_interval > 0:
            extra = [*extra, "--flush-interval", str(flush_interval)]
        launch = ["-c", POLL_BOOT.format(poll=float(poll_interval))] if poll_interval > 0 else ["-m", "flowtrace"]
        return [sys.executable, *launch, "run", "-o", out, *extra, script]
    extra = ["--log_func_args", "--log_func_retval"] if config == "viz-args" else []
    return [viztracer, "-o", out, "--quiet", *extra, script]


def run_cell(config: str, script: str, tmp: str, viztracer: str | None, env: dict,
             counted: bool = False, phase_only: bool = False, flush_interval: float = 0,
             keep_dumps: str | None = None, poll_interval: float = 0, cache_sim: bool = False) -> dict:
    """One process: its in-script figures, whole wall time, peak RSS (MB) and file size; with
    `counted`, run under callgrind: its workload-phase and whole-process instruction counts and
    file size instead (the times and RSS of a process under valgrind mean nothing). With
    `phase_only` the process ends at the phase's end: no whole-process figures, no calls count.
    With `keep_dumps` (a directory's path, counted only) callgrind's output files are moved there;
    with `cache_sim` (counted only) the phase's simulated cache misses are figures too."""
    if config.startswith("base-"):
        env = dict(env, PYTHONPATH=env["E2E_BASELINE"])
    out = os.path.join(tmp, "out.json" if config.startswith("viz") else "out.ftr")
    report = os.path.join(tmp, "report.json")
    for p in (out, report):
        if os.path.exists(p):
            os.unlink(p)
    argv = command(config, script, out, viztracer, flush_interval if counted else 0, poll_interval if counted else 0)
    if counted:
        cg_dir = os.path.join(tmp, "callgrind")
        shutil.rmtree(cg_dir, ignore_errors=True)
        os.mkdir(cg_dir)
        argv = callgrind_phase.under_callgrind(argv, cg_dir, cache_sim)
        env = dict(env, PYTHONHASHSEED="0")  # (the same dict and set layouts in every cell and round)
    t0 = time.perf_counter()
    # (cwd: the temporary directory -- `python -m` puts the cwd first on sys.path, which must not
    # pick the flowtrace checkout the benchmark was started in over PYTHONPATH's)
    proc = subprocess.Popen(argv, env=dict(env, E2E_OUT=report), cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    whole = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not os.path.exists(report):
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"{config} failed (exit {proc.returncode}): {tail}")
    if counted:
        dumps = callgrind_phase.read_dumps(cg_dir)
        res: dict = callgrind_phase.phase_counts(dumps)
        if cache_sim:
            res.update(callgrind_phase.phase_cache_misses(dumps))
        if keep_dumps:
            shutil.move(cg_dir, keep_dumps)
        if phase_only:
            del res["instr_whole"]  # (the end cut short: not the whole process)
    else:
        with open(report) as fh:
            res = json.load(fh)
        res.update(median_run_figures(res.pop("runs")), whole=whole, rss_mb=usage.ru_maxrss / 1024)
    if phase_only:
        return res
    res["bytes"] = os.path.getsize(out) if os.path.exists(out) else 0
    if config == "ft":
        # counted in a child: this process must stay small, as a child's peak RSS (wait4) starts
        # from the RSS of the process it was forked from (Linux counts the pre-exec copy)
        count = subprocess.run([sys.executable, "-c", "import sys; from flowtrace.ftr.reader import load; "
                                "print(len(load(sys.argv[1])))", out], env=env, cwd=tmp,
                               capture_output=True, text=True, check=True)
        res["calls"] = int(count.stdout)
    return res


def median_run_figures(runs: list) -> dict:
    """The workload's CPU and wall time taken from its median run() (times the number of runs):
    a figure a burst of the VM's neighbours during one or two run() calls does not move, where
    the whole phase's sum takes every burst in (on this 2-core VM rounds of one cell varied
    2-3x). Every configuration is taken alike; the whole-phase sums stay the primary figures."""
    return {"cpu_run": statistics.median(r[0] for r in runs) * len(runs),
            "wall_run": statistics.median(r[1] for r in runs) * len(runs)}


# The recording flowtrace session, found once before the phase (none: untraced, VizTracer):
# `_drain` flushes it (drain + write, waited for: --drain-in-phase); `_written` waits until its
# writer thread has written every batch already drained (a no-op without a session).
DRAIN_SETUP = """\
def _session():
    import gc
    mod = sys.modules.get("flowtrace.session")
    live = [o for o in gc.get_objects() if mod and isinstance(o, mod.Session) and not o.stopped]
    return live[0] if live else None
_ft = _session()
_drain = _ft.flush if _ft else (lambda: None)
_written = getattr(_ft and _ft.writer, "sync", None) or (lambda: None)
"""


def driver(name: str, scale: int, marks_library: str | None, phase_only: bool = False,
           drain_in_phase: bool = False) -> str:
    """The script every cell of workload `name` runs; with `marks_library` (instruction counts)
    it marks its workload phase for callgrind, right inside the timed lines; with `phase_only`
    it then ends at once (os._exit: no VizTracer save, no file completion).

    Each mark first waits for flowtrace's writer thread to write the batches drained so far
    (`_written`): the zlib and writes of a batch the program drained in the phase are in the
    phase, those of the set-up's are not. Without that wait they fell inside or after the end
    mark as valgrind's thread schedule had it (valgrind runs one thread at a time and may let
    the program's thread run on while the writer waits: a batch's ~4.5 M instructions in
    generators' phase, in or out).

    With `drain_in_phase` flowtrace's rows are flushed (and written) just before each mark
    instead: the phase then holds the drain of every row the workload made and nothing of the
    set-up's -- not a partial batch left pending at the end, whose size moves with the number
    of rows a change makes (a drain is ~5 M instructions on exceptions at scale 3)."""
    marks = {"mark_setup": "", "mark_start": "", "mark_end": "",
             "exit_now": "os._exit(0)\n" if phase_only else ""}
    if marks_library:
        wait = "_drain()\n" if drain_in_phase else "_written()\n"
        marks |= {"mark_setup": f"import ctypes\n_mark = ctypes.CDLL({marks_library!r}).e2e_dump\n" + DRAIN_SETUP,
                  "mark_start": f"{wait}_mark(b{callgrind_phase.START!r})\n",
                  "mark_end": f"{wait}_mark(b{callgrind_phase.END!r})\n"}
    return DRIVER.format(wl_dir=workloads.HERE, name=name, scale=scale, **marks)


def measure(opts: argparse.Namespace, configs: list[str], chosen: list[str]) -> dict:
    results: dict = {(w, c): [] for w in chosen for c in configs}
    env = dict(os.environ, PYTHONPATH=ROOT, E2E_BASELINE=opts.baseline or "")
    env.pop("FLOWTRACE_RECORDER", None)
    # as installed: flowtrace's .pyc files written (the workloads' too, alike for every cell)
    precompile(os.path.join(ROOT, "flowtrace"), workloads.HERE,
               *([os.path.join(opts.baseline, "flowtrace")] if opts.baseline else []))
    tmp = tempfile.mkdtemp(prefix="e2e-")
    try:
        marks = callgrind_phase.build_helper(tmp) if opts.instructions else None
        scripts = {}
        for w in chosen:
            scripts[w] = os.path.join(tmp, f"bench_{w}.py")
            with open(scripts[w], "w") as fh:
                fh.write(driver(w, opts.scale, marks, opts.phase_only, opts.drain_in_phase))
        for rep in range(opts.repeat):
            for w in chosen:
                for c in configs:  # interleaved: noise hits every configuration alike
                    try:
                        results[(w, c)].append(run_cell(c, scripts[w], tmp, opts.viztracer, env,
                                                        counted=opts.instructions, phase_only=opts.phase_only,
                                                        flush_interval=opts.counted_flush_interval,
                                                        keep_dumps=kept_dumps(opts, w, c, rep),
                                                        poll_interval=opts.counted_poll_interval,
                                                        cache_sim=opts.cache_sim))
                        if opts.instructions:  # (minutes a cell: show progress)
                            r = results[(w, c)][-1]
                            whole = f", {r['instr_whole'] / 1e6:.1f}M in the whole process" if "instr_whole" in r else ""
                            sim = (f", I1 misses {r['i1_miss'] / 1e6:.3f}M, D1 misses {r['d1r_miss'] / 1e6:.2f}M read "
                                   f"{r['d1w_miss'] / 1e6:.2f}M write" if "i1_miss" in r else "")
                            print(f"{w}/{c}: {r['instr'] / 1e6:.1f}M instructions in the workload{whole}{sim}",
                                  file=sys.stderr)
                    except RuntimeError as exc:
                        print(f"{w}/{c}: {exc}", file=sys.stderr)
            print(f"round {rep + 1}/{opts.repeat} done", file=sys.stderr)
            if opts.every_round and rep + 1 < opts.repeat:
                report(spreads(results), configs, chosen, opts)  # (the rounds so far)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def kept_dumps(opts: argparse.Namespace, workload: str, config: str, rep: int) -> str | None:
    """Where --keep-dumps keeps one counted cell's callgrind files (None: not kept)."""
    if not (opts.instructions and opts.keep_dumps):
        return None
    os.makedirs(opts.keep_dumps, exist_ok=True)
    return os.path.join(opts.keep_dumps, f"{workload}-{config}-r{rep + 1}")


def spreads(results: dict) -> dict:
    """Per cell: each figure's Spread over the rounds, and the calls recorded (one count)."""
    out: dict = {}
    for key, runs in results.items():
        if runs:
            out[key] = {m: Spread.of(r[m] for r in runs) for m in runs[0] if m != "calls"}
            calls = [r["calls"] for r in runs if "calls" in r]
            if calls:
                out[key]["calls"] = calls[0]
    return out


TIME_METRICS = [("cpu", "workload CPU time"), ("wall", "workload wall time"),
                ("cpu_run", "workload CPU time from its median run() (x runs: a disturbed run() left out)"),
                ("wall_run", "workload wall time from its median run() (x runs)"),
                ("whole", "whole process wall time (to a finished file)")]
COUNT_METRICS = [("instr", "workload instructions (callgrind Ir, every thread; counts, not times)"),
                 ("instr_whole", "whole process instructions (start to a finished file; counts, not times)"),
                 ("i1_miss", "workload I1 (instruction cache) read misses, simulated (--cache-sim)"),
                 ("d1r_miss", "workload D1 (data cache) read misses, simulated (--cache-sim)"),
                 ("d1w_miss", "workload D1 (data cache) write misses, simulated (--cache-sim)")]
TIME_GOALS = [("ft", "viz", "cpu", 1.0), ("ft", "viz", "wall", 1.0), ("ft-noargs", "viz", "cpu", 0.7),
              ("ft-noargs", "viz", "wall", 0.7), ("ft-full", "viz-args", "cpu", 0.5),
              ("ft-full", "viz-args", "wall", 0.5), ("ft", "viz", "cpu_run", 1.0),
              ("ft", "viz", "wall_run", 1.0), ("ft-noargs", "viz", "cpu_run", 0.7),
              ("ft-noargs", "viz", "wall_run", 0.7), ("ft", "viz", "whole", 0.3)]
COUNT_GOALS = [("ft", "viz", "instr", 1.0), ("ft-noargs", "viz", "instr", 0.7),
               ("ft-full", "viz-args", "instr", 0.5), ("ft", "viz", "instr_whole", 0.3)]
W = 15  # a table column's width


def slowdown_table(stats: dict, metric: str, configs: list[str], chosen: list[str], calls: dict,
                   spread_rows: bool) -> None:
    """One table: the untraced figure (ms, or millions of instructions) and every other
    configuration's slowdown (figure / untraced median); under each row with `spread_rows`, the
    rounds' min-max on the same scale."""
    counts = metric.startswith("instr")
    unit, scale = ("M", 1e-6) if counts else ("ms", 1e3)
    print(f"{'workload':<11}{'calls':>9}" + "".join(f"{c:>{W}}" for c in configs))
    for w in chosen:
        base = stats.get((w, "untraced"), {}).get(metric)
        meds, ranges = [], []
        for c in configs:
            t = stats.get((w, c), {}).get(metric)
            if t is None or base is None:
                meds.append(f"{'-':>{W}}")
                ranges.append(" " * W)
            elif c == "untraced":
                meds.append(f"{t.med * scale:{W - len(unit)}.{1 if counts else 0}f}{unit}")
                ranges.append(f"{range_text(t.lo * scale, t.hi * scale, 1 if counts else 0):>{W}}")
            else:
                s = t.scaled(base.med)
                meds.append(f"{s.med:{W - 1}.2f}x")
                ranges.append(f"{range_text(s.lo, s.hi):>{W}}")
        print(f"{w:<11}{calls[w] or '-':>9}" + "".join(meds))
        if spread_rows:
            print(f"{'':<11}{'min-max':>9}" + "".join(ranges))
    print()


def rss_table(stats: dict, configs: list[str], chosen: list[str], calls: dict) -> None:
    """Peak RSS of every cell (median), and its bytes per recorded call on disk."""
    print("peak RSS (MB) and bytes per call on disk:")
    print(f"{'workload':<11}" + "".join(f"{c:>{W}}" for c in configs))
    for w in chosen:
        cells = []
        for c in configs:
            t = stats.get((w, c))
            if t is None:
                cells.append(f"{'-':>{W}}")
            elif c == "untraced" or not calls[w]:
                cells.append(f"{t['rss_mb'].med:12.0f}MB ")
            else:
                cells.append(f"{t['rss_mb'].med:8.0f}MB/{t['bytes'].med / calls[w]:3.0f}B")
        print(f"{w:<11}" + "".join(cells))


def goals_table(stats: dict, goals: list, chosen: list[str], spread_rows: bool) -> dict:
    """The goal lines: each workload's overhead ratio at the medians and its verdict (ok, MISS,
    or noise: the rounds' ranges allow both, see e2e_spread.py); with `spread_rows`, under each
    line the best-worst ratio the ranges allow. Returns the JSON summary's entries."""
    out: dict = {}
    print(f"{'goal':<34}" + "".join(f"{w[:11]:>12}" for w in chosen))
    for a, b, m, limit in goals:
        if not any(m in stats.get((w, a), {}) and m in stats.get((w, b), {}) for w in chosen):
            continue  # (configurations or figures not taken)
        cells, ranges, fastest = [], [], []
        for w in chosen:
            ft, viz = stats.get((w, a), {}).get(m), stats.get((w, b), {}).get(m)
            base = stats.get((w, "untraced"), {}).get(m)
            v = goal_verdict(ft, viz, base, limit) if ft and viz and base else None
            if v is None:
                cells.append(f"{'-':>12}")
                ranges.append(" " * 12)
                fastest.append(" " * 12)
                continue
            out[f"{w}: {a}/{b} {m} <= {limit}"] = {"ratio": round(v.ratio, 3), "best": round(v.best, 3),
                                                   "worst": round(v.worst, 3), "verdict": v.word,
                                                   "fastest": None if v.fastest is None else round(v.fastest, 3)}
            cells.append(f"{v.ratio:6.2f} {v.word:>5}")
            ranges.append(f"{range_text(v.best, v.worst):>12}")
            fastest.append(f"{'-' if v.fastest is None else f'{v.fastest:.2f}':>12}")
        print(f"{a + '/' + b + ' ' + m + ' <= ' + str(limit):<34}" + "".join(cells))
        if spread_rows:
            print(f"{'  (best-worst over the rounds)':<34}" + "".join(ranges))
            print(f"{'  (at the fastest rounds)':<34}" + "".join(fastest))
    return out


def overhead_ratio(stats: dict, w: str, a: str, b: str, metric: str) -> float | None:
    """Median overhead of configuration `a` over that of `b` on workload `w` (None: not run, or
    `b` has no positive overhead)."""
    base, ta, tb = (stats.get((w, c), {}).get(metric) for c in ("untraced", a, b))
    if not (base and ta and tb) or tb.med <= base.med:
        return None
    return (ta.med / base.med - 1) / (tb.med / base.med - 1)


def report(stats: dict, configs: list[str], chosen: list[str], opts: argparse.Namespace) -> dict:
    """Print the tables and goal lines (times, or instruction counts with --instructions)."""
    calls = {w: stats.get((w, "ft"), {}).get("calls") for w in chosen}
    counted = opts.instructions
    spread_rows = opts.repeat > 1
    what = ("instruction counts under callgrind (repeatable under load; counts, not times)" if counted
            else f"medians of {opts.repeat} runs" + (", min-max under each row" if spread_rows else ""))
    print(f"\nPython {sys.version.split()[0]}; {what}; workload = {opts.scale} run() calls; slowdown = "
          f"{'count' if counted else 'time'} / untraced; calls = recorded by `flowtrace run`\n")
    metrics = [(m, t) for m, t in (COUNT_METRICS if counted else TIME_METRICS)
               if any(m in cell for cell in stats.values())]
    for metric, title in metrics:
        print(f"{title}:")
        slowdown_table(stats, metric, configs, chosen, calls, spread_rows)
    if not counted:
        rss_table(stats, configs, chosen, calls)
    goals = list(COUNT_GOALS if counted else TIME_GOALS)
    if any(c.startswith("base-") for c in configs):
        goals += [("base-" + a, b, m, limit) for a, b, m, limit in goals]
    print(f"\nGoals: overhead ratio (flowtrace overhead / VizTracer overhead; overhead = "
          f"{'instructions' if counted else 'time'} / untraced - 1) per workload: ok when <= the goal"
          + ("" if counted or not spread_rows else ", MISS when over it, noise when the rounds' "
             "min-max ranges allow both"))
    verdicts = goals_table(stats, goals, chosen, spread_rows)
    ab = [(c, m) for c in configs if c.startswith("base-") for m, _ in metrics[:1]]
    if ab:
        print("\nA/B, this checkout's overhead / the baseline's (median " + ab[0][1] + "):")
        for c, m in ab:
            print(f"  {c.removeprefix('base-'):<10}" + "".join(
                f" {w} {r:.3f}" for w in chosen if (r := overhead_ratio(stats, w, c.removeprefix("base-"), c, m)) is not None))
    for c in ("base-ft-noargs", "ft-noargs"):
        if c in configs and any("bytes" in stats.get((w, c), {}) for w in chosen):
            print(f"\n{c} bytes per call (goal <= 8):", ", ".join(
                f"{w} {stats[(w, c)]['bytes'].med / calls[w]:.1f}" for w in chosen if (w, c) in stats and calls[w]))
    return {"python": sys.version.split()[0], "mode": "instructions" if counted else "times",
            "medians": {f"{w}/{c}": {m: (v.med if isinstance(v, Spread) else v) for m, v in cell.items()}
                        for (w, c), cell in stats.items()},
            "spreads": {f"{w}/{c}": {m: [v.lo, v.med, v.hi] for m, v in cell.items() if isinstance(v, Spread)}
                        for (w, c), cell in stats.items()},
            "goals": {k: [v["ratio"], v["verdict"] == "ok"] for k, v in verdicts.items()},
            "verdicts": verdicts}


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


def parse_options() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viztracer", default=shutil.which("viztracer"),
                    help="path of the viztracer command (default: the one on PATH)")
    ap.add_argument("--repeat", type=int, help="rounds (default 3; 1 with --instructions)")
    ap.add_argument("--scale", type=int, default=3, help="workload run() calls per process")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--json", help="also write the medians, spreads and goal verdicts to this file")
    ap.add_argument("--baseline", metavar="CHECKOUT",
                    help="another flowtrace checkout (built): adds a base-ft... row for each ft... "
                         "configuration, run with it, side by side with this one's")
    ap.add_argument("--every-round", action="store_true", help="print the tables after every round too")
    ap.add_argument("--rss-seconds", type=float, default=10.0,
                    help="also run a program making calls nonstop this long (0: skip) for the peak RSS")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions (callgrind, every thread, the workload phase and the whole "
                         "process) instead of timing: deterministic, so usable on a loaded machine")
    ap.add_argument("--phase-only", action="store_true",
                    help="with --instructions: end each process right after the workload (os._exit), "
                         "skipping VizTracer's save (most of its time under valgrind) and flowtrace's file "
                         "completion; no whole-process counts, calls or bytes")
    ap.add_argument("--drain-in-phase", action="store_true",
                    help="with --instructions: flush flowtrace's rows just before the workload phase and "
                         "again at its end, inside it: every row's drain is counted, none of the set-up's "
                         "(without it the phase ends with a partial batch pending, whose size moves with "
                         "the rows a change makes; untraced and VizTracer cells are unchanged)")
    ap.add_argument("--keep-dumps", metavar="DIR",
                    help="with --instructions: keep each counted cell's callgrind output files in "
                         "DIR/<workload>-<config>-r<round>/ (for callgrind_annotate: per-function counts, "
                         "a diff between rounds)")
    ap.add_argument("--cache-sim", action="store_true",
                    help="with --instructions: callgrind also simulates the caches (--cache-sim=yes, ~2x "
                         "slower): the workload phase's I1 and D1 misses are tabled beside the instructions "
                         "(placement-dependent: compare builds over several code placements)")
    ap.add_argument("--counted-flush-interval", type=float, default=1000.0, metavar="S",
                    help="with --instructions: flowtrace runs with --flush-interval S (default 1000; 0: its "
                         "own default, 0.1 s of wall time). Under valgrind the program runs 50-800x slower "
                         "(more under load), so a 0.1 s interval would flush that much more often per unit of "
                         "work than for a user, and make the count depend on the machine's load; rows-count "
                         "flushes (backpressure) are unchanged")
    ap.add_argument("--counted-poll-interval", type=float, default=1000.0, metavar="S",
                    help="with --instructions: flowtrace's flusher looks at the pending rows every S seconds "
                         "(default 1000; 0: its own 25 ms of wall time). Each look is ~20 K instructions; under "
                         "valgrind 25 ms comes 50-800x more often per unit of work than for a user, and as often "
                         "as the machine's load and valgrind's thread schedule let the flusher run: 5-96 looks, "
                         "0.1-1.9 M instructions, in one generators phase (callgrind_phase.py); since session 20 "
                         "flowtrace polls only to watch followed children's signals, so this matters for older "
                         "baseline checkouts")
    opts = ap.parse_args()
    if opts.phase_only and not opts.instructions:
        raise SystemExit("--phase-only goes with --instructions")
    if opts.keep_dumps and not opts.instructions:
        raise SystemExit("--keep-dumps goes with --instructions")
    if opts.cache_sim and not opts.instructions:
        raise SystemExit("--cache-sim goes with --instructions")
    if opts.drain_in_phase and not opts.instructions:
        raise SystemExit("--drain-in-phase goes with --instructions")
    if opts.repeat is None:
        opts.repeat = 1 if opts.instructions else 3
    if opts.instructions:
        problem = callgrind_phase.missing_tools()
        if problem:
            raise SystemExit(f"--instructions needs valgrind (callgrind), a C compiler (cc) and "
                             f"<valgrind/callgrind.h>: {problem}. The timing mode (without --instructions) "
                             "works without them.")
        if opts.rss_seconds > 0:
            print("--instructions: no peak RSS run (--rss-seconds ignored: RSS under valgrind means nothing)",
                  file=sys.stderr)
            opts.rss_seconds = 0
    return opts


def chosen_configs(given: str, baseline: bool) -> list[str]:
    """The configurations to run, each once: those given (comma-separated), and with a baseline
    a base-ft... beside each ft... one unless it is given too (it used to run twice)."""
    configs = list(dict.fromkeys(given.split(",")))
    if baseline:
        configs[1:1] = ["base-" + c for c in configs if c.startswith("ft") and "base-" + c not in configs]
    return configs


def main() -> None:
    opts = parse_options()
    configs = chosen_configs(opts.configs, bool(opts.baseline))
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
    summary = report(spreads(measure(opts, configs, chosen)), configs, chosen, opts)
    if opts.rss_seconds > 0:
        summary["nonstop"] = nonstop_rss(opts)
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()
