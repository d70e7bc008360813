"""The diff view's search (`/`): the call tree's search over the paths of two runs.

The same query (`search.Query`: a name, or a regular expression, case, argument text) and the
same rules as the call tree's `search.find`: a path matches when its function's name (or
module.name) does (`search.name_matches`, over the diff's joint table of function keys: a path
only one run has is found too), or, with argument text on, when one of its calls in either run
has an argument, result or mark text that matches (`search.text_calls`). Hits are positions in
preorder, so `search.next_hit` walks them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .diff_tree import DiffIndex
from .search import Query, name_matches, text_calls


def find_paths(ix: DiffIndex, query: Query, hidden: np.ndarray | None = None,
               cancelled: Callable[[], bool] = lambda: False) -> np.ndarray:
    """Sorted positions of the paths that match (not hidden by the unchanged filter)."""
    pattern = query.compile()
    lut = np.array([name_matches(pattern, *key.partition(":")[::2]) for key in ix.names], dtype=bool)
    by_node = lut[ix.name_key]
    if query.in_text:
        for side in (ix.base, ix.new):
            if side.data.strings.count:
                by_merged = side.merged.nodes_of_calls(text_calls(side.data, query, side.merged.n_calls, cancelled))
                by_node |= by_merged[side.node]  # (merged node 0: the run lacks the path, never a hit)
    by_node[0] = False
    mask = by_node[ix.order]
    if hidden is not None:
        mask &= ~hidden
    return np.flatnonzero(mask)
