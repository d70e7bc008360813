"""The decoded records of column and text chunks (`format.decode_columns`,
`format.decode_strings`): imported on first use through `flowtrace.ftr.format` (`F.Column`,
`F.Columns`, `F.Strings`), so that a recording process, which only encodes, does not load
dataclasses at start-up."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import Mapping

from .format import _LITTLE, ENC_DELTA


@dataclass(frozen=True)
class Column:
    """One decoded column: `data` is the stored bytes (little-endian) of `rows` items."""

    name: str
    typecode: str
    encoding: int
    data: memoryview

    def values(self) -> list[int]:
        """Decode to plain ints (stdlib path; the explorer uses numpy on `data` instead)."""
        ints = self.ints()
        return ints.tolist() if isinstance(ints, array) else ints

    def ints(self) -> "array | list[int]":
        """The values, as an array when they are stored as they are (no Python int per value
        until one is used: enough for max, min, set and map), else as a list."""
        arr = array(self.typecode)
        arr.frombytes(self.data)
        if not _LITTLE:
            arr.byteswap()
        if self.encoding == ENC_DELTA:
            return list(accumulate(arr))  # cumulative sum in C, exact (Python ints)
        return arr


@dataclass(frozen=True)
class Columns:
    """A decoded CALL / EXIT / MARK chunk."""

    kind: bytes
    base: int
    rows: int
    columns: Mapping[str, Column]

    def get(self, name: str, default: int = 0) -> list[int]:
        """Values of a column, or `default` repeated when the writer left the column out."""
        col = self.columns.get(name)
        return col.values() if col is not None else [default] * self.rows



@dataclass(frozen=True)
class Strings:
    """A decoded STRS chunk; `text(i)` for first_id <= i < first_id + count."""

    first_id: int
    count: int
    offsets: array
    blob: memoryview

    def text(self, string_id: int) -> str:
        i = string_id - self.first_id
        return bytes(self.blob[self.offsets[i] : self.offsets[i + 1]]).decode("utf-8", "replace")

    def texts(self) -> list[str]:
        """Every text of the chunk, in id order (`text(first_id + i)` for each i), decoded in
        one go: for a reader that will ask for most of them."""
        data = bytes(self.blob)
        offsets = self.offsets
        if data.isascii():  # one decode, then slices of the str (the common case)
            whole = data.decode("ascii")
            return [whole[a:b] for a, b in zip(offsets, offsets[1 : self.count + 1])]
        return [data[a:b].decode("utf-8", "replace") for a, b in zip(offsets, offsets[1 : self.count + 1])]
