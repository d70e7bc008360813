"""The diff view's sessions read in child processes (model/diff_sides.py): the same data and
merged paths as read here, the same screen, a clear message when a child cannot read, and no
child left behind when the app quits while reading."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

from flowtrace.diff_rules import exception_type
from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.diff_app import DiffApp
from flowtrace_tui.model import diff_sides
from flowtrace_tui.model.diff_sides import SideReadError, read_all, read_side, read_sides
from flowtrace_tui.model.diff_tree import exception_types
from flowtrace_tui.model.loader import HOW_RAISE, PackedStrings, StringTable
from flowtrace_tui.model.merged import MergeCancelled
from flowtrace_tui.model.source import TraceSource

from trace_builder import TraceBuilder, loop_nodes as loop, nested_session as session, several_processes

from .apps import sync
from .test_diff_app import lines, settled

CALL_COLUMNS = ("parent", "func", "thread", "t0", "args", "task", "flag", "t1", "how", "val", "nsusp", "depth", "root")
MERGED_ARRAYS = ("order", "pos_of", "depth", "end", "parent", "run", "self_time", "count", "raised", "unfinished",
                 "func", "first_call", "node_of", "call_run")


def threaded_session() -> bytes:
    """Two threads, arguments, results, an exception, a generator's marks, an unfinished call."""
    b = TraceBuilder(meta={"argv": ["prog.py"]})
    b.thread(2, "worker")
    main = b.enter("main", args="n=3")
    for i in range(3):
        b.leave(b.enter("step", main, args=f"i={i}"), result=str(i * i))
    gen = b.enter("numbers", main, thread=2)
    b.suspend(gen, "1")
    b.resume(gen)
    b.leave(gen, raised="ValueError: bad")
    b.enter("hang", main)  # never ends
    b.leave(main, result="None")
    return b.data(finish=False)


def files(tmp_path, *sessions: bytes) -> list[str]:
    paths = []
    for i, raw in enumerate(sessions):
        path = tmp_path / f"s{i}.ftr"
        path.write_bytes(raw)
        paths.append(str(path))
    return paths


def assert_same_sides(here: list, there: list) -> None:
    for a, b in zip(here, there):
        for name in CALL_COLUMNS:
            assert np.array_equal(a.data.col(name), b.data.col(name)), name
        for name in ("call", "t", "kind", "ref", "other", "n", "run"):
            assert np.array_equal(a.data.mark_col(name), b.data.mark_col(name)), name
        assert (a.data.functions, a.data.threads, a.data.meta, a.data.ends, a.data.t_end, a.data.damage) == \
               (b.data.functions, b.data.threads, b.data.meta, b.data.ends, b.data.t_end, b.data.damage)
        assert [(p.index, p.path, p.meta, p.ends, p.calls, p.threads) for p in a.data.processes] == \
               [(p.index, p.path, p.meta, p.ends, p.calls, p.threads) for p in b.data.processes]
        assert [a.data.strings.text(i) for i in range(a.data.strings.count + 2)] == \
               [b.data.strings.text(i) for i in range(b.data.strings.count + 2)]
        for name in MERGED_ARRAYS:
            assert np.array_equal(getattr(a.merged, name), getattr(b.merged, name)), name
        assert [lv.tolist() for lv in a.merged.levels] == [lv.tolist() for lv in b.merged.levels]
        assert a.types == b.types
        assert not b.merged.levels[0].flags.writeable  # as TreeIndex hands them out


def test_a_child_reads_what_this_process_reads(tmp_path):
    paths = files(tmp_path, threaded_session(), session(loop(4, work="work2", raise_at=2)))
    here = read_sides([TraceSource.open(p) for p in paths], processes=False)
    there = read_sides([TraceSource.open(p) for p in paths], processes=True)
    assert_same_sides(here, there)


def test_a_child_reads_a_session_of_several_processes(tmp_path):
    paths = [several_processes(str(tmp_path))]
    here = read_sides([TraceSource.open(p) for p in paths], processes=False)
    there = read_sides([TraceSource.open(p) for p in paths], processes=True)
    assert len(there[0].data.processes) == 3 and there[0].data.n == here[0].data.n == 6
    assert_same_sides(here, there)


@sync
async def test_the_screen_is_the_same_from_child_processes(tmp_path):
    paths = files(tmp_path, session(loop(3) + [("report", "", "=1", [])], step=1000),
                  session(loop(4, work="work2", raise_at=2) + [("report", "", "=1", [])], step=1000))
    screens = []
    for processes in (False, True):
        app = DiffApp(*(TraceSource.open(p) for p in paths), processes=processes)
        async with app.run_test(size=(160, 30)) as pilot:
            await settled(pilot)
            await pilot.press("J", "J")  # the next change, twice
            screens.append((lines(app), app.status_parts()))
    assert screens[0] == screens[1]
    assert "change 2 of 4" in screens[1][1]


def test_a_child_that_cannot_read_says_why_in_one_line(tmp_path):
    (path,) = files(tmp_path, session(loop(1)))
    src = TraceSource.open(path)
    os.unlink(path)  # gone between the check and the read
    with pytest.raises(SideReadError, match=r"s0\.ftr: no such file$"):
        read_sides([src], processes=True)


def test_cancelled_while_children_read(tmp_path, monkeypatch):
    paths = files(tmp_path, session(loop(2)), session(loop(3)))
    started = []
    real = diff_sides._Child

    class Kept(real):
        def __init__(self, path: str) -> None:
            super().__init__(path)
            started.append(self)

    monkeypatch.setattr(diff_sides, "_Child", Kept)
    with pytest.raises(MergeCancelled):
        read_sides([TraceSource.open(p) for p in paths], lambda: True, processes=True)
    assert len(started) == 2
    assert all(c.proc.returncode is not None and c.fd == -1 for c in started)  # ended, memory file let go


def test_small_or_in_memory_sessions_are_read_here(tmp_path, monkeypatch):
    def no_child(path: str) -> None:
        raise AssertionError("a child process was started")

    monkeypatch.setattr(diff_sides, "_Child", no_child)
    paths = files(tmp_path, session(loop(2)), session(loop(3)))
    a, b = read_sides([TraceSource.open(p) for p in paths])  # small: here
    assert (a.data.n, b.data.n) == (7, 10)  # main, 3 calls per loop step


def test_texts_stay_packed_until_asked_for():
    raw = threaded_session()
    eager = TraceSource(ChunkReader.from_bytes(raw, "a.ftr"), len(raw))
    packed = TraceSource(ChunkReader.from_bytes(raw, "a.ftr"), len(raw))
    packed.reader.keep_compressed = frozenset({F.STRS})
    for src in (eager, packed):
        read_all(src)
    strings = packed.data.strings
    assert strings.chunks and all(isinstance(c, PackedStrings) for c in strings.chunks)
    ids = range(eager.data.strings.count + 2)
    assert [t.blob.tobytes() for t in strings.decoded_chunks(keep=False)] == \
           [t.blob.tobytes() for t in eager.data.strings.chunks]
    assert all(isinstance(c, PackedStrings) for c in strings.chunks)  # a pass that keeps none
    wanted = [0, 3, 1, 3, strings.count, strings.count + 1, -2]
    assert strings.texts(wanted) == {i: eager.data.strings.text(i) for i in wanted}  # each chunk in part
    assert all(isinstance(c, PackedStrings) for c in strings.chunks)
    assert [strings.text(i) for i in ids] == [eager.data.strings.text(i) for i in ids]
    assert not any(isinstance(c, PackedStrings) for c in strings.chunks)  # kept once asked for


def test_a_packed_chunk_that_does_not_decompress_reads_as_no_text():
    whole = zlib.compress(F.encode_strings(1, [str(i * 7919) for i in range(2000)]))
    payload = whole[: len(whole) // 2] + b"junk" * 10  # the header whole, then damage
    table = StringTable()
    table.add(PackedStrings(payload))
    assert table.count == 2000 and table.text(1) == "" and table.text(2000) == ""
    with pytest.raises(F.FormatError, match="too short"):
        PackedStrings(zlib.compress(b"\x01"))


def test_exception_types_read_each_text_once_and_agree_with_each_call():
    b = TraceBuilder(meta={"argv": ["prog.py"]})
    main = b.enter("main")
    for i in range(12):
        step = b.enter("step", main, args=f"i={i}")
        b.leave(b.enter("parse", step), raised=["ValueError: n=1", "KeyError: 'k'", "ValueError: n=2"][i % 3])
        b.leave(step, raised=None if i % 4 else "OSError: disk")
    b.leave(main)
    raw = b.data()
    src = TraceSource(ChunkReader.from_bytes(raw, "a.ftr"), len(raw))
    side = read_side(src)
    data, m = side.data, side.merged
    each: dict[int, set[str]] = {}
    for call in range(1, data.n + 1):
        if data.col("how")[call] == HOW_RAISE:
            each.setdefault(int(m.node_of[call]), set()).add(exception_type(data.strings.text(int(data.col("val")[call]))))
    assert side.types == exception_types(m) == {k: frozenset(v) for k, v in each.items()}
    assert sorted(map(sorted, side.types.values())) == [["KeyError", "ValueError"], ["OSError"]]


@pytest.mark.parametrize("cores, load, spare", [(2, 0.3, True), (2, 1.6, False), (8, 6.0, True), (1, 0.0, False)])
def test_children_only_with_a_core_to_spare(monkeypatch, cores, load, spare):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert diff_sides.spare_core() is spare


def test_a_child_killed_says_so(tmp_path, monkeypatch):
    (path,) = files(tmp_path, session(loop(1)))
    monkeypatch.setattr(diff_sides, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(SideReadError, match=r"s0\.ftr failed: the reader process ended: killed by signal 9"):
        read_sides([TraceSource.open(path)], processes=True)
