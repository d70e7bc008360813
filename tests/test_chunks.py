"""ChunkReader: chunk boundaries, bounded reads, growing files."""

from __future__ import annotations

import random
from array import array

from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.writer import SessionWriter
from flowtrace.recorder.base import Batch


class SmallReader(ChunkReader):
    READ_SIZE = 1024  # the read bound is 64 x this: 64 KiB


def _batch(first_id: int, n: int, rng: random.Random) -> Batch:
    b = Batch(
        functions=[{"id": 1, "qualname": "f", "module": "m", "file": "m.py", "line": 1, "kind": "function"}]
        if first_id == 1 else [],
        threads=[{"id": 1, "ident": 1, "native_id": 1, "name": "MainThread"}] if first_id == 1 else [],
    )
    b.call_first_id = first_id
    t = 1000 * first_id
    for i in range(n):
        t += rng.randrange(1, 1 << 20)  # noisy times: the chunk does not compress much
        b.call_parent.append(0)
        b.call_func.append(1)
        b.call_thread.append(1)
        b.call_t0.append(t)
        b.call_args.append(0)
        b.call_task.append(0)
        b.call_flag.append(0)
    return b


def test_a_chunk_larger_than_the_read_bound_is_read_whole(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "big.ftr"
    w = SessionWriter(path, {"pid": 1}, 0)
    w.write_batch(_batch(1, 10, rng))
    w.write_batch(_batch(11, 60_000, rng))  # one CALL chunk of several hundred KiB
    w.write_batch(_batch(60_011, 5, rng))
    w.finish({"reason": "stopped"})
    chunks = ChunkReader(path).poll()
    stored = [b.offset - a.offset for a, b in zip(chunks, chunks[1:]) if a.kind == F.CALL]
    assert max(stored) > 2 * 64 * SmallReader.READ_SIZE  # as stored on disk: twice the bound

    reader = SmallReader(path)
    rows = []
    polls = 0
    while not reader.ended:
        chunks = reader.poll()
        polls += 1
        assert chunks, "a poll on a complete file must always return a chunk until the end"
        rows += [c.columns().rows for c in chunks if c.kind == F.CALL]
        assert polls < 100
    assert rows == [10, 60_000, 5]
    assert reader.damage is None


def test_growing_file_returns_only_complete_chunks(tmp_path):
    rng = random.Random(3)
    whole = tmp_path / "whole.ftr"
    w = SessionWriter(whole, {"pid": 1}, 0)
    w.write_batch(_batch(1, 100, rng))
    w.write_batch(_batch(101, 50, rng))
    w.finish({"reason": "stopped"})
    data = whole.read_bytes()

    live = tmp_path / "live.ftr"
    live.write_bytes(b"")
    reader = ChunkReader(live)
    seen = []
    with open(live, "ab") as out:
        for i in range(0, len(data), 97):  # the writer's bytes arrive in odd pieces
            out.write(data[i : i + 97])
            out.flush()
            seen += [(c.kind, c.offset) for c in reader.poll()]
    assert reader.ended and reader.damage is None
    kinds = [k for k, _ in seen]
    assert kinds == [F.META, F.FUNC, F.THRD, F.CALL, F.CALL, F.ENDS]
    offsets = [o for _, o in seen]
    assert offsets == sorted(set(offsets))


def test_id_columns_are_written_narrow_and_read_back_exactly(tmp_path):
    """fn/thr are stored in 1 or 2 bytes when the ids fit; EXIT's val is left out when all
    zero; both readers give back the same values."""
    from flowtrace.ftr.reader import load

    path = tmp_path / "narrow.ftr"
    w = SessionWriter(path, {"pid": 1}, 0)
    funcs = [{"id": i, "qualname": f"f{i}", "module": "m", "file": "m.py", "line": i, "kind": "function"}
             for i in range(1, 300)]
    b = Batch(functions=funcs, threads=[{"id": 1, "ident": 1, "native_id": 1, "name": "MainThread"}])
    for i in range(1, 300):
        b.call_parent.append(0)
        b.call_func.append(i)
        b.call_thread.append(1)
        b.call_t0.append(10 * i)
        b.call_args.append(0)
        b.call_task.append(0)
        b.call_flag.append(0)
        b.exit_call.append(i)
        b.exit_t1.append(10 * i + 5)
        b.exit_how.append(F.END_RETURN)
        b.exit_val.append(0)
    w.write_batch(b)
    w.finish({"reason": "stopped"})

    chunks = {c.kind: c for c in ChunkReader(path).poll()}
    call_cols = chunks[F.CALL].columns()
    assert call_cols.columns["fn"].typecode == "H"  # ids up to 299
    assert call_cols.columns["thr"].typecode == "B"
    assert "val" not in chunks[F.EXIT].columns().columns
    trace = load(path)
    assert [c.qualname for c in trace.calls] == [f"f{i}" for i in range(1, 300)]
    assert [c.result for c in trace.calls] == [None] * 299
    assert [c.end for c in trace.calls] == ["return"] * 299



def test_chunks_handed_out_keep_their_bytes_while_the_reader_reuses_its_buffer(tmp_path):
    """GIVEN a file growing in pieces of random sizes (some cut a chunk, some bring a chunk
    larger than anything read so far: the reader's one buffer grows), stored and compressed
    chunks, WHEN it is polled after each piece, THEN every chunk comes back once, and the
    chunks handed out by early polls still hold exactly what a single read of the finished
    file gives (the reader reuses its buffer from poll to poll: a payload must be a copy,
    never a view of it)."""
    rng = random.Random(11)
    payloads = [rng.randbytes(n) for n in (10, 3_000, 200_000, 70, 90_000, 5, 150_000, 64)]
    data = F.file_header() + b"".join(F.frame_chunk(b"CALL", p, compress=k % 3 == 0) for k, p in enumerate(payloads))
    data += F.frame_chunk(F.ENDS, b"{}")
    whole = tmp_path / "whole.ftr"
    whole.write_bytes(data)
    want = [(c.kind, c.offset, c.payload) for c in ChunkReader(whole).poll()]
    assert [p for _, _, p in want[:-1]] == payloads

    live = tmp_path / "live.ftr"
    live.write_bytes(b"")
    reader = SmallReader(live)
    got = []
    with open(live, "ab") as out:
        pos = 0
        while pos < len(data):
            step = rng.choice([13, 500, 4_000, 70_000, 300_000])
            out.write(data[pos : pos + step])
            out.flush()
            pos += step
            got += reader.poll()
            got += reader.poll()  # (nothing new: nothing again)
    assert reader.ended and reader.damage is None and reader.pending_bytes == 0
    assert [(c.kind, c.offset, bytes(c.payload)) for c in got] == want


def test_a_chunk_is_read_again_at_its_offset_checked_and_decompressed(tmp_path):
    """`chunk_at(offset)` gives back the chunk a poll handed out there, payload decompressed,
    through the open file, after the reader is closed (the file opened anew) and from a
    session in memory; None at an offset where no whole, checked chunk starts."""
    rng = random.Random(5)
    path = tmp_path / "s.ftr"
    w = SessionWriter(path, {"pid": 1}, 0)
    w.write_batch(_batch(1, 3000, rng))
    w.finish({"reason": "stopped"})
    reader = ChunkReader(path)
    chunks = reader.poll()
    assert any(c.kind == F.CALL for c in chunks)
    memory = ChunkReader.from_bytes(path.read_bytes())
    for again in (reader.chunk_at, memory.chunk_at):
        assert [(c.kind, c.payload, c.offset) for c in map(again, (c.offset for c in chunks))] == [
            (c.kind, c.payload, c.offset) for c in chunks]
    reader.close()
    call = next(c for c in chunks if c.kind == F.CALL)
    assert reader.chunk_at(call.offset).payload == call.payload
    data = bytearray(path.read_bytes())
    data[call.offset + F.CHUNK_HEADER_SIZE + 5] ^= 0xFF  # (its CRC no longer holds)
    assert ChunkReader.from_bytes(bytes(data)).chunk_at(call.offset) is None
    assert reader.chunk_at(call.offset + 1) is None and reader.chunk_at(len(data)) is None
    path.unlink()
    assert reader.chunk_at(call.offset) is None
