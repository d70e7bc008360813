"""`flowtrace run --python PYTHON …`: record a program under another Python interpreter.

A program usually lives in an environment of its own (a virtualenv, a pyenv version) where
flowtrace is not installed; its users type `flowtrace run .venv/bin/python -m app` as they
would for py-spy. This process then becomes that interpreter (exec: same pid, same terminal,
same exit status), which imports THIS flowtrace from where it was imported here, only for the
time of that import: the program's sys.path is its own (flowtrace imports the standard library
only, and finds its submodules through the package itself). Followed children find it the same
way (follow.py: FLOWTRACE_FOLLOW_ROOT). On a Python version this flowtrace has no C recorder
built for, the Python recorder records, and a note says so.
"""

from __future__ import annotations

import os
import re
import shutil
import sys

from . import follow
from .commands import CommandError

# a file name that says "an interpreter": python, python3, python3.12, pypy3, python.exe
INTERPRETER_NAME = re.compile(r"(python|pypy)[0-9.]*(\.exe)?")

# Run by the other interpreter as `-c BOOTSTRAP ROOT run …`; written for any Python 3 (an older
# one says why it cannot record rather than failing on our syntax).
BOOTSTRAP = """\
import sys
root = sys.argv.pop(1)
if sys.version_info < (3, 12):
    sys.stderr.write("flowtrace: error: %s is Python %d.%d: flowtrace records Python 3.12 and later\\n"
                     % ((sys.executable,) + tuple(sys.version_info[:2])))
    raise SystemExit(2)
sys.path.insert(0, root)
try:
    from flowtrace.interpreters import borrowed
finally:
    sys.path.remove(root)
sys.exit(borrowed(sys.argv[1:]))
"""


def is_interpreter(word: str) -> bool:
    """Does the program's first word name a Python interpreter rather than a script? A file
    named like one (python3, .venv/bin/python, pypy3.10) that is an executable binary or a
    launcher script (pyenv's shims are shell scripts), or such a name found on PATH when no file
    of that name is here. Python itself would fail on either ("source code cannot contain null
    bytes", "can't open file"): nothing that runs as a script today is taken for one."""
    if not INTERPRETER_NAME.fullmatch(os.path.basename(word)):
        return False
    if not os.path.exists(word):
        return os.sep not in word and shutil.which(word) is not None
    if not (os.path.isfile(word) and os.access(word, os.X_OK)):
        return False
    try:
        with open(word, "rb") as f:
            first = f.readline(256)
    except OSError:
        return False
    return first[:4] == b"\x7fELF" or (first[:2] == b"#!" and not _runs_python(first))


def _runs_python(shebang: bytes) -> bool:
    """Does this `#!` line run python (a Python program), rather than a shell (a launcher)?"""
    words = shebang[2:].split()  # `#!/usr/bin/python3 -E`, `#!/usr/bin/env python3`, `#!/bin/sh`
    program = os.path.basename(words[0]) if words else b""
    if program == b"env" and len(words) > 1:
        program = words[1]
    return INTERPRETER_NAME.match(program.decode("utf-8", "replace")) is not None


def resolve(python: str) -> str:
    """The interpreter's path to exec: as given when it names a file, else looked up on PATH;
    CommandError (exit 2) when there is none or it cannot be run."""
    path = python if os.sep in python else shutil.which(python)
    if path is None or not os.path.exists(path):
        raise CommandError(f"--python {python}: no such interpreter", 2)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise CommandError(f"--python {python}: not an executable file", 2)
    return path


def exec_under(python: str, argv: list[str]) -> None:
    """Become `python -c BOOTSTRAP ROOT …argv` (`argv`: `flowtrace`'s own, e.g. ["run", …]).
    Returns only by raising CommandError when the exec fails."""
    for stream in (sys.stdout, sys.stderr):  # (what is buffered here would be lost by the exec)
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        os.execv(python, [python, "-c", BOOTSTRAP, follow.ROOT, *argv])
    except OSError as exc:
        raise CommandError(f"cannot run {python}: {exc.strerror or exc}") from None


def borrowed(argv: list[str]) -> int:
    """BOOTSTRAP's entry, in the other interpreter: the note when no C recorder is built for it,
    then `flowtrace …argv` as the command would run it."""
    from .cli import main
    from .recorder import available_recorders, c_recorder_problem

    # (a C recorder built but failing to import is `flowtrace run`'s own warning)
    if "c" not in available_recorders() and c_recorder_problem() is None and not os.environ.get("FLOWTRACE_RECORDER"):
        v = sys.version_info
        sys.stderr.write(f"flowtrace: note: no C recorder is built for Python {v.major}.{v.minor} in "
                         f"{os.path.dirname(os.path.abspath(__file__))}: the Python recorder records "
                         f"(20-80x slower)\n")
    return main(argv)
