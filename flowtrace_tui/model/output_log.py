"""The program's output (stdout and stderr of `flowtrace-tui run`), read from its log file.

The child writes to a file, never to our terminal; `OutputLog.read_new()` returns what was
appended since the last read (at most READ_MAX bytes: a program that prints a flood cannot
stall the UI) as plain text: escape sequences and other control characters are dropped so that
the program cannot draw on the UI, and a UTF-8 character cut between two reads is kept whole.
"""

from __future__ import annotations

import codecs
import re

READ_MAX = 1 << 20

# CSI/OSC escape sequences, then any other control character except newline and tab
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """Plain text of program output: CRLF as LF, escapes and control characters removed."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


class OutputLog:
    """One log file, read from the start and then as it grows."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read_new(self) -> str:
        """The cleaned text appended since the last read ("" for none, or an unreadable file)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(READ_MAX)
        except OSError:
            return ""
        self.offset += len(chunk)
        return clean(self._decoder.decode(chunk)) if chunk else ""
