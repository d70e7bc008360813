"""Lines of the recorded program's source files, for the detail pane's excerpt.

The only place the explorer reads a source file. `linecache` keeps what it read, so moving the
cursor over calls of one module reads the file once; a file that is gone, unreadable or shorter
than the line asked for gives None (the pane says the source is not available).
"""

from __future__ import annotations

import linecache
import os
from dataclasses import dataclass

BEFORE, AFTER = 2, 8  # lines shown around the definition


@dataclass(frozen=True, slots=True)
class Excerpt:
    """Lines `first` .. `first + code.count("\\n") - 1` of `path`; `line` is the one to mark."""

    path: str
    line: int
    first: int
    code: str


def excerpt(path: str, line: int) -> Excerpt | None:
    """The lines around `line` of the file `path`, None when they cannot be read."""
    if not path or line <= 0 or not os.path.isfile(path):
        return None
    lines = linecache.getlines(path)
    if not lines:
        return None
    first = max(1, line - BEFORE)
    last = min(len(lines), line + AFTER)
    return Excerpt(path, line, first, "".join(lines[first - 1 : last]))
