"""Exporters: a session out to other formats (`flowtrace export --format NAME`).

Two kinds, all streamed (memory bounded whatever the session's size):
- `FORMATS`: the exports that list every call (`json`, `chrome`): `write(trace, out, calls)`
  writes text, `calls` being the session's calls in id order (`flowtrace.ftr.ordered` streams
  them; a loaded `Trace` works too);
- `EXPORTS`: every format the command line offers, each `write(info, out)` on a surveyed
  session (`flowtrace.ftr.scan.survey`) or a glanced one (`scan.glance`: checked in the pass
  that writes it, with no survey pass first), with whether it writes bytes and its file suffix.
Adding a format is one module and one line in `EXPORTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, Callable, Iterable, TextIO

from ..ftr.ordered import checked_calls
from ..ftr.processes import Process
from ..ftr.reader import Call, Trace
from ..ftr.scan import Outlook, SessionInfo, surveyed
from . import chrome, collapsed, json_export, perfetto, pstats_export, speedscope

Exporter = Callable[[Trace, TextIO, Iterable[Call]], None]

FORMATS: dict[str, Exporter] = {
    "json": json_export.write,
    "chrome": chrome.write,
}


@dataclass(frozen=True)
class Export:
    write: Callable[..., None]  # (info, out) and, when `several`, parts=/not_followed= too
    binary: bool
    suffix: str  # the default output: the session's name with this instead of .ftr
    about: str
    several: bool = False  # writes every process of a session of several (docs/FORMAT.md)


Part = tuple[Process, SessionInfo]  # a process of the session and its part's survey


def _listing(name: str) -> Callable[..., None]:
    def write(info: SessionInfo | Outlook, out: IO[Any], parts: list[Part] | None = None,
              not_followed: list[Process] | None = None) -> None:
        if not parts:
            trace, calls = checked_calls(info)
            FORMATS[name](trace, out, calls)
            return
        listed = [(proc, *checked_calls(part)) for proc, part in parts]  # (each part checked first)
        FORMATS[name](surveyed(info), out, parts=listed, not_followed=not_followed)
    return write


EXPORTS: dict[str, Export] = {
    "json": Export(_listing("json"), False, ".json", "flowtrace's own JSON document", True),
    "chrome": Export(_listing("chrome"), False, ".trace.json", "Chrome trace-event JSON (chrome://tracing)", True),
    "perfetto": Export(perfetto.write, True, ".perfetto-trace", "Perfetto protobuf trace (ui.perfetto.dev)", True),
    "speedscope": Export(speedscope.write, False, ".speedscope.json", "speedscope, one profile per thread", True),
    "pstats": Export(pstats_export.write, True, ".pstats", "Python's pstats (snakeviz, gprof2dot)", True),
    "collapsed": Export(collapsed.write, False, ".collapsed.txt", "collapsed stacks for flame graphs", True),
}
