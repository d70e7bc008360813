"""`flowtrace run -c CODE` records the program's own functions (its code is `<string>`, like
generated code, but the runner marks exactly the code objects it compiled) and nothing else
named `<string>`: namedtuple/dataclass methods and `exec`'d strings stay unrecorded. Tracebacks
keep Python's own text (`File "<string>", line N`)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from treeutil import check_balanced, shape

from flowtrace.ftr.reader import load

PROGRAM = '''\
import collections, dataclasses
P = collections.namedtuple("P", "x y")
@dataclasses.dataclass
class D:
    a: int
    def double(self):
        def twice(v):
            return v * 2
        return twice(self.a)
def add(a, b):
    return a + b
def outer(n):
    inner = lambda k: add(k, 1)
    return [inner(i) for i in range(n)]
exec("def made():\\n    return add(0, 0)\\n", globals())
p = P(1, 2)
d = D(3)
print(outer(2), d.double(), made(), p.x)
'''


def run(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLOWTRACE_RECORDER": "python"}
    return subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", str(tmp_path / "t.ftr"), *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def lines(tmp_path: pathlib.Path) -> list[str]:
    trace = load(tmp_path / "t.ftr")
    check_balanced(trace)
    return [re.sub(r"0x[0-9a-f]+", "0x…", line) for line in shape(trace)]


def test_c_code_functions_are_recorded_generated_string_code_is_not(tmp_path: pathlib.Path) -> None:
    proc = run(tmp_path, "-c", PROGRAM)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[1, 2] 6 0 1\n"
    # D's __init__ (dataclasses), P.__new__ (namedtuple) and made() (exec) are "<string>" code
    # not compiled by the runner: unrecorded, so add() under made() hangs from <module>.
    assert lines(tmp_path) == [
        "<module>() = None",
        "  D() = None",
        "  outer(n=2) = [1, 2]",
        "    <lambda>(k=0) = 1",
        "      add(a=0, b=1) = 1",
        "    <lambda>(k=1) = 2",
        "      add(a=1, b=1) = 2",
        "  D.double(self=<__main__.D object at 0x…>) = 6",
        "    twice(v=3) = 6",
        "  add(a=0, b=0) = 0",
    ]
    functions = {(f.qualname, f.file, f.module) for f in load(tmp_path / "t.ftr").functions.values()}
    assert ("outer.<locals>.<lambda>", "<string>", "__main__") in functions


def test_include_string_still_records_generated_code(tmp_path: pathlib.Path) -> None:
    proc = run(tmp_path, "--include", "<string>", "-c", "exec('def g(x):\\n    return x\\n'); g(4)")
    assert proc.returncode == 0, proc.stderr
    assert lines(tmp_path) == ["<module>() = None", "  <module>() = None", "  g(x=4) = 4"]


def test_c_code_traceback_text_unchanged(tmp_path: pathlib.Path) -> None:
    code = "def f(x):\n    return 1 / x\nf(0)\n"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    traced = run(tmp_path, "-c", code)
    assert plain.returncode == traced.returncode == 1
    assert 'File "<string>", line 2, in f' in plain.stderr
    assert traced.stderr.startswith(plain.stderr), traced.stderr
    assert lines(tmp_path) == ["<module>() ! ZeroDivisionError: division by zero",
                               "  f(x=0) ! ZeroDivisionError: division by zero"]


@pytest.mark.parametrize("recorder", ["c", "python"])
@pytest.mark.parametrize("program", [["-c", "def f():\n    return 1\nf()\n"], ["-m", "json.tool", "--help"]])
def test_include_all_records_the_program_not_flowtraces_own_imports(
        tmp_path: pathlib.Path, recorder: str, program: list[str]) -> None:
    # flowtrace's own imports while recording (follow, untraced, filters, relative ones through
    # ModuleSpec.parent) ran importlib's Python code, which --include '*' recorded: ~190 calls
    # ahead of the program in every session.
    env = {**os.environ, "FLOWTRACE_RECORDER": recorder}
    proc = subprocess.run([sys.executable, "-m", "flowtrace", "run", "--include", "*", "-o", str(tmp_path / "t.ftr"),
                           *program], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    roots = [line for line in lines(tmp_path) if not line.startswith(" ")]
    first = "<module>()" if program[0] == "-c" else "_run_module_as_main(mod_name='json.tool', alter_argv=True)"
    assert roots[0].startswith(first), roots[:5]
    assert not [line for line in lines(tmp_path) if "flowtrace" in line], roots[:5]
