"""A followed session's next rows are faulted in by a thread of their own (model/prefault.py):
the thread that writes them meets (almost) no page faults, and nothing written changes."""

from __future__ import annotations

import mmap
import resource
import threading

import numpy as np
import pytest

import flowtrace_tui.model.loader  # noqa: F401  (numpy asks for no huge pages, as in the explorer)
from flowtrace_tui.model.prefault import ByteArena, Prefaulter

pytestmark = pytest.mark.skipif(Prefaulter()._madvise is None, reason="no madvise (not Linux)")


def thread_faults() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def write_rows(cols: list[np.ndarray], lo: int, hi: int, prefault: Prefaulter | None) -> int:
    """Rows lo..hi-1 written in batches as the loader writes them; the page faults it took."""
    values = np.arange(hi, dtype=np.uint32) % 251  # (made first: no temporary faults in the count)
    before = thread_faults()
    for start in range(lo, hi, 50_000):
        end = min(hi, start + 50_000)
        for col in cols:
            col[start:end] = values[start:end]
        if prefault is not None:
            prefault.written(cols, end)
            assert prefault.wait_idle()
    return thread_faults() - before


def untouched(rows: int, dtype: type) -> np.ndarray:
    """An array on pages of its own that nothing has touched yet (np.empty may reuse memory
    that an earlier test in this process faulted in: then the writes fault nothing)."""
    return np.frombuffer(mmap.mmap(-1, rows * np.dtype(dtype).itemsize), dtype=dtype)


def test_the_writing_thread_meets_no_page_fault_in_the_rows_ahead():
    rows = 2_000_000
    fresh = [untouched(rows, np.uint32), untouched(rows, np.int64)]
    faulted = [untouched(rows, np.uint32), untouched(rows, np.int64)]
    prefault = Prefaulter(ahead=1 << 20)
    prefault.written(faulted, 0)
    assert prefault.wait_idle()
    alone = write_rows(fresh, 0, rows, None)
    helped = write_rows(faulted, 0, rows, prefault)
    assert prefault.failed is None
    assert alone > (rows * 12) // 4096 // 2  # (12 bytes a row: one fault a page, less any huge page)
    assert helped < alone // 10, (helped, alone)
    for a, b in zip(fresh, faulted):
        assert np.array_equal(a, b)


def test_what_is_written_stays_as_it_is_while_the_pages_are_faulted_in():
    col = np.empty(3_000_000, dtype=np.int64)
    prefault = Prefaulter(ahead=3_000_000)
    stop = threading.Event()

    def writer() -> None:  # writes row after row while the prefaulter works over the same pages
        for start in range(0, len(col), 10_000):
            col[start:start + 10_000] = np.arange(start, start + 10_000)
            prefault.written([col], start)
        stop.set()

    t = threading.Thread(target=writer)
    t.start()
    t.join(60)
    assert stop.is_set() and prefault.wait_idle()
    assert np.array_equal(col, np.arange(len(col)))


def test_the_thread_lets_go_of_the_columns_and_ends_once_no_rows_come(monkeypatch):
    import time
    import weakref

    from flowtrace_tui.model import prefault as module

    monkeypatch.setattr(module, "IDLE_EXIT_S", 0.05)
    col = np.empty(1_000_000, dtype=np.uint32)
    gone = weakref.ref(col)
    prefault = Prefaulter(ahead=500_000)
    prefault.written([col], 0)
    assert prefault.wait_idle()
    del col
    deadline = time.monotonic() + 30  # (a bound for a broken thread, no timing)
    while (gone() is not None or prefault._thread is not None) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone() is None and prefault._thread is None
    col2 = np.empty(1_000_000, dtype=np.uint32)  # new rows start a thread again
    prefault.written([col2], 0)
    assert prefault.wait_idle() and prefault._filled[col2.ctypes.data][1] > col2.ctypes.data


def test_rows_ahead_follow_the_sessions_growth():
    """A session adding a few rows has MIN_AHEAD_ROWS faulted in ahead, not the most (~120 MB
    for a program that never fills them); one adding many has GROWTH_AHEAD times its growth."""
    from flowtrace_tui.model.prefault import GROWTH_AHEAD, MIN_AHEAD_ROWS, PAGE

    col = np.empty(4 * MIN_AHEAD_ROWS * GROWTH_AHEAD, dtype=np.uint32)
    base = col.ctypes.data
    prefault = Prefaulter(ahead=len(col))

    def faulted_rows() -> int:
        assert prefault.wait_idle()
        return (prefault._filled[base][1] - base) // col.itemsize

    prefault.written([col], 100)
    assert 100 + MIN_AHEAD_ROWS - PAGE // 4 <= faulted_rows() <= 100 + MIN_AHEAD_ROWS
    grown = 100 + 2 * MIN_AHEAD_ROWS
    prefault.written([col], grown)
    target = min(len(col), grown + GROWTH_AHEAD * 2 * MIN_AHEAD_ROWS)  # (up to the page it starts)
    assert target - PAGE // 4 <= faulted_rows() <= target


def test_kept_payloads_are_copied_into_segments_faulted_in_ahead(monkeypatch):
    """GIVEN a live session's byte arena (its value records' STRS payloads), WHEN payloads are
    kept one after another, THEN each reads back as it was, across segments (an earlier
    segment stays while views of it live), the thread keeping them meets no page fault once
    the segment's next bytes are faulted in ahead, and a payload larger than an eighth of a
    segment is kept as it is."""
    monkeypatch.setattr(ByteArena, "SEGMENT", 1 << 22)  # (4 MB segments: a few in the test)
    rng = np.random.default_rng(7)
    payloads = [rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes() for _ in range(100)]
    arena = ByteArena()
    kept = [arena.keep(payloads[0])]
    assert arena._prefault.wait_idle()
    faults = 0
    for p in payloads[1:]:
        new_segment = arena._used + len(p) > ByteArena.SEGMENT
        before = thread_faults()
        kept.append(arena.keep(p))
        if not new_segment:  # (a new segment's first bytes are written before the thread runs)
            faults += thread_faults() - before
        assert arena._prefault.wait_idle()
    assert [bytes(k) for k in kept] == payloads
    assert len({k.obj.ctypes.data for k in kept}) == 3  # (40 payloads a segment)
    assert faults <= 97, faults  # (at most the page at a payload's start, half written by the one before)
    big = bytes(ByteArena.SEGMENT // 8 + 1)
    assert arena.keep(big) is big


def test_a_followed_sessions_value_records_are_kept_in_its_arena_and_read_the_same(tmp_path):
    """GIVEN a session the recorder wrote with value records (STRS chunks of arguments and
    results, kept as read until a text is asked for), WHEN it is read as a followed session
    (expect_calls: its byte arena) and as a file read once, THEN the followed one keeps those
    payloads in its arena's segments, and every call's arguments and result read the same."""
    import os
    import subprocess
    import sys

    from flowtrace_tui.model.loader import PackedStrings
    from flowtrace_tui.model.source import TraceSource

    (tmp_path / "prog.py").write_text("def f(i, s):\n    return (i, s)\n\nfor i in range(100_000):\n    f(i, 'x' * (i % 7))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_FOLLOW")}
    done = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", "t.ftr", "prog.py"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path = str(tmp_path / "t.ftr")
    sessions = []
    for followed in (True, False):
        src = TraceSource.open(path)
        if followed:
            src.data.expect_calls(1 << 16)
        while src.step().more:
            pass
        sessions.append(src.data)
    followed, once = sessions
    kept = [c for c in followed.strings.chunks if isinstance(c, PackedStrings) and c.records and not c.compressed]
    # (the chunks read after expect_calls: those the first slice read at open are kept as read)
    assert sum(isinstance(c.payload, memoryview) and isinstance(c.payload.obj, np.ndarray) for c in kept) >= len(kept) // 2 > 0
    assert followed.n == once.n == 100_001
    for col, last in (("args", "i=99999, s='xxxx'"), ("val", "(99999, 'xxxx')")):
        texts = [[d.strings.text(int(i)) for i in d.col(col)[1:]] for d in (followed, once)]
        assert texts[0] == texts[1] and last in texts[0]
