"""The newest calls of a followed session read from the end of its file: the live view's window
(window.py) while the reads in file order are far behind.

The explorer reads a session in file order (source.py): every index, search and statistic
needs every call, and a call's row is only known once every chunk before it is read. A busy
program writes tens of MB a second (a busy loop with arguments: ~60), so at the start of `flowtrace-tui run` (the 3-7 MB written
while the explorer's UI came up) and whenever the reads fall behind on a loaded machine, the
newest calls waited 1-2 s for the reads of those before them. `NewestReader` finds the file's
chunks past the reads by their headers alone (`ChunkReader.spans`), reads only the last ones,
those that hold the newest `count` calls, and makes of them a window as `window_data` makes one
of the calls read in order:

- of the chunks in between (not read yet), the definitions FUNC, THRD and TASK (small) are
  read, and the STRS chunks are noted where they are: read when one of their texts is shown
  (`LetGoStrings`);
- the earlier calls the newest ones descend from (`<module>`, a loop's caller) come from the
  calls read in order, or from the CALL chunk in between that holds them;
- what it cannot know of those earlier calls is what lies in between: their MARK rows there
  (a generator's suspensions) and their end, when it is there (a generator outlives the call
  that first ran it, and the calls it runs later descend from that one: it shows as running).
  The window is shown while the reads catch up, a second or two; then theirs is.

Its calls are numbered as the session numbers them (`Window.ids`), so the view is carried
between it and the windows and index made of the calls read in order later (rows.py).
"""

from __future__ import annotations

import numpy as np

from flowtrace.ftr import decode as D
from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import Chunk, ChunkReader, ChunkSpan

from .loader import _CALL_COLS, LetGoStrings, TraceData, column
from .tail import TailCalls
from .window import READING, window_data

# reads this many bytes behind the file: the newest calls are read from its end (reading them
# in order, ~10 ms a MB of a busy program's file on a quiet machine and 3 times that loaded,
# plus the index's window, kept them off the screen longer than that takes)
NEWEST_BEHIND_BYTES = 1 << 20
# the reads in order of a followed file take at most this much a step, so that such windows come
# between them (their usual 8 MB took 0.1-0.3 s on a loaded machine: the next window waited)
NEWEST_STEP_BYTES = 2 << 20
_DEFINITIONS = frozenset({F.FUNC, F.THRD, F.TASK})


class NewestReader:
    """Windows of the newest calls of the file `reader` reads in order (see the module
    docstring). The walk over the chunks' headers past the reads is kept from one window to
    the next: each walks only what was written since."""

    def __init__(self, reader: ChunkReader) -> None:
        self.reader = reader
        self._spans: list[ChunkSpan] = []  # the chunks from the reads' offset on, as far as walked
        self._heads: dict[int, tuple[int, int]] = {}  # a CALL chunk's offset -> (base, rows)
        self._between: dict[int, D.CallRows] = {}  # (one window's) CALL chunks read in between
        self._window_end = -1  # where the chunks the last window was read from end

    def behind(self) -> int:
        """Bytes of the file past what the reads in order have taken."""
        return max(0, (self.reader.size() or 0) - self.reader.offset)

    def grown(self) -> bool:
        """Whole chunks were written past those the last window was read from: a new window
        would hold newer calls (else the same: made again every poll interval once a program
        ended far ahead of the reads, each took CPU from the reads that were to catch up)."""
        spans = self._walk()
        return not spans or spans[-1].end != self._window_end

    def window(self, data: TraceData, count: int) -> TraceData | None:
        """The newest `count` calls (or a few more: whole chunks) and the calls they descend
        from, as a window of the session (window.py) whose calls are not read in order yet;
        `data`: what the reads in order have taken. None when there is none to show: no CALL
        chunk past the reads, or one that does not read whole and right (the reads in order
        will say what is wrong when they get there)."""
        spans = self._walk()
        self._between.clear()
        self._window_end = spans[-1].end if spans else -1
        k = self._first_newest(spans, count)
        if k is None:
            return None
        chunks: list[Chunk] = []
        for span in spans[k:]:
            chunk = self.reader.chunk_at(span.offset)
            if chunk is None:
                break
            chunks.append(chunk)
        try:
            rows = {c.offset: D.decode(c) for c in chunks if c.kind == F.CALL}
            calls = [r for r in rows.values() if isinstance(r, D.CallRows) and r.rows]
            if not calls:
                return None
            newest = TraceData(data.name)
            self._definitions(newest, data, spans[:k])
            newest.tail = self._pinned(data, calls, spans[:k])
            for chunk in chunks:
                record = rows.get(chunk.offset)
                if record is not None:
                    newest.add_rows(record)
                else:
                    newest.feed([chunk])
        except (F.FormatError, KeyError, TypeError, ValueError, IndexError):
            return None
        return window_data(newest, count, why=READING)

    def _walk(self) -> list[ChunkSpan]:
        """The chunks from the reads' offset to the file's end now (the walk kept, and
        continued from where it ended)."""
        start = self.reader.offset
        spans = [s for s in self._spans if s.offset >= start]
        if spans and spans[0].offset != start:  # (not one of the walk's chunks: walked again)
            spans = []
        if not spans or spans[-1].kind != F.ENDS:
            spans += self.reader.spans(spans[-1].end if spans else start)
        self._spans = spans
        self._heads = {at: head for at, head in self._heads.items() if at >= start}
        return spans

    def _first_newest(self, spans: list[ChunkSpan], count: int) -> int | None:
        """The index in `spans` of the CALL chunk from which on the chunks hold `count` calls
        (or all there are); None for no CALL chunk."""
        total, first = 0, None
        for i in range(len(spans) - 1, -1, -1):
            if spans[i].kind != F.CALL:
                continue
            head = self._call_head(spans[i])
            if head is None:
                return None
            total, first = total + head[1], i
            if total >= count:
                break
        return first

    def _call_head(self, span: ChunkSpan) -> tuple[int, int] | None:
        """(first call id, rows) of a CALL chunk, from its payload's header (not checked: the
        chunk itself is, when read)."""
        head = self._heads.get(span.offset)
        if head is None:
            raw = self._payload_head(span, F.COLUMNS_HEADER.size)
            if raw is None:
                return None
            base, rows, _cols, _zero = F.COLUMNS_HEADER.unpack(raw)
            head = self._heads[span.offset] = (base, rows)
        return head

    def _payload_head(self, span: ChunkSpan, size: int) -> bytes | None:
        """The first `size` bytes of a chunk's payload (decompressed: a compressed chunk is read
        whole); None when it has fewer."""
        if span.compressed:
            chunk = self.reader.chunk_at(span.offset)
            raw = bytes(chunk.payload[:size]) if chunk is not None else b""
        else:
            raw = self.reader.peek(span.offset + F.CHUNK_HEADER_SIZE, size)
        return raw if len(raw) == size else None

    def _definitions(self, newest: TraceData, data: TraceData, between: list[ChunkSpan]) -> None:
        """`newest` knows the functions, threads, tasks and texts of `data` and of the chunks
        `between` the reads and the newest calls (their texts read when shown)."""
        newest.meta = data.meta
        newest.functions = list(data.functions)
        newest.threads = dict(data.threads)
        newest.tasks = dict(data.tasks)
        newest.strings = data.strings.copy()
        newest.t_max = data.t_max
        for span in between:
            if span.kind in _DEFINITIONS:
                chunk = self.reader.chunk_at(span.offset)
                if chunk is None:
                    raise F.FormatError(f"{span.kind.decode()} chunk at offset {span.offset} does not read")
                newest.feed([chunk])
            elif span.kind == F.STRS:
                first_id, count = self._strings_head(span)
                newest.strings.add(LetGoStrings(first_id, count, self.reader, span.offset))

    def _strings_head(self, span: ChunkSpan) -> tuple[int, int]:
        """(first string id, count) of a STRS chunk not read yet."""
        raw = self._payload_head(span, F.STRS_HEADER.size)
        if raw is None:
            raise F.FormatError(f"STRS chunk at offset {span.offset} does not read")
        first_id, count = F.STRS_HEADER.unpack(raw)
        return first_id, count & ~F.STRS_RECORDS

    def _pinned(self, data: TraceData, calls: list[D.CallRows], between: list[ChunkSpan]) -> TailCalls:
        """A tail (tail.py) for the newest calls, from the first of `calls` on, holding pinned
        the earlier calls they descend from: those `data` holds, and those of the CALL chunks
        `between` (found by their ids), with their depths and roots."""
        first = calls[0].base
        parents = np.concatenate([column(r.parent) for r in calls])
        wanted = np.unique(parents[(parents > 0) & (parents < first)])
        rows: dict[int, dict[str, int]] = {}  # an earlier call not read in order yet -> its row
        found: list[np.ndarray] = []  # (sorted ids) those read in order
        while len(wanted):
            read = wanted[wanted <= data.calls_read]
            found.append(read)
            later = [int(i) for i in wanted[wanted > data.calls_read] if int(i) not in rows]
            up = [self._row_between(i, between) for i in later]
            rows.update(zip(later, up))
            more = np.array([r["parent"] for r in up], dtype=np.int64)
            more = np.concatenate([more, data.call_values("parent", read).astype(np.int64)])
            wanted = np.unique(more[more > 0])
        held = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
        pins = np.union1d(held, np.array(sorted(rows), dtype=np.int64)).astype(np.int64)
        tail = TailCalls(first, len(pins) + sum(r.rows for r in calls) + 1)
        cols = tail.calls.arrays
        at = np.searchsorted(pins, held)
        for name in _CALL_COLS:
            cols[name][at] = data.call_values(name, held)
        for i in sorted(rows):  # (parents first: smaller ids) depth and root from the parent's
            row, j = rows[i], int(np.searchsorted(pins, i))
            p = row["parent"]
            k = int(np.searchsorted(pins, p))
            row["depth"] = int(cols["depth"][k]) + 1 if p else 0
            row["root"] = int(cols["root"][k]) if p else i
            for name, value in row.items():
                cols[name][j] = value
        tail.pins, tail.calls.size = pins, len(pins)
        self._pinned_marks(data, held, tail)
        return tail

    def _row_between(self, call: int, between: list[ChunkSpan]) -> dict[str, int]:
        """The CALL row of `call`, from the chunk `between` the reads and the newest calls
        that holds it (from the newest: the calls running around the newest ones mostly
        started shortly before them)."""
        for span in reversed(between):
            if span.kind != F.CALL:
                continue
            head = self._call_head(span)
            if head is None or not head[0] <= call < head[0] + head[1]:
                continue
            record = self._between.get(span.offset)
            if record is None:
                chunk = self.reader.chunk_at(span.offset)
                record = D.decode(chunk) if chunk is not None else None
                if not isinstance(record, D.CallRows) or record.base != head[0]:
                    break
                self._between[span.offset] = record
            i = call - record.base
            names = {"parent": record.parent, "func": record.function, "thread": record.thread,
                     "t0": record.t0, "args": record.args, "task": record.task, "flag": record.flag}
            return {name: int(column(col)[i]) for name, col in names.items()}
        raise F.FormatError(f"call {call} is not in the chunks read")

    @staticmethod
    def _pinned_marks(data: TraceData, held: np.ndarray, tail: TailCalls) -> None:
        """The MARK rows `data` holds of the pinned calls `held` (suspensions, resumes)."""
        if not len(held) or not data.n_marks:
            return
        sel = np.flatnonzero(np.isin(data.mark_col("call"), held))
        if not len(sel):
            return
        g = tail.marks
        g.reserve(len(sel))
        for name, arr in g.arrays.items():
            arr[: len(sel)] = data.mark_col(name)[sel]
        g.size = len(sel)
