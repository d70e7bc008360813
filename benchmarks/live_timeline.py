"""A timeline of the real explorer following a busy program, to find what holds new calls off
the screen: `flowtrace-tui run` in tmux (as benchmarks/live_screen.py runs it, with its
priority: `watch`), instrumented from outside (a driver script wraps methods; nothing in
flowtrace_tui knows of it).

    nice -n -15 python benchmarks/live_timeline.py [--seconds 12] [--explorer-path DIR] [--stall-ms 400] [--log FILE]
    python benchmarks/live_timeline.py --from-log FILE      (analyse a kept timeline again)

Logged, each with time.monotonic():
  read      TraceSource.step: calls after it, bytes, more; within it poll (ChunkReader.poll: the
            file's bytes, the chunks' payloads) and calls (TraceData._add_calls: the call columns)
  prefault  Prefaulter._fill (its thread): rows, rows ahead; pf_failed (in read): why it stopped
  update    Pipeline._update (the index to show: a window, or the whole grown)
  publish   Pipeline._publish: calls (window: session calls through), the newest call's start
  catchup   Pipeline._catch_up: calls indexed
  ready     FlowtraceApp.on_index_ready (the view carried to the index)
  timer     Screen._on_timer_update (layout, render, write); layout: Screen._refresh_layout
  display   App._display: what the screen shows now (the newest call on it)
  (each of these with its wall time, the thread's user and system CPU seconds and minor page
  faults in it)
  gc        each collection (gc.callbacks), generation and wall time, thread
  failure   the loader's exception, with its traceback (the screen only says its message)
  rss       every 0.2 s, the explorer's resident memory
  stack     every 10 ms, the UI thread's and the loader's innermost frames of ours/textual's

Then the age of the newest call on screen over time (sampled every 10 ms from the displays; the
newest call's start in the session clock, which may run a little apart from CLOCK_MONOTONIC:
use live_screen.py for the figure, this for where the time goes), and each stall (age above
--stall-ms) with what ran in it: time in each logged kind, long ones, the most sampled frames.
The status line and any failure on the screen at the end are printed (`screen:`).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_screen import PROGRAM, start_in_tmux, tmux, watch  # noqa: E402

DRIVER = r"""
import gc, json, sys, threading, time
sys.argv = ["flowtrace-tui", "run", "busy.py"]
from textual.app import App
from textual.screen import Screen
from flowtrace_tui import app as A
from flowtrace_tui.cli import main
from flowtrace_tui.model import pipeline as P, source as S
out = open(LOG, "w", buffering=1 << 16)
now = time.monotonic
lock = threading.RLock()  # (re-entered: a collection inside log() logs itself)

def log(**kw):
    kw.setdefault("t", now())
    kw["th"] = threading.current_thread().name
    with lock:
        out.write(json.dumps(kw) + "\n")

def wrap(cls, name, make):
    inner = getattr(cls, name)
    setattr(cls, name, make(inner))

import resource
def usage():
    u = resource.getrusage(resource.RUSAGE_THREAD)
    return u.ru_utime, u.ru_stime, u.ru_minflt

def timed(kind, extra=None):
    def make(inner):
        def call(self, *a, **k):
            t, u0 = now(), usage()
            r = inner(self, *a, **k)
            u1 = usage()
            kw = extra(self, r, *a) if extra else {}
            log(kind=kind, t=t, dt=now() - t, user=u1[0] - u0[0], sys=u1[1] - u0[1], flt=u1[2] - u0[2], **kw)
            return r
        return call
    return make

def newest(ix):
    # (the newest call of the index: a window's own last call, else ix.n -- the data of a whole
    # index goes on growing as the loader reads, its n is no call on screen)
    data = ix.data
    n = data.n if data.window is not None else ix.n
    if not n:
        return None, None
    start = (data.meta["origin_ns"] + int(data.col("t0")[n])) / 1e9
    through = data.window.through if data.window is not None else n
    return through, start

def read_extra(src, r):
    pf = src.data._prefault
    return dict(n=src.data.n, bytes=r.bytes_read, more=r.more, pf_failed=pf.failed if pf is not None else None)
wrap(S.TraceSource, "step", timed("read", read_extra))
from flowtrace_tui.model import prefault as PF, loader as L
from flowtrace.ftr import chunks as C
wrap(C.ChunkReader, "poll", timed("poll"))  # (the file's bytes and the chunks' payloads)
wrap(L.TraceData, "_add_calls", timed("calls"))  # (the call columns' rows)
wrap(PF.Prefaulter, "_fill", timed("prefault", lambda pf, r, col, rows, ahead: dict(rows=rows, ahead=ahead, bytes=col.itemsize)))
wrap(P.Pipeline, "_update", timed("update", lambda p, r, *a: dict(
    window=r[1] is not None and r[1].data.window is not None, shown=r[1] is not None, whole_n=r[0].n)))
wrap(P.Pipeline, "_catch_up", timed("catchup", lambda p, r, prev, *a: dict(n0=prev.n, n=r.n)))
if hasattr(P.Pipeline, "_show_newest"):  # (the newest calls read from the file's end: model/newest.py)
    wrap(P.Pipeline, "_show_newest", timed("newest", lambda p, r, *a, **k: dict(n=newest(r[0])[0] if r is not None else None)))
def publish_extra(p, r, publish, ix, final):
    through, start = newest(ix)
    return dict(n=through, start=start, window=ix.data.window is not None)
wrap(P.Pipeline, "_publish", timed("publish", publish_extra))
wrap(A.FlowtraceApp, "on_index_ready", timed("ready", lambda app, r, msg: dict(n=newest(msg.index)[0])))
wrap(Screen, "_on_timer_update", timed("timer", lambda s, r: {}))
wrap(Screen, "_refresh_layout", timed("layout", lambda s, r, *a, **k: {}))
def display_extra(app, r, screen, renderable):
    ix = getattr(app, "index", None)
    if renderable is None or ix is None:
        return dict(n=None)
    through, start = newest(ix)
    return dict(n=through, start=start)
wrap(App, "_display", timed("display", display_extra))

import traceback
def logged_failure(inner):
    def call(self, *a, **k):
        try:
            return inner(self, *a, **k)
        except Exception:
            log(kind="failure", text=traceback.format_exc())
            raise
    return call
wrap(P.Pipeline, "_run", logged_failure)


gc_t = {}
def on_gc(phase, info):
    th = threading.get_ident()
    if phase == "start":
        gc_t[th] = now()
    elif th in gc_t:
        t = gc_t.pop(th)
        log(kind="gc", t=t, dt=now() - t, gen=info["generation"], collected=info["collected"])
gc.callbacks.append(on_gc)

def where(frame):
    names = []
    while frame is not None and len(names) < 60:  # (the innermost frames of ours, textual's, rich's, numpy's)
        co = frame.f_code
        f = co.co_filename
        if "flowtrace_tui" in f or "textual" in f or "rich" in f or "numpy" in f:
            names.append(f.rsplit("/", 2)[-2] + "/" + f.rsplit("/", 1)[-1].removesuffix(".py") + ":" + co.co_name)
        frame = frame.f_back
    return names[:6]

def sampler():
    k = 0
    while True:
        time.sleep(0.01)
        k += 1
        if k % 20 == 0:  # (the explorer is killed at the end: what is logged is flushed as it goes)
            with open("/proc/self/statm") as fh:
                log(kind="rss", mb=int(fh.read().split()[1]) * 4096 / 1e6)
            with lock:
                out.flush()
        names = {th.ident: th.name for th in threading.enumerate()}
        # a frame held here after its function returned keeps its locals (a memoryview kept
        # the reader's buffer from resizing: BufferError): the frames are walked with no thread
        # switch in between (a long switch interval) and dropped before anything else runs
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1.0)
        try:
            frames = sys._current_frames()
            got = [(names.get(ident, "?"), where(frame)) for ident, frame in frames.items()]
            del frames
        finally:
            sys.setswitchinterval(interval)
        for name, stack in got:
            if name == "MainThread" or name.startswith("asyncio"):
                log(kind="stack", thread=name, stack=stack)
threading.Thread(target=sampler, daemon=True, name="sampler").start()
raise SystemExit(main())
"""


def one_round(seconds: float, pythonpath: str | None, keep: str | None) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        log = keep or os.path.join(tmp, "timeline.jsonl")
        with open(os.path.join(tmp, "busy.py"), "w") as fh:
            fh.write(textwrap.dedent(PROGRAM).format(progress=os.devnull, seconds=seconds))
        with open(os.path.join(tmp, "driver.py"), "w") as fh:
            fh.write(f"LOG = {log!r}\n" + DRIVER)
        server = f"ft-live-timeline-{os.getpid()}"
        start_in_tmux(server, tmp, pythonpath, "driver.py")
        try:
            watch(server, seconds + 2, every=0.1)
            screen = tmux(server, "capture-pane", "-p", "-t", "t")
            for line in screen.splitlines():  # (a loading failure's message, the status line)
                if "failed" in line or "Error" in line or "│" in line:
                    print("screen:", line.strip(" █▏"))
        finally:
            tmux(server, "kill-server")
        with open(log) as fh:
            return [json.loads(line) for line in fh if line.endswith("\n")]


def ages(rows: list[dict], step: float = 0.01) -> list[tuple[float, float]]:
    """(time, age of the newest call on screen) every `step` s, from the displays."""
    shown = [r for r in rows if r["kind"] == "display" and r.get("start")]
    if not shown:
        return []
    out, best, k = [], None, 0
    t = shown[0]["t"] + shown[0]["dt"]
    end = max(r["t"] for r in rows)
    while t < end:
        while k < len(shown) and shown[k]["t"] + shown[k]["dt"] <= t:
            s = shown[k]["start"]
            best = s if best is None else max(best, s)
            k += 1
        out.append((t, t - best))
        t += step
    return out


def stalls(series: list[tuple[float, float]], limit: float) -> list[tuple[float, float, float]]:
    """(start, end, worst age) of each stretch with the age above `limit`."""
    found, cur = [], None
    for t, a in series:
        if a > limit:
            cur = [t, t, a] if cur is None else [cur[0], t, max(cur[2], a)]
        elif cur is not None:
            found.append(tuple(cur))
            cur = None
    if cur is not None:
        found.append(tuple(cur))
    return found


def describe(rows: list[dict], a: float, b: float) -> str:
    """What ran between a and b: time per kind and thread, the most sampled frames."""
    spent: dict[str, float] = collections.defaultdict(float)
    count: dict[str, int] = collections.Counter()
    stacks: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in rows:
        if r["kind"] == "rss":
            continue
        if r["kind"] == "stack":
            if a <= r["t"] <= b:
                stacks[r["thread"]][" < ".join(r["stack"][:3]) or "(elsewhere)"] += 1
            continue
        lo, hi = max(a, r["t"]), min(b, r["t"] + r.get("dt", 0))
        if hi > lo or a <= r["t"] <= b:
            key = f"{r['kind']}[{r['th'][:8]}]" + (f"g{r['gen']}" if r["kind"] == "gc" else "")
            spent[key] += max(0.0, hi - lo)
            count[key] += 1
    lines = ["    " + ", ".join(f"{k} {count[k]}x {v * 1e3:.0f}ms" for k, v in sorted(spent.items(), key=lambda kv: -kv[1]))]
    big = [r for r in rows if r["kind"] not in ("stack", "display", "read") and r.get("dt", 0) > 0.1
           and r["t"] < b and r["t"] + r["dt"] > a]
    for r in big:
        lines.append(f"    long: {r['kind']} on {r['th']} at +{(r['t'] - a) * 1e3:.0f}ms for {r['dt'] * 1e3:.0f}ms "
                     + json.dumps({k: v for k, v in r.items() if k not in ('kind', 't', 'dt', 'th')}))
    for th, c in stacks.items():
        total = sum(c.values())
        lines.append(f"    {th} ({total} samples): " + "; ".join(f"{n}x {s}" for s, n in c.most_common(4)))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--explorer-path")
    ap.add_argument("--stall-ms", type=float, default=400)
    ap.add_argument("--log", help="keep the timeline here (jsonl)")
    ap.add_argument("--from-log", help="analyse a kept timeline instead of running")
    args = ap.parse_args()
    if args.from_log:
        with open(args.from_log) as fh:
            rows = [json.loads(line) for line in fh if line.endswith("\n")]
    else:
        rows = one_round(args.seconds, args.explorer_path, args.log)
        print(f"load average {os.getloadavg()[0]:.1f}")
    series = ages(rows)
    if not series:
        raise SystemExit("no call reached the screen")
    vals = sorted(a for _, a in series[len(series) // 12:])  # (the start left out)
    print(f"age of the newest call on screen (every 10 ms): median {vals[len(vals) // 2] * 1e3:.0f} ms, "
          f"p95 {vals[int(0.95 * (len(vals) - 1))] * 1e3:.0f} ms, max {vals[-1] * 1e3:.0f} ms")
    t0 = series[0][0]
    for a, b, worst in stalls(series, args.stall_ms / 1e3):
        print(f"stall +{a - t0:.2f}..+{b - t0:.2f} s, worst age {worst * 1e3:.0f} ms")
        print(describe(rows, a - worst + args.stall_ms / 1e3, b))


if __name__ == "__main__":
    main()
