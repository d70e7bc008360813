"""Calls whose CALL row comes after their parent's EXIT row, for the readers that stream a file.

Older Python recorders (before the fix in recorder/python.py's drain, "exits of parents of
waiting calls wait too") could write a parent's EXIT row in an earlier chunk than the CALL
rows of children held back by a call-id gap. `load()` links calls by their parent ids and does
not mind; the readers that go through the file once in order (`flowtrace print`, the profile
and timeline passes behind the exports and `stats`) would take such a child for a top-level
call, its parent having ended. `survey()` notes these parents (`note_late`); `chunks()` then
hands their EXIT rows on only after the EXIT row of their last such child
(`parents_after_children`), as the file would have had them. Nothing happens for a file
without them (every file the recorders write now).
"""

from __future__ import annotations

from array import array
from typing import Iterable, Iterator, Sequence

from . import decode as D
from . import format as F
from .format import Column

_EXIT_COLUMNS = (("call", "I"), ("t1", "q"), ("how", "B"), ("val", "I"))


def note_late(late: dict[int, int], ids: Iterable[int], parents: Sequence[int], ended: bytearray) -> None:
    """Record in `late` (parent -> its last child started after the parent's EXIT row) the calls
    `ids` (with `parents`) whose parent has an EXIT row already (`ended[parent]`)."""
    if not any(map(ended.__getitem__, parents)):  # (at C speed: the usual answer)
        return
    for cid, p in zip(ids, parents):
        if ended[p]:
            late[p] = cid  # ids rise: the last one wins


def parents_after_children(records: Iterable[object], late: dict[int, int]) -> Iterator[object]:
    """`records` (decoded chunks in file order) with the EXIT row of each parent in `late` moved
    to just after the EXIT row of its last late child (calls of one thread end in the reverse
    order of their starts), or to the end when that child never ended."""
    waiting = dict(late)  # parent -> last late child, until that child's EXIT row is read
    by_child = {c: p for p, c in late.items()}
    held: dict[int, tuple[int, int, int, int]] = {}  # parent -> its EXIT row, while it waits
    for rec in records:
        if not waiting:  # every late parent placed: the rest passes as it is
            yield rec
            continue
        if isinstance(rec, D.ExitRows) and rec.rows:
            rows = list(zip(rec.call.values(), rec.t1.values(), rec.how.values(), rec.value.values()))
            out: list[tuple[int, int, int, int]] = []
            for r in rows:
                if r[0] in waiting:
                    held[r[0]] = r
                    continue
                out.append(r)
                p = by_child.pop(r[0], None)
                while p is not None:  # its last late child ended: its own end follows (and so on up)
                    del waiting[p]
                    r = held.pop(p, None)
                    if r is None:
                        break  # (its EXIT row is still to come, and passes)
                    out.append(r)
                    p = by_child.pop(p, None)
            if len(out) != len(rows) or out != rows:
                rec = _exit_rows(rec.base, out)
        yield rec
    if held:
        yield _exit_rows(0, list(held.values()))


def _exit_rows(base: int, rows: list[tuple[int, int, int, int]]) -> D.ExitRows:
    """An EXIT record of `rows` (call, t1, how, val), as decode.py makes them."""
    columns = []
    for (name, typecode), values in zip(_EXIT_COLUMNS, zip(*rows) if rows else ((),) * 4):
        arr = array(typecode, values)
        if not F._LITTLE:
            arr.byteswap()  # (Column data is little-endian)
        columns.append(Column(name, typecode, F.ENC_RAW, memoryview(arr.tobytes())))
    return D.ExitRows(base, len(rows), *columns)
