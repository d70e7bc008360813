"""Lines of the recorded program's source files, for the detail pane's excerpt.

The only place the explorer reads a source file. `linecache` keeps what it read, so moving the
cursor over calls of one module reads the file once. When there is nothing to show, `NoSource`
says why, as far as can be told: the file is not there or cannot be read (source not available),
is empty (an empty module's code), is shorter than the line asked for (it changed since the
recording), or the code has no line.
"""

from __future__ import annotations

import linecache
import os
import re
import stat
from dataclasses import dataclass

BEFORE, AFTER = 2, 8  # lines shown around the definition


_FROZEN = re.compile(r"<frozen ([A-Za-z_][\w.]*)>")


def frozen_source(path: str, stdlib: str | None) -> str | None:
    """The file a frozen standard module was frozen from (`<frozen posixpath>` ->
    STDLIB/posixpath.py, a package's __init__.py), or None. Frozen code keeps its source's line
    numbers, so the excerpt is the code that ran while that file is the recorded Python's."""
    m = _FROZEN.fullmatch(path)
    if m is None or not stdlib:
        return None
    base = os.path.join(stdlib, *m.group(1).split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class Excerpt:
    """Lines `first` .. `first + code.count("\\n") - 1` of `path`; `line` is the one to mark."""

    path: str
    line: int
    first: int
    code: str


@dataclass(frozen=True, slots=True)
class NoSource:
    """No excerpt: `why`, in words for the pane ("the file is empty")."""

    why: str


def excerpt(path: str, line: int, stdlib: str | None = None) -> Excerpt | NoSource:
    """The lines around `line` of the file `path`, or why there are none; a frozen module's
    (`<frozen os>`, `<frozen importlib._bootstrap>`) from its file in `stdlib`, the recorded
    interpreter's standard library (META), when it is there."""
    path = frozen_source(path, stdlib) or path
    if line <= 0:
        return NoSource("no source line recorded for this code")
    try:
        st = os.stat(path) if path else None
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        return NoSource("source not available")  # (the path is shown above it)
    if st.st_size == 0:  # (linecache gives no lines for it on 3.12, one empty line on 3.13)
        return NoSource("the file is empty")
    lines = linecache.getlines(path)
    if not lines:  # it cannot be read or decoded
        return NoSource("source not available: the file cannot be read")
    if line > len(lines):
        return NoSource(f"source not available: the file has {len(lines):,} line{'' if len(lines) == 1 else 's'} "
                        f"now, none at {line:,}")
    first = max(1, line - BEFORE)
    last = min(len(lines), line + AFTER)
    return Excerpt(path, line, first, "".join(lines[first - 1 : last]))
