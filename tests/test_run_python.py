"""`flowtrace run --python PYTHON` (flowtrace/interpreters.py): the program runs under another
interpreter -- here the venv's base Python, where flowtrace is not installed -- exactly as that
interpreter runs it, recorded by this flowtrace; its children are followed too. The program's
first word naming an interpreter means the same (`flowtrace run .venv/bin/python -m app`)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from flowtrace import interpreters
from flowtrace.ftr.processes import session_processes
from flowtrace.ftr.reader import load
from plain_vs_traced import CLOSING

PY = sys.executable
BASE_PY = os.path.realpath(getattr(sys, "_base_executable", sys.executable))  # no flowtrace there
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(interpreters.__file__)))
OLD_PY = "/usr/bin/python3"  # a Python older than 3.12 (3.11 here), when the machine has it

PROGRAM = """
import os, subprocess, sys
def where():
    return sys.prefix == sys.base_prefix, "flowtrace" in sys.modules
def child():
    return subprocess.run([sys.executable, "-c", "def hi():\\n    return 'hi'\\nprint(hi())"]).returncode
print(where(), child(), [p for p in sys.path if p == {root!r}], sys.path[0] == os.path.dirname(__file__))
sys.exit(3)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_")}
    env.pop("PYTHONPATH", None)  # (so that BASE_PY cannot import flowtrace on its own)
    return env


def _program(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(PROGRAM.format(root=ROOT)))
    return path


def _run(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "flowtrace", "run", "-o", str(tmp_path / "t.ftr"), *args],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=60)


def _tree(path: str) -> list[str]:
    return [("  " * d) + f"{c.qualname}({c.args}) -> {c.result}" for c, d in load(path).walk()]


@pytest.mark.parametrize("how", ["option", "first word"])
def test_the_program_runs_under_the_other_python(tmp_path: pathlib.Path, how: str) -> None:
    if subprocess.run([BASE_PY, "-c", "import flowtrace"], env=_env(), cwd=tmp_path, capture_output=True).returncode == 0:
        pytest.skip(f"{BASE_PY} has a flowtrace of its own")
    prog = _program(tmp_path)
    plain = subprocess.run([BASE_PY, str(prog)], capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=60)
    assert plain.returncode == 3
    args = ["--python", BASE_PY, str(prog)] if how == "option" else [BASE_PY, str(prog)]
    traced = _run(tmp_path, *args)
    # the program's own view: its interpreter's prefix, no flowtrace path on sys.path, sys.path[0]
    # its directory; only "flowtrace" in sys.modules differs (it records the program)
    assert plain.stdout == "hi\n(True, False) 0 [] True\n"
    assert traced.stdout == "hi\n(True, True) 0 [] True\n"
    assert CLOSING.sub("", traced.stderr) == plain.stderr == ""
    assert traced.returncode == 3
    root, child = session_processes(str(tmp_path / "t.ftr"))
    assert root.status() == "exit 3" and child.status() == "exit 0" and child.ppid == root.pid
    assert _tree(root.path) == [
        "<module>() -> None",
        "  where() -> (True, True)",
        "  child() -> 0",
    ]
    assert _tree(child.path) == ["<module>() -> None", "  hi() -> 'hi'"]


def test_what_cannot_run_says_so_in_one_line(tmp_path: pathlib.Path) -> None:
    prog = _program(tmp_path)
    missing = _run(tmp_path, "--python", "no-such-python3", str(prog))
    assert (missing.returncode, missing.stderr) == (2, "flowtrace: error: --python no-such-python3: no such interpreter\n")
    plain_file = tmp_path / "python3"
    plain_file.write_text("print('not run')\n")
    not_exe = _run(tmp_path, "--python", str(plain_file), str(prog))
    assert (not_exe.returncode, not_exe.stderr) == (2, f"flowtrace: error: --python {plain_file}: not an executable file\n")
    assert not (tmp_path / "t.ftr").exists()


def test_an_older_python_says_why(tmp_path: pathlib.Path) -> None:
    if not os.path.exists(OLD_PY) or subprocess.run([OLD_PY, "-c", "import sys; sys.exit(sys.version_info >= (3, 12))"]).returncode:
        pytest.skip(f"no Python older than 3.12 at {OLD_PY}")
    prog = _program(tmp_path)
    old = _run(tmp_path, "--python", OLD_PY, str(prog))
    assert old.returncode == 2 and old.stdout == ""
    assert old.stderr.startswith(f"flowtrace: error: {OLD_PY}") or old.stderr.startswith("flowtrace: error: /")
    assert old.stderr.endswith(": flowtrace records Python 3.12 and later\n") and old.stderr.count("\n") == 1
    # and flowtrace itself on that Python's path: one line, not a traceback
    direct = subprocess.run([OLD_PY, "-m", "flowtrace", "run", str(prog)], capture_output=True, text=True,
                            cwd=tmp_path, env={**_env(), "PYTHONPATH": ROOT}, timeout=60)
    assert direct.returncode == 2 and direct.stdout == ""
    assert direct.stderr.startswith("flowtrace: error: flowtrace needs Python 3.12 or later; this is Python 3.")
    assert direct.stderr.count("\n") == 1


@pytest.mark.parametrize("word, expected", [
    ("prog.py", False),          # a script
    ("python3", False),          # a Python script named like an interpreter (no exec bit)
    ("launcher/python3", True),  # a launcher script (pyenv's shims)
    ("tool/python3", False),     # an executable Python script named python3
    ("bin/python", True),        # the interpreter itself (a symlink to it, as in a venv)
    ("direct/python3", False),   # `#!/usr/bin/python3 -E` Python script
    ("blank/python3", True),     # `#!` and nothing: not a Python program
])
def test_what_counts_as_an_interpreter(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                                       word: str, expected: bool) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prog.py").write_text("print(1)\n")
    (tmp_path / "python3").write_text("print(1)\n")
    for name, text in (("launcher/python3", "#!/usr/bin/env bash\nexec python3.12 \"$@\"\n"),
                       ("tool/python3", "#!/usr/bin/env python3\nprint(1)\n"),
                       ("direct/python3", "#!/usr/bin/python3 -E\nprint(1)\n"),
                       ("blank/python3", "#!/usr/bin/ \nexit 1\n")):
        (tmp_path / name).parent.mkdir()
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(BASE_PY)
    assert interpreters.is_interpreter(word) is expected


def test_tui_run_passes_the_interpreter_on() -> None:
    from flowtrace.commands import run as run_cmd
    from flowtrace_tui.cli import parse_run_args

    args, trailing = parse_run_args(["--python", BASE_PY, "--no-args", "app.py", "--python", "x"])
    assert trailing == ["app.py", "--python", "x"]
    argv = run_cmd.recording_argv(args)
    assert argv[argv.index("--python") + 1] == BASE_PY and argv.count("--python") == 1


def test_a_note_when_no_c_recorder_is_built_for_that_python(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import flowtrace.cli
    import flowtrace.recorder

    monkeypatch.delenv("FLOWTRACE_RECORDER", raising=False)
    monkeypatch.setattr(flowtrace.cli, "main", lambda argv: len(argv))
    monkeypatch.setattr(flowtrace.recorder, "available_recorders", lambda: ["python"])
    monkeypatch.setattr(flowtrace.recorder, "c_recorder_problem", lambda: None)
    assert interpreters.borrowed(["run", "x.py"]) == 2
    v = sys.version_info
    assert capsys.readouterr().err == (f"flowtrace: note: no C recorder is built for Python {v.major}.{v.minor} in "
                                       f"{os.path.dirname(interpreters.__file__)}: the Python recorder records (20-80x slower)\n")
    monkeypatch.setattr(flowtrace.recorder, "available_recorders", lambda: ["python", "c"])
    assert interpreters.borrowed(["run"]) == 1 and capsys.readouterr().err == ""
