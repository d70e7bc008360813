"""Every call of a session as a complete `Call` (its end, result, marks), in id order, without
holding the session: what the exports that list calls one by one (`json`, `chrome`) need.

A call's CALL row comes early and its EXIT row and marks later, anywhere up to the end of the
file (the `<module>` call ends last). So a first pass sorts the EXIT and MARK rows by call id
into files on disk, one per window of 2^16 ids (`_Spill`); the second pass reads the CALL rows
in order and, entering a window, loads that window's ends and marks (a few MB at most).

Calls that never ended are kept (`SessionInfo.stash`) with the parents they were called from:
the Chrome export ends such a call where its caller ended (`SessionInfo.call`).
"""

from __future__ import annotations

import bisect
import os
import struct
import tempfile
from array import array
from typing import Any, Iterator

from . import format as F
from . import decode as D
from .reader import Call, Mark, marks_of_row
from .scan import CheckedPass, Outlook, SessionInfo, Texts, _read_chunk, chunks, surveyed

WINDOW_BITS = 16
_BLOCK = struct.Struct("<BI")  # kind (0 exits, 1 marks), rows
_EXIT_TYPES = ("I", "q", "B", "I")  # call, t1, how, val
_MARK_TYPES = ("I", "q", "B", "I", "I", "I", "q", "q")  # call, t, kind, ref, other, n, run, span


class _Spill:
    """EXIT and MARK rows sorted into one file per window of call ids."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.files: dict[int, Any] = {}

    def path(self, window: int) -> str:
        return os.path.join(self.folder, f"w{window}")

    def add(self, kind: int, columns: list[list[int]], types: tuple[str, ...]) -> None:
        ids = columns[0]
        if not ids:
            return
        low, high = min(ids) >> WINDOW_BITS, max(ids) >> WINDOW_BITS
        if low == high:
            self._write(low, kind, columns, types)
            return
        rows: dict[int, list[int]] = {}
        for i, cid in enumerate(ids):
            rows.setdefault(cid >> WINDOW_BITS, []).append(i)
        for window, picked in rows.items():
            self._write(window, kind, [[col[i] for i in picked] for col in columns], types)

    def _write(self, window: int, kind: int, columns: list[list[int]], types: tuple[str, ...]) -> None:
        f = self.files.get(window)
        if f is None:
            if len(self.files) >= 64:  # a bounded number of open files
                for other in self.files.values():
                    other.close()
                self.files.clear()
            f = self.files[window] = open(self.path(window), "ab")
        f.write(_BLOCK.pack(kind, len(columns[0])))
        for tc, col in zip(types, columns):
            f.write(array(tc, col).tobytes())

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()

    def load(self, window: int) -> tuple[dict[int, tuple[int, int, int]], dict[int, list[tuple[int, ...]]]]:
        """The window's ends (call -> (t1, how, val)) and marks (call -> rows in file order)."""
        ends: dict[int, tuple[int, int, int]] = {}
        marks: dict[int, list[tuple[int, ...]]] = {}
        path = self.path(window)
        if not os.path.exists(path):
            return ends, marks
        with open(path, "rb") as f:
            data = memoryview(f.read())
        os.unlink(path)
        pos = 0
        while pos < len(data):
            kind, n = _BLOCK.unpack_from(data, pos)
            pos += _BLOCK.size
            cols = []
            for tc in _EXIT_TYPES if kind == 0 else _MARK_TYPES:
                col = array(tc)
                size = n * col.itemsize
                col.frombytes(data[pos : pos + size])
                pos += size
                cols.append(col)
            if kind == 0:
                ends.update(zip(cols[0], zip(cols[1], cols[2], cols[3])))
            else:
                for row in zip(*cols):
                    marks.setdefault(row[0], []).append(row)
        return ends, marks


def _spill_pass(info: SessionInfo, spill: _Spill) -> set[int]:
    """Sort the ends and marks; return the calls to keep for `SessionInfo.call` (the calls that
    never ended and their parents)."""
    unfinished = info.unfinished
    keep = set(unfinished)
    for rows in chunks(info, _ROWS):
        if not isinstance(rows, D.CallRows):
            _spill_rows(spill, rows)
        elif unfinished:
            _keep_parents(rows, unfinished, keep)
    spill.close()
    return keep


_ROWS = frozenset({F.CALL, F.EXIT, F.MARK})
_RETURN = F.END_RETURN


def _spill_rows(spill: _Spill, rows: D.ExitRows | D.MarkRows) -> None:
    """An EXIT or MARK chunk's rows into the spill files."""
    if isinstance(rows, D.ExitRows):
        spill.add(0, [col.values() for col in (rows.call, rows.t1, rows.how, rows.value)], _EXIT_TYPES)
        return
    columns = [col.values() for col in (rows.call, rows.t, rows.kind, rows.ref, rows.other, rows.n,
                                         rows.run, rows.span)]
    known = [i for i, k in enumerate(columns[2]) if k in F.MARK_NAMES]  # newer kinds: skipped
    if len(known) != len(columns[2]):
        columns = [[col[i] for i in known] for col in columns]
    spill.add(1, columns, _MARK_TYPES)


def _keep_parents(rows: D.CallRows, unfinished: list[int], keep: set[int]) -> None:
    """Add to `keep` the parents of the calls of `unfinished` (sorted) that `rows` start."""
    first, last = rows.base, rows.base + rows.rows
    lo = bisect.bisect_left(unfinished, first)
    if lo < len(unfinished) and unfinished[lo] < last:
        par = rows.parent.values()
        for cid in unfinished[lo : bisect.bisect_left(unfinished, last)]:
            if par[cid - first]:
                keep.add(par[cid - first])


def _checked_spill_pass(look: Outlook, spill: _Spill) -> tuple[SessionInfo, set[int]]:
    """`_spill_pass` of a glanced session, checking the file as it goes (`CheckedPass`): the
    calls that never ended are known at its end only, so the CALL chunks that start them are
    read again then (a few, from where the pass saw them)."""
    checked = CheckedPass(look)
    call_chunks: list[tuple[int, int]] = []  # (first id, offset) of each CALL chunk
    for rows in checked.records(_ROWS):
        if isinstance(rows, D.CallRows):
            if rows.rows:
                call_chunks.append((rows.base, checked.checked))
        else:
            _spill_rows(spill, rows)
    spill.close()
    info = checked.info
    unfinished = info.unfinished
    keep = set(unfinished)
    with open(info.source, "rb") as f:
        for i in sorted({bisect.bisect_right(call_chunks, (cid, 1 << 62)) - 1 for cid in unfinished}):
            rows = D.decode(_read_chunk(f, call_chunks[i][1]))
            assert isinstance(rows, D.CallRows)
            _keep_parents(rows, unfinished, keep)
    return info, keep


def ordered_calls(info: SessionInfo) -> Iterator[Call]:
    """Every call, complete, in id order (two passes over the file; see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="flowtrace-") as folder:
        spill = _Spill(folder)
        keep = _spill_pass(info, spill)
        yield from _calls_pass(info, spill, keep)


def checked_calls(session: SessionInfo | Outlook) -> tuple[SessionInfo, Iterator[Call]]:
    """The survey of a surveyed or glanced session and its calls (`ordered_calls`); a glanced
    one is checked by the first pass, which runs now, so that the survey is complete before
    the first call is asked for (an export's header says how the session ended)."""
    if not isinstance(session, Outlook) or not session.streamable:
        info = surveyed(session)
        return info, ordered_calls(info)
    folder = tempfile.TemporaryDirectory(prefix="flowtrace-")
    try:
        spill = _Spill(folder.name)
        info, keep = _checked_spill_pass(session, spill)
    except BaseException:
        folder.cleanup()
        raise

    def calls() -> Iterator[Call]:
        with folder:
            yield from _calls_pass(info, spill, keep)

    return info, calls()


def _calls_pass(info: SessionInfo, spill: _Spill, keep: set[int]) -> Iterator[Call]:
    """The second pass: the CALL rows in order, each call completed from the spill files."""
    texts = Texts(info)
    functions, text = info.functions, texts.get
    window, ends, marks = -1, {}, {}
    try:
        for rows in chunks(info, {F.CALL}, texts):
            base = rows.base
            columns = (rows.parent, rows.function, rows.thread, rows.t0, rows.args, rows.task, rows.flag)
            for cid, p, f, th, t, a, k, fl in zip(range(base, base + rows.rows), *(c.values() for c in columns)):
                if cid >> WINDOW_BITS != window:
                    window = cid >> WINDOW_BITS
                    ends, marks = spill.load(window)
                call = Call(cid, p or None, th, functions[f], t, text(a), k or None, bool(fl & F.CALL_PARTIAL))
                found = marks.get(cid)
                if found is not None:
                    call.marks = [m for _c, tm, kd, ref, oth, n, run, span in found
                                  for m in marks_of_row(cid, F.MARK_NAMES[kd], tm, text(ref), oth, n, run, span)]
                end = ends.get(cid)
                if end is not None:  # (after the marks: a raise-here end adds the last one)
                    if end[1] == _RETURN:  # (`_set_end`'s commonest case, inline)
                        call.end, call.end_ns, call.result = "return", end[0], text(end[2])
                    else:
                        _set_end(call, end, text)
                if cid in keep:
                    info.stash[cid] = call
                yield call
    finally:
        texts.close()


def _set_end(call: Call, end: tuple[int, int, int], text: Any) -> None:
    t1, how, val = end
    if how == F.END_RETURN:
        call.end, call.end_ns, call.result = "return", t1, text(val)
    elif how == F.END_RAISE or how == F.END_RAISE_HERE:
        call.end, call.end_ns, call.exception = "raise", t1, text(val)
        if how == F.END_RAISE_HERE:  # (1.6) raised here: the call's last mark (after its MARK rows)
            call.marks.append(Mark("raise", t1, call.exception, None))
    else:
        call.stopped_ns = t1
