"""Search over the whole trace, not just the expanded rows.

Names: the pattern is matched against the function table (thousands of entries, not millions
of calls), giving a boolean lookup table by function id; one gather over the preorder turns it
into sorted hit positions. Argument/result text: the pattern runs over each STRS blob as bytes
and each match is mapped to its string id with a binary search over the chunk's offsets; calls
whose argument, result or mark text is one of those ids are hits. Hits are positions in
preorder, so next/previous is a `searchsorted`. Group rows (a process, thread or task) match
by the title their row shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .index import TreeIndex
from .loader import TraceData
from .units import plural


class QueryError(ValueError):
    """A pattern that does not compile; the message is one line for the find bar."""


@dataclass(frozen=True)
class Query:
    text: str
    regex: bool = False
    case: bool = False  # case-sensitive
    in_text: bool = False  # also search argument / result / exception text

    def compile(self) -> re.Pattern[str]:
        return _compile(self.text, self.regex, self.case, str)

    def compile_bytes(self) -> re.Pattern[bytes]:
        return _compile(self.text, self.regex, self.case, bytes)


def _compile(text: str, regex: bool, case: bool, kind: type) -> re.Pattern:
    if not text:
        raise QueryError("empty search")
    source = text if regex else re.escape(text)
    flags = 0 if case else re.IGNORECASE
    try:
        if kind is bytes:
            return re.compile(source.encode("utf-8", "surrogatepass"), flags)
        return re.compile(source, flags)
    except re.error as exc:
        raise QueryError(f"bad regular expression: {exc}") from None


def validate(query: Query) -> str | None:
    """None when the query can run, else the reason (shown while typing)."""
    try:
        query.compile()
    except QueryError as exc:
        return str(exc)
    return None


def name_matches(pattern: re.Pattern[str], module: str, qualname: str) -> bool:
    """Does a function's name (or module.name) match? (The diff view's search asks it too.)"""
    return bool(pattern.search(qualname) or pattern.search(f"{module}.{qualname}"))


def name_lut(data: TraceData, pattern: re.Pattern[str]) -> np.ndarray:
    """Boolean lookup table by function id: does the name (or module.name) match?"""
    lut = np.zeros(len(data.functions), dtype=bool)
    for f in data.functions:
        if f is not None and name_matches(pattern, f.module, f.qualname):
            lut[f.id] = True
    return lut


def _literal_search(needle: bytes) -> Callable[[bytes, int], tuple[int, int] | None]:
    """A plain-text search as fast as `bytes.find` (~10x a regular expression over hundreds of
    MB of argument text)."""
    n = len(needle)

    def search(hay: bytes, pos: int) -> tuple[int, int] | None:
        i = hay.find(needle, pos)
        return None if i < 0 else (i, i + n)

    return search


def _regex_search(pattern: re.Pattern[bytes]) -> Callable[[bytes, int], tuple[int, int] | None]:
    def search(blob: bytes, pos: int) -> tuple[int, int] | None:
        m = pattern.search(blob, pos)
        return None if m is None else m.span()

    return search


def text_lut(data: TraceData, pattern: re.Pattern[bytes], cancelled: Callable[[], bool] = lambda: False,
             literal: bytes | None = None, case: bool = False, among: np.ndarray | None = None) -> np.ndarray:
    """Boolean lookup table by string id: does the text match?

    `literal` (the query's text when it is not a regular expression; `pattern` is then its
    escaped form) takes the `bytes.find` road, with `case` its case sensitivity: without it,
    text and needle are ASCII-lowered, which is exactly what `re.IGNORECASE` does for bytes.
    `among` (sorted string ids): only the texts of chunks holding one of them are looked at."""
    lut = np.zeros(data.strings.count + 1, dtype=bool)
    fold = literal is not None and not case
    search = _literal_search(literal.lower() if fold else literal) if literal else _regex_search(pattern)
    for chunk in data.strings.decoded_chunks(among=among):
        if cancelled():
            break
        blob = bytes(chunk.blob)
        if fold:
            blob = blob.lower()  # same length, same offsets
        offsets = np.frombuffer(chunk.offsets, dtype=np.uint32) if chunk.offsets.itemsize == 4 else np.array(chunk.offsets)
        pos = 0
        while True:
            m = search(blob, pos)
            if m is None:
                break
            start, end = m
            # the needle in the offsets' own type: a Python int would convert the whole array
            i = int(np.searchsorted(offsets, offsets.dtype.type(start), side="right")) - 1
            i = min(i, chunk.count - 1)
            stop = int(offsets[i + 1])
            if end <= stop or start == end:
                lut[chunk.first_id + i] = True
                pos = stop if stop > start else start + 1
            else:
                # a match running across two strings: check this string alone
                if search(blob[int(offsets[i]) : stop], 0):
                    lut[chunk.first_id + i] = True
                pos = stop
            if pos >= len(blob):
                break
    return lut


def text_calls(data: TraceData, query: Query, n_calls: int, cancelled: Callable[[], bool] = lambda: False
               ) -> np.ndarray:
    """Per call 0..n_calls: does its argument, result or one of its marks' text match?"""
    literal = None if query.regex else query.text.encode("utf-8", "surrogatepass")
    among = None
    if data.window is not None:  # (a window's calls name a few of the session's texts: those chunks only)
        among = np.unique(np.concatenate([data.col("args")[: n_calls + 1], data.col("val")[: n_calls + 1],
                                          data.mark_col("ref")]).astype(np.int64))
    tl = text_lut(data, query.compile_bytes(), cancelled, literal, query.case, among)
    top = len(tl) - 1
    by_call = np.zeros(n_calls + 1, dtype=bool)
    for col in ("args", "val"):
        by_call |= tl[np.minimum(data.col(col)[: n_calls + 1], top)]
    mc = data.mark_col("call")
    ref = data.mark_col("ref")
    sel = tl[np.minimum(ref, top)] & (mc <= n_calls)
    by_call[mc[sel]] = True
    by_call[0] = False
    return by_call


def find(index: TreeIndex, query: Query, hidden: np.ndarray | None = None,
         cancelled: Callable[[], bool] = lambda: False) -> np.ndarray:
    """Sorted positions of every call that matches (not hidden by a filter)."""
    data = index.data
    n = index.n
    fn = index.node_funcs()
    pattern = query.compile()
    nl = name_lut(data, pattern)
    by_id = nl[np.minimum(fn, len(nl) - 1)]
    by_id[0] = False
    if query.in_text and data.strings.count:
        # (a merged path: one of its calls has the text)
        by_id |= index.nodes_of_calls(text_calls(data, query, index.n_calls, cancelled))
    order = index.order
    mask = np.zeros(index.size, dtype=bool)
    calls = order <= n
    mask[calls] = by_id[order[calls]]
    for g in index.groups:  # process, thread and task rows: by the title the row shows
        if pattern.search(g.title):
            mask[index.pos_of[g.node]] = True
    if hidden is not None:
        mask &= ~hidden
    return np.flatnonzero(mask)


def hit_status(hits: np.ndarray, pos: int) -> str:
    """What the status line says of a search's hits: `hit 3 of 12` on a hit, else `12 hits`
    (or `no hits`, in the error colour)."""
    n = len(hits)
    i = int(np.searchsorted(hits, pos)) if n else 0
    if n and i < n and hits[i] == pos:
        return f"hit {i + 1:,} of {n:,}"
    return plural(n, "hit") if n else "[$error]no hits[/]"


def next_hit(hits: np.ndarray, pos: int, forward: bool = True) -> int:
    """Index into `hits` of the next (or previous) hit after `pos`, wrapping; -1 if none."""
    if len(hits) == 0:
        return -1
    if forward:
        i = int(np.searchsorted(hits, pos, side="right"))
        return i if i < len(hits) else 0
    i = int(np.searchsorted(hits, pos, side="left")) - 1
    return i if i >= 0 else len(hits) - 1
