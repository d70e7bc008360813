"""Rows when every position is shown (kept unmaterialised) and rows built from masks in chunks
agree with the plain definition of what is visible, query by query, on generated traces."""

from __future__ import annotations

import random

import numpy as np
import pytest

from flowtrace_tui.model import TreeRows, build_index
from flowtrace_tui.model import rows as rows_mod
from flowtrace_tui.model.filters import Filters

from trace_builder import load, random_trace



def plain_visible(rows: TreeRows) -> list[int]:
    """Positions whose ancestors are all expanded and that no filter hides."""
    ix = rows.index
    out = []
    for p in range(ix.size):
        if rows.hidden is not None and rows.hidden[p]:
            continue
        if all(rows.expanded[a] for a in ix.ancestors(p)):
            out.append(p)
    return out


def check_queries(rows: TreeRows) -> None:
    want = plain_visible(rows)
    got = rows.rows
    assert got.dtype == np.int32
    assert got.tolist() == want
    assert len(rows) == len(want)
    assert [rows.pos(r) for r in range(len(rows))] == want
    row = {p: i for i, p in enumerate(want)}
    for p in range(-1, rows.index.size + 1):
        assert rows.row_of(p) == row.get(p, -1)
        assert rows.rows_before(p) == sum(1 for q in want if q < p)


@pytest.mark.parametrize("seed", range(12))
def test_every_row_shown_and_back(seed):
    """Expanding to a depth that shows everything keeps no array; collapsing a node from there,
    expanding it again (everything shown again), filters and rebuilds all give the plain rows."""
    rng = random.Random(seed)
    ix = build_index(load(random_trace(seed).data(finish=rng.random() < 0.5)), grouped=rng.random() < 0.7)
    rows = TreeRows(ix)
    deepest = int(ix.depth.max())
    rows.expand_to_depth(deepest + 1)
    assert rows._rows is None  # every position shown: nothing listed
    check_queries(rows)
    parents = [p for p in range(ix.size) if rows.has_children(p)]
    for p in rng.sample(parents, min(4, len(parents))):
        assert rows.collapse(p)
        assert rows._rows is not None
        check_queries(rows)
        assert rows.expand(p)
        assert rows._rows is None  # the last collapsed node reopened: back to no array
        check_queries(rows)
    rows.expand_to_depth(deepest)  # the deepest level's parents closed: not everything shown
    check_queries(rows)
    rows.rebuild()
    check_queries(rows)
    rows.expand_subtree(0, force=True)
    check_queries(rows)
    rows.collapse_all()
    check_queries(rows)
    durs = sorted(int(d) for d in ix.dur[1 : ix.n + 1])
    rows.set_filters(Filters(min_dur_ns=durs[len(durs) // 3]))
    rows.expand_to_depth(deepest + 1)
    check_queries(rows)
    rows.set_filters(Filters())
    assert rows._rows is None  # the rebuild found everything shown
    check_queries(rows)
    moved = rows.carry_to(build_index(load(random_trace(seed).data(finish=True)), grouped=ix.grouped))
    check_queries(moved)


@pytest.mark.parametrize("base", [0, 5, 1000])
def test_nonzero32_in_chunks(base, monkeypatch):
    monkeypatch.setattr(rows_mod, "_NONZERO_CHUNK", 7)  # many chunks, uneven last one
    rng = np.random.default_rng(base)
    for n, p in [(0, 0.5), (1, 1.0), (50, 0.0), (50, 0.3), (64, 1.0), (101, 0.9)]:
        mask = rng.random(n) < p
        got = rows_mod.nonzero32(mask, base)
        assert got.dtype == np.int32
        assert got.tolist() == (np.flatnonzero(mask) + base).tolist()
