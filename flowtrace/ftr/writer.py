"""Writes a session file: header, META, then one group of chunks per recorder `Batch`.

Each chunk goes out in one `os.write` on a file opened for appending, so a reader (or a crash)
only ever sees whole chunks followed by at most one partial one.
"""

from __future__ import annotations

import itertools
import operator
import os
import threading
from array import array
from typing import Any, BinaryIO

from ..recorder.base import Batch
from . import format as F


def _times(values: array, origin: int) -> tuple[str, int, array]:
    """Times relative to the origin, delta-encoded; 32-bit when every step fits (it usually does).
    The deltas come from `map(operator.sub, …)` (a C loop): this runs on every flush."""
    deltas = array("q")
    if values:
        deltas.append(values[0] - origin)
        deltas.extend(map(operator.sub, itertools.islice(values, 1, None), values))
    if deltas and -(1 << 31) <= min(deltas) and max(deltas) < (1 << 31):
        return "i", F.ENC_DELTA, array("i", deltas)
    return "q", F.ENC_DELTA, deltas


class SessionWriter:
    """Appends chunks to one `.ftr` file. Thread-safe: one lock around each group of writes."""

    def __init__(self, target: str | os.PathLike[str] | BinaryIO, meta: dict[str, Any], origin_ns: int) -> None:
        """`target` is a path (created or truncated) or a writable binary file object
        (e.g. `io.BytesIO` for an in-memory session)."""
        self.origin_ns = origin_ns
        self.calls_written = 0
        self.bytes_written = 0
        self._lock = threading.Lock()
        self._stream: BinaryIO | None = None
        if hasattr(target, "write"):
            self.path = None
            self._stream = target  # type: ignore[assignment]
            self._fd = 0
        else:
            self.path = os.fspath(target)  # type: ignore[arg-type]
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        meta = dict(meta)
        meta.setdefault("format", "flowtrace")
        meta.setdefault("version", [F.VERSION_MAJOR, F.VERSION_MINOR])
        meta["origin_ns"] = origin_ns
        self._write(F.file_header() + F.frame_chunk(F.META, F.json_payload(meta)))

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _write(self, data: bytes) -> None:
        if self._stream is not None:
            self._stream.write(data)
            self.bytes_written += len(data)
            return
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.bytes_written += len(data)

    def write_batch(self, batch: Batch) -> None:
        """Append the chunks for one batch (definitions first, then CALL, EXIT, MARK)."""
        if batch.is_empty():
            return
        parts: list[bytes] = []
        if batch.functions:
            parts.append(F.frame_chunk(F.FUNC, F.json_payload(batch.functions)))
        if batch.threads:
            parts.append(F.frame_chunk(F.THRD, F.json_payload(batch.threads)))
        if batch.tasks:
            parts.append(F.frame_chunk(F.TASK, F.json_payload(batch.tasks)))
        if batch.strings:
            parts.append(F.frame_chunk(F.STRS, F.encode_strings(batch.strings_first_id, batch.strings), True))
        n = len(batch.call_parent)
        if n:
            cols: list[tuple[str, str, int, Any]] = [
                ("par", "I", F.ENC_RAW, batch.call_parent),
                ("fn", "I", F.ENC_RAW, batch.call_func),
                ("thr", "I", F.ENC_RAW, batch.call_thread),
                ("t0", *_times(batch.call_t0, self.origin_ns)),
            ]
            if any(batch.call_args):
                cols.append(("args", "I", F.ENC_RAW, batch.call_args))
            if any(batch.call_task):
                cols.append(("task", "I", F.ENC_RAW, batch.call_task))
            if any(batch.call_flag):
                cols.append(("flag", "B", F.ENC_RAW, batch.call_flag))
            parts.append(F.frame_chunk(F.CALL, F.encode_columns(batch.call_first_id, n, cols), True))
        m = len(batch.exit_call)
        if m:
            cols = [
                ("call", "I", F.ENC_RAW, batch.exit_call),
                ("t1", *_times(batch.exit_t1, self.origin_ns)),
                ("how", "B", F.ENC_RAW, batch.exit_how),
                ("val", "I", F.ENC_RAW, batch.exit_val),
            ]
            parts.append(F.frame_chunk(F.EXIT, F.encode_columns(0, m, cols), True))
        k = len(batch.mark_call)
        if k:
            cols = [
                ("call", "I", F.ENC_RAW, batch.mark_call),
                ("t", *_times(batch.mark_t, self.origin_ns)),
                ("kind", "B", F.ENC_RAW, batch.mark_kind),
                ("ref", "I", F.ENC_RAW, batch.mark_ref),
                ("othr", "I", F.ENC_RAW, batch.mark_other),
            ]
            parts.append(F.frame_chunk(F.MARK, F.encode_columns(0, k, cols), True))
        with self._lock:
            if self._fd < 0:
                return
            self._write(b"".join(parts))
            self.calls_written += n

    def finish(self, end: dict[str, Any]) -> None:
        """Write the ENDS chunk and close. Idempotent."""
        with self._lock:
            if self._fd < 0:
                return
            end = dict(end)
            end.setdefault("calls", self.calls_written)
            if "t_end_abs" in end:
                end["t_end"] = end.pop("t_end_abs") - self.origin_ns
            self._write(F.frame_chunk(F.ENDS, F.json_payload(end)))
            self._close()

    def _close(self) -> None:
        if self._stream is None:
            os.close(self._fd)
        self._fd = -1

    def abandon(self) -> None:
        """Close without an ENDS chunk (the file then reads as unfinished)."""
        with self._lock:
            if self._fd >= 0:
                self._close()
