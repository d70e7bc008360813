"""Time and peak memory of `flowtrace diff` on two big sessions, beside `flowtrace stats` on each.

    python benchmarks/diff_bench.py [--calls 5000000] [--base FILE --new FILE] [--cap-mb 4000]
                                    [--repeat 1]

The two sessions are made by `benchmarks/synth.py` with seeds 1 and 2 (the same program shapes,
other random trees: thousands of paths differ) unless `--base`/`--new` name existing ones; they
are cached in /tmp by call count. Each case is the command a user runs, as its own
`python -m flowtrace …` process under an address-space cap (RLIMIT_AS, what `prlimit --as`
sets): a diff that held the sessions' calls in memory would fail at the cap. Peak RSS is the
child's `ru_maxrss`. The reference is `flowtrace stats` (one streaming pass, the same time
computation) on each session: the diff reads each session once more than that, so
diff / (stats BASE + stats NEW) is the cost of matching and comparing. With `--repeat N` the
medians of N runs, run side by side (case after case, N rounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from cli_bench import count_calls  # noqa: E402

CASES = {  # name -> the command's arguments ({a}, {b}: the sessions)
    "stats BASE": ["stats", "{a}"],
    "stats NEW": ["stats", "{b}"],
    "diff": ["diff", "{a}", "{b}"],
    "diff --by function": ["diff", "{a}", "{b}", "--by", "function"],
    "diff --format json": ["diff", "{a}", "{b}", "--format", "json"],
}


def session(calls: int, seed: int) -> str:
    path = os.path.join(tempfile.gettempdir(), f"flowtrace-diff-{calls}-s{seed}.ftr")
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(HERE, "synth.py"), path + ".part", "--calls", str(calls),
                        "--seed", str(seed)], check=True)
        os.replace(path + ".part", path)
    return path


def measure(args: list[str], cap: int) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, outcome) of one command, in a fresh measuring process (cli_bench's)."""
    cmd = [sys.executable, os.path.join(HERE, "cli_bench.py"), "--measure-one", ROOT, str(cap), "--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().split("\t")
    return float(out[0]), float(out[1]), out[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=5_000_000)
    ap.add_argument("--base", help="an existing BASE session (default: synthetic, seed 1)")
    ap.add_argument("--new", help="an existing NEW session (default: synthetic, seed 2)")
    ap.add_argument("--cap-mb", type=int, default=4000, help="address-space cap per run (default 4000)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; medians are printed (default 1)")
    ap.add_argument("--only", nargs="*", choices=sorted(CASES), help="cases to run (default: all)")
    opts = ap.parse_args(argv)
    a = opts.base or session(opts.calls, 1)
    b = opts.new or session(opts.calls, 2)
    cap = opts.cap_mb * 1024 * 1024
    names = opts.only or list(CASES)
    calls = count_calls(a) + count_calls(b)
    print(f"BASE {a} ({os.path.getsize(a) / 1e6:.0f} MB), NEW {b} ({os.path.getsize(b) / 1e6:.0f} MB), "
          f"{calls:,} calls in all, cap {opts.cap_mb} MB", flush=True)
    runs: dict[str, list[tuple[float, float, str]]] = {n: [] for n in names}
    for _round in range(opts.repeat):
        for name in names:
            runs[name].append(measure([x.format(a=a, b=b) for x in CASES[name]], cap))
            wall, peak, outcome = runs[name][-1]
            print(f"  {name:20} {wall:8.1f} s {peak:8.0f} MB  {outcome}", flush=True)
    medians = {n: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs),
                   rs[-1][2]) for n, rs in runs.items()}
    print(f"\nmedians of {opts.repeat} round(s):")
    for name, (wall, peak, outcome) in medians.items():
        print(f"{name:22} {wall:8.1f} s {peak:8.0f} MB  {outcome}")
    if {"stats BASE", "stats NEW"} <= medians.keys():
        both = medians["stats BASE"][0] + medians["stats NEW"][0]
        for name in names:
            if name.startswith("diff"):
                print(f"{name} / (stats BASE + stats NEW): {medians[name][0] / both:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
