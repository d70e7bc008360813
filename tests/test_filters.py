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
