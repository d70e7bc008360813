"""The `.ftr` session format: constants and the encoding of chunks (see docs/FORMAT.md).

This module is the single place where bytes on disk are defined; the writer and the reader
both go through it. Standard library only: it is imported by the tracer inside user programs.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from array import array
from typing import TYPE_CHECKING, Any, Iterable

MAGIC = b"\x89FTR\r\n\x1a\n"
VERSION_MAJOR = 1
VERSION_MINOR = 10  # 1.1: MARK kind 6 (fold) and its columns n, run, span; 1.2: varint columns;
# 1.3: encodings 5-8 (parent codes, sparse, bit-packed); 1.4: STRS value records; 1.5: their
# tuple and list slots; 1.6: EXIT how 4 (raised here) and a batch's MARK chunk before its EXIT chunk;
# 1.7: object slots inside record tuples and lists (written by the C recorder; read since 1.5);
# 1.8: encoding 13, a deflated column (the C recorder's writer: a MARK chunk's columns but its times);
# 1.9: encoding 14, a column on another's rows (the C recorder's MARK run and span, on n's rows);
# 1.10: record slot tag 7, a text that is an entry of the chunk's dictionary (the C recorder's literals seen again)
FILE_HEADER = struct.Struct("<8sHHI")  # magic, major, minor, flags (0)
FILE_HEADER_SIZE = FILE_HEADER.size  # 16

CHUNK_HEADER = struct.Struct("<4sB3xI")  # type, flags, payload length
CHUNK_HEADER_SIZE = CHUNK_HEADER.size  # 12
CHUNK_TRAILER = struct.Struct("<I")  # crc32 of header + payload as stored
CHUNK_TRAILER_SIZE = CHUNK_TRAILER.size
FLAG_ZLIB = 0x01
MAX_CHUNK_PAYLOAD = 1 << 30  # a larger length is treated as corruption

# Chunk types.
META = b"META"  # JSON object: session metadata; always the first chunk
FUNC = b"FUNC"  # JSON list of function definitions
THRD = b"THRD"  # JSON list of thread definitions
TASK = b"TASK"  # JSON list of asyncio task definitions
STRS = b"STRS"  # interned texts (arguments, results, exceptions)
CALL = b"CALL"  # columns: one row per call start, ids consecutive from `base`
EXIT = b"EXIT"  # columns: one row per call end
MARK = b"MARK"  # columns: suspend / resume / throw / raise / handled events inside a call
ENDS = b"ENDS"  # JSON object: the session ended cleanly; always the last chunk
JSON_CHUNKS = frozenset({META, FUNC, THRD, TASK, ENDS})
COLUMN_CHUNKS = frozenset({CALL, EXIT, MARK})

# EXIT.how
END_RETURN = 1
END_RAISE = 2
END_UNFINISHED = 3
# (1.6) left by an exception raised in this call: END_RAISE, and the call's `raise` mark at t1
# with ref = val, in one row (docs/FORMAT.md, "Exceptions")
END_RAISE_HERE = 4
END_NAMES = {END_RETURN: "return", END_RAISE: "raise", END_UNFINISHED: "unfinished", END_RAISE_HERE: "raise"}
RAISED = frozenset({END_RAISE, END_RAISE_HERE})  # the `how` values of a call left by an exception


def end_kind(how: int) -> int:
    """How a call ended, without where its exception was raised: END_RAISE for END_RAISE_HERE."""
    return END_RAISE if how == END_RAISE_HERE else how

# MARK.kind
MARK_SUSPEND = 1  # the generator/coroutine yielded or awaited; ref = yielded value text
MARK_RESUME = 2  # it was resumed; other = the call that resumed it (0 if none recorded)
MARK_THROW = 3  # it was resumed by throw(); ref = the exception thrown in; other = resumer
MARK_RAISE = 4  # an exception was raised in this call; ref = exception text
MARK_HANDLED = 5  # an exception was caught in this call; ref = exception text
# (1.1) `n` quiet runs of a generator, each a resume by `other` ending at a yield, folded into
# one row: t = the first resume, span = the last yield - t, run = their summed running ns,
# ref = the first run's yielded value (docs/FORMAT.md, "Folded resumes")
MARK_FOLD = 6
MARK_NAMES = {
    MARK_SUSPEND: "suspend",
    MARK_RESUME: "resume",
    MARK_THROW: "throw",
    MARK_RAISE: "raise",
    MARK_HANDLED: "handled",
    MARK_FOLD: "fold",
}

# CALL.flag bits
CALL_PARTIAL = 0x01  # already running when recording started: start time and args unknown

# Column encodings
ENC_RAW = 0
ENC_DELTA = 1  # stored[i] = value[i] - value[i-1] (stored[0] = value[0]); decode = cumulative sum
# (1.2) varint columns: a u32 byte count, then LEB128 varints (docs/FORMAT.md, "Varint columns")
ENC_VARINT_DELTA = 2  # the zigzagged steps between neighbouring rows (the first from 0)
ENC_VARINT = 3  # the values themselves (as unsigned 64-bit)
ENC_CONST = 4  # one value, for every row
# (1.3) the same framing, other bodies (docs/FORMAT.md, "Varint columns")
ENC_PARENT = 5  # CALL.par: 2k = k steps up the parent chain from the previous call; odd: outright
ENC_SPARSE_DELTA = 6  # a bitmap of the rows that are not 0, then their zigzagged steps (Golomb codes)
ENC_SPARSE = 7  # a bitmap of the rows that are not 0, then their values (Golomb codes)
ENC_BITS = 8  # the minimum, a width in bits, then each value - minimum in that many bits
# (1.3) Exp-Golomb codes of order k (a u8), in a bit stream: of the zigzagged steps (as 2), of
# the values (as 3), of ENC_PARENT's codes (as 5)
ENC_GOLOMB_DELTA = 9
ENC_GOLOMB = 10
ENC_GOLOMB_PARENT = 11
ENC_GOLOMB_RISE = 12  # of the steps, unsigned (a column that only rises: times)
GOLOMB_ENCODINGS = frozenset({ENC_GOLOMB_DELTA, ENC_GOLOMB, ENC_GOLOMB_PARENT, ENC_GOLOMB_RISE})
# (1.8) the same framing: one byte, an encoding 2-12, then a zlib stream of that encoding's body
ENC_DEFLATE = 13
INNER_ENCODINGS = frozenset({ENC_VARINT_DELTA, ENC_VARINT, ENC_CONST, ENC_PARENT, ENC_SPARSE_DELTA,
                             ENC_SPARSE, ENC_BITS}) | GOLOMB_ENCODINGS  # (what ENC_DEFLATE may hold)
# (1.9) the same framing: one byte, the index j of an earlier column of the chunk, then a Golomb
# stream (as ENC_GOLOMB) of the values of the rows where column j is not 0; the others are 0
ENC_SHARED = 14
VARINT_ENCODINGS = INNER_ENCODINGS | {ENC_DEFLATE, ENC_SHARED}
DEFLATE_COLUMNS = 2  # a chunk's `compress` to the native writer: deflate its columns but the times (1.8)
VARINT_BODY = struct.Struct("<I")  # a varint column's byte count

COLUMNS_HEADER = struct.Struct("<QIHH")  # base, rows, column count, reserved
COLUMN_DESC = struct.Struct("<4scBH")  # name, array typecode, encoding, reserved
TYPECODES = {"B": 1, "H": 2, "I": 4, "i": 4, "q": 8, "Q": 8}

_LITTLE = sys.byteorder == "little"

try:  # the C extension's decoder (the C recorder writes varint columns); same values as below
    from .._crecorder import decode_varints as _c_decode_varints  # type: ignore[attr-defined]
except ImportError:
    _c_decode_varints = None
try:  # ... and of shared columns (1.9); same values as rows_bitmap and ENC_SPARSE's decoder
    from .._crecorder import decode_shared as _c_decode_shared  # type: ignore[attr-defined]
except ImportError:
    _c_decode_shared = None
try:  # ... and its FUNC payloads (common.func_entry's entries); the same bytes as json_payload
    from .._crecorder import func_json as _c_func_json  # type: ignore[attr-defined]
except ImportError:
    _c_func_json = None
try:  # ... and its reader of value records (1.4); same texts as _py_expand_strings
    from .._crecorder import expand_strings as _c_expand_strings  # type: ignore[attr-defined]
except ImportError:
    _c_expand_strings = None


if TYPE_CHECKING:
    from .records import Column, Columns, Strings


def __getattr__(name: str) -> Any:
    """`Column`, `Columns` and `Strings`, the decoded records, live in ftr/records.py and load
    on first use: a recording process encodes only, and the dataclasses module they are made
    with costs more to import than the rest of this module (start-up of `flowtrace run`)."""
    if name in ("Column", "Columns", "Strings"):
        from . import records

        return getattr(records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FormatError(Exception):
    """A file or chunk that does not follow the .ftr format; the message is one line for a user."""


def column_name(name: str) -> bytes:
    """Column names are four ASCII bytes, padded with spaces ('t0' -> b't0  ')."""
    raw = name.encode("ascii")
    if len(raw) > 4:
        raise ValueError(f"column name {name!r} is longer than 4 characters")
    return raw.ljust(4, b" ")


def file_header() -> bytes:
    return FILE_HEADER.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR, 0)


def parse_file_header(data: bytes) -> tuple[int, int]:
    """Check the 16-byte header; return (major, minor). Raise FormatError with a clear reason."""
    if len(data) < FILE_HEADER_SIZE:
        if MAGIC.startswith(bytes(data[: len(MAGIC)])) and data:
            raise FormatError("the file is truncated inside its header")
        raise FormatError("not a flowtrace session file (empty or too short)")
    magic, major, minor, _flags = FILE_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a flowtrace session file (wrong magic bytes)")
    if major > VERSION_MAJOR:
        raise FormatError(
            f"the file is format version {major}.{minor}, newer than this flowtrace reads "
            f"({VERSION_MAJOR}.{VERSION_MINOR}); upgrade flowtrace"
        )
    return major, minor


def frame_chunk(kind: bytes, payload: bytes, compress: bool | int = False) -> bytes:
    """Frame one chunk: header, payload (zlib-compressed when asked and worth it; its columns
    one by one with DEFLATE_COLUMNS), crc32."""
    flags = 0
    if type(compress) is int and compress == DEFLATE_COLUMNS:  # (True is not an int here)
        payload = deflate_columns(payload)
    elif compress and len(payload) > 64:
        packed = zlib.compress(payload, 1)
        if len(packed) < len(payload):
            payload, flags = packed, FLAG_ZLIB
    header = CHUNK_HEADER.pack(kind, flags, len(payload))
    crc = zlib.crc32(payload, zlib.crc32(header))
    return header + payload + CHUNK_TRAILER.pack(crc)


def json_payload(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def func_payload(functions: list[dict[str, Any]]) -> bytes:
    """A FUNC chunk's payload: json_payload(functions), byte for byte. The C extension writes the
    recorders' entries itself (json.dumps took ~13,000 instructions an entry: ~53 M for the
    ~4,000 code objects of flask's test_basic); any other entry goes to json.dumps."""
    if _c_func_json is not None:
        payload = _c_func_json(functions)
        if payload is not None:
            return payload
    return json_payload(functions)


def encode_columns(base: int, rows: int, columns: Iterable[tuple[str, str, int, Any]]) -> bytes:
    """Encode a columns payload. `columns` yields (name, typecode, encoding, values) where values
    is an array.array of that typecode (or any iterable of ints) already delta-encoded when
    encoding is ENC_DELTA, and the plain values for a varint encoding. Every column must have
    `rows` values."""
    descs = []
    datas = []
    seen: list[list[int]] = []
    for name, typecode, encoding, values in columns:
        if encoding == ENC_SHARED:  # values: (the index of an earlier column, the rows' values)
            index, values = values
            values = list(values)
            if len(values) != rows or not 0 <= index < len(seen):
                raise ValueError(f"column {name!r}: {len(values)} values, or no column {index} before it")
            body = shared_body(index, values, seen[index])
            seen.append(values)
            descs.append(COLUMN_DESC.pack(column_name(name), typecode.encode(), encoding, 0))
            datas.append(VARINT_BODY.pack(len(body)) + body)
            continue
        if encoding in VARINT_ENCODINGS:
            values = list(values)
            seen.append(values)
            if len(values) != rows:
                raise ValueError(f"column {name!r} has {len(values)} values, expected {rows}")
            body = encode_varints(values, encoding, base, typecode)
            descs.append(COLUMN_DESC.pack(column_name(name), typecode.encode(), encoding, 0))
            datas.append(VARINT_BODY.pack(len(body)) + body)
            continue
        if not isinstance(values, array) or values.typecode != typecode:
            values = array(typecode, values)
        seen.append(list(values) if encoding == ENC_RAW else list(_cumsum(values)))
        if values.itemsize != TYPECODES[typecode]:  # e.g. 'I' on an exotic platform
            raise ValueError(f"array typecode {typecode!r} has itemsize {values.itemsize}")
        if len(values) != rows:
            raise ValueError(f"column {name!r} has {len(values)} values, expected {rows}")
        if not _LITTLE:
            values = array(typecode, values)
            values.byteswap()
        descs.append(COLUMN_DESC.pack(column_name(name), typecode.encode(), encoding, 0))
        datas.append(values.tobytes())
    return COLUMNS_HEADER.pack(base, rows, len(descs), 0) + b"".join(descs) + b"".join(datas)


_U64 = 0xFFFFFFFFFFFFFFFF


def _cumsum(steps: Iterable[int]) -> Iterable[int]:
    acc = 0
    for d in steps:
        acc += d
        yield acc


def _zigzag(d: int) -> int:
    d = ((d + (1 << 63)) & _U64) - (1 << 63)  # the step, in 64 bits
    return ((d << 1) ^ (d >> 63)) & _U64  # small steps either way


def _put_varint(out: bytearray, v: int) -> None:
    v &= _U64
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def encode_varints(values: list[int], encoding: int, base: int = 0, typecode: str = "") -> bytes:
    """A varint column's body without its byte count (the C recorder's encoder, in Python: the
    definition, and what tests write; ENC_CONST takes the first value for every row; `base`:
    the chunk's first call id, for ENC_PARENT; `typecode`: the column's, which golomb_sparse
    reads)."""
    out = bytearray()
    if encoding == ENC_CONST:
        _put_varint(out, values[0])
    elif encoding in (ENC_VARINT_DELTA, ENC_VARINT):
        prev = 0
        for v in values:
            _put_varint(out, _zigzag(v - prev) if encoding == ENC_VARINT_DELTA else v)
            prev = v
    elif encoding == ENC_PARENT:
        for v in parent_codes(values, base):
            _put_varint(out, v)
    elif encoding in (ENC_SPARSE, ENC_SPARSE_DELTA):
        bitmap = bytearray((len(values) + 7) // 8)
        for i, v in enumerate(values):
            if v:
                bitmap[i >> 3] |= 1 << (i & 7)
        nonzero = [v for v in values if v]
        out += bitmap + _golomb_body(_golomb_input(nonzero, ENC_GOLOMB if encoding == ENC_SPARSE else ENC_GOLOMB_DELTA, 0))
    elif encoding in GOLOMB_ENCODINGS:
        out += _golomb_body(_golomb_input(values, encoding, base), golomb_sparse(typecode, encoding))
    elif encoding == ENC_BITS:
        lo = min(values, default=0)
        width = (max(values, default=0) - lo).bit_length()
        _put_varint(out, lo)
        out.append(width)
        acc = have = 0
        for v in values:  # little-endian bit stream, value i at bits i*width ..
            acc |= (v - lo) << have
            have += width
            while have >= 8:
                out.append(acc & 0xFF)
                acc >>= 8
                have -= 8
        if have:
            out.append(acc)
    else:
        raise ValueError(f"not a varint encoding: {encoding}")
    return bytes(out)


def _golomb_input(values: list[int], encoding: int, base: int) -> list[int]:
    if encoding == ENC_GOLOMB_PARENT:
        return parent_codes(values, base)
    if encoding == ENC_GOLOMB:
        return [v & _U64 for v in values]
    if encoding == ENC_GOLOMB_RISE:
        return [(v - prev) & _U64 for prev, v in zip([0] + values, values)]
    return [_zigzag(v - prev) for prev, v in zip([0] + values, values)]


GOLOMB_SAMPLE_SPAN = 4608  # a sparse sample's steps are 1 + len // this times as long (encode.c's SAMPLE_SPAN)


def golomb_sample(values: list[int], sparse: bool = False) -> list[int]:
    """The values the C writer picks a Golomb order from (encode.c's sample_step): the first,
    then steps of 1-8 drawn from a 32-bit LCG (~1 value in 4.5, at no fixed period); `sparse`
    (a time column's, CALL.par's: golomb_sparse) each step 1 + len(values) // GOLOMB_SAMPLE_SPAN
    times as long (~1,000-2,000 values of a long column)."""
    out, i, r, stride = [], 0, 1, 1 + len(values) // GOLOMB_SAMPLE_SPAN if sparse else 1
    while i < len(values):
        out.append(values[i])
        r = (r * 1103515245 + 12345) & 0xFFFFFFFF
        i += stride * (1 + (r >> 29))
    return out


def golomb_sparse(typecode: str, encoding: int) -> bool:
    """Is this column's Golomb order taken from the sparse sample (encode.c: a time column --
    'q', the only 8-byte columns it codes this way -- and ENC_GOLOMB_PARENT)?"""
    return encoding == ENC_GOLOMB_PARENT or (typecode == "q" and encoding in GOLOMB_ENCODINGS)


def golomb_order(values: list[int], sparse: bool = False) -> int:
    """The order k the C writer takes for these values (encode.c's golomb_k): the smallest
    estimated total over golomb_sample(values), one of b significant bits costing k + 1 bits
    when b <= k, else ~2b - k. (Any k reads back: this is the writer's choice only.)"""
    counts: dict[int, int] = {}
    for v in golomb_sample(values, sparse):
        counts[v.bit_length()] = counts.get(v.bit_length(), 0) + 1
    costs = [sum(n * (k + 1 if b <= k else 2 * b - k) for b, n in counts.items()) for k in range(40)]
    return costs.index(min(costs))


def _golomb_body(values: list[int], sparse: bool = False) -> bytes:
    k = golomb_order(values, sparse)
    bits = []
    for v in values:  # x = v + 2^k after (bits of x - k - 1) zeros
        x = v + (1 << k)
        bits.append("0" * (x.bit_length() - k - 1) + format(x, "b"))
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return bytes([k]) + (int(stream, 2).to_bytes(len(stream) // 8, "big") if stream else b"")


PARENT_WALK = 64  # the longest walk up the chain a writer tries (encode.c's PARENT_WALK)


def parent_codes(parents: list[int], base: int) -> list[int]:
    """ENC_PARENT's codes for the parents of calls base, base+1, ...: 2k when the parent is k
    steps up the chain from the previous call (through this chunk's rows), else
    zigzag(id - 1 - parent) << 1 | 1."""
    codes = []
    for i, p in enumerate(parents):
        q, code = base + i - 1, None
        for k in range(PARENT_WALK):
            if q == p:
                code = k << 1
                break
            if not 0 <= q - base < i:
                break
            q = parents[q - base]
        codes.append(code if code is not None else (_zigzag(base + i - 1 - p) << 1) | 1)
    return codes


def delta_encode(values: Iterable[int], typecode: str = "q") -> array:
    """Differences between consecutive values (the first kept as is), for ENC_DELTA columns."""
    out = array(typecode)
    prev = 0
    append = out.append
    for v in values:
        append(v - prev)
        prev = v
    return out


def decode_columns(kind: bytes, payload: bytes | memoryview, only: frozenset[str] | None = None) -> Columns:
    """A CALL / EXIT / MARK payload's columns; `only`: the names of the columns to decode (the
    others are framed, not decoded, and left out; all of them when one of those is stored on
    another's rows, ENC_SHARED)."""
    from .records import Column, Columns

    view = memoryview(payload)
    if len(view) < COLUMNS_HEADER.size:
        raise FormatError(f"{kind.decode()} chunk too short")
    base, rows, ncols, _ = COLUMNS_HEADER.unpack_from(view)
    pos = COLUMNS_HEADER.size
    descs = []
    for _i in range(ncols):
        if pos + COLUMN_DESC.size > len(view):
            raise FormatError(f"{kind.decode()} chunk: column table cut short")
        raw_name, tc, enc, _r = COLUMN_DESC.unpack_from(view, pos)
        pos += COLUMN_DESC.size
        typecode = tc.decode("ascii", "replace")
        if typecode not in TYPECODES:
            raise FormatError(f"{kind.decode()} chunk: unknown column type {typecode!r}")
        descs.append((raw_name.decode("ascii", "replace").rstrip(), typecode, enc))
    cols = {}
    read: list[Column] = []  # (in descriptor order: ENC_SHARED's index)
    if only is not None and any(enc == ENC_SHARED and name in only for name, _tc, enc in descs):
        only = None
    for name, typecode, enc in descs:
        if only is not None and name not in only:
            pos += _framed_size(kind, name, typecode, enc, view, pos, rows)
            read.append(None)  # type: ignore[arg-type]  (not decoded; no column asked for is shared)
            continue
        if enc in VARINT_ENCODINGS:
            if pos + VARINT_BODY.size > len(view):
                raise FormatError(f"{kind.decode()} chunk: column {name!r} cut short")
            (size,) = VARINT_BODY.unpack_from(view, pos)
            pos += VARINT_BODY.size
            if pos + size > len(view):
                raise FormatError(f"{kind.decode()} chunk: column {name!r} cut short")
            body = view[pos : pos + size]
            data = decode_shared(body, rows, read) if enc == ENC_SHARED else decode_varints(body, rows, enc, base)
            cols[name] = Column(name, "q", ENC_RAW, data)
        elif enc in (ENC_RAW, ENC_DELTA):
            size = rows * TYPECODES[typecode]
            if pos + size > len(view):
                raise FormatError(f"{kind.decode()} chunk: column {name!r} cut short")
            cols[name] = Column(name, typecode, enc, view[pos : pos + size])
        else:
            raise FormatError(f"{kind.decode()} chunk: column {name!r} has an unknown encoding {enc}")
        read.append(cols[name])
        pos += size
    return Columns(kind, base, rows, cols)


def _framed_size(kind: bytes, name: str, typecode: str, enc: int, view: memoryview, pos: int, rows: int) -> int:
    """The bytes of the column at `pos` that `decode_columns` leaves undecoded, checked as it
    checks them."""
    if enc in VARINT_ENCODINGS:
        if pos + VARINT_BODY.size > len(view):
            raise FormatError(f"{kind.decode()} chunk: column {name!r} cut short")
        size = VARINT_BODY.size + VARINT_BODY.unpack_from(view, pos)[0]
    elif enc in (ENC_RAW, ENC_DELTA):
        size = rows * TYPECODES[typecode]
    else:
        raise FormatError(f"{kind.decode()} chunk: column {name!r} has an unknown encoding {enc}")
    if pos + size > len(view):
        raise FormatError(f"{kind.decode()} chunk: column {name!r} cut short")
    return size


def decode_varints(body: bytes | memoryview, rows: int, encoding: int, base: int = 0) -> memoryview:
    """A varint column's `rows` values as little-endian i64 bytes (a raw 'q' column to every
    consumer); `base`: the chunk's first call id (ENC_PARENT). FormatError when the body does
    not hold exactly `rows` values."""
    if encoding == ENC_DEFLATE:
        encoding, body = inflate_column(body, rows)
    if _c_decode_varints is not None:
        try:
            return memoryview(_c_decode_varints(body, rows, encoding, base))
        except (ValueError, OverflowError):
            raise FormatError("a varint column does not hold its rows") from None
    return memoryview(_py_decode_varints(bytes(body), rows, encoding, base))


def decode_shared(body: bytes | memoryview, rows: int, earlier: list[Column]) -> memoryview:
    """An ENC_SHARED column's rows (as decode_varints gives them), `earlier` the chunk's columns
    before it; FormatError when its index names no earlier column or its stream does not hold
    one value for each row where that column is not 0. Its stream is an ENC_SPARSE body's
    without the bitmap: the C extension reads it off that column's rows, else the bitmap is
    made from that column and ENC_SPARSE's decoder reads them (the same values)."""
    if len(body) < 1 or body[0] >= len(earlier):
        raise FormatError("a column on another's rows names no earlier column")
    col = earlier[body[0]]
    data = col.data if col.typecode == "q" and col.encoding == ENC_RAW else array("q", col.ints()).tobytes()
    if _c_decode_shared is not None:
        try:
            return memoryview(_c_decode_shared(body[1:], rows, data))
        except (ValueError, OverflowError):
            raise FormatError("a column on another's rows does not hold its rows") from None
    return decode_varints(rows_bitmap(bytes(data), rows) + bytes(body[1:]), rows, ENC_SPARSE)


_NONZERO = bytes([0] + [1] * 255)


def rows_bitmap(data: bytes, rows: int) -> bytes:
    """ENC_SPARSE's bitmap (bit i % 8 of byte i / 8) of the rows of `data` (8 bytes a row) that
    are not 0, in whole-buffer steps (translate, slices, big-int ORs: no Python step per row,
    ~20 ns a row against ~50 for a loop)."""
    ones = data.translate(_NONZERO)  # (a byte not 0 -> 1)
    flags = 0
    for k in range(8):  # row i's 8 bytes ORed: bit 8i
        flags |= int.from_bytes(ones[k::8], "little")
    per_row = flags.to_bytes(rows, "little")
    bitmap = 0
    for k in range(8):  # row 8j+k's flag to bit 8j+k
        bitmap |= int.from_bytes(per_row[k::8], "little") << k
    return bitmap.to_bytes((rows + 7) // 8, "little")


def shared_body(index: int, values: list[int], earlier: list[int]) -> bytes:
    """An ENC_SHARED body (1.9): column `index`'s rows `earlier` not 0 are those of `values`
    (the others must be 0); the C drain's, in Python."""
    if any(v for v, e in zip(values, earlier) if not e):
        raise ValueError("a value on a row where the shared column is 0")
    return bytes([index]) + encode_varints([v for v, e in zip(values, earlier) if e], ENC_GOLOMB)


def deflate_column(encoding: int, body: bytes) -> bytes:
    """An ENC_DEFLATE body (1.8) holding a body of `encoding` (2-12); the C writer's, in Python."""
    if encoding not in INNER_ENCODINGS:
        raise ValueError(f"not an encoding a deflated column holds: {encoding}")
    return bytes([encoding]) + zlib.compress(body, 1)


KEPT_CODED = frozenset({b"t   ", b"t0  ", b"t1  ", b"run ", b"span", b"args", b"val "})
# (times: zlib gains 5-10% there for two thirds of its work on a MARK chunk; CALL's argument and
# EXIT's result ids: zlib's work on them cost generators with arguments ~11 M instructions a run
# of scale 3 for bytes no goal asks for -- callgrind, benchmarks' generators)


def deflate_columns(payload: bytes) -> bytes:
    """A columns payload with each column of encodings 2-12 whose name is not in KEPT_CODED,
    and longer than 64 bytes, deflated (ENC_DEFLATE) where that is smaller (ENC_SHARED columns
    as they are): what the native writer does to a chunk put with DEFLATE_COLUMNS (writer.c's
    deflate_columns: the same rule, the same bytes with the same zlib). A payload that does not
    parse as columns of encodings 2-12 and 14 (not the C drain's) is returned as it is."""
    if len(payload) < COLUMNS_HEADER.size:
        return payload
    _base, rows, ncols, _r = COLUMNS_HEADER.unpack_from(payload)
    pos = COLUMNS_HEADER.size + ncols * COLUMN_DESC.size
    if pos > len(payload):
        return payload
    descs = bytearray(payload[COLUMNS_HEADER.size : pos])
    bodies = []
    for k in range(ncols):
        name, enc = bytes(descs[8 * k : 8 * k + 4]), descs[8 * k + 5]
        if (enc not in INNER_ENCODINGS and enc != ENC_SHARED) or pos + VARINT_BODY.size > len(payload):
            return payload
        (size,) = VARINT_BODY.unpack_from(payload, pos)
        body = payload[pos + 4 : pos + 4 + size]
        if len(body) != size:
            return payload
        pos += 4 + size
        if name not in KEPT_CODED and size > 64 and enc != ENC_SHARED:
            packed = deflate_column(enc, body)
            if len(packed) < size:
                body, descs[8 * k + 5] = packed, ENC_DEFLATE
        bodies.append(VARINT_BODY.pack(len(body)) + body)
    if pos != len(payload):
        return payload
    return payload[: COLUMNS_HEADER.size] + bytes(descs) + b"".join(bodies)


def body_bound(rows: int) -> int:
    """The most bytes a column body of `rows` values takes in any encoding 2-12 (a Golomb code:
    <= 129 bits; a sparse column's bitmap besides; ENC_BITS' minimum and width)."""
    return 18 * rows + 16


def inflate_column(body: bytes | memoryview, rows: int) -> tuple[int, bytes]:
    """The inner encoding and body of an ENC_DEFLATE body; FormatError when the byte is not an
    encoding 2-12, or the stream does not inflate to at most body_bound(rows) bytes exactly."""
    bad = FormatError("a deflated column does not hold its rows")
    if len(body) < 1 or body[0] not in INNER_ENCODINGS:
        raise bad
    z = zlib.decompressobj()
    try:
        inner = z.decompress(bytes(body[1:]), body_bound(rows) + 1)
    except zlib.error:
        raise bad from None
    if not z.eof or z.unused_data or z.unconsumed_tail or len(inner) > body_bound(rows):
        raise bad
    return body[0], inner


class _Varints:
    """Reads LEB128 varints off a body (the pure-Python decoder's cursor)."""

    def __init__(self, body: bytes, pos: int = 0) -> None:
        self.body, self.pos = body, pos

    def next(self) -> int:
        try:
            v, self.pos = _varint(self.body, self.pos)
        except ValueError:
            raise FormatError("a varint column does not hold its rows") from None
        return v


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 value at `pos` (as the C get_varint reads it: at most 10 bytes, kept
    to 64 bits) and the position after it; ValueError when cut short or longer."""
    v = shift = 0
    while True:
        if pos >= len(data) or shift >= 64:
            raise ValueError("varint cut short or too long")
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v & _U64, pos


def _unzigzag(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


def _parent_of(values: list[int], i: int, base: int, code: int) -> int:
    """Row i's parent from its ENC_PARENT code (rows before i decoded in values)."""
    q = base + i - 1
    if code & 1:
        return (q - _unzigzag(code >> 1)) & _U64
    for _ in range(code >> 1):
        if not 0 <= q - base < i or values[q - base] >= q:  # (parents come first)
            raise FormatError("a varint column does not hold its rows")
        q = values[q - base]
    return q & _U64


def _py_decode_golomb(body: bytes, rows: int, encoding: int, base: int) -> list[int]:
    bad = FormatError("a varint column does not hold its rows")
    if not body or body[0] > 63:
        raise bad
    k, nbits = body[0], 8 * (len(body) - 1)
    stream = format(int.from_bytes(body[1:], "big"), "b").zfill(nbits) if nbits else ""
    values: list[int] = []
    pos = acc = 0
    for i in range(rows):
        one = stream.find("1", pos)
        if one < 0 or one - pos > 64 or one + (one - pos) + k + 1 > nbits:
            raise bad
        end = one + (one - pos) + k + 1
        v = int(stream[one:end], 2) - (1 << k)
        if v >> 64:
            raise bad
        pos = end
        if encoding == ENC_GOLOMB_DELTA:
            v = acc = (acc + _unzigzag(v)) & _U64
        elif encoding == ENC_GOLOMB_RISE:
            v = acc = (acc + v) & _U64
        elif encoding == ENC_GOLOMB_PARENT:
            v = _parent_of(values, i, base, v)
        values.append(v)
    if (pos + 7) // 8 != nbits // 8:
        raise bad
    return values


def _py_decode_varints(body: bytes, rows: int, encoding: int, base: int = 0) -> bytes:
    """decode_varints without the C extension (the same values, ~100x slower)."""
    cur = _Varints(body)
    if encoding == ENC_CONST:
        values = [cur.next()] * rows
    elif encoding in (ENC_VARINT_DELTA, ENC_VARINT):
        values, acc = [], 0
        for _ in range(rows):
            v = cur.next()
            acc = (acc + _unzigzag(v)) & _U64 if encoding == ENC_VARINT_DELTA else v
            values.append(acc)
    elif encoding == ENC_PARENT:
        values = []
        for i in range(rows):
            values.append(_parent_of(values, i, base, cur.next()))
    elif encoding in GOLOMB_ENCODINGS:
        values = _py_decode_golomb(body, rows, encoding, base)
        cur.pos = len(body)
    elif encoding in (ENC_SPARSE, ENC_SPARSE_DELTA):
        nmap = (rows + 7) // 8
        if nmap > len(body):
            raise FormatError("a varint column does not hold its rows")
        present = [i for i in range(rows) if body[i >> 3] >> (i & 7) & 1]
        inner = ENC_GOLOMB if encoding == ENC_SPARSE else ENC_GOLOMB_DELTA
        values = [0] * rows
        for i, v in zip(present, _py_decode_golomb(body[nmap:], len(present), inner, 0)):
            values[i] = v
        cur.pos = len(body)
    else:  # ENC_BITS
        lo = cur.next()
        if cur.pos >= len(body) or body[cur.pos] > 64 or len(body) - cur.pos - 1 != (rows * body[cur.pos] + 7) // 8:
            raise FormatError("a varint column does not hold its rows")
        width, start = body[cur.pos], cur.pos + 1
        mask = (1 << width) - 1
        values = []
        for i in range(rows):
            at, shift = divmod(i * width, 8)
            word = int.from_bytes(body[start + at : start + at + 9], "little")
            values.append((lo + ((word >> shift) & mask)) & _U64)
        cur.pos = len(body)
    if cur.pos != len(body):
        raise FormatError("a varint column does not hold its rows")
    out = array("q", (v - (1 << 64) if v >= 1 << 63 else v for v in values))
    if not _LITTLE:
        out.byteswap()
    return out.tobytes()


STRS_HEADER = struct.Struct("<II")  # first string id, count


def encode_strings(first_id: int, texts: list[str]) -> bytes:
    """A STRS payload: ids first_id .. first_id+len-1; offsets (u32, count+1) into a UTF-8 blob."""
    return _strings_payload(first_id, [t.encode("utf-8", "surrogatepass") for t in texts])


def _strings_payload(first_id: int, blobs: list[bytes]) -> bytes:
    offsets = array("I", [0])
    total = 0
    for b in blobs:
        total += len(b)
        offsets.append(total)
    if not _LITTLE:
        offsets.byteswap()
    return STRS_HEADER.pack(first_id, len(blobs)) + offsets.tobytes() + b"".join(blobs)


# (1.4) value records: a STRS payload whose count has this bit set holds, after its header, a
# dictionary (u32 n, n + 1 u32 ends, the texts: type labels, parameter names joined by NUL),
# then the usual offsets and entries; an entry that starts with REC_MARK is a record that the
# reader makes into its text (docs/FORMAT.md, "Value records")
STRS_RECORDS = 0x80000000
REC_MARK = 0xFF
REC_VALUE, REC_ARGS = 1, 2
RS_LITERAL, RS_FLOAT, RS_OBJECT, RS_DEFREPR, RS_INT = 0, 1, 2, 3, 4
RS_TUPLE, RS_LIST = 5, 6  # (1.5) a count, then that many slots
RS_TEXT_AT = 7  # (1.10) a dictionary entry, the slot's text
_EXPAND_DEPTH = 16  # tuples and lists within each other: a writer nests them MAX_DEPTH deep at most
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")


def has_records(payload: bytes | memoryview) -> bool:
    """Does this STRS payload hold value records?"""
    return len(payload) >= STRS_HEADER.size and bool(STRS_HEADER.unpack_from(payload)[1] & STRS_RECORDS)


def expand_strings(payload: bytes | memoryview) -> bytes | memoryview:
    """The payload with every value record made into its text (a payload of texts only)."""
    if len(payload) < STRS_HEADER.size or not STRS_HEADER.unpack_from(payload)[1] & STRS_RECORDS:
        return payload
    try:
        if _c_expand_strings is not None:
            return _c_expand_strings(payload)
        return _py_expand_strings(bytes(payload))
    except (ValueError, IndexError, struct.error):
        raise FormatError("STRS chunk: a value record does not parse") from None


def _table(data: bytes, pos: int, n: int, size: int | None = None) -> tuple[list[bytes], int]:
    """n texts stored as n + 1 u32 ends (the first 0) then the texts (`size` bytes, or the rest)."""
    ends = [_U32.unpack_from(data, pos + 4 * i)[0] for i in range(n + 1)]
    blob_at = pos + 4 * (n + 1)
    size = ends[n] if size is None else size
    if blob_at + size > len(data) or any(a > b for a, b in zip(ends, ends[1:])) or ends[n] > size:
        raise ValueError("table cut short")
    return [data[blob_at + a : blob_at + b] for a, b in zip(ends, ends[1:])], blob_at + size


def _slot_text(rec: bytes, pos: int, labels: list[bytes] | None, prev: list[int], depth: int = 0) -> tuple[bytes, int]:
    """The text of the record slot at `pos`, and the position after it. `labels`: the chunk's
    dictionary (None for a packed value: no objects); `prev[0]`: the chunk's previous object
    address (each is stored as the step from it)."""
    tag = rec[pos]
    pos += 1
    if tag == RS_LITERAL:
        n, pos = _varint(rec, pos)
        if pos + n > len(rec):
            raise ValueError("literal cut short")
        return rec[pos : pos + n], pos + n
    if tag == RS_INT:
        z, pos = _varint(rec, pos)
        return str((z >> 1) ^ -(z & 1)).encode(), pos  # zigzag back
    if tag == RS_FLOAT:
        return repr(_F64.unpack_from(rec, pos)[0]).encode(), pos + 8
    if tag == RS_TEXT_AT and labels is not None:
        i, pos = _varint(rec, pos)
        return labels[i], pos
    if tag in (RS_OBJECT, RS_DEFREPR) and labels is not None:
        i, pos = _varint(rec, pos)
        z, pos = _varint(rec, pos)
        addr = prev[0] = (prev[0] + ((z >> 1) ^ -(z & 1))) & 0xFFFFFFFFFFFFFFFF
        return b"<" + labels[i] + b" object at 0x" + f"{addr:x}>".encode(), pos
    if tag in (RS_TUPLE, RS_LIST) and depth < _EXPAND_DEPTH:
        n, pos = _varint(rec, pos)
        if n > len(rec) - pos:
            raise ValueError("container cut short")
        items = []
        for _ in range(n):
            text, pos = _slot_text(rec, pos, labels, prev, depth + 1)
            items.append(text)
        if tag == RS_LIST:
            return b"[" + b", ".join(items) + b"]", pos
        return b"(" + b", ".join(items) + (b",)" if n == 1 else b")"), pos
    raise ValueError("unknown slot")


def _record_text(rec: bytes, names_and_labels: list[bytes], prev: list[int]) -> bytes:
    """One record's text (UTF-8): what reprs.value_text / args_text gave when it was recorded.
    `prev[0]`: the chunk's previous object address (each is stored as the step from it)."""
    if len(rec) < 2 or rec[1] not in (REC_VALUE, REC_ARGS):
        raise ValueError("not a record")
    pos = 2
    names: list[bytes] = [b""]
    if rec[1] == REC_ARGS:
        i, pos = _varint(rec, pos)
        names = names_and_labels[i].split(b"\0")
    parts = []
    for name in names:
        text, pos = _slot_text(rec, pos, names_and_labels, prev)
        parts.append(name + b"=" + text if rec[1] == REC_ARGS else text)
    if pos != len(rec):
        raise ValueError("record too long")
    return b", ".join(parts)


def _py_expand_strings(data: bytes) -> bytes:
    """expand_strings without the C extension (the same bytes)."""
    first_id, count = STRS_HEADER.unpack_from(data)
    if not count & STRS_RECORDS:
        return data
    count &= ~STRS_RECORDS
    (ndict,) = _U32.unpack_from(data, STRS_HEADER.size)
    dictionary, pos = _table(data, STRS_HEADER.size + 4, ndict)
    entries, _ = _table(data, pos, count, len(data) - pos - 4 * (count + 1))
    prev = [0]  # (addresses are steps from the previous one, in the order of the entries)
    return _strings_payload(first_id, [_record_text(e, dictionary, prev) if e and e[0] == REC_MARK else e
                                       for e in entries])


def decode_strings(payload: bytes | memoryview) -> Strings:
    from .records import Strings

    view = memoryview(expand_strings(payload))
    if len(view) < STRS_HEADER.size:
        raise FormatError("STRS chunk too short")
    first_id, count = STRS_HEADER.unpack_from(view)
    end_offsets = STRS_HEADER.size + 4 * (count + 1)
    if end_offsets > len(view):
        raise FormatError("STRS chunk: offsets cut short")
    offsets = array("I")
    offsets.frombytes(view[STRS_HEADER.size : end_offsets])
    if not _LITTLE:
        offsets.byteswap()
    blob = view[end_offsets:]
    if offsets[-1] > len(blob):
        raise FormatError("STRS chunk: text cut short")
    return Strings(first_id, count, offsets, blob)
