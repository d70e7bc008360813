"""The diff view's tree (issue 14): the merged call paths of two sessions, matched by path.

What a path is and what counts as a change are `flowtrace.diff_rules`' (shared with
`flowtrace diff`): a path is the names (`module:qualname`) from a root call down, threads
merged; a path changed when it is new or gone, called another number of times, raised
otherwise, had other outcomes, or got slower or faster beyond the noise thresholds.

Built with the merged-path model (merged.py), vectorised:

1. each session is indexed without thread groups and merged by *name* (a joint name table
   gives both sessions' functions the same keys), so each has one node per path;
2. the two merged trees are merged into one, level by level, by (parent's node, name) --
   `merge_level`, as for calls: a path of either run is one node, BASE's paths first;
3. per node, each side's merged node (0: the run does not have the path), and what changed by
   `diff_rules.change_kinds` (one call per path: paths are few; the outcome digests come later,
   `set_outcomes`, as they read every call's text).

The result is a `TreeIndex` (rows, expand/collapse and H work on it unchanged) whose running
time is the larger of the two runs' (H follows what costs most in either).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowtrace import diff_rules as R

from .index import TreeIndex
from .loader import HOW_OPEN, HOW_RAISE, HOW_UNFINISHED, TraceData
from .merged import Cancelled, MergeCancelled, MergedIndex, _preorder, merge_calls, merge_level

KIND_CODE = {k: i for i, k in enumerate(R.KINDS)}  # primary kind -> int8 code (KINDS order)
SAME_CODE = KIND_CODE[R.SAME]


@dataclass(frozen=True)
class DiffSide:
    """One run: its label ("BASE"/"NEW"), file name, data, merged paths, per diff node its
    merged node (0: not in this run), and its sessions' running time (the roots')."""

    label: str
    name: str
    data: TraceData
    merged: MergedIndex
    node: np.ndarray
    session_ns: int

    def facts(self, node: int, types: dict[int, frozenset[str]], outcomes: np.ndarray | None) -> R.SideFacts | None:
        """The rules' view of diff node `node` in this run (None: the run lacks the path)."""
        m = int(self.node[node])
        if not m:
            return None
        mi = self.merged
        return R.SideFacts(int(mi.count[m]), int(mi.run[m]), int(mi.self_time[m]), int(mi.raised[m]),
                           types.get(m, frozenset()), int(outcomes[m]) if outcomes is not None else 0)


class DiffIndex(TreeIndex):
    """Diff nodes 1..n (no groups): `base`/`new` the two runs, `name_key` per node its name's
    key in `names` (function keys), `kinds` per node the change kinds (list of diff_rules
    kinds), `primary` per node the code of the kind it is coloured by (KIND_CODE), `floor_ns`
    the absolute noise floor used."""

    def __init__(self, *, base: DiffSide, new: DiffSide, names: list[str], name_key: np.ndarray,
                 thresholds: R.Thresholds, types: tuple[dict, dict] | None = None, **arrays) -> None:
        super().__init__(data=new.data, t_end=new.data.t_end, grouped=False, groups=[], **arrays)
        self.base, self.new = base, new
        self.names = names
        self.name_key = name_key
        self.thresholds = thresholds
        self.floor_ns = thresholds.floor_ns(base.session_ns, new.session_ns)
        self.outcomes_known = False
        self.text_hashes: tuple[np.ndarray, np.ndarray] | None = None  # per run: `string_hashes`, once compared
        self.first_differences: dict[int, int | None] = {}  # node -> `diff_view.first_difference`, once asked
        # per run: merged node -> exception types (given when read elsewhere, diff_sides.py)
        self.types = types if types is not None else (exception_types(base.merged), exception_types(new.merged))
        self.kinds: list[list[str]] = []
        self.primary = np.zeros(self.n + 1, dtype=np.int8)
        self.classify()

    def is_open(self, node: int) -> bool:
        return False

    def node_funcs(self) -> np.ndarray:
        """A function id per node in NEW's data (0 for a path only BASE has): for names."""
        m = self.new.merged
        return np.where(self.new.node > 0, m.func[self.new.node], 0)

    def side_of(self, which: str) -> DiffSide:
        return self.base if which == "base" else self.new

    def classify(self, outcomes: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Set what changed per path (see `kinds_of`)."""
        self.kinds, self.primary = self.kinds_of(outcomes)
        self.outcomes_known = outcomes is not None

    def set_outcomes(self, outcomes: Outcomes) -> None:
        """Take what `compare_outcomes` found (on the UI thread)."""
        self.kinds, self.primary, self.text_hashes = outcomes.kinds, outcomes.primary, outcomes.hashes
        self.outcomes_known = True
        self.first_differences.clear()

    def kinds_of(self, outcomes: tuple[np.ndarray, np.ndarray] | None) -> tuple[list[list[str]], np.ndarray]:
        """What changed per path by the shared rules, and the code of the kind each is coloured
        by; `outcomes`: each run's digest per merged node (`outcome_digests`; None: not known
        yet, so not compared). Pure: a worker calls it, the UI thread sets the result."""
        oa, ob = outcomes if outcomes is not None else (None, None)
        ta, tb = self.types
        kinds: list[list[str]] = [[R.SAME]]
        primary = np.full(self.n + 1, SAME_CODE, dtype=np.int8)
        for node in range(1, self.n + 1):
            k = R.change_kinds(self.base.facts(node, ta, oa), self.new.facts(node, tb, ob), self.thresholds,
                               self.floor_ns)
            kinds.append(k)
            primary[node] = KIND_CODE[R.primary_kind(k)]
        return kinds, primary

    def changed_positions(self) -> np.ndarray:
        """Positions of the paths that changed, increasing (next/previous change walks them)."""
        by_pos = self.primary[self.order]
        return np.flatnonzero(by_pos != SAME_CODE).astype(np.int64)

    def unchanged_subtrees(self) -> np.ndarray:
        """Per position: True when neither the path nor anything below it changed."""
        changed = self.changed_positions()
        pos = np.arange(self.size)
        inside = np.searchsorted(changed, self.end) - np.searchsorted(changed, pos)
        return inside == 0

    def name(self, node: int) -> str:
        return R.display_name(self.names[int(self.name_key[node])])


_NONE_HASH = np.uint64(0x9E3779B97F4A7C15)  # the digest of "no text" (not captured), unlike ""'s


def string_hashes(data: TraceData, cancelled: Cancelled = lambda: False) -> np.ndarray:
    """Per string id: a 64-bit hash of its text as the diff rules compare it
    (`diff_rules.normalize_text`: object addresses dropped); id 0 (no text) its own value."""
    out = np.zeros(data.strings.count + 1, dtype=np.uint64)
    out[0] = _NONE_HASH
    norm = R.normalize_text
    for chunk in data.strings.decoded_chunks(keep=False):  # each text once: none kept
        if cancelled():
            raise MergeCancelled
        blob = bytes(chunk.blob)
        offs = chunk.offsets.tolist()
        if blob.isascii():  # one decode; byte offsets are character offsets
            text = blob.decode("ascii")
            hs = [hash(norm(text[offs[i] : offs[i + 1]])) for i in range(chunk.count)]
        else:
            hs = [hash(norm(blob[offs[i] : offs[i + 1]].decode("utf-8", "replace"))) for i in range(chunk.count)]
        out[chunk.first_id : chunk.first_id + chunk.count] = np.array(hs, dtype=np.int64).view(np.uint64)
    return out


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place on uint64 (wrapping): spreads every input bit."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def call_outcomes(data: TraceData, hashes: np.ndarray, calls: np.ndarray | slice) -> np.ndarray:
    """Per call (`calls`: ids, or a slice of them): its outcome's 64-bit hash (argument text,
    how it ended, result or exception text; `hashes`: `string_hashes(data)`). Equal outcomes,
    equal hashes, in either session."""
    top = len(hashes) - 1
    how = data.col("how")[calls].astype(np.uint64)
    how[how == np.uint64(HOW_OPEN)] = np.uint64(HOW_UNFINISHED)  # no end = unfinished, as the rules say
    h = hashes[np.minimum(data.col("args")[calls], top)]  # (a gather: a new array)
    _mix(h)
    h ^= hashes[np.minimum(data.col("val")[calls], top)]
    _mix(h)
    h += how * np.uint64(0x632BE59BD9B4E019)
    return _mix(h)


def outcome_digests(m: MergedIndex, cancelled: Cancelled = lambda: False,
                    hashes: np.ndarray | None = None) -> np.ndarray:
    """Per merged node: the multiset digest of its calls' outcomes (`call_outcomes`;
    `diff_rules`' outcome, hashed here with numpy): the sum of a per-call hash, so that call
    order does not matter, as `diff_rules.add_hash` does. `hashes`: `string_hashes(m.data)`
    when made already."""
    data, n = m.data, m.n_calls
    h = call_outcomes(data, string_hashes(data, cancelled) if hashes is None else hashes, slice(1, n + 1))
    out = np.zeros(m.n + 1, dtype=np.uint64)
    np.add.at(out, m.node_of[1 : n + 1], h)  # wraps modulo 2**64, like add_hash
    return out


@dataclass(frozen=True)
class Outcomes:
    """Both runs' outcomes compared (`compare_outcomes`): what changed per path, the code each
    is coloured by, and each run's text hashes (to compare single calls: the detail pane)."""

    kinds: list[list[str]]
    primary: np.ndarray
    hashes: tuple[np.ndarray, np.ndarray]


def compare_outcomes(ix: DiffIndex, cancelled: Cancelled = lambda: False) -> Outcomes:
    """Every call's outcome digested per path in both runs, and the paths classified again
    (a worker's job: it reads every text; `DiffIndex.set_outcomes` takes the result)."""
    hashes = (string_hashes(ix.base.data, cancelled), string_hashes(ix.new.data, cancelled))
    digests = (outcome_digests(ix.base.merged, cancelled, hashes[0]),
               outcome_digests(ix.new.merged, cancelled, hashes[1]))
    return Outcomes(*ix.kinds_of(digests), hashes)


def exception_types(m: MergedIndex) -> dict[int, frozenset[str]]:
    """Per merged node with raised calls: the exception types they raised (each text read
    once: the texts of a session may still be compressed, loader.PackedStrings)."""
    data = m.data
    n = m.n_calls
    raised = np.flatnonzero(data.col("how")[: n + 1] == HOW_RAISE)
    if not len(raised):
        return {}
    vals = data.col("val")[raised].astype(np.int64)
    span = int(vals.max()) + 1
    pairs = np.unique(m.node_of[raised].astype(np.int64) * span + vals)  # (node, text) once each
    texts = data.strings.texts(np.unique(vals).tolist())
    out: dict[int, set[str]] = {}
    for node, val in zip((pairs // span).tolist(), (pairs % span).tolist()):
        out.setdefault(node, set()).add(R.exception_type(texts[val]))
    return {k: frozenset(v) for k, v in out.items()}


def name_keys(datas: list[TraceData]) -> tuple[list[str], list[np.ndarray]]:
    """One table of function names (`diff_rules.function_key`) for several sessions, and per
    session a key per function id into it (key 0: an unknown function)."""
    per = []
    for d in datas:
        names = ["?"] * max(1, len(d.functions))
        for f in d.functions:
            if f is not None:
                names[f.id] = R.function_key(f.module, f.qualname)
        per.append(names)
    table = ["?"] + sorted({k for names in per for k in names} - {"?"})
    at = {k: i for i, k in enumerate(table)}
    return table, [np.array([at[k] for k in names], dtype=np.int32) for names in per]


def merged_by_name(data: TraceData, keys: np.ndarray, cancelled: Cancelled = lambda: False) -> MergedIndex:
    """One session's paths by name, threads merged (the shared path definition), siblings in
    start order; straight from the columns (no call tree is shown, so none is built)."""
    return merge_calls(data, keys, cancelled)


def diff_tree(base: tuple[str, TraceData, MergedIndex], new: tuple[str, TraceData, MergedIndex],
              names: list[str], keys: tuple[np.ndarray, np.ndarray],
              thresholds: R.Thresholds | None = None, types: tuple[dict, dict] | None = None) -> DiffIndex:
    """The diff of two sessions' merged paths (each from `merged_by_name` with `keys`);
    `types`: each run's `exception_types` when known already."""
    ma, mb = base[2], new[2]
    ka, kb = keys[0][ma.func], keys[1][mb.func]  # name key per merged node
    ua = np.zeros(ma.n + 1, dtype=np.int32)  # merged node -> diff node (level numbering)
    ub = np.zeros(mb.n + 1, dtype=np.int32)
    parents, bounds, a_at, b_at = [], [1], [], []
    span = len(names)
    for d in range(max(len(ma.levels), len(mb.levels))):
        na, nb = ma.order[ma.level(d)], mb.order[mb.level(d)]
        pm = np.concatenate((ua[ma.parent[na]], ub[mb.parent[nb]]))
        nums, par_m, _ = merge_level(pm, np.concatenate((ka[na], kb[nb])), span, bounds[-1])
        ua[na], ub[nb] = nums[: len(na)], nums[len(na) :]
        parents.append(par_m)
        a_at.append((nums[: len(na)], na))
        b_at.append((nums[len(na) :], nb))
        bounds.append(bounds[-1] + len(par_m))
    total = bounds[-1] - 1
    par = np.zeros(total + 1, dtype=np.int32)
    if parents:
        par[1:] = np.concatenate(parents)
    a_node = np.zeros(total + 1, dtype=np.int32)
    b_node = np.zeros(total + 1, dtype=np.int32)
    for nums, nodes in a_at:
        a_node[nums] = nodes
    for nums, nodes in b_at:
        b_node[nums] = nodes
    key = np.zeros(total + 1, dtype=np.int32)
    key[ua[1:]] = ka[1:]
    key[ub[1:]] = kb[1:]
    pos, size = _preorder(par, bounds)
    return _assemble_diff(base, new, names, key, par, pos, size, bounds, a_node, b_node,
                          thresholds or R.Thresholds(), types)


def _assemble_diff(base, new, names, key, par, pos, size, bounds, a_node, b_node, thresholds, types) -> DiffIndex:
    """The DiffIndex arrays from the level numbering (diff node ids are the level numbers)."""
    ma, mb = base[2], new[2]
    total = len(par) - 1
    order = np.empty(total, dtype=np.int32)
    order[pos[1:]] = np.arange(1, total + 1, dtype=np.int32)
    pos_of = pos.astype(np.int32)
    pos_of[0] = -1
    depth = np.empty(total, dtype=np.int16 if len(bounds) < 32000 else np.int32)
    lvl = np.zeros(total + 1, dtype=np.int32)
    for d in range(len(bounds) - 1):
        lvl[bounds[d] : bounds[d + 1]] = d
    depth[pos[1:]] = lvl[1:]
    end = np.empty(total, dtype=np.int32)
    end[pos[1:]] = (pos + size)[1:]
    levels = [pos[bounds[d] : bounds[d + 1]].astype(np.int32) for d in range(len(bounds) - 1)]
    run = np.maximum(ma.run[a_node], mb.run[b_node])
    own = np.maximum(ma.self_time[a_node], mb.self_time[b_node])
    run[0] = own[0] = 0
    sides = [DiffSide(label, name, m.data, m, nodes, int(m.run[m.order[m.level(0)]].sum()))
             for label, (name, _, m), nodes in (("BASE", base, a_node), ("NEW", new, b_node))]
    return DiffIndex(base=sides[0], new=sides[1], names=names, name_key=key, thresholds=thresholds, types=types,
                     n=total, order=order, pos_of=pos_of, depth=depth, end=end, parent=par, dur=run, run=run,
                     self_time=own, levels=levels)
