"""Build small `.ftr` sessions by acting out a program: enter/leave/suspend/resume per thread.

Everything goes through the real `SessionWriter`, so the explorer's tests read the same bytes the
recorder writes. Times advance by `step` ns per event unless given.
"""

from __future__ import annotations

import io
import random
import socket
import time
from typing import Any

from flowtrace.ftr import format as F
from flowtrace.ftr.batch import Batch
from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.writer import SessionWriter
from flowtrace_tui.model import TraceData

ORIGIN = 5_000_000_000


class TraceBuilder:
    def __init__(self, step: int = 10, meta: dict[str, Any] | None = None) -> None:
        self.step = step
        self.now = 0
        self.out = io.BytesIO()
        base_meta = {"pid": 99, "argv": ["prog.py"], "command": "run", "python": "3.12.1",
                     "options": {"args": "safe", "include": [], "exclude": [], "flush_interval_s": 0.1}}
        base_meta.update(meta or {})
        self.writer = SessionWriter(self.out, base_meta, ORIGIN)
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

    def _t(self, t: int | None) -> int:
        self.now = self.now + self.step if t is None else t
        return ORIGIN + self.now

    def _str(self, text: str | None) -> int:
        if text is None:
            return 0
        sid = self.next_string
        self.next_string += 1
        self.batch.strings.append(text)
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
        b = self.batch
        b.call_parent.append(parent)
        b.call_func.append(fid)
        b.call_thread.append(thread)
        b.call_t0.append(self._t(t))
        b.call_args.append(self._str(args))
        b.call_task.append(task)
        b.call_flag.append(flag)
        stack.append(cid)
        self.thread_of[cid] = thread
        return cid

    def leave(self, cid: int, result: str | None = None, raised: str | None = None, t: int | None = None,
              how: int | None = None) -> None:
        stack = self.stacks[self.thread_of[cid]]
        if cid in stack:
            stack.remove(cid)
        b = self.batch
        b.exit_call.append(cid)
        b.exit_t1.append(self._t(t))
        if how is None:
            how = F.END_RAISE if raised is not None else F.END_RETURN
        b.exit_how.append(how)
        b.exit_val.append(self._str(raised if raised is not None else result))

    def mark(self, cid: int, kind: int, ref: str | None = None, other: int = 0, t: int | None = None,
             n: int = 0, run: int = 0, span: int = 0) -> None:
        b = self.batch
        b.mark_call.append(cid)
        b.mark_t.append(self._t(t))
        b.mark_kind.append(kind)
        b.mark_ref.append(self._str(ref))
        b.mark_other.append(other)
        b.mark_n.append(n)
        b.mark_run.append(run)
        b.mark_span.append(span)

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

    def data(self, finish: bool = True, reason: str = "exit") -> bytes:
        self.flush()
        if finish:
            self.writer.finish({"t_end_abs": self._t(None), "reason": reason, "exit_code": 0, "signal": None, "error": None})
        return self.out.getvalue()

    def save(self, path: str, finish: bool = True) -> str:
        with open(path, "wb") as fh:
            fh.write(self.data(finish))
        return path


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


def load(data: bytes) -> TraceData:
    """The explorer's columns of a whole session."""
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
