"""The memory a live session's next rows go to, faulted in ahead of the reads by a thread of its
own (MADV_POPULATE_WRITE), so that the reading thread no longer pays the page faults.

A followed session's call columns are sized once for millions of rows (loader.expect_calls):
memory the kernel hands out a 4 KB page at a time, at the first write of each page. Writing a
busy program's rows, the reads met one fault per ~67 calls (58 bytes of columns a call), about
6 us each under load: 93 of the reads' 174 ns a call were the kernel's (live_timeline.py,
load 29, 54 M calls in 12 s). MADV_POPULATE_WRITE (Linux 5.14) faults a range in as a write
would, without changing what it holds, so it is safe beside the reader writing the same
columns; ctypes releases the GIL for the call, so the faults run beside the reads and the
screen. Without the call (another OS, an older kernel) nothing is prefaulted and the reads
fault as before.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import mmap
import sys
import threading
import weakref
from collections.abc import Iterable

import numpy as np

MADV_POPULATE_WRITE = 23  # <linux/mman.h> (5.14): fault in writable pages, contents unchanged
AHEAD_ROWS = 1 << 21  # the most rows kept faulted in past the newest: ~0.5 s of a busy program, ~120 MB
# ... but no more than GROWTH_AHEAD times what the last update added, and at least MIN_AHEAD_ROWS
# (~4 MB): a program making a few calls does not grow the explorer by 120 MB it never fills
GROWTH_AHEAD = 4
MIN_AHEAD_ROWS = 1 << 16
STEP_BYTES = 4 << 20  # one call at a time (each faults ~1000 pages)
IDLE_EXIT_S = 2.0  # the thread ends after this long without new rows (another comes with them)
PAGE = mmap.PAGESIZE


@functools.cache
def _madvise() -> ctypes._CFuncPtr | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


class Prefaulter:
    """Keeps rows past the newest written row of some numpy columns faulted in, from a daemon
    thread: GROWTH_AHEAD times the rows the last batch added, between MIN_AHEAD_ROWS and `ahead`.
    The reading thread calls `written` after each batch of rows (cheap: it only posts the
    target)."""

    def __init__(self, ahead: int = AHEAD_ROWS) -> None:
        self.ahead = ahead
        self.failed: str | None = None  # why prefaulting stopped (the kernel refused the call)
        self._madvise = _madvise()
        self._cond = threading.Condition()
        self._target: tuple[list[np.ndarray], int, int] | None = None  # columns, rows, rows ahead
        self._rows = 0  # the rows of the last target (its growth sets the next one's rows ahead)
        self._busy = False
        # an array's first address -> (the array, the address it is faulted in up to)
        self._filled: dict[int, tuple[weakref.ref, int]] = {}
        self._thread: threading.Thread | None = None

    def written(self, columns: Iterable[np.ndarray], rows: int) -> None:
        """(the reading thread) Rows up to `rows` of `columns` are written: fault in the next ones."""
        if self._madvise is None or self.failed is not None:
            return
        ahead = min(self.ahead, max(MIN_AHEAD_ROWS, GROWTH_AHEAD * (rows - self._rows)))
        self._rows = rows
        with self._cond:
            self._target = (list(columns), rows, ahead)
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="flowtrace-prefault", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until every target posted so far is faulted in (tests). False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._target is None and not self._busy, timeout)

    def _run(self) -> None:
        """The thread: fault in each target; ends after IDLE_EXIT_S without one (a session no
        longer growing, or let go: the thread holds no column while it waits)."""
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._target is not None, IDLE_EXIT_S) or self.failed:
                    self._thread = None
                    return
                columns, rows, ahead = self._target  # type: ignore[misc]
                self._target, self._busy = None, True
            try:
                for col in columns:
                    self._fill(col, rows, ahead)
            finally:
                del columns
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _fill(self, col: np.ndarray, rows: int, ahead: int) -> None:
        """Fault in `col`'s pages from where it was faulted in (or row `rows`) to `rows + ahead`
        (rows, not bytes: every column keeps the same number of rows ahead). Only whole pages
        inside the array (its first and last pages may be shared with other memory)."""
        base = col.ctypes.data
        end = base + min(len(col), rows + ahead) * col.itemsize
        was = self._filled.get(base)  # (another array at the address of one let go starts anew)
        start = base + rows * col.itemsize
        if was is not None and was[0]() is col:
            start = max(start, was[1])
        start = -(-start // PAGE) * PAGE
        end = end // PAGE * PAGE
        while start < end:
            size = min(STEP_BYTES, end - start)
            if self._madvise(start, size, MADV_POPULATE_WRITE) != 0:  # type: ignore[misc]
                err = ctypes.get_errno()
                if err == errno.EINTR:
                    continue
                self.failed = f"madvise: {errno.errorcode.get(err, err)}"  # EINVAL: kernel < 5.14
                return
            start += size
            self._filled[base] = (weakref.ref(col), start)


class ByteArena:
    """Payloads a live session keeps (the value records' STRS chunks: a busy program's texts,
    ~15 bytes a call, kept as read until a text is asked for), copied into large segments
    faulted in ahead by a `Prefaulter` of their own. Kept as the reader made them, each was
    fresh heap memory: ~4 page faults per 1 000 calls on the reading thread, most of its faults
    (benchmarks/live_timeline.py), which the whole index's catch-up steps hid by freeing
    memory the heap gave again (9b67579 pauses them). A payload larger than an eighth of a
    segment is kept as it is."""

    SEGMENT = 64 << 20

    def __init__(self) -> None:
        self._prefault = Prefaulter(ahead=self.SEGMENT // 2)
        self._segment: np.ndarray | None = None
        self._used = 0

    def keep(self, payload: bytes | memoryview) -> bytes | memoryview:
        """`payload`'s bytes as kept (a view into a segment, or `payload` itself)."""
        n = len(payload)
        if n > self.SEGMENT // 8:
            return payload
        if self._segment is None or self._used + n > len(self._segment):
            self._segment, self._used = np.zeros(self.SEGMENT, dtype=np.uint8), 0
        seg, lo = self._segment, self._used
        seg[lo : lo + n] = np.frombuffer(payload, dtype=np.uint8)
        self._used = lo + n
        self._prefault.written([seg], self._used)
        return memoryview(seg)[lo : lo + n]
