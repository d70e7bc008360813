"""flowtrace export: the exact JSON document of a known session, and Chrome trace-event validity."""

from __future__ import annotations

import io
import json
from collections import defaultdict

from trace_builder import META, sample_bytes

from flowtrace.ftr import format as F
from flowtrace.export import FORMATS, chrome, json_export
from flowtrace.ftr.reader import load

TRACE = load(sample_bytes())


def call(id, parent, thread, function, line, kind, start, end_ns, end, args, result=None, exception=None,
         task=None, marks=(), module="__main__", file="/tmp/sample.py"):
    return {"id": id, "parent": parent, "thread": thread, "function": function, "module": module,
            "file": file, "line": line, "kind": kind, "start_ns": start, "end_ns": end_ns, "end": end,
            "args": args, "result": result, "exception": exception, "task": task, "partial": False,
            "marks": [dict(zip(("kind", "t_ns", "text", "other"), m)) for m in marks]}


EXPECTED = {
    "format": "flowtrace",
    "version": 1,
    "session": {
        "file": "<memory>",
        "ftr_version": f"{F.VERSION_MAJOR}.{F.VERSION_MINOR}",
        "status": "finished",
        "problem": None,
        "t_end_ns": 1200,
        "end": {"reason": "exit", "exit_code": 0, "signal": None, "error": None, "calls": 7, "t_end": 1200},
        "meta": {**META, "format": "flowtrace", "version": [F.VERSION_MAJOR, F.VERSION_MINOR], "origin_ns": 1_000_000_000},
    },
    "threads": [{"id": 1, "name": "MainThread", "ident": 140001, "native_id": 501},
                {"id": 2, "name": "worker-1", "ident": 140002, "native_id": 502}],
    "tasks": [{"id": 1, "name": "Task-1", "thread": 1, "creator": 1, "root": 6}],
    "calls": [
        call(1, None, 1, "main", 10, "function", 0, 1000, "return", "", "None"),
        call(2, 1, 1, "fib", 3, "function", 10, 100, "return", "n=2", "1",
             marks=[("handled", 55, "ValueError: n=0", None)]),
        call(3, 2, 1, "fib", 3, "function", 20, 30, "return", "n=1", "1"),
        call(4, 2, 1, "fib", 3, "function", 40, 50, "raise", "n=0", exception="ValueError: n=0",
             marks=[("raise", 45, "ValueError: n=0", None)]),
        call(5, 1, 1, "Shop.items", 7, "generator", 110, 400, "return", "self=<shop.Shop object at 0x1>", "None",
             module="shop", file="/tmp/shop.py",
             marks=[("suspend", 120, "1", None), ("resume", 200, None, 1), ("handled", 210, "KeyError: 'x'", None)]),
        call(6, 1, 1, "fetch", 20, "coroutine", 500, None, "unfinished", "url='a'", task=1),
        call(7, None, 2, "fib", 3, "function", 50, None, "unfinished", "n=5"),
    ],
}


def test_json_document_exact() -> None:
    assert json_export.document(TRACE) == EXPECTED


def test_json_stream_equals_document() -> None:
    out = io.StringIO()
    FORMATS["json"](TRACE, out)
    assert json.loads(out.getvalue()) == EXPECTED


def test_json_of_unfinished_session() -> None:
    doc = json_export.document(load(sample_bytes(finish=False)))
    assert doc["session"]["status"] == "unfinished" and doc["session"]["end"] is None
    assert "no end record" in doc["session"]["problem"]
    assert doc["session"]["t_end_ns"] == 1000
    assert [c["end"] for c in doc["calls"]] == ["return", "return", "return", "raise", "return",
                                                "unfinished", "unfinished"]


def chrome_events() -> list[dict]:
    out = io.StringIO()
    chrome.write(TRACE, out)
    doc = json.loads(out.getvalue())
    assert set(doc) == {"traceEvents", "displayTimeUnit", "otherData"}
    assert doc["otherData"]["status"] == "finished"
    return doc["traceEvents"]


def test_chrome_events_are_valid() -> None:
    events = chrome_events()
    for e in events:
        assert e["ph"] in {"M", "X", "b", "e", "i"}
        assert isinstance(e["pid"], int) and e["pid"] == 4242 and isinstance(e["tid"], int)
        assert isinstance(e["name"], str) and e["name"]
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        if e["ph"] == "X":
            assert e["dur"] >= 0
    meta = [(e["name"], e["tid"], e["args"]) for e in events if e["ph"] == "M"]
    assert meta == [
        ("process_name", 0, {"name": "sample.py --n 2"}),
        ("thread_name", 1, {"name": "MainThread"}),
        ("thread_sort_index", 1, {"sort_index": 1}),
        ("thread_name", 2, {"name": "worker-1"}),
        ("thread_sort_index", 2, {"sort_index": 2}),
    ]


def test_chrome_slices() -> None:
    events = chrome_events()
    slices = [(e["name"], e["tid"], e["ts"], e["dur"]) for e in events if e["ph"] == "X"]
    assert slices == [
        ("main", 1, 0.0, 1.0),
        ("fib", 1, 0.01, 0.09),
        ("fib", 1, 0.02, 0.01),
        ("fib", 1, 0.04, 0.01),
        ("Shop.items", 1, 0.11, 0.01),   # first run, up to its suspend at 120 ns
        ("Shop.items", 1, 0.2, 0.2),     # resumed at 200 ns, returned at 400 ns
        ("fetch", 1, 0.5, 0.5),          # unfinished, no time of its own: ends with its caller
        ("fib", 2, 0.05, 0.01),          # stopped while open at 60 ns
    ]
    by_name = {e["args"]["call"]: e["args"] for e in events if e["ph"] == "X"}
    assert by_name[4] == {"call": 4, "location": "/tmp/sample.py:3", "args": "n=0",
                          "exception": "ValueError: n=0", "end": "raise"}
    assert by_name[6]["task"] == "Task-1" and by_name[6]["end"] == "unfinished"
    asyncs = [(e["ph"], e["name"], e["id2"], e["ts"]) for e in events if e["ph"] in "be"]
    assert asyncs == [
        ("b", "Shop.items", {"local": "call-5"}, 0.11), ("e", "Shop.items", {"local": "call-5"}, 0.4),
        ("b", "fetch", {"local": "task-1"}, 0.5), ("e", "fetch", {"local": "task-1"}, 1.2),
    ]
    instants = [(e["name"], e["ts"]) for e in events if e["ph"] == "i"]
    assert instants == [("handled ValueError: n=0", 0.055), ("raise ValueError: n=0", 0.045),
                        ("handled KeyError: 'x'", 0.21)]


def test_chrome_slices_nest_per_thread() -> None:
    """Perfetto needs the X slices on one thread to nest: no partial overlaps."""
    per_thread = defaultdict(list)
    for e in chrome_events():
        if e["ph"] == "X":
            per_thread[e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
    for spans in per_thread.values():
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack: list[float] = []
        for start, end in spans:
            while stack and stack[-1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1] + 1e-9, (start, end, stack)
            stack.append(end)


def test_fold_mark_exported() -> None:
    """A fold mark (n quiet runs in one row) is one slice over its runs in Chrome, with `runs`,
    and keeps its count, running time and end in JSON."""
    from trace_builder import TraceBuilder

    b = TraceBuilder()
    m = b.enter("main", t=0)
    g = b.enter("g", parent=m, kind="generator", t=10)
    b.mark(g, F.MARK_SUSPEND, "0", t=20)
    b.fold(g, 3, 12, 40, by=m, value="1", t=50)
    b.mark(g, F.MARK_RESUME, None, m, t=95)
    b.leave(g, "None", t=100)
    b.leave(m, "None", t=110)
    trace = load(b.data())
    out = io.StringIO()
    chrome.write(trace, out)
    slices = [(e["ts"], e["dur"], e["args"].get("runs")) for e in json.loads(out.getvalue())["traceEvents"]
              if e["ph"] == "X" and e["name"] == "g"]
    assert slices == [(0.01, 0.01, None), (0.05, 0.04, 3), (0.095, 0.005, None)]
    doc = json_export.document(trace)
    assert doc["calls"][1]["marks"][1] == {"kind": "fold", "t_ns": 50, "text": "1", "other": 1,
                                           "count": 3, "run_ns": 12, "end_ns": 90}


def test_array_items_written_in_batches_as_one_dumps_each(monkeypatch):
    """jsonout.write_items: the text json.dumps(item, ensure_ascii=False, default=str) gives,
    a line each, commas between, across batch boundaries."""
    from flowtrace.export import jsonout

    monkeypatch.setattr(jsonout, "_BATCH", 3)
    items = [{"n": i, "text": "é\n\"", "obj": object} for i in range(7)]
    for count in (0, 1, 3, 4, 7):
        out = io.StringIO()
        jsonout.write_items(out, iter(items[:count]))
        expected = "".join(("\n  " if i == 0 else ",\n  ") + json.dumps(item, ensure_ascii=False, default=str)
                           for i, item in enumerate(items[:count]))
        assert out.getvalue() == expected
        assert json.loads("[" + out.getvalue() + "]") == [{**item, "obj": str(object)} for item in items[:count]]


def test_exports_write_each_call_as_the_encoder_would() -> None:
    """chrome's plain slices and json's call records are made inline, text by text: the same
    text as the JSON encoder makes of their dicts, whatever the names and texts hold."""
    from dataclasses import replace

    base = next(c for c in TRACE.calls if c.function.kind == "function")
    odd = 'q"uo\\te \x1b\n\u00e9\u2028 \ud83d'  # quote, backslash, control, non-ASCII, lone surrogate
    function = replace(base.function, qualname=odd, module=None, file=odd)
    for fields in ({}, {"args": odd, "result": odd, "exception": odd, "end": "raise", "partial": True, "task": 1},
                   {"end_ns": None, "stopped_ns": base.start_ns + 5, "task": 99, "parent": None}):
        one = replace(base, function=function, **fields)
        slice_ = list(chrome.events(TRACE, [one], pid=7))[-1]
        expected = {"ph": "X", "name": odd, "cat": "call", "pid": 7, "tid": one.thread,
                    "ts": one.start_ns / 1000.0, "dur": max(0, chrome._slice_end(one, TRACE) - one.start_ns) / 1000.0,
                    "args": chrome._call_args(one, TRACE)}
        assert slice_ == json.dumps(expected, ensure_ascii=False)
        for index in (None, 3):
            record = json_export._call_text(one, {}, "}" if index is None else f', "process": {index}}}')
            fields_ = json_export.call_record(one) if index is None else {**json_export.call_record(one), "process": index}
            assert record == json.dumps(fields_, ensure_ascii=False, default=str)


def test_chrome_plain_slices_are_the_encoders_text() -> None:
    """A plain call's event is written directly (chrome._plain_slice): the text must be the one
    the JSON encoder makes of the same dict, whatever the names and texts hold."""
    from dataclasses import replace

    base = next(c for c in TRACE.calls if c.function.kind == "function")
    odd = 'q"uo\\te \x1b\n\u00e9\u2028 \ud83d'  # quote, backslash, control, non-ASCII, lone surrogate
    function = replace(base.function, qualname=odd, module=None, file=odd)
    for fields in ({}, {"args": odd, "result": odd, "exception": odd, "end": "raise", "partial": True, "task": 1}):
        one = replace(base, function=function, **fields)
        args = chrome._call_args(one, TRACE)
        text = chrome._plain_slice(one, 7, 1.5e-06, 123456789.125, args)
        expected = {"ph": "X", "name": odd, "cat": "call", "pid": 7, "tid": one.thread, "ts": 1.5e-06,
                    "dur": 123456789.125, "args": args}
        assert text == json.dumps(expected, ensure_ascii=False)
