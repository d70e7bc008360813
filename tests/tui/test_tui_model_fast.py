"""The index's shortcuts (per-depth position lists, heaviest child) and the two ways rows are
computed (pieced together from the lists, or one running-maximum pass) agree with the plain
definitions, on generated traces with threads, generators and filters."""

from __future__ import annotations

import random

import numpy as np
import pytest

from flowtrace_tui.model import TreeRows, build_index
from flowtrace_tui.model import rows as rows_mod
from flowtrace_tui.model.filters import Filters
from flowtrace_tui.model.search import Query, find

from trace_builder import load, random_trace



def brute_children(ix, p: int) -> list[int]:
    return [q for q in range(p + 1, int(ix.end[p])) if ix.depth[q] == ix.depth[p] + 1]


@pytest.mark.parametrize("seed", range(20))
def test_levels_children_heaviest(seed):
    rng = random.Random(seed)
    ix = build_index(load(random_trace(seed).data(finish=rng.random() < 0.5)), grouped=rng.random() < 0.7)
    M = ix.size
    for d in range(int(ix.depth.max()) + 2):
        assert ix.level(d).tolist() == [p for p in range(M) if ix.depth[p] == d]
    assert ix.top_level().tolist() == [p for p in range(M) if ix.depth[p] == 0]
    for p in range(M):
        kids = brute_children(ix, p)
        assert ix.children(p).tolist() == kids
        durs = [int(ix.run[ix.node(k)]) for k in kids]
        assert ix.heaviest_child(p) == (kids[int(np.argmax(durs))] if kids else -1)
        sibs = brute_children(ix, ix.parent_pos(p)) if ix.parent_pos(p) >= 0 else ix.top_level().tolist()
        i = sibs.index(p)
        assert ix.prev_sibling(p) == (sibs[i - 1] if i else -1)


@pytest.mark.parametrize("seed", range(20))
def test_spliced_rows_equal_scanned_rows(seed, monkeypatch):
    """Random edits applied to two views, one always piecing rows together, one always
    scanning: the same rows, and the hot path ends on the same call, with and without filters."""
    rng = random.Random(seed)
    ix = build_index(load(random_trace(seed).data(finish=True)), grouped=rng.random() < 0.7)
    durs = sorted(int(d) for d in ix.dur[1 : ix.n + 1])
    filters = Filters(min_dur_ns=durs[len(durs) // 3]) if rng.random() < 0.5 else Filters()
    views = {}
    for mode, (few, per) in {"splice": (10**9, 0), "scan": (-1, 10**18)}.items():
        monkeypatch.setattr(rows_mod, "SPLICE_MAX_EXPANDED", few)
        monkeypatch.setattr(rows_mod, "SPLICE_ROWS_PER_EXPANDED", per)
        views[mode] = TreeRows(ix, filters)
    ops = [(rng.random(), rng.random(), rng.randint(0, 3)) for _ in range(40)]
    results = {}
    for mode, rows in views.items():
        few, per = (10**9, 0) if mode == "splice" else (-1, 10**18)
        monkeypatch.setattr(rows_mod, "SPLICE_MAX_EXPANDED", few)
        monkeypatch.setattr(rows_mod, "SPLICE_ROWS_PER_EXPANDED", per)
        seen = []
        for op, at, d in ops:
            if len(rows) == 0:
                break
            p = rows.pos(int(at * len(rows)))
            if op < 0.4:
                rows.toggle(p)
            elif op < 0.5:
                rows.expand_subtree(p, force=True)
            elif op < 0.6:
                rows.expand_to_depth(d)
            elif op < 0.7:
                rows.collapse_all()
            elif op < 0.85:
                seen.append(rows.hot_path(p))
            else:
                rows.reveal(int(at * ix.size))
            seen.append(rows.rows.tolist())
        rows.rebuild()
        seen.append(rows.rows.tolist())
        results[mode] = seen
    assert results["splice"] == results["scan"]


@pytest.mark.parametrize("case", [False, True])
def test_literal_text_search_equals_regex(case):
    d = load(random_trace(3).data(finish=True))
    ix = build_index(d)
    for text in ("v=1", "V=", "=", "v=9", "r", "zz"):
        plain = find(ix, Query(text, case=case, in_text=True)).tolist()
        rx = find(ix, Query(text.replace("=", "[=]"), regex=True, case=case, in_text=True)).tolist()
        assert plain == rx
