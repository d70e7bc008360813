"""What `pytest --flowtrace` costs on a real project's own test suite.

    python benchmarks/pytest_suite.py [--package toolz==1.2.0] [--repeat 5] [--scratch DIR]

A scratch virtual environment (default: $TMPDIR/flowtrace-pytest-bench) gets pytest and this
flowtrace (editable, so its pytest plugin is registered); the package's source distribution
is unpacked there and its own test suite run from the source tree, so that its code and tests
are user code, as in the project's own checkout. toolz (pure Python, no dependencies, 187 tests
that ship with its sdist) is the default. Each run is a whole `python -m pytest -q` process:

- without:  `-p no:flowtrace` (the plugin's entry point is never imported: as if not installed)
- off:      installed, not asked (what every pytest run of a flowtrace user pays)
- failed:   `--flowtrace` (every test recorded, the sessions of passing tests deleted)
- all:      `--flowtrace=all` (every test's session kept; their number and size are printed)

The configurations take turns in every repetition (machine noise hits them alike); the table
gives the median wall time and the median CPU time of the pytest process, and their ratio to
"without". Every configuration must report the same test outcomes.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONFIGS = {
    "without": ["-p", "no:flowtrace"],
    "off": [],
    "failed": ["--flowtrace"],
    "all": ["--flowtrace=all"],
}


def _run(cmd: list[str], cwd: str | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def prepare(scratch: str, package: str) -> tuple[str, str]:
    """(the scratch venv's python, the unpacked source tree), made once and reused."""
    py = os.path.join(scratch, "venv", "bin", "python")
    if not os.path.exists(py):
        _run([sys.executable, "-m", "venv", os.path.join(scratch, "venv")])
        _run([py, "-m", "pip", "install", "-q", "pytest"])
        _run([py, "-m", "pip", "install", "-q", "-e", REPO])
    name = package.split("==")[0]
    dist = os.path.join(scratch, "dist")
    os.makedirs(dist, exist_ok=True)
    if not any(f.startswith(name) and f.endswith(".tar.gz") for f in os.listdir(dist)):
        _run([py, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", dist, package])
    archive = next(os.path.join(dist, f) for f in sorted(os.listdir(dist)) if f.endswith(".tar.gz"))
    tree = os.path.join(scratch, "src")
    if not os.path.isdir(tree):
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
    (top,) = os.listdir(tree)
    return py, os.path.join(tree, top)


def tests_dir(source: str, name: str) -> str:
    for candidate in (os.path.join(source, "tests"), os.path.join(source, name, "tests")):
        if os.path.isdir(candidate):
            return candidate
    raise SystemExit(f"no tests/ directory in {source}")


def run_once(py: str, source: str, tests: str, extra: list[str], sessions: str) -> tuple[float, float, str]:
    """(wall s, CPU s, pytest's outcome line) of one whole pytest process."""
    shutil.rmtree(sessions, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    where = ["--flowtrace-dir", sessions] if extra[:1] != ["-p"] else []  # no such option without the plugin
    out = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, *where, tests],
                         cwd=source, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = [line for line in out.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return wall, cpu, (summary[-1].strip("= ") if summary else out.stdout[-300:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", default="toolz==1.2.0")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "flowtrace-pytest-bench"))
    args = ap.parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    py, source = prepare(args.scratch, args.package)
    tests = tests_dir(source, args.package.split("==")[0])
    sessions = os.path.join(args.scratch, "sessions")
    walls: dict[str, list[float]] = {c: [] for c in CONFIGS}
    cpus: dict[str, list[float]] = {c: [] for c in CONFIGS}
    outcomes: dict[str, set[str]] = {c: set() for c in CONFIGS}
    kept = (0, 0)
    for _ in range(args.repeat):
        for config, extra in CONFIGS.items():
            wall, cpu, outcome = run_once(py, source, tests, extra, sessions)
            walls[config].append(wall)
            cpus[config].append(cpu)
            outcomes[config].add(re.sub(r" in [\d.]+s.*", "", outcome))
            if config == "all":
                files = [os.path.join(sessions, f) for f in os.listdir(sessions) if f.endswith(".ftr")]
                kept = (len(files), sum(os.path.getsize(f) for f in files))
    print(f"{args.package}: {os.path.relpath(tests, source)} of its sdist, {args.repeat} runs each, "
          f"Python {sys.version.split()[0]}")
    base_wall, base_cpu = statistics.median(walls["without"]), statistics.median(cpus["without"])
    print(f"{'':10} {'wall s':>8} {'ratio':>7} {'CPU s':>8} {'ratio':>7}  outcome")
    for config in CONFIGS:
        w, c = statistics.median(walls[config]), statistics.median(cpus[config])
        print(f"{config:10} {w:8.2f} {w / base_wall:6.2f}x {c:8.2f} {c / base_cpu:6.2f}x  {' | '.join(sorted(outcomes[config]))}")
    print(f"--flowtrace=all kept {kept[0]} sessions, {kept[1] / 1e6:.1f} MB")
    if len({frozenset(o) for o in outcomes.values()}) != 1:
        print("OUTCOMES DIFFER between configurations", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
