"""The explorer's functions view computes `flowtrace stats`' numbers (flowtrace/profile.py) in
its own way (numpy over the index, flowtrace_tui/model/functions.py): both on the same sessions,
every function and every caller/callee pair, and on a real program's recording."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from trace_builder import random_session

from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.scan import survey
from flowtrace.profile import profile
from flowtrace_tui.model import TraceData, build_index
from flowtrace_tui.model.function_links import callees, callers
from flowtrace_tui.model.functions import function_table, same_functions


def load(path: pathlib.Path) -> TraceData:
    data = TraceData("t")
    data.feed(ChunkReader.from_bytes(path.read_bytes()).poll())
    return data


@pytest.mark.parametrize("seed", range(12))
def test_the_numbers_of_flowtrace_stats(tmp_path: pathlib.Path, seed: int) -> None:
    """Random sessions (threads, generators resumed anywhere, exceptions, unfinished ends): every
    function's numbers and every caller/callee pair equal flowtrace/profile.py's, whatever the
    grouping of the index (the task view's index is not the call tree: re-indexed for this)."""
    path = tmp_path / "s.ftr"
    random_session(path, seed, steps=300, threads=1 + seed % 3, ending=("finished", "killed", "stopped")[seed % 3])
    expected = profile(survey(path), edges=True)
    want = {f: (ft.calls, ft.total, ft.self, ft.sum, ft.max, ft.raised) for f, ft in expected.functions.items()
            if ft.calls}
    data = load(path)
    for grouped, tasks in ((True, False), (False, False), (True, True)):
        t = function_table(build_index(data, grouped=grouped, tasks=tasks))
        got = {int(f): (int(t.calls[i]), int(t.total[i]), int(t.self_ns[i]), int(t.sum_ns[i]), int(t.max_ns[i]),
                        int(t.raised[i])) for i, f in enumerate(t.fids)}
        assert got == want and t.session_total == expected.total
        edges = {}
        for f in t.fids.tolist():
            for up in (callers(t, f),):
                for g, c, tot, s in zip(up.fids.tolist(), up.calls.tolist(), up.total.tolist(), up.self_ns.tolist()):
                    edges[(g, f)] = (c, s, tot)
            down = callees(t, f)
            for g, c, tot, s in zip(down.fids.tolist(), down.calls.tolist(), down.total.tolist(),
                                    down.self_ns.tolist()):
                assert edges.get((f, g), (c, s, tot)) == (c, s, tot)  # the same pair seen from both ends
        assert edges == {k: (nc, tt, ct) for k, (_cc, nc, tt, ct) in expected.edges.items()}


PROGRAM = '''\
import threading

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def numbers(n):
    yield from range(n)

def check(x):
    if not x % 3:
        raise KeyError(x)
    return x

def work():
    total = 0
    for i in numbers(6):
        try:
            total += check(i)
        except KeyError:
            total += fib(8)
    return total

t = threading.Thread(target=work)
t.start()
work()
t.join()
'''


def record_and_stats(tmp_path: pathlib.Path, program: str) -> dict:
    """`flowtrace run -o t.ftr prog.py` on `program`, then what `flowtrace stats --format json` says."""
    (tmp_path / "prog.py").write_text(program)
    run = [sys.executable, "-m", "flowtrace"]
    subprocess.run([*run, "run", "-o", "t.ftr", "prog.py"], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    stats = subprocess.run([*run, "stats", "t.ftr", "--format", "json", "--limit", "0"], cwd=tmp_path, check=True,
                           capture_output=True, text=True, timeout=120)
    return json.loads(stats.stdout)


def test_a_recorded_program_shows_what_flowtrace_stats_prints(tmp_path: pathlib.Path) -> None:
    doc = record_and_stats(tmp_path, PROGRAM)
    t = function_table(build_index(load(tmp_path / "t.ftr")))
    data = t.index.data
    mine = {}
    for i, fid in enumerate(t.fids.tolist()):
        f = data.func(fid)
        mine[(f.qualname, f.module, f.line)] = {
            "calls": int(t.calls[i]), "total_ns": int(t.total[i]), "self_ns": int(t.self_ns[i]),
            "mean_ns": round(float(t.mean[i])), "max_ns": int(t.max_ns[i]), "raised": int(t.raised[i]),
            "share": float(t.share[i])}
    theirs = {(r["function"], r["module"], r["line"]): {k: r[k] for k in mine[next(iter(mine))]} for r in doc["functions"]}
    assert mine == theirs
    assert theirs[("fib", "__main__", 3)]["calls"] == 4 * 67 and theirs[("check", "__main__", 9)]["raised"] == 4
    assert theirs[("numbers", "__main__", 6)]["calls"] == 2  # one per generator object
    assert t.session_total == doc["session"]["total_ns"]


PROCESSES = '''\
import os, subprocess, sys

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def work(k):
    return fib(k)

if len(sys.argv) > 1:
    work(int(sys.argv[1]))
else:
    work(6)
    pid = os.fork()
    if pid == 0:
        work(7)
        os._exit(0)
    os.waitpid(pid, 0)
    subprocess.run([sys.executable, __file__, "8"], check=True)
'''


def test_a_session_of_several_processes_shows_what_flowtrace_stats_prints(tmp_path: pathlib.Path) -> None:
    """A function run by several processes is one row, summed over them, as in `flowtrace stats`;
    its callers and callees too, and `v` from any process's call finds that row."""
    from flowtrace_tui.model.source import TraceSource

    doc = record_and_stats(tmp_path, PROCESSES)
    src = TraceSource.open(str(tmp_path / "t.ftr"))
    while src.step().more:
        pass
    assert len(src.data.processes) == 3
    t = function_table(build_index(src.data))
    data = t.index.data
    mine = {}
    for i, fid in enumerate(t.fids.tolist()):
        f = data.func(fid)
        mine[(f.qualname, f.module, f.line)] = (int(t.calls[i]), int(t.total[i]), int(t.self_ns[i]), int(t.max_ns[i]))
    theirs = {(r["function"], r["module"], r["line"]): (r["calls"], r["total_ns"], r["self_ns"], r["max_ns"])
              for r in doc["functions"]}
    assert mine == theirs
    fib = {8: 67, 7: 41, 6: 25}
    assert theirs[("fib", "__main__", 3)][0] == sum(fib.values())
    assert theirs[("work", "__main__", 6)][0] == 3 and theirs[("<module>", "__main__", 1)][0] == 3
    assert t.session_total == doc["session"]["total_ns"] and doc["session"]["calls"] == 3 + 3 + sum(fib.values())
    work = next(f for f in t.fids.tolist() if data.func(f).qualname == "work")
    fib_row = next(f for f in t.fids.tolist() if data.func(f).qualname == "fib")
    up = callers(t, fib_row)
    assert dict(zip(up.fids.tolist(), up.calls.tolist())) == {fib_row: sum(fib.values()) - 3, work: 3}
    assert dict(zip(callees(t, work).fids.tolist(), callees(t, work).calls.tolist())) == {fib_row: 3}
    # `v` on a fib call of the last process lands on the one fib row
    last_fib = int(np.flatnonzero(t.func == fib_row)[-1])
    assert int(data.col("func")[last_fib]) != fib_row and int(same_functions(data)[data.col("func")[last_fib]]) == fib_row
