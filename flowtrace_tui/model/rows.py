"""Which nodes are on screen: a sorted array of positions (preorder), edited in place.

Because rows stay in preorder, the rows under a node are one contiguous slice: collapsing is
`searchsorted` + slice, expanding is a splice of the node's visible descendants. When only a
few nodes below it are expanded (the usual case: a first expansion, a hot path, a search hit's
ancestors) those rows are pieced together from the index's per-depth position lists, so the
cost is that of the rows shown, not of the subtree; otherwise one vectorised running-maximum
pass over the subtree finds them. Nothing here loops in Python over calls.
"""

from __future__ import annotations

import numpy as np

from .filters import Filters, cover, hidden_mask
from .index import TreeIndex, find_sorted

EXPAND_GUARD = 200_000  # `e` on a bigger subtree asks to be pressed again
# Piecing rows together costs a few microseconds of Python per expanded node below; the
# running-maximum pass ~10 ns per row of the subtree. Piece when that is clearly cheaper.
SPLICE_MAX_EXPANDED = 64
SPLICE_ROWS_PER_EXPANDED = 1024


class TreeRows:
    """Expanded state (per position) and the visible rows of one `TreeIndex`."""

    def __init__(self, index: TreeIndex, filters: Filters | None = None) -> None:
        self.index = index
        self.filters = filters or Filters()
        self.hidden = hidden_mask(index, self.filters)
        self.expanded = np.zeros(index.size, dtype=bool)
        for g in index.groups:
            self.expanded[index.pos_of[g.node]] = True
        self.rows = np.empty(0, dtype=np.int64)
        self.version = 0
        self.rebuild()

    # -- queries ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def pos(self, row: int) -> int:
        return int(self.rows[row])

    def row_of(self, pos: int) -> int:
        """Row index of a position, or -1 when it is not visible."""
        i = int(np.searchsorted(self.rows, pos))
        return i if i < len(self.rows) and self.rows[i] == pos else -1

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
        self.rows = self._visible_range(-1)
        self.version += 1

    def set_filters(self, filters: Filters) -> None:
        self.filters = filters
        self.hidden = hidden_mask(self.index, filters)
        self.rebuild()

    def with_filters(self, filters: Filters) -> "TreeRows":
        """A copy of this view with other filters (the O(N) work of `set_filters` without
        touching this object, so that a worker thread can do it while the UI keeps this one)."""
        new = self._like(self.index, filters)
        new.expanded = self.expanded.copy()
        new.rebuild()
        return new

    def collapse_all(self) -> None:
        self.expanded[:] = False
        keep = self.index.depth == 0  # only the top-level rows remain: no cover pass needed
        if self.hidden is not None:
            keep &= ~self.hidden
        self.rows = np.flatnonzero(keep)
        self.version += 1

    def expand_to_depth(self, depth: int) -> None:
        """Show `depth` levels below the top-level rows: every node above that level expanded."""
        np.less(self.index.depth, depth, out=self.expanded)  # in place: no fresh pages to fault in
        keep = self.index.depth <= depth  # no cover pass needed: visible = shallow enough
        if self.hidden is not None:
            keep &= ~self.hidden
        # every row shown (a shallow trace): counting is ~20x cheaper than listing the positions
        if np.count_nonzero(keep) == len(keep):
            self.rows = np.arange(len(keep), dtype=np.int64)
        else:
            self.rows = np.flatnonzero(keep)
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
        self.rows = np.concatenate((self.rows[: i + 1], *new, self.rows[i + 1 :]), dtype=np.int64)
        self.version += 1
        return True

    def collapse(self, pos: int) -> bool:
        if not self.expanded[pos] or not self.has_children(pos):
            return False
        self.expanded[pos] = False
        i = self.row_of(pos)
        if i >= 0:
            j = int(np.searchsorted(self.rows, self.index.end[pos]))
            self.rows = np.concatenate((self.rows[: i + 1], self.rows[j:]))
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
                h = int(kids[np.argmax(idx.dur[idx.order[kids]])])
            chain.append(p)
            p = h
        self.open_chain(chain)
        return p

    # -- carrying state to a new index (live growth, grouping toggle) ---------------------------
    def carry_to(self, index: TreeIndex) -> "TreeRows":
        """A view of a new index with the same nodes expanded (matched by call id / group key)."""
        old = self.index
        new = self._like(index, self.filters)
        new.expanded = np.zeros(index.size, dtype=bool)
        ids = old.order[np.flatnonzero(self.expanded)]
        calls = ids[ids <= min(old.n, index.n)]
        new.expanded[index.pos_of[calls]] = True
        collapsed_groups = {g.key for g in old.groups if not self.expanded[old.pos_of[g.node]]}
        for g in index.groups:
            if g.key not in collapsed_groups:
                new.expanded[index.pos_of[g.node]] = True
        new.rebuild()
        return new

    # -- internals ---------------------------------------------------------------------------
    def _like(self, index: TreeIndex, filters: Filters) -> "TreeRows":
        """A new view of `index` with `filters`; its `expanded` is set by the caller."""
        new = TreeRows.__new__(TreeRows)
        new.index = index
        new.filters = filters
        new.hidden = hidden_mask(index, filters)
        new.rows = np.empty(0, dtype=np.int64)
        new.version = 0
        return new

    def _visible_range(self, pos: int) -> np.ndarray:
        """Visible positions strictly inside the subtree of `pos` (-1: the whole tree), given
        that `pos` itself is expanded."""
        return np.concatenate(self._visible_pieces(pos), dtype=np.int64)

    def _visible_pieces(self, pos: int) -> list[np.ndarray]:
        """`_visible_range` as sorted consecutive pieces (concatenated by the caller)."""
        idx = self.index
        lo = pos + 1
        hi = int(idx.end[pos]) if pos >= 0 else idx.size
        if hi <= lo:
            return [np.empty(0, dtype=np.int64)]
        exp = self.expanded[lo:hi]
        n_exp = int(np.count_nonzero(exp))
        if n_exp <= SPLICE_MAX_EXPANDED or n_exp * SPLICE_ROWS_PER_EXPANDED <= hi - lo:
            return self._splice(pos, np.flatnonzero(exp) + lo)
        end = idx.end[lo:hi]
        hidden = self.hidden[lo:hi] if self.hidden is not None else None
        # a collapsed node = has children and is not expanded
        collapsed = (end - np.arange(lo, hi, dtype=np.int32)) > 1
        collapsed &= ~exp
        keep = ~cover(collapsed, end, lo, include_self=False)
        if hidden is not None:
            keep &= ~hidden
        return [np.flatnonzero(keep) + lo]

    def _splice(self, pos: int, expanded: np.ndarray) -> list[np.ndarray]:
        """`_visible_range` from the per-depth lists, given the (few) expanded positions below.

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
