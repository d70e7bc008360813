"""Writes a session file: header, META, then one group of chunks per recorder `Batch`.

Each batch's chunks go out in one write on a file opened for appending, so a reader (or a
crash) only ever sees whole chunks followed by at most one partial one. With the C extension
built (with zlib), framing, compression and the write happen on its native writer thread,
without the GIL (flowtrace/_crecorder_src/writer.c: the same bytes); FLOWTRACE_WRITER=python
makes this module do them on the calling thread instead. The C recorder hands over its rows
already encoded (Batch.payloads: varint columns); the Python recorder's columns are encoded here.
"""

from __future__ import annotations

import itertools
import operator
import os
import sys
import threading
from array import array
from typing import Any, BinaryIO

from ..fds import out_of_the_way
from . import format as F
from .batch import Batch

try:  # the C extension's writer thread (flowtrace/_crecorder_src/writer.c): same bytes, no GIL
    from .._crecorder import NativeWriter  # type: ignore[attr-defined]
except ImportError:  # not built, or built without zlib: this module frames and writes itself
    NativeWriter = None

_LITTLE = sys.byteorder == "little"
_ONE_LANE = (1).to_bytes(8, "little")


def _times(values: array, origin: int) -> tuple[str, int, array]:
    """Times relative to the origin, delta-encoded; 32-bit when every step fits (it usually does).
    This runs on every flush, two or three columns per call, so it avoids Python ints per value
    (which cost ~250 ns/value here): `_fast_deltas` does the whole column with a few big-int
    operations in C, and only a column it cannot take goes through the per-value path."""
    fast = _fast_deltas(values, origin)
    if fast is not None:
        return fast.typecode, F.ENC_DELTA, fast
    deltas = array("q")
    if values:
        deltas.append(values[0] - origin)
        deltas.extend(map(operator.sub, itertools.islice(values, 1, None), values))
    if deltas and -(1 << 31) <= min(deltas) and max(deltas) < (1 << 31):
        return "i", F.ENC_DELTA, array("i", deltas)
    return "q", F.ENC_DELTA, deltas


# A C-encoded batch's MARK payload is compressed only above this many bytes per call of its
# batch; its STRS payload never. zlib level 1 costs ~150 instructions a byte of coded MARK
# columns (callgrind: ~1,100 per exception of benchmarks/workloads/exceptions.py, a fifth of
# all it cost) and halves them; that matters where those rows are the bulk of the file -- a
# program resuming generators all the time, ~7 bytes a call of MARK rows (the no-args goal is 8
# bytes a call) -- not where they are a byte or so a call (exceptions: raise and handled
# marks, ~1.2). Texts cost ~10 ns a byte (51.7 M instructions in a process of the exceptions
# workload recording arguments: its 0.5 MB of new texts, ~650 instructions a loop iteration
# over 4 runs) to save two thirds of them; they are deduplicated already, and only the
# exceptions workload has any to speak of without arguments (~0.9 bytes a call).
ZLIB_MIN_BYTES_PER_CALL = 2
# ... and only while the batch's STRS payload (stored as it is) is at most this many times its
# MARK payload. Beside texts many times the marks' size, what zlib saves over the drain's
# measured codings is a percent or two of the batch, for ~35 instructions a byte of zlib
# input: flask's test_basic recorded with arguments (`--include '*'`), whose batches' texts
# are 9-120x their marks (a few are 3-4x), deflated its ids at 113 M instructions of the writer
# thread for a file 0.14% smaller (39.14 against 39.20 MB; callgrind, whole process: 7,505.4 ->
# 7,379.3 M with a bound of 8). The bound moves with the texts' size: once the drain rendered
# fewer texts (958aae4), more of flask's batches fell under 8 and were deflated again; at 2,
# flask's whole process 6,897.6 -> 6,832.1 M for a file 0.75% bigger (39.37 -> 39.67 MB), and
# the generators workload with arguments (texts 2-5x its marks) no longer deflates most of its
# ids: +1.7 M (overhead 0.86 -> 0.87 of VizTracer's), 748 -> 792 kB. Without arguments the texts
# are few and the marks keep their deflation (the generators' bytes a call: unchanged). The C
# drain knows both rules (encode.c marks_payload: `dense`).
ZLIB_MAX_STRS_PER_MARK = 2
_DEFLATED_WITH_MARKS = frozenset({F.MARK, F.CALL, F.EXIT})  # (write_batch)


def _worth_zlib(kind: bytes, payload: bytes, calls: int, strs: int = 0) -> bool:
    """`strs`: the bytes of the batch's STRS payload."""
    if kind == F.STRS:
        return False
    return kind != F.MARK or (len(payload) > ZLIB_MIN_BYTES_PER_CALL * calls
                              and strs <= ZLIB_MAX_STRS_PER_MARK * len(payload))


def _nonzero(values: array) -> bool:
    """any(values), without a Python int per item (bytes.count runs in C: ~40 -> ~2 ns a row)."""
    raw = values.tobytes()
    return raw.count(0) != len(raw)


def _narrow(values: array) -> tuple[str, int, array]:
    """A u32 id column (functions, threads) in the narrowest type that holds it: 1 or 2 bytes
    per row in nearly every session instead of 4. zlib's time grows with the bytes it is given
    (~10 ns a byte here), so this saves ~50 ns a call; the narrowing itself is a few C-level
    byte slices, never a Python int per value (max() cost ~70 ns a row)."""
    if not values or not _LITTLE or values.itemsize != 4:
        return values.typecode, F.ENC_RAW, values
    raw = values.tobytes()
    n = len(values)
    if raw[3::4].count(0) != n or raw[2::4].count(0) != n:  # a value >= 2**16
        return values.typecode, F.ENC_RAW, values
    if raw[1::4].count(0) == n:
        out = array("B")
        out.frombytes(raw[0::4])
        return "B", F.ENC_RAW, out
    two = bytearray(2 * n)
    two[0::2] = raw[0::4]
    two[1::2] = raw[1::4]
    out = array("H")
    out.frombytes(two)
    return "H", F.ENC_RAW, out


def _fast_deltas(values: array, origin: int) -> array | None:
    """The deltas of `values` (previous value, `origin` before the first): an array('i') when
    every delta fits in 32 bits, else an array('q'); None (use the per-value path) unless every
    value and the origin are in [0, 2**63) on a little-endian machine.

    The column is read as one big integer with a 64-bit lane per value: A - B, where B is the
    same lanes shifted by one (origin first), gives every delta at once. A bias of 2**31 per lane
    keeps each lane in [0, 2**32) when its delta fits, so no lane borrows from the next; a lane
    whose delta does not fit shows up as bits above 31. XOR with the bias then turns each lane's
    low 32 bits into the signed delta. Otherwise (a chunk written more than ~2.1 s after the
    session origin: its first delta is large) a bias of 2**63 does the same with whole lanes."""
    n = len(values)
    if not n or not _LITTLE or values.typecode != "q" or values.itemsize != 8 or not 0 <= origin < (1 << 63):
        return None
    raw = values.tobytes()
    lanes = int.from_bytes(_ONE_LANE * n, "little")  # 1 in every 64-bit lane
    a = int.from_bytes(raw, "little")
    if a & (lanes << 63):  # a value < 0
        return None
    diff = a - int.from_bytes(origin.to_bytes(8, "little") + raw[:-8], "little")
    bias = lanes << 31
    d = diff + bias
    if d >= 0 and not d & (lanes * 0xFFFFFFFF00000000):  # every delta in [-2**31, 2**31)
        both = array("i")
        both.frombytes((d ^ bias).to_bytes(8 * n, "little"))
        return both[0::2]  # the low half of each lane
    bias = lanes << 63  # |delta| < 2**63: every lane stays in [0, 2**64)
    out = array("q")
    out.frombytes(((diff + bias) ^ bias).to_bytes(8 * n, "little"))
    return out


class SessionWriter:
    """Appends chunks to one `.ftr` file. Thread-safe: one lock around each group of writes."""

    def __init__(self, target: str | os.PathLike[str] | BinaryIO, meta: dict[str, Any], origin_ns: int) -> None:
        """`target` is a path (created or truncated) or a writable binary file object
        (e.g. `io.BytesIO` for an in-memory session)."""
        self.origin_ns = origin_ns
        self.calls_written = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._stream: BinaryIO | None = None
        self._native: Any = None  # NativeWriter: batches are framed and written on its thread
        if hasattr(target, "write"):
            self.path = None
            self._stream = target  # type: ignore[assignment]
            self._fd = 0
        else:
            self.path = os.fspath(target)  # type: ignore[arg-type]
            self._fd = out_of_the_way(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644))
        meta = dict(meta)
        meta.setdefault("format", "flowtrace")
        meta.setdefault("version", [F.VERSION_MAJOR, F.VERSION_MINOR])
        meta["origin_ns"] = origin_ns
        self._write(F.file_header() + F.frame_chunk(F.META, F.json_payload(meta)))
        if self._stream is None and NativeWriter is not None and os.environ.get("FLOWTRACE_WRITER") != "python":
            try:
                self._native = NativeWriter(self._fd)
            except Exception:  # no thread to be had: this thread frames and writes, as without C
                self._native = None

    def pause_thread(self) -> bool:
        """Before a fork: end the native writer thread (every batch put so far is written
        first; until resume_thread, this thread frames and writes). True if there was one."""
        with self._lock:
            native, self._native = self._native, None
            if native is None:
                return False
            try:
                native.close()
            except OSError:
                pass  # reported by the put or flush that met it
            self._bytes += native.bytes_written
            self._native_paused = True
            return True

    def resume_thread(self) -> None:
        """After the fork, in the parent: a native writer thread again."""
        with self._lock:
            if not getattr(self, "_native_paused", False):
                return
            self._native_paused = False
            if self._fd >= 0 and self._stream is None and NativeWriter is not None:
                try:
                    self._native = NativeWriter(self._fd)
                except Exception:  # no thread to be had: this thread frames and writes
                    self._native = None

    @property
    def bytes_written(self) -> int:
        return self._bytes + (self._native.bytes_written if self._native is not None else 0)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _write(self, data: bytes) -> None:
        if self._stream is not None:
            self._stream.write(data)
            self._bytes += len(data)
            return
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._bytes += len(data)

    def write_batch(self, batch: Batch) -> None:
        """Append the chunks for one batch (definitions first, then CALL, MARK, EXIT)."""
        if batch.is_empty():
            return
        parts: list[tuple[bytes, bytes, bool]] = []  # (chunk type, payload, compress)
        if batch.functions:
            parts.append((F.FUNC, F.func_payload(batch.functions), False))
        if batch.threads:
            parts.append((F.THRD, F.json_payload(batch.threads), False))
        if batch.tasks:
            parts.append((F.TASK, F.json_payload(batch.tasks), False))
        if batch.strings:
            payload = batch.strings_payload  # pre-encoded by the C recorder, else encoded here
            if payload is None:
                payload = F.encode_strings(batch.strings_first_id, batch.strings)
            # (value records -- binary, mostly new addresses and floats -- take zlib's time for
            # little gain: a chunk with them is stored as it is; see also _worth_zlib)
            parts.append((F.STRS, payload, not F.has_records(payload)))
        n = len(batch.call_parent)
        if n:
            cols: list[tuple[str, str, int, Any]] = [
                ("par", "I", F.ENC_RAW, batch.call_parent),
                ("fn", *_narrow(batch.call_func)),
                ("thr", *_narrow(batch.call_thread)),
                ("t0", *_times(batch.call_t0, self.origin_ns)),
            ]
            if _nonzero(batch.call_args):
                cols.append(("args", "I", F.ENC_RAW, batch.call_args))
            if _nonzero(batch.call_task):
                cols.append(("task", "I", F.ENC_RAW, batch.call_task))
            if _nonzero(batch.call_flag):
                cols.append(("flag", "B", F.ENC_RAW, batch.call_flag))
            parts.append((F.CALL, F.encode_columns(batch.call_first_id, n, cols), True))
        k = len(batch.mark_call)  # (1.6: before EXIT, whose raise-here rows end their calls' marks)
        if k:
            cols = [
                ("call", "I", F.ENC_RAW, batch.mark_call),
                ("t", *_times(batch.mark_t, self.origin_ns)),
                ("kind", "B", F.ENC_RAW, batch.mark_kind),
                ("ref", "I", F.ENC_RAW, batch.mark_ref),
                ("othr", "I", F.ENC_RAW, batch.mark_other),
            ]
            if len(batch.mark_n) == k and _nonzero(batch.mark_n):  # fold rows (1.1): else left out
                cols += [("n", "I", F.ENC_RAW, batch.mark_n), ("run", "q", F.ENC_RAW, batch.mark_run),
                         ("span", "q", F.ENC_RAW, batch.mark_span)]
            parts.append((F.MARK, F.encode_columns(0, k, cols), True))
        m = len(batch.exit_call)
        if m:
            cols = [
                ("call", "I", F.ENC_RAW, batch.exit_call),
                ("t1", *_times(batch.exit_t1, self.origin_ns)),
                ("how", "B", F.ENC_RAW, batch.exit_how),
            ]
            if _nonzero(batch.exit_val):  # all zero without argument capture: readers default to 0
                cols.append(("val", "I", F.ENC_RAW, batch.exit_val))
            parts.append((F.EXIT, F.encode_columns(0, m, cols), True))
        # Payloads a recorder encoded itself (the C one: coded columns). CALL and EXIT rows
        # take ~3.5-5 bytes a call that way; zlib level 1 would make that ~1-3 for ~35-80 ns a
        # call of CPU, so they are stored as they are -- but in a batch whose MARK rows are a
        # big part of it (_worth_zlib: a program resuming generators all the time). There the
        # MARK chunk's columns but its times are deflated (1.8: F.deflate_columns, on the
        # native writer's thread), and so are CALL's and EXIT's ids (`par`, `fn`, EXIT's
        # `call`): they repeat with the walks that make those marks and shrink ~7x, ~1.1 of
        # generators' ~8 bytes a call, for ~1.3 bytes a call of zlib input.
        n += batch.payload_calls
        if batch.payloads:  # (its STRS chunk stored as it is: _worth_zlib)
            strs = sum(len(payload) for kind, payload, _packed in parts if kind == F.STRS)
            parts = [(kind, payload, packed if packed and _worth_zlib(kind, payload, n) else False)
                     for kind, payload, packed in parts]
            dense = any(kind == F.MARK and _worth_zlib(kind, payload, n, strs) for kind, payload in batch.payloads)
            parts += [(kind, payload, F.DEFLATE_COLUMNS if dense and kind in _DEFLATED_WITH_MARKS else False)
                      for kind, payload in batch.payloads]
        with self._lock:
            if self._fd < 0:
                return
            if self._native is not None:
                self._native.put(parts)  # a copy; zlib, crc32 and the write happen on its thread
            else:
                self._write(b"".join(F.frame_chunk(kind, payload, packed) for kind, payload, packed in parts))
            self.calls_written += n

    def sync(self) -> None:
        """Return once every batch written so far is in the file (the native writer thread
        appends them shortly after write_batch returns); OSError if one could not be written."""
        native = self._native
        if native is not None:
            native.flush()

    def finish(self, end: dict[str, Any]) -> None:
        """Write the ENDS chunk and close. Idempotent."""
        with self._lock:
            if self._fd < 0:
                return
            end = dict(end)
            end.setdefault("calls", self.calls_written)
            if "t_end_abs" in end:
                end["t_end"] = end.pop("t_end_abs") - self.origin_ns
            try:
                if self._native is not None:
                    self._native.close()  # every batch is in the file before ENDS
                self._write(F.frame_chunk(F.ENDS, F.json_payload(end)))
            finally:
                self._close()

    def _close(self) -> None:
        if self._native is not None:
            try:
                self._native.close()  # (idempotent; a failed write was reported by put/close)
            except OSError:
                pass
        if self._stream is None:
            os.close(self._fd)
        self._fd = -1

    def leave_to_parent(self) -> None:
        """In a forked child: never write again. Closes the child's copy of the descriptor
        (the parent's stays open) and replaces the lock a parent thread may have held."""
        self._lock = threading.Lock()
        if self._stream is None and self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = -1

    def abandon(self) -> None:
        """Close without an ENDS chunk (the file then reads as unfinished)."""
        with self._lock:
            if self._fd >= 0:
                self._close()
