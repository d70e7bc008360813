"""A real program recorded as users record it: a PyPI project's own test suite run under
`flowtrace run --include '*'` against the `viztracer` command, which records every call too.

    python benchmarks/real_suite.py [--package flask==3.1.1] [--tests tests/test_basic.py]
        [--repeat 3] [--baseline CHECKOUT] [--instructions [--cache-sim]] [--scratch DIR]

The ten workloads of e2e.py are programs written to be measured; this is code nobody wrote for
us (flask, werkzeug, jinja2, click, pytest and pluggy, all recorded). A scratch virtual
environment of this Python gets pytest, the package with its dependencies, `--deps` (what its
tests need) and VizTracer (`--viztracer-spec`: the benchmark's environment only, never
flowtrace's); the package's sdist is unpacked and its tests run from there. flowtrace is taken
from this checkout (PYTHONPATH; its C recorder must be built for this Python), the baseline's
from CHECKOUT. Each configuration is a whole process, taking turns in every round:

- untraced:          python -m pytest -q TESTS
- ft / ft-noargs:    python -m flowtrace run --include '*' -o F [--no-args] -m pytest -q TESTS
- viz:               python -m viztracer -o F.json --quiet -m pytest -q TESTS

A tiny pytest plugin times the test session from the inside (sessionstart -> sessionfinish:
CPU of every thread, and wall), so interpreter start-up and VizTracer's save are out, as in
e2e.py's workload figures; it also reports the number of tests and failures, which must be the
same in every configuration. The figure of merit is issue 10's: flowtrace's overhead over
VizTracer's (overhead = time / untraced - 1), per round and as the median.

--instructions: one run each under callgrind instead, the session phase marked by the plugin
(callgrind_phase.py's helper; flowtrace's pending rows flushed before each mark, as e2e.py's
--drain-in-phase does; --counted-flush-interval as e2e.py's), each process ended right after it
(no save): the phase's instruction counts of every thread, which this noisy machine does not move. --cache-sim adds the session's
simulated instruction- and data-cache misses (callgrind --cache-sim=yes): on flask, where the
default mode is under VizTracer's overhead counted and over it timed, that is where the time is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile

import callgrind_phase
from e2e import DRAIN_SETUP
from pyc import precompile
from pytest_suite import tests_dir

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PLUGIN = "real_suite_timer"

PLUGIN_SOURCE = """\
\"\"\"benchmarks/real_suite.py's pytest plugin: time the test session, mark it for callgrind.\"\"\"
import ctypes, json, os, sys, time
_marks = os.environ.get("REAL_SUITE_MARKS")
_perf = os.environ.get("REAL_SUITE_PERF")   # "CONTROL,ACK": perf record's fifos (real_profile.py --phase)
_start = {{}}
{drain_setup_indented}
def _perf_says(command):
    control, ack = _perf.split(",")
    with open(control, "w") as fh:
        fh.write(command + "\\n")
    with open(ack) as fh:
        fh.readline()

def pytest_sessionstart(session):
    if _marks:
        _start["drain"] = _setup()
        _start["drain"]()
        ctypes.CDLL(_marks).e2e_dump(b{start!r})
    if _perf:
        _perf_says("enable")
    _start["cpu"], _start["wall"] = time.process_time(), time.perf_counter()

def pytest_sessionfinish(session, exitstatus):
    cpu, wall = time.process_time() - _start["cpu"], time.perf_counter() - _start["wall"]
    if _perf:
        _perf_says("disable")
    if _marks:
        _start["drain"]()
        ctypes.CDLL(_marks).e2e_dump(b{end!r})
    with open(os.environ["REAL_SUITE_OUT"], "w") as fh:
        json.dump({{"cpu": cpu, "wall": wall, "tests": session.testscollected,
                   "failed": session.testsfailed, "exit": int(exitstatus)}}, fh)
    if _marks:
        os._exit(int(exitstatus))   # (phase only: no save, no file completion)
"""


def plugin_source() -> str:
    """The plugin's text: e2e.py's DRAIN_SETUP made a function run at sessionstart (the
    recording session exists by then), returning its `_drain`."""
    body = "".join(f"    {line}\n" for line in DRAIN_SETUP.splitlines())
    setup = f"def _setup():\n{body}    return _drain\n"
    return PLUGIN_SOURCE.format(drain_setup_indented=setup, start=callgrind_phase.START,
                                end=callgrind_phase.END)


def prepare(scratch: str, package: str, deps: list[str], viztracer: str) -> tuple[str, str]:
    """(the scratch venv's python, the unpacked sdist), made once and reused (a venv whose
    installs did not finish is made again: its stamp is written last)."""
    py = os.path.join(scratch, "venv", "bin", "python")
    stamp = os.path.join(scratch, "venv", ".installed")
    if not os.path.exists(stamp):
        subprocess.run([sys.executable, "-m", "venv", "--clear", os.path.join(scratch, "venv")], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "pytest==8.3.5", package, viztracer, *deps],
                       check=True, stdout=subprocess.DEVNULL)
        open(stamp, "w").close()
    tree = os.path.join(scratch, "src")
    if not os.path.isdir(tree):
        dist = os.path.join(scratch, "dist")
        subprocess.run([py, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", dist,
                        package], check=True, stdout=subprocess.DEVNULL)
        (archive,) = [os.path.join(dist, f) for f in os.listdir(dist) if f.endswith(".tar.gz")]
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
    (top,) = os.listdir(tree)
    with open(os.path.join(scratch, PLUGIN + ".py"), "w") as fh:
        fh.write(plugin_source())
    return py, os.path.join(tree, top)


def command(config: str, py: str, tests: str, out: str, flush_interval: float = 0) -> list[str]:
    """The command line a user would type for `config` ("base-ft..." as "ft..."); `flush_interval`
    (> 0) is given to flowtrace's."""
    pytest = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", PLUGIN, tests]
    kind = config.removeprefix("base-")
    if kind == "untraced":
        return [py, *pytest]
    if kind == "viz":
        return [py, "-m", "viztracer", "-o", out + ".json", "--quiet", *pytest]
    extra = {"ft": [], "ft-noargs": ["--no-args"]}[kind]
    if flush_interval > 0:
        extra = [*extra, "--flush-interval", str(flush_interval)]
    return [py, "-m", "flowtrace", "run", "--include", "*", "-o", out, *extra, *pytest]


def run_one(config: str, py: str, source: str, tests: str, scratch: str, checkout: str,
            marks: str | None, flush_interval: float = 0, cache_sim: bool = False) -> dict:
    """One process of `config`: the plugin's figures, and with `marks` (under callgrind, with
    flowtrace's `flush_interval`) the session phase's instruction count -- and its simulated
    cache misses with `cache_sim`."""
    out = os.path.join(scratch, "out")
    result = os.path.join(scratch, "result.json")
    if os.path.exists(result):
        os.remove(result)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([scratch, checkout]), REAL_SUITE_OUT=result)
    env.pop("FLOWTRACE_RECORDER", None)
    cmd = command(config, py, tests, out, flush_interval if marks else 0)
    dumps = None
    if marks:
        env["REAL_SUITE_MARKS"] = marks
        dumps = tempfile.mkdtemp(prefix="real-cg-", dir=scratch)
        cmd = callgrind_phase.under_callgrind(cmd, dumps, cache_sim)
    proc = subprocess.run(cmd, cwd=source, env=env, capture_output=True, text=True)
    if not os.path.exists(result):
        raise SystemExit(f"{config}: the test session did not finish (exit {proc.returncode}):\n"
                         f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    with open(result) as fh:
        figures = json.load(fh)
    if dumps:
        read = callgrind_phase.read_dumps(dumps)
        figures["instr"] = callgrind_phase.phase_counts(read)["instr"]
        if cache_sim:
            figures |= callgrind_phase.phase_cache_misses(read)
        shutil.rmtree(dumps, ignore_errors=True)
    return figures


def overhead_ratio(runs: dict, config: str, metric: str, i: int | None = None) -> float | None:
    """`config`'s overhead over viz's in `metric` (round `i`, or the medians)."""
    def value(c: str) -> float:
        xs = [r[metric] for r in runs[c]]
        return xs[i] if i is not None else statistics.median(xs)
    base = value("untraced")
    viz = value("viz") / base - 1
    return (value(config) / base - 1) / viz if viz > 0 else None


# metric -> (its label, the scale it is printed at)
METRICS = {"cpu": ("cpu s", 1.0), "wall": ("wall s", 1.0), "instr": ("M instr", 1e-6),
           "i1_miss": ("M I1 misses", 1e-6), "d1r_miss": ("M D1 rd miss", 1e-6), "d1w_miss": ("M D1 wr miss", 1e-6)}


def report(runs: dict, metrics: list[str]) -> None:
    for metric in metrics:
        unit, scale = METRICS[metric]
        print(f"\n{unit:>12}: median (min-max); overhead = value / untraced - 1; ÷viz = overhead / viz's")
        for config, rs in runs.items():
            xs = [r[metric] * scale for r in rs]
            line = f"{config:15} {statistics.median(xs):10.2f} ({min(xs):.2f}-{max(xs):.2f})"
            if config not in ("untraced", "viz"):
                rounds = [overhead_ratio(runs, config, metric, i) for i in range(len(rs))]
                med = overhead_ratio(runs, config, metric)
                shown = ", ".join("-" if r is None else f"{r:.2f}" for r in rounds)
                line += f"   ÷viz {'-' if med is None else f'{med:.2f}'}  (rounds: {shown})"   # (-: no viz overhead)
            print(line)


def add_program_options(ap: argparse.ArgumentParser, tests: str = "tests") -> None:
    """The real program's options (real_profile.py takes them too): which project, its tests,
    VizTracer's version, where the scratch environment lives."""
    ap.add_argument("--package", default="flask==3.1.1")
    ap.add_argument("--deps", default="asgiref python-dotenv", help="what its tests need (spaces)")
    ap.add_argument("--tests", default=tests, help="test files or directory, in the sdist")
    ap.add_argument("--viztracer-spec", default="viztracer==1.1.1")
    ap.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "flowtrace-real-suite"))


def parse_options() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_program_options(ap)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", help="another flowtrace checkout (built): adds base-ft, base-ft-noargs")
    ap.add_argument("--instructions", action="store_true", help="callgrind counts of the test session")
    ap.add_argument("--cache-sim", action="store_true",
                    help="with --instructions: callgrind simulates the caches too (slower): the session's "
                         "instruction-cache and data-cache misses, where time goes that counts do not show")
    ap.add_argument("--counted-flush-interval", type=float, default=1000.0, metavar="S",
                    help="with --instructions: flowtrace's --flush-interval (default 1000, as e2e.py's: under "
                         "valgrind a 0.1 s interval flushes 50-800x more often per call than for a user; "
                         "batches are then cut by the pending-rows cap alone, as at a busy program's rate)")
    return ap.parse_args()


def main() -> None:
    opts = parse_options()
    if opts.cache_sim and not opts.instructions:
        raise SystemExit("--cache-sim goes with --instructions")
    if opts.instructions and (why := callgrind_phase.missing_tools()):
        raise SystemExit(f"--instructions: {why}")
    scratch = os.path.join(opts.scratch, opts.package.replace("==", "-"))
    os.makedirs(scratch, exist_ok=True)
    py, source = prepare(scratch, opts.package, opts.deps.split(), opts.viztracer_spec)
    tests = opts.tests if opts.tests != "tests" else os.path.relpath(tests_dir(source, opts.package.split("==")[0]), source)
    configs = ["untraced", "ft", "ft-noargs", "viz"] + (["base-ft", "base-ft-noargs"] if opts.baseline else [])
    checkouts = {c: (opts.baseline if c.startswith("base-") else ROOT) for c in configs}
    precompile(*(os.path.join(c, "flowtrace") for c in set(checkouts.values())))
    marks = callgrind_phase.build_helper(scratch) if opts.instructions else None
    runs: dict = {c: [] for c in configs}
    for _ in range(1 if opts.instructions else opts.repeat):
        for config in configs:
            runs[config].append(run_one(config, py, source, tests, scratch, checkouts[config], marks,
                                          opts.counted_flush_interval, opts.cache_sim))
    outcomes = {c: {(r["tests"], r["failed"], r["exit"]) for r in rs} for c, rs in runs.items()}
    print(f"{opts.package}: {tests} of its sdist ({runs['untraced'][0]['tests']} tests), Python "
          f"{sys.version.split()[0]}, {len(runs['untraced'])} round(s), configurations taking turns")
    counted = ["instr", *(callgrind_phase.CACHE_EVENTS.values() if opts.cache_sim else [])]
    report(runs, counted if opts.instructions else ["cpu", "wall"])
    if len({frozenset(o) for o in outcomes.values()}) != 1:
        print(f"OUTCOMES DIFFER between configurations (tests, failed, exit): {outcomes}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
