"""A C recorder that is built but cannot be used (a stale build whose constants disagree with
the Python sources, an unloadable .so) is not replaced SILENTLY by the 20-80x slower Python
recorder: `flowtrace run` says so once on stderr (what failed, that the Python recorder
records, how to rebuild), and the program's stdout and exit code stay its own. A deliberate
FLOWTRACE_RECORDER=python says nothing; so does a pure install (no extension built: setup.py
warned at install time and `flowtrace --version` names it).

Each case runs the real command on a copy of the package (PYTHONPATH, ahead of the installed
one) in which the build was made stale, unloadable or removed."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from flowtrace.ftr.reader import load

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "flowtrace"
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # this interpreter's (.cpython-312-x86_64-linux-gnu.so)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("flowtrace._crecorder") is None,
                                reason="the C recorder is not built")

PROGRAM = """\
import subprocess, sys

def greet(name):
    return f"hello {name}"

print(greet("you"), flush=True)
subprocess.run([sys.executable, "-c", "print('child')"], check=True)
sys.exit(3)
"""


TREE = [("<module>", None, None, "raise"), ("  greet", "name='you'", "'hello you'", "return")]


def package_copy(root: pathlib.Path, how: str) -> pathlib.Path:
    """A copy of flowtrace under `root` whose C build is `how`: "stale" (the Python side's
    MAX_TEXT changed after the build), "unloadable" (not a shared object) or "absent"."""
    copy = root / "flowtrace"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PACKAGE.parent / "setup.py", root)  # a source checkout: where the build is rebuilt
    built = copy / f"_crecorder{SUFFIX}"
    assert built.exists()
    if how == "stale":
        reprs = copy / "reprs.py"
        reprs.write_text(reprs.read_text().replace("\nMAX_TEXT = 240\n", "\nMAX_TEXT = 239\n", 1))
    elif how == "unloadable":
        built.write_bytes(b"not a shared object\n")
    else:
        for so in copy.glob("_crecorder*.so"):
            so.unlink()
    return root


def run(tmp_path: pathlib.Path, how: str, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "FLOWTRACE_RECORDER"}
    full.update(env or {})
    full["PYTHONPATH"] = str(package_copy(tmp_path / "pkg", how))
    # -S: no site-packages, where an editable install's finder would still find the worktree's
    # own build (flowtrace's commands need only the standard library)
    return subprocess.run([sys.executable, "-S", "-m", "flowtrace", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=full, timeout=120)


def recorded(tmp_path: pathlib.Path) -> list[tuple[str, str | None, str | None, str]]:
    trace = load(tmp_path / "out.ftr")
    assert trace.meta["recorder"] == "python"
    return [("  " * d + c.qualname, c.args or None, c.result, c.end) for c, d in trace.walk()]


@pytest.mark.parametrize("how, failure", [
    ("stale", "flowtrace._crecorder disagrees with the Python side (MAX_TEXT: C 240 vs Python 239); rebuild it"),
    ("unloadable", "ImportError: "),
])
def test_a_broken_build_is_told_once_and_the_program_is_unchanged(tmp_path: pathlib.Path, how: str,
                                                                  failure: str) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    plain = subprocess.run([sys.executable, "prog.py"], capture_output=True, text=True, cwd=tmp_path)
    assert (plain.returncode, plain.stdout, plain.stderr) == (3, "hello you\nchild\n", "")
    proc = run(tmp_path, how, "run", "-o", "out.ftr", "prog.py")
    assert (proc.returncode, proc.stdout) == (3, plain.stdout)
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr  # the warning's two lines (the followed child's part says nothing), the end
    what, instead, end = lines
    assert what.startswith("flowtrace: warning: the C recorder cannot be used: ") and failure in what
    if how == "unloadable":
        assert str(tmp_path / "pkg" / "flowtrace" / f"_crecorder{SUFFIX}") in what
    assert instead.startswith("flowtrace: warning: recording with the pure-Python recorder instead (20-80x slower")
    assert f"rebuild it: cd {tmp_path / 'pkg'} && {sys.executable} setup.py build_ext --inplace" in instead
    assert "FLOWTRACE_RECORDER=python" in instead
    assert end.startswith("flowtrace: recorded ") and end.endswith(" calls to out.ftr, and 1 child process in out.ftr.d/"), end
    assert recorded(tmp_path) == TREE


def test_a_deliberate_python_recorder_says_nothing(tmp_path: pathlib.Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    proc = run(tmp_path, "stale", "run", "-o", "out.ftr", "prog.py", env={"FLOWTRACE_RECORDER": "python"})
    assert (proc.returncode, proc.stdout) == (3, "hello you\nchild\n")
    assert [line for line in proc.stderr.splitlines() if not line.startswith("flowtrace: recorded ")] == []
    assert recorded(tmp_path) == TREE


def test_asking_for_a_broken_c_recorder_is_a_one_line_error_that_says_why(tmp_path: pathlib.Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    proc = run(tmp_path, "stale", "run", "-o", "out.ftr", "prog.py", env={"FLOWTRACE_RECORDER": "c"})
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("flowtrace: error: cannot start recording: the C recorder cannot be used: ")
    assert "MAX_TEXT: C 240 vs Python 239" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_a_pure_install_records_quietly_and_its_version_says_why(tmp_path: pathlib.Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    proc = run(tmp_path, "absent", "run", "-o", "out.ftr", "prog.py")
    assert (proc.returncode, proc.stdout) == (3, "hello you\nchild\n")
    assert [line for line in proc.stderr.splitlines() if not line.startswith("flowtrace: recorded ")] == []
    assert recorded(tmp_path) == TREE
    (tmp_path / "v").mkdir()
    version = run(tmp_path / "v", "absent", "--version")
    assert version.returncode == 0 and version.stderr == ""
    assert "(recorder: python (the C recorder is not built), Python " in version.stdout


def test_version_names_a_broken_build(tmp_path: pathlib.Path) -> None:
    proc = run(tmp_path, "stale", "--version")
    assert proc.returncode == 0 and proc.stderr == ""
    assert "(recorder: python (the C recorder cannot be used: ImportError: flowtrace._crecorder disagrees" \
        in proc.stdout


def test_the_pytest_plugin_says_it_once_in_its_summary(tmp_path: pathlib.Path) -> None:
    (tmp_path / "test_two.py").write_text("def add(a, b):\n    return a + b\n\n"
                                          "def test_one():\n    assert add(1, 2) == 3\n\n"
                                          "def test_two():\n    assert add(2, 2) == 5\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FLOWTRACE_RECORDER", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(package_copy(tmp_path / "pkg", "stale"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "--flowtrace", "test_two.py"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 1 passed" in proc.stdout
    said = [line for line in proc.stdout.splitlines() if line.startswith("flowtrace: warning: ")]
    assert len(said) == 2, proc.stdout
    assert said[0].startswith("flowtrace: warning: the C recorder cannot be used: ImportError: ")
    assert said[1].startswith("flowtrace: warning: recording with the pure-Python recorder instead")
    kept = load(next((tmp_path / ".flowtrace").glob("*.ftr")))
    assert kept.meta["recorder"] == "python"
