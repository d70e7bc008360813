"""`flowtrace stats`: per-function times from one streaming pass (flowtrace/profile.py), checked
against a direct computation on the loaded tree, exact tables for small programs, and call
counts equal to cProfile's for the same programs."""

from __future__ import annotations

import json
import marshal
import pathlib
import subprocess
import sys
import textwrap
from typing import Any, Callable

import pytest
from trace_builder import random_session

from flowtrace.ftr import format as F
from flowtrace.ftr.reader import Call, Trace, load
from flowtrace.ftr.scan import survey
from flowtrace.profile import FunctionTimes, profile

WAKE = ("suspend", "resume", "throw", "fold")


def end_of(trace: Trace, call: Call) -> int:
    """When the call ended, or stopped, or the session did."""
    return call.end_ns if call.end_ns is not None else (
        call.stopped_ns if call.stopped_ns is not None else max(trace.t_end_ns, call.start_ns))


def running_time(trace: Trace, call: Call) -> int:
    """Lifetime minus suspensions (from a suspend, or a fold minus its run, to the next mark
    that wakes the call, or to its end), written from the definition on the loaded call."""
    end = end_of(trace, call)
    gap, since, credit = 0, None, 0
    for m in call.marks:
        if m.kind not in WAKE:
            continue
        if since is not None:
            gap += m.t_ns - since - credit
            since = None
        if m.kind == "suspend":
            since, credit = m.t_ns, 0
        elif m.kind == "fold":
            since, credit = m.t_ns, m.run_ns
    if since is not None:
        gap += max(0, end - since - credit)
    return max(0, end - call.start_ns - gap)


def runs_elsewhere(call: Call, parent: int | None, end: int,
                   alive: "Callable[[int, int | None], bool]") -> tuple[dict[int, int], int]:
    """The runs of `call` that ran in a call other than its parent (written from the definition:
    its first run is in its parent; each later one in the call its resume, throw or fold names):
    ({runner: ns}, ns of them all, with a runner of 0 -- none recorded -- counting as nobody's).
    `end`: when the call ended. `alive(runner, t)`: the runner had not ended when a run ending
    at `t` (None: at the call's end) ended; else that run stays its parent's."""
    credits: dict[int, int] = {}
    away = 0

    def credit(runner: int, ns: int, t: int | None) -> None:
        nonlocal away
        if ns <= 0 or (runner and not alive(runner, t)):
            return
        if runner:
            credits[runner] = credits.get(runner, 0) + ns
        away += ns

    runner, since, suspended = None, call.start_ns, False  # runner None: in its parent
    for m in call.marks:
        if m.kind not in WAKE:
            continue
        if not suspended and runner is not None:
            credit(runner, m.t_ns - since, m.t_ns)
        by = m.other or 0
        if m.kind == "suspend":
            suspended = True
        elif m.kind == "fold":
            suspended = True
            if by != (parent or 0):
                credit(by, m.run_ns, m.t_ns)
        else:
            runner, since, suspended = (None if by == (parent or 0) else by), m.t_ns, False
    if not suspended and runner is not None:
        credit(runner, end - since, None)
    return credits, away


def expected(trace: Trace, thread: int | None = None, rows_end_unfinished: bool = False) -> dict[int, FunctionTimes]:
    """`rows_end_unfinished`: calls left running end by EXIT rows at the stop, in the order of
    their times (else the pass ends them at the session's end, the newest first)."""
    calls = [c for c in trace.calls if thread is None or c.thread == thread]
    ids = {c.id for c in calls}
    run = {c.id: running_time(trace, c) for c in calls}

    def ends_at(c: Call) -> tuple[int, int]:  # the order in which the pass ends calls
        if c.end_ns is not None:
            return 0, c.end_ns
        if rows_end_unfinished and c.stopped_ns is not None:
            return 0, c.stopped_ns
        return 1, 0  # with the session: its runs in progress stop at once, in their calls

    def alive_for(c: Call) -> "Callable[[int, int | None], bool]":
        # a runner that resumed it is below it on its stack: open at its marks; at its end,
        # open unless it ended first (at one time, the call above ends first)
        return lambda r, t: r in ids and (t is not None or ends_at(trace.call(r)) >= ends_at(c))

    credited: dict[int, int] = {}
    away: dict[int, int] = {}
    for c in calls:
        credits, away[c.id] = runs_elsewhere(c, c.parent, end_of(trace, c), alive_for(c))
        for r, ns in credits.items():
            credited[r] = credited.get(r, 0) + ns
    out: dict[int, FunctionTimes] = {f: FunctionTimes() for f in trace.functions}
    for c in calls:
        ft = out[c.function.id]
        kids = sum(max(0, run[k] - away[k]) for k in c.children if k in ids) + credited.get(c.id, 0)
        ancestors, p = set(), c.parent
        while p is not None and p in ids:
            ancestors.add(trace.call(p).function.id)
            p = trace.call(p).parent
        ft.calls += 1
        ft.self += max(0, run[c.id] - kids)
        ft.sum += run[c.id]
        ft.max = max(ft.max, run[c.id])
        ft.raised += c.end == "raise"
        if c.function.id not in ancestors:
            ft.outer += 1
            ft.total += run[c.id]
    return out


@pytest.mark.parametrize("seed", range(16))
def test_profile_equals_the_definition(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    ending = ("finished", "killed", "stopped")[seed % 3]
    random_session(path, seed, steps=300, threads=1 + seed % 3, ending=ending)
    trace, info = load(path), survey(path)
    assert profile(info).functions == expected(trace, rows_end_unfinished=ending == "finished")
    assert profile(info, thread=2).functions == expected(trace, thread=2, rows_end_unfinished=ending == "finished")


def flowtrace(*args: object, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowtrace", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


PROGRAM = textwrap.dedent('''\
    import sys

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    class Shape:
        def __init__(self, side):
            self.side = side

        def area(self):
            return self.side * self.side

    def numbers(n):
        for i in range(n):
            yield i

    def check(x):
        if x % 3 == 0:
            raise ValueError(x)
        return x

    def main():
        total = fib(6)
        for i in numbers(4):
            total += Shape(i).area()
            try:
                check(i)
            except ValueError:
                pass
        return total

    main()
''')


def test_exact_table_of_a_small_program(tmp_path: pathlib.Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    assert flowtrace("run", "-o", "t.ftr", "prog.py", cwd=tmp_path).returncode == 0
    proc = flowtrace("stats", "t.ftr", "--format", "json", "--sort", "calls", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    doc = json.loads(proc.stdout)
    rows = [(r["function"], r["line"], r["calls"], r["raised"]) for r in doc["functions"]]
    assert rows == [("fib", 3, 25, 0), ("Shape.__init__", 7, 4, 0), ("Shape.area", 10, 4, 0), ("check", 17, 4, 2),
                    ("<module>", 1, 1, 0), ("Shape", 6, 1, 0), ("main", 22, 1, 0), ("numbers", 13, 1, 0)]
    fib = doc["functions"][0]
    assert fib["total_ns"] == fib["max_ns"]  # one outermost call: total is that call's time
    main = next(r for r in doc["functions"] if r["function"] == "main")
    assert 0 < main["share"] <= 1 and main["total_ns"] == main["max_ns"]
    text = flowtrace("stats", "t.ftr", "--limit", "2", cwd=tmp_path)
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["function", "module", "location", "calls", "total", "self", "mean", "max", "share",
                                "raised"]
    assert [line.split()[0] for line in lines[1:]] == ["<module>", "main"]
    assert text.stderr == "flowtrace: note: 6 more functions (--limit 0 shows all)\n"
    only = flowtrace("stats", "t.ftr", "--include", "*.area", "--include", "fib", "--exclude", "Shape.*",
                     "--format", "json", cwd=tmp_path)
    assert [r["function"] for r in json.loads(only.stdout)["functions"]] == ["fib"]


def cprofile_counts(script: pathlib.Path, cwd: pathlib.Path, files: set[str]) -> dict[tuple[str, int], int]:
    """(file, first line) -> calls, as cProfile counts them for the same program."""
    subprocess.run([sys.executable, "-m", "cProfile", "-o", "prof.out", str(script)], cwd=cwd, check=True,
                   capture_output=True, timeout=120)
    stats = marshal.loads((cwd / "prof.out").read_bytes())
    return {(file, line): nc for (file, line, _name), (_cc, nc, _tt, _ct, _callers) in stats.items()
            if file in files}


REAL = textwrap.dedent('''\
    import difflib, fractions, textwrap

    a = [f"line {i} " + "x" * (i % 7) for i in range(120)]
    b = [line.replace("x", "y") if i % 5 == 0 else line for i, line in enumerate(a)]
    matcher = difflib.SequenceMatcher(None, a, b)
    print(round(matcher.ratio(), 3), len(matcher.get_opcodes()))
    print(sum(fractions.Fraction(1, n) for n in range(1, 40)))
    print(len(textwrap.wrap(" ".join(a), width=33)))
''')


def test_call_counts_equal_cprofile_on_real_code(tmp_path: pathlib.Path) -> None:
    import difflib
    import fractions
    import textwrap as tw

    (tmp_path / "real.py").write_text(REAL)
    files = {difflib.__file__, fractions.__file__, tw.__file__}
    proc = flowtrace("run", "-o", "r.ftr", "--include", "difflib", "--include", "fractions", "--include", "textwrap",
                     "real.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(flowtrace("stats", "r.ftr", "--format", "json", cwd=tmp_path).stdout)
    ours = {(r["file"], r["line"]): r["calls"] for r in doc["functions"]
            if r["file"] in files and r["kind"] == "function"}
    theirs = cprofile_counts(tmp_path / "real.py", tmp_path, files)
    assert len(ours) > 20
    assert ours == {key: theirs[key] for key in ours}
    generators = {(r["file"], r["line"]): r["calls"] for r in doc["functions"]
                  if r["file"] in files and r["kind"] == "generator"}
    assert all(theirs[key] >= n for key, n in generators.items())  # cProfile: one call per resume


def test_call_counts_equal_cprofile_on_the_small_program(tmp_path: pathlib.Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    assert flowtrace("run", "-o", "t.ftr", "prog.py", cwd=tmp_path).returncode == 0
    doc = json.loads(flowtrace("stats", "t.ftr", "--format", "json", cwd=tmp_path).stdout)
    program = str(tmp_path / "prog.py")
    ours = {(r["file"], r["line"]): r["calls"] for r in doc["functions"] if r["kind"] in ("function", "class", "module")}
    theirs = cprofile_counts(tmp_path / "prog.py", tmp_path, {program})
    assert ours == {key: theirs[key] for key in ours} and len(ours) == 7


def test_exact_times_of_a_known_session(tmp_path: pathlib.Path) -> None:
    from trace_builder import write_profile_sample

    write_profile_sample(tmp_path / "p.ftr")
    result = profile(survey(tmp_path / "p.ftr"), edges=True, paths=True)
    assert result.functions == {
        1: FunctionTimes(calls=1, outer=1, total=1000, self=870, sum=1000, max=1000, raised=0),
        2: FunctionTimes(calls=3, outer=1, total=90, self=90, sum=130, max=90, raised=1),
        3: FunctionTimes(calls=1, outer=1, total=40, self=30, sum=40, max=40, raised=0),
        4: FunctionTimes(calls=2, outer=2, total=110, self=110, sum=110, max=100, raised=0),
        5: FunctionTimes(calls=1, outer=1, total=300, self=200, sum=300, max=300, raised=0),
    }
    assert result.total == 1300
    assert result.edges == {(0, 1): [1, 1, 870, 1000], (1, 2): [1, 1, 60, 90], (2, 2): [0, 2, 30, 0],
                            (1, 3): [1, 1, 30, 40], (3, 4): [1, 1, 10, 10], (0, 5): [1, 1, 200, 300],
                            (5, 4): [1, 1, 100, 100]}
    proc = flowtrace("stats", "p.ftr", cwd=tmp_path)
    assert proc.stdout.splitlines() == [
        "function   module    location       calls    total    self     mean      max  share  raised",
        "main       app       app.py:1           1  1.00 µs  870 ns  1.00 µs  1.00 µs  76.9%       0",
        "Pool.work  app.pool  app/pool.py:3      1   300 ns  200 ns   300 ns   300 ns  23.1%       0",
        "leaf       app       app.py:20          2   110 ns  110 ns    55 ns   100 ns   8.5%       0",
        "fib        app       app.py:10          3    90 ns   90 ns    43 ns    90 ns   6.9%       1",
        "numbers    app.gen   app/gen.py:5       1    40 ns   30 ns    40 ns    40 ns   3.1%       0",
    ]
    worker = flowtrace("stats", "p.ftr", "--thread", "worker", "--format", "json", cwd=tmp_path)
    assert [(r["function"], r["total_ns"], r["self_ns"], r["share"]) for r in json.loads(worker.stdout)["functions"]] \
        == [("Pool.work", 300, 200, 1.0), ("leaf", 100, 100, 1 / 3)]


def context_manager_session(path: pathlib.Path) -> None:
    """A @contextmanager's generator: first run by `__enter__` (100 ns, to its yield), resumed by
    `__exit__` (290 ns, 200 of them in `cleanup`); and a primed worker generator, first run by
    `prime`, resumed twice by `feed` (50 ns each)."""
    from trace_builder import TraceBuilder

    b = TraceBuilder()
    main = b.enter("main", t=0)
    enter = b.enter("__enter__", t=10)
    gen = b.enter("resource", kind="generator", t=20)
    b.mark(gen, F.MARK_SUSPEND, t=120)
    b.leave(enter, t=130)
    b.leave(b.enter("work", parent=main, t=200), t=300)  # (the builder's stack still holds the generator)
    exit_ = b.enter("__exit__", parent=main, t=400)
    b.mark(gen, F.MARK_RESUME, other=exit_, t=410)
    b.leave(b.enter("cleanup", parent=gen, t=420), t=620)
    b.leave(gen, t=700)
    b.leave(exit_, t=710)
    prime = b.enter("prime", parent=main, t=800)
    worker = b.enter("worker", parent=prime, kind="generator", t=805)
    b.mark(worker, F.MARK_SUSPEND, t=810)
    b.leave(prime, t=815)
    feed = b.enter("feed", parent=main, t=820)
    for t in (830, 890):
        b.mark(worker, F.MARK_RESUME, other=feed, t=t)
        b.mark(worker, F.MARK_SUSPEND, t=t + 50)
    b.leave(feed, t=950)
    b.leave(main, t=1000)
    b.save(str(path))


def test_a_generators_runs_count_in_the_calls_that_ran_them(tmp_path: pathlib.Path) -> None:
    """Self time: a generator's first run is its parent's child time, each later run the child
    time of the call that resumed it -- not all of it the first caller's (whose self time went
    to 0) with the resumer's self time holding the generator's work."""
    context_manager_session(tmp_path / "cm.ftr")
    for native in (True, False):
        result = profile(survey(tmp_path / "cm.ftr")) if native else python_profile(survey(tmp_path / "cm.ftr"))
        selfs = {f.qualname: result.functions[fid].self for fid, f in result.session.functions.items()}
        assert selfs == {"main": 1000 - (120 + 100 + 310 + 15 + 130), "__enter__": 20, "resource": 390 - 200,
                         "work": 100, "__exit__": 20, "cleanup": 200, "prime": 15 - 5, "worker": 5 + 100,
                         "feed": 30}, native
    rows = json.loads(flowtrace("stats", "cm.ftr", "--format", "json", "--sort", "self", cwd=tmp_path).stdout)
    assert [(r["function"], r["self_ns"]) for r in rows["functions"]][:3] == [("main", 325), ("cleanup", 200),
                                                                              ("resource", 190)]


def python_profile(info: Any) -> Any:
    """profile() with its Python pass, the definition the C pass is held to."""
    from flowtrace import profile as profile_module

    return profile_module._profile(profile_module._Pass, info, None, False, False)


def test_table_is_coloured_only_when_asked(tmp_path: pathlib.Path) -> None:
    from trace_builder import write_profile_sample

    from flowtrace.commands.stats import rows, table

    write_profile_sample(tmp_path / "p.ftr")
    info = survey(tmp_path / "p.ftr")
    result = profile(info)
    shown = rows(info.functions, result.functions, "total", [], [])
    plain, coloured = table(info, shown, result.total, False), table(info, shown, result.total, True)
    assert not any("\x1b[" in line for line in plain)
    assert all("\x1b[" in line for line in coloured)
    assert [line.replace("\x1b[0m", "").split("m", 1)[-1][:4] for line in coloured[1:2]] == ["main"]


def test_table_fits_a_terminal_by_shortening_its_text_columns() -> None:
    """On a terminal the table is cut to its width (the text columns shortened as the
    explorer's functions view shortens them; then the module column goes), never the numbers;
    piped (no width) every text is whole. At 100 columns sqlalchemy's rows wrapped onto two
    lines each."""
    from flowtrace.commands.stats import fitted, shortened, table
    from flowtrace.ftr.reader import Function
    from flowtrace.profile import FunctionTimes

    long_file = "/work/venv/lib/python3.12/site-packages/sqlalchemy/orm/session.py"
    fns = [(Function(1, "SessionTransaction._prepare_impl", "sqlalchemy.orm.session", long_file, 1369, "function"),
            FunctionTimes(calls=2, outer=2, total=88_100_000, self=15_800, sum=88_200_000, max=88_100_000)),
           (Function(2, "<module>", "__main__", "/w/sa.py", 1, "module"),
            FunctionTimes(calls=1, outer=1, total=500_000_000, self=2_790_000, sum=500_000_000, max=500_000_000))]

    class Info:
        meta = {"cwd": "/w"}

    whole = table(Info(), fns, 500_000_000, False)  # type: ignore[arg-type]
    assert long_file + ":1369" in whole[1] and len(whole[1]) > 130
    numbers = [line.split()[-7:] for line in whole]
    for width in (130, 100, 80):
        lines = table(Info(), fns, 500_000_000, False, width)  # type: ignore[arg-type]
        assert max(len(line) for line in lines) <= width, (width, lines)
        assert [line.split()[-7:] for line in lines] == numbers
        assert lines[1].split("  ")[0].startswith("SessionT")
        assert ":1369" in lines[1] and "…" in lines[1]
    assert "sqlalchemy.orm" in table(Info(), fns, 500_000_000, False, 130)[1]  # type: ignore[arg-type]
    assert "module" not in table(Info(), fns, 500_000_000, False, 80)[0]  # type: ignore[arg-type]
    assert shortened("sqlalchemy.orm.session", 12) == "sqlalchemy.…"
    assert shortened("/a/b/session.py:12", 10, from_left=True) == "…ion.py:12"
    assert fitted([10, 10, 10, 5], 100) == [10, 10, 10, 5]
