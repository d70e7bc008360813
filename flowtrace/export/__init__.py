"""Exporters: a loaded `Trace` out to other formats (`flowtrace export --format NAME`).

Each exporter module exposes `write(trace, out, calls)` writing text to `out` (`calls`: the
session's calls in id order, streamed by `flowtrace.ftr.ordered`); this table maps the
format names the command line accepts to those functions. Adding a format is one module and
one line here.
"""

from __future__ import annotations

from typing import Callable, Iterable, TextIO

from ..ftr.reader import Call, Trace
from . import chrome, json_export

Exporter = Callable[[Trace, TextIO, Iterable[Call]], None]

FORMATS: dict[str, Exporter] = {
    "json": json_export.write,
    "chrome": chrome.write,
}
