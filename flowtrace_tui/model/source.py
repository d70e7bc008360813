"""Reading a session file into `TraceData`, a bounded slice at a time.

`TraceSource.step()` polls the `ChunkReader` for the chunks that are complete now (at most a
few MB of file per step, so memory stays bounded and a worker can report progress and be
cancelled between steps) and feeds them. A finished file is read by calling `step()` until
`done`; a live file keeps returning new calls on later steps (the live view's poller).
"""

from __future__ import annotations

import json
import os
import zlib
import time
from dataclasses import dataclass

from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader

from .loader import FeedResult, TraceData
from .part_readers import PartReaders, parts_dir


STEP_READ_SIZE = 1 << 17  # a step reads at most ~64 of these (8 MB), plus one chunk
FIRST_STEP_READ_SIZE = 1 << 14  # the first step only has to tell a session from anything else
META_WAIT_S = 1.0  # a live file whose META is still incomplete after this long was cut


# Without a count of calls (an unfinished file), the columns are first sized for at most this
# many: a file's size bounds its calls only loosely (~4 bytes a call compress well, but marks and
# argument texts take most of many files), and address space is what `ulimit -v` limits.
GUESS_MAX_CALLS = 1 << 22
ENDS_TAIL_BYTES = 4096  # an ENDS chunk (a small JSON object) fits in the file's last bytes


def recorded_calls(path: str | os.PathLike[str], size: int) -> int | None:
    """The number of calls a finished session holds (its ENDS chunk, the last one, says so);
    None when the file does not end with a whole ENDS chunk (unfinished, cut, damaged)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, size - ENDS_TAIL_BYTES))
            tail = fh.read(ENDS_TAIL_BYTES)
    except OSError:
        return None
    at = tail.rfind(F.ENDS)
    while at >= 0:
        if at + F.CHUNK_HEADER_SIZE <= len(tail):
            _kind, flags, length = F.CHUNK_HEADER.unpack_from(tail, at)
            body_end = at + F.CHUNK_HEADER_SIZE + length
            if body_end + F.CHUNK_TRAILER_SIZE == len(tail) and zlib.crc32(tail[at:body_end]) == int.from_bytes(tail[body_end:], "little"):
                try:
                    payload = tail[at + F.CHUNK_HEADER_SIZE : body_end]
                    ends = json.loads(zlib.decompress(payload) if flags & F.FLAG_ZLIB else payload)
                except (ValueError, zlib.error):
                    return None
                calls = ends.get("calls") if isinstance(ends, dict) else None
                return calls if isinstance(calls, int) and calls >= 0 else None
        at = tail.rfind(F.ENDS, 0, at)
    return None


@dataclass(frozen=True)
class StepResult:
    feed: FeedResult
    bytes_read: int
    more: bool  # more complete data is probably waiting (the step stopped at its size bound)


class TraceSource:
    """One session being read. Construct with `open(path)` or around any ChunkReader (tests)."""

    def __init__(self, reader: ChunkReader, size_hint: int = 0, calls_hint: int | None = None) -> None:
        """`calls_hint`: how many calls the session holds, when known (its ENDS chunk): the
        call columns are sized for that many; else for a guess from the size, at most
        GUESS_MAX_CALLS (they grow when needed)."""
        self.reader = reader
        self.path = reader.path
        capacity = calls_hint if calls_hint is not None else min(size_hint // 3, GUESS_MAX_CALLS)
        self.data = TraceData(os.path.basename(reader.path), capacity=capacity)
        self.file_size = size_hint
        self.parts: PartReaders | None = None  # the other processes' parts (a session of several)
        self.step_bytes: int | None = None  # a step's read bound, when smaller than ~8 MB (pipeline.py)
        self.ended_when_opened = calls_hint is not None  # the file held its ENDS chunk when opened

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "TraceSource":
        """Open a session file; FormatError (one line) when it is missing or not a session."""
        reader = ChunkReader(path, read_size=FIRST_STEP_READ_SIZE)
        try:
            size = reader.size() or 0
            self = cls(reader, size, recorded_calls(path, size))
            # read the header and the first small step now, so that "not a trace" and "newer
            # version" are reported before any UI starts
            self.step()
            reader.read_size = STEP_READ_SIZE
            self.follow_parts()
            if reader.version is None:
                if size == 0:
                    raise F.FormatError(f"{reader.path}: empty file, not a flowtrace session")
                raise F.FormatError(f"{reader.path}: not a flowtrace session file (too short)")
        except F.FormatError:
            reader.close()
            raise
        return self

    def follow_parts(self) -> None:
        """Read the parts of the other processes too when the session has them (its META
        names their directory, or the directory is there)."""
        if self.parts is None and (self.data.meta.get("parts") or os.path.isdir(parts_dir(self.path))):
            self.parts = PartReaders(self.path, self.data)
            self.parts.scan(force=True)

    @property
    def done(self) -> bool:
        """Nothing more will come: the end chunk was read, or reading stopped at damage (of the
        root file; and every other part has ended or is damaged)."""
        root_done = self.reader.ended or self.reader.damage is not None
        return root_done and (self.parts is None or self.parts.done)

    @property
    def damage(self) -> str | None:
        return self.reader.damage

    @property
    def bytes_read(self) -> int:
        return self.reader.offset + (self.parts.bytes_read if self.parts is not None else 0)

    def current_size(self) -> int:
        """The file's size now (it grows while a session is live), with its parts'."""
        size = self.reader.size()
        if size is not None:
            self.file_size = size + (self.parts.size() if self.parts is not None else 0)
        return self.file_size

    def write_age(self) -> float | None:
        """Seconds since the file was last written (its modification time), None when unknown
        (in-memory data, or a clock that disagrees). The live view aims its next read at the
        recorder's next flush with it."""
        mtime = self.reader.mtime_ns()
        if mtime is None:
            return None
        if self.parts is not None:
            mtime = max(mtime, self.parts.mtime_ns() or 0)
        age = (time.time_ns() - mtime) / 1e9
        return age if age >= 0 else None

    def meta_cut(self, live: bool) -> bool:
        """The session metadata (META, the first chunk) never came whole and will not: the file
        is not followed, or is in memory, or was last written over META_WAIT_S ago (the recorder
        writes META with one write at start, so a live file holds it within milliseconds)."""
        if self.data.meta or self.done:
            return False
        if not live or self.reader.mtime_ns() is None:  # not followed, or nobody writes it
            return True
        age = self.write_age()
        return age is not None and age > META_WAIT_S

    def step(self) -> StepResult:
        """Read and feed what is complete now (bounded: ~8 MB, or ~`step_bytes`, and a chunk).
        Malformed chunk contents stop reading like a corrupt chunk does: everything before is
        kept and `damage` says where."""
        before = self.bytes_read
        first_new = self.data.calls_read + 1
        root_done = self.reader.ended or self.reader.damage is not None
        chunks = self._poll() if not root_done else []
        root_ids = self.parts.root_ids if self.parts is not None else None
        try:
            res = self.data.feed(chunks, root_ids, self.reader)
        except (F.FormatError, KeyError, TypeError, ValueError) as exc:
            self.reader.damage = f"damaged data ({exc})"
            res = FeedResult(first_new, self.data.calls_read, 0, 0)
        self.data.damage = self.reader.damage
        size = self.reader.size() or 0
        more = bool(chunks) and (self.reader.pending_bytes > 0 or self.reader.offset < size - F.CHUNK_HEADER_SIZE)
        if self.parts is None and self.data.meta.get("parts"):  # META came after the first step
            self.follow_parts()
        if self.parts is not None and not more:  # the root read up to now: the other parts
            self.parts.scan()
            part_res, more = self.parts.step()
            res = FeedResult(first_new, self.data.calls_read, res.exits + part_res.exits, res.marks + part_res.marks)
        self.current_size()
        return StepResult(res, self.bytes_read - before, more and not self.done)

    def _poll(self) -> list:
        """The root file's chunks complete now, about `step_bytes` at most (a poll reads up to 64
        times the reader's read size, and a chunk; a smaller read size stays)."""
        if self.step_bytes is None:
            return self.reader.poll()
        size = self.reader.read_size
        self.reader.read_size = min(size, max(1, self.step_bytes // 64))
        try:
            return self.reader.poll()
        finally:
            self.reader.read_size = size

    def close(self) -> None:
        self.reader.close()
