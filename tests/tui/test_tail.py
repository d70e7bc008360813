"""A followed session whose call columns are full (model/tail.py): its newest calls go to a tail
of a fixed number of rows, which lets its older calls go, and a window of the newest calls is
what it would be if every call were held -- the same calls, ancestors, ends, suspensions and
texts."""

from __future__ import annotations

import numpy as np
import pytest

from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.model import loader
from flowtrace_tui.model import tail as tail_module
from flowtrace_tui.model.index import build_index
from flowtrace_tui.model.loader import TraceData
from flowtrace_tui.model.search import Query, find
from flowtrace_tui.model.source import TraceSource
from flowtrace_tui.model.window import window_data

from trace_builder import Feeder, TraceBuilder, child_process

COLUMN_ROWS = 1500  # the followed session's call columns (expect_calls)


def long_loop(outers: int = 3, inner: int = 1200, repeat: bool = False) -> tuple[TraceBuilder, list[int]]:
    """main -> outer(j) -> work(i) -> leaf, a flush every 50 iterations; a generator suspended
    in each outer call resumed at its end (MARK rows); main and the last outer left running.
    `repeat`: each outer call's work(i) takes and returns the texts the first one's did, named
    by the same string ids (as a recorder writes a text once per session)."""
    b = TraceBuilder(intern=repeat)
    m = b.enter("main", args="argv=[]")
    outs = []
    for j in range(outers):
        o = b.enter("outer", args=f"j={j}")
        outs.append(o)
        g = b.enter("numbers", kind="generator", args=f"k={j}")
        b.suspend(g, f"{j}")
        for i in range(inner):
            w = b.enter("work", args=f"i={i}" if repeat else f"i={j}.{i}")
            b.leave(b.enter("leaf", args=f"x={i}"), f"{i}")
            b.leave(w, f"r{i}" if repeat else f"r{j}.{i}")
            if i % 50 == 49:
                b.flush()
        b.resume(g, o)
        b.leave(g, "None")
        if j < outers - 1:
            b.leave(o, f"done {j}")
    b.flush()
    return b, [m, *outs]


def fed(data: bytes, followed: bool) -> TraceData:
    """The session fed a chunk at a time, as a live view reads a growing file."""
    out = TraceData("t")
    if followed:
        out.expect_calls(COLUMN_ROWS)
    reader = ChunkReader.from_bytes(data)
    for chunk in reader.poll():
        out.feed([chunk], reader=reader)
    return out


@pytest.fixture
def small_tail(monkeypatch):
    monkeypatch.setattr(tail_module, "TAIL_ROWS", 1024)
    monkeypatch.setattr(loader, "TEXTS_EVERY", 2)


def texts(data: TraceData, ids: np.ndarray) -> list[str]:
    return [data.strings.text(int(s)) for s in ids]


@pytest.mark.parametrize("count", [1, 30, 400])
def test_a_full_followed_session_keeps_its_newest_calls_as_if_all_were_held(small_tail, count):
    """GIVEN a followed session of ~7,200 calls whose columns hold 1,500 and whose tail holds
    1,024 rows, WHEN every chunk is read, THEN the first 1,500 calls are the columns' (as a
    session read whole has them), calls past that were let go, and a window of the newest
    `count` calls equals the window of a session that holds every call: the same calls and
    ancestors (main, the running outer call, pinned), their functions, parents, depths, ends,
    suspensions, texts and MARK rows."""
    b, (main, *outs) = long_loop()
    data = b.data(finish=False)
    whole, full = fed(data, False), fed(data, True)
    assert full.tail is not None and full.calls_read == whole.n == b.next_call - 1
    assert full.n <= COLUMN_ROWS and full.tail.let_go > 0
    for name in ("parent", "func", "t0", "t1", "how", "val", "depth", "root", "nsusp"):
        assert (full.col(name) == whole.col(name)[: full.n + 1]).all(), name
    want, got = window_data(whole, count), window_data(full, count)
    assert got.window.ids.tolist() == want.window.ids.tolist()
    assert {main, outs[-1]} <= set(got.window.ids.tolist())
    for name in ("parent", "func", "thread", "t0", "t1", "how", "depth", "root", "nsusp", "flag", "task"):
        assert (got.col(name) == want.col(name)).all(), name
    assert texts(got, got.col("args")) == texts(want, want.col("args"))
    assert texts(got, got.col("val")) == texts(want, want.col("val"))
    assert "j=2" in texts(got, got.col("args")) and "argv=[]" in texts(got, got.col("args"))
    assert got.n_marks == want.n_marks
    for name in ("call", "t", "kind", "ref", "other"):
        assert (got.mark_col(name) == want.mark_col(name)).all(), name


def test_a_later_call_naming_a_text_of_calls_let_go_shows_it(small_tail, monkeypatch):
    """GIVEN a followed session past its call columns whose later calls take and return the
    texts of earlier calls its tail let go (the recorder writes a text once per session: they
    name the same string ids, whose chunks were let go with those calls), THEN the newest
    calls' window shows their texts as a session holding every call does (they read "")."""
    b, _ = long_loop(repeat=True)
    data = b.data(finish=False)
    whole, full = fed(data, False), fed(data, True)
    assert full.tail is not None and full.tail.let_go > 0
    got, want = window_data(full, 400), window_data(whole, 400)
    assert got.window.ids.tolist() == want.window.ids.tolist()
    args, vals = texts(got, got.col("args")), texts(got, got.col("val"))
    assert args == texts(want, want.col("args")) and vals == texts(want, want.col("val"))
    assert "i=1199" in args and "r1199" in vals and "" not in args[3:]
    assert full.strings.texts([int(i) for i in got.col("args")[3:]]) == dict(zip(got.col("args")[3:].tolist(), args[3:]))
    # drawn again (every redraw asks), they are not read from the file again
    read_again = []
    with monkeypatch.context() as mp:
        mp.setattr(ChunkReader, "chunk_at", lambda self, offset: read_again.append(offset))
        assert texts(got, got.col("args")) == args and texts(got, got.col("val")) == vals and read_again == []
    # a search of the window finds them, looking only at the chunks its calls name
    index = build_index(got)
    hits = find(index, Query("i=1199", in_text=True))
    assert [index.data.strings.text(int(index.data.col("args")[index.order[h]])) for h in hits] == ["i=1199"]
    assert len(find(index, Query("r11", in_text=True))) == 100  # (r1100..r1199)
    named = np.unique(np.concatenate([got.col("args"), got.col("val"), got.mark_col("ref")]).astype(np.int64))
    looked = list(full.strings.decoded_chunks(among=named))
    assert 0 < len(looked) < len(full.strings.chunks) // 2
    assert all(any(c.first_id <= i < c.first_id + c.count for c in looked) for i in named[named > 0].tolist())


def test_a_tail_lets_go_of_the_texts_only_the_calls_it_let_go_named(small_tail):
    """The STRS chunks read after the tail began are let go once no call it holds names their
    texts (the newest few stay), to be read again from the file when asked for; the columns'
    texts all stay."""
    b, _ = long_loop()
    full = fed(b.data(finish=False), True)
    chunks = full.strings.chunks
    gone = [c for c in chunks[full._tail_texts :] if isinstance(c, loader.LetGoStrings)]
    assert gone and not any(isinstance(c, loader.LetGoStrings) for c in chunks[: full._tail_texts])
    assert full.strings.text(int(full.col("args")[6])) == "i=0.1"  # (a column call's text)
    assert full.strings.text(gone[0].first_id) == "i=0.{}".format((gone[0].first_id - 4) // 4)


def test_a_followed_session_short_of_memory_for_its_texts_goes_on_with_a_tail(small_tail, monkeypatch):
    """GIVEN a followed session whose call columns have room but whose texts can no longer get
    memory (a program with long arguments: its texts outgrow the limit before its calls fill
    the columns; MemoryError reading a STRS chunk), THEN that chunk is kept as read, the next
    calls go to a tail, and the newest calls' window is as if everything were held."""
    from flowtrace_tui.model import loader as loader_module

    decode, seen = loader_module.D.decode, []

    def short(chunk):
        if chunk.kind == loader_module.F.STRS:
            seen.append(chunk)
            if len(seen) > 10:
                raise MemoryError("Unable to allocate 64.0 MiB for an array with shape (67108864,) and data type uint8")
        return decode(chunk)

    b, (main, *outs) = long_loop()
    data = b.data(finish=False)
    whole = fed(data, False)
    monkeypatch.setattr(loader_module.D, "decode", short)
    full = fed(data, True)
    assert full.short_of_memory and full.tail is not None and full.tail.let_go > 0
    assert full.n == 1003 and full.calls_read == whole.n  # (ten flushes of 50 iterations, 100 calls each, and 3)
    want, got = window_data(whole, 100), window_data(full, 100)
    assert got.window.ids.tolist() == want.window.ids.tolist() and {main, outs[-1]} <= set(got.window.ids.tolist())
    for name in ("parent", "func", "t1", "depth", "root", "nsusp"):
        assert (got.col(name) == want.col(name)).all(), name
    assert texts(got, got.col("args")) == texts(want, want.col("args"))
    assert full.strings.text(int(full.col("args")[6])) == "i=0.1"


def generator_loop(iterations: int = 1500) -> TraceBuilder:
    """main -> work(i) -> a generator suspended and resumed in each call (two MARK rows a
    call, as a busy program's generators make), a flush every 50 iterations."""
    b = TraceBuilder()
    b.enter("main", args="argv=[]")
    for i in range(iterations):
        w = b.enter("work", args=f"i={i}")
        g = b.enter("numbers", kind="generator", args=f"k={i}")
        b.suspend(g, f"{i}")
        b.leave(b.enter("leaf", args=f"x={i}"), f"{i}")
        b.resume(g, w)
        b.leave(g, "None")
        b.leave(w, f"r{i}")
        if i % 50 == 49:
            b.flush()
    b.flush()
    return b


def test_a_followed_session_whose_mark_rows_cannot_grow_goes_on_with_a_tail(small_tail):
    """GIVEN a followed session whose MARK rows cannot grow past ~200 rows (a busy program's
    generators make two a call: their columns outgrew a 6 GB limit before the call columns
    were full), THEN the next calls go to a tail (its MARK rows its own) and the newest calls'
    window is as if everything were held, suspensions and MARK rows included."""
    data = generator_loop().data(finish=False)
    whole = fed(data, False)
    full = TraceData("t")
    full.expect_calls(COLUMN_ROWS)
    marks = full._marks
    reserve = marks.reserve

    def tight(extra, exact=False):  # (the session's MARK rows only: not a window's, nor the tail's)
        if marks.size + extra > 200:
            raise MemoryError("Unable to allocate 2.00 GiB for an array with shape (268435456,) and data type int64")
        return reserve(extra, exact)

    marks.reserve = tight
    for chunk in ChunkReader.from_bytes(data).poll():
        full.feed([chunk])
    assert full.short_of_memory and full.tail is not None and full.tail.let_go > 0
    # (the third flush's MARK rows found no room: its 150 calls are the columns', their rows lost)
    assert (full.n, full.n_marks, full.marks_lost) == (451, 200, 100) and full.calls_read == whole.n
    want, got = window_data(whole, 200), window_data(full, 200)
    assert got.window.ids.tolist() == want.window.ids.tolist()
    for name in ("parent", "func", "t1", "depth", "root", "nsusp"):
        assert (got.col(name) == want.col(name)).all(), name
    assert got.n_marks == want.n_marks > 100
    for name in ("call", "t", "kind", "other"):
        assert (got.mark_col(name) == want.mark_col(name)).all(), name
    assert texts(got, got.col("args")) == texts(want, want.col("args"))


def two_processes(tmp_path, iterations: int = 1500) -> tuple[list[TraceSource], list[int]]:
    """A session of two processes followed as they run: the root's main -> work(i), its fork's
    job(k) -> leaf (texts repeated: each names the same string ids again), both flushed every
    50 iterations; read after each flush by two sources of the same files, the first followed
    with call columns of COLUMN_ROWS, the second holding every call. Main and the child's
    loop are left running."""
    import os

    path = str(tmp_path / "trace.ftr")
    root = TraceBuilder(meta={"pid": 100, "argv": ["prog.py"], "parts": "trace.ftr.d"}, intern=True)
    os.makedirs(path + ".d")
    child = child_process(101, 100, ["prog.py"], 20, how="fork", started_by=(100, 1001, 25))
    child.interned = {}
    m = root.enter("main", args="argv=[]")
    loop = child.enter("loop", args="n=2")
    feeds = [Feeder(root, path), Feeder(child, path + ".d/101.ftr")]
    sources = [TraceSource.open(path), TraceSource.open(path)]
    sources[0].data.expect_calls(COLUMN_ROWS)
    for i in range(iterations):
        root.leave(root.enter("work", args=f"i={i % 300}"), f"r{i % 300}")
        job = child.enter("job", args=f"k={i % 1000}")
        child.leave(child.enter("leaf", args=f"x={i % 7}"), f"{i % 7}")
        child.leave(job, f"done {i % 1000}")
        if i % 50 == 49:
            for f in feeds:
                f.b.flush()
                f.sync()
            for src in sources:
                while src.step().more:
                    pass
    return sources, [m, loop]


def test_a_followed_session_of_several_processes_past_its_call_columns_goes_on_with_a_tail(small_tail, tmp_path):
    """GIVEN a followed session of two processes (a program that forks) whose call columns
    hold 1,500 calls, WHEN 4,502 calls arrive, THEN the columns are not grown (they grew
    fourfold: MemoryError under a limit) but its newest calls go to a tail, and a window of
    them is the window of a session holding every call: the same calls of both processes,
    the running ancestors (main, the child's loop), ends, depths and texts -- those a tail
    let go that later calls repeat included -- and the process each call belongs to."""
    (full, whole), _ = two_processes(tmp_path)
    f, w = full.data, whole.data
    assert f.multi_process and w.multi_process and f.calls_read == w.n == 4502
    assert f.tail is not None and f.tail.let_go > 0 and f._calls.cap == COLUMN_ROWS and f.n < COLUMN_ROWS
    assert [p.calls for p in f.processes] == [p.calls for p in w.processes] == [1501, 3001]
    for name in ("parent", "func", "thread", "t0", "t1", "how", "val", "depth", "root"):
        assert (f.col(name) == w.col(name)[: f.n + 1]).all(), name
    want, got = window_data(w, 300), window_data(f, 300)
    assert got.window.ids.tolist() == want.window.ids.tolist() and got.window.n_ancestors == 2
    for name in ("parent", "func", "thread", "t0", "t1", "how", "depth", "root"):
        assert (got.col(name) == want.col(name)).all(), name
    assert texts(got, got.col("args")) == texts(want, want.col("args"))
    assert texts(got, got.col("val")) == texts(want, want.col("val"))
    assert {"argv=[]", "n=2", "i=299", "k=499", "x=6"} <= set(texts(got, got.col("args")))
    assert any(isinstance(c, loader.LetGoStrings) for c in f.strings.chunks)
    procs = [f.process_of_thread(int(t)) for t in got.col("thread")[1:]]
    assert procs == [w.process_of_thread(int(t)) for t in want.col("thread")[1:]] and set(procs) == {0, 1}
