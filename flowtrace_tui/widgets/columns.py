"""The right-hand columns of the call tree (shared by the tree and its header)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Col:
    key: str
    title: str
    width: int


TOTAL = Col("total", "total", 9)
SELF = Col("self", "self", 9)
PCT = Col("pct", "%par", 5)
COUNT = Col("count", "calls", 7)


def columns_for(width: int) -> list[Col]:
    """Which columns fit: all four from 90 cells, narrower terminals drop calls then self."""
    if width >= 90:
        return [TOTAL, SELF, PCT, COUNT]
    if width >= 66:
        return [TOTAL, SELF, PCT]
    if width >= 44:
        return [TOTAL, PCT]
    return [TOTAL]


def columns_width(cols: list[Col]) -> int:
    return sum(c.width for c in cols)
