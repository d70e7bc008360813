"""A small session with known times, for exact stats and export tests.

Thread 1 (MainThread):            Thread 2 (worker):
  1 main      0 .. 1000             7 work   100 .. 400
    2 fib       10 .. 100             8 leaf   150 .. 250
      3 fib       20 .. 50
        4 fib       30 .. 40 (raises ValueError)
    5 numbers   200 .. 320 (generator: suspended 220 .. 300, resumed by main)
      6 leaf      305 .. 315

Running times: main 1000, fib 90/30/10, numbers 40 (120 minus 80 suspended), leaf 10 and 100,
work 300. Self: main 870, fib 60/20/10, numbers 30, leaf 10/100, work 200.
"""

from __future__ import annotations

import os
from typing import Any

from flowtrace.ftr import format as F
from flowtrace.ftr.batch import Batch
from flowtrace.ftr.writer import SessionWriter

ORIGIN = 7_000_000
FUNCS = [
    {"id": 1, "qualname": "main", "module": "app", "file": "/src/app.py", "line": 1, "kind": "function"},
    {"id": 2, "qualname": "fib", "module": "app", "file": "/src/app.py", "line": 10, "kind": "function"},
    {"id": 3, "qualname": "numbers", "module": "app.gen", "file": "/src/app/gen.py", "line": 5, "kind": "generator"},
    {"id": 4, "qualname": "leaf", "module": "app", "file": "/src/app.py", "line": 20, "kind": "function"},
    {"id": 5, "qualname": "Pool.work", "module": "app.pool", "file": "/src/app/pool.py", "line": 3, "kind": "function"},
]
CALLS = [  # parent, function, thread, t0, args text
    (0, 1, 1, 0, "x=1"), (1, 2, 1, 10, "n=2"), (2, 2, 1, 20, "n=1"), (3, 2, 1, 30, "n=0"), (1, 3, 1, 200, "n=3"),
    (5, 4, 1, 305, ""), (0, 5, 2, 100, "self=<Pool>"), (7, 4, 2, 150, ""),
]
EXITS = [  # call, t1, how, text
    (4, 40, F.END_RAISE, "ValueError: n=0"), (3, 50, F.END_RETURN, "1"), (2, 100, F.END_RETURN, "1"),
    (8, 250, F.END_RETURN, "None"), (6, 315, F.END_RETURN, "None"), (5, 320, F.END_RETURN, "None"),
    (7, 400, F.END_RETURN, "None"), (1, 1000, F.END_RETURN, "None"),
]
MARKS = [(4, 35, F.MARK_RAISE, "ValueError: n=0", 0), (5, 220, F.MARK_SUSPEND, "0", 0),
         (5, 300, F.MARK_RESUME, "", 1)]


def write_profile_sample(path: str | os.PathLike[str]) -> None:
    texts: list[str] = []

    def sid(text: str) -> int:
        if text not in texts:
            texts.append(text)
        return texts.index(text) + 1

    b = Batch()
    b.functions = list(FUNCS)
    b.threads = [{"id": 1, "ident": 11, "native_id": 101, "name": "MainThread"},
                 {"id": 2, "ident": 12, "native_id": 102, "name": "worker"}]
    for par, fn, thr, t0, args in CALLS:
        for name, value in (("call_parent", par), ("call_func", fn), ("call_thread", thr),
                            ("call_t0", ORIGIN + t0), ("call_args", sid(args)), ("call_task", 0), ("call_flag", 0)):
            getattr(b, name).append(value)
    for call, t1, how, text in EXITS:
        for name, value in (("exit_call", call), ("exit_t1", ORIGIN + t1), ("exit_how", how), ("exit_val", sid(text))):
            getattr(b, name).append(value)
    for call, t, kind, text, other in MARKS:
        for name, value in (("mark_call", call), ("mark_t", ORIGIN + t), ("mark_kind", kind),
                            ("mark_ref", sid(text) if text else 0), ("mark_other", other)):
            getattr(b, name).append(value)
    b.strings = texts
    meta: dict[str, Any] = {"pid": 42, "argv": ["app.py"], "cwd": "/src"}
    writer = SessionWriter(path, meta, ORIGIN)
    writer.write_batch(b)
    writer.finish({"t_end_abs": ORIGIN + 1000, "reason": "exit", "exit_code": 0})
