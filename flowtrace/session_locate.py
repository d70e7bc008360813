"""The first differing call of a unit, exactly, wherever it is (`flowtrace diff`, issue 14).

`session_diff`'s pass compares only the first `WITNESSES` calls of each unit one by one; a unit
called as often in both runs whose outcome digests differ beyond them is searched here, by more
passes over both sessions (BASE, then NEW) that follow call paths only (no times): each call
gets its unit and number as in the first pass, and only the calls of the numbers still searched
are looked at.

Memory stays bounded: one pass keeps at most `LOCATE_SLOTS` slots over all searched units.
When every searched call fits, a slot is one call (BASE's outcome hash, call id and text ids;
NEW compares its calls with them as they end and keeps the earliest that differs): the pass
names the call. Else a slot is a run of `step` calls, and each run sums its calls' outcome
hashes weighted by position (so another order is another sum); the first run whose sums differ
is where the next pass looks, `step` times narrower. Up to `LOCATE_SLOTS` calls searched (a
unit of 1 M calls) take one extra pass.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from . import diff_rules as R
from .ftr import decode as D
from .ftr import format as F
from .ftr.format import Strings
from .ftr.scan import SessionInfo, Texts
from .profile import run_pass

if TYPE_CHECKING:
    from .session_diff import Part, PathTable

LOCATE_SLOTS = 1 << 20  # slots a locating pass keeps at once: 48 bytes each when a slot is a call
_EXACT = 6  # fields of a call slot: outcome hash, call id, args text id, end, value text id, part
_END_NAMES = {F.END_RETURN: R.END_RETURN, F.END_RAISE: R.END_RAISE}
MASK = R.MASK


@dataclass(slots=True)
class Outcome:
    """What one call did, as texts (normalized texts are what is compared); `part`: the
    number of the session part (process) it ran in."""

    call: int
    args: str | None
    end: str
    value: str | None
    part: int = 0


@dataclass(slots=True)
class FirstDifference:
    """The first call (by number within its unit) whose outcome differs between the runs."""

    index: int  # 0-based number of the call within its unit
    base: Outcome
    new: Outcome


def end_name(how: int) -> str:
    return _END_NAMES.get(how, R.END_UNFINISHED)


def _no_text(_sid: int) -> None:
    return None


class OutcomeHashes:
    """`diff_rules.outcome_hash` of (args text id, end, value text id), kept in a bounded
    cache. Each text is hashed once: all texts of a STRS chunk as it goes by (`chunk`, the
    pass's `HashedTexts` calls it; a slice of one decoded blob each), others when asked.
    `compare_texts` False: of the end only (sessions recorded without argument texts)."""

    def __init__(self, texts: Texts, compare_texts: bool) -> None:
        self.texts = texts
        self.compare_texts = compare_texts
        self.cache: dict[tuple[int, int, int], int] = {}
        self.text_hashes: dict[int, int] = {0: R.text_hash(None)}  # text id -> `text_hash`

    def chunk(self, strings: Strings) -> None:
        """Hash every text of a STRS chunk (those of the calls that follow it, mostly)."""
        if not self.compare_texts or not strings.count:
            return
        if len(self.text_hashes) >= 1 << 18:
            self.text_hashes.clear()  # bounded; older texts are hashed again when asked
            self.text_hashes[0] = R.text_hash(None)
        blob, offsets, norm = bytes(strings.blob), strings.offsets, R.normalize_text
        if blob.isascii():  # one decode: byte offsets are character offsets
            text = blob.decode("ascii")
            hashes = [hash(norm(text[a:b])) for a, b in zip(offsets, offsets[1:])]
        else:
            hashes = [hash(norm(blob[a:b].decode("utf-8", "replace"))) for a, b in zip(offsets, offsets[1:])]
        self.text_hashes.update(zip(range(strings.first_id, strings.first_id + strings.count), hashes))

    def text_hash(self, sid: int) -> int:
        h = self.text_hashes.get(sid)
        if h is None:
            h = self.text_hashes[sid] = R.text_hash(self.texts.get(sid))
        return h

    def __call__(self, key: tuple[int, int, int]) -> int:
        h = self.cache.get(key)
        if h is None:
            if len(self.cache) >= 1 << 16:
                self.cache.clear()  # bounded; outcomes in use come back
            if self.compare_texts:
                h = R.combine_outcome(self.text_hash(key[0]), end_name(key[1]), self.text_hash(key[2]))
            else:
                h = R.outcome_hash(None, end_name(key[1]), None)
            self.cache[key] = h
        return h


class HashedTexts(Texts):
    """A pass's `Texts` that has `OutcomeHashes.chunk` hash each STRS chunk the pass reads
    (not those `get` reads again for an older text: hashing a whole chunk for one text, back
    and forth between two chunks, cost more than it saved)."""

    def __init__(self, info: SessionInfo, compare_texts: bool) -> None:
        super().__init__(info)
        self.hashes = OutcomeHashes(self, compare_texts)
        self._reading_again = False

    def add(self, strings: Strings) -> None:
        super().add(strings)
        if not self._reading_again:
            self.hashes.chunk(strings)

    def get(self, sid: int) -> str | None:
        self._reading_again = True
        try:
            return super().get(sid)
        finally:
            self._reading_again = False


class Search:
    """Where the first differing call of `unit` is still sought: its calls `lo` .. `hi` - 1
    (0-based numbers), in slots of `step` calls for the current pass."""

    __slots__ = ("unit", "lo", "hi", "step", "base", "new", "found")

    def __init__(self, unit: int, lo: int, hi: int) -> None:
        self.unit, self.lo, self.hi = unit, lo, hi
        self.step = 1
        self.base: Any = None  # step 1: _EXACT arrays of a field per call; else a weighted sum per slot
        self.new: Any = None  # step > 1: NEW's sums per slot
        self.found: FirstDifference | None = None

    def start(self, step: int) -> None:
        """Ready for a pass with slots of `step` calls."""
        self.step = step
        slots = -(-(self.hi - self.lo) // step)
        if step == 1:
            self.base = [array("Q", bytes(8 * slots)) for _ in range(_EXACT)]
        else:
            self.base, self.new = array("Q", bytes(8 * slots)), array("Q", bytes(8 * slots))

    def narrow(self) -> bool:
        """After a pass of runs: the first run whose sums differ is the next range; False when
        none differs (the sessions changed between the passes)."""
        base, new, step = self.base, self.new, self.step
        self.base = self.new = None
        slot = next((i for i, (x, y) in enumerate(zip(base, new)) if x != y), None)
        if slot is None:
            return False
        self.lo += slot * step
        self.hi = min(self.hi, self.lo + step)
        return True


def plan(searches: list[Search]) -> int:
    """The slot width of the next pass: 1 (every searched call kept) when they fit in
    `LOCATE_SLOTS`."""
    calls = sum(s.hi - s.lo for s in searches)
    return max(1, -(-calls // LOCATE_SLOTS))


class LocatePass:
    """A pass over one session part (`run_pass` feeds it) numbering each unit's calls as
    `session_diff`'s pass does and handing the searched ones to their `Search`. BASE's pass
    (`new_texts` None) fills the slots; NEW's compares (call slots) or sums (runs). `counts`
    (calls so far per unit) goes on from part to part of one run."""

    def __init__(self, info: SessionInfo, table: PathTable, by_function: bool, searches: dict[int, Search],
                 counts: list[int], hashes: OutcomeHashes, root: int, part: int,
                 new_texts: Callable[[int], str | None] | None) -> None:
        self.table, self.by_function, self.searches, self.counts = table, by_function, searches, counts
        self.hash, self.root, self.part, self.new_texts = hashes, root, part, new_texts
        self.node: dict[int, int] = {}  # open call id -> its path node
        self.watched: dict[int, tuple[Search, int, int]] = {}  # open searched call -> (search, number, args)
        self.searched = bytearray(max(searches, default=0) + 1)  # per unit: 1 when searched
        for unit in searches:
            self.searched[unit] = 1
        name_id = table.name_id
        self.fn_name = {fid: name_id(R.function_key(f.module, f.qualname)) for fid, f in info.functions.items()}

    def calls(self, rows: D.CallRows) -> None:
        open_, counts, searched, names, root = self.node, self.counts, self.searched, self.fn_name, self.root
        searches, watched = self.searches, self.watched
        node_ids, unit_name, by_function, top = self.table.node_ids, self.table.name, self.by_function, len(searched)
        base, args = rows.base, None
        for cid, p, f in zip(range(base, base + rows.rows), rows.parent.values(), rows.function.values()):
            key = (open_.get(p, root), names[f])  # as profile's pass: a caller that has ended makes a root
            node = node_ids.get(key) or self.new_node(key)
            open_[cid] = node
            unit = unit_name[node] if by_function else node
            if unit >= len(counts):
                counts.extend(bytes(unit + 1 - len(counts)))
            k = counts[unit]
            counts[unit] = k + 1
            if unit < top and searched[unit]:
                s = searches[unit]
                if s.lo <= k < s.hi:
                    if args is None:
                        args = rows.args.values()  # decoded once per chunk, when it has a searched call
                    watched[cid] = (s, k, args[cid - base])

    def new_node(self, key: tuple[int, int]) -> int:
        """A path the first pass did not see (a session still being written grew)."""
        return self.table.node(*key)

    def marks(self, rows: D.MarkRows) -> None:
        """Marks change times only: nothing to do."""

    def exits(self, rows: D.ExitRows) -> None:
        pop, watched = self.node.pop, self.watched
        calls = rows.call.values()
        for cid in calls:
            pop(cid, None)
        if watched:
            see, unwatch = self.see, watched.pop
            for cid, how, value in zip(calls, rows.how.values(), rows.value.values()):
                w = unwatch(cid, None)
                if w is not None:
                    see(w, cid, F.end_kind(how), value)

    def finish(self) -> None:
        """Calls still running end with the session, unfinished."""
        for cid, w in self.watched.items():
            self.see(w, cid, F.END_UNFINISHED, 0)
        self.watched.clear()
        self.node.clear()

    def see(self, w: tuple[Search, int, int], cid: int, how: int, value: int) -> None:
        """A searched call's outcome into its slot."""
        s, k, args = w
        h = self.hash((args, how, value))
        i = k - s.lo
        if s.step > 1:
            slots = s.base if self.new_texts is None else s.new
            slots[i // s.step] = (slots[i // s.step] + h * (2 * k + 1)) & MASK
            return
        hashes, calls, arg_ids, ends, values, parts = s.base
        if self.new_texts is None:
            hashes[i], calls[i], arg_ids[i], ends[i], values[i], parts[i] = h or 1, cid, args, how, value, self.part
        elif hashes[i] and hashes[i] != (h or 1) and (s.found is None or k < s.found.index):  # 0: no BASE call
            text = self.new_texts
            s.found = FirstDifference(
                k, Outcome(calls[i], arg_ids[i], end_name(ends[i]), values[i], parts[i]),  # type: ignore[arg-type]
                Outcome(cid, text(args), end_name(how), text(value), self.part))


def locate(base_parts: list[Part], new_parts: list[Part], table: PathTable, by_function: bool,
           compare_texts: bool, searches: list[Search]) -> None:
    """Narrow each search until its call is found (`Search.found`: BASE's texts are still text
    ids) or no difference is left to find (the sessions changed between passes: its range
    stays)."""
    left = list(searches)
    while left:
        step = plan(left)
        for s in left:
            s.start(step)
        by_unit = {s.unit: s for s in left}
        for parts, is_base in ((base_parts, True), (new_parts, False)):
            counts: list[int] = []  # shared by the parts of one run: numbers go on across processes
            for number, part in enumerate(parts):
                texts = HashedTexts(part.info, compare_texts)
                try:
                    p = LocatePass(part.info, table, by_function, by_unit, counts, texts.hashes,
                                   table.process_root(part.key), number, None if is_base else
                                   (texts.get if compare_texts else _no_text))
                    run_pass(p, part.info, texts)
                finally:
                    texts.close()
        if step == 1:
            for s in left:
                s.base = None
            return
        left = [s for s in left if s.narrow() and s.hi > s.lo]
