"""The two call lists of one path in a diff, side by side: BASE's calls and NEW's paired by
number (the 1st with the 1st, …: calls of a path are numbered in start order, as
`flowtrace.diff_rules` says), each pair marked same or different by the shared outcome rule
(arguments, how the call ended, result or exception; object addresses ignored).

A call is anything with `call`, `args`, `end`, `value` and `run_ns` (the merged view's
`PathCall`); `end` is a `row_view` END_* ("open" is an unfinished call). No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from flowtrace import diff_rules as R

from .row_view import END_OPEN

_ENDS = {END_OPEN: R.END_UNFINISHED}


class CallLike(Protocol):
    call: int
    args: str | None
    end: str
    value: str | None
    run_ns: int


@dataclass(frozen=True, slots=True)
class CallPair:
    """Call `number` (from 1) of a path in each session (None: that session has fewer listed)."""

    number: int
    base: Any
    new: Any
    same: bool

    @property
    def kind(self) -> str:
        """`same`, `outcome` (both called, outcomes differ), `gone` or `new` (one side only)."""
        if self.base is None:
            return R.NEW
        if self.new is None:
            return R.GONE
        return R.SAME if self.same else R.OUTCOME


def outcome_of(c: CallLike) -> int:
    """The shared rule's outcome hash of one listed call."""
    return R.outcome_hash(c.args, _ENDS.get(c.end, c.end), c.value)


def pair_calls(base: Sequence[CallLike], new: Sequence[CallLike], first: int = 0) -> list[CallPair]:
    """The lists side by side, number by number; `first`: the calls before the lists' first."""
    pairs = []
    for i in range(max(len(base), len(new))):
        b = base[i] if i < len(base) else None
        n = new[i] if i < len(new) else None
        pairs.append(CallPair(first + i + 1, b, n, b is not None and n is not None and outcome_of(b) == outcome_of(n)))
    return pairs


def first_difference(pairs: Sequence[CallPair]) -> int | None:
    """The number of the first pair that is not `same` (None: all listed pairs are)."""
    return next((p.number for p in pairs if not p.same), None)
