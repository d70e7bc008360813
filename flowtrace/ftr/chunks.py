"""Incremental reading of `.ftr` chunks: the layer every reader is built on.

`ChunkReader.poll()` returns the chunks that became complete since the last call, so the same
object serves a finished file (one poll) and a file that is still being written (poll again
later). A partial chunk at the end is left for the next poll; a corrupt chunk stops reading
and is reported in `damage`, keeping everything before it.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import Any, Callable

from . import format as F

_preadv = getattr(os, "preadv", None)  # (reads straight into the reader's buffer)


@dataclass(frozen=True)
class Chunk:
    """One complete, checked chunk. `payload` is decompressed, unless `compressed` (a kind the
    reader was asked to hand over as stored, `ChunkReader.keep_compressed`: zlib data, decompress
    it with `unpacked()` when needed); `offset` is where it starts."""

    kind: bytes
    payload: bytes
    offset: int
    compressed: bool = False

    def unpacked(self) -> "Chunk":
        """This chunk with its payload decompressed (FormatError when it does not decompress)."""
        if not self.compressed:
            return self
        try:
            return Chunk(self.kind, zlib.decompress(self.payload), self.offset)
        except zlib.error:
            raise F.FormatError(f"undecodable {self.kind.decode()} chunk at offset {self.offset}") from None

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.payload)
        except ValueError as exc:
            raise F.FormatError(f"{self.kind.decode()} chunk at offset {self.offset}: bad JSON ({exc})") from None

    def columns(self) -> F.Columns:
        return F.decode_columns(self.kind, self.payload)

    def strings(self) -> F.Strings:
        return F.decode_strings(self.payload)


@dataclass(frozen=True)
class ChunkSpan:
    """Where a chunk lies in the file, known from its header alone (`ChunkReader.spans`): its
    payload is neither read nor checked (`ChunkReader.chunk_at(offset)` reads it, checked)."""

    kind: bytes
    flags: int
    offset: int
    length: int  # payload bytes as stored

    @property
    def end(self) -> int:
        """Where the next chunk starts."""
        return self.offset + F.CHUNK_HEADER_SIZE + self.length + F.CHUNK_TRAILER_SIZE

    @property
    def compressed(self) -> bool:
        """The payload is stored zlib-compressed."""
        return bool(self.flags & F.FLAG_ZLIB)


class ChunkReader:
    """Reads the chunks of one `.ftr` file, from the start and then as it grows.

    Raises `FormatError` (one clear line) from the constructor or the first `poll()` when the
    file is not a session at all (missing, empty, wrong magic, newer major version).
    """

    READ_SIZE = 1 << 20

    def __init__(self, path: str | os.PathLike[str], *, read_size: int = READ_SIZE) -> None:
        """`read_size`: bytes per read; one poll reads at most ~64 of them (plus one chunk)."""
        self.path = os.fspath(path)
        self.read_size = read_size
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise F.FormatError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise F.FormatError(f"{self.path}: is a directory, not a session file") from None
        except OSError as exc:
            raise F.FormatError(f"{self.path}: cannot open ({exc.strerror})") from None
        self._data: bytes | None = None
        self.version: tuple[int, int] | None = None
        self.offset = 0  # bytes consumed (header + complete chunks)
        self.ended = False  # an ENDS chunk was read
        self.damage: str | None = None  # why reading stopped early, if it did
        # bytes after the last complete chunk: the first `_len` of `_buf`, a buffer that only
        # grows (reused by every poll: see `_read_more`)
        self._buf = bytearray()
        self._len = 0
        # chunk kinds handed over still compressed (Chunk.compressed): a reader that needs
        # few of their payloads, or needs them later, does not decompress them all up front
        self.keep_compressed: frozenset[bytes] = frozenset()

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<memory>") -> "ChunkReader":
        """A reader over a session held in memory (the seed API records this way)."""
        self = cls.__new__(cls)
        self.path = name
        self.read_size = cls.READ_SIZE
        self._fd = -2  # not a file descriptor: reads come from _data
        self._data = bytes(data)
        self.version = None
        self.offset = 0
        self.ended = False
        self.damage = None
        self._buf = bytearray()
        self._len = 0
        self.keep_compressed = frozenset()
        return self

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> "ChunkReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def size(self) -> int | None:
        """How many bytes the session has now (a live file grows); None once closed or when
        the file cannot be asked."""
        if self._data is not None:
            return len(self._data)
        if self._fd < 0:
            return None
        try:
            return os.fstat(self._fd).st_size
        except OSError:
            return None

    def mtime_ns(self) -> int | None:
        """When the file was last written (ns since the epoch); None for a session in memory,
        once closed, or when the file cannot be asked."""
        if self._fd < 0:
            return None
        try:
            return os.fstat(self._fd).st_mtime_ns
        except OSError:
            return None

    def chunk_at(self, offset: int) -> Chunk | None:
        """The chunk that starts at `offset` (an earlier poll's `Chunk.offset`) read again, its
        payload decompressed; None when it cannot be read whole and checked. A reader that let go
        of a chunk's contents gets them back this way when they are needed again. Reads through
        the reader's own file while it is open, else opens the file anew."""
        try:
            if self._data is not None:
                data = self._data
                return _chunk_in(lambda at, n: data[at : at + n], offset)
            if self._fd >= 0:
                fd = self._fd
                return _chunk_in(lambda at, n: os.pread(fd, n, at), offset)
            with open(self.path, "rb") as fh:
                return _chunk_in(lambda at, n: os.pread(fh.fileno(), n, at), offset)
        except (OSError, ValueError):  # (gone, closed meanwhile, or not a file any more)
            return None

    def spans(self, start: int, end: int | None = None) -> list[ChunkSpan]:
        """The chunks that lie whole in the file from `start` (where a chunk starts: `offset`,
        or an earlier span's `end`) up to `end` (default: the file's size now), found by walking
        their headers only -- a reader far behind a file being written finds its newest chunks
        this way without reading what comes before them. Stops before a chunk not whole yet, a
        header that cannot be a chunk's (damage: `poll` reports it once it gets there) and after
        an ENDS chunk. Nothing read is checked: `chunk_at` checks a chunk it reads."""
        size = self.size()
        end = size if end is None or size is None else min(end, size)
        out: list[ChunkSpan] = []
        pos = start
        while end is not None and pos + F.CHUNK_HEADER_SIZE <= end:
            head = self.peek(pos, F.CHUNK_HEADER_SIZE)
            if len(head) < F.CHUNK_HEADER_SIZE:
                break
            kind, flags, length = F.CHUNK_HEADER.unpack(head)
            if length > F.MAX_CHUNK_PAYLOAD or not kind.isalpha():
                break
            span = ChunkSpan(kind, flags, pos, length)
            if span.end > end:
                break
            out.append(span)
            if kind == F.ENDS:
                break
            pos = span.end
        return out

    def peek(self, offset: int, n: int) -> bytes:
        """Up to `n` bytes of the file at `offset`, as they are (b"" once closed or unreadable)."""
        if self._data is not None:
            return self._data[offset : offset + n]
        if self._fd < 0:
            return b""
        try:
            return os.pread(self._fd, n, offset)
        except OSError:
            return b""

    @property
    def pending_bytes(self) -> int:
        """Bytes after the last complete chunk (a chunk still being written, or junk)."""
        return self._len

    def _read_more(self) -> bool:
        """Read up to `read_size` more bytes into the buffer, past the `_len` it holds. The
        buffer is the same from poll to poll and only grows: a followed busy program's file
        grows ~100 MB a second, and a bytearray appended to and cut at each poll was given new
        memory over and over (CPython reallocates one whose size falls below half of it), ~2
        page faults per 1 000 calls read -- each 11-17 us on a VM's cold memory."""
        start = self.offset + self._len
        end = self._len + self.read_size
        if len(self._buf) < end:
            self._buf.extend(bytes(max(end, 2 * len(self._buf)) - len(self._buf)))
        with memoryview(self._buf) as view, view[self._len : end] as into:
            if self._data is not None:
                data = self._data[start : start + self.read_size]
                into[: len(data)] = data
                got = len(data)
            elif _preadv is not None:
                got = _preadv(self._fd, [into], start)
            else:  # (no preadv: read, then copy)
                data = os.pread(self._fd, self.read_size, start)
                into[: len(data)] = data
                got = len(data)
        self._len += got
        return got > 0

    def poll(self) -> list[Chunk]:
        """Return every chunk that is complete now and was not returned before."""
        if self._fd == -1 or self.damage is not None or self.ended:
            return []
        while self._read_more():
            if self._len > 64 * self.read_size and self._holds_a_chunk():
                break  # hand back what we have; the rest comes at the next poll
        with memoryview(self._buf) as whole, whole[: self._len] as buf:  # (released: the buffer may grow)
            out, pos = self._split(buf)
        self.offset += pos
        rest = self._len - pos
        if pos and rest:  # the start of a chunk not complete yet: to the buffer's start
            self._buf[:rest] = self._buf[pos : self._len]
        self._len = rest
        return out

    def _holds_a_chunk(self) -> bool:
        """True when the buffer holds at least one whole chunk (or cannot: it is damaged), so
        that the read bound never leaves a chunk larger than the bound unread."""
        pos = 0 if self.version is not None else F.FILE_HEADER_SIZE
        if self._len < pos + F.CHUNK_HEADER_SIZE:
            return False
        _kind, _flags, length = F.CHUNK_HEADER.unpack_from(self._buf, pos)
        if length > F.MAX_CHUNK_PAYLOAD:
            return True  # damaged: _split reports it
        return self._len >= pos + F.CHUNK_HEADER_SIZE + length + F.CHUNK_TRAILER_SIZE

    def _split(self, buf: memoryview) -> tuple[list[Chunk], int]:
        """The complete chunks at the start of `buf`, and how many bytes they take."""
        out: list[Chunk] = []
        pos = 0
        if self.version is None:
            if len(buf) < F.FILE_HEADER_SIZE:
                if not F.MAGIC.startswith(bytes(buf[: len(F.MAGIC)])):
                    F.parse_file_header(bytes(buf))  # raises: not a session
                return out, 0  # header not written yet (or empty file): wait
            self.version = F.parse_file_header(bytes(buf[: F.FILE_HEADER_SIZE]))
            pos = F.FILE_HEADER_SIZE

        def read(at: int, n: int) -> memoryview:
            return buf[at : at + n]

        while True:
            checked = _checked_chunk(read, pos, self.offset + pos, self.keep_compressed)
            if checked is None:
                break  # not whole yet: the next poll reads on
            if isinstance(checked, str):
                self.damage = checked
                break
            chunk, size = checked
            out.append(chunk)
            pos += size
            if chunk.kind == F.ENDS:
                self.ended = True
                break
        return out, pos


def _chunk_in(read: Callable[[int, int], bytes], offset: int) -> Chunk | None:
    """The chunk at `offset` of what `read(at, size)` reads, checked (its CRC) and decompressed
    (ChunkReader.chunk_at); None when it is not whole or not right."""
    checked = _checked_chunk(read, offset, offset)
    return checked[0] if isinstance(checked, tuple) else None


def _checked_chunk(read: Callable[[int, int], Any], at: int, offset: int,
                   keep_compressed: frozenset[bytes] = frozenset()) -> tuple[Chunk, int] | str | None:
    """The chunk that starts at `at` of what `read(at, size)` reads (`offset`: where that is in
    the file) and the bytes it takes, its CRC checked and its payload decompressed unless its
    kind is in `keep_compressed`; None when it is not whole (yet); why not, when it is damaged
    (one line: the reader's `damage`). The one check of a chunk, for `poll` and `chunk_at`."""
    head = read(at, F.CHUNK_HEADER_SIZE)
    if len(head) < F.CHUNK_HEADER_SIZE:
        return None
    kind, flags, length = F.CHUNK_HEADER.unpack_from(head)
    if length > F.MAX_CHUNK_PAYLOAD or not kind.isalpha():
        return f"damaged chunk header at offset {offset}"
    body = read(at + F.CHUNK_HEADER_SIZE, length + F.CHUNK_TRAILER_SIZE)
    if len(body) < length + F.CHUNK_TRAILER_SIZE:
        return None
    (crc,) = F.CHUNK_TRAILER.unpack_from(body, length)
    stored = body[:length]
    if zlib.crc32(stored, zlib.crc32(head)) != crc:
        return f"corrupt {kind.decode('ascii', 'replace')} chunk at offset {offset}"
    size = F.CHUNK_HEADER_SIZE + length + F.CHUNK_TRAILER_SIZE
    compressed = bool(flags & F.FLAG_ZLIB) and kind in keep_compressed
    if flags & F.FLAG_ZLIB and not compressed:
        try:
            return Chunk(kind, zlib.decompress(stored), offset), size
        except zlib.error:
            return f"undecodable {kind.decode()} chunk at offset {offset}"
    return Chunk(kind, bytes(stored), offset, compressed), size
