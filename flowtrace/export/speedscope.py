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
from ..ftr.scan import SessionInfo
from ..timeline import events

SCHEMA = "https://www.speedscope.app/file-format-schema.json"


class _Profile:
    def __init__(self) -> None:
        self.file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.start: int | None = None
        self.end = 0
        self.sep = ""


def write(info: SessionInfo, out: IO[str]) -> None:
    index = {fid: i for i, fid in enumerate(sorted(info.functions))}
    profiles: dict[int, _Profile] = {}
    try:
        for ev in events(info):
            if not ev.frame or ev.kind == "mark":
                continue
            p = profiles.get(ev.thread)
            if p is None:
                p = profiles[ev.thread] = _Profile()
            if p.start is None:
                p.start = ev.t
            p.end = max(p.end, ev.t)
            kind = "O" if ev.kind in ("start", "resume") else "C"
            p.file.write(f'{p.sep}{{"type":"{kind}","frame":{index[ev.fn]},"at":{ev.t}}}')
            p.sep = ","
        _assemble(info, out, index, profiles)
    finally:
        for p in profiles.values():
            p.file.close()


def _assemble(info: SessionInfo, out: IO[str], index: dict[int, int], profiles: dict[int, _Profile]) -> None:
    frames = [{"name": f.qualname, "file": f.file, "line": f.line}
              for f in (info.functions[fid] for fid in sorted(index, key=index.__getitem__))]
    argv = info.meta.get("argv")
    head: dict[str, Any] = {"$schema": SCHEMA, "shared": {"frames": frames},
                            "name": " ".join(map(str, argv)) if isinstance(argv, list) else info.source,
                            "activeProfileIndex": 0, "exporter": f"flowtrace {__version__}"}
    text = json.dumps(head, ensure_ascii=False)
    out.write(text[:-1] + ', "profiles": [')
    for i, th in enumerate(sorted(profiles)):
        p = profiles[th]
        t = info.threads.get(th)
        name = (t.name if t else None) or f"thread {th}"
        out.write(("," if i else "") + "\n" + json.dumps(
            {"type": "evented", "name": name, "unit": "nanoseconds", "startValue": p.start or 0,
             "endValue": p.end}, ensure_ascii=False)[:-1] + ', "events": [')
        p.file.seek(0)
        shutil.copyfileobj(p.file, out)
        out.write("]}")
    out.write("\n]}\n")
