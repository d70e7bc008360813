"""STRS value records (FORMAT 1.4; tuples and lists 1.5, objects in them 1.7): the C recorder stores texts with objects, floats or large
ints as records that the reader makes into texts. Both readers (C and pure Python) give the
bytes the spec gives, the recorded texts are reprs.py's, and a damaged record is a FormatError."""

from __future__ import annotations

import struct
import warnings
from typing import Callable

import pytest

from flowtrace import reprs
from flowtrace.ftr import format as F
from flowtrace.recorder.base import RecorderConfig


def _expanders():
    yield "python", lambda payload: F._py_expand_strings(bytes(payload))
    if F._c_expand_strings is not None:
        yield "c", F._c_expand_strings


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _table(texts: list[bytes]) -> bytes:
    ends, total = [0], 0
    for t in texts:
        total += len(t)
        ends.append(total)
    return struct.pack(f"<{len(ends)}I", *ends) + b"".join(texts)


def _payload(first: int, dictionary: list[bytes], entries: list[bytes]) -> bytes:
    head = struct.pack("<III", first, len(entries) | F.STRS_RECORDS, len(dictionary))
    return head + _table(dictionary) + _table(entries)


def _zigzag(v: int) -> int:
    return ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF


HAND_MADE = _payload(5, [b"shapes.Vec", "self\0k\0*rest\0**kw\0é".encode(), "'ünï'".encode(), b"None"], [
    b"plain text",
    b"\xff\x01\x02" + _varint(0) + _varint(_zigzag(0x7F3A41D2E0C0)),  # a value: an object (a step from 0)
    b"\xff\x02" + _varint(1) + b"\x02" + _varint(0) + _varint(_zigzag(16 - 0x7F3A41D2E0C0))
    + b"\x01" + struct.pack("<d", 0.1)
    + b"\x00" + _varint(2) + b"()" + b"\x00" + _varint(2) + b"{}" + b"\x04" + _varint(_zigzag(-(1 << 63))),
    b"\xff\x01\x01" + struct.pack("<d", 1e22),
    b"\xff\x01\x04" + _varint(_zigzag(123456789012)),
    "é€".encode(),
    b"",
    # (1.5) a packed tuple holding a list, a 1-tuple, an empty tuple and a cut one
    b"\xff\x02" + _varint(1) + b"\x05\x02\x04" + _varint(_zigzag(-3)) + b"\x06\x03\x00\x05'job'\x00\x04None"
    + b"\x05\x01\x00\x02()" + b"\x05\x00" + b"\x05\x02\x00\x05(...)\x00\x03..." + b"\x00\x02{}"
    + b"\x06\x01\x01" + struct.pack("<d", 0.5),
    # (1.7) object slots inside a tuple and a list: their address steps go on from the record above's
    b"\xff\x01\x05\x02\x02" + _varint(0) + _varint(_zigzag(0x7F3A41D2E0C0 - 16)) + b"\x01" + struct.pack("<d", 4.25),
    b"\xff\x01\x06\x03\x02" + _varint(0) + _varint(_zigzag(0x40)) + b"\x05\x01\x02" + _varint(0)
    + _varint(_zigzag(-0x20)) + b"\x04" + _varint(_zigzag(7)),
    # (1.10) dictionary entries as slots' texts: at the top, in a tuple, a list and a nested tuple
    b"\xff\x02" + _varint(1) + b"\x07" + _varint(2) + b"\x05\x02\x07" + _varint(3) + b"\x07" + _varint(2)
    + b"\x06\x00" + b"\x07" + _varint(3) + b"\x05\x01\x05\x01\x07" + _varint(0),
    b"\xff\x01\x07" + _varint(3),
])
HAND_MADE_TEXTS = [
    "plain text", "<shapes.Vec object at 0x7f3a41d2e0c0>",
    "self=<shapes.Vec object at 0x10>, k=0.1, *rest=(), **kw={}, é=-9223372036854775808",
    "1e+22", "123456789012", "é€", "",
    "self=(-3, ['job', None, ((),)]), k=(), *rest=((...), ...), **kw={}, é=[0.5]",
    "(<shapes.Vec object at 0x7f3a41d2e0c0>, 4.25)",
    "[<shapes.Vec object at 0x7f3a41d2e100>, (<shapes.Vec object at 0x7f3a41d2e0e0>,), 7]",
    "self='ünï', k=(None, 'ünï'), *rest=[], **kw=None, é=((shapes.Vec,),)", "None",
]


@pytest.mark.parametrize("name,expand", list(_expanders()))
def test_records_read_as_the_spec_says(name, expand) -> None:
    plain = F.decode_strings(expand(HAND_MADE))
    assert (plain.first_id, plain.count) == (5, len(HAND_MADE_TEXTS))
    assert [plain.text(5 + i) for i in range(plain.count)] == HAND_MADE_TEXTS
    assert expand(HAND_MADE) == F.encode_strings(5, HAND_MADE_TEXTS)


@pytest.mark.parametrize("name,expand", list(_expanders()))
def test_plain_payload_is_left_as_it_is(name, expand) -> None:
    plain = F.encode_strings(3, ["a", "b\udc80"])
    assert bytes(expand(plain)) == plain
    assert F.expand_strings(plain) is plain


def _damaged() -> list[bytes]:
    out = [HAND_MADE[:n] for n in (9, 12, 20, len(HAND_MADE) - 1)]
    rec = bytearray(HAND_MADE)
    rec[8:12] = struct.pack("<I", 99)  # a dictionary longer than the chunk
    out.append(bytes(rec))
    bad_label = _payload(1, [], [b"\xff\x01\x02" + _varint(3) + _varint(1)])  # no such entry
    bad_tag = _payload(1, [], [b"\xff\x01\x09"])
    bad_kind = _payload(1, [], [b"\xff\x07\x01" + bytes(8)])
    trailing = _payload(1, [], [b"\xff\x01\x04\x02\x00"])  # a byte past the slot
    short_float = _payload(1, [], [b"\xff\x01\x01\x00\x00"])
    long_literal = _payload(1, [], [b"\xff\x01\x00" + _varint(50) + b"abc"])
    short_tuple = _payload(1, [], [b"\xff\x01\x05\x03\x04\x02\x04\x04"])  # 3 items, 2 there
    deep_list = _payload(1, [], [b"\xff\x01" + b"\x06\x01" * 17 + b"\x04\x00"])  # nested past 16
    label_in_tuple = _payload(1, [], [b"\xff\x01\x05\x01\x02" + _varint(0) + _varint(0)])  # no label 0
    text_at_none = _payload(1, [b"a"], [b"\xff\x01\x07" + _varint(1)])  # (1.10) no entry 1
    text_at_cut = _payload(1, [b"a"], [b"\xff\x01\x05\x02\x07"])  # its index missing
    return out + [bad_label, bad_tag, bad_kind, trailing, short_float, long_literal, short_tuple, deep_list,
                  label_in_tuple, text_at_none, text_at_cut]


@pytest.mark.parametrize("use_c", [False, True])
@pytest.mark.parametrize("payload", _damaged())
def test_damaged_records_are_a_format_error(payload, use_c, monkeypatch) -> None:
    if use_c and F._c_expand_strings is None:
        pytest.skip("the C extension is not built")
    if not use_c:
        monkeypatch.setattr(F, "_c_expand_strings", None)
    with pytest.raises(F.FormatError):
        F.decode_strings(payload)


class Shape:
    pass


class Long:
    pass


Long.__qualname__ = "L" * 230  # its placeholder is longer than reprs.MAX_TEXT: a text, cut


def target(a, b=2, *rest, k=None, **kw):
    return (a, b) if k is None else k


# (ints at the edges of the small-int tables -- capture.c SMALL_MAX, 2**15 -- and of rec_int's
# records: a result past them is a record, one inside them an entry)
VALUES = [Shape(), 0.1, -0.0, 1e300, float("nan"), 10**12, -(2**63), 2**63 - 1, 2**64, 40000, 7, "\udc80", Long(),
          2**15 - 1, 2**15, -(2**15) + 1, -(2**15), -40000, 2**128 - 3, -(2**300), 2**199]


def _program(session_flush) -> None:
    for _ in range(2):  # across two batches: records are not shared between batches
        for v in VALUES:
            target(v, v, v, 1.5, k=v, z=v)
            target(v)
        session_flush()


def _expected(mode: str) -> list[tuple[str, str]]:
    out = []
    for v in VALUES:
        t = reprs.value_text(v, mode)
        out.append((reprs._cut(f"a={t}, b={t}, *rest=({t}, 1.5), k={t}, **kw={{'z': {t}}}", 2 * reprs.MAX_TEXT), t))
        out.append((f"a={t}, b=2, *rest=(), k=None, **kw={{}}", reprs.value_text((v, 2), mode)))
    return out * 2


@pytest.mark.parametrize("mode", ["safe", "full"])
def test_recorded_texts_are_reprs_texts(mode: str) -> None:
    """Both recorders, through a session file read back: every text is reprs.py's (the C one
    stores records for most of them, in two batches)."""
    import io

    from flowtrace.ftr.chunks import ChunkReader
    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args=mode), recorder=recorder)
        session.start()
        try:
            _program(session.flush)
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname == "target"]
        assert [(c.args, c.result) for c in calls] == _expected(mode), recorder
        flags = [F.STRS_HEADER.unpack_from(ch.payload)[1] & F.STRS_RECORDS
                 for ch in ChunkReader.from_bytes(buf.getvalue()).poll() if ch.kind == F.STRS]
        assert (sum(map(bool, flags)) >= 2) == (recorder == "c")


def test_parameter_name_with_nul_stays_a_text() -> None:
    """Records join parameter names with NUL: a code object made by hand with a NUL in a name
    (its entries are then stored as texts) still reads as reprs.py's text."""
    from treeutil import record

    def f(a):
        return a

    f.__code__ = f.__code__.replace(co_varnames=("a\0b",))
    s = Shape()

    def prog() -> None:
        f(s)
        f(0.5)

    for recorder in ("c", "python"):
        calls = [c for c in record(prog, recorder).calls if c.function.qualname.endswith("f")]
        assert [(c.args, c.result) for c in calls] == [
            (f"a\0b={reprs.value_text(s)}", reprs.value_text(s)), ("a\0b=0.5", "0.5")], recorder


def _one(x):
    return 1


def _star(a, b=None, *rest, k=0, **kw):
    return 2


def _star4(a, *rest, k=0, j=None):  # 4 slots: a, k, j, rest -- shown a, *rest, k, j (CodeInfo.order4)
    return 5


def _cell(x):  # x is a cell at the call's start (an inner function reads it)
    def inner():
        return x

    return 3


def _uni(é, ü=()):
    return 4


def _nul(a):
    return 5


_nul.__code__ = _nul.__code__.replace(co_varnames=("a\0b",))

_LONG = ("y" * 60,) * 3  # a 196-character text: three of them pass 2 * MAX_TEXT

# Argument lists with a tuple or list in them: the C recorder writes most as records at call
# time (packed.c, args_record); the rest (an object, a str it cannot pack, a huge int, a dict,
# a text that is cut, a NUL in a name) take the slot path. Every text is reprs.args_text's.
CONTAINER_CALLS = [
    (_one, ((1, "job", (2, 3)),), {}), (_one, ([1.5, None, True, False, -0.0],), {}),
    (_one, ((10**30,),), {}), (_one, (("é",),), {}), (_one, (("a'b", 'c"'),), {}), (_one, (("x" * 100,),), {}),
    (_one, (tuple(range(10)),), {}), (_one, (((((1,),),),),), {}), (_one, ([],), {}), (_one, ((),), {}),
    (_one, ((Shape(),),), {}), (_one, ([2**62, -(2**62), 2**31],), {}),
    (_star, (1, (2, 3)), {}), (_star, ("s", [1], 3, 4), {"k": (5,), "z": 1}), (_star, (2**40, ("a",)), {"k": -7}),
    (_star, (0.1, (1,), 2.5), {}), (_star, (None, "t", [0]), {"k": "u"}), (_star, (_LONG, _LONG, _LONG), {}),
    (_star, (10**30, (1,)), {}), (_star, ("\n", (1,)), {}), (_star, (Shape(), (1,)), {}),
    (_star4, (1, (2, 3)), {"k": (5,)}), (_star4, ("s", [1], 3), {"j": (1,)}), (_star4, ((4,),), {"k": [6], "j": 7}),
    (_cell, ((1, 2),), {}), (_uni, ([3],), {}), (_uni, (1,), {"ü": (2,)}), (_nul, ((1, 2),), {}),
]


def _args_text(fn, args, kwargs, mode: str) -> str:
    import inspect
    import types

    if fn is _nul:  # (inspect refuses the name)
        loc = {"a\0b": args[0]}
    else:
        bound = inspect.signature(fn).bind(*args, **kwargs)
        bound.apply_defaults()
        loc = dict(bound.arguments)
    return reprs.args_text(types.SimpleNamespace(f_locals=loc), fn.__code__, mode)


@pytest.mark.parametrize("mode", ["safe", "full"])
def test_argument_lists_with_containers_are_reprs_texts(mode: str) -> None:
    """Argument lists holding tuples and lists, most of them written as records at call time by
    the C recorder, read back as reprs.py's texts from both recorders, in three batches (the
    small-int results of the later ones name the first one's texts)."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    names = {fn.__name__ for fn, _, _ in CONTAINER_CALLS}
    expected = [(_args_text(fn, args, kwargs, mode), str(fn(*args, **kwargs))) for fn, args, kwargs in CONTAINER_CALLS]
    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args=mode), recorder=recorder)
        session.start()
        try:
            for _ in range(3):
                for fn, args, kwargs in CONTAINER_CALLS:
                    fn(*args, **kwargs)
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in names]
        assert [(c.args, c.result) for c in calls] == expected * 3, recorder


def test_tuples_known_by_identity_read_as_reprs_texts() -> None:
    """A frozen tuple packed as an argument is copied, not walked, when it is packed again
    (packed.c, pack_known): inside another tuple, as a constant passed again, in a later batch,
    nested deeper than its text may show there. A tuple holding a list is never known so: its
    list's changes show. Every text is reprs.py's, from both recorders."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    deep = (1, (2, (3,)))  # its (3,) shows only when deep is at depth 0
    meta = ("job", (4, 5))
    lst = [1, 2]
    holds_list = (lst,)
    steps = [
        (_one, (meta,)), (_one, ((0, meta),)), (_one, ((0, meta),)), (_star, (meta, meta, meta)),
        (_one, (deep,)), (_one, ((deep,),)), (_one, (((deep,),),)), (_star, (deep, (deep,))), (_one, ([deep],)),
        (_one, (holds_list,)), (lst.append, (3,)), (_one, (holds_list,)), (_one, ((0, holds_list),)),
        (_one, (tuple(range(8)),)), (_one, ((tuple(range(8)), meta),)),
    ]
    for recorder in ("c", "python"):
        lst[:] = [1, 2]
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        expected = []
        session.start()
        try:
            for _ in range(2):
                for fn, args in steps:
                    if fn in (_one, _star):
                        expected.append(_args_text(fn, args, {}, "safe"))
                    fn(*args)
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in ("_one", "_star")]
        assert [c.args for c in calls] == expected, recorder


def _alt(n, meta=None):
    return n if isinstance(n, int) and n < 100 else 0


def test_records_and_texts_taking_turns_in_one_batch_read_as_reprs_texts() -> None:
    """One code whose argument lists are records at call time, then not (a str it cannot pack,
    a huge int, no container), then records again, in one batch: after a record the C recorder
    tries that first (args_id), and one that is not takes the other paths for the rest of the
    batch. The drain splices the runs of call-time records between the texts and int records
    made at the drain (render.c). Every text is reprs.py's, from both recorders."""
    steps = [(1, ("job", (2, 3))), (2, [4]), ("a'b", (1,)), (3, (5,)), (10**30, (1,)), (4, "s"), (5, ("x", (6, 7))),
             (6,), (7, ((8,),)), (8, (-9, 2**40)), (9, ()), (10, ("é",)), (11, (12,))]
    expected = [(_args_text(_alt, args, {}, "safe"), repr(_alt(*args))) for args in steps]
    for recorder in ("c", "python"):
        calls = _recorded_batches(recorder, lambda: [_alt(*args) for _ in range(3) for args in steps], {"_alt"})
        assert [(c.args, c.result) for c in calls] == expected * 6, recorder


def _shaped(n, meta=None, *rest):
    return 0


_JOB = "job"


def test_argument_lists_walked_by_the_shape_of_the_last_one_read_as_reprs_texts() -> None:
    """The C recorder walks a code's argument list by the compiled shape of its last record
    (packed.c, start_shaped) and, at the first value of another kind, writes it the general way
    (and compiles its shape, a few times a batch). Each list below is passed three times running
    after one of another shape: ints of one to ten varint bytes and past 64 bits, the same str
    object, an equal str that is another object, strs cut or not plain, other counts, a list for
    a tuple, None/True/False/floats in each other's places, a list changed between calls, the
    depth limit, *rest, empty containers, a shape whose longest text could pass MAX_TEXT. Every
    text is reprs.py's, from both recorders, in two batches."""
    other_job = "".join(["jo", "b"])  # the same text as _JOB, another object
    lst = [1, 2]
    steps = [
        (1, (_JOB, (2, 3))), (2, (_JOB, (3, 4))), (-3, (_JOB, (8191, -8192))), (2**40, (_JOB, (2**62, -(2**63)))),
        (4, (other_job, (5, 6))), (5, ("x" * 61, (6, 7))), (8, (_JOB, (9,))), (9, (_JOB, (10, 11, 12))),
        (10, (_JOB, [11, 12])), (11, [_JOB, (12, 13)]), (12, (None, (True, False))), (13, (True, (False, None))),
        (14, (0.5, (-0.0, float("inf")))), (15, (1.5, (2, 3.0))), (16, lst), "grow", (17, lst), (18, (lst,)),
        "grow", (18, (lst,)), (19, ((((1,),),),)), (20, (((1,),),)), (21, (_JOB, (1, 2)), 3, (4,)),
        (22, (_JOB, (1, 2)), "s", (4,)), (23, ()), (24, (_JOB, ())), (25, ("ab",) * 4), (27, tuple(range(6))),
        (28, tuple(range(7))), (29, (_JOB, (2, 3))),
        # not records (the rest of the batch takes the slot path for this code)
        (2**64, (_JOB, (1, 2))), (6, ("a'b", (7, 8))), (7, ("é", (8, 9))), (26, ("y" * 60,) * 4),
    ]

    def batch(expected: list) -> None:
        for step in steps:
            if step == "grow":
                lst.append(len(lst))
                continue
            for _ in range(3):
                expected.append(_args_text(_shaped, step, {}, "safe"))
                _shaped(*step)

    for recorder in ("c", "python"):
        lst[:] = [1, 2]
        expected: list = []
        calls = _recorded_batches(recorder, lambda: batch(expected), {"_shaped"})
        assert [c.args for c in calls] == expected, recorder


_EDGES = [0, -1, 1, 63, 64, -64, -65, 127, 128, 8191, -8192, 8192, -8193, 2**30 - 1, -(2**30 - 1), 2**30, -(2**30),
          2**62, 2**63 - 1, -(2**63)]


def test_ints_at_the_varint_and_digit_edges_read_as_reprs_texts() -> None:
    """Ints whose zigzag takes one, two and three varint bytes and more (|v| around 64 and 8192),
    of one digit and of two (2^30: the C recorder reads a one-digit int's zigzag from its sign
    bits and digit, packed.c pack_int), to the 64-bit edges -- as arguments, in tuples and in a
    list, each list passed three times running (walked by its shape after the first), then ints
    past 64 bits (not records: the rest of the batch takes the slot path). Every text is
    reprs.py's, from both recorders, in two batches."""
    steps = [(e, (_JOB, (e, -e))) for e in _EDGES] + [(e, [e, 1]) for e in _EDGES]
    steps += [(2**63, (_JOB, (1, 2))), (-(2**63) - 1, (_JOB, (1, 2))), (1, (_JOB, (2**64, 2)))]

    def batch(expected: list) -> None:
        for step in steps:
            for _ in range(3):
                expected.append(_args_text(_shaped, step, {}, "safe"))
                _shaped(*step)

    for recorder in ("c", "python"):
        expected: list = []
        calls = _recorded_batches(recorder, lambda: batch(expected), {"_shaped"})
        assert [c.args for c in calls] == expected, recorder


_GENERAL_PATH = """\
import sys
sys.path.insert(0, {tests!r})
from flowtrace import _crecorder
assert _crecorder.CLOCK == "monotonic", _crecorder.CLOCK
import test_value_records as t
t.test_argument_lists_walked_by_the_shape_of_the_last_one_read_as_reprs_texts()
t.test_ints_at_the_varint_and_digit_edges_read_as_reprs_texts()
print("ok")
"""


def test_shapes_walked_on_the_callbacks_general_path_read_as_reprs_texts(tmp_path) -> None:
    """Without the TSC clock (FLOWTRACE_CLOCK=monotonic) the C recorder's PY_START takes its
    general path, where args_record walks a code's shape (packed.c shape_record: the walk alone,
    start_shaped's other use) -- not PY_START's fast path (start_shaped's whole call). The two
    tests above, there: every text is reprs.py's, from both recorders."""
    import os
    import subprocess
    import sys

    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, FLOWTRACE_CLOCK="monotonic", FLOWTRACE_RECORDER="c")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(tests), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", _GENERAL_PATH.format(tests=tests)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert (res.returncode, res.stdout.strip()) == (0, "ok"), res.stderr


def _recorded_batches(recorder: str, batch, names: set[str], batches: int = 2) -> list:
    """The calls of functions `names` that `batch()` makes, run `batches` times in safe mode,
    each time flushed (a batch of its own), as the file reads them back."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    buf = io.BytesIO()
    session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
    session.start()
    try:
        for _ in range(batches):
            batch()
            session.flush()
    finally:
        session.stop()
    return [c for c in load(buf.getvalue()).calls if c.function.qualname in names]


def _small(n, meta):  # a small int: once its text is final, its result entry adds no bytes
    return 1


def _wide(n, meta):  # an int past the small-int tables: a record made at call time too
    return n * 100003 + 7


def _word(s):  # a str argument: a text made at the drain, between call-time records
    return None


def test_record_runs_short_long_and_joined_read_as_reprs_texts() -> None:
    """The drain copies short runs of call-time records into the texts' blob and splices long
    ones (render.c record_run, SPLICE_MIN = 256 bytes): runs of one call's records between texts
    made at the drain, runs of hundreds of bytes, and short runs between entries that add no
    bytes (a text seen before), joined into one run and spliced once it is long enough -- in one
    batch, two batches running. Every text is reprs.py's, from both recorders."""
    steps = ([(_small, (i, ("job", (i, i + 1)))) for i in range(40)]   # one long run
             + [(_wide, (i, ("job", (i, i + 1)))) for i in range(40)]   # one long run
             + [c for i in range(12) for c in ((_wide, (i, (i,))), (_word, (f"w'{i}",)))]   # short runs, texts between
             + [c for i in range(20) for c in ((_wide, (i, ("job", (i,)))), (_word, ("a'b",)))]   # joined: no bytes between
             + [(_small, (i, (i,))) for i in range(3)] + [(_word, ("é",))] + [(_small, (i, (i, "x" * 60))) for i in range(8)])
    expected = [(f.__name__, _args_text(f, args, {}, "safe"), repr(f(*args))) for f, args in steps]
    names = {f.__name__ for f, _ in steps}
    for recorder in ("c", "python"):
        calls = _recorded_batches(recorder, lambda: [f(*args) for f, args in steps], names)
        assert [(c.function.qualname, c.args, c.result) for c in calls] == expected * 2, recorder


def _lit(o, s, f=0.5):  # an object and a float: a record made at the drain, s a literal slot in it
    return None


def test_long_literals_in_records_made_at_the_drain_read_as_reprs_texts() -> None:
    """A str or bytes slot of a record the drain makes is rendered in place after a one-byte
    length (render.c record_entry): texts of 127 bytes and less, of 128 and more (the length
    takes two bytes: the text is moved up), multi-byte characters past 128 bytes, a str cut at
    MAX_TEXT, and short ones after a long one in the same record and batch. Every text is
    reprs.py's, from both recorders."""
    o = Shape()
    strs = ["", "a", "x" * 123, "x" * 124, "x" * 125, "x" * 126, "x" * 200, "é" * 62, "é" * 63, "€" * 90,
            "y" * 500, "'" * 130, "\n" * 70]
    steps = [(_lit, (o, s)) for s in strs] + [(_lit, (o, s.encode(), 2.5)) for s in strs if s.isascii()]
    steps += [(_lit, (o, "z" * 300, "q" * 3)), (_lit, (o, "w", "v" * 140))]
    expected = [(_args_text(f, args, {}, "safe"), repr(f(*args))) for f, args in steps]
    for recorder in ("c", "python"):
        calls = _recorded_batches(recorder, lambda: [f(*args) for f, args in steps], {"_lit"})
        assert [(c.args, c.result) for c in calls] == expected * 2, recorder


def _cls(k, n):  # a class argument: its text made at the drain (V_CLASS), kept for the drain by address
    return n


def test_classes_passed_again_in_a_drain_and_renamed_between_drains_read_as_reprs_texts() -> None:
    """A class's text is made once a drain and copied for its later slots (render.c render_slot,
    the drain's memo by address): two classes taking turns, in records and in texts, then one
    renamed between the batches -- the next batch reads its new name. Every text is reprs.py's,
    from both recorders."""
    for recorder in ("c", "python"):
        class A:
            pass

        class B:
            pass

        names = iter(["A", "Renamed"])

        def batch():
            A.__qualname__ = next(names)
            out = []
            for i in range(6):
                for k in (A, B):
                    out.append((_args_text(_cls, (k, i), {}, "safe"), repr(_cls(k, i))))
                    out.append((_args_text(_cls, (k, 2**40 + i), {}, "safe"), repr(_cls(k, 2**40 + i))))
            expected.extend(out)

        expected = []
        calls = _recorded_batches(recorder, batch, {"_cls"})
        assert [(c.args, c.result) for c in calls] == expected, recorder
        assert any("Renamed" in c.args for c in calls) and any(".A'>" in c.args for c in calls)


class Vec3:
    __slots__ = ("x", "y", "z")

    def __init__(self, x, y, z):
        self.x, self.y, self.z = x, y, z

    def scale(self, k):
        return Vec3(self.x * k, self.y * k, self.z * k)

    def dot(self, o):
        return self.x * o.x + self.y * o.y + self.z * o.z

    class Inner:  # a nested class: its qualname has a dot
        pass


class InBuiltins:  # a class that says it lives in builtins: its label is its name alone
    pass


InBuiltins.__module__ = "builtins"


class Ünï:  # a non-ASCII label
    pass


class _Meta(type):
    @property
    def __module__(cls):  # a metaclass that makes __module__ up: the slot path (type_label's hook)
        return "made.up"


class Odd(metaclass=_Meta):
    pass


def _pick(objs, t):  # returns (obj, t): a tuple holding an object, packed (1.7) and made a record at the drain
    return objs[int(t) % len(objs)], t


def _mixed(a, b=None, c=True, d=False):
    return d


def _big(n, o):
    return n * 3


def test_keyed_argument_lists_written_at_call_time_read_as_reprs_texts() -> None:
    """Argument lists and results of floats, objects, None/True/False and large ints -- the C
    recorder writes them as records at call time (capture.c rec_commit), with their labels and
    address steps -- among records the drain makes of tuples holding objects (its address steps
    interleaved with theirs), new objects at reused addresses, classes of every label kind, in
    three batches: every text is reprs.py's, addresses included, from both recorders."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    names = ("Vec3.__init__", "Vec3.scale", "Vec3.dot", "_pick", "_mixed", "_big")
    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        expected: list[tuple[str, str]] = []
        keep = [Vec3.Inner(), InBuiltins(), Ünï(), Long(), Odd(), Shape()]

        def call(fn, *args):
            expected.append((_args_text(fn, args, {}, "safe"), None))
            r = fn(*args)
            expected[-1] = (expected[-1][0], reprs.value_text(r, "safe"))
            return r

        session.start()
        try:
            for batch in range(3):
                v = Vec3(1.5, -2.0, 0.25)
                for i in range(40):
                    w = call(Vec3.scale, v, 0.5 + i)  # (its Vec3.__init__ is recorded too: checked below)
                    call(Vec3.dot, w, v)
                    call(_pick, keep, float(i))
                    call(_mixed, keep[i % len(keep)], None if i % 2 else 1e-9, i % 3 == 0, 2**40 + i)
                    call(_big, 2**45 + i, keep[(i * 7) % len(keep)])
                    call(Vec3.dot, w, w)
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in names]
        got = [(c.args, c.result) for c in calls if c.function.qualname != "Vec3.__init__"]
        assert got == expected, recorder
        # every object a method returned is the one its Vec3.__init__ made
        inits = {c.id: c for c in calls if c.function.qualname == "Vec3.__init__"}
        for c in calls:
            if c.function.qualname == "Vec3.scale":
                init = next(i for i in inits.values() if i.parent == c.id)
                assert init.args.startswith("self=" + c.result + ", "), recorder


def _k1(a):
    return a


def _k2(a, b):
    return b


def _k3(a, b, c=None):
    return c


def _k4(a, b, c, d):
    return d


def _k2cell(a, b):  # b is a cell: the general path reads it through the cell
    return lambda: b


def test_argument_lists_of_one_to_four_values_are_reprs_texts() -> None:
    """The C recorder's keyed path (capture.c args_keyed, one copy a count of 1 to 4) keys
    instances, ints, floats, None, True and False itself and hands builtin objects, strs, small
    ints and cells on to the general path, which keys or captures them: repeated and new lists
    of each kind, in two batches, read as reprs.py's texts from both recorders."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    s, t = Shape(), Other()
    values = [s, t, 7, 2**20, -(2**40), 0.5, None, True, False, len, reprs, "x", 2**70, (1, s), 40000]
    names = ("_k1", "_k2", "_k3", "_k4", "_k2cell")
    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        expected: list[str] = []
        session.start()
        try:
            for _ in range(2):
                for i in range(3 * len(values)):
                    a, b = values[i % len(values)], values[(i * 7 + 1) % len(values)]
                    c, d = values[(i * 5 + 2) % len(values)], values[(i * 3) % len(values)]
                    for fn, args in ((_k1, (a,)), (_k2, (a, b)), (_k3, (a, b)), (_k3, (d, c, b)),
                                     (_k4, (a, b, c, d)), (_k2cell, (b, a))):
                        expected.append(_args_text(fn, args, {}, "safe"))
                        fn(*args)
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in names]
        assert [c.args for c in calls] == expected, recorder


def _made(o, n, t=None):
    return n


def test_runs_of_new_argument_lists_then_repeats_are_reprs_texts() -> None:
    """A code whose argument lists are new call after call (a constructor's: a new object, a
    growing int), then the same few lists again and again, then new ones, in two batches --
    the C recorder's PY_START fast path (capture.c start_keyed) makes each a record at call
    time, finds the repeats in the hot memo: records with objects, ints and floats, a literal
    default; read as reprs.py's texts from both recorders."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        expected: list[str] = []
        keep = [Shape(), Other(), Shape()]

        def call(*args):
            expected.append(_args_text(_made, args, {}, "safe"))
            _made(*args)

        session.start()
        try:
            for batch in range(2):
                for i in range(50):  # new lists: a run of misses
                    call(Shape(), 2**20 + i)
                for i in range(50):  # the same few lists again, then turn about
                    call(keep[i % 2], 2**20 + i % 3, 0.5 if i % 5 else None)
                for i in range(30):
                    call(keep[2], 2**20)
                for i in range(30):
                    call(Other(), -(2**40) - i, 1.5 * i)
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname == "_made"]
        assert [c.args for c in calls] == expected, recorder


class Wide:
    pass


Wide.__qualname__ = "W" * 150  # a label a record takes; three or four of them are past its bound


def _w1(a):
    return a


def _w3(a, b, c):
    return c


def _w4(a, b, c, d):
    return d


def test_new_argument_lists_past_a_records_bound_are_reprs_texts() -> None:
    """New argument lists of 1, 3 and 4 values each call (new objects, growing ints, floats) --
    the C recorder's PY_START fast path writes each as a record at call time, unrolled for its
    count (capture.c rec_args) -- where instances of a class with a long name make the list's
    text longer than a record may be (it is then slots, cut at the drain), with None and True
    among them (the general writer's): read as reprs.py's texts from both recorders."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        expected: list[str] = []

        def call(fn, *args):
            expected.append(_args_text(fn, args, {}, "safe"))
            fn(*args)

        session.start()
        try:
            for batch in range(2):
                for i in range(30):
                    call(_w1, Wide())
                    call(_w3, Wide(), 2**20 + i, 0.5 * i)
                    call(_w3, Wide(), Wide(), Wide())
                    call(_w4, Shape(), Wide(), -(2**40) - i, Wide())
                    call(_w4, Shape(), 2**33 + i, None if i % 2 else True, 1.5)
                    call(_w3, i, 2**20 + i, Shape())
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in ("_w1", "_w3", "_w4")]
        assert [c.args for c in calls] == expected, recorder


class Other:
    pass


def inner(v):
    return v


def outer(v):
    return inner(v)  # the same value twice in a row: the C recorder's last-value check (value_id)


def _delegating(session_flush, seen: list[str]) -> None:
    """Results that a caller returns again after its callee, keys that repeat with other objects
    (an int made anew, an instance of another class at a freed one's address) and values the
    check must not take (None, small ints), in two batches."""
    for _ in range(2):  # (the next batch's first key is this one's last: the check is per batch)
        for make in (lambda: 2**40, Shape, Other, lambda: 0.1, lambda: int("1" + "0" * 12), lambda: -5,
                     lambda: 7, lambda: None, lambda: True, lambda: float("-inf"), lambda: 2**40):
            for _ in range(3):
                v = make()
                seen.append(reprs.value_text(v, "safe"))
                outer(v)
                del v  # (an instance's address may be taken by the next one, of either class)
        session_flush()


def test_results_returned_again_are_reprs_texts() -> None:
    """A value returned by a call and then by its caller, then the same key from new objects:
    both recorders give every result reprs.py's text."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder, flush_interval=3600)
        seen: list[str] = []
        session.start()
        try:
            _delegating(session.flush, seen)
        finally:
            session.stop()
        calls = load(buf.getvalue()).calls
        got = {name: [c.result for c in calls if c.function.qualname == name] for name in ("inner", "outer")}
        assert got["inner"] == seen, recorder
        assert got["outer"] == seen, recorder


def test_lists_that_keep_missing_then_repeat_are_reprs_texts() -> None:
    """Codes of 1 to 4 arguments whose lists are new call after call, far past the point where
    the C recorder stops probing the hot memo for them (capture.c memo_miss_count: 64 misses,
    8 times the hits; start_unmemo_<n>), then lists seen before (each written again), lists
    with a literal, a small int alone, a str (not keyed), and the same in a second batch (where
    the memo is probed again); ints at every varint length (rec_varint: 1 to 10 bytes, both
    signs) as arguments and as results. Read as reprs.py's texts from both recorders."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    edges = [v for b in (7, 14, 21, 28, 35, 42, 56, 62) for v in (2**b - 1, 2**b, -(2**b), -(2**b) - 1)]
    edges += [2**63 - 1, -(2**63), 5, -3, 300]
    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        expected: list[tuple[str, str, str]] = []
        keep = [Shape(), Other()]

        def call(fn, *args):
            expected.append((fn.__name__, _args_text(fn, args, {}, "safe"), reprs.value_text(fn(*args), "safe")))

        session.start()
        try:
            for batch in range(2):
                for i in range(150):  # new lists: misses far past the give-up point
                    call(_k1, Shape())
                    call(_k2, Shape(), 2**20 + i)
                    call(_k3, Shape(), i * 2**30 + 1, 0.25 * i)
                    call(_k4, Other(), 2**40 + i, -i - 300, Shape())
                for i in range(40):  # lists seen before, literals, a small int, a str
                    call(_k1, keep[i % 2])
                    call(_k2, keep[0], 2**20 + i % 3)
                    call(_k3, keep[1], None if i % 2 else True, 1.5)
                    call(_k4, keep[0], keep[1], 2**40, False)
                    call(_k1, i % 5)
                    call(_k2, keep[0], f"s{i % 4}")
                for v in edges:
                    call(_k1, v)
                    call(_k3, Shape(), v, -v)
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in ("_k1", "_k2", "_k3", "_k4")]
        assert [(c.function.qualname, c.args, c.result) for c in calls] == expected, recorder


def _k_obj(a, x):
    return a


def test_class_dict_key_colliding_with_module_runs_no_eq_at_call_time() -> None:
    """A class whose dict holds a key that is not a str, with `__module__`'s hash and an `__eq__`
    that has a side effect: the C recorder's call-time records (capture.c rec_label_new) must
    not look `__module__` up through it -- the key's `__eq__` would run in the middle of a
    callback whose state is live, and could switch threads there. Its instances' texts are
    still reprs.py's (the drain makes their label, looking `__module__` up as reprs.type_label
    does), and the program sees no `__eq__` call while it runs."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    eq_calls: list[object] = []
    h = hash("__module__")

    class Key:
        def __hash__(self) -> int:
            return h

        def __eq__(self, other: object) -> bool:
            eq_calls.append(other)
            return False

    # (the key first: `__module__`, added by type(), lands past it on the same probe; 3.13
    # warns of a class dict key that is not a str, which is what this test is about)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        Collide = type("Collide", (), {Key(): 1})
    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        objs = [Collide() for _ in range(3)]
        session.start()
        try:
            before = len(eq_calls)
            for i, o in enumerate(objs * 4):
                _k_obj(o, 2.5 + i)  # (a float beside it: a record at call time)
            during = len(eq_calls) - before
            session.flush()
        finally:
            session.stop()
        if recorder == "c":
            assert during == 0
        got = [c.args for c in load(buf.getvalue()).calls if c.function.qualname == "_k_obj"]
        expected = [f"a={reprs.placeholder(o)}, x={2.5 + i!r}" for i, o in enumerate(objs * 4)]
        assert got == expected, recorder


class _Box:
    pass


def _self_star(self, *args):  # (self, *args): an instance and a packed tuple
    return 6


def _self_key(self, key, items):  # an instance, a str and a list holding an instance
    return 7


def _nested(pair, n):  # instances of several classes inside a tuple only
    return 8


def _turns(a, t):  # lists with an instance and without, in turn: the record moved either way
    return 9


def _refused(self, *args):  # a label too long, a metaclass's __module__: the slot path
    return 10


_FROZEN = (1, ("job", 2))  # a frozen tuple: known by identity once packed (pack_known)


def test_argument_lists_holding_instances_and_containers_written_at_call_time_read_as_reprs_texts() -> None:
    """Argument lists holding an instance and a tuple or list -- (self, *args), (self, key, items),
    instances of several classes inside a tuple -- which the C recorder writes as records at call
    time (packed.c args_record: the objects' labels and address steps written there, the record
    after its side bytes or not as the code's last one said, moved when that was wrong), among
    records rec_commit writes (Vec3.dot, Vec3.__init__) and records the drain makes of packed
    results holding objects (_pick): their address steps interleaved, in three batches. Every
    text is reprs.py's, addresses included, from both recorders."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    names = ("_self_star", "_self_key", "_nested", "_turns", "_refused", "_pick", "Vec3.dot")
    for recorder in ("c", "python"):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        expected: list[tuple[str, str]] = []
        keep = [_Box(), Vec3.Inner(), InBuiltins(), Ünï(), Shape()]

        def call(fn, *args):
            expected.append((_args_text(fn, args, {}, "safe"), reprs.value_text(fn(*args), "safe")))

        session.start()
        try:
            for batch in range(3):
                v = Vec3(1.5, -2.0, 0.25)
                for i in range(40):
                    o = keep[i % len(keep)]
                    call(_self_star, o, i, "s", (i, o), -(2**40) - i, 0.5 * i)
                    call(_self_star, _Box(), _FROZEN, [None, True], _FROZEN)  # a new object, a tuple known by identity
                    call(Vec3.dot, v, Vec3(i, 1.0, 0.5))
                    call(_pick, keep, float(i))  # (its result's record made at the drain, between two of ours)
                    call(_self_key, o, "key", [i, _Box(), (keep[(i * 3) % len(keep)], "x")])
                    call(_nested, (o, keep[(i * 3) % len(keep)], (o, i), []), -i)
                    call(_turns, o if i % 3 else i, (i, "x"))
                    call(_turns, i, (Vec3.Inner(), _FROZEN) if i % 2 else _FROZEN)  # an instance in a tuple only
                    call(_turns, _FROZEN, [o] * (i % 9))  # past MAX_ITEMS: "..."
                    call(_refused, Long() if i % 2 else Odd(), (i,))
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in names]
        assert [(c.args, c.result) for c in calls] == expected, recorder


class _Named_class_whose_text_is_longer_than_a_packed_items_room_of_seventy:
    pass


def _pair(t, n):  # a container with a class, a function or objects of two classes in it
    return t


def _pair_d(d, t):  # a dict beside it: the list is not a record at call time (slots; t packed)
    return t


def _made_two(i):  # a new tuple of objects of two classes: a record at call time (packed.c value_record)
    return (_Box(), Vec3.Inner()) if i % 2 else [Shape(), i, (_Box(), "x")]


def _yield_two(n):
    for i in range(n):
        yield _Box(), Vec3.Inner(), i


def _strs_payload_entries(payload) -> list[tuple[bool, str]]:
    """(is it a record, its text) for each string of a STRS payload."""
    first, count = struct.unpack_from("<II", payload)
    if not count & F.STRS_RECORDS:
        return []  # (texts only: no record)
    n = count & ~F.STRS_RECORDS
    (nd,) = struct.unpack_from("<I", payload, 8)
    dict_size = struct.unpack_from("<I", payload, 12 + 4 * nd)[0]
    at = 12 + 4 * (nd + 1) + dict_size
    offs = struct.unpack_from(f"<{n + 1}I", payload, at)
    blob = payload[at + 4 * (n + 1):]
    raw = [bytes(blob[a:b]) for a, b in zip(offs, offs[1:])]
    plain = F.expand_strings(payload)
    poffs = struct.unpack_from(f"<{n + 1}I", plain, 8)
    pblob = bytes(plain[8 + 4 * (n + 1):])
    return [(r[:1] == b"\xff", pblob[a:b].decode("utf-8", "surrogatepass")) for r, a, b in zip(raw, poffs, poffs[1:])]


def _recorded_as_reprs(recorder: str, names: tuple[str, ...], batch: Callable[[Callable[..., None], list], None]) -> bytes:
    """Record three batches of `batch(call, expected)` (a flush after each) with `recorder`:
    `call(fn, *args)` calls fn and notes the texts reprs gives its arguments and its result,
    which the recorded calls of the functions named `names` must show, in order. The session."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    buf = io.BytesIO()
    session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
    expected: list[tuple[str, str]] = []

    def call(fn, *args):
        expected.append((_args_text(fn, args, {}, "safe"), reprs.value_text(fn(*args), "safe")))

    session.start()
    try:
        for _ in range(3):
            batch(call, expected)
            session.flush()
    finally:
        session.stop()
    calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in names]
    assert [(c.args, c.result) for c in calls] == expected, recorder
    return buf.getvalue()


def test_containers_holding_classes_functions_and_objects_of_two_classes_read_as_reprs_texts() -> None:
    """Tuples and lists holding classes, functions, generators, or instances of two classes --
    (self, cls), isinstance's class tuples, (func, args), results made of two kinds of objects
    -- as arguments (a record at call time, or a packed slot beside a dict) and as results and
    yielded values (a record at call time, packed.c value_record), in three batches: the C
    recorder writes them as value records whose class and function texts are literals made at
    call time (packed.c pack_named; in a slot beside a dict, objects of two classes or beside a
    class as placeholders made at call time too), not as whole texts made at call time; a text
    too long for an item's room or a non-ASCII name keeps the text path.
    Every text is reprs.py's, addresses included, from both recorders."""
    from flowtrace.ftr.chunks import ChunkReader

    long_cls = _Named_class_whose_text_is_longer_than_a_packed_items_room_of_seventy

    def gen_fn():
        yield 1

    def batch(call, expected):
        g = gen_fn()
        for i in range(20):
            o = _Box()
            call(_pair, (o, _Box), i)
            call(_pair, (Vec3.Inner, Shape, InBuiltins, i), "s")
            call(_pair, [_pair, (_made_two, i)], None)
            call(_pair, (g, gen_fn, Ünï), i)  # (Ünï: not ASCII, the text path)
            call(_pair, (long_cls, 1), i)  # (too long for an item: the text path)
            call(_pair, (_Box,) * 8, i)  # past MAX_ITEMS
            call(_pair, (o, Vec3.Inner(), Shape()), 2.5)  # objects of three classes
            call(_pair_d, {"k": i}, (Shape, i, "x"))
            call(_pair_d, {"k": i}, (o, Shape))  # an object beside a class in a slot: placeholders made now
            call(_pair_d, {"k": i}, [o, Vec3.Inner(), (o, 1)])  # objects of two classes in a slot: the same
            call(_pair_d, {"k": i}, ((1, _pair), [Odd]))
            call(_made_two, i)
            expected.append((_args_text(_yield_two, (2,), {}, "safe"), "None"))
            for _v in _yield_two(2):
                pass

    for recorder in ("c", "python"):
        data = _recorded_as_reprs(recorder, ("_pair", "_pair_d", "_made_two", "_yield_two"), batch)
        if recorder == "c":  # written as records: the class and function texts are literals in them
            entries = [e for ch in ChunkReader.from_bytes(data).poll() if ch.kind == F.STRS
                       for e in _strs_payload_entries(ch.payload)]
            assert any(rec and "(<class '" in text for rec, text in entries)
            assert any(rec and text.startswith("[<function _pair at 0x") for rec, text in entries)
            assert any(rec and text.startswith("(<test_value_records._Box object at 0x") and "Inner object" in text
                       for rec, text in entries)
            assert any(rec and text.startswith("d={'k': ") and ", t=[<test_value_records._Box object at 0x" in text
                       for rec, text in entries)


def _modules(mods, n):  # a list of modules, as pytest's _getconftestmodules returns them
    return list(mods)


def test_containers_holding_modules_read_as_reprs_texts() -> None:
    """Lists and tuples holding modules -- pytest's lists of conftest modules, as arguments and
    as results -- are value records whose module texts are literals made at call time (render.c
    item_text_now, from module_texts), not whole texts made at call time; a module whose text
    changes between calls (its __file__) shows the text of each call; a module whose dict holds
    a key that is not a str, one whose text names its loader, and one whose text is too long for
    an item's room keep the text path. Every text is reprs.py's, from both recorders."""
    import types

    from flowtrace.ftr.chunks import ChunkReader

    plain = types.ModuleType("conftest_like")
    plain.__file__ = "/tmp/tests/conftest.py"
    odd = types.ModuleType("odd_keys")
    odd.__dict__[1] = "not a str key"  # (its lookups could run a key's __eq__: the text path)
    loaded = types.ModuleType("with_loader")
    loaded.__loader__ = _Box()  # (no origin, a loader: its text holds the loader's)
    long_mod = types.ModuleType("m" * 80)

    def batch(call, expected):
        for i in range(10):
            plain.__file__ = f"/tmp/tests/conftest{i % 3}.py"  # (its text changes between calls)
            call(_modules, (plain,), i)
            call(_modules, (plain, struct, reprs), i)
            call(_modules, (odd, plain), i)
            call(_modules, [loaded], i)
            call(_modules, (long_mod, pytest), i)
            call(_pair, [plain, _Box], (pytest, i))

    for recorder in ("c", "python"):
        data = _recorded_as_reprs(recorder, ("_modules", "_pair"), batch)
        if recorder == "c":  # written as records: the module texts are literals in them
            entries = [e for ch in ChunkReader.from_bytes(data).poll() if ch.kind == F.STRS
                       for e in _strs_payload_entries(ch.payload)]
            assert any(rec and text.startswith("[<module 'conftest_like' from '/tmp/tests/conftest")
                       for rec, text in entries)
            assert any(rec and text.startswith("mods=(<module 'conftest_like' from") for rec, text in entries)
            assert any(rec and text.startswith("[<module 'conftest_like' from") and "<class 'test_value_records._Box'>]"
                       in text for rec, text in entries)


def _callback(fn, n):  # a bound method passed, as Signal.send(_async_wrapper=app.ensure_sync)
    return n


def _hookexec(kwargs):  # keyword arguments passed on, as pluggy's HookCaller.__call__ to _hookexec
    return len(kwargs)


class _Renamed:
    def method(self):
        pass


def test_bound_methods_and_dicts_of_tuples_passed_again_read_as_reprs_texts() -> None:
    """Bound methods passed again and again (the C recorder keeps their texts by the function's
    __qualname__ and the object's address and class label, capture.c method_text_now) and dicts
    whose values are tuples of scalars passed on from frame to frame (dict_state: the dict's
    version tag names its text): every text is reprs.py's from both recorders -- after the
    object's class is renamed or given another __module__, for another object of the class, for a
    method bound to a function, and after the dict or a tuple in it is replaced."""
    import io
    import types

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    def plain():
        pass

    for recorder in ("c", "python"):
        _Renamed.__qualname__, _Renamed.__module__ = "_Renamed", __name__
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        expected: list[tuple[str, str]] = []

        def call(fn, *args, **kwargs):
            expected.append((_args_text(fn, args, kwargs, "safe"), reprs.value_text(fn(*args, **kwargs), "safe")))

        objs = [_Renamed(), _Renamed()]
        session.start()
        try:
            for batch in range(3):
                for i in range(12):
                    o = objs[i % 2]
                    call(_callback, o.method, i)
                    call(_callback, types.MethodType(_Renamed.method, plain), i)  # (bound to a function)
                    call(_callback, Vec3(1, 2, 3).scale, i)  # (a new object each time)
                    kw = {"nodeid": f"t::{i % 3}", "location": ("t.py", i % 3, "name")}
                    for _ in range(3):
                        call(_hookexec, kw)
                    kw["location"] = ("t.py", i, "other")  # (another state: another text)
                    call(_hookexec, kw)
                    call(_hookexec, {"nodeid": "x", "location": ("t.py", 1, (2, 3))})  # (a nested tuple: rendered)
                    if i == 5:
                        _Renamed.__qualname__ = f"Renamed{batch}"
                    if i == 8:
                        _Renamed.__module__ = f"mod{batch}"
                session.flush()
        finally:
            session.stop()
        calls = [c for c in load(buf.getvalue()).calls if c.function.qualname in ("_callback", "_hookexec")]
        assert [(c.args, c.result) for c in calls] == expected, recorder
    _Renamed.__qualname__, _Renamed.__module__ = "_Renamed", __name__


def test_labels_numbered_at_call_time_belong_to_their_session() -> None:
    """The labels the C recorder numbers at call time for objects of two classes in a packed
    value (packed.c pack_label) are its session's batch's: a second session, whose first batch
    numbers other entries first, must not take the first one's indexes (the same batch number,
    the same class) -- every text is reprs.py's in both."""
    import io

    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    o, inner = _Box(), Vec3.Inner()
    for first in ([], [Vec3(1.0, 2.0, 3.0), Shape(), Long()]):
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder="c")
        session.start()
        try:
            for x in first:  # (other labels numbered first in this session's first batch)
                _pair_d({"k": 1}, (x, _Box))
            _pair_d({"k": 1}, (o, inner))
            _pair_d({"k": 2}, [inner, Shape, o])
        finally:
            session.stop()
        got = [c.args for c in load(buf.getvalue()).calls if c.function.qualname == "_pair_d"][len(first):]
        assert got == [_args_text(_pair_d, ({"k": 1}, (o, inner)), {}, "safe"),
                       _args_text(_pair_d, ({"k": 2}, [inner, Shape, o]), {}, "safe")]


def test_texts_seen_again_in_a_chunks_records_are_dictionary_entries() -> None:
    """(1.10) A str passed again and again beside a new object, a class, None: the C recorder
    writes each record made at the drain with the text once in the chunk's dictionary and a
    slot of tag 7 naming it (render.c dict_text), not the text again in every record. Every text
    is reprs.py's, from both recorders; the C recorder's chunk holds the str's text twice (in the
    first record, and as the entry the others name), not 20 times."""
    import io

    from flowtrace.ftr.chunks import ChunkReader
    from flowtrace.ftr.reader import load
    from flowtrace.session import Session

    counts: list[tuple[int, int]] = []
    text = "/a/path/that/repeats/in/every/record"
    paths: list[str] = []  # (held: each attempt's str at an address of its own)
    for recorder in ("c", "c", "c", "python"):
        # The chunk's dictionary is two-way by the slot's object (render.c dict_text): a str
        # whose set is both the class's and None's takes turns with them, and each writes its
        # text again (one address in ~250 k; direct-mapped, one in ~500 failed so). The C
        # recorder's check takes the best of three strs of the same text at other addresses.
        path = "".join(["/a/path/that/repeats/in/every/", "record"])
        paths.append(path)
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
        objs = [Shape() for _ in range(20)]
        session.start()
        try:
            for i, o in enumerate(objs):
                _lit(o, path, 0.5 + i)
                _lit(o, Shape, None)
        finally:
            session.stop()
        got = [c.args for c in load(buf.getvalue()).calls if c.function.qualname == "_lit"]
        expected = [t for i, o in enumerate(objs) for t in (_args_text(_lit, (o, path, 0.5 + i), {}, "safe"),
                                                           _args_text(_lit, (o, Shape, None), {}, "safe"))]
        assert got == expected, recorder
        if recorder == "c":
            strs = b"".join(ch.payload for ch in ChunkReader.from_bytes(buf.getvalue()).poll() if ch.kind == F.STRS)
            counts.append((strs.count(repr(text).encode()), strs.count(b"<class 'test_value_records.Shape'>")))
    # (its first record's literal, then the dictionary's entry for the 19 others)
    assert (2, 2) in counts, counts
