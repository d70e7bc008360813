"""Random but well-formed `.ftr` sessions, for tests that compare two ways of reading one.

A small simulation of a program: a few threads, each with its stack; functions, generators
(suspended, then resumed from anywhere -- also after the call that first ran them returned),
exceptions, asyncio task ids, texts interned and reused across batches, batches flushed at
random points, and a session that may end with calls still running (with or without an end
record). Every call's parent is the call on top of its thread's stack when it started.
"""

from __future__ import annotations

import random
from array import array
from typing import Any

from flowtrace.ftr import format as F
from flowtrace.ftr.writer import SessionWriter
from flowtrace.recorder.base import Batch

ORIGIN = 5_000_000_000

FUNCS = [
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
GENERATORS = {5, 6}
TEXTS = ["", "n=1", "n=2", "x='a'", "None", "0", "[1, 2, 3]", "ValueError: bad", "KeyError: 'k'", "self=<M>"]


class _Sim:
    def __init__(self, rng: random.Random, threads: int) -> None:
        self.rng = rng
        self.t = ORIGIN
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
        self.batch.functions = list(FUNCS)
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
        b = self.batch
        b.call_parent.append(stack[-1] if stack else 0)
        b.call_func.append(fn)
        b.call_thread.append(thread)
        b.call_t0.append(self.tick())
        b.call_args.append(self.sid(self.rng.choice(TEXTS) if self.rng.random() < 0.9 else None))
        b.call_task.append(self.rng.choice((0, 0, 0, 1, 2)) if fn == 6 else 0)
        b.call_flag.append(1 if cid <= 2 and self.rng.random() < 0.2 else 0)
        self.fn_of[cid] = fn
        self.thread_of[cid] = thread
        stack.append(cid)

    def end(self, thread: int) -> None:
        cid = self.stacks[thread].pop()
        how = F.END_RAISE if self.rng.random() < 0.15 else F.END_RETURN
        text = self.rng.choice(TEXTS[7:9]) if how == F.END_RAISE else self.rng.choice(TEXTS + [None])
        b = self.batch
        b.exit_call.append(cid)
        b.exit_t1.append(self.tick())
        b.exit_how.append(how)
        b.exit_val.append(self.sid(text))
        if self.rng.random() < 0.2:
            self.mark(cid, F.MARK_HANDLED, self.sid("KeyError: 'k'"), 0)

    def mark(self, cid: int, kind: int, ref: int, other: int, n: int = 0, run: int = 0, span: int = 0) -> None:
        b = self.batch
        b.mark_call.append(cid)
        b.mark_t.append(self.tick())
        b.mark_kind.append(kind)
        b.mark_ref.append(ref)
        b.mark_other.append(other)
        b.mark_n.append(n)
        b.mark_run.append(run)
        b.mark_span.append(span)
        if span:
            self.t += span

    def step(self) -> None:
        rng = self.rng
        thread = rng.choice(list(self.stacks))
        stack = self.stacks[thread]
        r = rng.random()
        if not stack or (r < 0.45 and len(stack) < 12):
            self.start(thread)
        elif self.fn_of[stack[-1]] in GENERATORS and r < 0.7 and len(stack) > 1:
            cid = stack.pop()  # suspend: off the stack, still running
            self.mark(cid, F.MARK_SUSPEND, self.sid(rng.choice(TEXTS)), 0)
            self.suspended.append(cid)
        elif self.suspended and r < 0.8:
            mine = [g for g in self.suspended if self.thread_of[g] == thread]
            if mine and r < 0.72:  # quiet runs folded into one row (format 1.1)
                span, n = rng.choice((5, 40, 300)), rng.choice((1, 2, 5))
                run = span if n == 1 else rng.randrange(span + 1)  # one run lasts as long as it runs
                self.mark(rng.choice(mine), F.MARK_FOLD, self.sid(rng.choice(TEXTS)), stack[-1], n, run, span)
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
                b = self.batch
                b.exit_call.append(cid)
                b.exit_t1.append(self.tick())
                b.exit_how.append(F.END_UNFINISHED)
                b.exit_val.append(0)
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
    writer = SessionWriter(path, meta, ORIGIN)
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
