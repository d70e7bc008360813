"""`flowtrace export --format json`: the session as one JSON document (docs/EXPORT.md).

The document is streamed call by call, so exporting a large session does not build the whole
text in memory. `document()` builds the same thing as a dict (tests, small sessions).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, TextIO

from ..ftr.processes import Process, parent_index, spawning_calls_of
from ..ftr.reader import Call, Mark, Trace
from .jsonout import Encoded, dumps, string, write_items

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


def process_record(index: int, proc: Process, trace: Trace, started_by_call: int | None) -> dict[str, Any]:
    """One entry of "processes" (docs/EXPORT.md): a process of the session and how it ended."""
    return {"process": index, "pid": proc.pid, "ppid": proc.ppid, "argv": proc.argv, "how": proc.how,
            "parent": None, "started_by": proc.started_by, "started_by_call": started_by_call,
            "origin_ns": trace.meta.get("origin_ns"), "file": trace.source, "status": trace.status,
            "end": trace.end, "exit": proc.status()}


def write(trace: Trace, out: TextIO, calls: Iterable[Call] | None = None, *,
          parts: list[tuple[Process, Any, Iterable[Call]]] | None = None,
          not_followed: list[Process] | None = None) -> None:
    """Write the document: header keys first, then one call per line inside "calls" (`calls`
    in id order; default: the trace's own). `parts`: every process of a session of several
    (docs/FORMAT.md), each (process, its trace, its calls), root first; then "processes"
    lists them, and every thread, task and call carries its process's index ("process")."""
    out.write('{"format": "flowtrace", "version": %d,\n' % EXPORT_VERSION)
    out.write(f' "session": {dumps(session_record(trace))},\n')
    if not parts:
        out.write(f' "threads": {dumps(thread_records(trace))},\n')
        out.write(f' "tasks": {dumps(task_records(trace))},\n')
        _calls(out, [(None, trace.calls if calls is None else calls)])
        return
    records = _process_records(parts)
    skipped = [{"pid": p.pid, "ppid": p.ppid, "argv": p.argv, "exit": p.status()} for p in not_followed or ()]
    out.write(f' "processes": {dumps(records)},\n')
    out.write(f' "not_followed": {dumps(skipped)},\n')
    for key, rows in (("threads", thread_records), ("tasks", task_records)):
        listed = [{**r, "process": i} for i, (_p, t, _c) in enumerate(parts) for r in rows(t)]
        out.write(f' "{key}": {dumps(listed)},\n')
    _calls(out, [(i, c) for i, (_p, _t, c) in enumerate(parts)])


def _process_records(parts: list[tuple[Process, Any, Iterable[Call]]]) -> list[dict[str, Any]]:
    procs = [p for p, _t, _c in parts]
    launchers = spawning_calls_of(procs, [t for _p, t, _c in parts])
    records = [process_record(i, p, t, launchers[i]) for i, (p, t, _c) in enumerate(parts)]
    for i, proc in enumerate(procs):
        up = parent_index(procs, proc)
        records[i]["parent"] = up
    return records


def _calls(out: TextIO, groups: list[tuple[int | None, Iterable[Call]]]) -> None:
    out.write(' "calls": [')
    write_items(out, _call_records(groups))
    out.write("\n ]\n}\n")


def _call_records(groups: list[tuple[int | None, Iterable[Call]]]) -> Iterator[Encoded]:
    for index, calls in groups:
        functions: dict[int, str] = {}  # function id -> its fields' text (ids are a process's own)
        tail = "}" if index is None else f', "process": {index}}}'
        for call in calls:
            yield _call_text(call, functions, tail)


def _call_text(call: Call, functions: dict[int, str], tail: str) -> Encoded:
    """`dumps(call_record(call))` (with "process" when `tail` adds it), the text made here: the
    function's five fields once per function, the call's in one f-string. Encoding the record's
    dict was a quarter of the export's time."""
    f = call.function
    fields = functions.get(f.id)
    if fields is None:
        fields = functions[f.id] = (f'"function": {dumps(f.qualname)}, "module": {dumps(f.module)}, '
                                    f'"file": {dumps(f.file)}, "line": {dumps(f.line)}, "kind": {dumps(f.kind)}')
    parent, end_ns, args, result, exception, task = (
        call.parent, call.end_ns, call.args, call.result, call.exception, call.task)
    return (
        f'{{"id": {call.id}, "parent": {"null" if parent is None else parent}, "thread": {call.thread}, {fields}, '
        f'"start_ns": {call.start_ns}, "end_ns": {"null" if end_ns is None else end_ns}, "end": {string(call.end)}, '
        f'"args": {"null" if args is None else string(args)}, '
        f'"result": {"null" if result is None else string(result)}, '
        f'"exception": {"null" if exception is None else string(exception)}, '
        f'"task": {"null" if task is None else task}, "partial": {"true" if call.partial else "false"}, '
        f'"marks": {dumps([_mark(m) for m in call.marks]) if call.marks else "[]"}{tail}')
