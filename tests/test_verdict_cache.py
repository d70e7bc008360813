"""The C recorder keeps the filter's answers by (file name, module) (codes.c verdict_slot): code
objects met later under a kept name get the answer with no Python call. These tests hold it to
the filter's own answers where a name's code objects differ, or a name's answer changes."""

from __future__ import annotations

import fnmatch
import itertools
import os
import sysconfig

import pytest

from flowtrace.filters import CodeFilter, _compile_patterns, mark_user_code
from treeutil import record, shape

RECORDERS = ["c", "python"]
_names = itertools.count()


def _match(pattern: str, module: str, filename: str) -> bool:
    """One pattern's rule as filters.py matched it pattern by pattern (before _compile_patterns)."""
    if "/" in pattern or os.sep in pattern or pattern.endswith(".py") or pattern.startswith("<"):
        return fnmatch.fnmatchcase(filename, pattern) or fnmatch.fnmatchcase(filename, "*/" + pattern.lstrip("/"))
    if not module:
        return False
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(module, pattern) or (pattern.endswith(".*") and fnmatch.fnmatchcase(module, pattern[:-2]))
    return module == pattern or module.startswith(pattern + ".")


PATTERNS = ["json", "json.*", "json.d*", "js?n", "[jx]son", "*", "a+b", "a.b", "pkg.sub", "*.tests",
            "*/tests/test_*.py", "/srv/app/*.py", "mod.py", "<string>", "<frozen *>", "x[!a]*", "(", "a|b"]
MODULES = ["", "json", "json.decoder", "json.encoder", "jsonx", "xjson", "jsn", "xson", "a+b", "aab", "a.b",
           "a.bc", "a.b.c", "pkg.sub", "pkg.subx", "pkg.sub.t", "x.tests", "tests", "xb", "xa", "(", "a|b", "a\nb"]
FILES = ["/srv/app/mod.py", "/srv/app/tests/test_x.py", "/srv/other/mod.py", "<string>", "<frozen os>",
         "/srv/app/sub/mod.py", "relative/mod.py", "/a|b/c.py"]


def test_compiled_patterns_match_as_each_pattern_did() -> None:
    for size in (1, 2, 3):
        for patterns in itertools.combinations(PATTERNS, size) if size < 3 else zip(PATTERNS, PATTERNS[5:], PATTERNS[9:]):
            compiled = _compile_patterns(list(patterns))
            for module, filename in itertools.product(MODULES, FILES):
                expected = any(_match(p, module, filename) for p in patterns)
                assert CodeFilter._matches_any(compiled, module, filename) == expected, (patterns, module, filename)


def _defining(filename: str, module: str, name: str = "f"):
    """A function `name` compiled with file name `filename`, run in a module named `module`."""
    namespace = {"__name__": module}
    exec(compile(f"def {name}(x):\n    return x + 1\n", filename, "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("recorder", RECORDERS)
def test_one_file_under_two_module_names(recorder: str) -> None:
    """A library file's code objects run under a module name --include names and under one it
    does not: the answer kept for one name is not the other's, whichever comes first."""
    filename = os.path.join(sysconfig.get_paths()["purelib"], f"percode_fake_{next(_names)}", "mod.py")
    inside = _defining(filename, "percode_in")
    outside = _defining(filename, "percode_out")
    inside_again = _defining(filename, "percode_in", "g")

    def run() -> None:
        outside(1)
        inside(2)
        outside(3)
        inside_again(4)

    trace = record(run, recorder, include=["percode_in"])
    assert shape(trace) == ["run() = None", "  f(x=2) = 3", "  g(x=4) = 5"]
    assert {(f.qualname, f.module) for f in trace.functions.values() if f.file == filename} == {
        ("f", "percode_in"), ("g", "percode_in")}


@pytest.mark.parametrize("recorder", RECORDERS)
def test_code_marked_after_its_name_was_answered(recorder: str) -> None:
    """Generated code's name is answered "not recorded" and the C recorder keeps that; code of
    the same file name marked as user code later (pytest's phase functions are marked while
    `flowtrace run --include '*' -m pytest` records) is recorded, the unmarked code still not."""
    filename = f"<percode {next(_names)}>"
    before = _defining(filename, "m")
    later = {"__name__": "m"}

    def run() -> None:
        before(1)
        code = compile("def marked(x):\n    return x * 2\n", filename, "exec")
        mark_user_code(code)
        exec(code, later)
        later["marked"](2)
        _defining(filename, "m", "unmarked")(3)
        before(4)

    trace = record(run, recorder)
    assert [line for line in shape(trace) if "(x=" in line] == ["  marked(x=2) = 4"]


def test_kept_answers_are_answers() -> None:
    """The hook's answers the C side keeps by name come back as they were given: no error is
    counted for a kept exclusion, and one file's recorded and excluded names both hold."""
    from flowtrace.recorder.base import RecorderConfig
    from flowtrace.recorder.c import CRecorder

    filename = os.path.join(sysconfig.get_paths()["purelib"], f"percode_fake_{next(_names)}", "mod.py")
    funcs = [_defining(filename, module, name) for module in ("percode_in", "percode_out") for name in "fgh"]
    rec = CRecorder(RecorderConfig(include=["percode_in"]))
    rec.start()
    try:
        for f in funcs * 2:
            f(1)
    finally:
        rec.stop()
    batch = rec.drain()
    assert rec.stats()["errors"] == 0
    assert [(e["qualname"], e["module"]) for e in batch.functions] == [("f", "percode_in"), ("g", "percode_in"),
                                                                       ("h", "percode_in")]
