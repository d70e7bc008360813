"""Where the parts of a session of several processes live (docs/FORMAT.md, "Sessions of several
processes"): the names only, with nothing but `os`, for the writers (`flowtrace run`'s closing
line, follow's parts) that must not load the readers. `processes.py` reads what is there."""

from __future__ import annotations

import os

PARTS_SUFFIX = ".d"  # the parts of `trace.ftr` are in `trace.ftr.d/`


def parts_dir(path: str) -> str:
    """The directory of the parts of the session whose root file is `path`."""
    return os.path.abspath(path) + PARTS_SUFFIX


def part_files(directory: str) -> tuple[list[str], list[str]]:
    """The names in a parts directory, sorted: the parts (`<pid>.ftr`) and the notes of the
    processes not followed (`<pid>.skip.json`). Both empty when there is no such directory."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return [], []
    return [n for n in names if n.endswith(".ftr")], [n for n in names if n.endswith(".skip.json")]


def children_note(path: str) -> str:
    """What a closing line (`flowtrace run`'s, attach's, detach's) adds for followed children:
    their parts, and those not followed. Counted from the parts directory's names only (reading
    every part would cost the program's exit time); the readers (`print`, `stats`) count calls."""
    directory = parts_dir(path)
    parts, notes = part_files(directory)  # (none: no child was started)
    followed, skipped = len(parts), len(notes)
    note = ""
    if followed:
        note += f", and {followed} child process{'' if followed == 1 else 'es'} in {os.path.basename(directory)}/"
    if skipped:
        note += f" ({skipped} not followed: flowtrace print {os.path.basename(path)} says why)"
    return note
