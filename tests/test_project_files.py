"""The project's own set-up files: metadata setuptools takes without deprecation warnings, and a
`make clean` that removes everything the build and the Makefile's targets leave behind."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_license_is_an_spdx_expression():
    """A `license = { text = ... }` table makes every pip install print setuptools' deprecation
    warning (three times); the string form needs setuptools >= 77 to build."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    setuptools = [r for r in meta["build-system"]["requires"] if r.startswith("setuptools")]
    assert len(setuptools) == 1
    version = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools[0])
    assert version is not None and int(version.group(1)) >= 77


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_removes_what_the_build_leaves(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    left_behind = [".venv/bin/python", ".venv-3.12/bin/python", ".venv-3.13/pyvenv.cfg", "build/lib/x.o",
                   "dist/flowtrace-0.2.0.tar.gz", "flowtrace.egg-info/PKG-INFO", ".pytest_cache/README.md",
                   "flowtrace/_crecorder.cpython-312-x86_64-linux-gnu.so",
                   "flowtrace/_crecorder.cpython-313-x86_64-linux-gnu.so", "flowtrace/__pycache__/cli.cpython-312.pyc",
                   "tests/__pycache__/conftest.cpython-313.pyc", "demo.ftr"]
    sources = ["flowtrace/_crecorder.c", "flowtrace/cli.py", "setup.py", "tests/conftest.py", "examples/demo.py",
               ".git/objects/__pycache__/kept", "notes.ftr"]
    for name in left_behind + sources:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    proc = subprocess.run(["make", "-s", "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [n for n in left_behind if (tmp_path / n).exists()] == []
    assert [n for n in sources if not (tmp_path / n).exists()] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git", "Makefile", "examples", "flowtrace", "notes.ftr",
                                                           "setup.py", "tests"]
