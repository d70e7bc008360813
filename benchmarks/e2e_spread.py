"""The spread of e2e.py's rounds, and goal verdicts that say when that spread can flip them.

Each cell of e2e.py (a workload under one configuration) runs once a round; its figure is the
median of the rounds, its spread their min and max. A goal compares overheads (overhead =
figure / untraced - 1) of flowtrace ("ft") and VizTracer ("viz"):

    ratio = (ft.med / u - 1) / (viz.med / u - 1)        u = the untraced median

The same ratio taken at the ends of the two ranges, each against u, bounds what the rounds allow:

    best  = (ft.lo / u - 1) / (viz.hi / u - 1)    ft at its fastest, viz at its slowest
    worst = (ft.hi / u - 1) / (viz.lo / u - 1)    ft at its slowest, viz at its fastest

The verdict is "ok" when even the worst case meets the goal, "MISS" when even the best case
misses it, and "noise" (within noise) when the ranges overlap enough that the rounds could give
either verdict. With one round (or a deterministic count) the three ratios coincide and the
verdict is plain ok or MISS.

A second estimate beside the medians' takes each configuration at its fastest round, untraced too:

    fastest = (ft.lo / u.lo - 1) / (viz.lo / u.lo - 1)

On a shared VM disturbance only ever adds time (the untraced run alone varied 77-144 ms between
rounds here), so each cell's fastest round is its least disturbed one."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Spread:
    """The rounds of one figure: lowest, median and highest."""

    lo: float
    med: float
    hi: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        """The spread of one or more values."""
        vals = sorted(values)
        if not vals:
            raise ValueError("a spread needs at least one value")
        return cls(vals[0], statistics.median(vals), vals[-1])

    def scaled(self, base: float) -> Spread:
        """Every figure divided by `base` (a slowdown: figure / untraced)."""
        return Spread(self.lo / base, self.med / base, self.hi / base)


@dataclass(frozen=True)
class Verdict:
    """A goal's overhead ratio at the medians, its best and worst case over the ranges, and the
    word for it: "ok", "MISS" or "noise"."""

    ratio: float
    best: float
    worst: float
    word: str
    fastest: float | None = None


def _ratio(ft: float, viz: float, untraced: float) -> float:
    """Overhead ratio; inf when VizTracer's overhead is not positive (ft cannot be compared)."""
    viz_overhead = viz / untraced - 1
    return (ft / untraced - 1) / viz_overhead if viz_overhead > 0 else math.inf


def fastest_ratio(ft: Spread, viz: Spread, untraced: Spread) -> float | None:
    """The overhead ratio at each configuration's fastest round (None: VizTracer's fastest round
    is no slower than the untraced one's, so there is no overhead to compare with)."""
    if untraced.lo <= 0 or viz.lo <= untraced.lo:
        return None
    return _ratio(ft.lo, viz.lo, untraced.lo)


def goal_verdict(ft: Spread, viz: Spread, untraced: Spread, limit: float) -> Verdict | None:
    """The verdict on `ft overhead <= limit x viz overhead`, or None when it cannot be judged
    (no untraced time, or VizTracer's median overhead is not positive)."""
    u = untraced.med
    if u <= 0 or viz.med / u - 1 <= 0:
        return None
    ratio = _ratio(ft.med, viz.med, u)
    best = _ratio(ft.lo, viz.hi, u)
    worst = _ratio(ft.hi, viz.lo, u)
    if worst <= limit:
        word = "ok"
    elif best > limit:
        word = "MISS"
    else:
        word = "noise"
    return Verdict(ratio, best, worst, word, fastest_ratio(ft, viz, untraced))


def range_text(lo: float, hi: float, digits: int = 2) -> str:
    """`lo-hi` for a table's second line ("inf" for an unbounded end)."""
    def num(x: float) -> str:
        return "inf" if math.isinf(x) else f"{x:.{digits}f}"
    return f"{num(lo)}-{num(hi)}"
