"""Set operations on sorted int64 id arrays, for the live index's updates (model/grow.py).

numpy has them (`np.unique`, `np.union1d`, `np.unique(..., return_inverse=True)` + a
scatter-add, `np.searchsorted`), but numpy 2's `np.unique` hashes (~8 ms for 5e4 ids, where a
sort and a pass take 0.5 ms) and sorts what is usually in order already: the ids of open calls,
their parents, the nodes new calls hang under in one thread. These check the order first and
sort only when they must; the results are the same as numpy's.
"""

from __future__ import annotations

import numpy as np

MISSING = np.iinfo(np.int64).min  # `lookup` of an id that is not there


def distinct(a: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (a new array)."""
    if len(a) < 2:
        return a.copy()
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def unique(*parts: np.ndarray) -> np.ndarray:
    """np.unique of the parts together (int64). numpy 2's np.unique hashes (~8 ms for 5e4 ids,
    a sort and a pass take 0.5); and here each part is usually in order already (ids of open
    calls, their parents, the nodes the new calls hang under in a single thread): then a check
    and a pass, and only the few distinct values left are sorted together."""
    out = []
    for a in parts:
        a = np.asarray(a, dtype=np.int64)
        if len(a) > 1 and (a[1:] < a[:-1]).any():
            a = a[::-1] if not (a[1:] > a[:-1]).any() else np.sort(a)
        out.append(distinct(a))
    if len(out) == 1:
        return out[0]
    return distinct(np.sort(np.concatenate(out)))


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.union1d of two sorted arrays of distinct values (int64), without a sort when one is
    empty or all of one comes after the other (the usual case)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if not len(b):
        return a.copy()
    if not len(a):
        return b.copy()
    if a[-1] < b[0]:
        return np.concatenate((a, b))
    if b[-1] < a[0]:
        return np.concatenate((b, a))
    c = np.concatenate((a, b))
    c.sort(kind="stable")  # two sorted runs: merged in one pass
    return distinct(c)


def sum_by_key(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (sorted) and the sum of the values of each, over (keys, values) parts (int64):
    `np.unique(keys, return_inverse=True)` and a scatter-add, without the sort when a part's
    keys are in order (increasing or decreasing: a run per key, summed by reduceat)."""
    ids, sums = [], []
    for k, v in parts:
        k = np.asarray(k, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        if not len(k):
            continue
        if len(k) > 1 and (k[1:] < k[:-1]).any():
            if (k[1:] > k[:-1]).any():
                o = np.argsort(k, kind="stable")
                k, v = k[o], v[o]
            else:
                k, v = k[::-1], v[::-1]
        starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
        ids.append(k[starts])
        sums.append(np.add.reduceat(v, starts))
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(ids) == 1:
        return ids[0], sums[0]
    return sum_by_key((np.concatenate(ids), np.concatenate(sums)))



def lookup(ids: np.ndarray, vals: np.ndarray, want: np.ndarray) -> np.ndarray:
    """`vals` at the positions of `want` in the sorted `ids`; MISSING where absent."""
    out = np.full(len(want), MISSING, dtype=np.int64)
    if len(ids) and len(want):
        i = np.searchsorted(ids, want)
        i[i == len(ids)] = 0
        hit = ids[i] == want
        out[hit] = vals[i[hit]]
    return out
