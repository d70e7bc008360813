"""The C drain's column coders on columns of every packed width: calls to 2..200 functions in a
random order (the `fn` column) that return or raise at random (`how`), in batches of row counts
around multiples of 8 (the bit packer's 8-row steps and their tails). Each payload is exactly
format.encode_columns' bytes for its encodings, and decodes to the calls made."""

from __future__ import annotations

import random

import pytest

from flowtrace.ftr import format as F
from flowtrace.recorder import available_recorders
from flowtrace.recorder.base import RecorderConfig

pytestmark = pytest.mark.skipif("c" not in available_recorders(), reason="the C recorder is not built")


def _functions(n: int) -> list:
    ns: dict = {}
    src = "\n".join(f"def f{i}(r):\n    if r:\n        raise ValueError\n    return {i}" for i in range(n))
    exec(compile(src, __file__, "exec"), ns)  # (a file's name: the recorder's filter leaves "<string>" out)
    return [ns[f"f{i}"] for i in range(n)]


def _descriptors(payload: bytes) -> dict[str, tuple[str, int]]:
    """Each column's (typecode, encoding), from the payload's column descriptors."""
    cols = F.decode_columns(F.CALL, payload)  # (the header and descriptors: the same for every kind)
    view, pos, out = memoryview(payload), F.COLUMNS_HEADER.size, {}
    for name in cols.columns:
        _raw, tc, enc, _r = F.COLUMN_DESC.unpack_from(view, pos)
        pos += F.COLUMN_DESC.size
        out[name] = (tc.decode(), enc)
    return out


def _same_as_encode_columns(kind: bytes, payload: bytes) -> None:
    cols = F.decode_columns(kind, payload)
    desc = _descriptors(payload)
    spec = [(name, *desc[name], col.values()) for name, col in cols.columns.items()]
    names = list(cols.columns)
    for i, (name, tc, enc, values) in enumerate(spec):
        if enc == F.ENC_SHARED:  # (a MARK chunk's run and span: on the rows of n)
            on = names.index("n")
            spec[i] = (name, tc, enc, (on, values))
    assert F.encode_columns(cols.base, cols.rows, spec) == bytes(payload)


@pytest.mark.parametrize("nfuncs", [2, 3, 5, 9, 17, 33, 65, 129, 200])
def test_packed_columns_of_every_width_decode_to_the_calls(nfuncs: int) -> None:
    from flowtrace.recorder.c import CRecorder

    funcs = _functions(nfuncs)
    rng = random.Random(nfuncs)
    rec = CRecorder(RecorderConfig(args="off"))
    rec.start()
    made: list[list[tuple[str, bool]]] = []
    batches = []
    try:
        for rows in (7, 8, 9, 63, 64, 65, 250, 1001):
            calls = [(rng.randrange(nfuncs), rng.random() < 0.3) for _ in range(rows)]
            for i, raises in calls:
                try:
                    funcs[i](raises)
                except ValueError:
                    pass
            batches.append(rec.drain())
            made.append([(f"f{i}", raises) for i, raises in calls])
    finally:
        rec.stop()
    names: dict[int, str] = {}
    bits_widths = set()
    for batch, calls in zip(batches, made):
        names.update((f["id"], f["qualname"]) for f in batch.functions)
        for kind, payload in batch.payloads:
            _same_as_encode_columns(kind, payload)
            if kind == F.CALL and _descriptors(payload)["fn"][1] == F.ENC_BITS:
                fn = F.decode_columns(kind, payload).columns["fn"].values()
                bits_widths.add((max(fn) - min(fn)).bit_length())
        rows = batch.unpacked()
        got = [(names[fn], how in F.RAISED) for fn, how in zip(rows.call_func, rows.exit_how)]
        assert got == calls
    assert bits_widths, "the fn column was never bit-packed"


@pytest.mark.parametrize("every", [9, 40, 300])
def test_a_u8_column_of_runs_is_encode_columns_bytes(every: int) -> None:
    """`how` in runs of returns between raises a few to hundreds of rows apart (and at random
    places: a run of eight equal rows, put as one joined code, starts anywhere in a block or
    not at all): each EXIT payload is format.encode_columns' bytes, coded by Golomb codes, and
    decodes to the calls."""
    from flowtrace.recorder.c import CRecorder

    (f,) = _functions(1)
    rng = random.Random(every)
    rec = CRecorder(RecorderConfig(args="off"))
    rec.start()
    batches, made = [], []
    try:
        for rows in (64, 1001, 4099):
            calls = [rng.randrange(every) == 0 for _ in range(rows)]
            for raises in calls:
                try:
                    f(raises)
                except ValueError:
                    pass
            batches.append(rec.drain())
            made.append(calls)
    finally:
        rec.stop()
    golomb = 0
    for batch, calls in zip(batches, made):
        for kind, payload in batch.payloads:
            _same_as_encode_columns(kind, payload)
            if kind == F.EXIT:
                golomb += _descriptors(payload)["how"][1] in (F.ENC_GOLOMB_DELTA, F.ENC_GOLOMB)
        assert [how in F.RAISED for how in batch.unpacked().exit_how] == calls
    assert golomb, "how was never Golomb coded"


def _golomb_orders(payload: bytes) -> dict[str, int]:
    """The Golomb order (a Golomb body's first byte) of each Golomb-coded column."""
    view = memoryview(payload)
    _base, _rows, ncols, _ = F.COLUMNS_HEADER.unpack_from(view)
    pos, out = F.COLUMNS_HEADER.size + ncols * F.COLUMN_DESC.size, {}
    for name, (_tc, enc) in _descriptors(payload).items():
        (size,) = F.VARINT_BODY.unpack_from(view, pos)
        pos += F.VARINT_BODY.size
        if enc in (F.ENC_GOLOMB, F.ENC_GOLOMB_DELTA, F.ENC_GOLOMB_RISE):
            out[name] = view[pos]
        pos += size
    return out


def test_u32_codes_of_orders_3_and_up_are_encode_columns_bytes() -> None:
    """`fn` drawn from skewed distributions (a few functions called most): Golomb codes of
    orders 3 and up (put_golomb's rows four at a time, golomb_put4) are format.encode_columns'
    bytes and decode to the calls."""
    from flowtrace.recorder.c import CRecorder

    funcs = _functions(1200)
    orders = set()
    for mean in (8, 20, 60, 250):
        rng = random.Random(mean)
        picks = [min(len(funcs) - 1, int(rng.expovariate(1 / mean))) for _ in range(3001)]
        rec = CRecorder(RecorderConfig(args="off"))
        rec.start()
        try:
            for i in picks:
                funcs[i](False)
            batch = rec.drain()
        finally:
            rec.stop()
        names = {fn["id"]: fn["qualname"] for fn in batch.functions}
        for kind, payload in batch.payloads:
            _same_as_encode_columns(kind, payload)
            if kind == F.CALL and "fn" in _golomb_orders(payload):
                orders.add(_golomb_orders(payload)["fn"])
        assert [names[fn] for fn in batch.unpacked().call_func] == [f"f{i}" for i in picks]
    assert len({k for k in orders if k >= 3}) >= 3, orders


def test_long_batches_and_runs_of_one_step_are_encode_columns_bytes() -> None:
    """A batch longer than format.GOLOMB_SAMPLE_SPAN rows (its times' and parents' Golomb orders
    from the sparser sample) of calls each taking a new tuple (`args`: a new record a call, +1
    a row -- runs put eight rows at once), with a few calls without arguments breaking the
    runs: each payload is exactly format.encode_columns' bytes, and decodes to the calls."""
    from flowtrace.recorder.c import CRecorder

    ns: dict = {}
    exec(compile("def f(t):\n    return 0\n\ndef g():\n    return 0\n", __file__, "exec"), ns)
    f, g = ns["f"], ns["g"]
    rows = 3 * F.GOLOMB_SAMPLE_SPAN + 5
    rng = random.Random(7)
    rec = CRecorder(RecorderConfig())
    rec.start()
    made = []
    try:
        for i in range(rows):
            if rng.random() < 0.02:
                g()
                made.append("g")
            else:
                f((i, i + 1))
                made.append("f")
        batch = rec.drain()
    finally:
        rec.stop()
    names = {fn["id"]: fn["qualname"] for fn in batch.functions}
    encodings = {}
    for kind, payload in batch.payloads:
        _same_as_encode_columns(kind, payload)
        encodings[kind] = {name: enc for name, (_tc, enc) in _descriptors(payload).items()}
    assert encodings[F.CALL]["args"] in (F.ENC_GOLOMB_RISE, F.ENC_GOLOMB_DELTA), encodings
    assert encodings[F.CALL]["t0"] == F.ENC_GOLOMB_RISE and encodings[F.EXIT]["t1"] == F.ENC_GOLOMB_RISE
    got = batch.unpacked()
    assert [names[fn] for fn in got.call_func] == made
    args = [a for a, name in zip(got.call_args, made) if name == "f"]
    assert len(set(args)) == len(args)  # a record of its own for every call


def _walk_tree(depth: int) -> int:
    """Sum a complete binary tree's leaves through recursive generators (`yield from` at every
    level): ~2 MARK rows a call, most of them suspends, resumes and folds."""

    def walk(d: int):
        if d == 0:
            yield 1
            return
        yield from walk(d - 1)
        yield from walk(d - 1)

    return sum(walk(depth)) + sum(walk(depth))


def _marks(batch) -> list[tuple[int, ...]]:
    b = batch.unpacked() if batch.payloads else batch
    n = list(b.mark_n) or [0] * len(b.mark_call)
    return list(zip(b.mark_call, b.mark_kind, b.mark_other, n))


def test_a_mark_chunk_deflated_for_sure_has_its_ids_byte_aligned() -> None:
    """A batch of generators resumed all the time (more MARK rows than calls, its MARK chunk
    over 2 bytes a call: the writer deflates it): its `call`, `kind` and `n` are written as
    varint steps, bit-packed and varints (the drain's forced_body), exactly format.encode_columns'
    bytes, the writer deflates that chunk, and the marks are the Python recorder's; a batch of
    a few marks keeps the measured codings."""
    from flowtrace.ftr.writer import _worth_zlib
    from flowtrace.recorder.c import CRecorder
    from flowtrace.recorder.python import PyRecorder

    got = {}
    for name, cls in (("c", CRecorder), ("py", PyRecorder)):
        rec = cls(RecorderConfig(args="off"))
        rec.start()
        try:
            _walk_tree(7)
            got[name] = rec.drain()
        finally:
            rec.stop()
    batch = got["c"]
    payloads = dict(batch.payloads)
    mark = payloads[F.MARK]
    _same_as_encode_columns(F.MARK, mark)
    encodings = {name: enc for name, (_tc, enc) in _descriptors(mark).items()}
    assert (encodings["call"], encodings["kind"], encodings["n"]) == (F.ENC_VARINT_DELTA, F.ENC_BITS, F.ENC_VARINT)
    for kind, name, enc in ((F.CALL, "par", F.ENC_PARENT), (F.CALL, "fn", F.ENC_VARINT_DELTA),
                            (F.EXIT, "call", F.ENC_VARINT_DELTA)):  # (deflated with the MARK chunk)
        _same_as_encode_columns(kind, payloads[kind])
        assert _descriptors(payloads[kind])[name][1] == enc, (kind, name)
    assert _worth_zlib(F.MARK, mark, batch.payload_calls)
    assert _marks(batch) == _marks(got["py"])
    assert len(_marks(batch)) > batch.payload_calls

    (f0,) = _functions(1)
    rec = CRecorder(RecorderConfig(args="off"))
    rec.start()
    try:
        _walk_tree(3)
        for _ in range(200):
            f0(False)
        sparse = rec.drain()
    finally:
        rec.stop()
    mark = dict(sparse.payloads)[F.MARK]
    _same_as_encode_columns(F.MARK, mark)
    assert _descriptors(mark)["call"][1] not in (F.ENC_VARINT_DELTA, F.ENC_VARINT)


def test_marks_beside_many_new_texts_are_measured_and_stored() -> None:
    """The walk of test_a_mark_chunk_deflated_for_sure_has_its_ids_byte_aligned with a new
    text for every call: the batch's STRS payload is more than ZLIB_MAX_STRS_PER_MARK times its
    MARK payload, so the writer stores the marks as they are (writer._worth_zlib) and the drain
    measures their codings instead of writing them byte-aligned for zlib (encode.c marks_payload's
    `dense` follows the writer's rule); the marks are the same as without arguments."""
    from flowtrace.ftr import writer as W
    from flowtrace.recorder.c import CRecorder

    def walk(d: int, tag: str, left: str = "", right: str = ""):   # (three new texts a call)
        if d == 0:
            yield 1
            return
        yield from walk(d - 1, tag + "l", "<" + tag, tag + ">")
        yield from walk(d - 1, tag + "r", "[" + tag, tag + "]")

    got = {}
    for mode in ("off", "safe"):
        rec = CRecorder(RecorderConfig(args=mode))
        rec.start()
        try:
            sum(walk(7, "x" * 40)) + sum(walk(7, "y" * 40))
            got[mode] = rec.drain()
        finally:
            rec.stop()
    plain, texts = got["off"], got["safe"]
    for batch, deflated in ((plain, True), (texts, False)):
        mark = dict(batch.payloads)[F.MARK]
        strs = len(batch.strings_payload or b"")
        _same_as_encode_columns(F.MARK, mark)
        assert W._worth_zlib(F.MARK, mark, batch.payload_calls, strs) == deflated, (len(mark), strs)
        forced = _descriptors(mark)["call"][1] == F.ENC_VARINT_DELTA and _descriptors(mark)["kind"][1] == F.ENC_BITS
        assert forced == deflated, _descriptors(mark)
    assert len(texts.strings_payload) > W.ZLIB_MAX_STRS_PER_MARK * len(dict(texts.payloads)[F.MARK])
    assert _marks(texts) == _marks(plain)



@pytest.mark.parametrize("steps", [0.02, 0.3, 0.7, 0.98])
def test_a_mark_ref_column_with_rows_0_is_encode_columns_bytes(steps: float) -> None:
    """MARK rows of generators' steps (a suspend with the yielded value's text in `ref`, a resume
    with ref 0: a step that calls a function, which no fold row takes) and of exceptions raised and caught (`ref` their texts: not 0) in a random
    order, from a few steps to nearly all, in batches of row counts around multiples of 8: the
    C coder finds the rows 0 of such a column in a pass of its own (encode.c
    nonzero_rows_u32) and codes its sparse candidates from them. Each payload is exactly
    format.encode_columns' bytes, and its `ref` rows 0 are the resumes."""
    from flowtrace.recorder.c import CRecorder

    ns: dict = {}
    src = (
        "def step(i):\n    return i if i % 3 else str(i)\n\n"
        "def gen():\n    i = 0\n    while True:\n        i += 1\n        yield step(i)\n\n"
        "def fail(i):\n    try:\n        raise KeyError(i)\n    except KeyError:\n        return i\n"
    )
    exec(compile(src, __file__, "exec"), ns)
    rng = random.Random(int(steps * 100))
    rec = CRecorder(RecorderConfig())
    rec.start()
    batches = []
    try:
        for rows in (9, 64, 257, 1001, 4099):
            g = ns["gen"]()
            for i in range(rows):
                if rng.random() < steps:
                    next(g)
                else:
                    ns["fail"](i)
            g.close()
            batches.append(rec.drain())
    finally:
        rec.stop()
    zeros = 0
    encodings = set()
    for batch in batches:
        for kind, payload in batch.payloads:
            _same_as_encode_columns(kind, payload)
            if kind == F.MARK and "ref" in _descriptors(payload):
                encodings.add(_descriptors(payload)["ref"][1])
        got = batch.unpacked()
        refs = list(got.mark_ref)
        resumes = [k == F.MARK_RESUME for k in got.mark_kind]
        assert [r == 0 for r in refs] == resumes
        zeros += sum(resumes)
    assert zeros, "no ref column had rows 0"
    sparse = encodings & {F.ENC_SPARSE, F.ENC_SPARSE_DELTA}
    assert sparse if steps >= 0.3 else encodings - sparse, encodings  # (from the rows found, and not)
