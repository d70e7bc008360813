"""A session's META and ENDS objects without reading its calls.

A directory of test sessions is listed by what their first and last chunks say (the test, its
outcome, the number of calls); reading every call of every file for that would cost as much as
opening each one. `read_summary` walks the chunk headers, seeking past every other payload, and
checks and decodes only the two JSON chunks it wants.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from . import format as F


@dataclass(frozen=True)
class Summary:
    """`meta` (the META object), `end` (ENDS, or None: unfinished or damaged), `problem` (why
    the walk stopped early, else None), `size` in bytes."""

    meta: dict[str, Any]
    end: dict[str, Any] | None
    problem: str | None
    size: int


def _json_chunk(f: BinaryIO, header: bytes, flags: int, length: int, offset: int) -> dict[str, Any]:
    body = f.read(length + F.CHUNK_TRAILER_SIZE)
    if len(body) < length + F.CHUNK_TRAILER_SIZE:
        raise EOFError
    stored = body[:length]
    (crc,) = F.CHUNK_TRAILER.unpack_from(body, length)
    if zlib.crc32(stored, zlib.crc32(header)) != crc:
        raise F.FormatError(f"corrupt chunk at offset {offset}")
    try:
        value = json.loads(zlib.decompress(stored) if flags & F.FLAG_ZLIB else stored)
    except (ValueError, zlib.error):
        raise F.FormatError(f"undecodable chunk at offset {offset}") from None
    if not isinstance(value, dict):
        raise F.FormatError(f"chunk at offset {offset} is not a JSON object")
    return value


def read_summary(path: str | os.PathLike[str]) -> Summary:
    """META and ENDS of the session at `path`. FormatError (one line, with the file name) when
    it is not a session or its META cannot be read; a later problem is in `problem`."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            try:
                F.parse_file_header(f.read(F.FILE_HEADER_SIZE))
            except F.FormatError as exc:
                raise F.FormatError(f"{name}: {exc}") from None
            return _walk(f, name, size)
    except OSError as exc:
        raise F.FormatError(f"{name}: cannot read ({exc.strerror or exc})") from None


def _walk(f: BinaryIO, name: str, size: int) -> Summary:
    meta: dict[str, Any] | None = None
    offset = F.FILE_HEADER_SIZE
    problem: str | None = None
    while True:
        header = f.read(F.CHUNK_HEADER_SIZE)
        if len(header) < F.CHUNK_HEADER_SIZE:
            problem = None if not header else "no end record: the last chunk is incomplete"
            break
        kind, flags, length = F.CHUNK_HEADER.unpack(header)
        if length > F.MAX_CHUNK_PAYLOAD or not kind.isalpha():
            problem = f"damaged chunk header at offset {offset}"
            break
        try:
            if kind in (F.META, F.ENDS) and (meta is None) == (kind == F.META):
                value = _json_chunk(f, header, flags, length, offset)
                if kind == F.ENDS:
                    return Summary(meta or {}, value, None, size)
                meta = value
            else:
                f.seek(length + F.CHUNK_TRAILER_SIZE, os.SEEK_CUR)
        except EOFError:
            problem = "no end record: the last chunk is incomplete"
            break
        except F.FormatError as exc:
            problem = str(exc)
            break
        offset += F.CHUNK_HEADER_SIZE + length + F.CHUNK_TRAILER_SIZE
        if offset > size:
            problem = "no end record: the last chunk is incomplete"
            break
    if meta is None:
        raise F.FormatError(f"{name}: no readable session metadata ({problem or 'empty session'})")
    return Summary(meta, None, problem or "no end record: the program is still running, or was killed", size)
