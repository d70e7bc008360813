"""Small real programs of each kind recorded end to end (tests/realworld/harness.py): behaviour
identical to plain python, every call balanced and nested in time, calls per function equal to
cProfile's, a bounded file size per call, and the explorer's model loading the session."""

from __future__ import annotations

import collections
import pathlib
import re
import sys
from typing import Callable

import pytest

from treeutil import time_nesting_errors

from .harness import (Result, Run, bytes_per_call, counts_match, explorer_loads, flowtrace_counts, nesting_errors,
                      same_behaviour)

KINDS_HELPER = """
import sys
SEEN_ARGV = list(sys.argv)
def double(x):
    return 2 * x
"""

KINDS = """
import contextlib, dataclasses, sys, threading
import kinds_helper

def countdown(n):
    while n:
        yield n
        n -= 1

def chain(*gens):
    for g in gens:
        yield from g

def averager():
    total = count = 0
    avg = None
    while True:
        try:
            value = yield avg
        except ValueError:
            continue
        total += value
        count += 1
        avg = total / count

@contextlib.contextmanager
def opened(name):
    yield name.upper()

def started(n):
    g = countdown(n)
    next(g)              # first run here; the generator outlives this call
    return g

@dataclasses.dataclass
class Point:
    x: int
    y: int
    def norm1(self):
        return abs(self.x) + abs(self.y)
    @property
    def swapped(self):
        return Point(self.y, self.x)

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def risky(i):
    if i % 3 == 0:
        raise KeyError(i)
    return i

def in_thread(out):
    out.append(sum(kinds_helper.double(i) for i in range(5)))

def main():
    total = sum(countdown(5)) + sum(chain(countdown(2), iter([7])))
    avg = averager()
    next(avg)
    avg.send(10)
    avg.throw(ValueError)
    result = avg.send(20)
    avg.close()
    g = started(3)
    rest = list(g)
    with opened("file") as f:
        name = f
    pts = sorted([Point(3, -1), Point(-2, 2)], key=lambda p: p.norm1())
    swapped = [p.swapped for p in pts]
    caught = 0
    for i in range(7):
        try:
            risky(i)
        except KeyError:
            caught += 1
    out = []
    t = threading.Thread(target=in_thread, args=(out,))
    t.start()
    t.join()
    print(total, result, rest, name, swapped, fib(10), caught, out, kinds_helper.SEEN_ARGV[1:])
    return 0

if __name__ == "__main__":
    sys.exit(main())
"""


def check_recording(run: Run, r: Result, *, profile_args: list[str] | None,
                    skip: Callable[[tuple], bool] = lambda key: False, max_bytes_per_call: float = 160) -> None:
    """Every check of harness.py on one recording; `skip`: functions left out of the cProfile
    comparison (calls cProfile cannot see: other threads)."""
    same_behaviour(r)
    assert nesting_errors(r.trace) == []
    if profile_args is not None:
        ours = flowtrace_counts(r.trace)
        theirs = run.profile_counts(profile_args)
        assert {k: v for k, v in counts_match(ours, theirs).items() if not skip(k)} == {}
    assert bytes_per_call(r) < max_bytes_per_call, bytes_per_call(r)
    explorer_loads(r.path, len(r.trace.calls))


def test_script_of_every_kind(tmp_path: pathlib.Path, recorder_name: str) -> None:
    run = Run(tmp_path)
    run.write("kinds_helper.py", KINDS_HELPER)
    run.write("kinds.py", KINDS)
    r = run.compare(["kinds.py", "x", "-y"], recorder=recorder_name, watch="kinds_helper")
    assert r.plain.stdout == "25 15.0 [2, 1] FILE [Point(x=-1, y=3), Point(x=2, y=-2)] 55 3 [20] ['x', '-y']\n"
    assert "import kinds_helper: argv=['kinds.py', 'x', '-y']" in r.plain_probe
    # cProfile only watches the main thread: the thread's calls are compared by hand
    in_thread = {"in_thread", "double", "<genexpr>"}
    check_recording(run, r, profile_args=["kinds.py", "x", "-y"],
                    skip=lambda key: key[2] in in_thread)
    assert sorted(c.qualname for c in r.trace.calls if c.thread != r.trace.calls[0].thread) == [
        "double"] * 5 + ["in_thread", "in_thread.<locals>.<genexpr>"]


APP_INIT = """
import sys
def configure():
    return {"argv": list(sys.argv)}
CONFIG = configure()
"""
APP_MAIN = """
import argparse, sys
from . import CONFIG
from .core import work

def main(argv=None):
    ns = argparse.ArgumentParser(prog="app").parse_args(argv)
    return work(3)

print("import-time argv", CONFIG["argv"], "now", sys.argv[1:], "spec", __spec__.name)
sys.exit(main([]))
"""
APP_CORE = """
def step(i):
    return i * i
def work(n):
    return sum(step(i) for i in range(n))
"""


def test_module_of_a_package(tmp_path: pathlib.Path, recorder_name: str) -> None:
    run = Run(tmp_path)
    run.write("app/__init__.py", APP_INIT)
    run.write("app/__main__.py", APP_MAIN)
    run.write("app/core.py", APP_CORE)
    r = run.compare(["-m", "app", "a", "b"], recorder=recorder_name, watch="app")
    assert r.plain.returncode == 5
    assert r.plain.stdout == "import-time argv ['-m', 'a', 'b'] now ['a', 'b'] spec app.__main__\n"
    assert f"exit: argv=['{tmp_path}/app/__main__.py', 'a', 'b'] main=('{tmp_path}/app/__main__.py', 'app.__main__')" \
        in r.plain_probe
    check_recording(run, r, profile_args=["-m", "app", "a", "b"])
    assert [c.qualname for c in r.trace.roots] == ["<module>", "<module>"]  # app/__init__, app/__main__
    assert [c.qualname for c in r.trace.children(r.trace.roots[0])] == ["configure"]


ASYNC = """
import asyncio

async def fetch(i):
    for _ in range(i % 3):
        await asyncio.sleep(0)
    return i * i

async def produce(q, n):
    for i in range(n):
        await q.put(i)
    await q.put(None)

async def consume(q):
    total = 0
    while (item := await q.get()) is not None:
        total += await fetch(item)
    return total

async def main():
    rs = await asyncio.gather(*(fetch(i) for i in range(5)))
    q = asyncio.Queue(maxsize=2)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(produce(q, 6))
        c = tg.create_task(consume(q))
    return sum(rs), c.result()

print(asyncio.run(main()))
"""


def test_asyncio_with_the_event_loop_recorded(tmp_path: pathlib.Path, recorder_name: str) -> None:
    run = Run(tmp_path)
    run.write("aio.py", ASYNC)
    r = run.compare(["aio.py"], options=["--include", "asyncio"], recorder=recorder_name, watch="asyncio")
    assert r.plain.stdout == "(30, 55)\n"
    same_behaviour(r)
    assert time_nesting_errors(r.trace) == []  # strictly: not even a resumed generator ends late
    assert {"Handle._run", "BaseEventLoop.run_forever"} <= {c.qualname for c in r.trace.calls}
    ours = flowtrace_counts(r.trace)
    theirs = run.profile_counts(["aio.py"])
    own = [k for k in ours if k[0].endswith("aio.py")]
    assert {k: (ours[k], theirs[k]) for k in own if ours[k] != theirs[k]} == {}
    explorer_loads(r.path, len(r.trace.calls))


def test_json_tool_with_json_recorded(tmp_path: pathlib.Path) -> None:
    run = Run(tmp_path)
    items = ", ".join(f'{{"id": {i}, "tags": ["a", "b"], "ok": {str(i % 2 == 0).lower()}}}' for i in range(150))
    run.write("in.json", f'{{"items": [{items}], "n": 150}}\n')
    r = run.compare(["-m", "json.tool", "--sort-keys", "in.json"], options=["--include", "json"], watch="json.tool")
    assert r.plain.stdout.count('"id"') == 150
    assert r.trace.roots[0].qualname == "<module>" and r.trace.roots[0].file.endswith("json/tool.py")
    # json's encoder generators yield ~10^3 times: their quiet runs fold (a few bytes in all)
    check_recording(run, r, profile_args=["-m", "json.tool", "--sort-keys", "in.json"])


SUITE = """
import pytest

def add(a, b):
    return a + b

@pytest.fixture
def two():
    return 2

def test_add(two):
    assert add(two, 3) == 5

@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert add(n, n) == 2 * n

def test_fails():
    assert add(1, 1) == 3
"""


def test_pytest_suite_with_pytest_recorded(tmp_path: pathlib.Path) -> None:
    run = Run(tmp_path)
    run.write("suite/test_small.py", SUITE)
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "suite"]
    r = run.compare(args, options=["--include", "pytest"], watch="_pytest")
    for proc in (r.plain, r.traced):
        proc.stdout = re.sub(r" in \d+\.\d+s", " in T", proc.stdout)
    assert r.plain.returncode == 1 and "1 failed, 4 passed in T" in r.plain.stdout
    assert "import _pytest: argv=['-m', '-q', '-p', 'no:cacheprovider', 'suite']" in r.plain_probe
    check_recording(run, r, profile_args=args)
    roots = [(c.qualname, c.function.module) for c in r.trace.roots]
    assert roots[0] == ("<module>", "pytest")  # pytest/__init__, imported by runpy while recording
    assert "test_param" in {c.qualname for c in r.trace.calls}


def test_rich_markdown_with_rich_recorded(tmp_path: pathlib.Path) -> None:
    run = Run(tmp_path)
    run.write("doc.md", "# Title\n\nSome *text* and `code`.\n\n- one\n- two\n\n> quoted\n")
    args = ["-m", "rich.markdown", "doc.md"]
    r = run.compare(args, options=["--include", "rich"], watch="rich.markdown")
    assert "Title" in r.plain.stdout
    check_recording(run, r, profile_args=args)
    main = [c for c in r.trace.roots if c.file.endswith("rich/markdown.py")]
    assert len(main) == 1 and main[0].qualname == "<module>" and main[0].module == "__main__"
    assert len(r.trace.children(main[0])) > 3  # its body's calls hang from it


FINALIZERS = """
import gc

freed = 0

def note():
    global freed
    freed += 1

class Node:
    def __init__(self):
        self.me = self          # a cycle: only the collector frees it, wherever it runs
    def __del__(self):
        note()
    def __repr__(self):         # a user __repr__: --repr full calls it inside the recorder
        return "Node" + str([1, 2])

def keep(node):
    return node

for i in range(20000):
    keep(Node())
gc.collect()
print(freed)
"""

# A collection that runs inside a recorder callback (the Python recorder's bytecode, the C
# recorder's --repr full hook) ran the program's __del__ where CPython sends no event: 1471 (Python
# recorder) of 20000 recorded. From 3.13 the recorders hold the collector off there; 3.12 runs a
# collection already scheduled even with the collector disabled (README, "Limitations"). The C
# recorder's default mode runs no Python code in its callbacks (not this test's subject).
@pytest.mark.skipif(sys.version_info < (3, 13), reason="3.12 runs a scheduled collection even when disabled")
@pytest.mark.parametrize("options", [[], ["--repr", "full"]], ids=["safe", "full"])
def test_finalizers_run_by_the_collector_are_recorded(tmp_path: pathlib.Path, recorder_name: str,
                                                      options: list[str]) -> None:
    if recorder_name == "c" and not options:
        pytest.skip("the C recorder calls no Python hook for these values in safe mode")
    run = Run(tmp_path)
    run.write("fin.py", FINALIZERS)
    # (no timed flush while it runs: a collection on flowtrace's flusher thread runs the
    # program's finalizers there, unrecorded -- another loss, not this test's subject)
    r = run.compare(["fin.py"], options=["--flush-interval", "1000", *options], recorder=recorder_name)
    assert r.plain.stdout == "20000\n"
    same_behaviour(r)
    counts = collections.Counter(c.qualname for c in r.trace.calls)
    assert dict(counts) == {"<module>": 1, "Node": 1, "Node.__init__": 20000, "keep": 20000,
                            "Node.__del__": 20000, "note": 20000}
    assert nesting_errors(r.trace) == []


# A web framework's test client as Starlette's TestClient runs one (fid, session 16, on Starlette
# 1.10 + httpx 0.28, Flask 3.1, textual 8.2.8 run_test, SQLAlchemy 2.1, multiprocessing, pytest -n 2:
# all as under python): the app's event loop in a thread of its own (anyio's blocking portal),
# driven from the main thread; blocking handlers in the loop's worker thread; a context manager's
# generator and an async generator per request. Vendored with the standard library only.
PORTAL = """
import asyncio, concurrent.futures, contextlib, json, threading

def render(n):                      # a blocking handler, run in the loop's worker thread
    if n == 13:
        raise ValueError("unlucky")
    return json.dumps({"n": n, "sq": n * n})

@contextlib.contextmanager
def request_scope(log, path):
    log.append("open " + path)
    try:
        yield path.rsplit("/", 1)[-1]
    finally:
        log.append("close " + path)

async def chunks(text):
    for part in text.split(","):
        await asyncio.sleep(0)
        yield part

async def handle(log, path):
    with request_scope(log, path) as last:
        loop = asyncio.get_running_loop()
        try:
            body = await loop.run_in_executor(None, render, int(last))
        except ValueError as exc:
            return 500, str(exc)
        return 200, [c async for c in chunks(body)]

class Portal:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="worker"))
        self.thread = threading.Thread(target=self.loop.run_forever, name="portal")

    def __enter__(self):
        self.thread.start()
        return self

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def __exit__(self, *exc):
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

def main():
    log = []
    with Portal() as portal:
        for n in (1, 2, 13, 3):
            print(portal.call(handle(log, f"/item/{n}")))
    print(log)

main()
"""


def test_app_served_on_a_loop_in_another_thread(tmp_path: pathlib.Path, recorder_name: str) -> None:
    run = Run(tmp_path)
    run.write("portal.py", PORTAL)
    r = run.compare(["portal.py"], recorder=recorder_name)
    assert r.plain.stdout.splitlines()[:4] == ["(200, ['{\"n\": 1', ' \"sq\": 1}'])", "(200, ['{\"n\": 2', ' \"sq\": 4}'])",
                                               "(500, 'unlucky')", "(200, ['{\"n\": 3', ' \"sq\": 9}'])"]
    # (cProfile watches the main thread only: each thread's calls are counted here instead)
    check_recording(run, r, profile_args=None)
    per_thread = {th.name: dict(collections.Counter(c.qualname for c in r.trace.calls if c.thread == i))
                  for i, th in r.trace.threads.items()}
    assert per_thread == {
        "MainThread": {"<module>": 1, "main": 1, "Portal": 1, "Portal.__init__": 1, "Portal.__enter__": 1,
                       "Portal.call": 5, "Portal.__exit__": 1},
        "portal": {"handle": 4, "request_scope": 4, "chunks": 3},
        "worker_0": {"render": 4}}
    assert [c.end for c in r.trace.calls if c.qualname == "render"] == ["return", "return", "raise", "return"]


THREADS_SEEN = """
import threading
def seen():
    return threading.active_count(), [t.name for t in threading.enumerate()]
print(*seen())
"""


# flowtrace's flusher is a threading.Thread of the program's process: a program (or a test
# suite's leaked-thread check) counted one thread more under `flowtrace run` ("2
# ['MainThread', 'flowtrace-flusher']"); it is out of threading's table now (untraced.Thread).
def test_the_program_sees_its_own_threads_only(tmp_path: pathlib.Path) -> None:
    run = Run(tmp_path)
    run.write("threads_seen.py", THREADS_SEEN)
    r = run.compare(["threads_seen.py"])
    assert r.plain.stdout == "1 ['MainThread']\n"
    same_behaviour(r)


RECURSES = """
import sys
def down(n):
    return 0 if n == 0 else 1 + down(n - 1)
try:
    down(100000)
except RecursionError as e:
    print("caught", type(e).__name__)
sys.setrecursionlimit(3000)
print(down(2500))
"""


def test_recursion_error_caught_by_the_program_is_its_only_one(tmp_path: pathlib.Path, recorder_name: str) -> None:
    """A program recursing into RecursionError and handling it runs on as under python: the
    Python recorder's callback that no longer fits on the stack at the limit fails there with a
    RecursionError of its own, which its guard (guard.c) took for an exception that landed in it
    and raised again at the program's next check -- inside the program's handler."""
    run = Run(tmp_path)
    run.write("recurses.py", RECURSES)
    r = run.compare(["recurses.py"], recorder=recorder_name)
    assert r.plain.stdout == "caught RecursionError\n2500\n"
    same_behaviour(r)
    assert sum(c.qualname == "down" for c in r.trace.calls) > 2500
    if recorder_name == "c":  # (the Python recorder's callbacks at the limit lose an unwind there:
        assert not nesting_errors(r.trace)  # its <module> call then reads unfinished -- a known limit)
