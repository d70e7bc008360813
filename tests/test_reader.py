"""flowtrace.ftr.reader: exact round trips through SessionWriter, and every kind of bad file."""

from __future__ import annotations

import io
import pathlib
import struct

import pytest
from trace_builder import META, chunk_offsets, sample_bytes, write_sample

from flowtrace.ftr import format as F
from flowtrace.ftr.reader import FormatError, Mark, Trace, load, trace_to_events
from flowtrace.ftr.writer import SessionWriter
from flowtrace.recorder.base import Batch

FULL = sample_bytes()
UNENDED = sample_bytes(finish=False)


def shape(trace: Trace) -> list[tuple]:
    """Tree order with depth, names, args and how each call ended."""
    return [
        ("  " * d + c.qualname, c.args, c.end, c.result, c.exception, c.start_ns, c.end_ns)
        for c, d in trace.walk()
    ]


EXPECTED_SHAPE = [
    ("main", "", "return", "None", None, 0, 1000),
    ("  fib", "n=2", "return", "1", None, 10, 100),
    ("    fib", "n=1", "return", "1", None, 20, 30),
    ("    fib", "n=0", "raise", None, "ValueError: n=0", 40, 50),
    ("  Shop.items", "self=<shop.Shop object at 0x1>", "return", "None", None, 110, 400),
    ("  fetch", "url='a'", "unfinished", None, None, 500, None),
    ("fib", "n=5", "unfinished", None, None, 50, None),
]


def test_round_trip_exact(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.ftr"
    write_sample(path)
    for source in (path, str(path), path.read_bytes()):
        trace = load(source)
        assert trace.status == "finished" and trace.problem is None and trace.finished
        assert trace.version == (F.VERSION_MAJOR, F.VERSION_MINOR)
        assert shape(trace) == EXPECTED_SHAPE
    assert trace.meta["argv"] == META["argv"] and trace.meta["origin_ns"] == 1_000_000_000
    assert trace.end == {"t_end": 1200, "reason": "exit", "exit_code": 0, "signal": None,
                         "error": None, "calls": 7}
    assert trace.t_end_ns == 1200
    assert [(t.id, t.name, t.ident) for t in trace.threads.values()] == [
        (1, "MainThread", 140001), (2, "worker-1", 140002)]
    assert [(t.id, t.name, t.thread, t.creator, t.root) for t in trace.tasks.values()] == [
        (1, "Task-1", 1, 1, 6)]
    assert sorted(trace.functions) == [1, 2, 3, 4]
    assert trace.functions[3].kind == "generator" and trace.functions[3].module == "shop"


def test_calls_fields_and_tree_helpers() -> None:
    trace = load(FULL)
    assert len(trace) == 7
    assert [c.id for c in trace.roots] == [1, 7]
    assert [c.id for c in trace.children(1)] == [2, 5, 6]
    assert trace.call(2).children == [3, 4]
    gen = trace.call(5)
    assert (gen.kind, gen.file, gen.line, gen.module, gen.duration_ns) == ("generator", "/tmp/shop.py", 7, "shop", 290)
    assert gen.marks == [Mark("suspend", 120, "1", None), Mark("resume", 200, None, 1),
                         Mark("handled", 210, "KeyError: 'x'", None)]
    assert trace.call(4).marks == [Mark("raise", 45, "ValueError: n=0", None)]
    assert trace.call(2).marks == [Mark("handled", 55, "ValueError: n=0", None)]
    coro = trace.call(6)
    assert (coro.task, trace.task_name(coro.task), coro.finished, coro.duration_ns) == (1, "Task-1", False, None)
    stopped = trace.call(7)
    assert (stopped.thread, trace.thread_name(stopped.thread), stopped.end, stopped.stopped_ns) == (
        2, "worker-1", "unfinished", 60)
    assert [c.id for c, _ in trace.walk(thread=2)] == [7]
    assert [(c.id, d) for c, d in trace.walk(max_depth=1)] == [(1, 0), (2, 1), (5, 1), (6, 1), (7, 0)]
    assert [(c.id, d) for c, d in trace.walk(2)] == [(2, 0), (3, 1), (4, 1)]
    with pytest.raises(KeyError):
        trace.call(8)


def test_trace_to_events() -> None:
    events = trace_to_events(load(FULL))
    assert [(e.id, e.kind, e.func_name, e.parent_id, e.args_repr, e.result_repr, e.end, e.exception)
            for e in events] == [
        (1, "call", "main", None, "", "None", "return", None),
        (2, "call", "fib", 1, "n=2", "1", "return", None),
        (3, "call", "fib", 2, "n=1", "1", "return", None),
        (4, "call", "fib", 2, "n=0", None, "raise", "ValueError: n=0"),
        (5, "generator", "Shop.items", 1, "self=<shop.Shop object at 0x1>", "None", "return", None),
        (6, "coroutine", "fetch", 1, "url='a'", None, "unfinished", None),
        (7, "call", "fib", None, "n=5", None, "unfinished", None),
    ]
    assert events[1].duration == pytest.approx(90e-9)
    assert events[5].duration is None and events[5].task_name == "Task-1"
    assert events[6].thread_name == "worker-1"
    assert events[4].marks[1] == ("resume", 200, None, 1)
    assert all(e.duration is None for e in trace_to_events(load(FULL), timing=False))


def test_unfinished_session() -> None:
    trace = load(UNENDED)
    assert trace.status == "unfinished" and trace.end is None
    assert "no end record" in trace.problem
    assert shape(trace) == EXPECTED_SHAPE
    assert trace.t_end_ns == 1000  # the latest time in the file
    assert trace.describe().startswith("unfinished")


def _expected_calls(data: bytes, cut: int) -> int:
    """Calls in the CALL chunks wholly inside data[:cut]."""
    n = 0
    for kind, start, end in chunk_offsets(data):
        if end <= cut and kind == F.CALL:
            n += F.decode_columns(kind, _payload(data, start, end)).rows
    return n


def _payload(data: bytes, start: int, end: int) -> bytes:
    import zlib

    _kind, flags, length = F.CHUNK_HEADER.unpack_from(data, start)
    raw = data[start + F.CHUNK_HEADER_SIZE: start + F.CHUNK_HEADER_SIZE + length]
    return zlib.decompress(raw) if flags & F.FLAG_ZLIB else raw


def test_truncated_at_every_offset() -> None:
    full = load(FULL)
    chunks = chunk_offsets(FULL)
    meta_end = chunks[0][2]
    assert chunks[0][0] == F.META
    for cut in range(len(FULL) + 1):
        data = FULL[:cut]
        if cut < meta_end:
            with pytest.raises(FormatError) as info:
                load(data)
            msg = str(info.value)
            assert "\n" not in msg and msg.startswith("<memory>: ")
            if cut == 0:
                assert "empty" in msg
            elif cut < 16:
                assert "header" in msg
            else:
                assert "metadata" in msg
            continue
        trace = load(data)  # never anything but a Trace
        if cut == len(FULL):
            assert trace.status == "finished"
            continue
        assert trace.status == "unfinished", cut
        assert trace.end is None
        n = _expected_calls(FULL, cut)
        assert len(trace.calls) == n
        for got, want in zip(trace.calls, full.calls):
            assert (got.id, got.parent, got.qualname, got.args, got.start_ns) == (
                want.id, want.parent, want.qualname, want.args, want.start_ns)
            assert got.end in ("unfinished", want.end)
        at_boundary = any(end == cut for _k, _s, end in chunks)
        assert ("incomplete chunk" in trace.problem) == (not at_boundary), cut


def test_every_flipped_byte_is_detected() -> None:
    full = load(FULL)
    chunks = chunk_offsets(FULL)
    for i in range(len(FULL)):
        data = bytearray(FULL)
        data[i] ^= 0x5A
        if i < 8 or i < chunks[0][2] and i >= 16:
            with pytest.raises(FormatError) as info:
                load(bytes(data))
            assert "\n" not in str(info.value)
            continue
        if i < 16:
            continue  # version / flags bytes: covered by test_newer_version
        start = next(s for _k, s, e in chunks if s <= i < e)
        trace = load(bytes(data))
        assert trace.status in ("unfinished", f"damaged at offset {start}"), (i, trace.status)
        if trace.status != "unfinished":
            assert trace.damage_offset == start and trace.problem
        else:  # a flipped length byte makes the chunk look incomplete
            assert "incomplete chunk" in trace.problem
        assert len(trace.calls) <= len(full.calls)
        for got, want in zip(trace.calls, full.calls):
            assert (got.id, got.parent, got.qualname, got.args) == (want.id, want.parent, want.qualname, want.args)


def test_corrupt_crc_keeps_prefix() -> None:
    chunks = chunk_offsets(FULL)
    second_call = [s for k, s, e in chunks if k == F.CALL][1]
    data = bytearray(FULL)
    data[second_call + 20] ^= 0xFF
    trace = load(bytes(data))
    assert trace.status == f"damaged at offset {second_call}"
    assert trace.problem == f"corrupt CALL chunk at offset {second_call}"
    assert [c.id for c in trace.calls] == [1, 2, 3, 4]
    assert "showing the 4 calls before it" in trace.describe()


def _append_chunks(*chunks: bytes) -> bytes:
    return UNENDED + b"".join(chunks)


def _exit_chunk(rows: list[tuple[int, int, int, int]]) -> bytes:
    cols = [("call", "I", 0, [r[0] for r in rows]), ("t1", "q", 0, [r[1] for r in rows]),
            ("how", "B", 0, [r[2] for r in rows]), ("val", "I", 0, [r[3] for r in rows])]
    return F.frame_chunk(F.EXIT, F.encode_columns(0, len(rows), cols))


def _call_chunk(base: int, par: int, fn: int = 1, thr: int = 1, args: int = 0) -> bytes:
    cols = [("par", "I", 0, [par]), ("fn", "I", 0, [fn]), ("thr", "I", 0, [thr]),
            ("t0", "q", 0, [5]), ("args", "I", 0, [args])]
    return F.frame_chunk(F.CALL, F.encode_columns(base, 1, cols))


@pytest.mark.parametrize(
    "chunk, reason",
    [
        (_exit_chunk([(9, 99, 1, 0)]), "refers to call 9, which has not started"),
        (_exit_chunk([(6, 99, 7, 0)]), "ends in an unknown way"),
        (_exit_chunk([(6, 99, 1, 500)]), "refers to text 500"),
        (_call_chunk(9, 0), "starts at call 9, expected 8"),
        (_call_chunk(8, 8), "has parent 8, which did not start before it"),
        (_call_chunk(8, 0, fn=9), "function 9"),
        (_call_chunk(8, 0, thr=9), "thread 9"),
        (F.frame_chunk(F.FUNC, b"{not json"), "bad JSON"),
        (F.frame_chunk(F.FUNC, b'{"a": 1}'), "not a list of objects"),
        (F.frame_chunk(F.THRD, b'[{"name": "x"}]'), "malformed"),
        (F.frame_chunk(F.CALL, b"\x01\x02"), "too short"),
        (F.frame_chunk(F.STRS, F.encode_strings(3, ["x"])), "starts at text 3, expected 12"),
    ],
)
def test_invalid_chunk_is_damage(chunk: bytes, reason: str) -> None:
    data = _append_chunks(chunk, F.frame_chunk(F.ENDS, b"{}"))
    trace = load(data)
    assert trace.status == f"damaged at offset {len(UNENDED)}"
    assert reason in trace.problem and "\n" not in trace.problem
    assert len(trace.calls) == 7
    assert trace.end is None  # nothing after the damage is used


def test_valid_appended_chunks_are_used() -> None:
    data = _append_chunks(_call_chunk(8, 6, args=11), _exit_chunk([(6, 900, 2, 9), (8, 800, 1, 0)]),
                          F.frame_chunk(b"ZZZZ", b"unknown chunk types are skipped"),
                          F.frame_chunk(F.ENDS, b'{"reason": "stopped", "t_end": 950}'))
    trace = load(data)
    assert trace.status == "finished"
    assert trace.call(8).parent == 6 and trace.call(8).args == "n=5"
    assert trace.call(6).children == [8]
    assert (trace.call(6).end, trace.call(6).exception, trace.call(6).end_ns) == ("raise", "KeyError: 'x'", 900)
    assert trace.describe() == "finished (stopped), 8 calls"


def test_bytes_after_ends_are_ignored() -> None:
    trace = load(FULL + b"garbage after the end")
    assert trace.status == "finished" and len(trace.calls) == 7


def test_empty_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.ftr"
    path.write_bytes(b"")
    with pytest.raises(FormatError, match=r"^.*empty.ftr: empty file, not a flowtrace session$"):
        load(path)


def test_not_a_session(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is a text file and not a trace at all\n")
    with pytest.raises(FormatError, match=r"notes.txt: not a flowtrace session file \(wrong magic bytes\)$"):
        load(path)
    path.write_text("hi")
    with pytest.raises(FormatError, match="not a flowtrace session"):
        load(path)


def test_missing_file_and_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FormatError, match="nope.ftr: no such file$"):
        load(tmp_path / "nope.ftr")
    with pytest.raises(FormatError, match="is a directory"):
        load(tmp_path)


def test_newer_version() -> None:
    data = bytearray(FULL)
    struct.pack_into("<HH", data, 8, F.VERSION_MAJOR + 1, 0)
    with pytest.raises(FormatError, match=r"format version 2\.0, newer than this flowtrace reads"):
        load(bytes(data))
    struct.pack_into("<HH", data, 8, F.VERSION_MAJOR, F.VERSION_MINOR + 3)  # newer minor: fine
    assert load(bytes(data)).version == (1, F.VERSION_MINOR + 3)


def test_first_chunk_not_meta() -> None:
    data = F.file_header() + F.frame_chunk(F.FUNC, b"[]")
    with pytest.raises(FormatError, match="damaged before its session metadata .*not META"):
        load(data)


def test_corrupt_meta_is_an_error() -> None:
    data = bytearray(FULL)
    data[20] ^= 1
    with pytest.raises(FormatError, match=r"damaged before its session metadata \(corrupt META chunk at offset 16\)"):
        load(bytes(data))


def test_empty_session_and_partial_calls() -> None:
    buf = io.BytesIO()
    w = SessionWriter(buf, {"argv": []}, 0)
    b = Batch(functions=[{"id": 1, "qualname": "outer", "module": "m", "file": "f", "line": 1, "kind": "function"}],
              threads=[{"id": 1, "ident": 1, "native_id": 1, "name": "MainThread"}])
    for par, flag in ((0, F.CALL_PARTIAL), (1, F.CALL_PARTIAL), (2, 0)):
        b.call_parent.append(par)
        b.call_func.append(1)
        b.call_thread.append(1)
        b.call_t0.append(0 if flag else 7)
        b.call_args.append(0)
        b.call_task.append(0)
        b.call_flag.append(flag)
    w.write_batch(b)
    w.finish({"reason": "stopped", "t_end": 9})
    trace = load(buf.getvalue())
    assert [(c.id, c.partial, c.args, c.end) for c, _ in trace.walk()] == [
        (1, True, None, "unfinished"), (2, True, None, "unfinished"), (3, False, None, "unfinished")]

    buf = io.BytesIO()
    SessionWriter(buf, {}, 0).finish({"reason": "stopped", "t_end": 0})
    trace = load(buf.getvalue())
    assert (trace.status, trace.calls, trace.roots, list(trace.walk())) == ("finished", [], [], [])


def test_load_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        load(42)  # type: ignore[arg-type]
