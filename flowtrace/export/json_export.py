"""`flowtrace export --format json`: the session as one JSON document (docs/EXPORT.md).

The document is streamed call by call, so exporting a large session does not build the whole
text in memory. `document()` builds the same thing as a dict (tests, small sessions).
"""

from __future__ import annotations

import json
from typing import Any, Iterable, TextIO

from ..ftr.reader import Call, Mark, Trace

EXPORT_VERSION = 1  # version of this JSON layout (not of the .ftr file); bumped on breaking changes


def session_record(trace: Trace) -> dict[str, Any]:
    """The "session" object: where it came from, how it ended, and the recorder's metadata."""
    return {
        "file": trace.source,
        "ftr_version": f"{trace.version[0]}.{trace.version[1]}",
        "status": trace.status,
        "problem": trace.problem,
        "t_end_ns": trace.t_end_ns,
        "end": trace.end,
        "meta": trace.meta,
    }


def call_record(call: Call) -> dict[str, Any]:
    """One entry of "calls"."""
    f = call.function
    return {
        "id": call.id,
        "parent": call.parent,
        "thread": call.thread,
        "function": f.qualname,
        "module": f.module,
        "file": f.file,
        "line": f.line,
        "kind": f.kind,
        "start_ns": call.start_ns,
        "end_ns": call.end_ns,
        "end": call.end,
        "args": call.args,
        "result": call.result,
        "exception": call.exception,
        "task": call.task,
        "partial": call.partial,
        "marks": [_mark(m) for m in call.marks],
    }


def _mark(m: Mark) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": m.kind, "t_ns": m.t_ns, "text": m.text, "other": m.other}
    if m.kind == "fold":  # several runs in one (docs/FORMAT.md, "Folded resumes")
        out.update(count=m.count, run_ns=m.run_ns, end_ns=m.end_ns)
    return out


def thread_records(trace: Trace) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "ident": t.ident, "native_id": t.native_id}
        for t in sorted(trace.threads.values(), key=lambda t: t.id)
    ]


def task_records(trace: Trace) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "thread": t.thread, "creator": t.creator, "root": t.root}
        for t in sorted(trace.tasks.values(), key=lambda t: t.id)
    ]


def document(trace: Trace) -> dict[str, Any]:
    """The whole export as a dict (what `write` produces, parsed back)."""
    return {
        "format": "flowtrace",
        "version": EXPORT_VERSION,
        "session": session_record(trace),
        "threads": thread_records(trace),
        "tasks": task_records(trace),
        "calls": [call_record(c) for c in trace.calls],
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def write(trace: Trace, out: TextIO, calls: Iterable[Call] | None = None) -> None:
    """Write the document: header keys first, then one call per line inside "calls" (`calls`
    in id order; default: the trace's own)."""
    out.write('{"format": "flowtrace", "version": %d,\n' % EXPORT_VERSION)
    out.write(f' "session": {_dumps(session_record(trace))},\n')
    out.write(f' "threads": {_dumps(thread_records(trace))},\n')
    out.write(f' "tasks": {_dumps(task_records(trace))},\n')
    out.write(' "calls": [')
    sep = "\n  "
    for call in trace.calls if calls is None else calls:
        out.write(sep)
        out.write(_dumps(call_record(call)))
        sep = ",\n  "
    out.write("\n ]\n}\n")
