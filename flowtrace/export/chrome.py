"""`flowtrace export --format chrome`: Chrome trace-event JSON (Perfetto, chrome://tracing).

Mapping (see docs/EXPORT.md):
- A plain call is one complete event (`"ph": "X"`) on its thread's track.
- A generator or coroutine is on the stack only while it runs, so it becomes one "X" slice per
  *run* (first start or resume up to the next suspend, or to its end): these nest properly
  inside whatever resumed it, which a single slice spanning the whole lifetime would not.
  Its whole lifetime is also drawn as an async slice (`"b"`/`"e"`), on the track of its
  asyncio task when it has one (so a task's awaited chain stacks up on one lane).
- Raise / handled / throw marks are instant events (`"ph": "i"`) on the thread.
- Unfinished calls end at the session's end, or with their caller if it ended first (args say
  `"end": "unfinished"`).
- Metadata events name the process (its argv) and each thread.
Times are microseconds (floats keep the nanoseconds).
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Iterable, Iterator, TextIO

from ..ftr.processes import Process
from ..ftr.reader import Call, Trace
from .jsonout import Encoded, dumps, string, write_items

_SUSPEND = "suspend"
_RUN_AGAIN = ("resume", "throw")
_FOLD = "fold"
_RUNS = frozenset({"generator", "coroutine", "async_generator"})  # a slice per run


def _us(ns: int) -> float:
    return ns / 1000.0


def _end_of(call: Call, trace: Trace) -> int:
    """When the call's lifetime ends: its end, else when the session stopped it, else the
    session's end (the async lifetime slices use this)."""
    if call.end_ns is not None:
        return call.end_ns
    if call.stopped_ns is not None:
        return call.stopped_ns
    return trace.t_end_ns


def _slice_end(call: Call, trace: Trace) -> int:
    """Where a call's last slice on its thread ends. An unfinished call with no end time of its
    own ends with its caller (so the slices still nest), or at the session's end."""
    while call.end_ns is None and call.stopped_ns is None and call.parent is not None:
        call = trace.call(call.parent)
    return _end_of(call, trace)


def _runs(call: Call, end: int) -> list[tuple[int, int, int]]:
    """The (start, end, count) intervals during which a generator/coroutine was running: a
    fold mark (`count` runs with nothing recorded in them) is one interval from its first
    resume to its last yield, which also spans the suspensions between its runs."""
    runs = []
    begin: int | None = call.start_ns
    for mark in call.marks:
        if mark.kind == _SUSPEND and begin is not None:
            runs.append((begin, mark.t_ns, 1))
            begin = None
        elif mark.kind in _RUN_AGAIN and begin is None:
            begin = mark.t_ns
        elif mark.kind == _FOLD and begin is None and mark.end_ns is not None:
            runs.append((mark.t_ns, mark.end_ns, mark.count))
    if begin is not None:
        runs.append((begin, max(begin, end), 1))
    return runs


def _plain_slice(call: Call, pid: int, ts: float, dur: float, args: dict[str, Any]) -> Encoded:
    """A plain call's "X" event as JSON text -- the text `dumps` makes of its dict, written
    directly (the reference for `_events`, which makes the same text inline from the call's
    fields: nearly every event is one; tests/test_export.py checks both against `dumps`)."""
    f = call.function
    return (f'{{"ph": "X", "name": {string(f.qualname)}, "cat": {string(f.module or "call")}, '
            f'"pid": {pid}, "tid": {call.thread}, "ts": {ts!r}, "dur": {dur!r}, "args": {_args_json(args)}}}')


def _args_json(args: dict[str, Any]) -> str:
    """`dumps(args)` for `_call_args`'s dicts (str keys; values str, int, or `partial`'s True)."""
    return "{" + ", ".join([f'"{key}": {_value_json(value)}' for key, value in args.items()]) + "}"


def _value_json(value: Any) -> str:
    if type(value) is str:
        return string(value)
    return repr(value) if type(value) is int else dumps(value)  # (json writes an int as repr does)


def _call_args(call: Call, trace: Trace) -> dict[str, Any]:
    args: dict[str, Any] = {"call": call.id, "location": f"{call.function.file}:{call.function.line}"}
    if call.args is not None:
        args["args"] = call.args
    if call.result is not None:
        args["result"] = call.result
    if call.exception is not None:
        args["exception"] = call.exception
    if call.end != "return":
        args["end"] = call.end
    if call.partial:
        args["partial"] = True
    if call.task is not None:
        args["task"] = trace.task_name(call.task) or call.task
    return args


def events(trace: Trace, calls: Iterable[Call] | None = None, *, pid: int | None = None, name: str | None = None,
           shift_ns: int = 0) -> Iterator[dict[str, Any] | Encoded]:
    """Every trace event of the session, metadata first; `calls` in id order (default: the
    trace's own). `pid`/`name` name its process track (default: the session's pid and argv);
    `shift_ns` is added to every time (a process of a session of several, on the root's clock).
    (Not a generator itself: one generator less between the items and the writer.)"""
    if pid is None:
        pid = int(trace.meta.get("pid") or 1)
    argv = trace.meta.get("argv") or []
    return chain([{"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                   "args": {"name": name or " ".join(map(str, argv)) or "python"}}],
                 _events(trace, pid, calls, shift_ns))


def _events(trace: Trace, pid: int, calls: Iterable[Call] | None, shift_ns: int) -> Iterator[dict[str, Any] | Encoded]:
    shift = _us(shift_ns)

    def _at(ns: int) -> float:  # (the time, then the shift: the sum's rounding as it always was)
        return _us(ns) + shift if shift_ns else _us(ns)

    for t in sorted(trace.threads.values(), key=lambda t: t.id):
        yield {"ph": "M", "name": "thread_name", "pid": pid, "tid": t.id, "args": {"name": t.name}}
        yield {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": t.id, "args": {"sort_index": t.id}}
    heads: dict[int, tuple[str, str]] = {}  # function id -> its slices' text before and after "tid"
    task_name = trace.task_name
    for call in trace.calls if calls is None else calls:
        f = call.function
        end = call.end_ns
        if end is None:
            end = _slice_end(call, trace)
        if f.kind not in _RUNS:  # one slice: no suspensions
            # the text `dumps` makes of its dict (`_call_args`'s fields), made here: nearly every
            # event is one, and encoding them was half of the export's time (the encoder's set-up
            # for each item); the function's parts once, the call's few fields in one f-string
            head = heads.get(f.id)
            if head is None:
                head = heads[f.id] = (
                    f'{{"ph": "X", "name": {string(f.qualname)}, "cat": {string(f.module or "call")}, "pid": {pid}, "tid": ',
                    ", \"location\": " + string(f"{f.file}:{f.line}"))
            start = call.start_ns
            ts = start / 1000.0 + shift if shift_ns else start / 1000.0
            rest = ""
            if call.args is not None:
                rest = ', "args": ' + string(call.args)
            if call.result is not None:
                rest += ', "result": ' + string(call.result)
            if call.exception is not None:
                rest += ', "exception": ' + string(call.exception)
            if call.end != "return":
                rest += ', "end": ' + string(call.end)
            if call.partial:
                rest += ', "partial": true'
            if call.task is not None:
                rest += ', "task": ' + _value_json(task_name(call.task) or call.task)
            yield (f'{head[0]}{call.thread}, "ts": {ts!r}, "dur": {(end - start if end > start else 0) / 1000.0!r}, '
                          f'"args": {{"call": {call.id}{head[1]}{rest}}}}}')  # (an `Encoded` item)
        else:
            args = _call_args(call, trace)
            for begin, stop, count in _runs(call, end):
                yield {"ph": "X", "name": f.qualname, "cat": f.kind, "pid": pid, "tid": call.thread,
                       "ts": _at(begin), "dur": _us(stop - begin),
                       "args": args if count == 1 else {**args, "runs": count}}
            lane = f"task-{call.task}" if call.task is not None else f"call-{call.id}"
            label = f.qualname
            yield {"ph": "b", "name": label, "cat": "async", "id2": {"local": lane}, "pid": pid,
                   "tid": call.thread, "ts": _at(call.start_ns), "args": args}
            yield {"ph": "e", "name": label, "cat": "async", "id2": {"local": lane}, "pid": pid,
                   "tid": call.thread, "ts": _at(max(call.start_ns, _end_of(call, trace)))}
        if call.marks:
            for mark in call.marks:
                if mark.kind in ("raise", "handled", "throw"):
                    yield {"ph": "i", "s": "t", "name": f"{mark.kind} {mark.text or ''}".rstrip(),
                           "cat": "exception", "pid": pid, "tid": call.thread, "ts": _at(mark.t_ns),
                           "args": {"call": call.id, "function": f.qualname}}


def write(trace: Trace, out: TextIO, calls: Iterable[Call] | None = None, *,
          parts: list[tuple[Process, Any, Iterable[Call]]] | None = None, **_: Any) -> None:
    """Write the JSON object format, one event per line (streamed). `parts`: every process of
    a session of several (docs/FORMAT.md), root first: one process track each, all on the
    root's clock (the processes of a machine share CLOCK_MONOTONIC)."""
    out.write('{"displayTimeUnit": "ns",\n "otherData": ')
    out.write(dumps({"source": trace.source, "status": trace.status,
                     "python": trace.meta.get("python"), "argv": trace.meta.get("argv")}))
    out.write(',\n "traceEvents": [')
    write_items(out, _all_events(trace, calls, parts))
    out.write("\n ]\n}\n")


def _all_events(trace: Trace, calls: Iterable[Call] | None,
                parts: list[tuple[Process, Any, Iterable[Call]]] | None) -> Iterator[dict[str, Any]]:
    if not parts:
        yield from events(trace, calls)
        return
    origin = int(trace.meta.get("origin_ns") or 0)
    seen: set[int] = set()
    for k, (proc, part, part_calls) in enumerate(parts):
        pid = proc.pid if proc.pid not in seen else proc.pid + (k << 32)  # an exec keeps its pid
        seen.add(pid)
        shift = int(part.meta.get("origin_ns") or origin) - origin
        yield from events(part, part_calls, pid=pid, name=proc.title(), shift_ns=shift)
