"""The native writer thread (flowtrace/_crecorder_src/writer.c): the same bytes as the Python
writer, batches in order, ENDS after every batch, failures reported, nothing in a forked child."""

from __future__ import annotations

import os
import random
import zlib
from array import array

import pytest

from flowtrace.ftr import format as F
from flowtrace.ftr import writer as W
from flowtrace.ftr.batch import Batch
from flowtrace.ftr.reader import load

pytestmark = pytest.mark.skipif(W.NativeWriter is None, reason="the C extension (with zlib) is not built")


def _batch(rng: random.Random, first: int, n: int, t: int, sid: int) -> Batch:
    """Calls first..first+n-1, each the child of the previous one; 3 texts with ids sid.."""
    b = Batch(call_first_id=first, strings_first_id=sid, strings=[f"s{first}-{i}" for i in range(3)])
    b.functions = [{"id": first, "qualname": f"f{first}", "module": "m", "file": "m.py", "line": 1}] if first == 1 else []
    b.threads = [{"id": 1, "ident": 1, "native_id": 1, "name": "MainThread"}] if first == 1 else []
    for i in range(n):
        b.call_parent.append(first + i - 1 if i else 0)
        b.call_func.append(1)
        b.call_thread.append(1)
        b.call_t0.append(t + 10 * i)
        b.call_args.append(sid + rng.randrange(3) if rng.random() < 0.5 else 0)
        b.call_task.append(0)
        b.call_flag.append(0)
    for i in reversed(range(n)):
        b.exit_call.append(first + i)
        b.exit_t1.append(t + 10 * n + rng.randrange(5) + i)
        b.exit_how.append(F.END_RETURN)
        b.exit_val.append(0)
    b.exit_t1 = array("q", sorted(b.exit_t1))
    return b


def _write(path: str, native: bool, batches: list[Batch]) -> bytes:
    writer = W.SessionWriter.__new__(W.SessionWriter)
    saved = W.NativeWriter
    try:
        if not native:
            W.NativeWriter = None
        writer.__init__(path, {"argv": ["x"]}, origin_ns=1000)
    finally:
        W.NativeWriter = saved
    assert (writer._native is not None) == native
    for b in batches:
        writer.write_batch(b)
    writer.finish({"t_end_abs": 10**9, "reason": "exit"})
    with open(path, "rb") as fh:
        return fh.read()


def test_same_bytes_as_the_python_writer(tmp_path) -> None:
    rng = random.Random(7)
    batches, first = [], 1
    for k in range(12):
        n = rng.choice([1, 5, 300, 5000])
        batches.append(_batch(rng, first, n, 2000 + 10**6 * k, 1 + 3 * k))
        first += n
    py = _write(str(tmp_path / "py.ftr"), False, batches)
    nat = _write(str(tmp_path / "nat.ftr"), True, batches)
    assert nat == py
    trace = load(str(tmp_path / "nat.ftr"))
    assert len(trace) == first - 1 and trace.finished


def test_chunk_crcs_equal_zlibs_for_every_payload_length(tmp_path) -> None:
    """The native writer's CRC (crc.c: folded 16 bytes at a time where the CPU can, 256 where it
    has VPCLMULQDQ) is zlib's, for payloads of every length around the 16-byte folds, lengths
    around the 256- and 64-byte folds, and a few large ones."""
    rng = random.Random(5)
    lengths = list(range(0, 300)) + list(range(300, 1100, 13)) + [1 << 12, (1 << 16) + 9, 777_777]
    payloads = [rng.randbytes(n) for n in lengths]
    fd = os.open(str(tmp_path / "c.bin"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        native = W.NativeWriter(fd)
        native.put([(F.STRS, p, False) for p in payloads])
        native.close()
    finally:
        os.close(fd)
    data = (tmp_path / "c.bin").read_bytes()
    pos = 0
    for payload in payloads:
        head = data[pos : pos + 12]
        assert head[:4] == F.STRS and int.from_bytes(head[8:12], "little") == len(payload)
        assert data[pos + 12 : pos + 12 + len(payload)] == payload
        crc = int.from_bytes(data[pos + 12 + len(payload) : pos + 16 + len(payload)], "little")
        assert crc == zlib.crc32(payload, zlib.crc32(head))
        pos += 16 + len(payload)
    assert pos == len(data)


def test_one_put_of_more_chunks_than_one_writev_takes(tmp_path) -> None:
    """A job's chunks go out as header, payload and CRC pieces of writev, IOV_MAX (1024) at a
    time: 700 chunks in one put -- compressed or stored, some empty -- are framed as
    format.frame_chunk frames them, in order."""
    rng = random.Random(11)
    parts = []
    for i in range(700):
        n = rng.choice([0, 1, 63, 65, 200, 5000])
        payload = bytes(n) if i % 3 == 0 else rng.randbytes(n)  # zeros compress, random bytes do not
        parts.append((F.STRS if i % 2 else F.CALL, payload, i % 4 != 1))
    fd = os.open(str(tmp_path / "v.bin"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        native = W.NativeWriter(fd)
        native.put(parts)
        native.close()
    finally:
        os.close(fd)
    assert (tmp_path / "v.bin").read_bytes() == b"".join(F.frame_chunk(k, p, compress=c) for k, p, c in parts)


def test_sync_puts_every_batch_in_the_file(tmp_path) -> None:
    path = str(tmp_path / "s.ftr")
    writer = W.SessionWriter(path, {}, origin_ns=0)
    assert writer._native is not None
    rng = random.Random(3)
    first = 1
    for k in range(20):
        writer.write_batch(_batch(rng, first, 1000, 10**6 * (k + 1), 1 + 3 * k))
        first += 1000
        writer.sync()
        assert len(load(path)) == first - 1  # in the file on return
    writer.abandon()
    assert not load(path).finished


def test_a_failed_write_is_reported(tmp_path) -> None:
    r, w = os.pipe()
    os.close(r)  # writes get EPIPE (Python ignores SIGPIPE)
    native = W.NativeWriter(w)
    try:
        native.put([(F.CALL, b"x" * 100, True)])
        with pytest.raises(OSError):
            native.flush()
        with pytest.raises(OSError):
            native.put([(F.CALL, b"y" * 100, False)])
        with pytest.raises(OSError):
            native.close()
    finally:
        os.close(w)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_writes_nothing_and_does_not_hang(tmp_path) -> None:
    path = str(tmp_path / "f.ftr")
    writer = W.SessionWriter(path, {}, origin_ns=0)
    writer.write_batch(_batch(random.Random(1), 1, 10, 5000, 1))
    writer.sync()
    size = os.path.getsize(path)
    pid = os.fork()
    if pid == 0:  # the parent's session is not the child's to finish
        try:
            writer.write_batch(_batch(random.Random(2), 11, 10, 9000, 4))
            writer._native.flush()
            writer._native.close()
            os._exit(0 if os.path.getsize(path) == size else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.finish({"reason": "exit"})
    assert len(load(path)) == 10


def _chunks(data: bytes) -> list[tuple[bytes, int, bytes]]:
    pos, out = F.FILE_HEADER_SIZE, []
    while pos < len(data):
        kind, flags, n = F.CHUNK_HEADER.unpack_from(data, pos)
        out.append((kind, flags, data[pos + F.CHUNK_HEADER_SIZE : pos + F.CHUNK_HEADER_SIZE + n]))
        pos += F.CHUNK_HEADER_SIZE + n + F.CHUNK_TRAILER_SIZE
    return out


def _mark_columns(rows: int) -> bytes:
    """A MARK payload as the C drain codes one: a walk of ids and kinds repeated (zlib shrinks
    them), times that do not repeat."""
    rng = random.Random(rows)
    walk = [(rng.choice([-1, 1, 1, 2]), rng.choice([1, 2, 6])) for _ in range(rows // 4)]
    call, kind, t, now, at = [], [], [], 10**6, 100
    for _rep in range(4):
        for step, k in walk:
            at += step
            now += rng.randint(30, 3000)
            call.append(at); kind.append(k); t.append(now)
    return F.encode_columns(0, len(call), [("call", "I", F.ENC_GOLOMB_DELTA, call), ("t", "q", F.ENC_GOLOMB_RISE, t),
                                           ("kind", "B", F.ENC_BITS, kind)])


def _call_exit_columns(calls: int) -> tuple[bytes, bytes]:
    """CALL and EXIT payloads as the C drain codes them: a tree walked over and over (its
    parents, functions and exit order repeat), times that do not repeat."""
    rng = random.Random(calls)
    depth = [rng.randint(0, 3) for _ in range(calls // 4)] * 4
    par, fn, t0, stack, ends, now = [], [], [], [], [], 10**6
    for i, d in enumerate(depth, 1):
        while len(stack) > d:
            ends.append(stack.pop())
        par.append(stack[-1] if stack else 0)
        fn.append(len(stack) + 1)
        now += rng.randint(30, 3000)
        t0.append(now)
        stack.append(i)
    ends += reversed(stack)
    t1 = [10**7 + 40 * i + rng.randint(0, 30) for i in range(calls)]
    call = F.encode_columns(1, calls, [("par", "I", F.ENC_GOLOMB_PARENT, par), ("fn", "B", F.ENC_GOLOMB, fn),
                                       ("t0", "q", F.ENC_GOLOMB_RISE, t0), ("args", "I", F.ENC_GOLOMB, fn)])
    exit_ = F.encode_columns(0, calls, [("call", "I", F.ENC_GOLOMB_DELTA, ends), ("t1", "q", F.ENC_GOLOMB_RISE, t1)])
    return call, exit_


@pytest.mark.parametrize("native", [True, False])
def test_mark_payloads_are_deflated_only_when_big_per_call_texts_never(tmp_path, native) -> None:
    """A C-encoded batch's MARK payload has its columns but the times deflated (1.8:
    format.deflate_columns, the same bytes from the native writer's C twin) only above
    ZLIB_MIN_BYTES_PER_CALL bytes per call of its batch, and while the batch's STRS payload is
    at most ZLIB_MAX_STRS_PER_MARK times the MARK payload; so have its CALL and EXIT payloads
    then (their ids; times and argument ids kept coded); else all three are stored as they are.
    Its STRS payload never is (a batch of the Python recorder, without payloads, is framed as
    before: test_same_bytes_as_the_python_writer)."""
    per_call, per_mark = W.ZLIB_MIN_BYTES_PER_CALL, W.ZLIB_MAX_STRS_PER_MARK
    calls = 1000
    small = _mark_columns(600)
    big = _mark_columns(4000)
    call, exit_ = _call_exit_columns(calls)
    assert len(small) <= per_call * calls < len(big)
    batches = []
    # (few marks; many marks beside texts at the bound; many marks beside texts one byte over it)
    for mark, strs in ((small, bytes(per_call * calls + 1)), (big, bytes(per_mark * len(big))),
                       (big, bytes(per_mark * len(big) + 1))):
        b = Batch(strings_first_id=1, strings=["x"])
        b.strings_payload = strs
        b.payloads = [(F.CALL, call), (F.EXIT, exit_), (F.MARK, mark)]
        b.payload_calls = calls
        batches.append(b)
    chunks = [c for c in _chunks(_write(str(tmp_path / "s.ftr"), native, batches))
              if c[0] in (F.CALL, F.EXIT, F.MARK, F.STRS)]
    assert [(kind, flags) for kind, flags, _ in chunks] == [(F.STRS, 0), (F.CALL, 0), (F.EXIT, 0), (F.MARK, 0)] * 3
    assert [c[2] for c in chunks[1:4]] == [call, exit_, small]
    assert [c[2] for c in chunks[9:12]] == [call, exit_, big]
    for got, payload, deflated in ((chunks[5][2], call, ["par", "fn"]), (chunks[6][2], exit_, ["call"]),
                                   (chunks[7][2], big, ["call", "kind"])):
        assert got == F.deflate_columns(payload) and len(got) < len(payload)
        assert _encodings(got) == {name: F.ENC_DEFLATE if name in deflated else enc
                                   for name, enc in _encodings(payload).items()}
        kind = F.CALL if payload is call else F.EXIT if payload is exit_ else F.MARK
        got_cols, want = F.decode_columns(kind, got), F.decode_columns(kind, payload)
        assert got_cols.base == want.base and all(got_cols.get(n) == want.get(n) for n in _encodings(payload))


def _encodings(payload: bytes) -> dict[str, int]:
    """Each column's name and encoding, from a columns payload's descriptors."""
    ncols = F.COLUMNS_HEADER.unpack_from(payload)[2]
    descs = (F.COLUMN_DESC.unpack_from(payload, F.COLUMNS_HEADER.size + 8 * k) for k in range(ncols))
    return {name.decode().strip(): enc for name, _tc, enc, _r in descs}


def test_the_native_writer_deflates_columns_as_format_does(tmp_path) -> None:
    """writer.c's deflate_columns and format.deflate_columns: the same bytes, for payloads of
    every size around the 64-byte and not-smaller edges, and for payloads that are not columns."""
    payloads = [_mark_columns(rows) for rows in (4, 40, 80, 120, 400, 3000)]
    payloads += [b"", bytes(15), bytes(16), bytes(40), _mark_columns(400)[:-1], _mark_columns(400) + b"\0"]
    path = str(tmp_path / "d.ftr")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    nw = W.NativeWriter(fd)
    nw.put([(F.MARK, p, F.DEFLATE_COLUMNS) for p in payloads])
    nw.close()
    os.close(fd)
    with open(path, "rb") as fh:
        got = [payload for _kind, _flags, payload in _chunks(b"\0" * F.FILE_HEADER_SIZE + fh.read())]
    assert got == [F.deflate_columns(p) for p in payloads]
    assert sum(g != p for g, p in zip(got, payloads)) == 2  # (3000 rows and 400: deflated)
