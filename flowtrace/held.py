"""Output that waits until what it depends on is known (`Held`).

A command that checks a session in the pass that writes its output (ftr/scan.py, `glance` and
`CheckedPass`) writes from definitions the quick walk saw; those are the survey's once the pass
has checked a given chunk (`Outlook.settled`). Until then its output waits here, in a temporary
file (disk, not memory: it may be long), and is copied out, or dropped when a check failed before
that chunk (the command then writes from the survey instead). Standard library only.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import IO, Any


class Held:
    """`write()` keeps what it is given until `release()` copies it to `out` (and lets what
    follows through); `close()` drops what still waits. `binary`: bytes, else text."""

    def __init__(self, out: IO[Any], binary: bool = False) -> None:
        self.out = out
        self.file: IO[Any] | None = (tempfile.TemporaryFile("w+b") if binary else
                                     tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogatepass"))

    def write(self, data: Any) -> None:
        (self.file or self.out).write(data)

    def release(self) -> None:
        if self.file is not None:
            self.file.seek(0)
            shutil.copyfileobj(self.file, self.out)
            self.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
