"""Filters: hide calls shorter than a duration, hide the calls of some modules.

A hidden call hides its whole subtree (a short call has only shorter children; the calls a
hidden module makes are usually its own internals). The result is one boolean mask over
positions, computed in O(N) with a difference array over the hidden subtrees' ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .index import TreeIndex


@dataclass(frozen=True)
class Filters:
    """What to hide. `min_dur_ns` 0 and no modules = nothing hidden."""

    min_dur_ns: int = 0
    hidden_modules: frozenset[str] = field(default_factory=frozenset)

    @property
    def active(self) -> bool:
        return self.min_dur_ns > 0 or bool(self.hidden_modules)

    def describe(self) -> str:
        """Short text for the status line, e.g. "< 1.0 ms, -logging"."""
        from .units import fmt_ns

        parts = []
        if self.min_dur_ns > 0:
            parts.append(f"< {fmt_ns(self.min_dur_ns)}")
        parts.extend(f"-{m}" for m in sorted(self.hidden_modules))
        return ", ".join(parts)


def module_hidden(module: str, hidden: frozenset[str]) -> bool:
    """`logging` hides `logging` and `logging.handlers`."""
    return any(module == m or module.startswith(m + ".") for m in hidden)


def hidden_mask(index: TreeIndex, filters: Filters) -> np.ndarray | None:
    """Boolean mask over positions: True where the row is hidden by a filter (None: nothing)."""
    if not filters.active or index.size == 0:
        return None
    order = index.order
    n = index.n
    is_call = order <= n
    ids = np.where(is_call, order, 0)
    flagged = np.zeros(index.size, dtype=bool)
    if filters.min_dur_ns > 0:
        flagged |= index.dur[ids] < filters.min_dur_ns
    if filters.hidden_modules:
        funcs = index.data.functions
        lut = np.zeros(len(funcs) + 1, dtype=bool)
        for f in funcs:
            if f is not None and module_hidden(f.module, filters.hidden_modules):
                lut[f.id] = True
        fn = index.node_funcs()
        flagged |= lut[np.minimum(fn[ids], len(lut) - 1)]
    flagged &= is_call
    return cover(flagged, index.end, 0, include_self=True)


def cover(flag: np.ndarray, end: np.ndarray, base: int, include_self: bool) -> np.ndarray:
    """Which of the rows base .. base+len(flag)-1 lie inside the subtree of a flagged row.

    `end` holds the subtree ends of those same rows (absolute positions). With include_self a
    flagged row covers itself too (filters); without, only its descendants (collapsed nodes).
    Subtrees nest, so "inside some flagged subtree" = the furthest end reached by a flagged row
    at or before this one lies beyond it: one running maximum, no sort, no scatter-add.
    """
    length = len(flag)
    reach = np.zeros(length, dtype=np.int32)
    ends = end[:length] - base
    if include_self:
        np.copyto(reach, ends, where=flag, casting="unsafe")
    elif length > 1:
        np.copyto(reach[1:], ends[:-1], where=flag[:-1], casting="unsafe")
    np.maximum.accumulate(reach, out=reach)
    return reach > np.arange(length, dtype=np.int32)
