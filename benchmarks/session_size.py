"""What a session file holds, row by row, without loading it as objects: its size, calls,
MARK rows by kind, suspensions (a fold row counts its runs) and bytes per call. Used to compare
the sessions of a generator-heavy program before and after folding resumes (issue 8 item 1).

    python benchmarks/session_size.py FILE.ftr [FILE.ftr ...]

To make the sessions, record the same program with each flowtrace checkout, e.g. a package's
own test suite in a scratch venv that has the package and pytest, under a memory cap:

    cd more-itertools-10.5.0
    PYTHONPATH=/path/to/flowtrace-checkout prlimit --as=4000000000 -- \\
        ../venv/bin/python -m flowtrace run -o /tmp/after.ftr -m pytest -q -p no:cacheprovider tests
"""

from __future__ import annotations

import os
import sys
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flowtrace.ftr import decode as D  # noqa: E402
from flowtrace.ftr import format as F  # noqa: E402
from flowtrace.ftr.chunks import ChunkReader  # noqa: E402


def _ints(col: F.Column) -> np.ndarray:
    return np.frombuffer(col.data, dtype={"B": "<u1", "H": "<u2", "I": "<u4", "i": "<i4", "q": "<i8"}[col.typecode])


def summary(path: str) -> dict[str, int]:
    reader = ChunkReader(path)
    calls = suspensions = 0
    kinds: Counter[str] = Counter()
    try:
        while True:
            chunks = reader.poll()
            if not chunks:
                break
            for chunk in chunks:
                rec = D.decode(chunk)
                if isinstance(rec, D.CallRows):
                    calls += rec.rows
                elif isinstance(rec, D.MarkRows):
                    kind = _ints(rec.kind)
                    for k, count in zip(*np.unique(kind, return_counts=True)):
                        kinds[F.MARK_NAMES.get(int(k), f"kind {int(k)}")] += int(count)
                    n = _ints(rec.n).astype(np.int64)  # zeros when the writer left it out
                    suspensions += int((kind == F.MARK_SUSPEND).sum()) + int(n[kind == F.MARK_FOLD].sum())
    finally:
        reader.close()
    return {"bytes": os.path.getsize(path), "calls": calls, "marks": sum(kinds.values()),
            "suspensions": suspensions, **{f"mark:{k}": v for k, v in sorted(kinds.items())}}


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for path in sys.argv[1:]:
        s = summary(path)
        per_call = s["bytes"] / max(1, s["calls"])
        print(f"{path}: {s['bytes']:,} bytes, {s['calls']:,} calls ({per_call:.1f} bytes/call), "
              f"{s['marks']:,} mark rows, {s['suspensions']:,} suspensions")
        print("    " + ", ".join(f"{k[5:]} {v:,}" for k, v in s.items() if k.startswith("mark:")))


if __name__ == "__main__":
    main()
