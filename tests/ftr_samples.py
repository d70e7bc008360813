"""Small `.ftr` sessions written with SessionWriter directly (no recorder), for reader,
export and CLI tests. Every value is known, so tests can assert exact results."""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO

from flowtrace.ftr import format as F
from flowtrace.ftr.writer import SessionWriter
from flowtrace.recorder.base import Batch

ORIGIN = 1_000_000_000  # absolute perf_counter_ns of time 0 in these sessions

META = {
    "pid": 4242,
    "ppid": 1,
    "argv": ["sample.py", "--n", "2"],
    "cwd": "/tmp",
    "python": "3.12.1",
    "executable": "/usr/bin/python3",
    "platform": "linux",
    "hostname": "box",
    "started_wall_ns": 1_700_000_000_000_000_000,
    "recorder": "python",
    "flowtrace_version": "0.2.0",
    "options": {"args": "safe", "include": [], "exclude": [], "flush_interval_s": 0.1},
    "command": "run",
}

FUNCTIONS = [
    {"id": 1, "qualname": "main", "module": "__main__", "file": "/tmp/sample.py", "line": 10, "kind": "function"},
    {"id": 2, "qualname": "fib", "module": "__main__", "file": "/tmp/sample.py", "line": 3, "kind": "function"},
    {"id": 3, "qualname": "Shop.items", "module": "shop", "file": "/tmp/shop.py", "line": 7, "kind": "generator"},
    {"id": 4, "qualname": "fetch", "module": "__main__", "file": "/tmp/sample.py", "line": 20, "kind": "coroutine"},
]
THREADS = [
    {"id": 1, "ident": 140001, "native_id": 501, "name": "MainThread"},
    {"id": 2, "ident": 140002, "native_id": 502, "name": "worker-1"},
]
TASKS = [{"id": 1, "name": "Task-1", "thread": 1, "creator": 1, "root": 6}]


def _rows(batch: Batch, rows: list[tuple[int, int, int, int, int, int, int]]) -> None:
    for par, fn, thr, t0, args, task, flag in rows:
        batch.call_parent.append(par)
        batch.call_func.append(fn)
        batch.call_thread.append(thr)
        batch.call_t0.append(ORIGIN + t0)
        batch.call_args.append(args)
        batch.call_task.append(task)
        batch.call_flag.append(flag)


def _exits(batch: Batch, rows: list[tuple[int, int, int, int]]) -> None:
    for call, t1, how, val in rows:
        batch.exit_call.append(call)
        batch.exit_t1.append(ORIGIN + t1)
        batch.exit_how.append(how)
        batch.exit_val.append(val)


def _marks(batch: Batch, rows: list[tuple[int, int, int, int, int]]) -> None:
    for call, t, kind, ref, other in rows:
        batch.mark_call.append(call)
        batch.mark_t.append(ORIGIN + t)
        batch.mark_kind.append(kind)
        batch.mark_ref.append(ref)
        batch.mark_other.append(other)


def sample_batches() -> list[Batch]:
    """Two batches (two flushes) describing:

    1 main()                       thread 1        0 .. 1000  return None
      2 fib(n=2)                                  10 .. 100   return 1
        3 fib(n=1)                                20 .. 30    return 1
        4 fib(n=0)                                40 .. 50    raise ValueError: n=0
      5 Shop.items(self=<shop.Shop object at 0x1>) generator 110 .. 400 return None,
            marks suspend@120 "1", resume@200 by 1, handled@210 "KeyError: 'x'"
      6 fetch(url='a')  coroutine in task 1      500 .. unfinished (no EXIT)
    7 fib(n=5)                      thread 2      50 .. 60 exit how=3 (stopped)
    """
    b1 = Batch(functions=FUNCTIONS[:3], threads=THREADS, strings_first_id=1,
               strings=["", "n=2", "n=1", "n=0", "1", "ValueError: n=0"], call_first_id=1)
    # string ids: 1 "" (empty args of main), 2 n=2, 3 n=1, 4 n=0, 5 "1", 6 ValueError
    _rows(b1, [(0, 1, 1, 0, 1, 0, 0), (1, 2, 1, 10, 2, 0, 0), (2, 2, 1, 20, 3, 0, 0), (2, 2, 1, 40, 4, 0, 0)])
    _exits(b1, [(3, 30, F.END_RETURN, 5), (4, 50, F.END_RAISE, 6)])
    _marks(b1, [(4, 45, F.MARK_RAISE, 6, 0), (2, 55, F.MARK_HANDLED, 6, 0)])
    b2 = Batch(functions=FUNCTIONS[3:], tasks=TASKS, strings_first_id=7,
               strings=["self=<shop.Shop object at 0x1>", "None", "KeyError: 'x'", "url='a'", "n=5"],
               call_first_id=5)
    # string ids: 7 self=..., 8 None, 9 KeyError, 10 url='a', 11 n=5
    _rows(b2, [(1, 3, 1, 110, 7, 0, 0), (1, 4, 1, 500, 10, 1, 0), (0, 2, 2, 50, 11, 0, 0)])
    _exits(b2, [(2, 100, F.END_RETURN, 5), (5, 400, F.END_RETURN, 8), (1, 1000, F.END_RETURN, 8),
                (7, 60, F.END_UNFINISHED, 0)])
    _marks(b2, [(5, 120, F.MARK_SUSPEND, 5, 0), (5, 200, F.MARK_RESUME, 0, 1), (5, 210, F.MARK_HANDLED, 9, 0)])
    return [b1, b2]


SAMPLE_END = {"t_end_abs": ORIGIN + 1200, "reason": "exit", "exit_code": 0, "signal": None, "error": None}


def write_sample(target: str | os.PathLike[str] | BinaryIO, *, finish: bool = True,
                 meta: dict[str, Any] | None = None) -> None:
    w = SessionWriter(target, dict(meta or META), ORIGIN)
    for b in sample_batches():
        w.write_batch(b)
    if finish:
        w.finish(dict(SAMPLE_END))
    else:
        w.abandon()


def sample_bytes(*, finish: bool = True) -> bytes:
    buf = io.BytesIO()
    write_sample(buf, finish=finish)
    return buf.getvalue()


def chunk_offsets(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start offset, end offset) of every chunk in a well-formed session."""
    out = []
    pos = F.FILE_HEADER_SIZE
    while pos < len(data):
        kind, _flags, length = F.CHUNK_HEADER.unpack_from(data, pos)
        end = pos + F.CHUNK_HEADER_SIZE + length + F.CHUNK_TRAILER_SIZE
        out.append((kind, pos, end))
        pos = end
    return out

