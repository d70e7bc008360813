"""profile.py's pass in C (`_crecorder.ProfilePass`, profile_pass.c) against the Python pass, its
definition: the same Profile -- functions, edges, paths, path_self, path_thread and total, each
dict in the same order -- on random sessions, on programs recorded by both recorders
(recursion, generators with folded resumes, throw, coroutines, threads, exceptions, calls still
running at the end, a killed program), on cut and damaged copies of them, on every column type
and encoding a writer may use; a value beyond 64 bits falls back to the Python pass; and the
commands' output (stats, pstats, collapsed) is byte for byte the Python pass's."""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
from array import array
from typing import Any, Iterator

import pytest
from trace_builder import add_call, add_exit, random_session, write_profile_sample

from flowtrace import profile as P
from flowtrace.cli import main
from flowtrace.ftr import decode as D
from flowtrace.ftr import format as F
from flowtrace.ftr.batch import Batch
from flowtrace.ftr.records import Column
from flowtrace.ftr.scan import SessionInfo, chunks, glance, survey
from flowtrace.ftr.writer import SessionWriter

pytestmark = pytest.mark.skipif(P._ProfilePass is None, reason="the C extension (ProfilePass) is not built")


def as_lists(result: P.Profile) -> list[Any]:
    """Everything a Profile holds, dict orders included."""
    return [list(result.functions.items()), list(result.edges.items()), list(result.paths.items()),
            list(result.path_self.items()), list(result.path_thread.items()), result.total]


def assert_same_passes(path: pathlib.Path, thread: int | None = None, edges: bool = True, paths: bool = True) -> P.Profile:
    """Both passes over the file, glanced (checked as they go) and surveyed, give one Profile."""
    results = []
    for read in (glance, survey):
        for kind in (P._Pass, P._NativePass):
            results.append(as_lists(P._profile(kind, read(path), thread, edges, paths)))
    assert results[1] == results[0]
    assert results[3] == results[2]
    return P._profile(P._NativePass, survey(path), thread, edges, paths)


@pytest.mark.parametrize("seed", range(48))
def test_random_sessions(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    ending = ("finished", "killed", "stopped")[seed % 3]
    random_session(path, seed, steps=200 + 40 * seed, threads=1 + seed % 3, ending=ending)
    result = assert_same_passes(path)
    assert result.functions and result.total > 0
    for thread in (1, 2, 3):
        assert_same_passes(path, thread=thread)
    assert_same_passes(path, edges=False, paths=False)


def test_the_known_sample(tmp_path: pathlib.Path) -> None:
    write_profile_sample(tmp_path / "p.ftr")
    result = assert_same_passes(tmp_path / "p.ftr")
    assert result.total == 1000 + 300  # (test_stats checks every number of it)
    assert_same_passes(tmp_path / "p.ftr", thread=2)


PROGRAM = textwrap.dedent('''\
    import asyncio, os, signal, sys, threading, time

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def numbers(n):
        for i in range(n):
            yield i

    def chatty():  # quiet resumes: folded into one MARK row by the C recorder
        return sum(numbers(300)) + sum(x for x in numbers(50))

    def catcher():
        while True:
            try:
                yield
            except ValueError:
                pass

    def thrown():
        g = catcher()
        next(g)
        for _ in range(3):
            g.throw(ValueError("in"))
        g.close()

    def outlive():  # a generator that outlives the call that first ran it
        g = numbers(5)
        next(g)
        return g

    async def leaf(i):
        await asyncio.sleep(0)
        if i == 2:
            raise KeyError(i)
        return fib(i + 3)

    async def gather():
        return await asyncio.gather(*(leaf(i) for i in range(5)), return_exceptions=True)

    def check(x):
        if x % 3 == 0:
            raise ValueError(x)
        return x

    def deep(n):
        if n:
            return deep(n - 1)
        raise RuntimeError("bottom")

    def worker(n):
        for i in range(n):
            fib(6)
            try:
                check(i)
            except ValueError:
                pass

    def main():
        fib(12)
        chatty()
        thrown()
        list(outlive())
        asyncio.run(gather())
        try:
            deep(30)
        except RuntimeError:
            pass
        threads = [threading.Thread(target=worker, args=(30,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        never = threading.Event()
        threading.Thread(target=never.wait, name="stuck", daemon=True).start()  # running at the end
        g = numbers(3)
        next(g)  # a generator left suspended
        if sys.argv[1:] == ["kill"]:
            time.sleep(0.4)  # (flushed every 0.05 s)
            os.kill(os.getpid(), signal.SIGKILL)
        return g

    main()
''')


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """The program recorded by each recorder, ending normally and killed."""
    where = tmp_path_factory.mktemp("programs")
    (where / "prog.py").write_text(PROGRAM)
    out = {}
    for recorder in ("c", "python"):
        for ending in ("exit", "kill"):
            name = f"{recorder}-{ending}.ftr"
            env = dict(os.environ, FLOWTRACE_RECORDER=recorder)
            proc = subprocess.run([sys.executable, "-m", "flowtrace", "run", "--include", "*", "-o", name,
                                   "--flush-interval", "0.05", "prog.py", *(["kill"] if ending == "kill" else [])],
                                  cwd=where, env=env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == (-signal.SIGKILL if ending == "kill" else 0), proc.stderr
            out[name] = where / name
    return out


NAMES = [f"{r}-{e}.ftr" for r in ("c", "python") for e in ("exit", "kill")]


@pytest.mark.parametrize("name", NAMES)
def test_recorded_programs(recorded: dict[str, pathlib.Path], name: str) -> None:
    path = recorded[name]
    info = survey(path)
    assert info.meta.get("recorder") == name.split("-")[0]
    kinds = {int(k) for rows in chunks(info, {F.MARK}) for k in rows.kind.ints()}
    if name == "c-exit":  # (what the program was written to have: folds, throws, suspensions)
        assert {F.MARK_FOLD, F.MARK_THROW, F.MARK_SUSPEND, F.MARK_RESUME} <= kinds
    result = assert_same_passes(path)
    assert {info.functions[f].qualname for f, t in result.functions.items() if t.calls} >= {
        "fib", "numbers", "catcher", "leaf", "worker", "deep"}
    assert info.unfinished or any(t for _k, (_cc, _nc, _tt, t) in result.edges.items())
    for thread in info.threads:
        assert_same_passes(path, thread=thread)


@pytest.mark.parametrize("name", NAMES)
def test_cut_and_damaged_copies(recorded: dict[str, pathlib.Path], name: str, tmp_path: pathlib.Path) -> None:
    data = recorded[name].read_bytes()
    rng = random.Random(name)
    copies = [data[: int(len(data) * f)] for f in (0.2, 0.45, 0.7, 0.9)]
    copies += [data[: rng.randrange(len(data) // 3, len(data))] for _ in range(3)]
    for _ in range(3):  # a byte flipped: the chunk's CRC fails there, reading stops before it
        at = rng.randrange(len(data) // 4, len(data))
        copies.append(data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:])
    for i, copy in enumerate(copies):
        path = tmp_path / f"copy{i}.ftr"
        path.write_bytes(copy)
        assert_same_passes(path)
        assert_same_passes(path, thread=1)


# --- every column type and encoding ----------------------------------------------------------------

def recoded(col: Column, rng: random.Random) -> Column:
    """The same values in another stored form: a narrower or wider type, raw or as steps."""
    values = list(col.ints())
    fits = {"B": (0, 255), "H": (0, 65535), "I": (0, 2**32 - 1), "i": (-2**31, 2**31 - 1),
            "q": (-2**63, 2**63 - 1), "Q": (0, 2**64 - 1)}
    steps = [b - a for a, b in zip([0] + values, values)]
    forms = [(tc, enc, vals) for enc, vals in ((F.ENC_RAW, values), (F.ENC_DELTA, steps))
             for tc, (lo, hi) in fits.items()
             if all(lo <= v <= hi for v in vals) and not (enc == F.ENC_DELTA and tc in "BHIQ" and min(vals, default=0) < 0)]
    tc, enc, vals = rng.choice(forms)
    stored = array(tc, vals)
    if sys.byteorder != "little":
        stored.byteswap()
    return Column(col.name, tc, enc, memoryview(stored.tobytes()))


def recoded_records(info: SessionInfo, seed: int) -> Iterator[Any]:
    rng = random.Random(seed)
    for rows in chunks(info, P._ROWS):
        fields = {name: recoded(getattr(rows, name), rng) for name in rows.__slots__ if name not in ("base", "rows")}
        yield type(rows)(base=rows.base, rows=rows.rows, **fields)


@pytest.mark.parametrize("seed", range(12))
def test_every_column_form(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    random_session(path, seed, steps=300, threads=2, ending=("finished", "killed")[seed % 2])
    info = survey(path)
    results = []
    for kind in (P._Pass, P._NativePass):
        p = kind(info, None, True, True)
        P.run_pass(p, info, records=recoded_records(info, seed))
        results.append(as_lists(p.result))
    assert results[1] == results[0]
    assert results[0] == as_lists(P._profile(P._Pass, info, None, True, True))


# --- beyond 64 bits: the Python pass ------------------------------------------------------------------

def long_calls_session(path: pathlib.Path) -> None:
    """Two root calls of 9e18 ns, on two threads: their sum does not fit 64 bits."""
    b = Batch()
    b.functions = [{"id": 1, "qualname": "long", "module": "m", "file": "/m.py", "line": 1, "kind": "function"}]
    b.threads = [{"id": th, "ident": th, "native_id": th, "name": f"T{th}"} for th in (1, 2)]
    b.call_first_id = 1
    for cid in (1, 2):
        add_call(b, 0, 1, cid, 0, 0)
        add_exit(b, cid, LONG, F.END_RETURN, 0)
    writer = SessionWriter(path, {"pid": 1, "argv": ["m.py"], "cwd": "/"}, 0)
    writer.write_batch(b)
    writer.finish({"t_end_abs": LONG, "reason": "exit", "exit_code": 0})


LONG = 9_000_000_000_000_000_000


def test_sums_beyond_64_bits_are_the_python_pass(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "long.ftr"
    long_calls_session(path)
    with pytest.raises(OverflowError):
        P._profile(P._NativePass, survey(path), None, True, True)
    result = P.profile(survey(path), edges=True, paths=True)
    assert result.total == 2 * LONG > 2**63
    assert as_lists(result) == as_lists(P._profile(P._Pass, survey(path), None, True, True))


def test_a_value_beyond_int64_is_the_python_pass(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.ftr"
    write_profile_sample(path)
    info = survey(path)

    def records() -> Iterator[Any]:  # call 1's start moved past 2**63 in an unsigned column
        for rows in chunks(info, P._ROWS):
            if isinstance(rows, D.CallRows):
                t0 = [v + 2**63 * (cid == 1) for cid, v in enumerate(rows.t0.ints(), rows.base)]
                rows = D.CallRows(rows.base, rows.rows, rows.parent, rows.function, rows.thread,
                                  Column("t0", "Q", F.ENC_RAW, memoryview(array("Q", t0).tobytes())),
                                  rows.args, rows.task, rows.flag)
            yield rows

    native = P._NativePass(info, None, True, True)
    with pytest.raises(OverflowError):
        P.run_pass(native, info, records=records())
    python = P._Pass(info, None, True, True)
    P.run_pass(python, info, records=records())
    assert python.result.functions[1].calls == 1


# --- the commands ------------------------------------------------------------------------------------

def command_output(argv: list[str], native: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    with monkeypatch.context() as m:
        if not native:
            m.setattr(P, "_ProfilePass", None)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", ["c-exit", "python-kill"])
def test_commands_write_what_the_python_pass_gives(recorded: dict[str, pathlib.Path], name: str,
                                                   tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(recorded[name + ".ftr"])
    runs = [["stats", path, "--limit", "0"], ["stats", path, "--sort", "self", "--thread", "1", "--format", "json"],
            ["export", path, "-f", "collapsed", "-o", "-"]]
    for argv in runs:
        assert command_output(argv, True, monkeypatch) == command_output(argv, False, monkeypatch)
    written = []
    for native in (True, False):
        out = tmp_path / f"{native}.pstats"
        code, _out, _err = command_output(["export", path, "-f", "pstats", "-o", str(out)], native, monkeypatch)
        assert code == 0
        written.append(out.read_bytes())
    assert written[0] == written[1]
