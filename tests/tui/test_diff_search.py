"""The diff view's search (model/diff_search.py): the call tree's query over the paths of two
runs -- names (a path only one run has too), regular expressions, case, argument text in
either run, and hidden paths left out."""

from __future__ import annotations

import numpy as np
import pytest

from flowtrace_tui.model.diff_search import find_paths
from flowtrace_tui.model.index import build_index
from flowtrace_tui.model.search import Query, QueryError, find, hit_status
from trace_builder import load, loop_nodes as loop, nested_session as session

from .test_diff_view import diff, table


def paths_found(ix, query: Query, hidden=None) -> list[str]:
    return [table(ix)[p][0].strip() for p in find_paths(ix, query, hidden).tolist()]


def test_names_as_the_call_tree_searches_them():
    ix = diff(session(loop(3)), session(loop(4, work="work2", raise_at=1)))
    # main, step, parse, work (gone: BASE only), work2 (new: NEW only)
    assert paths_found(ix, Query("work")) == ["work", "work2"]
    assert paths_found(ix, Query("WORK")) == ["work", "work2"]  # case-insensitive by default
    assert paths_found(ix, Query("WORK", case=True)) == []
    assert paths_found(ix, Query("^work$", regex=True)) == ["work"]
    assert paths_found(ix, Query("__main__.pa")) == ["parse"]  # module.name, as the tree's search
    assert paths_found(ix, Query("nothing")) == []
    with pytest.raises(QueryError):
        find_paths(ix, Query("(", regex=True))


@pytest.mark.parametrize("query", [Query("work"), Query("^(step|parse)$", regex=True), Query("__MAIN__.MAIN"),
                                   Query("i=3", in_text=True), Query("Error: bad", in_text=True, case=True)])
def test_the_call_tree_search_finds_the_same_functions(query):
    """In one run's paths, the diff's search finds the functions the call tree's search finds
    in that run's calls."""
    new = session(loop(4, work="work2", raise_at=2))
    ix = diff(session(loop(3)), new)
    data = load(new)
    tree = build_index(data, grouped=False)
    in_tree = {data.func(int(f)).qualname for f in tree.node_funcs()[tree.order[find(tree, query)]]}
    in_diff = {table(ix)[p][0].strip() for p in find_paths(ix, query).tolist() if ix.new.node[ix.node(p)]}
    assert in_diff == in_tree and in_tree


def test_argument_text_in_either_run_and_hidden_paths():
    ix = diff(session(loop(3)), session(loop(4, work="work2")))
    # i=3 is an argument of NEW's 4th step and work2 only; s='0' of parse's first call in both
    assert paths_found(ix, Query("i=3", in_text=True)) == ["step", "work2"]
    assert paths_found(ix, Query("s='0'", in_text=True)) == ["parse"]
    assert paths_found(ix, Query("i=3")) == []  # names only without the text toggle
    hidden = np.zeros(ix.size, dtype=bool)
    hidden[4] = True  # work2's row hidden (the unchanged filter hides rows so)
    assert paths_found(ix, Query("i=3", in_text=True), hidden) == ["step"]


def test_hit_status():
    hits = np.array([2, 5, 9])
    assert hit_status(hits, 5) == "hit 2 of 3" and hit_status(hits, 4) == "3 hits"
    assert hit_status(hits[:1], 0) == "1 hit" and hit_status(hits[:0], 0) == "[$error]no hits[/]"
