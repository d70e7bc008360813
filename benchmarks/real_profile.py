"""Where a real program's recording spends its time: perf's samples (cpu-clock) of real_suite.py's
processes, by library and by function, two sides run in turns.

    python benchmarks/real_profile.py [--package flask==3.1.1] [--tests tests/test_basic.py]
        [--pairs 8] [--config ft] (--baseline CHECKOUT | --against CONFIG) [--phase] [--top 25] [--scratch DIR]

Counts (callgrind) say how many instructions the recording adds; they do not say what those
instructions cost, nor what the interpreter's own instructions cost beside them. On flask's
test_basic, recording arguments adds ~3 % to the interpreter's instructions and ~18 % to its
time (libpython's samples): that is only seen sampled. Each side is a whole process (start-up
and the final flush included), as real_suite.py starts it (`flowtrace run --include '*'`, the
same sdist and scratch environment); the sides take turns, pair after pair, so both meet the
machine's load alike, and the report gives per-pair medians of the differences (b - a) by
library, then the functions that differ most (means). Side b is this checkout in `--config`;
side a is `--baseline`'s checkout in the same configuration, or this checkout in `--against`'s
(`--config ft --against ft-noargs`: what recording arguments costs, function by function).
`--phase` samples only the test session that real_suite.py times (perf starts disabled and its
plugin enables it at sessionstart, disables it at sessionfinish): `--config ft --against viz
--phase` is the issue's comparison itself, function by function -- VizTracer's save at exit,
which dominates its whole process, is left out as real_suite.py leaves it out.

Needs `perf` (hardware counters are not needed: cpu-clock is a software event). At 4 kHz one
sample is 0.25 ms of CPU. On a shared 2-core VM two runs of the same build differ by ~+-8 % of
a run's samples: read the per-pair medians and the functions themselves, and use 8+ pairs.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys

import real_suite
from pyc import precompile
from pytest_suite import tests_dir

ROOT = real_suite.ROOT
GROUPS = ("total", "libpython", "crecorder", "kernel", "libc", "other")
LINE = re.compile(r"\s*[\d.]+%\s+(\d+)\s+(\S+)\s+\[.\]\s+(.*)$")


def group(dso: str) -> str:
    if "libpython" in dso:
        return "libpython"
    if "_crecorder" in dso:
        return "crecorder"
    if "kernel" in dso:
        return "kernel"
    return "libc" if dso.startswith("libc") else "other"


def sampled(cmd: list[str], cwd: str, env: dict[str, str], data: str, phase: bool = False
            ) -> tuple[collections.Counter, collections.Counter]:
    """Run `cmd` under perf; (samples by group, samples by (group, function)). With `phase`, perf
    samples only while real_suite.py's plugin says so: the test session it times."""
    control = []
    if phase:
        fifos = [f"{data}.control", f"{data}.ack"]
        for fifo in fifos:
            if os.path.exists(fifo):
                os.remove(fifo)
            os.mkfifo(fifo)
        control = ["-D", "-1", "--control", f"fifo:{fifos[0]},{fifos[1]}"]
        env = dict(env, REAL_SUITE_PERF=",".join(fifos))
    proc = subprocess.run(["perf", "record", "-q", *control, "-e", "cpu-clock", "-F", "4000", "-o", data, *cmd],
                          cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0 and not os.path.exists(data):
        raise SystemExit(f"perf record failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    out = subprocess.run(["perf", "report", "-i", data, "-n", "--stdio", "--sort", "dso,sym"],
                         capture_output=True, text=True).stdout
    groups: collections.Counter = collections.Counter()
    functions: collections.Counter = collections.Counter()
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            n, g = int(m.group(1)), group(m.group(2))
            groups[g] += n
            groups["total"] += n
            functions[(g, m.group(3).strip())] += n
    os.remove(data)
    return groups, functions


def report(sides: dict[str, list], top: int, labels: dict[str, str]) -> None:
    pairs = list(zip(sides["a"], sides["b"]))
    print(f"{len(pairs)} pairs; samples a run, medians (4 kHz: 1 sample = 0.25 ms of CPU)")
    print(f"{'':28s}" + "".join(f"{g:>11s}" for g in GROUPS))
    for side in "ab":
        print(f"{side} {labels[side][:26]:26s}" + "".join(
            f"{statistics.median(r[0][g] for r in sides[side]):11.0f}" for g in GROUPS))
    print(f"{'b - a, per pair':28s}" + "".join(
        f"{statistics.median(b[0][g] - a[0][g] for a, b in pairs):+11.0f}" for g in GROUPS))
    diffs: collections.Counter = collections.Counter()
    for a, b in pairs:
        for key in set(a[1]) | set(b[1]):
            diffs[key] += (b[1][key] - a[1][key]) / len(pairs)
    print(f"functions that differ most (b - a, mean a run):")
    for (g, name), d in sorted(diffs.items(), key=lambda kv: -abs(kv[1]))[:top]:
        print(f"  {d:+8.1f}  {g:10s} {name[:80]}")


def parse_options() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    real_suite.add_program_options(ap, tests="tests/test_basic.py")
    ap.add_argument("--config", default="ft", choices=["untraced", "ft", "ft-noargs", "viz"],
                    help="side b's configuration (real_suite.py's names)")
    side_a = ap.add_mutually_exclusive_group(required=True)
    side_a.add_argument("--baseline", help="side a: another flowtrace checkout (built), same --config")
    side_a.add_argument("--against", choices=["untraced", "ft", "ft-noargs", "viz"],
                        help="side a: this checkout in another configuration")
    ap.add_argument("--phase", action="store_true",
                    help="sample only the test session that real_suite.py times (no start-up, no final "
                         "flush, no VizTracer save): the issue's measure")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--top", type=int, default=25)
    return ap.parse_args()


def main() -> None:
    opts = parse_options()
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed (linux-tools / linux-perf): nothing to sample with")
    scratch = os.path.join(opts.scratch, opts.package.replace("==", "-"))
    os.makedirs(scratch, exist_ok=True)
    py, source = real_suite.prepare(scratch, opts.package, opts.deps.split(), opts.viztracer_spec)
    tests = opts.tests if opts.tests != "tests" else os.path.relpath(tests_dir(source, opts.package.split("==")[0]), source)
    side_config = {"a": opts.against or opts.config, "b": opts.config}
    side_root = {"a": opts.baseline or ROOT, "b": ROOT}
    precompile(*(os.path.join(r, "flowtrace") for r in set(side_root.values())))
    labels = {s: f"{side_config[s]} {'this checkout' if side_root[s] == ROOT else side_root[s]}" for s in "ab"}
    sides: dict[str, list] = {"a": [], "b": []}
    for _ in range(opts.pairs):
        for s in "ab":
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([scratch, side_root[s]]),
                       REAL_SUITE_OUT=os.path.join(scratch, "result.json"))
            env.pop("FLOWTRACE_RECORDER", None)
            cmd = real_suite.command(side_config[s], py, tests, os.path.join(scratch, "out"))
            sides[s].append(sampled(cmd, source, env, os.path.join(scratch, "perf.data"), opts.phase))
    what = "the test session only (real_suite.py's timed phase)" if opts.phase else "whole processes"
    print(f"{opts.package}: {tests}, Python {sys.version.split()[0]}, {what}, sides taking turns")
    report(sides, opts.top, labels)


if __name__ == "__main__":
    main()
