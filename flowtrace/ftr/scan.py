"""Reading a session in passes, in memory bounded whatever its size.

`load()` (reader.py) builds a Python object per call: right for the seed API and small files,
gigabytes for a session of millions of calls. The commands that only need to go through a
session once in file order (`flowtrace print`, `export`, `stats`) use this module instead:

- `survey(path)` reads every chunk once with the reader's checks (CRC, ids consecutive, every
  reference defined before use, one end per call) and keeps only what is small: the META /
  FUNC / THRD / TASK / ENDS definitions, counts, where each STRS chunk is, and where reading
  must stop (the first damaged or invalid chunk, exactly where `load()` stops).
- `chunks(info, kinds)` then goes through the file again up to that point, decoding only the
  kinds asked for (the others are skipped without being decompressed).
- `glance(path)` + `CheckedPass`: the same checks in the pass that consumes the rows, for a
  reader that should not wait for a survey (`flowtrace print`'s first lines): the quick walk
  (framing, CRC and definitions only: ~0.2 s for 180 MB) keeps what a line may depend on from
  anywhere in the file, then the pass checks each chunk just before handing it on, and says
  up to which chunk the walk's findings could still change (`Outlook.settled`).
- `Texts` finds the text of a string id on demand: the STRS chunks seen last are kept decoded,
  an older one is read again from the file (the recorder interns texts across the session, so
  an early `None` is referred to until the end).

Memory: one chunk at a time, a byte per call (which calls ended), a few decoded STRS chunks.
Standard library only.
"""

from __future__ import annotations

import bisect
import operator
import os
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any, Iterator, Sequence

from . import format as F
from . import decode as D
from .chunks import Chunk, ChunkReader
from .format import FormatError, Strings
from .late_children import note_late, parents_after_children
from .reader import Trace, _chunks, apply_chunks, check_folds, no_metadata, read_session, set_status

__all__ = ["CheckedPass", "Outlook", "SessionInfo", "Texts", "chunks", "glance", "survey", "surveyed"]


@dataclass(eq=False)
class SessionInfo(Trace):
    """What `survey()` learnt: a `Trace` without its calls (`calls` stays empty; `n_calls` counts
    them), plus where the readable part of the file ends and where its texts are."""

    n_calls: int = 0
    n_strings: int = 0
    end_offset: int = 0  # reading stops here (the first chunk not applied, or the end)
    strs_index: list[tuple[int, int]] = field(default_factory=list)  # (first string id, chunk offset)
    root_threads: list[int] = field(default_factory=list)  # threads with a root call, first root order
    unfinished: list[int] = field(default_factory=list)  # calls without an EXIT row, in id order
    stash: dict[int, Any] = field(default_factory=dict)  # calls a consumer keeps for call()
    # parent -> its last child whose CALL row came after the parent's EXIT row (older files:
    # late_children.py); `chunks()` puts those EXIT rows back after the children
    late_parents: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.n_calls

    def call(self, call_id: int) -> Any:
        """A call kept by the consumer that streams this session (see `SessionInfo.stash`)."""
        return self.stash[call_id]


def _add_tasks(tasks: dict[int, D.Task], defs: D.TaskDefs) -> None:
    """A TASK chunk's definitions: a task defined again is filled in (`Task.updated`)."""
    for t in defs.items:
        old = tasks.get(t.id)
        tasks[t.id] = t if old is None else old.updated(t)


class _Checker:
    """The reader's checks on each decoded chunk (`decode.py` records), with bounded state: a
    byte per call for "has an EXIT row" instead of the calls themselves."""

    def __init__(self, info: SessionInfo) -> None:
        self.info = info
        self.ended = bytearray(1)  # ended[id] = 1 once the call has an EXIT row (index 0 unused)
        # calls after their parent's end (late_children.py) come only from older Python
        # recorders: the C recorder appends every row in event order (a pass less over its files)
        self.late_possible = info.meta.get("recorder") != "c"

    def apply(self, chunk: Chunk) -> Any:
        """Check one chunk and record what it adds; FormatError leaves the state as it was.
        Returns the chunk's record (`decode.py`; None for a kind this version does not know)."""
        record = D.decode(chunk)
        handler = self._HANDLERS.get(type(record))
        if handler is None:
            return record  # a chunk type this version does not know, or a second META
        try:
            handler(self, record, chunk.offset)
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError(f"{chunk.kind.decode()} chunk: malformed ({type(exc).__name__}: {exc})") from None
        return record

    def _func(self, defs: D.FunctionDefs, _offset: int) -> None:
        self.info.functions.update((f.id, f) for f in defs.items)

    def _thrd(self, defs: D.ThreadDefs, _offset: int) -> None:
        self.info.threads.update((t.id, t) for t in defs.items)

    def _task(self, defs: D.TaskDefs, _offset: int) -> None:
        _add_tasks(self.info.tasks, defs)

    def _strs(self, strings: Strings, offset: int) -> None:
        info = self.info
        if strings.first_id != info.n_strings + 1:
            raise FormatError(f"STRS chunk starts at text {strings.first_id}, expected {info.n_strings + 1}")
        if strings.count:
            info.strs_index.append((strings.first_id, offset))
        info.n_strings += strings.count

    def _texts(self, ids: Sequence[int], what: str) -> None:
        if ids and max(ids) > self.info.n_strings:
            bad = next(i for i in ids if i > self.info.n_strings)
            raise FormatError(f"{what} refers to text {bad}, which is not defined before it")

    # The checks below go through whole columns with builtins (max, set, map) on the decoded
    # arrays, at C speed: a survey reads every row of the session.

    def _calls(self, rows: D.CallRows, _offset: int) -> None:
        info = self.info
        n, first = rows.rows, info.n_calls + 1
        if n and rows.base != first:
            raise FormatError(f"CALL chunk starts at call {rows.base}, expected {first}")
        if not n:
            return
        par, fn, thr, t0 = rows.parent.ints(), rows.function.ints(), rows.thread.ints(), rows.t0.ints()
        ids = range(first, first + n)
        if max(par) >= first and any(map(operator.ge, par, ids)):
            cid, p = next((cid, p) for p, cid in zip(par, ids) if p >= cid)
            raise FormatError(f"call {cid} has parent {p}, which did not start before it")
        missing = set(fn).difference(info.functions)
        if missing:
            raise FormatError(f"a call refers to function {min(missing)}, which is not defined before it")
        threads = set(thr)
        missing = threads.difference(info.threads)
        if missing:
            raise FormatError(f"a call refers to thread {min(missing)}, which is not defined before it")
        self._texts(rows.args.ints(), "a call's arguments")
        info.n_calls += n
        self.ended.extend(bytes(n))
        if self.late_possible:
            note_late(info.late_parents, ids, par, self.ended)
        info.last_ns = max(info.last_ns, max(t0))
        new = threads.difference(info.root_threads)
        if new and 0 in par:  # the first root of a thread decides where the thread is printed
            for p, th in zip(par, thr):
                if not p and th in new:
                    info.root_threads.append(th)
                    new.discard(th)

    def _exits(self, rows: D.ExitRows, _offset: int) -> None:
        # a repeated EXIT row is accepted (the last one wins), as in every reader
        if not rows.rows:
            return
        info = self.info
        ids, t1, how = rows.call.ints(), rows.t1.ints(), rows.how.ints()
        if min(ids) < 1 or max(ids) > info.n_calls:
            bad = next(c for c in ids if not 1 <= c <= info.n_calls)
            raise FormatError(f"an EXIT row refers to call {bad}, which has not started")
        ends = set(how)
        unknown = ends.difference(F.END_NAMES)
        if unknown:
            bad = next(c for c, h in zip(ids, how) if h in unknown)
            raise FormatError(f"call {bad} ends in an unknown way ({min(unknown)})")
        self._texts(rows.value.ints(), "the end of a call")
        deque(map(self.ended.__setitem__, ids, repeat(1)), maxlen=0)  # ended[c] = 1 for each, at C speed
        info.last_ns = max(info.last_ns, max(t1))

    def _marks(self, rows: D.MarkRows, _offset: int) -> None:
        if not rows.rows:
            return
        n = self.info.n_calls
        ids, ts, kinds = rows.call.ints(), rows.t.ints(), rows.kind.ints()
        if min(ids) < 1 or max(ids) > n:
            bad = next(c for c in ids if not 1 <= c <= n)
            raise FormatError(f"a MARK row refers to call {bad}, which has not started")
        others, refs = rows.other.ints(), rows.ref.ints()
        kinds_here = set(kinds)
        ns, runs, spans = (rows.n.ints(), rows.run.ints(), rows.span.ints()) if F.MARK_FOLD in kinds_here else ((),) * 3
        if not kinds_here.issubset(F.MARK_NAMES):  # newer kinds are skipped
            known = list(map(F.MARK_NAMES.__contains__, kinds))
            ids, ts, kinds, others, refs = (list(compress(col, known)) for col in (ids, ts, kinds, others, refs))
            if ns:
                ns, runs, spans = (list(compress(col, known)) for col in (ns, runs, spans))
        if others and max(others) > n:
            raise FormatError(f"a MARK row refers to call {max(others)}, which has not started")
        self._texts(refs, "a mark")
        last = max(ts, default=0)
        if F.MARK_FOLD in kinds_here:
            last = max(last, self._folds(kinds, ids, ts, ns, runs, spans))
        if ts:
            self.info.last_ns = max(self.info.last_ns, last)

    @staticmethod
    def _folds(kinds: Sequence[int], ids: Sequence[int], ts: Sequence[int], ns: Sequence[int],
               runs: Sequence[int], spans: Sequence[int]) -> int:
        """Check the fold rows (`check_folds`) and return when the last of them ends."""
        is_fold = list(map(F.MARK_FOLD.__eq__, kinds))
        f_ns, f_runs, f_spans = (list(compress(col, is_fold)) for col in (ns, runs, spans))
        check_folds(compress(ids, is_fold), f_ns, f_runs, f_spans)
        return max(map(operator.add, compress(ts, is_fold), f_spans), default=0)

    def _ends(self, end: D.End, _offset: int) -> None:
        self.info.end = end.info

    _HANDLERS: dict[type, Any] = {
        D.FunctionDefs: _func, D.ThreadDefs: _thrd, D.TaskDefs: _task, Strings: _strs,
        D.CallRows: _calls, D.ExitRows: _exits, D.MarkRows: _marks, D.End: _ends}


def survey(path: str | os.PathLike[str]) -> SessionInfo:
    """Read a session file once, checking it as `load()` does, keeping only what is small.
    Raises `FormatError` (one line, prefixed with the file name) when there is nothing to read."""
    reader = _reader(path)
    return read_session(reader, reader.path, _survey)


def _reader(path: str | os.PathLike[str]) -> ChunkReader:
    if os.path.isdir(path):
        raise FormatError(f"{os.fspath(path)}: is a directory, not a session file")
    return ChunkReader(path, read_size=1 << 17)  # poll() then holds at most ~8 MB of chunks


def _survey(reader: ChunkReader, name: str) -> SessionInfo:
    checker, problem, damage_offset = _walk(reader, name, _Checker)
    info = checker.info
    info.end_offset = damage_offset if damage_offset is not None else reader.offset
    info.unfinished = list(_zeros(checker.ended))
    set_status(info, reader, problem, damage_offset)
    return info


def _walk(reader: ChunkReader, name: str, make: Any) -> tuple[Any, str | None, int | None]:
    """Every chunk after the META chunk to `make(info).apply` (`info`: a `SessionInfo` of that
    META): (what `make` made, the problem that stopped the walk, its offset) as `apply_chunks`."""
    made: Any = None

    def apply(chunk: Chunk) -> None:
        nonlocal made
        if made is not None:
            made.apply(chunk)
            return
        if chunk.kind != F.META:
            raise FormatError(f"the first chunk is {chunk.kind.decode('ascii', 'replace')}, not META")
        meta = D.decode(chunk)
        assert isinstance(meta, D.Meta) and reader.version is not None
        made = make(SessionInfo(name, reader.version, meta.info))

    problem, damage_offset = apply_chunks(reader, apply)
    if made is None:
        raise no_metadata(problem)
    return made, problem, damage_offset


# --- one pass that checks as it goes ------------------------------------------------------------
# `flowtrace print` writes its first lines before it has read the file: a quick walk (`glance`)
# reads only what a line may depend on from anywhere in the file (the definitions as the file
# leaves them, whether calls start on more than one thread), then one pass (`CheckedPass`)
# checks each chunk exactly as `survey` does just before handing its record on.


@dataclass(eq=False)
class Outlook:
    """What `glance()` sees of a session without checking its rows.

    - `info`: its META, its FUNC / THRD / TASK definitions as the readable part of the file
      leaves them (the last of each id), `root_threads` the first two threads with a root call;
    - `end_offset`: where the readable chunks end (framing and CRC: a check of the rows may stop
      a pass sooner, as it stops `survey`);
    - `settled`: the offset of the last chunk that changes what came before it -- a definition
      made again differently, a TASK chunk (tasks are filled in later) -- so once a pass has
      checked the chunk there, `info` is what a survey of the file says, wherever the pass stops
      after it (0: no such chunk). Not the chunk with a second thread's first root call, although
      it decides the thread headings of a print: a test suite's first helper thread may start
      60 % into a 150 MB session, and `flowtrace print | less` then showed nothing for 20 s while
      the lines waited on disk. The walk's root threads decide the headings instead; they are
      the survey's unless a well-framed chunk with a valid CRC fails a check before that root
      (a writer's bug, not a crash or a cut): then a print of the rest keeps its headings;
    - `listed`: the offset of the last THRD or TASK chunk: once a pass has checked it, the
      threads and tasks of `info` are the survey's (a new one after it cannot be named by the
      rows before it, but a list of them all would name it);
    - `streamable`: a pass may start at once: every definition decoded, and the file written by
      the C recorder (no call after its parent's EXIT row: late_children.py needs a survey)."""

    info: SessionInfo
    end_offset: int
    settled: int
    listed: int
    streamable: bool
    problem: str | None  # why the readable part ends early (as SessionInfo.problem), else None
    damage_offset: int | None
    read_end: "_ReadEnd"  # where the walk's reader stopped (for the session's status)
    survey: SessionInfo | None = None  # the session's survey, once a pass has made it (`surveyed`)

    @property
    def meta(self) -> dict[str, Any]:
        """The META object (as `SessionInfo.meta`)."""
        return self.info.meta

    @property
    def source(self) -> str:
        return self.info.source


@dataclass(frozen=True)
class _ReadEnd:
    """What `set_status` asks of a reader that has read a file: where its complete chunks end,
    and how many bytes come after them (a chunk still being written)."""

    offset: int
    pending_bytes: int


def surveyed(session: SessionInfo | Outlook) -> SessionInfo:
    """The survey of a surveyed or glanced session: the one a `CheckedPass` made, else made now."""
    if isinstance(session, SessionInfo):
        return session
    if session.survey is None:
        session.survey = survey(session.source)
    return session.survey


class _Glancer:
    """Keeps the definitions of a walk over the chunks (`glance`), and looks at the threads and
    parents of CALL rows (and nothing else) until a second thread has a root call."""

    def __init__(self, info: SessionInfo) -> None:
        self.info = info
        self.settled = 0
        self.listed = 0
        self.failed = False

    def apply(self, chunk: Chunk) -> None:
        try:
            self._apply(chunk)
        except FormatError:
            self.failed = True
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            self.failed = True
            raise FormatError(f"{chunk.kind.decode()} chunk: malformed ({type(exc).__name__}: {exc})") from None

    def _apply(self, chunk: Chunk) -> None:
        kind, info = chunk.kind, self.info
        if kind == F.CALL:
            if len(info.root_threads) < 2:
                self._roots(chunk.unpacked())
        elif kind in (F.FUNC, F.THRD):
            if kind == F.THRD:
                self.listed = chunk.offset
            record = D.decode(chunk)
            assert isinstance(record, (D.FunctionDefs, D.ThreadDefs))
            known: dict[int, Any] = info.functions if kind == F.FUNC else info.threads  # type: ignore[assignment]
            for item in record.items:
                if known.get(item.id, item) != item:
                    self.settled = chunk.offset
                known[item.id] = item
        elif kind == F.TASK:
            record = D.decode(chunk)
            assert isinstance(record, D.TaskDefs)
            _add_tasks(info.tasks, record)
            self.settled = self.listed = chunk.offset
        elif kind == F.ENDS:
            record = D.decode(chunk)
            assert isinstance(record, D.End)
            info.end = record.info

    def _roots(self, chunk: Chunk) -> None:
        """The threads of the chunk's root calls that had none before (as `_Checker._calls`)."""
        roots = self.info.root_threads
        (thr,) = D.some_columns(chunk, "thread")
        new = set(thr.ints()).difference(roots)
        if not new:
            return
        (par,) = D.some_columns(chunk, "parent")
        parents = par.ints()
        if 0 not in parents:
            return
        for p, th in zip(parents, thr.ints()):
            if not p and th in new:
                roots.append(th)
                new.discard(th)
                if len(roots) == 2:  # (printed under thread headings, decided by this walk: see Outlook)
                    return


def glance(path: str | os.PathLike[str]) -> Outlook:
    """A quick walk over a session file (its chunks' framing and CRC, its definitions, the
    threads and parents of its first calls): what a `CheckedPass` needs before it starts.
    Raises `FormatError` as `survey` does when there is nothing to read."""
    reader = _reader(path)
    reader.keep_compressed = frozenset({F.STRS, F.CALL, F.EXIT, F.MARK})  # (not decompressed)
    return read_session(reader, reader.path, _glance)


def _glance(reader: ChunkReader, name: str) -> Outlook:
    glancer, problem, damage_offset = _walk(reader, name, _Glancer)
    info = glancer.info
    end_offset = damage_offset if damage_offset is not None else reader.offset
    streamable = not glancer.failed and info.meta.get("recorder") == "c"
    return Outlook(info, end_offset, glancer.settled, glancer.listed, streamable, problem, damage_offset,
                   _ReadEnd(reader.offset, reader.pending_bytes))


_ALL_KINDS = frozenset({F.META, F.FUNC, F.THRD, F.TASK, F.STRS, F.CALL, F.EXIT, F.MARK, F.ENDS})


class CheckedPass:
    """One pass over a glanced session (`glance`) that checks each chunk as `survey()` does
    before its record is handed on (`records`), so that a consumer reads the file once.
    `info` grows as the chunks go by, and once `records()` is exhausted it is what `survey()`
    gives for the file. `checked`: the offset of the last chunk checked; `failed_at`: where a
    check stopped the pass before the readable end (`Outlook.end_offset`), else None."""

    def __init__(self, look: Outlook) -> None:
        self.look = look
        base = look.info
        self._checker = _Checker(SessionInfo(base.source, base.version, base.meta))
        self.info = self._checker.info
        self.checked = 0
        self.failed_at: int | None = None

    def records(self, kinds: frozenset[bytes] | set[bytes], texts: "Texts | None" = None) -> Iterator[Any]:
        """The decoded records (`decode.py`) of the chunks of `kinds`, checked, in file order;
        STRS chunks go to `texts` (when given) as they pass."""
        look, apply = self.look, self._checker.apply
        problem: str | None = None
        damage: int | None = None
        reader = ChunkReader(self.info.source, read_size=1 << 16)
        reader.keep_compressed = _ALL_KINDS  # (decompressed one at a time: a poll reads ~4 MB)
        try:
            for chunk in _chunks(reader):
                if chunk.offset >= look.end_offset:
                    break  # (a file still being written: where the glance stopped)
                try:
                    chunk = chunk.unpacked()
                except FormatError as exc:  # (the reader's own words for it)
                    problem, damage = str(exc), chunk.offset
                    break
                try:
                    record = apply(chunk)  # (META, the first chunk, is not one it checks)
                except FormatError as exc:
                    problem = f"{chunk.kind.decode('ascii', 'replace')} chunk at offset {chunk.offset}: {exc}"
                    damage = chunk.offset
                    break
                self.checked = chunk.offset
                if texts is not None and chunk.kind == F.STRS:
                    texts.add(record)
                if chunk.kind in kinds:
                    yield record
            if problem is None and reader.damage is not None and reader.offset < look.end_offset:
                problem, damage = reader.damage, reader.offset  # (the file changed since the glance)
        finally:
            reader.close()
        self._finish(problem, damage)

    def _finish(self, problem: str | None, damage: int | None) -> None:
        """The survey's last fields, as `_survey` sets them."""
        info, look = self.info, self.look
        self.failed_at = damage
        if damage is None:
            problem, damage = look.problem, look.damage_offset
        info.end_offset = damage if damage is not None else look.end_offset
        info.unfinished = list(_zeros(self._checker.ended))
        set_status(info, look.read_end, problem, damage)  # type: ignore[arg-type]
        look.survey = info


def _zeros(ended: bytearray) -> Iterator[int]:
    """Ids whose byte is 0 (calls that never ended), skipping the long runs of ended calls fast."""
    pos = ended.find(0, 1)
    while pos != -1:
        yield pos
        pos = ended.find(0, pos + 1)


# --- later passes -------------------------------------------------------------------------------

def _read_chunk(f: Any, offset: int) -> Chunk:
    """The chunk at `offset` (decompressed; checked by `survey`)."""
    f.seek(offset)
    kind, flags, length = F.CHUNK_HEADER.unpack(f.read(F.CHUNK_HEADER_SIZE))
    stored = f.read(length)
    return Chunk(kind, zlib.decompress(stored) if flags & F.FLAG_ZLIB else stored, offset)


def chunks(info: SessionInfo, kinds: frozenset[bytes] | set[bytes], texts: "Texts | None" = None
           ) -> Iterator[Any]:
    """The decoded records (`decode.py`) of the chunks of `kinds`, from the start of the file to
    `info.end_offset` (checked by `survey`). Other kinds are skipped without being read. STRS
    chunks go to `texts` (when given) as they pass, so that recent texts are at hand. A parent's
    EXIT row that an older recorder wrote before its children's CALL rows comes after them
    (late_children.py)."""
    records = _records(info, kinds, texts)
    if info.late_parents and F.CALL in kinds and F.EXIT in kinds:
        return parents_after_children(records, info.late_parents)
    return records


def _records(info: SessionInfo, kinds: frozenset[bytes] | set[bytes], texts: "Texts | None") -> Iterator[Any]:
    want = set(kinds) | ({F.STRS} if texts is not None else set())
    with open(info.source, "rb", buffering=1 << 16) as f:
        pos = F.FILE_HEADER_SIZE
        while pos < info.end_offset:
            f.seek(pos)
            kind, _flags, length = F.CHUNK_HEADER.unpack(f.read(F.CHUNK_HEADER_SIZE))
            if kind in want:
                record = D.decode(_read_chunk(f, pos))
                if kind == F.STRS and texts is not None:
                    texts.add(record)
                if kind in kinds:
                    yield record
            pos += F.CHUNK_HEADER_SIZE + length + F.CHUNK_TRAILER_SIZE


class Texts:
    """Texts by string id, without holding every text of the session.

    The STRS chunks passed to `add()` (the ones a pass just read) and those read again on demand
    are kept, the most recent `keep` of them. The two newest chunks of the pass are decoded whole
    once a text of them is asked for (a pass asks for the texts of the rows it reads, nearly all
    there), and the one asked last is looked at first; a text of an older chunk is decoded alone
    and kept in a single-text cache, which also catches the few texts that every part of a
    session refers to (`None`, `0`, a `self` repr)."""

    def __init__(self, info: SessionInfo, keep: int = 6) -> None:
        self._info = info
        self._firsts = [first for first, _off in info.strs_index]
        self._chunks: OrderedDict[int, Strings] = OrderedDict()  # first id -> decoded chunk
        self._keep = keep
        self._cache: dict[int, str] = {}
        self._file: Any = None
        self._recent: deque[int] = deque(maxlen=2)  # first ids of the pass's two newest chunks
        self._decoded: dict[int, list[str]] = {}  # first id -> texts, of those asked for
        self._hot_first = 0  # the chunk asked last: its first id and texts
        self._hot: list[str] = []
        self._warm_first = 0  # the one made hot before it
        self._warm: list[str] = []

    def add(self, strings: Strings) -> None:
        firsts, index = self._firsts, self._info.strs_index
        if len(firsts) < len(index):  # a pass that checks as it goes (CheckedPass): the index grows
            firsts.extend(first for first, _off in index[len(firsts):])
        if strings.count:
            first = strings.first_id
            self._chunks[first] = strings
            self._chunks.move_to_end(first)
            while len(self._chunks) > self._keep:
                self._chunks.popitem(last=False)
            if not self._recent or first > self._recent[-1]:  # the pass goes on (not a chunk read again)
                self._recent.append(first)
                for old in [f for f in self._decoded if f not in self._recent]:
                    del self._decoded[old]

    def get(self, sid: int) -> str | None:
        """The text of `sid`; None for 0 ("no text")."""
        i = sid - self._hot_first
        if 0 <= i < len(self._hot):
            return self._hot[i]
        i = sid - self._warm_first
        if 0 <= i < len(self._warm):  # the chunk asked before it: they swap (a call's arguments
            hot = self._hot  # and its result are often in two chunks, asked in turns)
            self._hot_first, self._hot, self._warm_first, self._warm = self._warm_first, self._warm, self._hot_first, hot
            return self._hot[i]
        if not sid:
            return None
        text = self._cache.get(sid)
        if text is not None:
            return text
        i = bisect.bisect_right(self._firsts, sid) - 1
        first = self._firsts[i]
        strings = self._chunks.get(first)
        if strings is not None and first in self._recent:  # it becomes the hot one
            hot = self._decoded.get(first)
            if hot is None:
                hot = self._decoded[first] = strings.texts()
            self._warm_first, self._warm = self._hot_first, self._hot
            self._hot_first, self._hot = first, hot
            return hot[sid - first]
        if strings is not None:
            self._chunks.move_to_end(first)
        else:  # an older chunk, read again for a text or two
            strings = self._load(self._info.strs_index[i][1])
            self.add(strings)
        text = strings.text(sid)
        if len(self._cache) >= 1 << 16:
            self._cache.clear()  # bounded; the texts in use come back on their next use
        self._cache[sid] = text
        return text

    def _load(self, offset: int) -> Strings:
        if self._file is None:
            self._file = open(self._info.source, "rb")
        strings = D.decode(_read_chunk(self._file, offset))
        assert isinstance(strings, Strings)
        return strings

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
