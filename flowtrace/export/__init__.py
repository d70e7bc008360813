"""Exporters: a session out to other formats (`flowtrace export --format NAME`).

Two kinds, all streamed (memory bounded whatever the session's size):
- `FORMATS`: the exports that list every call (`json`, `chrome`): `write(trace, out, calls)`
  writes text, `calls` being the session's calls in id order (`flowtrace.ftr.ordered` streams
  them; a loaded `Trace` works too);
- `EXPORTS`: every format the command line offers, each `write(info, out)` on a surveyed
  session (`flowtrace.ftr.scan.survey`), with whether it writes bytes and its file suffix.
Adding a format is one module and one line in `EXPORTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, Callable, Iterable, TextIO

from ..ftr.ordered import ordered_calls
from ..ftr.reader import Call, Trace
from ..ftr.scan import SessionInfo
from . import chrome, collapsed, json_export, perfetto, pstats_export, speedscope

Exporter = Callable[[Trace, TextIO, Iterable[Call]], None]

FORMATS: dict[str, Exporter] = {
    "json": json_export.write,
    "chrome": chrome.write,
}


@dataclass(frozen=True)
class Export:
    write: Callable[[SessionInfo, IO[Any]], None]
    binary: bool
    suffix: str  # the default output: the session's name with this instead of .ftr
    about: str


def _listing(name: str) -> Callable[[SessionInfo, IO[Any]], None]:
    return lambda info, out: FORMATS[name](info, out, ordered_calls(info))


EXPORTS: dict[str, Export] = {
    "json": Export(_listing("json"), False, ".json", "flowtrace's own JSON document"),
    "chrome": Export(_listing("chrome"), False, ".trace.json", "Chrome trace-event JSON (chrome://tracing)"),
    "perfetto": Export(perfetto.write, True, ".perfetto-trace", "Perfetto protobuf trace (ui.perfetto.dev)"),
    "speedscope": Export(speedscope.write, False, ".speedscope.json", "speedscope, one profile per thread"),
    "pstats": Export(pstats_export.write, True, ".pstats", "Python's pstats (snakeviz, gprof2dot)"),
    "collapsed": Export(collapsed.write, False, ".collapsed.txt", "collapsed stacks for flame graphs"),
}
