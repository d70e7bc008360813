"""Which nodes are on screen: a sorted array of positions (preorder), replaced on each edit.

Because rows stay in preorder, the rows under a node are one contiguous slice: collapsing is
`searchsorted` + slice, expanding is a splice of the node's visible descendants. When only a
few nodes below it are expanded (the usual case: a first expansion, a hot path, a search hit's
ancestors) those rows are pieced together from the index's per-depth position lists, so the
cost is that of the rows shown, not of the subtree; otherwise one vectorised running-maximum
pass over the subtree finds them. Nothing here loops in Python over calls.

A big row array costs mostly its fresh memory (page faults: ~0.35 ms per MB here, more than
the arithmetic that fills it), so rows are int32 (positions are int32 in the index already) and
"every position is a row" (expand to a depth that shows the whole trace) is not materialised at
all: it is `_rows is None`, and the queries answer it by arithmetic.
"""

from __future__ import annotations

import numpy as np

from .filters import Filters, cover, hidden_mask
from .index import Moves, TreeIndex, find_sorted
from .merged import same_nodes
from .window import same_calls

EXPAND_GUARD = 200_000  # `e` on a bigger subtree asks to be pressed again
# Piecing rows together costs a few microseconds of Python per expanded node below; the
# running-maximum pass ~10 ns per row of the subtree. Piece when that is clearly cheaper.
SPLICE_MAX_EXPANDED = 64
SPLICE_ROWS_PER_EXPANDED = 1024
ROW_DTYPE = np.int32  # a position: the index's `order`/`end`/`level_pos` are int32 too
_NONZERO_CHUNK = 1 << 18  # mask elements per `flatnonzero` pass of `nonzero32` (its temporary: 2 MB, cache-sized)


def nonzero32(mask: np.ndarray, base: int = 0) -> np.ndarray:
    """`np.flatnonzero(mask) + base` as int32 rows.

    `flatnonzero` only makes int64; on a whole-trace mask that is a full-size temporary of fresh
    memory plus a second one for the conversion. Chunked, the int64 pieces are small and reused
    by the allocator, and the only full-size fresh memory is the int32 result."""
    out = np.empty(int(np.count_nonzero(mask)), dtype=ROW_DTYPE)
    k = 0
    for a in range(0, len(mask), _NONZERO_CHUNK):
        nz = np.flatnonzero(mask[a : a + _NONZERO_CHUNK])
        np.add(nz, base + a, out=out[k : k + len(nz)], casting="unsafe")
        k += len(nz)
    return out


class TreeRows:
    """Expanded state (per position) and the visible rows of one `TreeIndex`."""

    def __init__(self, index: TreeIndex, filters: Filters | None = None, *,
                 expanded: np.ndarray | None = None) -> None:
        """A view with the group nodes expanded and its rows built; or, given `expanded` (per
        position), a view with no rows yet, which the caller sets (carrying a view over)."""
        self.index = index
        self.filters = filters or Filters()
        self.hidden = hidden_mask(index, self.filters)
        self._rows: np.ndarray | None = np.empty(0, dtype=ROW_DTYPE)  # None: every position
        self._row_buf: list | None = None  # see `_append_rows`
        self.version = 0
        if expanded is not None:
            self.expanded = expanded
            return
        self.expanded = np.zeros(index.size, dtype=bool)
        for g in index.groups:
            self.expanded[index.pos_of[g.node]] = True
        self.rebuild()

    # -- queries ------------------------------------------------------------------------------
    @property
    def rows(self) -> np.ndarray:
        """The visible positions, increasing (int32; do not write into it). When every position
        is visible this makes a fresh `arange`: the explorer itself uses the queries below."""
        if self._rows is None:
            return np.arange(self.index.size, dtype=ROW_DTYPE)
        return self._rows

    def __len__(self) -> int:
        return self.index.size if self._rows is None else len(self._rows)

    def pos(self, row: int) -> int:
        return row if self._rows is None else int(self._rows[row])

    def row_of(self, pos: int) -> int:
        """Row index of a position, or -1 when it is not visible."""
        rows = self._rows
        if rows is None:
            return pos if 0 <= pos < self.index.size else -1
        i = find_sorted(rows, pos)
        return i if i < len(rows) and rows[i] == pos else -1

    def rows_before(self, pos: int) -> int:
        """How many visible rows lie before `pos` (where it would be inserted)."""
        if self._rows is None:
            return min(max(pos, 0), self.index.size)
        return find_sorted(self._rows, pos)

    def has_children(self, pos: int) -> bool:
        return int(self.index.end[pos]) > pos + 1

    def is_expanded(self, pos: int) -> bool:
        return bool(self.expanded[pos]) and self.has_children(pos)

    def visible_children(self, pos: int) -> np.ndarray:
        kids = self.index.children(pos)
        if self.hidden is not None and len(kids):
            kids = kids[~self.hidden[kids]]
        return kids

    # -- whole-view operations ----------------------------------------------------------------
    def rebuild(self) -> None:
        """Recompute rows from the expanded state and filters (O(N), vectorised)."""
        self._set_pieces(self._visible_pieces(-1))
        self.version += 1

    def set_filters(self, filters: Filters) -> None:
        self.filters = filters
        self.hidden = hidden_mask(self.index, filters)
        self.rebuild()

    def with_filters(self, filters: Filters) -> "TreeRows":
        """A copy of this view with other filters (the O(N) work of `set_filters` without
        touching this object, so that a worker thread can do it while the UI keeps this one)."""
        new = TreeRows(self.index, filters, expanded=self.expanded.copy())
        new.rebuild()
        return new

    def collapse_all(self) -> None:
        self.expanded[:] = False
        top = self.index.top_level()  # only the top-level rows remain: the index lists them
        if self.hidden is not None:
            top = top[~self.hidden[top]]
        self._set(top)
        self.version += 1

    def expand_to_depth(self, depth: int) -> None:
        """Show `depth` levels below the top-level rows: every node above that level expanded."""
        idx = self.index
        np.less(idx.depth, depth, out=self.expanded)  # in place: no fresh pages to fault in
        # no cover pass needed: visible = shallow enough (and not hidden)
        if self.hidden is None:
            b = idx.level_bounds  # positions at depth <= d: counted by the level bounds
            if int(b[min(depth + 1, len(b) - 1)]) == idx.size:
                self._rows = None  # every row shown (a shallow trace): nothing to list
            else:
                self._rows = nonzero32(idx.depth <= depth)
        else:
            keep = idx.depth <= depth
            keep &= ~self.hidden
            self._set(nonzero32(keep))
        self.version += 1

    def initial_expand(self, max_roots: int = 5) -> None:
        """Open a fresh view usefully: groups are open, and the root calls too when there are
        only a few of them (a script's `<module>` or `main`)."""
        idx = self.index
        roots = [p for p in self.rows.tolist() if not idx.is_group(idx.node(p))]
        if len(roots) <= max_roots:
            for p in reversed(roots):
                self.expand(p)

    # -- single-node operations ---------------------------------------------------------------
    def expand(self, pos: int) -> bool:
        """Show the node's children (and below them whatever was expanded before)."""
        if not self.has_children(pos) or self.expanded[pos]:
            return False
        i = self.row_of(pos)
        self.expanded[pos] = True
        if i < 0:
            self.version += 1
            return True  # not visible: remembered for when it is
        new = self._visible_pieces(pos)  # spliced in with one copy, not two
        rows = self.rows  # an array: with every row shown there is no collapsed parent to get here
        if len(rows) + sum(len(p) for p in new) == self.index.size:
            self._rows = None  # now every row is shown: no copy at all
        else:
            self._rows = np.concatenate((rows[: i + 1], *new, rows[i + 1 :]), dtype=ROW_DTYPE)
        self.version += 1
        return True

    def collapse(self, pos: int) -> bool:
        if not self.expanded[pos] or not self.has_children(pos):
            return False
        self.expanded[pos] = False
        i = self.row_of(pos)
        if i >= 0:
            end = int(self.index.end[pos])
            if self._rows is None:  # every row shown: the rest is two ranges, made as one
                cut = end - pos - 1
                rows = np.arange(self.index.size - cut, dtype=ROW_DTYPE)
                rows[pos + 1 :] += cut
                self._rows = rows
            else:
                j = find_sorted(self._rows, end)
                self._rows = np.concatenate((self._rows[: i + 1], self._rows[j:]))
        self.version += 1
        return True

    def toggle(self, pos: int) -> bool:
        return self.collapse(pos) if self.expanded[pos] else self.expand(pos)

    def subtree_rows_if_expanded(self, pos: int) -> int:
        """How many rows `expand_subtree(pos)` would add."""
        lo, hi = pos + 1, int(self.index.end[pos])
        if self.hidden is None:
            return hi - lo
        return int(hi - lo - np.count_nonzero(self.hidden[lo:hi]))

    def expand_subtree(self, pos: int, force: bool = False, guard: int = EXPAND_GUARD) -> bool:
        """Expand the node and everything below it. Refuses (returns False) when that adds more
        than `guard` rows, unless forced."""
        if not self.has_children(pos):
            return True
        if not force and self.subtree_rows_if_expanded(pos) > guard:
            return False
        self.collapse(pos)
        self.expanded[pos : int(self.index.end[pos])] = True
        self.expanded[pos] = False
        self.expand(pos)
        self.version += 1
        return True

    def reveal(self, pos: int) -> None:
        """Expand every ancestor so that `pos` is a visible row (unless a filter hides it)."""
        self.open_chain(self.index.ancestors(pos))

    def open_chain(self, chain: list[int]) -> None:
        """Expand the given top-down chain of positions with one splice."""
        first = -1
        for p in chain:
            if not self.expanded[p]:
                if first < 0 and self.row_of(p) >= 0:
                    first = p
                self.expanded[p] = True
        if first >= 0:
            self.expanded[first] = False
            self.expand(first)
        elif chain and self.row_of(chain[0]) < 0:
            self.rebuild()
        self.version += 1

    def hot_path(self, pos: int) -> int:
        """Follow the most expensive visible child down from `pos`, expanding; return the last.

        Each step is the index's precomputed heaviest child: O(depth), whatever the fan-out.
        Only when a filter hides that child are the visible children scanned (a visible
        heaviest child is also the first heaviest of the visible ones; a hidden one says
        nothing about the others)."""
        idx = self.index
        hidden = self.hidden
        chain = []
        p = pos
        while True:
            h = idx.heaviest_child(p)
            if h < 0:
                break
            if hidden is not None and hidden[h]:
                kids = self.visible_children(p)
                if len(kids) == 0:
                    break
                h = int(kids[np.argmax(idx.run[idx.order[kids]])])
            chain.append(p)
            p = h
        self.open_chain(chain)
        return p

    # -- carrying state to a new index (live growth, grouping toggle) ---------------------------
    def carry_to(self, index: TreeIndex) -> "TreeRows":
        """A view of a new index with the same nodes expanded (matched by call id / group key).

        When `index` grew from this view's index (`grow.grow_index`) and no filter is on, the
        old rows are moved and the new calls that show (those hung under a shown, expanded
        node) merged in: no pass over the whole tree. Otherwise the view is rebuilt."""
        growth = index.growth
        if growth is not None and growth.grew_from() is self.index and not self.filters.active:
            return self._carry_grown(index, growth.moves)
        return self.carry_full(index)

    def _carry_grown(self, index: TreeIndex, moves: Moves) -> "TreeRows":
        old = self.index
        P, M0 = moves.first_moved, old.size
        exp = np.zeros(index.size, dtype=bool)
        exp[:P] = self.expanded[:P]
        if P < M0:
            moved = moves.move(np.arange(P, M0, dtype=np.int64))
            exp[moved] = self.expanded[P:M0]
        new = TreeRows(index, self.filters, expanded=exp)
        # new calls that show: under the top level, or under an old node that shows, expanded
        # (decided once per such node: they are few, the new calls under them many)
        at = moves.attach_at
        shows = at < 0
        inner = np.flatnonzero(~shows)
        if len(inner):
            ap = at[inner]
            ok = self.expanded[ap]
            if self._rows is not None:
                i = np.searchsorted(self._rows, ap)
                i = np.minimum(i, max(len(self._rows) - 1, 0))
                ok &= (self._rows[i] == ap) if len(self._rows) else False
            shows[inner] = ok
        add = moves.new_tops[shows[moves.top_attachment]]
        if len(add) > 1 and (add[1:] < add[:-1]).any():
            add = np.sort(add)
        add = add.astype(ROW_DTYPE)
        rows = self.rows if self._rows is not None else np.arange(M0, dtype=ROW_DTYPE)
        cut = find_sorted(rows, P)
        tail = rows[cut:]
        if len(tail):
            tail = moves.move(tail.astype(np.int64))
            tail = np.sort(np.concatenate((tail, add)))
            merged = np.concatenate((rows[:cut], tail), dtype=ROW_DTYPE)
            new._set(merged)
        elif self._rows is not None and len(rows) + len(add) < index.size:
            new._rows, new._row_buf = self._append_rows(rows, add)
        else:
            new._set(np.concatenate((rows, add), dtype=ROW_DTYPE))
        new.version = 1
        return new

    def carry_full(self, index: TreeIndex) -> "TreeRows":
        """`carry_to` by a whole pass: expanded nodes matched by id (merged call paths by the
        calls they hold), rows rebuilt."""
        old = self.index
        expanded = np.zeros(index.size, dtype=bool)
        ids = old.order[np.flatnonzero(self.expanded)]
        if old.merged or index.merged:  # to or from merged call paths: by the calls they hold
            calls = same_nodes(old, ids, index)
        elif old.data.window is not None or index.data.window is not None:  # to or from a window
            calls = same_calls(old.data, ids[ids <= old.n], index.data, index.n)
            calls = calls[calls > 0]
        else:
            calls = ids[ids <= min(old.n, index.n)]
        expanded[index.pos_of[calls]] = True
        collapsed_groups = {g.key for g in old.groups if not self.expanded[old.pos_of[g.node]]}
        for g in index.groups:
            if g.key not in collapsed_groups:
                expanded[index.pos_of[g.node]] = True
        new = TreeRows(index, self.filters, expanded=expanded)
        new.rebuild()
        return new

    # -- internals ---------------------------------------------------------------------------
    def _append_rows(self, rows: np.ndarray, add: np.ndarray) -> np.ndarray:
        """`rows` then `add` (positions past them), for a view carried to a grown index. Rows
        are never written in place (a change makes a new array), so the rows of a chain of
        carried views can share one buffer: the new rows are written past the end that the
        previous view sees, when its rows are the newest claim on that buffer -- each update
        then writes its new rows only, not every visible row again (a busy session shows ~10^6
        rows under <module>). `_row_buf` = [buffer, length claimed by the newest view]."""
        n0, n = len(rows), len(rows) + len(add)
        ent = self._row_buf
        if ent is not None and ent[1] == n0 and rows.base is ent[0] and n <= len(ent[0]):
            ent[0][n0:n] = add
        else:  # a new buffer, with room (capacity never written costs no memory)
            ent = [np.empty(max(1024, 4 * n), dtype=ROW_DTYPE), 0]
            ent[0][:n0] = rows
            ent[0][n0:n] = add
        ent[1] = n
        return ent[0][:n], ent

    def _set(self, rows: np.ndarray) -> None:
        """Make `rows` (increasing positions) the visible rows; all of them: not kept."""
        self._rows = None if len(rows) == self.index.size else rows.astype(ROW_DTYPE, copy=False)

    def _set_pieces(self, pieces: list[np.ndarray]) -> None:
        """`_set` of consecutive pieces, concatenated only when that is not every position."""
        if sum(len(p) for p in pieces) == self.index.size:
            self._rows = None
        else:
            self._rows = np.concatenate(pieces, dtype=ROW_DTYPE)

    def _visible_pieces(self, pos: int) -> list[np.ndarray]:
        """Visible positions strictly inside the subtree of `pos` (-1: the whole tree), given
        that `pos` itself is expanded, as sorted consecutive pieces (joined by the caller)."""
        idx = self.index
        lo = pos + 1
        hi = int(idx.end[pos]) if pos >= 0 else idx.size
        if hi <= lo:
            return [np.empty(0, dtype=ROW_DTYPE)]
        exp = self.expanded[lo:hi]
        n_exp = int(np.count_nonzero(exp))
        if n_exp <= SPLICE_MAX_EXPANDED or n_exp * SPLICE_ROWS_PER_EXPANDED <= hi - lo:
            return self._splice(pos, np.flatnonzero(exp) + lo)
        end = idx.end[lo:hi]
        hidden = self.hidden[lo:hi] if self.hidden is not None else None
        # a collapsed node = has children and is not expanded. Has children = the next position
        # is one level deeper (preorder): int16 compares, no position-sized temporaries
        depth = idx.depth
        collapsed = np.empty(hi - lo, dtype=bool)
        np.greater(depth[lo + 1 : hi], depth[lo : hi - 1], out=collapsed[:-1])
        collapsed[-1] = False  # the last position of a subtree is a leaf
        collapsed &= ~exp
        keep = ~cover(collapsed, end, lo, include_self=False)
        if hidden is not None:
            keep &= ~hidden
        return [nonzero32(keep, lo)]

    def _splice(self, pos: int, expanded: np.ndarray) -> list[np.ndarray]:
        """`_visible_pieces` from the per-depth lists, given the (few) expanded positions below.

        An expanded node shows its children when it is itself shown: its parent is `pos` or a
        shown expanded node, and no filter hides it (preorder: parents are decided first). The
        rows are then the children of `pos` with, after each shown expanded child, its own rows
        (the same recursively; an explicit stack, as recursion can be thousands deep)."""
        idx = self.index
        hidden = self.hidden
        shown_below: dict[int, list[int]] = {pos: []}
        for e in expanded.tolist():
            par = idx.parent_pos(e)
            below = shown_below.get(par)
            if below is not None and int(idx.end[e]) > e + 1 and (hidden is None or not hidden[e]):
                below.append(e)
                shown_below[e] = []

        def kids(p: int) -> np.ndarray:
            k = idx.children(p) if p >= 0 else idx.top_level()
            return k[~hidden[k]] if hidden is not None and len(k) else k

        pieces: list[np.ndarray] = []
        # frames: [children of p, p's shown expanded children, next of those, next child to emit]
        stack: list[list] = [[kids(pos), shown_below[pos], 0, 0]]
        while stack:
            frame = stack[-1]
            k, opened, j, start = frame
            if j < len(opened):
                e = opened[j]
                i = find_sorted(k, e) + 1
                pieces.append(k[start:i])
                frame[2], frame[3] = j + 1, i
                stack.append([kids(e), shown_below[e], 0, 0])
            else:
                pieces.append(k[start:])
                stack.pop()
        return pieces
