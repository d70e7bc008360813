"""What the diff view says about a path: its line (both runs' calls and times, the change)
and its detail (each run's figures, exception types and first calls). No Textual here."""

from __future__ import annotations

from dataclasses import dataclass

from flowtrace import diff_rules as R

from .diff_tree import DiffIndex, DiffSide
from .merged_view import PathCall, path_call
from .row_view import call_title

MAX_CALLS = 20  # calls listed per run in a path's detail


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
    """One run's side of a path: its figures, exception types, and its first calls in start
    order (`calls`; `more`: how many are not listed). `present` False: the run lacks the path."""

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


@dataclass(frozen=True, slots=True)
class DiffDetail:
    """A path of the diff: its names from the root, what changed, and both runs' sides."""

    node: int
    path: str
    title: str
    kinds: tuple[str, ...]
    outcomes_known: bool
    base: SideDetail
    new: SideDetail
    floor_ns: int
    creator: None = None  # (the pane's path line asks every detail for it)


def _side_detail(ix: DiffIndex, s: DiffSide, node: int, types: dict[int, frozenset[str]]) -> SideDetail:
    m = int(s.node[node])
    if not m:
        return SideDetail(s.label, s.name, False, 0, 0, 0, 0, (), [], 0)
    mi = s.merged
    listed = mi.calls_of(m, MAX_CALLS)
    count = int(mi.count[m])
    return SideDetail(s.label, s.name, True, count, int(mi.run[m]), int(mi.self_time[m]), int(mi.raised[m]),
                      tuple(sorted(types.get(m, ()))), [path_call(mi, c) for c in listed.tolist()],
                      max(0, count - len(listed)))


def diff_detail(ix: DiffIndex, pos: int) -> DiffDetail:
    node = ix.node(pos)
    chain = [ix.node(p) for p in ix.ancestors(pos)] + [node]
    keys = tuple(ix.names[int(ix.name_key[c])] for c in chain)
    side = ix.new if ix.new.node[node] else ix.base
    title = call_title(side.data, int(side.merged.func[side.node[node]]))[0]
    ta, tb = ix.types
    return DiffDetail(node, R.path_text(keys), title, tuple(ix.kinds[node]), ix.outcomes_known,
                      _side_detail(ix, ix.base, node, ta), _side_detail(ix, ix.new, node, tb), ix.floor_ns)


def diff_path_names(ix: DiffIndex, pos: int) -> list[tuple[int, str]]:
    """(position, name) from the top down to `pos`, for the detail pane's path line."""
    return [(p, ix.name(ix.node(p))) for p in [*ix.ancestors(pos)[-12:], pos]]
