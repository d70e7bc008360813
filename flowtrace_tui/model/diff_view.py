"""What the diff view says about a path: its line (both runs' calls and times, the change)
and its detail (each run's figures, exception types and first calls). No Textual here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtrace import diff_rules as R

from .diff_tree import DiffIndex, DiffSide, call_outcomes
from .merged_view import PathCall, path_call
from .row_view import call_title

MAX_CALLS = 20  # calls listed per run in a path's detail
BEFORE = 2  # calls listed before the first differing one, when it is past the first MAX_CALLS


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One line: the function's name, what changed (`kind`: the primary kind, `kinds`: all),
    and per run (BASE, NEW) its calls, total and self time (0 where it lacks the path) and
    calls that raised."""

    node: int
    name: str
    kind: str
    kinds: tuple[str, ...]
    calls: tuple[int, int]
    total_ns: tuple[int, int]
    self_ns: tuple[int, int]
    raised: tuple[int, int]

    @property
    def delta_ns(self) -> int:
        return self.total_ns[1] - self.total_ns[0]

    @property
    def percent(self) -> float | None:
        return R.percent(self.total_ns[0], self.total_ns[1])


def _side(s: DiffSide, node: int) -> tuple[int, int, int, int]:
    m = int(s.node[node])
    if not m:
        return 0, 0, 0, 0
    mi = s.merged
    return int(mi.count[m]), int(mi.run[m]), int(mi.self_time[m]), int(mi.raised[m])


def diff_row(ix: DiffIndex, pos: int) -> DiffRow:
    node = ix.node(pos)
    a, b = _side(ix.base, node), _side(ix.new, node)
    kinds = tuple(ix.kinds[node])
    return DiffRow(node, ix.name(node), R.primary_kind(list(kinds)), kinds, (a[0], b[0]), (a[1], b[1]),
                   (a[2], b[2]), (a[3], b[3]))


@dataclass(frozen=True, slots=True)
class SideDetail:
    """One run's side of a path: its figures, exception types, and calls listed in start
    order (`listed`: from call number `first` + 1; `more`: how many follow them). `present`
    False: the run lacks the path."""

    label: str
    file: str
    present: bool
    calls: int
    total_ns: int
    self_ns: int
    raised: int
    exception_types: tuple[str, ...]
    listed: list[PathCall]
    more: int
    first: int = 0  # calls before the listed ones


@dataclass(frozen=True, slots=True)
class DiffDetail:
    """A path of the diff: its names from the root, what changed, both runs' sides, and
    `differs`, the number (0-based) of its first call whose outcome differs (an `outcome`
    change, once outcomes are compared; else None)."""

    node: int
    path: str
    title: str
    kinds: tuple[str, ...]
    outcomes_known: bool
    base: SideDetail
    new: SideDetail
    floor_ns: int
    differs: int | None = None
    creator: None = None  # (the pane's path line asks every detail for it)


def first_difference(ix: DiffIndex, node: int) -> int | None:
    """The number (0-based, in start order) of the first call of `node` whose outcome differs
    between the runs: for a path called as often in both whose outcomes differ (`outcome`),
    once they are compared; None otherwise. Each run's calls of the path are found with one
    scan and hashed as `outcome_digests` does (kept per node: the cursor comes back)."""
    if ix.text_hashes is None or R.OUTCOME not in ix.kinds[node]:
        return None
    if node not in ix.first_differences:
        ha, hb = (call_outcomes(s.data, h, s.merged.calls_of(int(s.node[node])))
                  for s, h in ((ix.base, ix.text_hashes[0]), (ix.new, ix.text_hashes[1])))
        at = np.flatnonzero(ha != hb) if len(ha) == len(hb) else np.zeros(0, dtype=np.int64)
        ix.first_differences[node] = int(at[0]) if len(at) else None
    return ix.first_differences[node]


def _side_detail(s: DiffSide, node: int, types: dict[int, frozenset[str]], first: int) -> SideDetail:
    """One run's side, its calls listed from number `first` (0-based) on."""
    m = int(s.node[node])
    if not m:
        return SideDetail(s.label, s.name, False, 0, 0, 0, 0, (), [], 0)
    mi = s.merged
    count = int(mi.count[m])
    first = min(first, max(0, count - MAX_CALLS))
    listed = mi.calls_of(m, first + MAX_CALLS)[first:]
    return SideDetail(s.label, s.name, True, count, int(mi.run[m]), int(mi.self_time[m]), int(mi.raised[m]),
                      tuple(sorted(types.get(m, ()))), [path_call(mi, c) for c in listed.tolist()],
                      max(0, count - first - len(listed)), first)


def diff_detail(ix: DiffIndex, pos: int) -> DiffDetail:
    """A path's detail: its calls are listed from the first, or, when its first differing call
    is past the first MAX_CALLS, from BEFORE calls before that one."""
    node = ix.node(pos)
    chain = [ix.node(p) for p in ix.ancestors(pos)] + [node]
    keys = tuple(ix.names[int(ix.name_key[c])] for c in chain)
    side = ix.new if ix.new.node[node] else ix.base
    title = call_title(side.data, int(side.merged.func[side.node[node]]))[0]
    ta, tb = ix.types
    differs = first_difference(ix, node)
    first = differs - BEFORE if differs is not None and differs >= MAX_CALLS else 0
    return DiffDetail(node, R.path_text(keys), title, tuple(ix.kinds[node]), ix.outcomes_known,
                      _side_detail(ix.base, node, ta, first), _side_detail(ix.new, node, tb, first), ix.floor_ns,
                      differs)


def diff_path_names(ix: DiffIndex, pos: int) -> list[tuple[int, str]]:
    """(position, name) from the top down to `pos`, for the detail pane's path line."""
    return [(p, ix.name(ix.node(p))) for p in [*ix.ancestors(pos)[-12:], pos]]
