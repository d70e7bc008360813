"""Write synthetic `.ftr` sessions of any size, with the shapes real programs have.

    python benchmarks/synth.py OUT.ftr --calls 10000000 [--seed 1] [--unfinished]

The trace is built with numpy from a few templates and written through the real
`SessionWriter` in batches of ~100k calls (what the recorder's flusher does):

- main thread: `<module>` → `main` → one `process_all` node with up to 1 M `handle` children,
  chains of deep recursion (`recurse`, depth 800), generator pipelines whose children interleave
  with their consumer's (`numbers` / `produce` vs `consume`, with suspend/resume marks), and
  many small random request trees (`handle_request` → `app.db` / `json` / `logging` calls);
- three worker threads running request trees at the same time (ids interleave by start time);
- about a fifth of the calls carry argument text, a tenth a result, a few raise.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from array import array
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from flowtrace.ftr import format as F  # noqa: E402
from flowtrace.ftr.writer import SessionWriter  # noqa: E402
from flowtrace.recorder.base import Batch  # noqa: E402

ORIGIN = 1_000_000_000_000

FUNCS = [
    # (qualname, module, kind)
    ("<module>", "__main__", "function"),  # 1
    ("main", "__main__", "function"),  # 2
    ("process_all", "app.batch", "function"),  # 3
    ("handle", "app.batch", "function"),  # 4
    ("recurse", "app.algo", "function"),  # 5
    ("numbers", "app.pipeline", "generator"),  # 6
    ("produce", "app.pipeline", "function"),  # 7
    ("consume", "app.pipeline", "function"),  # 8
    ("worker", "app.workers", "function"),  # 9
    ("handle_request", "app.web", "function"),  # 10
    ("Router.dispatch", "app.web", "function"),  # 11
    ("OrderService.total", "app.orders", "function"),  # 12
    ("Session.query", "app.db", "function"),  # 13
    ("Connection.execute", "app.db", "function"),  # 14
    ("dumps", "json", "function"),  # 15
    ("Logger.info", "logging", "function"),  # 16
    ("validate", "app.orders", "function"),  # 17
    ("price_of", "app.orders", "function"),  # 18
]
F_MODULE, F_MAIN, F_PROCESS_ALL, F_HANDLE, F_RECURSE, F_NUMBERS, F_PRODUCE, F_CONSUME, F_WORKER = range(1, 10)
REQUEST_FUNCS = list(range(11, 19))


@dataclass
class Seg:
    """A piece of one thread's calls in start order: parent is an index into the stream (-1 root)."""

    parent: np.ndarray  # int64
    func: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    susp: np.ndarray | None = None  # (local call index, t_suspend, t_resume) rows for generators


def _tree_template(rng: random.Random, size: int) -> Seg:
    """A random request tree of about `size` calls in DFS order, on a sequential clock."""
    parent, func, t0, t1 = [], [], [], []
    clock = [0]

    def node(par: int, fn: int, depth: int) -> None:
        me = len(parent)
        parent.append(par)
        func.append(fn)
        clock[0] += rng.randint(1, 50)
        t0.append(clock[0])
        t1.append(0)
        if depth < 7:
            for _ in range(rng.choice((0, 0, 1, 2, 3, 5))):
                if len(parent) >= size:
                    break
                node(me, rng.choice(REQUEST_FUNCS), depth + 1)
        clock[0] += rng.randint(5, 400)
        t1[me] = clock[0]

    while len(parent) < size:
        node(-1, 10, 0)
    return Seg(np.array(parent), np.array(func), np.array(t0), np.array(t1))


def _tile(tpl: Seg, count: int, start: int, gap: int) -> tuple[Seg, int]:
    """`count` copies of a template one after the other from time `start`; returns the end time."""
    m = len(tpl.parent)
    span = int(tpl.t1.max() - tpl.t0.min()) + gap
    k = np.arange(count, dtype=np.int64)
    off_id = np.repeat(k * m, m)
    off_t = np.repeat(start + k * span, m)
    par = np.tile(tpl.parent, count)
    par = np.where(par >= 0, par + off_id, -1)
    seg = Seg(par, np.tile(tpl.func, count), np.tile(tpl.t0, count) + off_t, np.tile(tpl.t1, count) + off_t)
    if tpl.susp is not None:
        s = np.tile(tpl.susp, (count, 1))
        rep = np.repeat(k, len(tpl.susp))
        s[:, 0] += rep * m
        s[:, 1] += start + rep * span
        s[:, 2] += start + rep * span
        seg.susp = s
    return seg, start + count * span


def _wide(width: int) -> Seg:
    """`process_all` with `width` leaf children."""
    i = np.arange(width, dtype=np.int64)
    parent = np.concatenate(([-1], np.zeros(width, np.int64)))
    func = np.concatenate(([F_PROCESS_ALL], np.full(width, F_HANDLE)))
    t0 = np.concatenate(([0], 10 + 20 * i))
    t1 = np.concatenate(([20 * width + 20], 10 + 20 * i + 15))
    return Seg(parent, func, t0, t1)


def _chain(depth: int) -> Seg:
    """Deep recursion: `recurse` calling itself `depth` times."""
    i = np.arange(depth, dtype=np.int64)
    parent = i - 1
    return Seg(parent, np.full(depth, F_RECURSE), 10 * i, 10 * (2 * depth - i) + 5)


def _pipeline(items: int) -> Seg:
    """A consumer loop over a generator: consume(x) (child of the loop's owner) interleaves with
    produce() (child of the generator) in id order. Local 0 = generator owner `main`-like node."""
    # local 0: `consume_loop` (func main-like), 1: generator `numbers`, then per item produce, consume
    n = 2 + 2 * items
    parent = np.empty(n, np.int64)
    func = np.empty(n, np.int64)
    t0 = np.empty(n, np.int64)
    t1 = np.empty(n, np.int64)
    parent[0], func[0], t0[0] = -1, F_CONSUME, 0
    parent[1], func[1], t0[1] = 0, F_NUMBERS, 5
    k = np.arange(items, dtype=np.int64)
    base = 10 + 40 * k
    parent[2::2], func[2::2], t0[2::2], t1[2::2] = 1, F_PRODUCE, base + 2, base + 8
    parent[3::2], func[3::2], t0[3::2], t1[3::2] = 0, F_CONSUME, base + 20, base + 30
    end = 10 + 40 * items
    t1[1] = end + 2
    t1[0] = end + 5
    susp = np.stack((np.ones(items, np.int64), base + 10, base + 38), axis=1)  # gen suspends, resumes
    return Seg(parent, func, t0, t1, susp)


def _concat(segs: list[Seg], attach: int, offset0: int) -> Seg:
    """Concatenate segments of one stream; roots of each segment hang under `attach`."""
    parts_p, parts_f, parts_0, parts_1, susp = [], [], [], [], []
    off = offset0
    for s in segs:
        parts_p.append(np.where(s.parent >= 0, s.parent + off, attach))
        parts_f.append(s.func)
        parts_0.append(s.t0)
        parts_1.append(s.t1)
        if s.susp is not None:
            x = s.susp.copy()
            x[:, 0] += off
            susp.append(x)
        off += len(s.parent)
    return Seg(np.concatenate(parts_p), np.concatenate(parts_f), np.concatenate(parts_0), np.concatenate(parts_1),
               np.concatenate(susp) if susp else None)


def build(calls: int, seed: int = 1) -> dict[str, np.ndarray]:
    """All calls of the session, in id (start-time) order, as numpy arrays."""
    rng = random.Random(seed)
    tpl = _tree_template(rng, 300)
    main_share = int(calls * 0.7)
    worker_share = (calls - main_share) // 3
    # main thread stream: 0 <module>, 1 main, then segments
    width = max(1, min(1_000_000, calls // 10))
    segs: list[Seg] = []
    t = 100
    wide = _wide(width)
    wide.t0 += t
    wide.t1 += t
    segs.append(wide)
    t = int(wide.t1.max()) + 50
    chain = _chain(800)
    s, t = _tile(chain, max(1, int(main_share * 0.1) // 800), t, 30)
    segs.append(s)
    pipe = _pipeline(500)
    s, t = _tile(pipe, max(1, int(main_share * 0.2) // len(pipe.parent)), t, 30)
    segs.append(s)
    used = sum(len(x.parent) for x in segs) + 2
    rest = max(0, main_share - used)
    s, t = _tile(tpl, max(1, rest // len(tpl.parent)), t, 100)
    segs.append(s)
    body = _concat(segs, attach=1, offset0=2)
    main = Seg(np.concatenate(([-1, 0], body.parent)), np.concatenate(([F_MODULE, F_MAIN], body.func)),
               np.concatenate(([0, 50], body.t0)), np.concatenate(([t + 200, t + 100], body.t1)), body.susp)
    streams = [(1, main)]
    total_t = t + 200
    for w in range(3):
        count = max(1, worker_share // len(tpl.parent))
        span = (int(tpl.t1.max()) + 100) * count
        start = 1000 + w * 7 + max(0, (total_t - span) // 2)
        s, end = _tile(tpl, count, start + 10, 100)
        root = Seg(np.array([-1]), np.array([F_WORKER]), np.array([start]), np.array([end + 10]))
        streams.append((2 + w, _concat([root, s], attach=-1, offset0=0)))
        # _concat hung the tiles' roots at -1: hang them under the worker root instead
        st = streams[-1][1]
        st.parent[1:] = np.where(s.parent >= 0, s.parent + 1, 0)
    # merge streams by start time; ids are ranks
    sizes = [len(s.parent) for _, s in streams]
    offs = np.concatenate(([0], np.cumsum(sizes)))
    par = np.concatenate([np.where(s.parent >= 0, s.parent + o, -1) for (_, s), o in zip(streams, offs)])
    thr = np.concatenate([np.full(len(s.parent), tid) for tid, s in streams])
    t0 = np.concatenate([s.t0 for _, s in streams])
    t1 = np.concatenate([s.t1 for _, s in streams])
    func = np.concatenate([s.func for _, s in streams])
    order = np.argsort(t0, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ids = rank + 1  # call id of each stream entry
    out = {
        "parent": np.where(par[order] >= 0, ids[np.maximum(par[order], 0)], 0),
        "func": func[order],
        "thread": thr[order],
        "t0": t0[order],
        "t1": t1[order],
    }
    susp = main.susp
    if susp is not None:
        out["susp_call"] = ids[susp[:, 0]]
        out["susp_t"] = susp[:, 1]
        out["resume_t"] = susp[:, 2]
    n = len(order)
    r = np.random.default_rng(seed)
    out["has_args"] = r.random(n) < 0.2
    out["has_val"] = r.random(n) < 0.1
    out["raises"] = r.random(n) < 0.002
    return out


def _arr(code: str, values: np.ndarray) -> array:
    a = array(code)
    dtype = {"I": np.uint32, "q": np.int64, "B": np.uint8}[code]
    a.frombytes(np.ascontiguousarray(values, dtype=dtype).tobytes())
    return a


def write(path: str, calls: int, seed: int = 1, batch_calls: int = 100_000, unfinished: bool = False,
          meta_extra: dict | None = None) -> int:
    """Write the session; returns the number of calls. `meta_extra`: META keys to add or change
    (a part of a session of several processes: its pid, ppid, process)."""
    d = build(calls, seed)
    n = len(d["t0"])
    meta = {"pid": 1, "ppid": 0, "argv": ["synth.py", str(calls)], "cwd": "/", "python": sys.version,
            "recorder": "python", "command": "synth", "started_wall_ns": 1_700_000_000_000_000_000,
            "options": {"args": "safe", "include": [], "exclude": [], "flush_interval_s": 0.1}, **(meta_extra or {})}
    w = SessionWriter(path, meta, ORIGIN)
    ex_order = np.argsort(d["t1"], kind="stable")
    ex_t1 = d["t1"][ex_order]
    has_susp = "susp_call" in d
    if has_susp:
        mk_call = np.repeat(d["susp_call"], 2)
        mk_t = np.stack((d["susp_t"], d["resume_t"]), axis=1).ravel()
        mk_kind = np.tile(np.array([F.MARK_SUSPEND, F.MARK_RESUME]), len(d["susp_call"]))
        mo = np.argsort(mk_t, kind="stable")
        mk_call, mk_t, mk_kind = mk_call[mo], mk_t[mo], mk_kind[mo]
    next_string = 1
    ex_lo = mk_lo = 0
    if unfinished:
        cut_n = n - n // 50
    else:
        cut_n = n
    for lo in range(0, cut_n, batch_calls):
        hi = min(lo + batch_calls, cut_n)
        b = Batch()
        if lo == 0:
            b.functions = [{"id": i + 1, "qualname": q, "module": m, "file": f"/src/{m.replace('.', '/')}.py",
                            "line": 10 + 7 * i, "kind": k} for i, (q, m, k) in enumerate(FUNCS)]
            b.threads = [{"id": 1, "ident": 1, "native_id": 11, "name": "MainThread"}] + [
                {"id": t, "ident": t, "native_id": 10 + t, "name": f"worker-{t - 1}"} for t in (2, 3, 4)]
        b.call_first_id = lo + 1
        b.strings_first_id = next_string
        sl = slice(lo, hi)
        # argument texts for a fifth of the calls
        args = np.zeros(hi - lo, np.int64)
        ai = np.flatnonzero(d["has_args"][sl])
        fn = d["func"][sl]
        texts = [f"n={(lo + i) % 9973}, key='k{(lo + i) % 101}'" if fn[i] != F_HANDLE else f"item={lo + i}" for i in ai.tolist()]
        args[ai] = np.arange(next_string, next_string + len(ai))
        next_string += len(ai)
        b.strings.extend(texts)
        b.call_parent = _arr("I", d["parent"][sl])
        b.call_func = _arr("I", fn)
        b.call_thread = _arr("I", d["thread"][sl])
        b.call_t0 = _arr("q", d["t0"][sl] + ORIGIN)
        b.call_args = _arr("I", args)
        b.call_task = _arr("I", np.zeros(hi - lo))
        b.call_flag = _arr("B", np.zeros(hi - lo))
        # exits that happened before the next batch's first start
        limit = d["t0"][hi] if hi < n else None
        ex_hi = int(np.searchsorted(ex_t1, limit)) if limit is not None else len(ex_t1)
        if unfinished and hi >= cut_n:
            ex_hi = int(np.searchsorted(ex_t1, d["t0"][cut_n - 1]))
        ec = ex_order[ex_lo:ex_hi]
        ex_lo = ex_hi
        how = np.where(d["raises"][ec], F.END_RAISE, F.END_RETURN)
        val = np.zeros(len(ec), np.int64)
        vi = np.flatnonzero(d["has_val"][ec] | d["raises"][ec])
        vtexts = ["ValueError: bad value %d" % (c % 97) if d["raises"][c] else str(c % 1000) for c in ec[vi].tolist()]
        val[vi] = np.arange(next_string, next_string + len(vi))
        next_string += len(vi)
        b.strings.extend(vtexts)
        b.exit_call = _arr("I", ec + 1)
        b.exit_t1 = _arr("q", d["t1"][ec] + ORIGIN)
        b.exit_how = _arr("B", how)
        b.exit_val = _arr("I", val)
        if has_susp:
            mk_hi = int(np.searchsorted(mk_t, limit)) if limit is not None else len(mk_t)
            sel = slice(mk_lo, mk_hi)
            ok = mk_call[sel] <= hi
            b.mark_call = _arr("I", mk_call[sel][ok])
            b.mark_t = _arr("q", mk_t[sel][ok] + ORIGIN)
            b.mark_kind = _arr("B", mk_kind[sel][ok])
            b.mark_ref = _arr("I", np.zeros(int(ok.sum())))
            b.mark_other = _arr("I", np.zeros(int(ok.sum())))
            mk_lo = mk_hi
        w.write_batch(b)
    if unfinished:
        w.abandon()
    else:
        w.finish({"t_end_abs": int(d["t1"].max()) + ORIGIN + 10, "reason": "exit", "exit_code": 0,
                  "signal": None, "error": None})
    return cut_n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--unfinished", action="store_true", help="leave the session without its end chunk")
    a = ap.parse_args(argv)
    t = time.perf_counter()
    n = write(a.out, a.calls, a.seed, unfinished=a.unfinished)
    size = os.path.getsize(a.out)
    print(f"{a.out}: {n:,} calls, {size / 1e6:.1f} MB, {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
