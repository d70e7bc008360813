"""Two sessions matched path by path (or function by function): what `flowtrace diff` prints.

One streaming pass per session (`profile.run_pass`, the times of `flowtrace stats`), BASE
first, then NEW. Both passes intern their call paths in one `PathTable` (names only, the rules
of `diff_rules`), so a path has the same number in both runs. Per *unit* (a path, or with
`by="function"` a function) and run, a `UnitStats`: calls, total and self time, calls left by
an exception and their exception types, the multiset digest of the calls' outcomes.

Naming the first differing call without keeping the calls: the BASE pass keeps, per unit, the
outcome hash, call id and text ids of its first `WITNESSES` calls (in start order); the NEW
pass compares its own first calls with them as they end and keeps the earliest that differs,
with its texts. A unit whose outcomes differ past those calls (the digests say so) is searched
by `locate` (session_locate.py): more passes over both sessions that follow call paths only,
keeping the outcomes of at most `LOCATE_SLOTS` calls (or sums of runs of calls) at once.

A session of several processes is a list of `Part`s, one per process's file: each part's
paths start under a node naming its process (`Part.key`, the program it ran; none for the
root process), so the processes of two runs are matched by program, and processes running the
same program (a pool's workers) are matched together, as threads are.

Memory: the calls still running (as `flowtrace stats`), and per distinct path (or function)
and run a few dozen numbers; never a list of calls (`locate`: a bounded number of outcomes).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from . import diff_rules as R
from .ftr import decode as D
from .ftr import format as F
from .ftr.scan import SessionInfo, Texts
from .profile import _FIELDS, _NO_SUSPENSION, _OPEN, _PARENT, _PATH, _RAISED, _Pass, run_pass
from .session_locate import FirstDifference, HashedTexts, Outcome, Search, end_name, locate

WITNESSES = 8  # first calls of a unit whose outcomes are compared in the first pass
_W = 6  # witness fields: outcome hash, call id, args text id, end, value text id, part number
# extra fields of an open call (after profile's): its unit (UnitStats), its number within the
# unit, the text ids of its arguments and of its result or exception, how it ended, its id,
# whether its running time counts in the unit's total
_UNIT, _INDEX, _ARGS, _VALUE, _HOW, _CID, _COUNTS = range(_FIELDS, _FIELDS + 7)


class PathTable:
    """Call paths of both runs by name: node = (parent node, name); node 0 is "no caller".
    With `outer`, each node also knows whether its function is on the path above it (for
    totals by function, which count the outermost calls only)."""

    def __init__(self, outer: bool = False) -> None:
        self.track_outer = outer
        self.names: list[str] = [""]
        self.name_ids: dict[str, int] = {}
        self.node_ids: dict[tuple[int, int], int] = {}
        self.parent = array("l", [0])
        self.name = array("l", [0])
        self.outer = bytearray(1)  # 1: no ancestor of the same function (counts in its total)
        self.ancestors: list[frozenset[int]] = [frozenset()]  # names on the path, shared by siblings

    def name_id(self, key: str) -> int:
        nid = self.name_ids.get(key)
        if nid is None:
            nid = self.name_ids[key] = len(self.names)
            self.names.append(key)
        return nid

    def node(self, parent: int, nid: int) -> int:
        key = (parent, nid)
        node = self.node_ids.get(key)
        if node is None:
            node = self.node_ids[key] = len(self.parent)
            self.parent.append(parent)
            self.name.append(nid)
            if self.track_outer:
                anc = self.ancestors[parent]
                self.outer.append(nid not in anc)
                self.ancestors.append(anc if nid in anc else anc | {nid})
        return node

    def process_root(self, key: str) -> int:
        """The node a process's root calls hang under: 0 for the root process (key "")."""
        return self.node(0, self.name_id(R.process_key(key))) if key else 0

    def keys(self, node: int) -> tuple[str, ...]:
        """The path's function keys, root first."""
        out = []
        while node:
            out.append(self.names[self.name[node]])
            node = self.parent[node]
        return tuple(reversed(out))


@dataclass
class Part:
    """One process's file of a session: `key` names the process among the session's processes
    ("" for the root process: its paths are the session's own)."""

    key: str
    info: SessionInfo


@dataclass(slots=True)
class UnitStats:
    """One unit (path or function) in one run."""

    unit: int
    calls: int = 0
    total: int = 0
    self: int = 0
    raised: int = 0
    exceptions: dict[str, int] = field(default_factory=dict)  # exception type -> calls it left
    digest: int = 0  # multiset digest of the outcomes: the sum of their outcome_hash
    first_call: int = 0
    witness: Any = None  # BASE: array of the first calls' (hash, call, args, end, value, part)
    differs: FirstDifference | None = None  # NEW: the earliest call unlike BASE's

    def facts(self) -> R.SideFacts:
        return R.SideFacts(self.calls, self.total, self.self, self.raised, frozenset(self.exceptions), self.digest)


@dataclass
class RunResult:
    parts: list[Part]
    units: dict[int, UnitStats]
    total: int  # running time of the root calls

    @property
    def info(self) -> SessionInfo:
        """The root process's session."""
        return self.parts[0].info

    @property
    def n_calls(self) -> int:
        return sum(p.info.n_calls for p in self.parts)


class _DiffPass(_Pass):
    """profile's pass (times), adding per unit the counts and outcomes the diff compares."""

    def __init__(self, info: SessionInfo, table: PathTable, by_function: bool, texts: HashedTexts,
                 base: dict[int, UnitStats] | None, compare_texts: bool, units: dict[int, UnitStats],
                 root: int, part: int) -> None:
        super().__init__(info, None, False, False)
        self.root = root  # the node root calls hang under: 0, or their process's node
        self.part = part
        self.compare_texts = compare_texts  # False: a run without argument texts; ends only
        self.table = table
        self.by_function = by_function
        self.text = texts.get
        self.base = base  # None while reading BASE
        self.units = units  # shared by the parts of one run
        self.outcome = texts.hashes  # (args, end, value) text ids -> hash
        self.outcomes = self.outcome.cache
        name_id = table.name_id
        self.fn_name = {fid: name_id(R.function_key(f.module, f.qualname)) for fid, f in info.functions.items()}

    def calls(self, rows: D.CallRows) -> None:
        """profile's entries (its layout, made here in one loop: profile's ancestor sets are
        left out, by function the outermost calls are `PathTable.outer`'s), each with its path
        node, unit, number and argument text."""
        open_, get, table, units, names = self.open, self.open.get, self.table, self.units, self.fn_name
        node_ids, node_of, outer = table.node_ids, table.node, table.outer
        by_function, unit_name, root = self.by_function, table.name, self.root
        base = rows.base
        for cid, p, f, t, a in zip(range(base, base + rows.rows), rows.parent.values(), rows.function.values(),
                                   rows.t0.values(), rows.args.values()):
            up = get(p) if p else None  # a caller that has ended makes a root, as in profile's pass
            if up is None:
                key = (root, names[f])
            else:
                up[_OPEN] += 1
                key = (up[_PATH], names[f])  # a parent's node is set before its children's
            node = node_ids.get(key) or node_of(*key)
            unit = unit_name[node] if by_function else node
            u = units.get(unit)
            if u is None:
                u = units[unit] = UnitStats(unit, first_call=cid)
            # by function, only outermost calls count in the total (as in `flowtrace stats`)
            open_[cid] = [f, up, t, 0, None, None, True, _NO_SUSPENSION, 0, 0, node, 0, -1, False,
                          _PARENT, t, 0,
                          u, u.calls, a, 0, F.END_UNFINISHED, cid, outer[node] if by_function else 1]
            u.calls += 1

    def exits(self, rows: D.ExitRows) -> None:
        pop, end = self.open.pop, self.end
        for cid, t1, how, value in zip(rows.call.values(), rows.t1.values(), rows.how.values(), rows.value.values()):
            e = pop(cid, None)
            if e is not None:
                how = F.end_kind(how)  # (outcomes compare how a call ended, not where it raised)
                e[_VALUE], e[_HOW] = value, how
                end(e, t1, how == F.END_RAISE)

    def add(self, e: list[Any], up: list[Any] | None, running: int, own: int) -> None:
        u = e[_UNIT]
        if e[_COUNTS]:
            u.total += running
        u.self += own
        how = e[_HOW]
        if e[_RAISED]:
            u.raised += 1
            kind = R.exception_type(self.text(e[_VALUE]))
            u.exceptions[kind] = u.exceptions.get(kind, 0) + 1
        key = (e[_ARGS], how, e[_VALUE])
        h = self.outcomes.get(key)  # inline: the hashes of most calls are cached
        if h is None:
            h = self.outcome(key)
        u.digest += h  # a sum (exact: Python ints), so the order of calls does not matter
        k = e[_INDEX]
        if k >= WITNESSES:
            return  # past the witnesses: `locate` finds a difference there
        if self.base is None:
            w = u.witness
            if w is None:
                w = u.witness = array("Q", bytes(8 * _W * WITNESSES))
            w[_W * k: _W * k + _W] = array("Q", (h, e[_CID], key[0], how, key[2], self.part))
        else:
            self.compare(u, k, h, e, key)

    def compare(self, u: UnitStats, k: int, h: int, e: list[Any], key: tuple[int, int, int]) -> None:
        """NEW's call number k of a unit against BASE's: keep the earliest that differs. BASE's
        texts stay text ids here (`SessionDiff` reads them from BASE afterwards)."""
        b = self.base.get(u.unit) if self.base is not None else None
        if b is None or b.witness is None or k >= b.calls or (u.differs is not None and u.differs.index < k):
            return
        w, i = b.witness, _W * k
        if w[i] == h:
            return
        text = self.text
        u.differs = FirstDifference(
            k, Outcome(w[i + 1], w[i + 2], end_name(w[i + 3]), w[i + 4], w[i + 5]),  # type: ignore[arg-type]
            Outcome(e[_CID], text(key[0]), end_name(key[1]), text(key[2]), self.part))
        if not self.compare_texts:
            u.differs.new.args = u.differs.new.value = None


def read_run(parts: list[Part], table: PathTable, by_function: bool, compare_texts: bool,
             base: dict[int, UnitStats] | None) -> RunResult:
    """One session's units (one pass per part); NEW's (`base` given) compared with BASE's as
    they end."""
    units: dict[int, UnitStats] = {}
    total = 0
    for number, part in enumerate(parts):
        texts = HashedTexts(part.info, compare_texts)
        try:
            p = _DiffPass(part.info, table, by_function, texts, base, compare_texts, units,
                          table.process_root(part.key), number)
            run_pass(p, part.info, texts)
        finally:
            texts.close()
        total += p.result.total
    return RunResult(parts, units, total)


@dataclass
class Row:
    """One unit in both runs and what changed."""

    unit: int
    keys: tuple[str, ...]  # the path's function keys (one key by function)
    base: UnitStats | None
    new: UnitStats | None
    kinds: list[str]
    first_difference: FirstDifference | None = None  # for an `outcome` change
    difference_range: tuple[int, int] | None = None  # not found (a session changed between passes):
    # the call numbers (from 1) it is among

    @property
    def changed(self) -> bool:
        return self.kinds != [R.SAME]


@dataclass
class SessionDiff:
    base: RunResult
    new: RunResult
    by: str  # "path" or "function"
    thresholds: R.Thresholds
    floor_ns: int
    rows: list[Row]  # every unit, unordered (`ranked` sorts)
    notes: list[str]
    compared_texts: bool


def args_recorded(info: SessionInfo) -> bool:
    options = info.meta.get("options")
    return not (isinstance(options, dict) and options.get("args") == "off")


def diff_sessions(base_parts: list[Part], new_parts: list[Part], by: str = "path",
                  thresholds: R.Thresholds = R.Thresholds()) -> SessionDiff:
    """Match two surveyed sessions (`scan.survey`; a `Part` per process, the root first) unit
    by unit; see the module docstring."""
    by_function = by == "function"
    table = PathTable(outer=by_function)
    texts = all(args_recorded(p.info) for p in [*base_parts, *new_parts])
    base = read_run(base_parts, table, by_function, texts, None)
    new = read_run(new_parts, table, by_function, texts, base.units)
    floor = thresholds.floor_ns(base.total, new.total)
    rows = []
    for unit in sorted(base.units.keys() | new.units.keys()):
        a, b = base.units.get(unit), new.units.get(unit)
        kinds = R.change_kinds(a.facts() if a else None, b.facts() if b else None, thresholds, floor)
        keys = (table.names[unit],) if by_function else table.keys(unit)
        rows.append(Row(unit, keys, a, b, kinds, b.differs if b is not None and R.OUTCOME in kinds else None))
    _locate_differences(base_parts, new_parts, table, by_function, texts, rows)
    _resolve_base_texts(base_parts, [r.first_difference for r in rows if r.first_difference], texts)
    return SessionDiff(base, new, by, thresholds, floor, rows, matching_notes(base, new, rows, texts), texts)


def _locate_differences(base_parts: list[Part], new_parts: list[Part], table: PathTable, by_function: bool,
                        texts: bool, rows: list[Row]) -> None:
    """The first differing call of each `outcome` row whose witnesses were all alike: found
    by `locate`'s passes (or, if the sessions changed between passes, the range it is in)."""
    wanted = [r for r in rows if R.OUTCOME in r.kinds and r.first_difference is None and r.base is not None]
    searches = [Search(r.unit, WITNESSES, r.base.calls) for r in wanted]  # type: ignore[union-attr]
    if not searches:
        return
    locate(base_parts, new_parts, table, by_function, texts, searches)
    for r, s in zip(wanted, searches):
        r.first_difference = s.found
        if s.found is None:
            r.difference_range = (s.lo + 1, s.hi)


def _resolve_base_texts(parts: list[Part], found: list[FirstDifference], texts: bool) -> None:
    """BASE's side of each first difference holds text ids until here: read their texts (from
    the part each call ran in)."""
    for number, part in enumerate(parts):
        reader = Texts(part.info)
        try:
            for d in found:
                o = d.base
                if o.part == number:
                    o.args, o.value = (reader.get(o.args), reader.get(o.value)) if texts else (None, None)  # type: ignore[arg-type]
        finally:
            reader.close()


def program_of(info: SessionInfo) -> str:
    """What the session ran, as its command line said (for a note)."""
    argv = info.meta.get("argv")
    return " ".join(map(str, argv)) if isinstance(argv, list) and argv else "?"


def matching_notes(base: RunResult, new: RunResult, rows: list[Row], texts: bool) -> list[str]:
    """What a reader of the diff must know about what was matched with what."""
    notes = []
    both = sum(1 for r in rows if r.base is not None and r.new is not None)
    if rows and not both:
        notes.append("the sessions have no call path in common: are they of the same program?")
    pa, pb = program_of(base.info), program_of(new.info)
    if pa.split(" ")[:1] != pb.split(" ")[:1]:
        notes.append(f"different programs (BASE ran {pa}; NEW ran {pb}): calls matched by function names only")
    ta = sorted(t.name for p in base.parts for t in p.info.threads.values())
    tb = sorted(t.name for p in new.parts for t in p.info.threads.values())
    if len(ta) > len(base.parts) or len(tb) > len(new.parts):
        what = "" if ta == tb else f" (BASE: {len(ta)} threads, NEW: {len(tb)})"
        notes.append(f"the calls of all threads are matched together, by path{what}")
    if len(base.parts) > 1 or len(new.parts) > 1:
        notes.append(process_note(base, new))
    if not texts:
        off = [n for n, r in (("BASE", base), ("NEW", new)) if not all(args_recorded(p.info) for p in r.parts)]
        notes.append(f"{' and '.join(off)} recorded without arguments (--no-args): outcomes compared by how "
                     "calls ended only")
    for name, r in (("BASE", base), ("NEW", new)):
        for p in r.parts:
            if not p.info.finished:
                notes.append(f"{name} {p.info.source}: {p.info.describe()}; unfinished calls end with the session")
    return notes


def process_note(base: RunResult, new: RunResult) -> str:
    """How the processes of the two sessions were matched: by program, the same programs together."""
    ka = {p.key for p in base.parts if p.key}
    kb = {p.key for p in new.parts if p.key}
    only = [f"only in {n}: {', '.join(sorted(k))}" for n, k in (("BASE", ka - kb), ("NEW", kb - ka)) if k]
    return (f"processes matched by the program they ran, those running the same program together (BASE: "
            f"{len(base.parts)} processes, NEW: {len(new.parts)})" + ("; " + "; ".join(only) if only else ""))
