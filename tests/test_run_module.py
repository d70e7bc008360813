"""`flowtrace run -m NAME args` does what `python -m NAME args` does (runpy._run_module_as_main),
in the same order, and records it: the parent packages are imported while recording, with
`sys.argv == ['-m', args…]` as Python has it then; runpy then puts the module's path in
`sys.argv[0]` and runs it as `__main__`. A module run that way counts under its own name for
`--include`/`--exclude`, so an included library module's `__main__` body is the root of the
calls it makes."""

from __future__ import annotations

import pathlib

import pytest
from plain_vs_traced import assert_same, run_both, script
from treeutil import check_balanced, shape

from flowtrace.ftr.reader import load

PKG_INIT = """
import sys
def setup():
    return len(sys.argv)
print("init argv", sys.argv, "main file", sys.modules["__main__"].__dict__.get("__file__"),
      "main spec", sys.modules["__main__"].__spec__, "setup", setup())
"""
PKG_MAIN = """
import sys
from . import helper
def main():
    return helper.twice(len(sys.argv))
print("main argv", sys.argv, __name__, __spec__.name, main())
"""
HELPER = """
print("helper imported")
def twice(n):
    return 2 * n
"""


@pytest.fixture
def pkg(tmp_path: pathlib.Path) -> pathlib.Path:
    script(tmp_path, "pkg/__init__.py", PKG_INIT)
    script(tmp_path, "pkg/__main__.py", PKG_MAIN)
    script(tmp_path, "pkg/helper.py", HELPER)
    return tmp_path


def test_package_imported_while_recording_with_pythons_argv(pkg: pathlib.Path, recorder_name: str) -> None:
    plain, traced, out = run_both(["-m", "pkg", "a", "b"], pkg, env={"FLOWTRACE_RECORDER": recorder_name})
    assert plain.stdout.splitlines()[0] == "init argv ['-m', 'a', 'b'] main file None main spec None setup 3"
    assert f"main argv ['{pkg}/pkg/__main__.py', 'a', 'b'] __main__ pkg.__main__ 6" in plain.stdout
    assert_same(plain, traced)
    trace = load(out)
    check_balanced(trace)
    assert shape(trace) == [
        "<module>() = None",  # pkg/__init__.py, imported by runpy
        "  setup() = 3",
        "<module>() = None",  # pkg/__main__.py, run as __main__
        "  <module>() = None",  # pkg/helper.py
        "  main() = 6",
        "    twice(n=3) = 6",
    ]
    assert [c.function.file for c in trace.calls if c.qualname == "<module>"] == [
        f"{pkg}/pkg/__init__.py", f"{pkg}/pkg/__main__.py", f"{pkg}/pkg/helper.py"]
    assert trace.meta["argv"] == ["-m", "pkg", "a", "b"]


@pytest.mark.parametrize("name", ["pkg.nope", "emptypkg", "broken"])
def test_errors_found_by_runpy_read_as_pythons(pkg: pathlib.Path, name: str) -> None:
    """A missing submodule, a package without __main__, a package whose import raises: the
    packages' code runs (recorded) and Python's own message and status follow."""
    script(pkg, "emptypkg/__init__.py", "print('emptypkg imported')\n")
    script(pkg, "broken/__init__.py", "def fail():\n    raise ValueError('no')\nfail()\n")
    plain, traced, out = run_both(["-m", name], pkg)
    assert plain.returncode == 1
    assert_same(plain, traced)
    names = [c.qualname for c in load(out).calls]
    assert names == {"pkg.nope": ["<module>", "setup"], "emptypkg": ["<module>"], "broken": ["<module>", "fail"]}[name]


def test_missing_top_level_module_is_ours_before_recording(tmp_path: pathlib.Path) -> None:
    _plain, traced, out = run_both(["-m", "no_such_module_xyz"], tmp_path)
    assert traced.returncode == 1 and traced.stderr == "flowtrace: error: no module named no_such_module_xyz\n"
    assert not out.exists()


def test_included_library_module_main_body_is_the_root(tmp_path: pathlib.Path, recorder_name: str) -> None:
    """`--include json -m json.tool`: json.tool's code runs as __main__ and counts as json.tool
    (before: the filter saw only "__main__", left the body out and main() became a root)."""
    data = script(tmp_path, "in.json", '{"k": [1]}\n')
    plain, traced, out = run_both(["-m", "json.tool", "--compact", str(data)], tmp_path,
                                  env={"FLOWTRACE_RECORDER": recorder_name})
    traced_include, out2 = _run_include(tmp_path, recorder_name, ["--include", "json", "-m", "json.tool",
                                                                  "--compact", str(data)])
    assert plain.stdout == '{"k":[1]}\n'
    assert_same(plain, traced)
    assert_same(plain, traced_include)
    default = load(out)  # the program json.tool (run as __main__) is recorded; json's other modules are not
    assert [(c.qualname, c.function.module) for c in default.calls] == [("<module>", "__main__"), ("main", "__main__")]
    trace = load(out2)
    check_balanced(trace)
    roots = [(c.qualname, c.function.module, c.function.file.endswith("json/tool.py")) for c in trace.roots]
    assert roots == [("<module>", "__main__", True)]
    assert [c.qualname for c in trace.calls[:3]] == ["<module>", "main", "load"]
    _traced, out3 = _run_include(tmp_path, recorder_name, ["--include", "json", "--exclude", "json.tool",
                                                           "-m", "json.tool", str(data)])
    assert "<module>" not in [c.qualname for c in load(out3).calls]


LIB_TOOL = """
import sys
from libpkg import helper
def main(args):
    return helper.twice(len(args))
if __name__ == "__main__":
    print("tool", main(sys.argv[1:]))
"""


@pytest.mark.parametrize("how", ["module", "script"])
def test_a_program_that_lives_in_site_packages_is_recorded(tmp_path: pathlib.Path, recorder_name: str,
                                                           how: str) -> None:
    """The program the user names is theirs wherever its file lies: `-m libpkg.tool`, or the
    script path, in a site-packages directory records its own code (it recorded nothing: the
    whole program was library code); the library module it imports stays out by default."""
    lib = tmp_path / "site-packages"
    script(lib, "libpkg/__init__.py", "")
    script(lib, "libpkg/helper.py", "def twice(n):\n    return 2 * n\n")
    tool = script(lib, "libpkg/tool.py", LIB_TOOL)
    args = ["-m", "libpkg.tool", "a", "b"] if how == "module" else [str(tool), "a", "b"]
    plain, traced, out = run_both(args, tmp_path, env={"FLOWTRACE_RECORDER": recorder_name, "PYTHONPATH": str(lib)})
    assert plain.stdout == "tool 4\n"
    assert_same(plain, traced)
    trace = load(out)
    check_balanced(trace)
    assert shape(trace) == ["<module>() = None", "  main(args=['a', 'b']) = 4"]
    assert {c.function.file for c in trace.calls} == {str(tool)}


@pytest.mark.parametrize("how, options, note", [
    ("module", (), " (libpkg is library code: of it, only the module run as __main__ was recorded;"
                   " --include libpkg records all of it)"),
    ("module", ("--include", "libpkg"), ""),
    ("script", (), ""),
])
def test_the_end_line_says_when_a_library_program_was_recorded_only_in_part(
        tmp_path: pathlib.Path, how: str, options: tuple[str, ...], note: str) -> None:
    """`flowtrace run -m libpkg.tool` of a library package records only the module run as
    __main__ (`-m pip list`: "recorded 1 call", and nothing said why): the end line says so and
    how to record the rest; not once --include is given, nor for a script (its imports are
    visibly other files)."""
    lib = tmp_path / "site-packages"
    script(lib, "libpkg/__init__.py", "")
    script(lib, "libpkg/helper.py", "def twice(n):\n    return 2 * n\n")
    tool = script(lib, "libpkg/tool.py", LIB_TOOL)
    args = ["-m", "libpkg.tool", "a"] if how == "module" else [str(tool), "a"]
    plain, traced, out = run_both(args, tmp_path, env={"PYTHONPATH": str(lib)}, options=options)
    assert_same(plain, traced)
    calls = 5 if options else 2  # <module>, main (included: libpkg's and helper's <module>, twice too)
    assert traced.stderr.splitlines()[-1] == f"flowtrace: recorded {calls} calls to {out}{note}"


def _run_include(tmp_path: pathlib.Path, recorder: str, args: list[str]) -> tuple:
    import os
    import subprocess
    import sys

    out = tmp_path / "inc.ftr"
    env = {**os.environ, "FLOWTRACE_RECORDER": recorder, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("NO_COLOR", None)
    proc = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", str(out), *args], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=60)
    return proc, out
