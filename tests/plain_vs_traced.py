"""Run a program with plain `python` and under `flowtrace run`, and compare what each did
(stdout, stderr apart from flowtrace's one closing line, exit status)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

PY = sys.executable
CLOSING = re.compile(r"^flowtrace: recorded \d+ calls? to .+\n\Z", re.M)


def run_both(args: list[str], tmp_path: pathlib.Path, *, stdin: str | None = None, cwd: pathlib.Path | None = None,
             env: dict[str, str] | None = None, options: tuple[str, ...] = ()
             ) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess, pathlib.Path]:
    """Run `python ARGS` and `python -m flowtrace run -o OUT [OPTIONS] ARGS`; return both and OUT."""
    out = tmp_path / "out.ftr"
    full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    full_env.pop("NO_COLOR", None)
    kw = dict(input=stdin, capture_output=True, text=True, cwd=cwd or tmp_path, env=full_env, timeout=60)
    plain = subprocess.run([PY, *args], **kw)
    traced = subprocess.run([PY, "-m", "flowtrace", "run", "-o", str(out), *options, *args], **kw)
    return plain, traced, out


def assert_same(plain: subprocess.CompletedProcess, traced: subprocess.CompletedProcess) -> None:
    assert traced.stdout == plain.stdout
    closing = CLOSING.search(traced.stderr)
    assert closing is not None, traced.stderr
    assert traced.stderr[: closing.start()] == plain.stderr
    assert traced.returncode == plain.returncode


def script(tmp_path: pathlib.Path, name: str, body: str) -> pathlib.Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path
