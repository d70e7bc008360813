"""Per-call numpy columns filled from `.ftr` chunks, append-only.

`TraceData.feed(chunks)` takes whatever `ChunkReader.poll()` returned, decodes each chunk with
the format's one decoder (flowtrace/ftr/decode.py) and appends the records: new calls
get the next ids (CALL ids are consecutive), EXIT rows fill in the end of calls loaded earlier
(an EXIT may come many chunks after its CALL), MARK rows are appended. Nothing already loaded is
ever re-read, so the same object serves a finished file (fed once) and a live one (fed per poll).

Columns are indexed by call id; row 0 is the "no call" sentinel, so `parent[i]` can index directly.
Arrays grow by doubling with `np.empty`: capacity that is never written is never touched, so it
costs address space, not RSS.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import importlib
import sys
import threading
import zlib
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from flowtrace.ftr import decode as D
from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import Chunk, ChunkReader
from flowtrace.ftr.decode import Function, Task, Thread

from .parts import PartIds, ProcessRecord
from .prefault import ByteArena, Prefaulter

if TYPE_CHECKING:
    from .tail import TailCalls
    from .window import Window


def _no_hugepage_advice() -> None:
    """Stop numpy from asking the kernel for transparent huge pages on big arrays.

    With THP in `madvise` mode (a common default) each first touch of such an array may run
    synchronous memory compaction: measured on a 10M-call trace, loading + indexing spent
    ~1 s more in the kernel than the huge pages saved. Our big arrays are written once and read
    a few times, so ordinary pages are the better deal. Process-wide, but this is the explorer's
    process; a numpy without the switch is left alone.
    """
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            mod = importlib.import_module(name)
            mod._set_madvise_hugepage(False)
            return
        except (ImportError, AttributeError):
            continue


_no_hugepage_advice()

# a tail lets go of the texts only its let-go calls named every TEXTS_EVERY let-gos of its calls
# (~0.4 s of a busy program; ~60 MB of texts held meanwhile)
TEXTS_EVERY = 8

_DTYPES = {"B": "<u1", "H": "<u2", "I": "<u4", "i": "<i4", "q": "<i8", "Q": "<u8"}

# flowtrace's own threads are named so (session.py's flusher, control.py's): one gets a THRD entry
# at its first event -- a collection started in flowtrace's work runs the program's finalizers there
OWN_THREAD_PREFIX = "flowtrace-"

# How a call ended (EXIT.how); 0 means no EXIT row seen yet (running, or the process died).
HOW_OPEN = 0
HOW_RETURN = F.END_RETURN
HOW_RAISE = F.END_RAISE
HOW_UNFINISHED = F.END_UNFINISHED


def column(col: F.Column) -> np.ndarray:
    """One decoded column as an int64 numpy array (delta columns summed)."""
    arr = np.frombuffer(col.data, dtype=_DTYPES[col.typecode])
    if col.encoding == F.ENC_DELTA:
        return np.cumsum(arr, dtype=np.int64)
    return arr.astype(np.int64)


def _put_sparse(col: F.Column, out: np.ndarray) -> None:
    """`_put` into rows that are zero (new capacity): nothing written when the column is all
    zero (its deltas too), so that the pages stay untouched."""
    if np.frombuffer(col.data, dtype=_DTYPES[col.typecode]).any():
        _put(col, out)


def _put(col: F.Column, out: np.ndarray) -> None:
    """Decode one column straight into `out` (a slice of a growable column)."""
    arr = np.frombuffer(col.data, dtype=_DTYPES[col.typecode])
    if col.encoding == F.ENC_DELTA:
        if out.dtype == np.int64:
            np.cumsum(arr, dtype=np.int64, out=out)
        else:
            out[:] = np.cumsum(arr, dtype=np.int64)
    else:
        out[:] = arr


class PackedStrings:
    """A STRS chunk kept as stored until one of its texts is asked for. Two kinds:

    - `compressed` (zlib): the diff view reads sessions whose texts take most of the file and
      shows few of them (ChunkReader's `keep_compressed`);
    - value records (FORMAT 1.4, stored uncompressed): made into texts only when one is asked
      for. A live view of a busy program reads ~10^5 calls per poll and shows forty of them;
      expanding every record as it is read cost ~50-90 ns a call (a large share of what the
      live view spends per call, benchmarks/live_latency.py).

    Ids `first_id .. first_id+count-1`, read from the payload's header. A chunk whose texts do
    not decode reads as holding none (its texts read as ""): its frame was checked (CRC), so
    only a broken writer makes one."""

    def __init__(self, payload: bytes | memoryview, compressed: bool = True) -> None:
        self.compressed = compressed
        if compressed:
            try:
                head = zlib.decompressobj().decompress(payload, F.STRS_HEADER.size)
            except zlib.error:
                head = b""
        else:
            head = bytes(payload[: F.STRS_HEADER.size])
        if len(head) < F.STRS_HEADER.size:
            raise F.FormatError("STRS chunk too short")
        self.first_id, self.count = F.STRS_HEADER.unpack(head)
        self._own_first = self.first_id  # the payload's numbering (a part's differs: as_session_ids)
        self.records = bool(self.count & F.STRS_RECORDS)  # (1.4) value records: read whole
        self.count &= ~F.STRS_RECORDS
        self.payload = payload

    def as_session_ids(self, first_id: int) -> "PackedStrings":
        """The same chunk with its ids starting at `first_id` (another process's part, whose
        texts the session numbers after those it holds)."""
        out = copy.copy(self)
        out.first_id = first_id
        return out

    def decoded(self, upto: int | None = None) -> F.Strings:
        """The chunk's texts (a chunk that does not decode holds none: its texts read as "").
        `upto`: only the texts up to that id are needed, so only as much is decompressed (the
        result must not be asked for later ones)."""
        strings = self._decoded(None if upto is None else upto - self.first_id + self._own_first)
        if self.first_id != self._own_first:
            strings = dataclasses.replace(strings, first_id=self.first_id)
        return strings

    def _decoded(self, upto: int | None) -> F.Strings:
        """`decoded` in the payload's own numbering."""
        try:
            if not self.compressed:
                return F.decode_strings(self.payload)
            if upto is None or self.records:
                return F.decode_strings(zlib.decompress(self.payload))
            stream = zlib.decompressobj()
            size = F.STRS_HEADER.size + 4 * (self.count + 1)
            head = stream.decompress(self.payload, size)
            offsets = array("I")
            offsets.frombytes(head[F.STRS_HEADER.size :])
            if len(offsets) != self.count + 1:
                raise F.FormatError("STRS chunk: offsets cut short")
            if sys.byteorder == "big":
                offsets.byteswap()
            blob = stream.decompress(stream.unconsumed_tail, offsets[upto - self._own_first + 1])
            return F.Strings(self._own_first, self.count, offsets, memoryview(blob))
        except (zlib.error, F.FormatError):
            return F.Strings(self._own_first, 0, array("I", [0]), memoryview(b""))


class LetGoStrings:
    """A STRS chunk whose texts a followed session's tail let go (StringTable.let_go), read
    again from its file when one of them is asked for: a later call may name one of them (the
    recorder writes a text once per session), and shows it as a session holding every call
    would. `first_id`: the session's id of its first text (another process's part numbers its
    texts after the session's, PackedStrings.as_session_ids). Also a chunk not read yet, that
    the newest calls read from a file's end may name (newest.py)."""

    def __init__(self, first_id: int, count: int, reader: ChunkReader, offset: int) -> None:
        self.first_id, self.count = first_id, count
        self.reader, self.offset = reader, offset

    def decoded(self) -> F.Strings:
        """Its texts, read again (none when the file no longer holds the chunk as read)."""
        chunk = self.reader.chunk_at(self.offset)
        try:
            if chunk is None or chunk.kind != F.STRS:
                raise F.FormatError("STRS chunk not found again")
            strings = F.decode_strings(chunk.payload)
        except F.FormatError:
            return F.Strings(self.first_id, 0, array("I", [0]), memoryview(b""))
        return dataclasses.replace(strings, first_id=self.first_id) if strings.first_id != self.first_id else strings


class StringTable:
    """Interned texts (STRS chunks), decoded only when a string is asked for."""

    KEEP_NEWEST = 4  # `let_go` leaves the newest chunks: the next calls' texts are most likely there
    REREAD_KEPT = 4  # chunks let go and read again (LetGoStrings) kept decoded, the last asked for
    REREAD_TEXTS = 4096  # texts of chunks let go kept once read again, the last asked for

    def __init__(self) -> None:
        self.chunks: list[F.Strings | PackedStrings | LetGoStrings] = []
        self._firsts: list[int] = []
        self._where: list[tuple[ChunkReader, int] | None] = []  # each chunk's file and offset, when known
        self.count = 0  # highest string id loaded
        self._held: list[int] = []  # (let_go) the chunks from its `start` it has not let go
        self._looked = 0  # (let_go) chunks up to here are in `_held` or let go
        self._reread: dict[int, F.Strings] = {}  # chunk index -> a LetGoStrings' texts (REREAD_KEPT)
        self._texts_again: dict[int, str] = {}  # string id -> text of a let-go chunk (REREAD_TEXTS)
        self._reread_lock = threading.Lock()

    def copy(self) -> "StringTable":
        """A table holding the same chunks now, to which chunks can be added apart (the chunks
        themselves are shared: they do not change once added)."""
        out = StringTable()
        out.chunks, out._firsts, out._where = list(self.chunks), list(self._firsts), list(self._where)
        out.count = self.count
        return out

    def add(self, strings: F.Strings | PackedStrings | LetGoStrings,
            where: tuple[ChunkReader, int] | None = None) -> None:
        """A chunk's texts; `where`: the reader it came from and its offset (a chunk let go is
        read again from there when asked for)."""
        self.chunks.append(strings)
        self._firsts.append(strings.first_id)
        self._where.append(where)
        self.count = max(self.count, strings.first_id + strings.count - 1)

    def let_go(self, start: int, named: np.ndarray) -> int:
        """Let go of the texts of chunks from index `start` on (but the newest KEEP_NEWEST) that
        hold none of the string ids `named`: a followed session's tail let go of the calls that
        named them (tail.py). A later call naming one again (the recorder writes a text once per
        session) reads its chunk again from the file (LetGoStrings); a chunk whose file is not
        known reads as holding none. Returns the chunks let go."""
        end = len(self.chunks) - self.KEEP_NEWEST
        self._looked = max(self._looked, start)
        self._held.extend(range(self._looked, max(self._looked, end)))
        self._looked = max(self._looked, end)
        if not self._held:
            return 0
        # which of the chunks each named id falls in (no sort of the ids: a tail names ~10^6)
        firsts = np.array([self.chunks[i].first_id for i in self._held], dtype=np.int64)
        ends = firsts + np.array([self.chunks[i].count for i in self._held], dtype=np.int64)
        named = named[named >= firsts[0]]
        at = np.searchsorted(firsts, named, side="right") - 1
        named_in = np.bincount(at[named < ends[at]], minlength=len(firsts)) > 0
        gone = 0
        for i, keep in zip(self._held, named_in.tolist()):
            if not keep:
                chunk, where = self.chunks[i], self._where[i]
                self.chunks[i] = (LetGoStrings(chunk.first_id, chunk.count, *where) if where is not None
                                  else F.Strings(chunk.first_id, 0, array("I", [0]), memoryview(b"")))
                gone += 1
        self._held = [i for i, keep in zip(self._held, named_in.tolist()) if keep]
        return gone

    def _read_again(self, i: int) -> F.Strings:
        """The texts of chunk `i`, let go (LetGoStrings): read again, the last REREAD_KEPT kept."""
        with self._reread_lock:  # (the UI's texts and a search's thread may ask at once)
            strings = self._reread.pop(i, None)
            if strings is None:
                strings = self.chunks[i].decoded()
                while len(self._reread) >= self.REREAD_KEPT:
                    self._reread.pop(next(iter(self._reread)))
            self._reread[i] = strings  # (the newest last)
            return strings

    def _text_again(self, i: int, string_id: int) -> str:
        """The text of `string_id` in chunk `i`, let go: the last REREAD_TEXTS asked for are kept,
        so that a screen of calls naming texts of many let-go chunks reads each chunk once, not
        at every redraw."""
        text = self._texts_again.get(string_id)
        if text is None:
            strings = self._read_again(i)
            text = strings.text(string_id) if string_id < strings.first_id + strings.count else ""
            with self._reread_lock:
                while len(self._texts_again) >= self.REREAD_TEXTS:
                    self._texts_again.pop(next(iter(self._texts_again)))
                self._texts_again[string_id] = text
        return text

    def text(self, string_id: int) -> str:
        """The text of a string id; "" for 0 or an id that is not loaded (yet)."""
        if string_id <= 0:
            return ""
        i = bisect.bisect_right(self._firsts, string_id) - 1
        if i < 0:
            return ""
        chunk = self.chunks[i]
        if string_id >= chunk.first_id + chunk.count:
            return ""
        if isinstance(chunk, LetGoStrings):
            return self._text_again(i, string_id)
        if isinstance(chunk, PackedStrings):
            chunk = self.chunks[i] = chunk.decoded()  # kept: the detail pane asks for neighbours
        if string_id >= chunk.first_id + chunk.count:
            return ""
        return chunk.text(string_id)

    def texts(self, ids: Iterable[int]) -> dict[int, str]:
        """The texts of many string ids at once (as `text` gives them): each packed chunk is
        decompressed once, only as far as the last of them it holds, and not kept (the
        exception types of every raised call touch most chunks of a session with arguments)."""
        out: dict[int, str] = {}
        by_chunk: dict[int, list[int]] = {}
        for sid in sorted(set(ids)):
            i = bisect.bisect_right(self._firsts, sid) - 1 if sid > 0 else -1
            if i < 0 or sid >= self.chunks[i].first_id + self.chunks[i].count:
                out[sid] = ""
            else:
                by_chunk.setdefault(i, []).append(sid)
        for i, sids in by_chunk.items():
            chunk = self.chunks[i]
            if isinstance(chunk, LetGoStrings):
                out.update((sid, self._text_again(i, sid)) for sid in sids)
                continue
            if isinstance(chunk, PackedStrings):
                chunk = chunk.decoded(upto=sids[-1])
            out.update((sid, chunk.text(sid) if sid < chunk.first_id + chunk.count else "") for sid in sids)
        return out

    def decoded_chunks(self, keep: bool = True, among: np.ndarray | None = None) -> Iterator[F.Strings]:
        """Every chunk's texts, in order; packed chunks decompressed on the way (and kept as
        such unless not `keep`: a pass that reads every text once need not hold them all);
        those let go read again from the file (not kept). `among` (sorted string ids): only the
        chunks that hold one of them (a window's calls name few of a big session's texts)."""
        wanted = None
        if among is not None:
            at = np.searchsorted(np.asarray(self._firsts, dtype=np.int64), among, side="right") - 1
            wanted = set(np.unique(at[at >= 0]).tolist())
        for i, chunk in enumerate(list(self.chunks)):
            if wanted is not None and i not in wanted:
                continue
            if isinstance(chunk, LetGoStrings):
                chunk = chunk.decoded()
            elif isinstance(chunk, PackedStrings):
                decoded = chunk.decoded()
                if keep:
                    self.chunks[i] = decoded
                chunk = decoded
            yield chunk


@dataclass(frozen=True)
class FeedResult:
    """What one `feed` added: calls `first_new .. n` and how many EXIT/MARK rows."""

    first_new: int
    n: int
    exits: int
    marks: int

    @property
    def new_calls(self) -> int:
        return self.n - self.first_new + 1


class _Growable:
    """A set of same-length numpy columns whose capacity grows fourfold when full: a live
    session's poll that has to grow them copies every column (~55 ms at 2M calls, 13 columns),
    so that should happen rarely; capacity never written costs no memory. Rows past `size`
    are zero (the loader writes no zero into them: TraceData._add_calls)."""

    def __init__(self, dtypes: dict[str, Any], sentinel_row: bool, capacity: int = 1024) -> None:
        self.dtypes = dtypes
        self.cap = max(1024, capacity)
        self.arrays = {k: np.zeros(self.cap, dtype=t) for k, t in dtypes.items()}
        self.size = 1 if sentinel_row else 0

    def reserve(self, extra: int, exact: bool = False) -> None:
        """Capacity for `extra` more rows: fourfold steps, or (`exact`) just that many."""
        need = self.size + extra
        if need <= self.cap:
            return
        cap = max(self.cap, 1024)
        while cap < need:
            cap *= 4
        if exact:
            cap = need
        # every column made before any is replaced: one that cannot be made leaves them all as
        # they were (and lets go of those made: the memory a live session goes on with)
        new = {k: np.zeros(cap, dtype=arr.dtype) for k, arr in self.arrays.items()}  # (fresh memory: zero as untouched)
        for k, arr in new.items():
            arr[: self.size] = self.arrays[k][: self.size]
        self.arrays, self.cap = new, cap

    def compact(self) -> None:
        """Let go of the capacity no row uses (the columns become views of their used rows)."""
        self.arrays = {k: arr[: self.size] for k, arr in self.arrays.items()}
        self.cap = self.size


_CALL_COLS = {
    "parent": np.uint32,
    "func": np.uint32,
    "thread": np.uint32,
    "t0": np.int64,
    "args": np.uint32,
    "task": np.uint32,
    "flag": np.uint8,
    "t1": np.int64,
    "how": np.uint8,
    "val": np.uint32,
    "nsusp": np.uint32,
    "depth": np.int32,  # among calls: roots are 0 (groups are added by the index)
    "root": np.uint32,  # the root call of the call's tree
}
CALL_BYTES = sum(np.dtype(t).itemsize for t in _CALL_COLS.values())  # the call columns' bytes a call (54)
# columns zero for most calls (tasks, flags, suspensions): a row's zero is not written (the
# capacity is zero), so a busy program's rows leave their pages untouched -- no memory, no
# page fault (9 of the columns' 54 bytes a call) -- and they are not faulted in ahead
_SPARSE_CALL_COLS = ("task", "flag", "nsusp")
# n, run: a fold row's runs and their running ns (FORMAT 1.1), 0 on other rows
_MARK_COLS = {"call": np.uint32, "t": np.int64, "kind": np.uint8, "ref": np.uint32, "other": np.uint32,
              "n": np.uint32, "run": np.int64}


class TraceData:
    """Everything loaded from one session so far. Filled by `feed`, read by the index and widgets.

    Only one thread may call `feed`; readers on other threads see arrays that only grow.
    """

    def __init__(self, name: str = "", capacity: int = 0) -> None:
        """`capacity`: expected number of calls (a guess is fine: untouched capacity costs no RSS,
        and a good guess saves the copies of growing)."""
        self.name = name
        self._calls = _Growable(_CALL_COLS, sentinel_row=True, capacity=capacity + 1)
        self._prefault: Prefaulter | None = None  # a followed session's (expect_calls)
        self._kept: ByteArena | None = None  # where a followed session keeps value records (expect_calls)
        # a followed session's newest calls once its call columns are full (tail.py): calls
        # 1..n are the columns', n+1..calls_read the tail's (the newest of them, and pins)
        self.tail: TailCalls | None = None
        self._tail_texts = 0  # the first STRS chunk read after the tail began (let go when no held call names it)
        self._tail_rounds = 0  # the tail's let-gos so far
        # a followed session's texts could not get the memory they needed: the tail begins at
        # the next calls, whatever room the call columns have left (`_keep`)
        self.short_of_memory = False
        self.marks_lost = 0  # MARK rows of the columns' calls that their full columns could not take
        self._named: list[np.ndarray] = []  # string ids the columns' calls named after the tail began (kept)
        self._marks = _Growable(_MARK_COLS, sentinel_row=False)
        self.functions: list[Function | None] = [None]  # index = function id
        self.threads: dict[int, Thread] = {}
        self._thread_scan: dict[int, int] = {}  # own thread id -> call rows looked at for it (-1: it has calls)
        self.tasks: dict[int, Task] = {}
        self.strings = StringTable()
        self.meta: dict[str, Any] = {}
        self.ends: dict[str, Any] | None = None
        self.damage: str | None = None  # set by the owner of the ChunkReader when reading stopped
        self.t_max = 0  # latest time seen in any column (the "now" of an unfinished session)
        self.exits_seen = 0
        self.bad_rows = 0  # rows referring to calls that do not exist (a broken writer)
        # calls that got an EXIT row when they had one already (a writer repeating itself; the
        # last row wins, docs/FORMAT.md): the live index (grow.py) re-reads their end, as it
        # only looks at calls that were open
        self.reexited: list[np.ndarray] = []
        # a session of several processes (model/parts.py): one record per process, the root
        # first; empty for a session of one process. Only grows, like the columns.
        self.processes: list[ProcessRecord] = []
        self.thread_process: dict[int, int] = {}  # session thread id -> process index
        self.function_process: dict[int, int] = {}  # session function id -> process index (not 0)
        # the newest calls of a live session taken out as a session of their own (window.py):
        # how its call ids map to the session's; None for a session's own data
        self.window: Window | None = None

    # -- sizes and columns -------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of calls in the call columns; ids are 1..n (all the calls read, unless a
        followed session's columns are full: then the newest are in `tail`, see calls_read)."""
        return self._calls.size - 1

    @property
    def calls_read(self) -> int:
        """Number of calls read: `n`, or the newest call of a tail (tail.py)."""
        return self.tail.last if self.tail is not None else self._calls.size - 1

    def call_values(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Call column `name` at session ids (any up to calls_read; 0 for a call a tail let go)."""
        col = self._calls.arrays[name]
        if self.tail is None:
            return col[ids]
        ids = np.asarray(ids, dtype=np.int64)
        out, _ = self.tail.values(name, ids)
        whole = ids <= self.n
        out[whole] = col[ids[whole]]
        return out

    def call_range(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Call column `name` of calls lo..hi (a view): all in the columns, or all newest calls
        of the tail."""
        if self.tail is not None and lo > self.n:
            return self.tail.run(name, lo, hi)
        return self._calls.arrays[name][lo : hi + 1]

    def program_threads(self, tids: Iterable[int] | None = None) -> list[int]:
        """The ids of `tids` (every defined thread's by default) that are the program's threads:
        all but flowtrace's own with no recorded call (a flusher whose collection ran only
        unrecorded code). A thread of the program is kept, calls or not (it ran), and so is one
        of ours whose calls were recorded (the program's finalizers)."""
        tids = list(self.threads) if tids is None else list(tids)
        return [tid for tid in tids if not ((t := self.threads.get(tid)) is not None
                                            and t.name.startswith(OWN_THREAD_PREFIX) and not self._made_calls(tid))]

    def _made_calls(self, tid: int) -> bool:
        """Has thread `tid` a call read? The columns looked at once (only the rows read since the
        last look again), a tail's held calls each time (they are few)."""
        upto = self._thread_scan.get(tid, 1)
        if upto < 0:
            return True
        col = self.col("thread")
        found = bool((col[upto:] == tid).any())
        if not found and self.tail is not None:
            found = bool((self.tail.calls.arrays["thread"][: self.tail.held] == tid).any())
        self._thread_scan[tid] = -1 if found else len(col)
        return found

    def expect_calls(self, calls: int) -> None:
        """Size the call columns for `calls` calls now, while they hold few (the feeding thread
        only): a live session grows them otherwise as it goes, each time copying every column
        while its reads wait -- 0.9 s of CPU at 16.8 M calls (6.7 s of wall time under load),
        a frozen live view ~7 s into a busy program. Capacity never written costs no memory, but
        address space: exactly `calls` rows (fourfold steps from the capacity the file's size
        suggested took up to 4 times that, past a 6 GB address-space limit at once: MemoryError)."""
        while True:  # (a lower address-space limit: fewer rows, and the tail sooner)
            try:
                self._calls.reserve(calls - self._calls.size, exact=True)  # (`calls` rows, the sentinel's one of them)
                break
            except MemoryError:
                if calls <= 1 << 20:
                    raise MemoryError(_outgrown(self.n, self._calls)) from None
                calls //= 2
        self._prefault = Prefaulter()  # (the rows ahead faulted in off the reading thread: prefault.py)
        self._kept = ByteArena()

    @property
    def n_marks(self) -> int:
        return self._marks.size

    def col(self, name: str) -> np.ndarray:
        """A call column over ids 0..n (a view; row 0 is the sentinel)."""
        return self._calls.arrays[name][: self._calls.size]

    def mark_col(self, name: str) -> np.ndarray:
        return self._marks.arrays[name][: self._marks.size]

    @property
    def finished(self) -> bool:
        """The session has its end chunk."""
        return self.ends is not None

    @property
    def t_end(self) -> int:
        """End of the session: ENDS.t_end, else the latest time seen so far."""
        if self.ends is not None and isinstance(self.ends.get("t_end"), int):
            return max(int(self.ends["t_end"]), self.t_max)
        return self.t_max

    def func(self, func_id: int) -> Function | None:
        if 0 < func_id < len(self.functions):
            return self.functions[func_id]
        return None

    def func_name(self, func_id: int) -> str:
        info = self.func(func_id)
        return info.qualname if info is not None else f"<function {func_id}>"

    def thread_name(self, thread_id: int) -> str:
        t = self.threads.get(thread_id)
        return t.name or f"thread {thread_id}" if t is not None else f"thread {thread_id}"

    def task_name(self, task_id: int) -> str:
        t = self.tasks.get(task_id)
        return t.name or f"task {task_id}" if t is not None else f"task {task_id}"

    # -- loading ------------------------------------------------------------------------------
    @property
    def multi_process(self) -> bool:
        """The session holds more than one process (model/parts.py)."""
        return len(self.processes) > 1

    def process_of_thread(self, thread_id: int) -> int:
        """The index of the process a session thread id belongs to (0 for a single process)."""
        return self.thread_process.get(thread_id, 0)

    def process_of_function(self, func_id: int) -> int:
        """The index of the process whose code a session function id is (0: the root's)."""
        return self.function_process.get(func_id, 0)

    def feed(self, chunks: Iterable[Chunk], part: PartIds | None = None, reader: ChunkReader | None = None) -> FeedResult:
        """Append the contents of complete chunks (in file order). Raises FormatError on a chunk
        that is well framed but malformed inside (the caller reports it as damage). `part`: the
        chunks are one part's of a session of several processes (their ids and times are made
        the session's, model/parts.py); None: the session's own file, loaded as it is.
        `reader`: the reader they came from: a followed session's texts that its tail let go
        are read again from it (only a followed session's: a reader does not travel, diff_sides)."""
        first_new = self.calls_read + 1
        exits = marks = 0
        for chunk in chunks:
            where = (reader, chunk.offset) if reader is not None and self._prefault is not None and chunk.kind == F.STRS else None
            if chunk.compressed:  # (ChunkReader.keep_compressed) texts stay packed until asked for
                if chunk.kind == F.STRS and part is None:
                    self.strings.add(PackedStrings(chunk.payload), where)
                    continue
                chunk = chunk.unpacked()
            elif chunk.kind == F.STRS and F.has_records(chunk.payload):  # expanded when shown
                packed = PackedStrings(self._keep(chunk.payload), compressed=False)
                if part is None:
                    self.strings.add(packed, where)
                else:
                    self._add_part_strings(part, packed, where)
                continue
            try:
                record = D.decode(chunk)  # None: a chunk type this version does not know (skipped)
            except MemoryError:
                if self._prefault is None or chunk.kind != F.STRS or part is not None:
                    raise
                self.short_of_memory = True  # (see _keep) its texts kept as read, made when shown
                self.strings.add(PackedStrings(chunk.payload, compressed=False), where)
                continue
            if isinstance(record, D.CallRows):
                self._add_calls(record, part)
            elif isinstance(record, D.ExitRows):
                exits += self._add_exits(record, part)
            elif isinstance(record, D.MarkRows):
                marks += self._add_marks(record, part)
            elif part is not None:
                self._part_record(record, part, where)
            elif isinstance(record, F.Strings):
                self.strings.add(record, where)
            elif isinstance(record, D.FunctionDefs):
                self._add_functions(record.items)
            elif isinstance(record, D.ThreadDefs):
                self.threads.update((t.id, t) for t in record.items)
            elif isinstance(record, D.TaskDefs):
                self._add_tasks(record.items)
            elif isinstance(record, D.Meta):
                self.meta = record.info
            elif isinstance(record, D.End):
                self.ends = record.info
                t_end = self.ends.get("t_end")
                if isinstance(t_end, int):
                    self.t_max = max(self.t_max, t_end)
        if part is not None and part.pending_tasks:
            self._add_part_tasks(part, list(part.pending_tasks.values()))
        return FeedResult(first_new, self.calls_read, exits, marks)

    def add_rows(self, record: D.CallRows | D.ExitRows | D.MarkRows) -> None:
        """The rows of a CALL, EXIT or MARK chunk decoded already, as `feed` adds its chunks'
        (the newest calls read from the end of a file: newest.py)."""
        if isinstance(record, D.CallRows):
            self._add_calls(record)
        elif isinstance(record, D.ExitRows):
            self._add_exits(record)
        else:
            self._add_marks(record)

    def _keep(self, payload: bytes | memoryview) -> bytes | memoryview:
        """A followed session's value records, copied into its arena (prefault.ByteArena). When
        the memory for the arena's next segment cannot be had, the payload is kept as read and
        the session's next calls go to a tail (tail.py; `short_of_memory`), which lets go of
        older calls and their texts: the view goes on within the memory it has."""
        if self._kept is None:
            return payload
        try:
            return self._kept.keep(payload)
        except MemoryError:
            self.short_of_memory = True
            return payload

    def adopt_root(self, path: str) -> PartIds:
        """Make what is loaded so far the root process of a session of several processes (its
        ids stay as they are; the ids it defines from now on are mapped, as another part's):
        called before the first other part is fed."""
        part = PartIds(0)
        part.add_calls(1, self.calls_read, 1)
        for fid in range(1, len(self.functions)):
            part.functions.set(fid, fid)
        for strings in self.strings.chunks:
            part.str_local.append(strings.first_id)
            part.str_session.append(strings.first_id)
        for tid in self.tasks:
            part.tasks.set(tid, tid)
        if not self.processes:
            self.processes.append(ProcessRecord(0, path))
        root = self.processes[0]
        root.meta, root.ends, root.calls = self.meta, self.ends, self.calls_read
        used = [self.col("thread")[1:]] + ([self.tail.calls.arrays["thread"][: self.tail.held]] if self.tail else [])
        for tid in sorted(set(self.threads) | set(np.unique(np.concatenate(used)).tolist())):
            self._register_thread(part, tid, tid)
        return part

    def _add_tasks(self, tasks: Iterable[Task]) -> None:
        for t in tasks:
            old = self.tasks.get(t.id)
            self.tasks[t.id] = t if old is None else old.updated(t)

    def _part_record(self, record: object, part: PartIds, where: tuple[ChunkReader, int] | None = None) -> None:
        """A definition, META or ENDS of a part: stored under the session's ids, its process's
        META and ENDS on its `ProcessRecord` (the root's stay `meta` and `ends`)."""
        proc = self.processes[part.process]
        if isinstance(record, F.Strings):
            self._add_part_strings(part, record, where)
        elif isinstance(record, D.FunctionDefs):
            for f in record.items:
                fid = part.functions.get(f.id) or len(self.functions)
                part.functions.set(f.id, fid)
                if part.process:
                    self.function_process[fid] = part.process
                self._add_functions([dataclasses.replace(f, id=fid)])
        elif isinstance(record, D.ThreadDefs):
            for t in record.items:
                tid = self._part_thread(part, t.id)
                self.threads[tid] = Thread(tid, t.ident, t.native_id, t.name)
        elif isinstance(record, D.TaskDefs):
            self._add_part_tasks(part, record.items)
        elif isinstance(record, D.Meta):
            proc.meta = record.info
            if part.process == 0:
                self.meta = record.info
            origin, root_origin = record.info.get("origin_ns"), self.meta.get("origin_ns")
            if isinstance(origin, int) and isinstance(root_origin, int):
                part.shift = proc.shift = origin - root_origin
        elif isinstance(record, D.End):
            proc.ends = record.info
            if part.process == 0:
                self.ends = record.info
            t_end = record.info.get("t_end")
            if isinstance(t_end, int):
                self.t_max = max(self.t_max, t_end + part.shift)

    def _add_part_strings(self, part: PartIds, strings: F.Strings | PackedStrings,
                          where: tuple[ChunkReader, int] | None = None) -> None:
        """A part's STRS chunk, its ids made the session's (after every text it holds)."""
        first = self.strings.count + 1
        part.str_local.append(strings.first_id)
        part.str_session.append(first)
        if isinstance(strings, PackedStrings):
            self.strings.add(strings.as_session_ids(first), where)
        else:
            self.strings.add(dataclasses.replace(strings, first_id=first), where)

    def _part_thread(self, part: PartIds, local: int) -> int:
        """The session id of a part's thread id (a new one the first time it is seen)."""
        tid = part.threads.get(local)
        if not tid:
            tid = max(self.thread_process, default=0) + 1
            self._register_thread(part, local, tid)
        return tid

    def _register_thread(self, part: PartIds, local: int, tid: int) -> None:
        if part.threads.get(local) != tid:
            part.threads.set(local, tid)
            self.thread_process[tid] = part.process
            self.processes[part.process].threads.append(tid)

    def _add_part_tasks(self, part: PartIds, tasks: list[Task]) -> None:
        """A part's tasks under session ids. The ids are given at once (CALL rows name them);
        a creator or root call not loaded yet is filled in when it is (`pending_tasks`)."""
        for t in tasks:
            tid = part.tasks.get(t.id) or max(self.tasks, default=0) + 1
            part.tasks.set(t.id, tid)
            if any(c and c > part.n_calls for c in (t.creator, t.root)):
                part.pending_tasks[t.id] = t
            else:
                part.pending_tasks.pop(t.id, None)
            thread = self._part_thread(part, t.thread) if t.thread else t.thread
            self._add_tasks([Task(tid, t.name, thread, part.call(t.creator) if t.creator else t.creator,
                                  part.call(t.root) if t.root else t.root)])

    def _add_functions(self, functions: list[Function]) -> None:
        for f in functions:
            while len(self.functions) <= f.id:
                self.functions.append(None)
            self.functions[f.id] = f

    def _add_calls(self, cols: D.CallRows, part: PartIds | None = None) -> None:
        rows = cols.rows
        if rows == 0:
            return
        lo = self.calls_read + 1
        expected = lo if part is None else part.n_calls + 1
        if cols.base != expected:
            raise F.FormatError(f"CALL chunk starts at id {cols.base}, expected {expected}")
        g = self._calls
        full = g.size + rows > g.cap or self.short_of_memory
        if self.tail is not None or (self._prefault is not None and full):
            self._add_tail_calls(cols, lo, part)  # a followed session's full columns (tail.py)
            return
        try:
            g.reserve(rows)
        except MemoryError:  # (numpy's words name an array's shape: say what it means here)
            raise MemoryError(_outgrown(self.n, g)) from None
        a = g.arrays
        hi = lo + rows  # exclusive
        out = {k: arr[lo:hi] for k, arr in a.items()}
        t0 = self._fill_calls(cols, out, lo, part, _ByIds(a["depth"]), _ByIds(a["root"]))
        g.size = hi
        self.t_max = max(self.t_max, int(t0.max()))
        if self._prefault is not None:
            self._prefault.written([c for name, c in a.items() if name not in _SPARSE_CALL_COLS], hi)

    def _fill_calls(self, cols: D.CallRows, out: dict[str, np.ndarray], lo: int, part: PartIds | None,
                    depth_of: "_ByIds", root_of: "_ByIds") -> np.ndarray:
        """Write a CALL chunk's rows (session ids lo..) into `out`, each column's rows for them
        (zero: new capacity); `depth_of`/`root_of` give those of earlier calls. Returns t0."""
        rows = cols.rows
        hi = lo + rows  # exclusive
        # columns are written straight into the growable arrays (numpy casts while copying):
        # no int64 temporaries per column, and absent columns are one fill
        parent = out["parent"]
        _put(cols.parent, parent)
        if part is not None:  # the part's parent ids (earlier calls of the part) -> the session's
            if rows and int(parent.max()) >= cols.base + rows:
                raise F.FormatError(f"CALL chunk at id {cols.base}: a parent id is not an earlier call")
            part.add_calls(cols.base, rows, lo)
            parent[:] = part.calls.map(parent)
        if rows and (int(parent.max()) >= hi or (parent >= np.arange(lo, hi, dtype=np.uint32)).any()):
            raise F.FormatError(f"CALL chunk at id {lo}: a parent id is not an earlier call")
        _put(cols.function, out["func"])
        _put(cols.thread, out["thread"])
        t0 = out["t0"]
        _put(cols.t0, t0)
        _put(cols.args, out["args"])
        _put_sparse(cols.task, out["task"])
        _put_sparse(cols.flag, out["flag"])
        if part is not None:
            self._calls_to_session(out, part)
        # t1, how (HOW_OPEN), val and nsusp of an open call are 0: the capacity is (_Growable)
        out["depth"][:], out["root"][:] = _depth_and_root(parent, lo, depth_of, root_of)
        return t0

    def _add_tail_calls(self, cols: D.CallRows, lo: int, part: PartIds | None) -> None:
        """A CALL chunk (of `part`, or the session's own file) of a followed session whose call
        columns are full: into the tail (made the first time), which lets its older calls go
        when it has no room (tail.py)."""
        t = self.tail if self.tail is not None else self._begin_tail(lo)
        before = t.let_go
        t.make_room(cols.rows, self.n)
        if t.let_go != before:  # texts that only the calls let go named go too (every few let-gos:
            self._tail_rounds += 1  # finding the chunks the held calls name is ~25 ns an id)
            if self._tail_rounds % TEXTS_EVERY == 0:
                self.strings.let_go(self._tail_texts, np.concatenate([t.texts_named(), *self._named]))
        g = t.calls
        r0, r1 = g.size, g.size + cols.rows
        out = {k: arr[r0:r1] for k, arr in g.arrays.items()}
        t0 = self._fill_calls(cols, out, lo, part, _ByIds(self._calls.arrays["depth"], self, "depth"),
                              _ByIds(self._calls.arrays["root"], self, "root"))
        g.size, t.last = r1, lo + cols.rows - 1
        self.t_max = max(self.t_max, int(t0.max()))

    def _begin_tail(self, lo: int) -> TailCalls:
        """The tail of a followed session's calls from call `lo` on (tail.py)."""
        from .tail import TailCalls  # (tail.py builds on this module's columns)

        try:
            self.tail = TailCalls(lo)
        except MemoryError:  # (the memory is short: a smaller tail lets go more often)
            self.tail = TailCalls(lo, 1 << 16)
        self._tail_texts = len(self.strings.chunks)
        return self.tail

    def _calls_to_session(self, out: dict[str, np.ndarray], part: PartIds) -> None:
        """A part's new CALL rows `out` (the rows of each column, loaded as the part wrote them)
        in session ids and time."""
        func = out["func"]
        func[:] = part.functions.map(func.astype(np.int64))
        thread = out["thread"]
        for local in np.unique(thread).tolist():  # a thread used before its THRD (a broken writer)
            self._part_thread(part, int(local))
        thread[:] = part.threads.map(thread.astype(np.int64))
        out["t0"] += part.shift
        args = out["args"]
        args[:] = part.strings(args.astype(np.int64))
        task = out["task"]
        if task.any():
            task[:] = part.tasks.map(task.astype(np.int64))
        self.processes[part.process].calls += len(func)

    def _add_exits(self, cols: D.ExitRows, part: PartIds | None = None) -> int:
        if cols.rows == 0:
            return 0
        call = column(cols.call)
        if part is not None:
            call = np.where((call > 0) & (call <= part.n_calls), part.calls.map(np.clip(call, 0, part.n_calls)), -1)
        ok = (call > 0) & (call <= self.calls_read)
        if not ok.all():
            self.bad_rows += int((~ok).sum())
        call = call[ok]
        t1 = column(cols.t1)[ok]
        val = column(cols.value)[ok]
        if part is not None:
            t1 += part.shift
            val = part.strings(val)
        if self.tail is not None:
            return self._add_tail_exits(call, t1, column(cols.how)[ok], val)
        a = self._calls.arrays
        again = call[a["how"][call] != HOW_OPEN]
        if len(again):
            self.reexited.append(again)
        how = column(cols.how)[ok]
        here = how == F.END_RAISE_HERE  # (1.6) raised here: END_RAISE and the call's `raise` mark
        a["t1"][call] = t1
        a["how"][call] = np.where(here, F.END_RAISE, how) if here.any() else how
        a["val"][call] = val
        if here.any():  # (after the call's MARK rows: 1.6 writes a batch's MARK chunk first)
            self._append_marks(call[here], t1[here], np.full(int(here.sum()), F.MARK_RAISE), val[here])
        self.exits_seen += len(call)
        if len(t1):
            self.t_max = max(self.t_max, int(t1.max()))
        return len(call)

    def _add_tail_exits(self, call: np.ndarray, t1: np.ndarray, how: np.ndarray, val: np.ndarray) -> int:
        """EXIT rows once a tail began: the columns' calls' as ever (their values' texts kept),
        the tail's held calls' in its rows, those of calls it let go dropped."""
        here = how == F.END_RAISE_HERE
        how = np.where(here, F.END_RAISE, how)
        if here.any():
            self._append_marks(call[here], t1[here], np.full(int(here.sum()), F.MARK_RAISE), val[here])
        whole = call <= self.n
        a, t = self._calls.arrays, self.tail
        if whole.any():
            c = call[whole]
            again = c[a["how"][c] != HOW_OPEN]
            if len(again):
                self.reexited.append(again)
            a["t1"][c], a["how"][c], a["val"][c] = t1[whole], how[whole], val[whole]
            if (val[whole] > 0).any():
                self._named.append(val[whole][val[whole] > 0])
        rows = t.rows_of(call[~whole])
        held = rows >= 0
        r, tc = rows[held], t.calls.arrays
        tc["t1"][r], tc["how"][r], tc["val"][r] = t1[~whole][held], how[~whole][held], val[~whole][held]
        self.exits_seen += len(call)
        if len(t1):
            self.t_max = max(self.t_max, int(t1.max()))
        return len(call)

    def _append_marks(self, call: np.ndarray, t: np.ndarray, kind: np.ndarray, ref: np.ndarray,
                      other: np.ndarray | int = 0) -> None:
        """Rows at the end of the MARK columns (n and run 0: the caller fills a fold's); once a
        tail began, the rows of its calls go to its own (those of calls it let go nowhere)."""
        if self.tail is not None:
            self._append_tail_marks(call, t, kind, ref, other)
            return
        g = self._marks
        g.reserve(len(call))
        a, lo, hi = g.arrays, g.size, g.size + len(call)
        a["call"][lo:hi] = call
        a["t"][lo:hi] = t
        a["kind"][lo:hi] = kind
        a["ref"][lo:hi] = ref
        a["other"][lo:hi] = other
        a["n"][lo:hi] = 0
        a["run"][lo:hi] = 0
        g.size = hi

    def _append_tail_marks(self, call: np.ndarray, t: np.ndarray, kind: np.ndarray, ref: np.ndarray,
                           other: np.ndarray | int, n: np.ndarray | int = 0, run: np.ndarray | int = 0) -> None:
        """`_append_marks` once a tail began: each row to the columns' or the tail's MARK rows."""
        cols = {"call": call, "t": t, "kind": kind, "ref": ref, "other": other, "n": n, "run": run}
        cols = {k: np.broadcast_to(v, call.shape) for k, v in cols.items()}
        whole = call <= self.n
        held = ~whole & (self.tail.rows_of(call) >= 0)
        for sel, g in ((whole, self._marks), (held, self.tail.marks)):
            if sel.any() and g is self._marks and not self._room_for_marks(int(sel.sum())):
                self.marks_lost += int(sel.sum())  # (the columns' calls' rows: no memory to grow them)
            elif sel.any():
                g.reserve(int(sel.sum()))
                lo, hi = g.size, g.size + int(sel.sum())
                for k, v in cols.items():
                    g.arrays[k][lo:hi] = v[sel]
                g.size = hi
        if whole.any() and (cols["ref"][whole] > 0).any():
            self._named.append(cols["ref"][whole][cols["ref"][whole] > 0].astype(np.int64))

    def _add_tail_marks(self, cols: D.MarkRows, call: np.ndarray, t: np.ndarray, kind: np.ndarray,
                        ref: np.ndarray, other: np.ndarray) -> int:
        """MARK rows once a tail began (see `_append_tail_marks`), their ids the session's;
        suspensions counted in the rows of the calls that have them."""
        n, run = column(cols.n), column(cols.run)
        self._append_tail_marks(call, t, kind, ref, other, n, run)
        fold = kind == F.MARK_FOLD
        count = np.where(kind == F.MARK_SUSPEND, 1, np.where(fold, n, 0))
        whole = (call > 0) & (call <= self.n) & (count > 0)
        if whole.any():
            np.add.at(self._calls.arrays["nsusp"], call[whole], count[whole])
        rows = self.tail.rows_of(call)
        held = (rows >= 0) & (count > 0)
        if held.any():
            np.add.at(self.tail.calls.arrays["nsusp"], rows[held], count[held])
        ends = t[fold] + column(cols.span)[fold] if fold.any() else t[:0]
        self.t_max = max(self.t_max, int(t.max()), int(ends.max(initial=0)))
        return cols.rows

    def _add_marks(self, cols: D.MarkRows, part: PartIds | None = None) -> int:
        rows = cols.rows
        if rows == 0:
            return 0
        if self.tail is None and self._prefault is not None and not self._room_for_marks(rows):
            self._begin_tail(self.calls_read + 1)  # (a busy program's generators: ~2 MARK rows a call)
        call = column(cols.call)
        kind = column(cols.kind)
        t = column(cols.t)
        ref, other = column(cols.ref), column(cols.other)
        if part is not None:
            call = np.where((call > 0) & (call <= part.n_calls), part.calls.map(np.clip(call, 0, part.n_calls)), 0)
            other = np.where((other > 0) & (other <= part.n_calls), part.calls.map(np.clip(other, 0, part.n_calls)), 0)
            t += part.shift
            ref = part.strings(ref)
        if self.tail is not None:
            return self._add_tail_marks(cols, call, t, kind, ref, other)
        g = self._marks
        lo = g.size
        self._append_marks(call, t, kind, ref, other)
        a, hi = g.arrays, g.size
        n = a["n"][lo:hi]
        _put(cols.n, n)
        _put(cols.run, a["run"][lo:hi])
        # suspensions: one per suspend row, n per fold row (each of its runs ended at a yield)
        ok = (call > 0) & (call <= self.n)
        susp = ok & (kind == F.MARK_SUSPEND)
        if susp.any():
            np.add.at(self._calls.arrays["nsusp"], call[susp], 1)
        fold = ok & (kind == F.MARK_FOLD)
        if fold.any():
            np.add.at(self._calls.arrays["nsusp"], call[fold], n[fold])
        # a fold row's runs reach `span` ns past its time: the latest time seen, as the readers
        # of flowtrace/ftr take it (the "now" an unfinished session's open calls end at)
        ends = t[fold] + column(cols.span)[fold] if fold.any() else t[:0]
        self.t_max = max(self.t_max, int(t.max()), int(ends.max(initial=0)))
        return rows

    def _room_for_marks(self, rows: int) -> bool:
        """Room for `rows` more MARK rows in the columns; False (and `short_of_memory`) when
        growing them needs more memory than there is: a followed session's next calls go to a
        tail, whose MARK rows are its own (its calls' only)."""
        try:
            self._marks.reserve(rows)
            return True
        except MemoryError:
            self.short_of_memory = True
            return False

    def compact(self) -> None:
        """Drop the columns' unused capacity, before they are copied whole (the diff view's
        reader processes hand them over, model/diff_sides.py); loading more grows them again."""
        self._calls.compact()
        self._marks.compact()

    # -- per-call reads used by widgets -------------------------------------------------------
    def marks_of(self, call_id: int) -> np.ndarray:
        """Indices of the MARK rows of one call, in file order."""
        return np.flatnonzero(self.mark_col("call") == call_id)


class _ByIds:
    """A call column of earlier calls indexed by session id, as `_depth_and_root` reads them:
    the call columns', or (`data`) those and its tail's (tail.py)."""

    def __init__(self, col: np.ndarray, data: TraceData | None = None, name: str = "") -> None:
        self.col, self.data, self.name = col, data, name

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        return self.col[ids] if self.data is None else self.data.call_values(self.name, ids)


def _outgrown(calls: int, g: _Growable) -> str:
    """What a user is told when the call columns cannot grow: a followed busy program's session
    (~54 bytes a call; 2^26 calls read in ~13 s of a program making 5 M calls a second) outgrows
    the memory the explorer can get, or the address-space limit it runs under."""
    per_call = sum(np.dtype(t).itemsize for t in g.dtypes.values())
    return (f"the session outgrew the memory the explorer could get at {calls:,} calls read "
            f"(its call columns take {per_call} bytes a call, {g.cap * per_call / 1e9:.1f} GB so far, "
            f"and growing them takes more): what was read stays shown")


def _depth_and_root(parent: np.ndarray, lo: int, depth: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and root id of calls lo..lo+len-1, given those of every earlier call.

    A parent is either an earlier chunk's call (known already) or one in this chunk; chains
    inside the chunk are resolved by pointer jumping, so the cost is O(rows · log(chain)),
    not a Python loop per call.
    """
    rows = len(parent)
    link = parent.astype(np.int64)
    link -= lo  # the parent's index in this chunk; < 0: not in this chunk
    inside = link >= 0
    val = inside.astype(np.int64)  # depth accumulated so far along the chain
    rt = np.arange(lo, lo + rows, dtype=np.int64)  # root; roots are their own root
    out = np.flatnonzero((parent > 0) & ~inside)  # the parent is an earlier chunk's call
    if len(out):
        old = link[out] + lo
        val[out] = depth[old].astype(np.int64) + 1
        rt[out] = root[old]
    np.maximum(link, -1, out=link)
    m = np.flatnonzero(inside)  # still linked: only these move on (not a pass over all rows)
    while len(m):
        nxt = link[m]
        val[m] += val[nxt]
        rt[m] = rt[nxt]
        link[m] = link[nxt]
        m = m[link[m] >= 0]
    return val, rt
