"""FUNC payloads (format.func_payload): the C extension writes the recorders' entries itself,
byte for byte what json_payload (json.dumps) writes, and leaves every other entry to json.dumps."""

from __future__ import annotations

import random

import pytest

from flowtrace.ftr import format as F
from flowtrace.recorder.common import func_entry

pytestmark = pytest.mark.skipif(F._c_func_json is None, reason="needs the C extension")


def _entry(**changes: object) -> dict:
    e = {"id": 7, "qualname": "Outer.<locals>.f", "module": "pkg.mod", "file": "/src/pkg/mod.py",
         "line": 12, "kind": "function"}
    e.update(changes)
    return e


def test_recorders_entries_give_json_dumps_bytes() -> None:
    entries = [func_entry(i + 1, code, mod) for i, (code, mod) in enumerate(
        [(_entry.__code__, __name__), (test_recorders_entries_give_json_dumps_bytes.__code__, None),
         (F.func_payload.__code__, "flowtrace.ftr.format")])]
    assert F._c_func_json(entries) == F.json_payload(entries)
    assert F.func_payload(entries) == F.json_payload(entries)
    assert F._c_func_json([]) == F.json_payload([]) == b"[]"


def test_escapes_at_every_position_and_extreme_ints() -> None:
    rng = random.Random(3)
    alphabet = "ab/._<>" + '"\\' + "".join(map(chr, range(0x20))) + "\x7f"
    for n in list(range(20)) + [63, 64, 65, 200]:
        for _ in range(6):
            texts = ["".join(rng.choice(alphabet) for _ in range(n)) for _ in range(4)]
            entries = [_entry(qualname=texts[0], module=texts[1], file=texts[2], kind=texts[3]), _entry()]
            assert F._c_func_json(entries) == F.json_payload(entries), texts
    for v in (0, 1, -1, 9, 10, 2**63 - 1, -(2**63)):
        entries = [_entry(id=v, line=v)]
        assert F._c_func_json(entries) == F.json_payload(entries), v


class _Str(str):
    pass


class _Dict(dict):
    pass


@pytest.mark.parametrize("functions", [
    [_entry(id=2**63)], [_entry(line=-(2**63) - 1)], [_entry(id=True)], [_entry(line=1.0)],
    [_entry(qualname="café")], [_entry(file="/tmp/\ud800.py")], [_entry(kind=None)], [_entry(module=_Str("m"))],
    [{**_entry(), "extra": 1}], [dict(reversed(list(_entry().items())))], [_Dict(_entry())],
    [_entry(), 5], (_entry(),), "[]",
])
def test_other_entries_are_left_to_json_dumps(functions: object) -> None:
    assert F._c_func_json(functions) is None
    if not isinstance(functions, list):
        return
    try:
        expected = F.json_payload(functions)
    except UnicodeEncodeError:  # (a lone surrogate: as before, the same error)
        with pytest.raises(UnicodeEncodeError):
            F.func_payload(functions)
    else:
        assert F.func_payload(functions) == expected


def _codes_of_every_kind() -> list:
    src = '''
def f(a, *b, c=1, **d): pass
def g(): yield 1
async def h(): pass
async def i(): yield 1
class K:
    def m(self): return lambda: [x for x in ()]
'''
    top = compile(src, "/src/kinds.py", "exec")
    todo, codes = [top], []
    while todo:
        code = todo.pop()
        codes.append(code)
        todo.extend(k for k in code.co_consts if hasattr(k, "co_code"))
    gen = next(c for c in codes if c.co_name == "g")
    codes.append(gen.replace(co_flags=gen.co_flags | 0x100))  # types.coroutine's CO_ITERABLE_COROUTINE
    codes.append(compile("x = 1", "<string>", "exec"))
    return codes


def test_the_c_recorders_entries_are_func_entrys() -> None:
    from flowtrace import _crecorder
    from flowtrace.recorder.codeinfo import KINDS

    codes = _codes_of_every_kind()
    kinds = set()
    for fid, code in enumerate(codes, 1):
        for module in ("pkg.kinds", "", None):
            mine = _crecorder.func_entry(fid, code, module)
            assert list(mine.items()) == list(func_entry(fid, code, module).items())
            kinds.add(mine["kind"])
    assert kinds == set(KINDS)
    with pytest.raises(TypeError):
        _crecorder.func_entry(1, "not code", None)
