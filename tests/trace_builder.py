"""Every session the tests read is built here: one builder module for all tests.

Everything goes through the real `SessionWriter` (the bytes the recorder writes), and every row
through the same three appenders (`add_call`, `add_exit`, `add_mark`). From the most to the
least controlled:

- fixed sessions whose every value is known: `write_sample` / `sample_bytes` (reader, export
  and CLI tests) and `write_profile_sample` (exact stats and profile exports);
- `TraceBuilder`: act out a program (enter/leave/suspend/resume per thread; times advance by
  `step` ns per event unless given) — the explorer's tests; `Feeder` appends it to a file as it
  grows (live tests); ready-made programs: `sample_program`, `threads_program`, `wide_program`;
- random sessions: `random_trace` (a `TraceBuilder` acted at random) and `random_session`
  (a simulated program: interned texts reused across batches, array columns, sessions that end
  with calls still running), for tests that compare two ways of reading one session.
"""

from __future__ import annotations

import io
import os
import random
import socket
import time
from array import array
from typing import TYPE_CHECKING, Any, BinaryIO

from flowtrace.ftr import format as F
from flowtrace.ftr.batch import Batch
from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.writer import SessionWriter

if TYPE_CHECKING:
    from flowtrace_tui.model import TraceData


# -- rows ------------------------------------------------------------------------------------------

def add_call(b: Batch, parent: int, func: int, thread: int, t0: int, args: int, task: int = 0, flag: int = 0) -> None:
    """One CALL row (`args`: a string id, 0 for none)."""
    b.call_parent.append(parent)
    b.call_func.append(func)
    b.call_thread.append(thread)
    b.call_t0.append(t0)
    b.call_args.append(args)
    b.call_task.append(task)
    b.call_flag.append(flag)


def add_exit(b: Batch, call: int, t1: int, how: int, value: int) -> None:
    """One EXIT row (`value`: the result's or exception's string id)."""
    b.exit_call.append(call)
    b.exit_t1.append(t1)
    b.exit_how.append(how)
    b.exit_val.append(value)


def add_mark(b: Batch, call: int, t: int, kind: int, ref: int, other: int = 0, n: int = 0, run: int = 0,
             span: int = 0) -> None:
    """One MARK row; `n`, `run`, `span` only for a fold (the writer leaves all-zero ones out)."""
    b.mark_call.append(call)
    b.mark_t.append(t)
    b.mark_kind.append(kind)
    b.mark_ref.append(ref)
    b.mark_other.append(other)
    b.mark_n.append(n)
    b.mark_run.append(run)
    b.mark_span.append(span)


# -- the fixed sample (reader, export, CLI) ------------------------------------------------------

SAMPLE_ORIGIN = 1_000_000_000  # absolute perf_counter_ns of time 0 in the fixed sample
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

SAMPLE_FUNCTIONS = [
    {"id": 1, "qualname": "main", "module": "__main__", "file": "/tmp/sample.py", "line": 10, "kind": "function"},
    {"id": 2, "qualname": "fib", "module": "__main__", "file": "/tmp/sample.py", "line": 3, "kind": "function"},
    {"id": 3, "qualname": "Shop.items", "module": "shop", "file": "/tmp/shop.py", "line": 7, "kind": "generator"},
    {"id": 4, "qualname": "fetch", "module": "__main__", "file": "/tmp/sample.py", "line": 20, "kind": "coroutine"},
]
SAMPLE_THREADS = [
    {"id": 1, "ident": 140001, "native_id": 501, "name": "MainThread"},
    {"id": 2, "ident": 140002, "native_id": 502, "name": "worker-1"},
]
SAMPLE_TASKS = [{"id": 1, "name": "Task-1", "thread": 1, "creator": 1, "root": 6}]


def _rows(batch: Batch, rows: list[tuple[int, int, int, int, int, int, int]]) -> None:
    for par, fn, thr, t0, args, task, flag in rows:
        add_call(batch, par, fn, thr, SAMPLE_ORIGIN + t0, args, task, flag)


def _exits(batch: Batch, rows: list[tuple[int, int, int, int]]) -> None:
    for call, t1, how, val in rows:
        add_exit(batch, call, SAMPLE_ORIGIN + t1, how, val)


def _marks(batch: Batch, rows: list[tuple[int, int, int, int, int]]) -> None:
    for call, t, kind, ref, other in rows:
        add_mark(batch, call, SAMPLE_ORIGIN + t, kind, ref, other)


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
    b1 = Batch(functions=SAMPLE_FUNCTIONS[:3], threads=SAMPLE_THREADS, strings_first_id=1,
               strings=["", "n=2", "n=1", "n=0", "1", "ValueError: n=0"], call_first_id=1)
    # string ids: 1 "" (empty args of main), 2 n=2, 3 n=1, 4 n=0, 5 "1", 6 ValueError
    _rows(b1, [(0, 1, 1, 0, 1, 0, 0), (1, 2, 1, 10, 2, 0, 0), (2, 2, 1, 20, 3, 0, 0), (2, 2, 1, 40, 4, 0, 0)])
    _exits(b1, [(3, 30, F.END_RETURN, 5), (4, 50, F.END_RAISE, 6)])
    _marks(b1, [(4, 45, F.MARK_RAISE, 6, 0), (2, 55, F.MARK_HANDLED, 6, 0)])
    b2 = Batch(functions=SAMPLE_FUNCTIONS[3:], tasks=SAMPLE_TASKS, strings_first_id=7,
               strings=["self=<shop.Shop object at 0x1>", "None", "KeyError: 'x'", "url='a'", "n=5"],
               call_first_id=5)
    # string ids: 7 self=..., 8 None, 9 KeyError, 10 url='a', 11 n=5
    _rows(b2, [(1, 3, 1, 110, 7, 0, 0), (1, 4, 1, 500, 10, 1, 0), (0, 2, 2, 50, 11, 0, 0)])
    _exits(b2, [(2, 100, F.END_RETURN, 5), (5, 400, F.END_RETURN, 8), (1, 1000, F.END_RETURN, 8),
                (7, 60, F.END_UNFINISHED, 0)])
    _marks(b2, [(5, 120, F.MARK_SUSPEND, 5, 0), (5, 200, F.MARK_RESUME, 0, 1), (5, 210, F.MARK_HANDLED, 9, 0)])
    return [b1, b2]


SAMPLE_END = {"t_end_abs": SAMPLE_ORIGIN + 1200, "reason": "exit", "exit_code": 0, "signal": None, "error": None}


def write_sample(target: str | os.PathLike[str] | BinaryIO, *, finish: bool = True,
                 meta: dict[str, Any] | None = None) -> None:
    w = SessionWriter(target, dict(meta or META), SAMPLE_ORIGIN)
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


# -- the profile sample (exact stats and exports) ------------------------------------------------
#
# A small session with known times, for exact stats and export tests.
#
# Thread 1 (MainThread):            Thread 2 (worker):
#   1 main      0 .. 1000             7 work   100 .. 400
#     2 fib       10 .. 100             8 leaf   150 .. 250
#       3 fib       20 .. 50
#         4 fib       30 .. 40 (raises ValueError)
#     5 numbers   200 .. 320 (generator: suspended 220 .. 300, resumed by main)
#       6 leaf      305 .. 315
#
# Running times: main 1000, fib 90/30/10, numbers 40 (120 minus 80 suspended), leaf 10 and 100,
# work 300. Self: main 870, fib 60/20/10, numbers 30, leaf 10/100, work 200.
PROFILE_ORIGIN = 7_000_000
PROFILE_FUNCS = [
    {"id": 1, "qualname": "main", "module": "app", "file": "/src/app.py", "line": 1, "kind": "function"},
    {"id": 2, "qualname": "fib", "module": "app", "file": "/src/app.py", "line": 10, "kind": "function"},
    {"id": 3, "qualname": "numbers", "module": "app.gen", "file": "/src/app/gen.py", "line": 5, "kind": "generator"},
    {"id": 4, "qualname": "leaf", "module": "app", "file": "/src/app.py", "line": 20, "kind": "function"},
    {"id": 5, "qualname": "Pool.work", "module": "app.pool", "file": "/src/app/pool.py", "line": 3, "kind": "function"},
]
PROFILE_CALLS = [  # parent, function, thread, t0, args text
    (0, 1, 1, 0, "x=1"), (1, 2, 1, 10, "n=2"), (2, 2, 1, 20, "n=1"), (3, 2, 1, 30, "n=0"), (1, 3, 1, 200, "n=3"),
    (5, 4, 1, 305, ""), (0, 5, 2, 100, "self=<Pool>"), (7, 4, 2, 150, ""),
]
PROFILE_EXITS = [  # call, t1, how, text
    (4, 40, F.END_RAISE, "ValueError: n=0"), (3, 50, F.END_RETURN, "1"), (2, 100, F.END_RETURN, "1"),
    (8, 250, F.END_RETURN, "None"), (6, 315, F.END_RETURN, "None"), (5, 320, F.END_RETURN, "None"),
    (7, 400, F.END_RETURN, "None"), (1, 1000, F.END_RETURN, "None"),
]
PROFILE_MARKS = [(4, 35, F.MARK_RAISE, "ValueError: n=0", 0), (5, 220, F.MARK_SUSPEND, "0", 0),
         (5, 300, F.MARK_RESUME, "", 1)]


def write_profile_sample(path: str | os.PathLike[str]) -> None:
    """A small session with known times, for exact stats and export tests (see above)."""
    texts: list[str] = []

    def sid(text: str) -> int:
        if text not in texts:
            texts.append(text)
        return texts.index(text) + 1

    b = Batch()
    b.functions = list(PROFILE_FUNCS)
    b.threads = [{"id": 1, "ident": 11, "native_id": 101, "name": "MainThread"},
                 {"id": 2, "ident": 12, "native_id": 102, "name": "worker"}]
    for par, fn, thr, t0, args in PROFILE_CALLS:
        add_call(b, par, fn, thr, PROFILE_ORIGIN + t0, sid(args))
    for call, t1, how, text in PROFILE_EXITS:
        add_exit(b, call, PROFILE_ORIGIN + t1, how, sid(text))
    for call, t, kind, text, other in PROFILE_MARKS:
        add_mark(b, call, PROFILE_ORIGIN + t, kind, sid(text) if text else 0, other)
    b.strings = texts
    meta: dict[str, Any] = {"pid": 42, "argv": ["app.py"], "cwd": "/src"}
    writer = SessionWriter(path, meta, PROFILE_ORIGIN)
    writer.write_batch(b)
    writer.finish({"t_end_abs": PROFILE_ORIGIN + 1000, "reason": "exit", "exit_code": 0})


# -- acting out a program (the explorer's tests) ------------------------------------------------

BUILDER_ORIGIN = 5_000_000_000


class TraceBuilder:
    """Act out a program; `data()` is the session's bytes, `save(path)` writes it."""

    def __init__(self, step: int = 10, meta: dict[str, Any] | None = None, origin: int = BUILDER_ORIGIN,
                 intern: bool = False) -> None:
        """`origin`: the absolute clock reading of time 0 (the processes of one session differ).
        `intern`: each text is written once and named by the same string id whenever it comes
        again, as the recorders do (else each use writes it anew)."""
        self.step = step
        self.now = 0
        self.out = io.BytesIO()
        base_meta = {"pid": 99, "argv": ["prog.py"], "command": "run", "python": "3.12.1",
                     "options": {"args": "safe", "include": [], "exclude": [], "flush_interval_s": 0.1}}
        base_meta.update(meta or {})
        self.origin = origin
        self.exit_code: int | None = 0  # what ENDS says (`data`/`save` without one)
        self.writer_meta = base_meta
        self.writer = SessionWriter(self.out, base_meta, origin)
        self.batch = Batch()
        self.func_ids: dict[str, int] = {}
        self.thread_ids: set[int] = set()
        self.next_call = 1
        self.next_string = 1
        self.batch.call_first_id = 1
        self.batch.strings_first_id = 1
        self.stacks: dict[int, list[int]] = {}
        self.thread_of: dict[int, int] = {}
        self.task_defs: list[dict[str, Any]] = []
        self.interned: dict[str, int] | None = {} if intern else None

    def _t(self, t: int | None) -> int:
        self.now = self.now + self.step if t is None else t
        return self.origin + self.now

    def _str(self, text: str | None) -> int:
        if text is None:
            return 0
        if self.interned is not None and text in self.interned:
            return self.interned[text]
        sid = self.next_string
        self.next_string += 1
        self.batch.strings.append(text)
        if self.interned is not None:
            self.interned[text] = sid
        return sid

    def func(self, name: str, module: str = "__main__", kind: str = "function", file: str = "/flowtrace-test/prog.py", line: int = 1) -> int:
        key = name if module == "__main__" else f"{module}:{name}"  # (one <module> per module)
        if key not in self.func_ids:
            fid = len(self.func_ids) + 1
            self.func_ids[key] = fid
            self.batch.functions.append({"id": fid, "qualname": name, "module": module, "file": file, "line": line, "kind": kind})
        return self.func_ids[key]

    def thread(self, tid: int, name: str | None = None) -> None:
        if tid not in self.thread_ids:
            self.thread_ids.add(tid)
            self.batch.threads.append({"id": tid, "ident": 1000 + tid, "native_id": 2000 + tid, "name": name or f"Thread-{tid}"})

    def task(self, task_id: int, name: str, thread: int = 1, root: int = 0, creator: int = 0) -> None:
        self.batch.tasks.append({"id": task_id, "name": name, "thread": thread, "creator": creator, "root": root})

    def enter(self, name: str, parent: int | None = None, thread: int = 1, task: int = 0, args: str | None = None,
              t: int | None = None, module: str = "__main__", kind: str = "function", flag: int = 0,
              file: str = "/flowtrace-test/prog.py") -> int:
        self.thread(thread, "MainThread" if thread == 1 else None)
        fid = self.func(name, module, kind, file)
        stack = self.stacks.setdefault(thread, [])
        if parent is None:
            parent = stack[-1] if stack else 0
        cid = self.next_call
        self.next_call += 1
        add_call(self.batch, parent, fid, thread, self._t(t), self._str(args), task, flag)
        stack.append(cid)
        self.thread_of[cid] = thread
        return cid

    def leave(self, cid: int, result: str | None = None, raised: str | None = None, t: int | None = None,
              how: int | None = None) -> None:
        stack = self.stacks[self.thread_of[cid]]
        if cid in stack:
            stack.remove(cid)
        t1 = self._t(t)
        if how is None:
            how = F.END_RAISE if raised is not None else F.END_RETURN
        add_exit(self.batch, cid, t1, how, self._str(raised if raised is not None else result))

    def mark(self, cid: int, kind: int, ref: str | None = None, other: int = 0, t: int | None = None,
             n: int = 0, run: int = 0, span: int = 0) -> None:
        t_abs = self._t(t)
        add_mark(self.batch, cid, t_abs, kind, self._str(ref), other, n, run, span)

    def fold(self, cid: int, n: int, run: int, span: int, by: int = 0, value: str | None = None,
             t: int | None = None) -> None:
        """`n` quiet runs of suspended generator `cid` in one row (FORMAT 1.1): it is suspended
        again afterwards, and the clock is at the last run's yield (t + span)."""
        self.mark(cid, F.MARK_FOLD, value, by, t, n, run, span)
        self.now += span

    def suspend(self, cid: int, value: str | None = None) -> None:
        self.stacks[self.thread_of[cid]].remove(cid)
        self.mark(cid, F.MARK_SUSPEND, value)

    def resume(self, cid: int, by: int = 0) -> None:
        self.stacks[self.thread_of[cid]].append(cid)
        self.mark(cid, F.MARK_RESUME, None, by)

    def flush(self) -> None:
        """End the current batch: what follows goes into new chunks."""
        self.writer.write_batch(self.batch)
        b = Batch()
        b.call_first_id = self.next_call
        b.strings_first_id = self.next_string
        self.batch = b

    def data(self, finish: bool = True, reason: str = "exit", exit_code: int | None = None) -> bytes:
        """`exit_code`: what ENDS says (default: the builder's `exit_code`, 0)."""
        self.flush()
        if finish:
            code = self.exit_code if exit_code is None else exit_code
            self.writer.finish({"t_end_abs": self._t(None), "reason": reason, "exit_code": code, "signal": None,
                                "error": None})
        return self.out.getvalue()

    def save(self, path: str, finish: bool = True) -> str:
        with open(path, "wb") as fh:
            fh.write(self.data(finish))
        return path


def child_process(pid: int, ppid: int, argv: list[str], start: int, how: str = "exec",
                  started_by: tuple[int, int, int] | None = None, **meta: Any) -> TraceBuilder:
    """A part of a session of several processes (docs/FORMAT.md): process `pid`, started `start`
    ns after the root (BUILDER_ORIGIN) by the thread with ident `started_by[1]` of process
    `started_by[0]`, `started_by[2]` ns after the root's origin."""
    by = None if started_by is None else {"pid": started_by[0], "thread": started_by[1], "t": BUILDER_ORIGIN + started_by[2]}
    info = {"pid": pid, "ppid": ppid, "argv": argv, "command": how,
            "process": {"how": how, "started_by": by, "root": "trace.ftr"}, **meta}
    return TraceBuilder(meta=info, origin=BUILDER_ORIGIN + start)


def save_session(directory: str, root: TraceBuilder, parts: list[TraceBuilder], name: str = "trace.ftr") -> str:
    """Write a session of several processes: `root` as `name`, the parts as `name.d/<pid>.ftr`."""
    path = os.path.join(directory, name)
    os.makedirs(path + ".d", exist_ok=True)
    for part in parts:
        part.save(os.path.join(path + ".d", f"{part.writer_meta['pid']}.ftr"))
    return root.save(path)


def root_program() -> tuple[TraceBuilder, dict[str, int]]:
    """pid 100 (`prog.py --jobs 2`): main (0..500 ns) -> spawn (10..30 ns), on the thread with ident 1001."""
    root = TraceBuilder(meta={"pid": 100, "argv": ["prog.py", "--jobs", "2"], "parts": "trace.ftr.d"})
    ids = {"main": root.enter("main", args="", t=0), "spawn": root.enter("spawn", args="n=2", t=10)}
    root.leave(ids["spawn"], "None", t=30)
    root.leave(ids["main"], "None", t=500)
    return root, ids


def fork_child(code: int = 0) -> TraceBuilder:
    """pid 101, forked 20 ns after the root by its thread 1001 while `spawn` ran (25 ns): two
    `work` calls; with `code`, the second raises and the process exits with it."""
    a = child_process(101, 100, ["prog.py", "--jobs", "2"], 20, how="fork", started_by=(100, 1001, 25))
    w = a.enter("work", args="i=1", t=5)
    a.leave(w, "1", t=50)
    w = a.enter("work", args="i=2", t=60)
    a.leave(w, raised="ValueError: bad" if code else None, result=None if code else "2", t=90)
    a.exit_code = code
    return a


def exec_child() -> TraceBuilder:
    """pid 102, `python -m pkg.worker`, started 40 ns after the root, with two threads."""
    b = child_process(102, 100, ["-m", "pkg.worker"], 40, started_by=(100, 1001, 28))
    x = b.enter("<module>", kind="module", module="pkg.worker", t=1)
    y = b.enter("helper", args="k='x'", thread=2, t=5)
    b.leave(y, "'y'", t=9)
    b.leave(x, None, t=100)
    return b


def several_processes(directory: str) -> str:
    """A session of three processes: root_program, fork_child (failed: exit 3), exec_child."""
    root, _ = root_program()
    return save_session(directory, root, [fork_child(code=3), exec_child()])


def meta_for(pid: int) -> dict:
    """META naming a recording process (`pid` on this host): a live session while it runs."""
    return {"pid": pid, "hostname": socket.gethostname(), "started_wall_ns": time.time_ns() - 10**9}


class Feeder:
    """Appends what the builder has written so far to a real file (whole chunks, or a cut)."""

    def __init__(self, builder: TraceBuilder, path: str) -> None:
        self.b, self.path, self.written = builder, path, 0
        self.sync()

    def sync(self, keep_back: int = 0) -> None:
        data = self.b.out.getvalue()
        end = len(data) - keep_back
        with open(self.path, "ab") as fh:
            fh.write(data[self.written:end])
        self.written = end

    def step_calls(self, names: list[str]) -> None:
        for name in names:
            self.b.leave(self.b.enter(name))
        self.b.flush()
        self.sync()


def sample_program() -> TraceBuilder:
    """main -> parse(text='a b') -> [tokenize, fib(n=3) -> fib, fib], gen interleaved, a raise."""
    b = TraceBuilder()
    m = b.enter("main", args="")
    p = b.enter("parse", args="text='a b'")
    tk = b.enter("tokenize", args="s='a b'")
    b.leave(tk, "['a', 'b']", t=40)
    b.leave(p, "2", t=50)
    f = b.enter("fib", args="n=3", t=60)
    f1 = b.enter("fib", args="n=2", t=70)
    b.leave(f1, "1", t=100)
    f2 = b.enter("fib", args="n=1", t=110)
    b.leave(f2, "1", t=120)
    b.leave(f, "2", t=160)
    g = b.enter("numbers", args="k=2", t=170, kind="generator")
    b.suspend(g, "0")
    c = b.enter("consume", args="x=0", t=190)
    b.leave(c, "None", t=200)
    b.resume(g, m)
    h = b.enter("helper", args="i=1", t=220)
    b.leave(h, "1", t=230)
    b.suspend(g, "1")
    c2 = b.enter("consume", args="x=1", t=250)
    b.leave(c2, "None", t=260)
    b.resume(g, m)
    b.leave(g, "None", t=280)
    bad = b.enter("check", args="value=-1", t=290)
    b.leave(bad, raised="ValueError: negative", t=300)
    b.leave(m, raised="ValueError: negative", t=310)
    return b


def threads_program() -> TraceBuilder:
    """A main thread and a worker thread, with arguments, results and an exception."""
    b = TraceBuilder(step=1000)
    m = b.enter("main", args="argv=['shop.py']")
    w = b.enter("Worker.run", thread=2, args="self=<Worker 1>")
    for i in range(3):
        o = b.enter("order_total", args=f"order_id={i}, items=[{i}, {i + 1}]")
        p = b.enter("price_of", args=f"sku='A{i}'")
        b.leave(p, f"{10 * (i + 1)}.0")
        b.leave(o, f"{25 * (i + 1)}.0")
    job = b.enter("fetch", thread=2, args="url='http://example/1'")
    b.leave(job, "b'ok'")
    bad = b.enter("order_total", args="order_id=99, items=[]")
    b.leave(bad, raised="ValueError: empty order 99")
    b.leave(w, "None")
    b.leave(m, "0")
    return b


def wide_program(children: int = 3000) -> TraceBuilder:
    b = TraceBuilder()
    m = b.enter("main")
    for i in range(children):
        c = b.enter("handle", args=f"item={i}")
        b.leave(c)
        if i % 100 == 99:
            b.flush()
    b.leave(m)
    return b


def load(data: bytes) -> TraceData:
    """The explorer's columns of a whole session."""
    from flowtrace_tui.model import TraceData  # (the explorer's own loader, for its tests)

    d = TraceData("t")
    d.feed(ChunkReader.from_bytes(data).poll())
    return d


def random_trace(seed: int) -> TraceBuilder:
    """Threads, generators and plain calls interleaved at random, flushed at random points."""
    rng = random.Random(seed)
    b = TraceBuilder()
    open_gens: list[int] = []
    for _ in range(rng.randint(20, 120)):
        thread = rng.choice((1, 1, 1, 2, 3))
        stack = b.stacks.get(thread, [])
        r = rng.random()
        if r < 0.45 or not stack:
            kind = "generator" if rng.random() < 0.15 else "function"
            cid = b.enter(rng.choice("abcdefg"), thread=thread, kind=kind, args=f"v={rng.randint(0, 9)}")
            if kind == "generator":
                b.suspend(cid)
                open_gens.append(cid)
        elif r < 0.8:
            b.leave(stack[-1], "r")
        elif open_gens:
            g = rng.choice(open_gens)
            if g not in b.stacks[b.thread_of[g]]:
                if rng.random() < 0.3:  # quiet runs folded into one row first
                    span = rng.randint(1, 60)
                    b.fold(g, rng.randint(1, 4), rng.randint(0, span), span)
                b.resume(g)
                if rng.random() < 0.5:
                    b.leave(g)
                    open_gens.remove(g)
        if rng.random() < 0.1:
            b.flush()
    return b


# -- random sessions (two ways of reading one session compared) ----------------------------------
#
# Random but well-formed `.ftr` sessions, for tests that compare two ways of reading one.
#
# A small simulation of a program: a few threads, each with its stack; functions, generators
# (suspended, then resumed from anywhere -- also after the call that first ran them returned),
# exceptions, asyncio task ids, texts interned and reused across batches, batches flushed at
# random points, and a session that may end with calls still running (with or without an end
# record). Every call's parent is the call on top of its thread's stack when it started.
RANDOM_ORIGIN = 5_000_000_000

RANDOM_FUNCS = [
    {"id": 1, "qualname": "<module>", "module": "__main__", "file": "/w/app.py", "line": 1, "kind": "module"},
    {"id": 2, "qualname": "main", "module": "__main__", "file": "/w/app.py", "line": 3, "kind": "function"},
    {"id": 3, "qualname": "work", "module": "app.work", "file": "/w/app/work.py", "line": 10, "kind": "function"},
    {"id": 4, "qualname": "leaf", "module": "app.work", "file": "/w/app/work.py", "line": 20, "kind": "function"},
    {"id": 5, "qualname": "numbers", "module": "app.gen", "file": "/w/app/gen.py", "line": 5, "kind": "generator"},
    {"id": 6, "qualname": "fetch", "module": "app.net", "file": "/w/app/net.py", "line": 7, "kind": "coroutine"},
    {"id": 7, "qualname": "Model", "module": "app.model", "file": "/w/app/model.py", "line": 2, "kind": "class"},
    {"id": 8, "qualname": "Model.save", "module": "app.model", "file": "/w/app/model.py", "line": 9,
     "kind": "function"},
]
RANDOM_GENERATORS = {5, 6}
RANDOM_TEXTS = ["", "n=1", "n=2", "x='a'", "None", "0", "[1, 2, 3]", "ValueError: bad", "KeyError: 'k'", "self=<M>"]


class _Sim:
    """The simulated program of `random_session`."""

    def __init__(self, rng: random.Random, threads: int) -> None:
        self.rng = rng
        self.t = RANDOM_ORIGIN
        self.next_id = 1
        self.stacks: dict[int, list[int]] = {th: [] for th in range(1, threads + 1)}
        self.suspended: list[int] = []
        self.fn_of: dict[int, int] = {}
        self.thread_of: dict[int, int] = {}
        self.str_ids: dict[str, int] = {}
        self.next_str = 1
        self.batch = Batch()
        self.batch.strings_first_id = 1
        self.batch.call_first_id = 1
        self.batch.functions = list(RANDOM_FUNCS)
        self.batch.threads = [{"id": th, "ident": 1000 + th, "native_id": 2000 + th,
                               "name": "MainThread" if th == 1 else f"worker-{th}"} for th in self.stacks]
        self.batch.tasks = [{"id": 1, "name": "Task-1", "thread": 1, "creator": 0, "root": 0},
                            {"id": 2, "name": "", "thread": 1, "creator": 0, "root": 0}]
        self.batches: list[Batch] = []

    def tick(self) -> int:
        self.t += self.rng.choice((0, 1, 3, 10, 250))
        return self.t

    def sid(self, text: str | None) -> int:
        if text is None:
            return 0
        if text not in self.str_ids or self.rng.random() < 0.1:  # sometimes stored again
            self.str_ids[text] = self.next_str
            self.next_str += 1
            self.batch.strings.append(text)
        return self.str_ids[text]

    def flush(self) -> None:
        self.batches.append(self.batch)
        b = Batch()
        b.strings_first_id = self.next_str
        b.call_first_id = self.next_id
        self.batch = b

    def start(self, thread: int) -> None:
        stack = self.stacks[thread]
        fn = 1 if not stack and thread == 1 and self.next_id == 1 else self.rng.choice(range(2, 9))
        cid = self.next_id
        self.next_id += 1
        t0 = self.tick()
        args = self.sid(self.rng.choice(RANDOM_TEXTS) if self.rng.random() < 0.9 else None)
        task = self.rng.choice((0, 0, 0, 1, 2)) if fn == 6 else 0
        flag = 1 if cid <= 2 and self.rng.random() < 0.2 else 0
        add_call(self.batch, stack[-1] if stack else 0, fn, thread, t0, args, task, flag)
        self.fn_of[cid] = fn
        self.thread_of[cid] = thread
        stack.append(cid)

    def end(self, thread: int) -> None:
        cid = self.stacks[thread].pop()
        how = F.END_RAISE if self.rng.random() < 0.15 else F.END_RETURN
        text = self.rng.choice(RANDOM_TEXTS[7:9]) if how == F.END_RAISE else self.rng.choice(RANDOM_TEXTS + [None])
        t1 = self.tick()
        add_exit(self.batch, cid, t1, how, self.sid(text))
        if self.rng.random() < 0.2:
            self.mark(cid, F.MARK_HANDLED, self.sid("KeyError: 'k'"), 0)

    def mark(self, cid: int, kind: int, ref: int, other: int, n: int = 0, run: int = 0, span: int = 0) -> None:
        add_mark(self.batch, cid, self.tick(), kind, ref, other, n, run, span)
        if span:
            self.t += span

    def step(self) -> None:
        rng = self.rng
        thread = rng.choice(list(self.stacks))
        stack = self.stacks[thread]
        r = rng.random()
        if not stack or (r < 0.45 and len(stack) < 12):
            self.start(thread)
        elif self.fn_of[stack[-1]] in RANDOM_GENERATORS and r < 0.7 and len(stack) > 1:
            cid = stack.pop()  # suspend: off the stack, still running
            self.mark(cid, F.MARK_SUSPEND, self.sid(rng.choice(RANDOM_TEXTS)), 0)
            self.suspended.append(cid)
        elif self.suspended and r < 0.8:
            mine = [g for g in self.suspended if self.thread_of[g] == thread]
            if mine and r < 0.72:  # quiet runs folded into one row (format 1.1)
                span, n = rng.choice((5, 40, 300)), rng.choice((1, 2, 5))
                run = span if n == 1 else rng.randrange(span + 1)  # one run lasts as long as it runs
                self.mark(rng.choice(mine), F.MARK_FOLD, self.sid(rng.choice(RANDOM_TEXTS)), stack[-1], n, run, span)
            elif mine:
                cid = rng.choice(mine)
                self.suspended.remove(cid)
                self.mark(cid, F.MARK_RESUME, 0, stack[-1])
                stack.append(cid)
        elif len(stack) > 1 or r < 0.85:
            self.end(thread)

    def finish(self, how: str) -> list[Batch]:
        if how == "finished":
            for thread, stack in self.stacks.items():
                while len(stack) > 1 or (stack and thread != 1):
                    self.end(thread)
            for cid in self.stacks[1] + self.suspended:  # stopped while running: how = 3
                add_exit(self.batch, cid, self.tick(), F.END_UNFINISHED, 0)
        self.flush()
        return self.batches


def random_session(path: Any, seed: int, *, steps: int = 400, threads: int = 2, ending: str = "finished") -> None:
    """Write a random session to `path`; `ending` is "finished", "killed" (no end record, calls
    left open) or "stopped" (an end record, calls left open without EXIT rows)."""
    rng = random.Random(seed)
    sim = _Sim(rng, threads)
    sim.start(1)
    for _ in range(steps):
        sim.step()
        if rng.random() < 0.04:
            sim.flush()
    batches = sim.finish("finished" if ending == "finished" else "open")
    meta = {"pid": 7, "argv": ["app.py"], "cwd": "/w", "options": {"args": "safe", "include": [], "exclude": []}}
    writer = SessionWriter(path, meta, RANDOM_ORIGIN)
    for b in batches:
        for name in ("call_parent", "call_func", "call_thread", "exit_call", "mark_call", "mark_ref", "mark_other",
                     "mark_n"):
            if not isinstance(getattr(b, name), array):
                setattr(b, name, array("I", getattr(b, name)))
        writer.write_batch(b)
    if ending == "killed":
        writer.abandon()
    else:
        writer.finish({"t_end_abs": sim.tick(), "reason": "exit", "exit_code": 0})


def loop_program() -> TraceBuilder:
    """main -> step(i) x4 -> parse, save (even i), validate (raises at i=3); then report."""
    b = TraceBuilder()
    m = b.enter("main", args="")
    for i in range(4):
        s = b.enter("step", args=f"i={i}")
        p = b.enter("parse", args=f"text='{i}'")
        b.leave(p, str(i))
        if i % 2 == 0:
            v = b.enter("save", args=f"v={i}")
            b.leave(v, "None")
        v = b.enter("validate", args=f"v={i}")
        b.leave(v, raised="ValueError: 3" if i == 3 else None, result=None if i == 3 else "True")
        b.leave(s, raised="ValueError: 3" if i == 3 else None, result=None if i == 3 else "None")
    r = b.enter("report")
    b.leave(r, "'ok'")
    b.leave(m, raised="ValueError: 3")
    return b


Node = tuple  # (name, args, end, children): end "=value" returns value, "!Exc: text" raises (nested_session)


def nested_session(roots: list[Node], step: int = 10, threads: tuple[int, ...] = (1,)) -> bytes:
    """The calls of `roots`, run once on each of `threads` (one after the other)."""
    b = TraceBuilder(step=step)

    def act(node: Node, thread: int) -> None:
        name, args, end, kids = node
        cid = b.enter(name, args=args, thread=thread)
        for k in kids:
            act(k, thread)
        if end.startswith("!"):
            b.leave(cid, raised=end[1:])
        else:
            b.leave(cid, end[1:] if end.startswith("=") else None)

    for t in threads:
        for r in roots:
            act(r, t)
    return b.data()


def loop_nodes(n: int, work: str = "work", raise_at: int = -1, result: str = "1") -> list[Node]:
    """main -> step(i) x n -> parse(s) -> `result`, then `work`(i); step `raise_at` raises."""
    steps = [("step", f"i={i}", "!ValueError: bad" if i == raise_at else "=None",
              [("parse", f"s='{i}'", "=" + result, []), (work, f"i={i}", "=None", [])]) for i in range(n)]
    return [("main", "", "=0", steps)]
