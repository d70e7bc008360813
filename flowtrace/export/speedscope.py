"""`flowtrace export --format speedscope`: a speedscope file (https://www.speedscope.app), one
"evented" profile per thread.

Mapping (docs/EXPORT.md): a frame per recorded function (`name` its qualified name, `file`,
`line`); on each thread an `O` (open) event where a call or a run of a generator/coroutine
begins and a `C` (close) event where it ends or suspends (flowtrace/timeline.py), times in
nanoseconds from the session start. Lost: arguments, results, exceptions, tasks (speedscope has
no place for them). Each thread's events go to a temporary file while the session is read, and
the profiles are put together at the end: memory stays bounded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from typing import IO, Any

from .. import __version__
from ..ftr.scan import CheckedPass, Outlook, SessionInfo, surveyed
from ..timeline import ROWS, event_batches

SCHEMA = "https://www.speedscope.app/file-format-schema.json"


class _Profile:
    def __init__(self) -> None:
        self.file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.start: int | None = None
        self.end = 0
        self.sep = ""
        self.items: list[str] = []  # the events of the batch being read, not written yet


def write(info: SessionInfo | Outlook, out: IO[str], *, parts: list[tuple[Any, Any]] | None = None,
          **_: Any) -> None:
    """The speedscope file; `parts` (a session of several processes): one profile per thread of
    every process, named `pid N: thread`, times on the root's clock. Sessions surveyed or
    glanced (`scan.glance`: each checked in the pass that reads its events)."""
    listed = parts or [(None, info)]
    origin = int(info.meta.get("origin_ns") or 0)
    frames: list[dict[str, Any]] = []
    profiles: list[tuple[str, _Profile]] = []
    try:
        for proc, part in listed:
            shift = int(part.meta.get("origin_ns") or origin) - origin
            survey, threads = _part_profiles(part, frames, shift)
            for th, p in threads.items():
                t = survey.threads.get(th)
                name = (t.name if t else None) or f"thread {th}"
                profiles.append((f"pid {proc.pid}: {name}" if proc is not None else name, p))
        _assemble(surveyed(info), out, frames, profiles)
    finally:
        for _name, p in profiles:
            p.file.close()


def _part_profiles(part: SessionInfo | Outlook, frames: list[dict[str, Any]], shift: int
                   ) -> tuple[SessionInfo, dict[int, _Profile]]:
    """One process's frames (added to `frames`) and per-thread profiles, and its survey. A
    glanced part is checked as its events are read, its frames made from the functions the
    glance saw; should the checked part define others (a check failed before some FUNC chunk),
    it is read again from its survey."""
    first = len(frames)
    glanced = part.info.functions if isinstance(part, Outlook) and part.streamable else None
    functions = glanced if glanced is not None else surveyed(part).functions
    index = {fid: first + i for i, fid in enumerate(sorted(functions))}
    frames += [{"name": functions[fid].qualname, "file": functions[fid].file,
                "line": functions[fid].line} for fid in sorted(functions)]
    if glanced is None:
        return surveyed(part), _profiles(surveyed(part), index, shift)
    assert isinstance(part, Outlook)
    checked = CheckedPass(part)
    threads = _profiles(checked.info, index, shift, checked.records(ROWS))
    if checked.info.functions == glanced:
        return checked.info, threads
    for p in threads.values():
        p.file.close()
    del frames[first:]
    return _part_profiles(checked.info, frames, shift)


def _profiles(info: SessionInfo, index: dict[int, int], shift: int, records: Any = None) -> dict[int, _Profile]:
    """Each thread's open/close events, in a temporary file per thread."""
    profiles: dict[int, _Profile] = {}
    try:
        for batch in event_batches(info, records=records):  # (a list of events at a time)
            touched = []
            for kind, t, _call, thread, fn, _text, _how, frame, _task in batch:
                if not frame or kind == "mark":
                    continue
                p = profiles.get(thread)
                if p is None:
                    p = profiles[thread] = _Profile()
                if not p.items:
                    touched.append(p)
                t += shift
                if p.start is None:
                    p.start = t
                if t > p.end:
                    p.end = t
                opens = kind == "start" or kind == "resume"
                p.items.append(f'{{"type":"{"O" if opens else "C"}","frame":{index[fn]},"at":{t}}}')
            for p in touched:  # one write per thread and batch
                p.file.write(p.sep + ",".join(p.items))
                p.sep = ","
                p.items.clear()
    except BaseException:
        for p in profiles.values():
            p.file.close()
        raise
    return dict(sorted(profiles.items()))


def _assemble(info: SessionInfo, out: IO[str], frames: list[dict[str, Any]],
              profiles: list[tuple[str, _Profile]]) -> None:
    argv = info.meta.get("argv")
    head: dict[str, Any] = {"$schema": SCHEMA, "shared": {"frames": frames},
                            "name": " ".join(map(str, argv)) if isinstance(argv, list) else info.source,
                            "activeProfileIndex": 0, "exporter": f"flowtrace {__version__}"}
    text = json.dumps(head, ensure_ascii=False)
    out.write(text[:-1] + ', "profiles": [')
    for i, (name, p) in enumerate(profiles):
        out.write(("," if i else "") + "\n" + json.dumps(
            {"type": "evented", "name": name, "unit": "nanoseconds", "startValue": p.start or 0,
             "endValue": p.end}, ensure_ascii=False)[:-1] + ', "events": [')
        p.file.seek(0)
        shutil.copyfileobj(p.file, out)
        out.write("]}")
    out.write("\n]}\n")
