"""Varint columns (FORMAT 1.2, encodings 2-4; 1.3, encodings 5-12; 1.8, encoding 13): the
Python encoder, both decoders (C and pure Python) and decode_columns agree on every value, and a
damaged body is a FormatError."""

from __future__ import annotations

import random
import zlib

import pytest

from flowtrace.ftr import format as F

EXTREMES = [0, 1, -1, 63, 64, -64, -65, 127, 128, (1 << 31) - 1, -(1 << 31), (1 << 63) - 1, -(1 << 63)]


def _decoders():
    yield "python", lambda body, rows, enc, base=0: F._py_decode_varints(bytes(body), rows, enc, base)
    if F._c_decode_varints is not None:
        yield "c", F._c_decode_varints


def _as_ints(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 8], "little", signed=True) for i in range(0, len(data), 8)]


@pytest.mark.parametrize("name,decode", list(_decoders()))
def test_round_trip_every_encoding(name, decode) -> None:
    rng = random.Random(7)
    steps = [rng.randint(-300, 300) for _ in range(500)]
    walk = [sum(steps[: i + 1]) + 10**12 for i in range(len(steps))]  # times-like
    ids = [rng.randint(0, 1 << 32 - 1) for _ in range(300)]
    for values in (walk, ids, EXTREMES, [], [5]):
        for enc in (F.ENC_VARINT_DELTA, F.ENC_VARINT):
            body = F.encode_varints(values, enc)
            assert _as_ints(decode(body, len(values), enc)) == values, (name, enc)
    body = F.encode_varints([42], F.ENC_CONST)
    assert _as_ints(decode(body, 7, F.ENC_CONST)) == [42] * 7
    assert decode(body, 0, F.ENC_CONST) == b""


def test_steps_and_small_ids_cost_one_or_two_bytes() -> None:
    assert len(F.encode_varints([1000 + i for i in range(100)], F.ENC_VARINT_DELTA)) == 2 + 99
    assert len(F.encode_varints(list(range(100)), F.ENC_VARINT)) == 100
    assert len(F.encode_varints([5] * 1000, F.ENC_CONST)) == 1


@pytest.mark.parametrize("name,decode", list(_decoders()))
def test_a_damaged_body_is_refused(name, decode) -> None:
    body = F.encode_varints([1, 300, 70000], F.ENC_VARINT)
    for bad, rows in ((body[:-1], 3), (body + b"\x01", 3), (body, 4), (b"\xff" * 11, 1), (b"", 1)):
        with pytest.raises((F.FormatError, ValueError)):
            decode(bad, rows, F.ENC_VARINT)
        with pytest.raises(F.FormatError):
            F.decode_varints(bad, rows, F.ENC_VARINT)


def test_decode_columns_mixes_fixed_and_varint_columns() -> None:
    t = [10**9 + 37 * i for i in range(50)]
    payload = F.encode_columns(7, 50, [
        ("par", "I", F.ENC_VARINT_DELTA, [max(0, i - 1) for i in range(50)]),
        ("fn", "B", F.ENC_RAW, [3] * 50),
        ("thr", "I", F.ENC_CONST, [1] * 50),
        ("t0", "q", F.ENC_VARINT_DELTA, t),
        ("args", "I", F.ENC_VARINT, list(range(50))),
    ])
    cols = F.decode_columns(F.CALL, payload)
    assert (cols.base, cols.rows) == (7, 50)
    assert cols.get("par") == [max(0, i - 1) for i in range(50)]
    assert cols.get("fn") == [3] * 50 and cols.get("thr") == [1] * 50
    assert cols.get("t0") == t and cols.get("args") == list(range(50))
    assert cols.get("task") == [0] * 50  # left out: the default
    cut = payload[:-3]
    with pytest.raises(F.FormatError, match="cut short"):
        F.decode_columns(F.CALL, cut)


def test_an_unknown_encoding_is_refused_not_guessed() -> None:
    payload = bytearray(F.encode_columns(1, 2, [("par", "I", F.ENC_RAW, [0, 1])]))
    payload[F.COLUMNS_HEADER.size + 5] = 15  # the descriptor's encoding byte
    with pytest.raises(F.FormatError, match="unknown encoding 15"):
        F.decode_columns(F.CALL, bytes(payload))


# --- 1.3: parent codes, sparse, bit-packed and Golomb-coded columns -----------------------
NEW_VALUE_ENCODINGS = (F.ENC_SPARSE, F.ENC_SPARSE_DELTA, F.ENC_BITS, F.ENC_GOLOMB, F.ENC_GOLOMB_DELTA,
                       F.ENC_GOLOMB_RISE)


def _tree(rng: random.Random, base: int, rows: int, switch: float = 0.05) -> list[int]:
    """Parents of calls base.. as a program makes them: mostly down and back up one stack,
    sometimes another thread's stack (a parent from anywhere before)."""
    parents, stack = [], [rng.randint(0, base - 1)]
    for i in range(rows):
        while len(stack) > 1 and rng.random() < 0.4:
            stack.pop()
        if rng.random() < switch:
            stack = [rng.randint(0, base + i - 1)]
        parents.append(stack[-1])
        stack.append(base + i)
    return parents


@pytest.mark.parametrize("name,decode", list(_decoders()))
def test_round_trip_every_13_encoding(name, decode) -> None:
    rng = random.Random(11)
    times = [10**12 + sum(rng.randint(0, 5000) for _ in range(3)) * i for i in range(400)]
    sparse = [rng.choice([0, 0, 0, rng.randint(1, 10**6)]) for _ in range(333)]
    small = [rng.randint(1, 6) for _ in range(257)]
    for values in (times, sparse, small, EXTREMES, [], [5], [0] * 9):
        for enc in NEW_VALUE_ENCODINGS:
            body = F.encode_varints(values, enc)
            assert _as_ints(decode(body, len(values), enc)) == values, (name, enc, values[:5])
    for base, rows, switch in ((1, 500, 0.0), (10**6, 700, 0.05), (5, 300, 0.5), (3, 0, 0.0)):
        parents = _tree(rng, base, rows, switch)
        for enc in (F.ENC_PARENT, F.ENC_GOLOMB_PARENT):
            body = F.encode_varints(parents, enc, base)
            assert _as_ints(decode(body, rows, enc, base)) == parents, (name, enc, base)


@pytest.mark.parametrize("name,decode", list(_decoders()))
def test_golomb_codes_of_every_length_in_one_stream(name, decode) -> None:
    """Values of 0 to 63 bits mixed in one stream, so that codes start at every bit position and
    the C decoder's one-window road (codes of <= 57 bits) and its long road (longer codes, the
    stream's last bytes) take turns."""
    rng = random.Random(5)
    mixed = [rng.getrandbits(rng.randint(0, 63)) for _ in range(3000)]
    small_then_huge = [rng.getrandbits(63) if i % 50 == 7 else rng.randint(0, 8) for i in range(3000)]
    for values in (mixed, small_then_huge):
        body = F.encode_varints(values, F.ENC_GOLOMB)
        assert _as_ints(decode(body, len(values), F.ENC_GOLOMB)) == values
        with pytest.raises((F.FormatError, ValueError)):
            decode(body[:-1], len(values), F.ENC_GOLOMB)


def test_parents_cost_a_few_bits_where_steps_cost_bytes() -> None:
    """A method calling two helpers in a loop (the parent column alternates between the loop's
    call and the previous call): a byte a row as steps, under half a byte as parent codes;
    times rising by 1-3 us: 2 bytes a row as varint steps, under 1.7 as Golomb codes."""
    parents, n = [], 1
    for _ in range(500):  # loop (id 1) -> method -> helper; method -> helper2
        parents += [1, n + 1, n + 1]
        n += 3
    base = 2
    assert len(F.encode_varints(parents, F.ENC_VARINT_DELTA)) >= len(parents)
    assert len(F.encode_varints(parents, F.ENC_GOLOMB_PARENT, base)) < 0.5 * len(parents)
    rng = random.Random(2)
    t, times = 0, []
    for _ in range(1000):
        t += rng.randint(1000, 3000)
        times.append(t)
    assert len(F.encode_varints(times, F.ENC_VARINT_DELTA)) == 2 * 1000
    assert len(F.encode_varints(times, F.ENC_GOLOMB_RISE)) < 1.7 * 1000
    assert len(F.encode_varints([0] * 999 + [7], F.ENC_SPARSE)) == 125 + 2


@pytest.mark.parametrize("name,decode", list(_decoders()))
def test_a_damaged_13_body_is_refused(name, decode) -> None:
    golomb = F.encode_varints([1, 300, 70000], F.ENC_GOLOMB)
    bits = F.encode_varints([1, 3, 7], F.ENC_BITS)
    sparse = F.encode_varints([0, 9, 0, 12], F.ENC_SPARSE)
    cases = [
        (golomb[:-1], 3, F.ENC_GOLOMB, 0), (golomb + b"\x00", 3, F.ENC_GOLOMB, 0),
        (golomb, 4, F.ENC_GOLOMB, 0), (b"\x40\x80", 1, F.ENC_GOLOMB, 0),  # order 64
        (b"\x00" + b"\x00" * 10 + b"\x80", 1, F.ENC_GOLOMB, 0),  # 88 zeros: longer than 64 bits
        (bits[:-1], 3, F.ENC_BITS, 0), (bits + b"\x00", 3, F.ENC_BITS, 0),
        (b"\x00\x41" + b"\x00" * 9, 1, F.ENC_BITS, 0),  # width 65
        (sparse[:-1], 4, F.ENC_SPARSE, 0), (sparse[:1], 4, F.ENC_SPARSE, 0), (sparse, 12, F.ENC_SPARSE, 0),
        (bytes([4]), 1, F.ENC_PARENT, 10),  # two steps up from the previous call: not in this chunk
        (bytes([0, 2 * 40]), 2, F.ENC_PARENT, 10),  # 40 steps up from row 0
        (bytes([3, 2]), 2, F.ENC_PARENT, 10),  # row 0's parent is itself, then a walk through it
    ]
    for bad, rows, enc, base in cases:
        with pytest.raises((F.FormatError, ValueError)):
            decode(bad, rows, enc, base)
        with pytest.raises(F.FormatError):
            F.decode_varints(bad, rows, enc, base)


def test_decode_columns_gives_parent_codes_their_base() -> None:
    parents = _tree(random.Random(5), 1000, 200)
    payload = F.encode_columns(1000, 200, [("par", "I", F.ENC_GOLOMB_PARENT, parents),
                                           ("t0", "q", F.ENC_GOLOMB_RISE, list(range(0, 2000, 10)))])
    cols = F.decode_columns(F.CALL, payload)
    assert cols.get("par") == parents and cols.get("t0") == list(range(0, 2000, 10))


@pytest.mark.parametrize("name,decode", list(_decoders()))
def test_bit_packed_rows_of_every_width(name, decode) -> None:
    """ENC_BITS at widths 0..64 over row counts that end a stream at every byte offset: the C
    decoder reads rows of <= 56 bits with one 8-byte load while 8 bytes remain, the others
    byte by byte."""
    rng = random.Random(3)
    for width in range(65):
        for rows in (2, 7, 8, 9, 70):
            values = [rng.getrandbits(width) for _ in range(rows)]
            values[-1] |= (1 << width) >> 1  # the widest row takes `width` bits ...
            values[0] = 0  # ... above a minimum of 0
            values = [v - (1 << 64) if v >> 63 else v for v in values]  # as i64 (width 64)
            body = F.encode_varints(values, F.ENC_BITS)
            assert width > 62 or body[1] == width  # (wider: the minimum is negative, longer)
            assert _as_ints(decode(body, rows, F.ENC_BITS)) == values, (name, width, rows)


# --- 1.8: deflated columns ------------------------------------------------------------------
def _mark_payload(rows: int = 3000) -> tuple[bytes, dict[str, list[int]]]:
    """A MARK payload as the C drain codes one: a walk repeated three times (ids and kinds that
    repeat, times that do not), in the encodings the drain picks for them."""
    rng = random.Random(3)
    walk = [(rng.choice([-1, 1, 1, 2]), rng.choice([1, 2, 6])) for _ in range(rows // 3)]
    call, kind, othr, t, run = [], [], [], [], []
    at, now = 500, 10**9
    for rep in range(3):
        for step, k in walk:
            at += step
            now += rng.randint(30, 3000)
            call.append(at + 200 * rep); kind.append(k); othr.append(at - 1 if k != 1 else 0)
            t.append(now); run.append(rng.randint(100, 9000) if k == 6 else 0)
    cols = {"call": call, "t": t, "kind": kind, "othr": othr, "run": run}
    encs = {"call": F.ENC_GOLOMB_DELTA, "t": F.ENC_GOLOMB_RISE, "kind": F.ENC_BITS, "othr": F.ENC_SPARSE_DELTA,
            "run": F.ENC_SPARSE}
    types = {"call": "I", "t": "q", "kind": "B", "othr": "I", "run": "q"}
    payload = F.encode_columns(0, len(call), [(n, types[n], encs[n], v) for n, v in cols.items()])
    return payload, cols


def _encodings(payload: bytes) -> dict[str, int]:
    _b, _r, ncols, _ = F.COLUMNS_HEADER.unpack_from(payload)
    descs = [F.COLUMN_DESC.unpack_from(payload, F.COLUMNS_HEADER.size + 8 * i) for i in range(ncols)]
    return {name.decode().strip(): enc for name, _tc, enc, _ in descs}


def test_deflated_columns_read_as_the_columns_they_hold() -> None:
    payload, cols = _mark_payload()
    packed = F.deflate_columns(payload)
    assert len(packed) < len(payload)
    # the ids, kinds and resumers (repeating) are deflated; times kept as coded
    assert _encodings(packed) == {"call": F.ENC_DEFLATE, "t": F.ENC_GOLOMB_RISE, "kind": F.ENC_DEFLATE,
                                  "othr": F.ENC_DEFLATE, "run": F.ENC_SPARSE}
    got = F.decode_columns(F.MARK, packed)
    for name, values in cols.items():
        assert got.get(name) == values, name
    assert F.deflate_columns(b"\0" * 40) == b"\0" * 40  # not columns: as it is


def test_a_column_zlib_does_not_shrink_is_kept_as_it_is() -> None:
    rng = random.Random(1)
    ids = [rng.getrandbits(32) for _ in range(200)]
    payload = F.encode_columns(0, 200, [("call", "I", F.ENC_BITS, ids), ("kind", "B", F.ENC_CONST, [1] * 200)])
    assert F.deflate_columns(payload) == payload  # random ids: no gain; a constant: 1 byte


def test_a_damaged_deflated_column_is_refused() -> None:
    body = F.encode_varints(list(range(100)), F.ENC_GOLOMB)
    good = F.deflate_column(F.ENC_GOLOMB, body)
    assert _as_ints(F.decode_varints(good, 100, F.ENC_DEFLATE)) == list(range(100))
    huge = bytes([F.ENC_VARINT]) + zlib.compress(b"\0" * (F.body_bound(100) + 1))
    cases = [
        good[:-1], good + b"\0", good[:1], b"",
        bytes([F.ENC_DEFLATE]) + good[1:],  # a deflated column holds 2-12 only
        bytes([F.ENC_RAW]) + good[1:], bytes([0xFF]) + good[1:],
        good[:5] + bytes([good[5] ^ 0xFF]) + good[6:],  # a corrupt stream
        huge,  # inflates to more than 100 rows can take
    ]
    for bad in cases:
        with pytest.raises(F.FormatError):
            F.decode_varints(bad, 100, F.ENC_DEFLATE)
    with pytest.raises(F.FormatError):  # the right body, for more rows than it holds
        F.decode_varints(good, 101, F.ENC_DEFLATE)


# --- 1.9: shared columns ---------------------------------------------------------------------
def test_a_shared_column_holds_the_rows_of_an_earlier_one() -> None:
    rng = random.Random(9)
    n = [rng.choice([0, 0, 1, 4]) for _ in range(500)]
    run = [rng.randint(0, 5000) if k else 0 for k in n]
    run[n.index(1)] = 0  # a fold row may hold 0 itself
    payload = F.encode_columns(0, 500, [("kind", "B", F.ENC_BITS, [6 if k else 1 for k in n]),
                                        ("n", "I", F.ENC_SPARSE, n), ("run", "q", F.ENC_SHARED, (1, run)),
                                        ("span", "q", F.ENC_SHARED, (0, [r + 7 if k else 0 for r, k in zip(run, n)]))])
    cols = F.decode_columns(F.MARK, payload)
    assert cols.get("n") == n and cols.get("run") == run
    assert cols.get("span") == [r + 7 if k else 0 for r, k in zip(run, n)]
    # no bitmap of its own: smaller than the same values sparse
    assert len(F.shared_body(1, run, n)) < len(F.encode_varints(run, F.ENC_SPARSE))
    assert _encodings(F.deflate_columns(payload))["run"] == F.ENC_SHARED


def test_a_damaged_shared_column_is_refused() -> None:
    n = [0, 2, 0, 1]
    good = F.encode_columns(0, 4, [("n", "I", F.ENC_VARINT, n), ("run", "q", F.ENC_SHARED, (0, [0, 5, 0, 6]))])
    assert F.decode_columns(F.MARK, good).get("run") == [0, 5, 0, 6]
    with pytest.raises(ValueError):
        F.shared_body(0, [1, 5, 0, 6], n)  # a value where n is 0
    body = F.shared_body(0, [0, 5, 0, 6], n)
    head = good[: F.COLUMNS_HEADER.size + 2 * F.COLUMN_DESC.size]
    n_col = good[len(head) : len(good) - 4 - len(body)]
    for bad in (bytes([1]) + body[1:],  # itself, not an earlier column
                bytes([5]) + body[1:], b"",
                bytes([0]) + F.encode_varints([5], F.ENC_GOLOMB),  # one value for two rows
                bytes([0]) + F.encode_varints([5] * 40, F.ENC_GOLOMB)):
        payload = head + n_col + F.VARINT_BODY.pack(len(bad)) + bad
        with pytest.raises(F.FormatError):
            F.decode_columns(F.MARK, payload)


def test_the_rows_bitmap_of_any_values() -> None:
    rng = random.Random(4)
    for rows in (0, 1, 7, 8, 9, 63, 64, 65, 1001):
        values = [rng.choice([0, 0, 1, -1, 1 << 40, (1 << 63) - 1, -(1 << 63), -(1 << 56)]) for _ in range(rows)]
        data = b"".join(v.to_bytes(8, "little", signed=True) for v in values)
        want = bytearray((rows + 7) // 8)
        for i, v in enumerate(values):
            if v:
                want[i >> 3] |= 1 << (i & 7)
        assert F.rows_bitmap(data, rows) == bytes(want), rows


def test_a_shared_column_on_fixed_width_columns() -> None:
    n = [0, 3, 0, 0, 1, 2, 0, 9, 0]
    steps = [n[0]] + [b - a for a, b in zip(n, n[1:])]
    run = [v * 11 for v in n]
    payload = F.encode_columns(0, 9, [("n", "I", F.ENC_RAW, n), ("m", "q", F.ENC_DELTA, steps),
                                      ("run", "q", F.ENC_SHARED, (0, run)), ("span", "q", F.ENC_SHARED, (1, run))])
    cols = F.decode_columns(F.MARK, payload)
    assert cols.get("m") == n and cols.get("run") == run and cols.get("span") == run


def test_shared_columns_without_the_c_decoder(monkeypatch) -> None:
    monkeypatch.setattr(F, "_c_decode_varints", None)
    monkeypatch.setattr(F, "_c_decode_shared", None)
    test_a_shared_column_holds_the_rows_of_an_earlier_one()
    test_a_shared_column_on_fixed_width_columns()
    test_a_damaged_shared_column_is_refused()


def _shared_decoders():
    def python(body, rows, earlier):  # decode_shared's own path without the extension
        data = b"".join(v.to_bytes(8, "little", signed=True) for v in earlier)
        return F._py_decode_varints(F.rows_bitmap(data, rows) + bytes(body[1:]), rows, F.ENC_SPARSE)

    yield "python", python
    if F._c_decode_shared is not None:
        yield "c", lambda body, rows, earlier: F._c_decode_shared(
            body[1:], rows, b"".join(v.to_bytes(8, "little", signed=True) for v in earlier))


@pytest.mark.parametrize("name,decode", list(_shared_decoders()))
def test_shared_columns_read_alike_by_both_decoders(name, decode) -> None:
    """The C decode_shared (1.9's readers' fast path) and the pure-Python path: the same rows
    for columns of every length, values of every code length (Golomb orders 0-63), earlier
    columns holding any value not 0 (negative, one byte set, the top byte only); both refuse a
    stream with a code too few or too many, or cut short."""
    rng = random.Random(11)
    for rows in (0, 1, 7, 8, 9, 63, 64, 65, 200, 1001):
        for top in (1, 300, 1 << 20, 1 << 40, (1 << 64) - 1):
            earlier = [rng.choice([0, 0, 1, -1, 255, 1 << 56, -(1 << 63), 7]) for _ in range(rows)]
            values = [rng.randint(0, top) if e else 0 for e in earlier]
            body = F.shared_body(0, values, earlier)
            got = decode(body, rows, earlier)
            assert [int.from_bytes(got[i:i + 8], "little") for i in range(0, len(got), 8)] == values, (rows, top)
            if not any(earlier):
                continue
            fewer = bytes([0]) + F.encode_varints([v for v, e in zip(values, earlier) if e][:-1], F.ENC_GOLOMB)
            more = bytes([0]) + F.encode_varints([v for v, e in zip(values, earlier) if e] + [1] * 9, F.ENC_GOLOMB)
            for bad in (fewer, more, body[:-1]):
                if bad == body:
                    continue
                with pytest.raises((ValueError, F.FormatError)):
                    decode(bad, rows, earlier)
