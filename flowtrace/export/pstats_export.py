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

from ..ftr.scan import Outlook, SessionInfo
from ..profile import profile


Stats = dict[tuple[str, int, str], tuple[Any, ...]]


def stats_dict(info: SessionInfo | Outlook) -> Stats:
    """The dict `pstats.Stats` loads (times in seconds), of a surveyed or glanced session
    (`profile`). Functions that share a key (two generator expressions on one line, a
    function redefined at the same place) are summed."""
    result = profile(info, edges=True)
    assert result.session is not None
    key = {fid: (f.file, f.line, f.qualname) for fid, f in result.session.functions.items()}
    callers: dict[int, Stats] = {}
    for (caller, callee), (cc, nc, tt, ct) in result.edges.items():
        if caller:
            _add_numbers(callers.setdefault(callee, {}), key[caller], (cc, nc, tt / 1e9, ct / 1e9))
    out: Stats = {}
    for fid, t in result.functions.items():
        if t.calls:
            _add(out, key[fid], (t.outer, t.calls, t.self / 1e9, t.total / 1e9, callers.get(fid, {})))
    return out


def merged(dicts: list[Stats]) -> Stats:
    """Several processes' stats as one (pstats.Stats.add's arithmetic: a function's numbers
    and its callers' numbers summed over the processes that ran it)."""
    out: Stats = {}
    for stats in dicts:
        for key, entry in stats.items():
            _add(out, key, entry)
    return out


def _add(out: Stats, key: tuple[str, int, str], entry: tuple[Any, ...]) -> None:
    """Sum `entry` (cc, nc, tt, ct, callers) into `out[key]`."""
    cc, nc, tt, ct, callers = entry
    if key not in out:
        out[key] = (cc, nc, tt, ct, dict(callers))
        return
    pcc, pnc, ptt, pct, pcallers = out[key]
    for caller, numbers in callers.items():
        _add_numbers(pcallers, caller, numbers)
    out[key] = (pcc + cc, pnc + nc, ptt + tt, pct + ct, pcallers)


def _add_numbers(callers: Stats, caller: tuple[str, int, str], numbers: tuple[Any, ...]) -> None:
    prev = callers.get(caller)
    callers[caller] = numbers if prev is None else tuple(a + b for a, b in zip(prev, numbers))


def write(info: SessionInfo | Outlook, out: IO[bytes], *, parts: list[tuple[Any, Any]] | None = None,
          **_: Any) -> None:
    """The pstats file; `parts` (a session of several processes): every process's functions
    summed into one profile, as `pstats.Stats(a, b, ...)` would (docs/EXPORT.md)."""
    if parts:
        marshal.dump(merged([stats_dict(part) for _proc, part in parts]), out)
    else:
        marshal.dump(stats_dict(info), out)
