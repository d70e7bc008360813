"""Time, throughput and peak memory of the reading commands (`print`, `export`, `stats`) on a big
session.

    python benchmarks/cli_bench.py [--calls 10000000 | --session FILE] [--before REV]
                                   [--cap-mb 4000] [--only NAME ...]

Each case runs as its own `python -m flowtrace …` process under an address-space cap
(RLIMIT_AS, what `prlimit --as` sets), so a version that would hold the whole session in memory
fails at the cap instead of taking the machine; its row then says so. Peak RSS is the child's
`ru_maxrss`. `--before REV` also runs every case with the code of that git revision (exported
with `git archive` to a temporary directory) and prints the ratios side by side. The session is
made by `benchmarks/synth.py` unless `--session` names one (cached in /tmp by call count).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CASES = {  # name -> the command's arguments ({s} = the session, {o} = an output file)
    "print --max-depth 2": ["print", "--max-depth", "2", "{s}"],
    "print": ["print", "{s}"],
    "export json": ["export", "{s}", "--format", "json", "-o", "{o}"],
    "export chrome": ["export", "{s}", "--format", "chrome", "-o", "{o}"],
    "stats": ["stats", "{s}"],
    "export perfetto": ["export", "{s}", "--format", "perfetto", "-o", "{o}"],
    "export speedscope": ["export", "{s}", "--format", "speedscope", "-o", "{o}"],
    "export pstats": ["export", "{s}", "--format", "pstats", "-o", "{o}"],
    "export collapsed": ["export", "{s}", "--format", "collapsed", "-o", "{o}"],
}


def session(calls: int) -> str:
    path = os.path.join(tempfile.gettempdir(), f"flowtrace-bench-{calls}.ftr")
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(HERE, "synth.py"), path + ".part", "--calls", str(calls)],
                       check=True)
        os.replace(path + ".part", path)
    return path


def measure(code_dir: str, args: list[str], cap_bytes: int) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, outcome) of one `python -m flowtrace` run."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    env = dict(os.environ, PYTHONPATH=code_dir, NO_COLOR="1")
    t = time.perf_counter()
    # -S: no site-packages, so the editable install of this checkout cannot shadow `code_dir`
    # (and from a neutral directory: `-m` puts the working directory first on the path)
    proc = subprocess.run([sys.executable, "-S", "-m", "flowtrace", *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env, preexec_fn=cap, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # this process runs one child only
    outcome = "ok" if proc.returncode == 0 else (
        "out of memory at the cap" if b"MemoryError" in proc.stderr or proc.returncode < 0
        else f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[-120:]}")
    return wall, peak / 1024, outcome


def run_version(label: str, code_dir: str, path: str, names: list[str], cap: int, calls: int) -> dict[str, tuple]:
    """Every case with one version of the code, each in a fresh measuring process (so that
    ru_maxrss is that case's own)."""
    rows = {}
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            args = [a.format(s=path, o=os.path.join(tmp, "out")) for a in CASES[name]]
            cmd = [sys.executable, __file__, "--measure-one", code_dir, str(cap), "--", *args]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().split("\t")
            rows[name] = (float(out[0]), float(out[1]), out[2])
            rate = calls / rows[name][0] if rows[name][0] else 0
            print(f"{label:7} {name:22} {rows[name][0]:8.1f} s {rate:10,.0f} calls/s {rows[name][1]:8.0f} MB  "
                  f"{rows[name][2]}", flush=True)
    return rows


def count_calls(path: str) -> int:
    sys.path.insert(0, ROOT)
    from flowtrace.ftr.scan import survey

    return survey(path).n_calls


def export_rev(rev: str, folder: str) -> str:
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--measure-one":
        code_dir, cap, _sep, *args = argv[1:]
        wall, peak, outcome = measure(code_dir, args, int(cap))
        print(f"{wall:.3f}\t{peak:.1f}\t{outcome}")
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--session", help="an existing session file (default: a synthetic one)")
    ap.add_argument("--before", metavar="REV", help="also run the code of this git revision (or of this "
                    "directory: a checkout)")
    ap.add_argument("--cap-mb", type=int, default=4000, help="address-space cap per run (default 4000)")
    ap.add_argument("--only", nargs="*", choices=sorted(CASES), help="cases to run (default: all)")
    opts = ap.parse_args(argv)
    path = opts.session or session(opts.calls)
    names = opts.only or list(CASES)
    cap = opts.cap_mb * 1024 * 1024
    print(f"session {path} ({os.path.getsize(path) / 1e6:.0f} MB), cap {opts.cap_mb} MB", flush=True)
    calls = count_calls(path)
    after = run_version("after", ROOT, path, names, cap, calls)
    if opts.before:
        with tempfile.TemporaryDirectory() as folder:
            code = opts.before if os.path.isdir(opts.before) else export_rev(opts.before, folder)
            before = run_version("before", code, path, names, cap, calls)
        print("\ncase                    time before/after   peak RSS before/after")
        for name in names:
            (tb, mb, ob), (ta, ma, oa) = before[name], after[name]
            if ob != "ok":  # killed at the cap, or a case the old code does not have
                print(f"{name:22} {'-':>9} {'-':>19}  (before: {ob} after {tb:.0f} s, {mb:.0f} MB)")
            else:
                print(f"{name:22} {tb / ta:8.1f}x {mb / ma:18.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
