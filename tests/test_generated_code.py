"""Code compiled from a string is recorded by its file name alone (filters.py, README
`--include`): `<string>` code -- `exec` in a module's namespace, dataclass methods, namedtuple
`__new__` -- is not recorded by default nor by `--include` of the module whose namespace it runs
in; `--include '<string>'` records it; `--exclude` still removes it. Both recorders."""

from __future__ import annotations

import importlib
import pathlib
import re
import sys

import pytest
from treeutil import check_balanced, record, shape

MODULE = '''
import collections, dataclasses
P = collections.namedtuple("P", "x y")
@dataclasses.dataclass
class D:
    a: int
exec("def made(v):\\n    return real(v)\\n", globals())
def real(v):
    return v + 1
def run():
    return P(1, 2).x + D(3).a + made(4)
'''


@pytest.fixture
def genmod(tmp_path: pathlib.Path):
    (tmp_path / "genmod_fixture.py").write_text(MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("genmod_fixture")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("genmod_fixture", None)


@pytest.mark.parametrize("include", [[], ["genmod_fixture"], ["genmod_*"]])
def test_generated_code_in_a_module_namespace_is_not_recorded(genmod, recorder_name: str, include: list[str]) -> None:
    trace = record(genmod.run, recorder_name, include=include)
    check_balanced(trace)
    # D.__init__ and P.__new__ (generated) and made() (exec'd) are left out; real() called by
    # made() hangs from run()
    assert shape(trace) == ["run() = 9", "  real(v=4) = 5"]


def test_include_string_records_generated_code(genmod, recorder_name: str) -> None:
    trace = record(genmod.run, recorder_name, include=["<string>"])
    check_balanced(trace)
    assert [re.sub(r"0x[0-9a-f]+", "0x…", line) for line in shape(trace)] == [
        "run() = 9",
        "  <lambda>(_cls=<class 'genmod_fixture.P'>, x=1, y=2) = <genmod_fixture.P object at 0x…>",  # P.__new__
        "  __init__(self=<genmod_fixture.D object at 0x…>, a=3) = None",  # D.__init__
        "  made(v=4) = 5",
        "    real(v=4) = 5",
    ]
    assert {f.file for f in trace.functions.values() if f.qualname != "run" and f.qualname != "real"} == {"<string>"}


def test_exclude_wins_over_include_string(genmod, recorder_name: str) -> None:
    # exclude matches by module too: the code exec'd in genmod_fixture's namespace goes, and so
    # does everything there; namedtuple's __new__ runs in a namespace of its own
    trace = record(genmod.run, recorder_name, include=["<string>"], exclude=["genmod_fixture"])
    assert [line.split("(")[0] for line in shape(trace)] == ["<lambda>"]
    trace = record(genmod.run, recorder_name, include=["<string>"], exclude=["<str*>"])
    assert shape(trace) == ["run() = 9", "  real(v=4) = 5"]
