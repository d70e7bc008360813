"""`flowtrace export --format pstats`: the profile as Python's `pstats` reads it (`pstats.Stats(FILE)`,
snakeviz, gprof2dot).

The file is the `marshal` dump of the dict `cProfile` writes: one entry per function,
`(file, first line, name): (primitive calls, calls, self s, cumulative s, callers)`, with
`callers` mapping each calling function to the same four numbers for the calls it made.
Mapping (docs/EXPORT.md): calls are flowtrace's calls (a generator or coroutine is one call per
object, where cProfile counts each resume); primitive calls and cumulative time count the
outermost calls only (no ancestor of the same function), as cProfile does for recursion; times
are running times (flowtrace/profile.py). The name is the qualified name (`Class.method`).
"""

from __future__ import annotations

import marshal
from typing import IO, Any

from ..ftr.scan import SessionInfo
from ..profile import profile


def stats_dict(info: SessionInfo) -> dict[tuple[str, int, str], tuple[Any, ...]]:
    """The dict `pstats.Stats` loads (times in seconds)."""
    result = profile(info, edges=True)
    key = {fid: (f.file, f.line, f.qualname) for fid, f in info.functions.items()}
    callers: dict[int, dict[tuple[str, int, str], tuple[int, int, float, float]]] = {}
    for (caller, callee), (cc, nc, tt, ct) in result.edges.items():
        if caller:
            callers.setdefault(callee, {})[key[caller]] = (cc, nc, tt / 1e9, ct / 1e9)
    return {
        key[fid]: (t.outer, t.calls, t.self / 1e9, t.total / 1e9, callers.get(fid, {}))
        for fid, t in result.functions.items() if t.calls
    }


def write(info: SessionInfo, out: IO[bytes]) -> None:
    marshal.dump(stats_dict(info), out)
