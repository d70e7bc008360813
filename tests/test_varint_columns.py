"""Varint columns (FORMAT 1.2, encodings 2-4): the Python encoder, both decoders (C and pure
Python) and decode_columns agree on every value, and a damaged body is a FormatError."""

from __future__ import annotations

import random

import pytest

from flowtrace.ftr import format as F

EXTREMES = [0, 1, -1, 63, 64, -64, -65, 127, 128, (1 << 31) - 1, -(1 << 31), (1 << 63) - 1, -(1 << 63)]


def _decoders():
    yield "python", lambda body, rows, enc: F._py_decode_varints(bytes(body), rows, enc)
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
    payload[F.COLUMNS_HEADER.size + 5] = 9  # the descriptor's encoding byte
    with pytest.raises(F.FormatError, match="unknown encoding 9"):
        F.decode_columns(F.CALL, bytes(payload))
