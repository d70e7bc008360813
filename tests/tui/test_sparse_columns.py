"""The call columns that are zero for most calls (tasks, flags, suspensions) are not written
where they are zero (model/loader.py, _SPARSE_CALL_COLS): a followed busy program's rows leave
their pages untouched (no memory, no page fault), and every column still reads as the session
holds it -- in chunks with and without tasks, across the columns' growth."""

from __future__ import annotations

import ctypes
import mmap
import sys

import numpy as np
import pytest

from flowtrace.ftr import format as F

from trace_builder import TraceBuilder

from .apps import source


def resident_pages(arr: np.ndarray) -> int:
    """Pages of `arr`'s memory in RAM (mincore): a page never written (nor read) is not."""
    libc = ctypes.CDLL(None, use_errno=True)
    start = arr.ctypes.data // mmap.PAGESIZE * mmap.PAGESIZE
    length = arr.ctypes.data + arr.nbytes - start
    pages = -(-length // mmap.PAGESIZE)
    vec = (ctypes.c_ubyte * pages)()
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    assert libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(length), vec) == 0, ctypes.get_errno()
    return sum(v & 1 for v in vec)


def plain_calls(b: TraceBuilder, n: int) -> None:
    m = b.enter("main")
    for i in range(n):
        w = b.enter("work", args=f"i={i}")
        b.leave(b.enter("leaf"), "1")
        b.leave(w, str(i))
    b.leave(m)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore as Linux has it")
def test_a_busy_programs_rows_leave_the_sparse_columns_pages_untouched():
    """GIVEN a followed session's columns sized for 64 M calls, WHEN 40 000 calls with no task,
    flag or suspension are read, THEN the task, flag and nsusp columns hold no page in RAM
    (they were written zeros: 4 bytes a call of task alone, ~39 pages), while parent does."""
    b = TraceBuilder()
    plain_calls(b, 20_000)
    src = source(b.data())
    src.data.expect_calls(1 << 26)  # (as pipeline.LIVE_CALLS: each column on fresh pages of its own)
    while src.step().more:
        pass
    data = src.data
    assert data.n == 40_001
    for name in ("task", "flag", "nsusp"):
        assert resident_pages(data._calls.arrays[name]) <= 1, name  # (the sentinel row's page, at most)
    assert resident_pages(data._calls.arrays["parent"]) >= 40_001 * 4 // mmap.PAGESIZE
    assert not data.col("task").any() and not data.col("nsusp").any() and not data.col("flag").any()


def test_sparse_columns_read_as_the_session_holds_them_across_chunks_and_growth():
    """GIVEN chunks with tasks, flags and suspensions between chunks without, read into
    columns that grow as they go, THEN every column holds what the session says (zeros where
    it says nothing: an open call's end, value and suspensions too)."""
    b = TraceBuilder()
    m = b.enter("main")
    b.task(1, "t1")
    for k in range(6):
        for i in range(700):  # (past the 1024 rows the columns start with: they grow)
            c = b.enter("work", task=1 if k % 2 else 0, flag=F.CALL_PARTIAL if k == 3 and i % 7 == 0 else 0)
            if k == 5 and i == 3:
                g = b.enter("gen", kind="generator")
                b.suspend(g, "0")
                b.resume(g, c)
                b.leave(g, "None")
            b.leave(c, "1")
        b.flush()
    src = source(b.data(finish=False))
    while src.step().more:
        pass
    data = src.data
    task, flag, nsusp = data.col("task"), data.col("flag"), data.col("nsusp")
    assert data.n == 1 + 6 * 700 + 1  # (main, the work calls, the generator)
    works = np.flatnonzero(data.col("func") == data.col("func")[2])
    chunk = np.repeat(np.arange(6), 700)  # each work call's chunk
    assert len(works) == 6 * 700
    assert task[works].tolist() == np.where(chunk % 2 == 1, 1, 0).tolist()
    assert flag[works].tolist() == np.where((chunk == 3) & (np.arange(6 * 700) % 700 % 7 == 0), F.CALL_PARTIAL, 0).tolist()
    assert task[1] == 0 and flag[1] == 0
    gen = int(np.flatnonzero(nsusp)[0])
    assert nsusp.sum() == 1 and data.func_name(int(data.col("func")[gen])) == "gen"
    assert data.col("t1")[1] == 0 and data.col("how")[1] == 0 and data.col("val")[1] == 0  # main: open
    assert (data.col("t1")[2:] > 0).all()
