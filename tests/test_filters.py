"""Which code is recorded: user code by default, include/exclude globs."""

from __future__ import annotations

import json
import os

from flowtrace.filters import CodeFilter
from treeutil import record, shape


def user():
    return 1


def code_at(filename: str, name: str = "f"):
    return compile(f"def {name}(): pass", filename, "exec")


def test_default_rules():
    flt = CodeFilter()
    assert flt.wants(user.__code__, __name__)
    assert not flt.wants(json.dumps.__code__, "json")
    assert not flt.wants(os.path.join.__code__, "posixpath")
    assert not flt.wants(code_at("<string>"), "x")
    assert not flt.wants(code_at("<frozen importlib._bootstrap>"), "importlib._bootstrap")
    assert flt.wants(code_at("<stdin>"), "__main__")
    import flowtrace.session

    assert not flt.wants(flowtrace.session.Session.start.__code__, "flowtrace.session")
    import pytest

    assert not flt.wants(pytest.main.__code__, "_pytest.config")  # site-packages


def test_include_and_exclude_patterns():
    flt = CodeFilter(include=["json"], exclude=["test_filters"])
    assert flt.wants(json.dumps.__code__, "json")
    assert not flt.wants(user.__code__, "test_filters")
    flt = CodeFilter(include=["json.*"])  # the package itself too, as `json` does
    assert flt.wants(json.dumps.__code__, "json") and flt.wants(json.dumps.__code__, "json.encoder")
    assert not flt.wants(json.dumps.__code__, "jsonx") and not flt.wants(json.dumps.__code__, "xjson")
    flt = CodeFilter(include=["json.d*"])  # only the submodules it names
    assert not flt.wants(json.dumps.__code__, "json") and flt.wants(json.dumps.__code__, "json.decoder")
    assert not flt.wants(json.dumps.__code__, "json.encoder")
    assert not CodeFilter(include=["json"], exclude=["json.*"]).wants(json.dumps.__code__, "json")
    flt = CodeFilter(exclude=["*/tests/test_filt*.py"])
    assert not flt.wants(user.__code__, __name__)
    flt = CodeFilter(exclude=["test_*"])
    assert not flt.wants(user.__code__, "test_filters")
    assert CodeFilter(include=["<string>"]).wants(code_at("<string>"), "m")  # a pseudo file name
    # generated code goes by its file name alone, not by the namespace it was exec'd in
    assert not CodeFilter(include=["m"]).wants(code_at("<string>"), "m")
    assert CodeFilter(include=["importlib"]).wants(code_at("<frozen importlib._bootstrap>"), "importlib._bootstrap")


def encode():
    return json.dumps({"a": 1})


def test_include_library_module(recorder_name):
    trace = record(encode, recorder_name, include=["json"])
    names = [line.strip().split("(")[0] for line in shape(trace)]
    assert names[:3] == ["encode", "dumps", "JSONEncoder.encode"]
    assert shape(record(encode, recorder_name, include=["json.*"])) == shape(trace)  # json.dumps is in `json`
    trace = record(encode, recorder_name)
    assert shape(trace) == ["encode() = '{\"a\": 1}'"]


def test_verdicts_kept_per_name_stay_right(tmp_path, monkeypatch):
    """CodeFilter keeps what its rules say per file name (and module); what they say of single
    code objects (marked user code, the launcher), of relative file names (the working
    directory) and of __main__ (its spec name) is worked out at every ask."""
    import sys
    import types

    from flowtrace import filters

    monkeypatch.setattr(filters, "_USER_CODES", {})
    monkeypatch.setattr(filters, "_USER_FILES", set())
    monkeypatch.setattr(filters, "_INTERNAL_CODES", {})
    monkeypatch.setattr(filters, "_INTERNAL_FILES", set())
    flt = CodeFilter()
    # two code objects of one pseudo file: only the marked one is user code, whichever comes first
    unmarked, marked = code_at("<string>"), code_at("<string>", "g")
    filters.mark_user_code(marked)
    assert not flt.wants(unmarked, "m") and flt.wants(marked, "m") and not flt.wants(unmarked, "m")
    assert flt.is_own(marked) and not flt.is_own(unmarked)
    # two of one user file: the one marked internal is never recorded
    mine, launcher = code_at(__file__), code_at(__file__, "g")
    assert flt.wants(launcher, __name__)
    filters.mark_internal_code(launcher)
    assert flt.wants(mine, __name__) and not flt.wants(launcher, __name__) and flt.wants(mine, __name__)
    # a relative file name is decided where the program is now
    rel = code_at("rel_mod.py")
    monkeypatch.chdir(os.path.dirname(os.__file__))  # the standard library
    assert not flt.wants(rel, "rel_mod") and not flt.is_user_code("rel_mod.py")
    monkeypatch.chdir(tmp_path)
    assert flt.wants(rel, "rel_mod") and flt.is_user_code("rel_mod.py")
    # __main__ matches by its spec name too, which changes as the program starts
    excl = CodeFilter(exclude=["pkg.tool"])
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name="pkg.tool")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert not excl.wants(user.__code__, "__main__")
    main.__spec__ = types.SimpleNamespace(name="other")
    assert excl.wants(user.__code__, "__main__")
    # kept verdicts are bounded: the table starts again when full
    monkeypatch.setattr(filters, "_KEPT_MAX", 8)
    for i in range(20):
        assert not flt.wants(code_at(f"<gen {i}>"), "m")
        assert len(flt._verdicts) <= 8
    assert flt.wants(user.__code__, __name__) and not flt.wants(json.dumps.__code__, "json")
