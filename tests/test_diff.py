"""`flowtrace diff`: exact diffs of small session pairs (written with exact times), two real runs
of one deterministic program, and bad inputs (flowtrace/session_diff.py, commands/diff.py)."""

from __future__ import annotations

import itertools
import json
import pathlib
import subprocess
import sys
import textwrap
from typing import Any, Callable

import pytest
from trace_builder import TraceBuilder

from flowtrace.cli import main
from flowtrace.commands import diff as diff_cmd
from flowtrace.ftr.scan import survey
from flowtrace import diff_rules as R
from flowtrace import session_diff as S
from flowtrace import session_locate as L
from flowtrace.profile import _Pass, run_pass
from flowtrace.session_diff import WITNESSES, Part, PathTable, diff_sessions

Program = Callable[[TraceBuilder], None]


def write(tmp: pathlib.Path, name: str, program: Program, finish: bool = True, **meta: Any) -> str:
    b = TraceBuilder(step=10, meta=meta or None)
    program(b)
    return b.save(str(tmp / name), finish=finish)


def call(b: TraceBuilder, name: str, t0: int, t1: int, args: str | None = "", result: str | None = "None",
         raised: str | None = None, kids: Callable[[], None] | None = None, thread: int = 1) -> int:
    cid = b.enter(name, args=args, t=t0, thread=thread)
    if kids is not None:
        kids()
    b.leave(cid, result=result, raised=raised, t=t1)
    return cid


def diff_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["diff", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def rows(doc: dict[str, Any]) -> list[tuple[str, list[str], int | None, int | None, int, int]]:
    """(path, change, calls BASE, calls NEW, Δ total, Δ self) per row, in the order shown."""
    return [("/".join(k.split(":")[1] for k in r["path"]), r["change"], r["base"] and r["base"]["calls"],
             r["new"] and r["new"]["calls"], r["delta"]["total_ns"], r["delta"]["self_ns"]) for r in doc["rows"]]


def loop_of(n: int, length: int = 100) -> Program:
    """main (0 .. 10000) calling f n times, each `length` ns."""
    def program(b: TraceBuilder) -> None:
        call(b, "main", 0, 10_000, kids=lambda: [call(b, "f", 10 + 200 * i, 10 + 200 * i + length, args=f"i={i}")
                                                 for i in range(n)])
    return program


def test_a_function_called_more(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = write(tmp_path, "a.ftr", loop_of(2)), write(tmp_path, "b.ftr", loop_of(3))
    doc = diff_json(capsys, a, b, "--threshold", "50ns")
    # main's self time lost 1 %: under the relative threshold
    assert rows(doc) == [("main/f", ["calls", "slower"], 2, 3, 100, 100)]
    assert doc["matched"] == {"units": 2, "both": 2, "only_base": 0, "only_new": 0, "changed": 1}
    assert doc["thresholds"] == {"relative": 0.1, "absolute_ns": 50}
    # with the default floor (50 µs) the times are noise: only the count changed
    assert rows(diff_json(capsys, a, b)) == [("main/f", ["calls"], 2, 3, 100, 100)]
    # by function, the same here
    doc = diff_json(capsys, a, b, "--by", "function")
    assert [r["path"] for r in doc["rows"]] == [["__main__:f"]]


def test_a_new_function_and_a_gone_one(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    def old(b: TraceBuilder) -> None:
        call(b, "main", 0, 1000, kids=lambda: call(b, "load", 10, 110))

    def new(b: TraceBuilder) -> None:
        call(b, "main", 0, 1000, kids=lambda: call(b, "fetch", 10, 410, args="url='x'", result="b'ok'"))

    doc = diff_json(capsys, write(tmp_path, "a.ftr", old), write(tmp_path, "b.ftr", new), "--threshold", "1ns")
    # changes of calls first, then of time only
    assert rows(doc) == [("main/fetch", ["new"], None, 1, 400, 400), ("main/load", ["gone"], 1, None, -100, -100),
                         ("main", ["faster"], 1, 1, 0, -300)]
    fetch = doc["rows"][0]
    assert fetch["base"] is None and fetch["new"]["first_call"] == 2 and fetch["delta"]["total_pct"] is None


def test_an_exception_that_appears(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(limit: int) -> Program:
        def program(b: TraceBuilder) -> None:
            def kids() -> None:
                for i in range(4):
                    bad = i > limit
                    call(b, "check", 10 + 100 * i, 60 + 100 * i, args=f"x={i}", result=None if bad else str(i),
                         raised=f"ValueError: x={i}" if bad else None)
            call(b, "main", 0, 1000, kids=kids)
        return program

    a, b = write(tmp_path, "a.ftr", run(10)), write(tmp_path, "b.ftr", run(1))
    doc = diff_json(capsys, a, b)
    assert rows(doc) == [("main/check", ["raised", "outcome"], 4, 4, 0, 0)]
    row = doc["rows"][0]
    assert row["base"]["exceptions"] == {} and row["new"]["exceptions"] == {"ValueError": 2}
    assert row["first_difference"] == {
        "number": 3, "base": {"call": 4, "file": a, "args": "x=2", "end": "return", "value": "2"},
        "new": {"call": 4, "file": b, "args": "x=2", "end": "raise", "value": "ValueError: x=2"}}
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    assert "raises ValueError (in 2 of 4 calls; not in BASE)" in out
    assert "call 3 of 4 differs (BASE call 4, NEW call 4):" in out
    assert "BASE  check(x=2) → 2" in out and "NEW   check(x=2) ✗ ValueError: x=2" in out
    assert "\x1b[" not in out  # plain when not a terminal
    # and the other way round: it disappears
    out_rev = diff_json(capsys, b, a)["rows"][0]
    assert out_rev["base"]["exceptions"] == {"ValueError": 2} and out_rev["new"]["raised"] == 0


def test_a_changed_result(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(third: str) -> Program:
        def program(b: TraceBuilder) -> None:
            results = ["1", "2", third, "4"]
            call(b, "main", 0, 1000, kids=lambda: [call(b, "price", 10 + 100 * i, 60 + 100 * i, args=f"item={i}",
                                                        result=r) for i, r in enumerate(results)])
        return program

    a, b = write(tmp_path, "a.ftr", run("3")), write(tmp_path, "b.ftr", run("30"))
    doc = diff_json(capsys, a, b)
    assert rows(doc) == [("main/price", ["outcome"], 4, 4, 0, 0)]
    assert doc["rows"][0]["first_difference"] == {
        "number": 3, "base": {"call": 4, "file": a, "args": "item=2", "end": "return", "value": "3"},
        "new": {"call": 4, "file": b, "args": "item=2", "end": "return", "value": "30"}}
    assert diff_json(capsys, a, a)["rows"] == []


def test_a_long_argument_list_shows_where_it_differs(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Django's create_permissions(app_config=<… at 0x…>, …, 'plan': []): the calls differed in the
    # last argument only, and both lines were cut at 100 characters, before it
    head = "app_config=<AdminConfig object at 0x{:x}>, verbosity=1, interactive=True, using='default', " * 2

    def run(plan: str, address: int) -> Program:
        def program(b: TraceBuilder) -> None:
            call(b, "main", 0, 1000, kids=lambda: call(b, "create", 10, 60, args=head.format(address, address) + f"plan={plan}"))
        return program

    a, b = write(tmp_path, "a.ftr", run("[1]", 0x7F07DFA7BD40)), write(tmp_path, "b.ftr", run("[]", 0x7F2D5A35BAD0))
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    base = next(line for line in out.splitlines() if "BASE  create(" in line).split("BASE  ")[1]
    new = next(line for line in out.splitlines() if "NEW   create(" in line).split("NEW   ")[1]
    assert base.endswith("using='default', plan=[1]) → None") and new.endswith("using='default', plan=[]) → None")
    assert base.startswith("create(…") and new.startswith("create(…")  # from a little before the difference
    # texts that fit are shown whole, as recorded
    assert diff_cmd.cut_pair("x=0x7f07dfa7bd40", "x=1") == ("x=0x7f07dfa7bd40", "x=1")
    long = "a" * 150
    assert diff_cmd.cut_pair(long, long) == (long[:99] + "…", long[:99] + "…")  # no difference: the start
    assert diff_cmd.cut_pair(long + "b", long + "c") == ("…" + "a" * 25 + "b", "…" + "a" * 25 + "c")
    # addresses are not where they differ (the comparison ignores them): shown as compared
    assert diff_cmd.cut_pair(f"<o at 0x7f07dfa7bd40> 1{long}", f"<o at 0x7f2d5a35bad0> 2{long}") == (
        f"<o at 0x…> 1{long}"[:99] + "…", f"<o at 0x…> 2{long}"[:99] + "…")


def many_calls(n: int, changes: dict[str, dict[int, str]], flush_every: int = 97) -> Program:
    """main calling f, then g, each n times (`i=…` → "0"); `changes[name][i]`: another result
    for call i of that function; batches end every `flush_every` calls (a call's end can be
    in a later chunk than its start)."""
    def program(b: TraceBuilder) -> None:
        main_id = b.enter("main", t=0)
        t = 10
        for name in ("f", "g"):
            for i in range(n):
                cid = b.enter(name, args=f"i={i}", t=t)
                if i % flush_every == 0:
                    b.flush()
                b.leave(cid, result=changes.get(name, {}).get(i, "0"), t=t + 5)
                t += 10
        b.leave(main_id, t=t)
    return program


def first_differences(doc: dict[str, Any]) -> dict[str, tuple[int, int, str, str]]:
    """Per changed path's last name: (number, NEW call id, BASE value, NEW value)."""
    out = {}
    for r in doc["rows"]:
        d = r["first_difference"]
        assert r["difference_range"] is None
        out[r["path"][-1].split(":")[1]] = (d["number"], d["new"]["call"], d["base"]["value"], d["new"]["value"])
    return out


@pytest.mark.parametrize("at", [0, 8, 999, 1499], ids=["call 1", "call 9", "call 1000", "the last call"])
def test_the_first_differing_call_is_named_wherever_it_is(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
                                                           at: int) -> None:
    """Exact at any position: the first WITNESSES calls in the first pass, the others by the
    locating passes; f changes at `at` (and later), g at another call, both paths named."""
    a = write(tmp_path, "a.ftr", many_calls(1500, {}))
    b = write(tmp_path, "b.ftr", many_calls(1500, {"f": {1499: "y", at: "x"}, "g": {700: "z"}}))
    doc = diff_json(capsys, a, b)
    assert rows(doc) == [("main/f", ["outcome"], 1500, 1500, 0, 0), ("main/g", ["outcome"], 1500, 1500, 0, 0)]
    assert first_differences(doc) == {"f": (at + 1, at + 2, "0", "x"), "g": (701, 1500 + 702, "0", "z")}
    f = doc["rows"][0]["first_difference"]
    assert f["base"] == {"call": at + 2, "file": a, "args": f"i={at}", "end": "return", "value": "0"}
    assert main(["diff", a, b]) == 0
    out = capsys.readouterr().out
    assert f"call {at + 1} of 1500 differs (BASE call {at + 2}, NEW call {at + 2}):" in out
    assert f"NEW   f(i={at}) → x" in out and "call 701 of 1500 differs" in out
    # by function: the same calls (each function is called at one path)
    by_fn = diff_json(capsys, a, b, "--by", "function")
    assert first_differences(by_fn) == first_differences(doc)


def test_locating_narrows_over_several_passes_when_calls_do_not_fit(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for 16 slots, the 1,492 calls searched per path are summed in runs first, then
    narrowed until one run of calls fits: the same calls are named. Two calls that swap their
    outcomes are a difference (at the first of them): runs are summed weighted by position."""
    monkeypatch.setattr(L, "LOCATE_SLOTS", 16)
    passes = []
    real = L.LocatePass
    monkeypatch.setattr(L, "LocatePass", lambda *a: passes.append("BASE" if a[-1] is None else "NEW") or real(*a))
    swapped = {1234: "1", 1235: "0"}
    a = write(tmp_path, "a.ftr", many_calls(1500, {"f": {1235: "1"}}))
    b = write(tmp_path, "b.ftr", many_calls(1500, {"f": swapped, "g": {9: "z", 1300: "w"}}))
    assert first_differences(diff_json(capsys, a, b)) == {"f": (1235, 1236, "0", "1"), "g": (10, 1500 + 11, "0", "z")}
    # g's first difference is past the witnesses (call 10): f and g are searched together,
    # 2 x 1,492 calls in runs of 187 calls, then 2 x 187 in runs of 24, 2 x 24 in runs of 3,
    # then 2 x 3 one by one: 4 passes over BASE then NEW
    assert passes == ["BASE", "NEW"] * 4


def test_locating_finds_nothing_in_a_session_changed_between_passes(tmp_path: pathlib.Path) -> None:
    """Should NEW change under the locating pass (a session still being written), no call is
    named: the range searched is said instead."""
    a = write(tmp_path, "a.ftr", many_calls(40, {}))
    b = write(tmp_path, "b.ftr", many_calls(40, {"f": {20: "x"}}))
    base, new = [Part("", survey(a))], [Part("", survey(b))]
    table = PathTable()
    first = S.read_run(base, table, False, True, None)
    S.read_run(new, table, False, True, first.units)
    f = table.node_ids[(table.node_ids[(0, table.name_ids["__main__:main"])], table.name_ids["__main__:f"])]
    search = L.Search(f, WITNESSES, 40)
    L.locate(base, base, table, False, True, [search])  # BASE against itself: alike
    assert search.found is None and (search.lo, search.hi) == (WITNESSES, 40)
    L.locate(base, new, table, False, True, [search])
    assert search.found is not None and search.found.index == 20


def test_texts_are_hashed_chunk_by_chunk_as_one_by_one(tmp_path: pathlib.Path) -> None:
    """A pass hashes each STRS chunk's texts as it goes by (ASCII or not, addresses dropped):
    the same numbers as `diff_rules.text_hash` of each text read alone."""
    texts = ["i=1", "é=2 ✓", "<C object at 0x7f12ab34cd50>", "", "None"]
    info = survey(write(tmp_path, "a.ftr", lambda b: [call(b, "f", 10 * i, 10 * i + 5, args=t, result=t)
                                                       for i, t in enumerate(texts)]))
    reader = L.HashedTexts(info, True)
    try:
        run_pass(_Pass(info, None, False, False), info, reader)
        hashed = dict(reader.hashes.text_hashes)
        assert len(hashed) == 1 + 2 * len(texts)  # (and id 0: no text)
        assert all(h == R.text_hash(reader.get(sid)) for sid, h in hashed.items())
        assert reader.hashes.text_hash(3) == R.text_hash("é=2 ✓")
        assert len({h for sid, h in hashed.items() if sid}) == len(set(texts))
    finally:
        reader.close()


def test_order_and_addresses_are_not_a_change(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(order: list[int], address: str) -> Program:
        def program(b: TraceBuilder) -> None:
            call(b, "main", 0, 1000, kids=lambda: [
                call(b, "visit", 10 + 100 * n, 60 + 100 * n, args=f"self=<m.Node object at {address}>, k={k}",
                     result=str(k * k)) for n, k in enumerate(order)])
        return program

    a = write(tmp_path, "a.ftr", run([1, 2, 3], "0x7f00aa001000"))
    b = write(tmp_path, "b.ftr", run([3, 1, 2], "0x7fbb00c0f0e0"))
    assert diff_json(capsys, a, b)["rows"] == []
    assert main(["diff", a, b]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no change"


def fib_program(depth: int) -> Program:
    """fib(depth) as a chain (fib(n) calls fib(n-1) only), 10 ns of self time each."""
    def program(b: TraceBuilder) -> None:
        def fib(n: int, t: int) -> int:
            cid = b.enter("fib", args=f"n={n}", t=t)
            end = fib(n - 1, t + 10) if n > 1 else t + 10
            b.leave(cid, result="1", t=end + 10)
            return end + 10
        cid = b.enter("main", t=0)
        b.leave(cid, result="None", t=fib(depth, 5) + 5)
    return program


def test_recursion_depth_change(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = write(tmp_path, "a.ftr", fib_program(3)), write(tmp_path, "b.ftr", fib_program(4))
    doc = diff_json(capsys, a, b, "--threshold", "1ns", "--threshold", "0%")
    # every fib call got one deeper: its argument changed, and one path is new
    assert rows(doc) == [("main/fib/fib/fib/fib", ["new"], None, 1, 20, 20),
                         ("main/fib", ["outcome", "slower"], 1, 1, 20, 0),
                         ("main/fib/fib", ["outcome", "slower"], 1, 1, 20, 0),
                         ("main/fib/fib/fib", ["outcome", "slower"], 1, 1, 20, 0),
                         ("main", ["slower"], 1, 1, 20, 0)]
    # by function: fib's total counts its outermost call only (no double counting of recursion)
    doc = diff_json(capsys, a, b, "--by", "function", "--threshold", "1ns")
    assert rows(doc) == [("fib", ["calls", "slower"], 3, 4, 20, 20), ("main", ["slower"], 1, 1, 20, 0)]
    assert doc["rows"][0]["base"]["total_ns"] == 60
    assert main(["diff", a, b]) == 0
    assert "main › fib (×3)" in capsys.readouterr().out


def threads_program(worker_items: dict[int, list[int]]) -> Program:
    """Each worker thread handles its items: which thread gets which item differs between runs."""
    def program(b: TraceBuilder) -> None:
        call(b, "main", 0, 50, thread=1)
        for thread, items in worker_items.items():
            b.thread(thread, f"worker-{thread}")
            call(b, "work", 100 * thread, 100 * thread + 90, thread=thread, kids=lambda items=items, thread=thread: [
                call(b, "job", 100 * thread + 10 * (n + 1), 100 * thread + 10 * (n + 1) + 5, args=f"item={i}",
                     result=str(i * 2), thread=thread) for n, i in enumerate(items)])
    return program


def test_threads(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.ftr", threads_program({2: [1, 2], 3: [3, 4]}))
    b = write(tmp_path, "b.ftr", threads_program({2: [3], 3: [1, 4, 2]}))
    assert main(["diff", a, b, "--format", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    # work ran twice and job four times in both: the same outcomes, on other threads
    assert doc["rows"] == []
    assert "the calls of all threads are matched together, by path" in captured.err
    c = write(tmp_path, "c.ftr", threads_program({2: [1, 2], 3: [3, 5]}))
    assert rows(diff_json(capsys, a, c)) == [("work/job", ["outcome"], 4, 4, 0, 0)]


def test_unfinished_and_different_programs_say_what_was_matched(tmp_path: pathlib.Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.ftr", loop_of(2))

    def cut(b: TraceBuilder) -> None:
        loop_of(2)(b)
        b.enter("late", t=9000)  # still running when the file ends

    b = write(tmp_path, "b.ftr", cut, finish=False, argv=["other.py"])
    assert main(["diff", a, b]) == 0
    captured = capsys.readouterr()
    assert "different programs (BASE ran prog.py; NEW ran other.py)" in captured.err
    assert "NEW " in captured.err and "unfinished" in captured.err
    assert "late" in captured.out and "new" in captured.out


def test_no_args_sessions_compare_ends_only(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.ftr", loop_of(2))

    def bare(b: TraceBuilder) -> None:
        call(b, "main", 0, 10_000, args=None, result=None, kids=lambda: [
            call(b, "f", 10 + 200 * i, 110 + 200 * i, args=None, result=None) for i in range(2)])

    b = write(tmp_path, "b.ftr", bare, options={"args": "off"})
    doc = diff_json(capsys, a, b)
    assert doc["rows"] == [] and doc["outcomes_compared"] == "ends"
    assert any("--no-args" in n for n in doc["notes"])


def test_bad_inputs(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.ftr", loop_of(2))
    assert main(["diff", a, str(tmp_path / "missing.ftr")]) == 1
    assert "missing.ftr" in capsys.readouterr().err
    junk = tmp_path / "junk.ftr"
    junk.write_bytes(b"not a trace at all" * 10)
    assert main(["diff", str(junk), a]) == 1
    err = capsys.readouterr().err
    assert err.startswith("flowtrace: error:") and "Traceback" not in err
    assert main(["diff", a, str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    # a damaged copy: what can be read is diffed, with a note
    data = pathlib.Path(a).read_bytes()
    damaged = tmp_path / "damaged.ftr"
    damaged.write_bytes(data[: len(data) - 40] + b"\xff" * 40)
    assert main(["diff", a, str(damaged)]) == 0
    assert "NEW" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["diff", a, a, "--threshold", "fast"])
    assert exit_.value.code == 2
    assert "not a threshold: 'fast'" in capsys.readouterr().err


def test_empty_sessions(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write(tmp_path, "e.ftr", lambda b: None)
    assert main(["diff", empty, empty]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no calls in either session"
    doc = diff_json(capsys, empty, write(tmp_path, "a.ftr", loop_of(1)))
    assert [r["change"] for r in doc["rows"]] == [["new"], ["new"]]
    assert any("no call path in common" in n for n in doc["notes"])


def test_colour_on_a_terminal(tmp_path: pathlib.Path) -> None:
    from flowtrace.commands.diff import ranked, text_report

    a, b = write(tmp_path, "a.ftr", loop_of(2)), write(tmp_path, "b.ftr", loop_of(3))
    d = diff_sessions([Part("", survey(a))], [Part("", survey(b))])
    lines = text_report(d, ranked(d, "self", False), color=True)
    assert any("\x1b[" in line and "calls" in line for line in lines)


def test_paths_fit_a_terminal_line(tmp_path: pathlib.Path) -> None:
    # Django's migrate: paths of 20-40 names wrapped by the terminal into the figures' columns
    from flowtrace.commands.diff import ranked, text_report, wrap_path

    path = " › ".join(["<module>", "main", "execute_from_command_line", "Command.handle",
                       "BaseDatabaseWrapper.commit", "BaseDatabaseWrapper._commit"])
    assert wrap_path(path, 200) == [path]
    assert wrap_path(path, 64) == ["<module> › main › execute_from_command_line › Command.handle ›",
                                   "BaseDatabaseWrapper.commit › BaseDatabaseWrapper._commit"]
    assert wrap_path(path, 20) == ["<module> › main ›", "execute_from_command_line ›", "Command.handle ›",
                                   "BaseDatabaseWrapper.commit ›", "BaseDatabaseWrapper._commit"]

    def deep(b: TraceBuilder) -> None:
        ids = [b.enter(f"level_{i:02d}_of_a_deep_path", t=10 * i) for i in range(30)]
        for i, cid in reversed(list(enumerate(ids))):
            b.leave(cid, t=1000 - 10 * i)

    a, b = write(tmp_path, "a.ftr", deep), write(tmp_path, "b.ftr", lambda bld: None)
    d = diff_sessions([Part("", survey(a))], [Part("", survey(b))])
    shown = ranked(d, "self", False)
    on_terminal = text_report(d, shown, color=False, width=160)
    table = on_terminal[on_terminal.index("") + 2:]
    assert all(len(line) < 160 for line in table)
    whole = " › ".join(f"level_{i:02d}_of_a_deep_path" for i in range(30))
    # the deepest path: its row's figures, then the path whole on lines of its own, under them
    row = next(i for i, line in enumerate(table) if line.startswith("gone") and not line.endswith("path"))
    under = list(itertools.takewhile(lambda line: line.startswith(" "), table[row + 1:]))
    assert len(under) > 1 and " ".join(line.strip() for line in under) == whole
    piped = text_report(d, shown, color=False)  # one line a row, whole paths, for grep
    assert any(line.endswith(whole) for line in piped) and not any(line.startswith(" ") for line in piped)


DETERMINISTIC = textwrap.dedent("""
    import threading

    class Node:
        def __init__(self, k):
            self.k = k
        def visit(self, depth):
            # set iteration order differs between runs (hash randomization): so does the
            # order of tag's calls, not their outcomes
            return sorted(tag(s) for s in {"a", "b", "c", str(self.k)})

    def tag(s):
        return s.upper()

    def walk(nodes, depth):
        if depth == 0:
            return 0
        return sum(len(n.visit(depth)) for n in nodes) + walk(nodes, depth - 1)

    def work(i):
        try:
            if i % 3 == 0:
                raise KeyError(i)
        except KeyError:
            pass
        return sorted({f"s{j}" for j in range(i)})

    def main():
        nodes = [Node(i) for i in range(20)]
        walk(nodes, 6)
        threads = [threading.Thread(target=lambda: [work(i) for i in range(12)]) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()

    main()
""")


def test_the_same_program_twice_has_the_same_counts_and_outcomes(tmp_path: pathlib.Path) -> None:
    (tmp_path / "prog.py").write_text(DETERMINISTIC)
    for name in ("a.ftr", "b.ftr"):
        subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", name, "prog.py"], cwd=tmp_path,
                       check=True, capture_output=True, timeout=120)
    for by in ("path", "function"):
        out = subprocess.run([sys.executable, "-m", "flowtrace", "diff", "a.ftr", "b.ftr", "--by", by, "--all",
                              "--format", "json"], cwd=tmp_path, check=True, capture_output=True, text=True,
                             timeout=120)
        doc = json.loads(out.stdout)
        assert doc["matched"]["only_base"] == doc["matched"]["only_new"] == 0
        assert len(doc["rows"]) == doc["matched"]["units"] >= 6
        structural = [r for r in doc["rows"] if set(r["change"]) & {"new", "gone", "calls", "raised", "outcome"}]
        assert structural == []


def test_processes_are_matched_by_command(tmp_path: pathlib.Path) -> None:
    """A session of several processes (a Part per process's file): paths start under their
    process's command, and processes running one command are matched together."""
    root = write(tmp_path, "root.ftr", loop_of(1))

    def worker(items: list[int]) -> Program:
        def program(b: TraceBuilder) -> None:
            call(b, "square", 0, 100, kids=None, args="xs", result=str([i * i for i in items]))
        return program

    def job(name: str, items: list[int]) -> Part:
        return Part("python worker.py", survey(write(tmp_path, name, worker(items), argv=["worker.py"])))

    base = [Part("", survey(root)), job("w1.ftr", [1]), job("w2.ftr", [2])]
    new = [Part("", survey(root)), job("w3.ftr", [2]), job("w4.ftr", [1])]  # the other worker first
    d = diff_sessions(base, new)
    assert [(R.path_text(r.keys), r.kinds) for r in d.rows] == [
        ("main", ["same"]), ("main › f", ["same"]), ("[python worker.py] › square", ["same"])]
    assert any("processes matched by the program they ran" in n for n in d.notes)
    changed = [Part("", survey(root)), job("w5.ftr", [1]), job("w6.ftr", [3])]
    (row,) = [r for r in diff_sessions(base, changed).rows if r.changed]
    assert row.kinds == ["outcome"] and row.first_difference is not None
    assert (row.first_difference.base.part, row.first_difference.new.part) == (2, 2)
    assert (row.first_difference.base.value, row.first_difference.new.value) == ("[4]", "[9]")
    only_base = diff_sessions(base, [Part("", survey(root))])
    assert [r.kinds for r in only_base.rows if r.changed] == [["gone"]]


CHILDREN = textwrap.dedent("""
    import subprocess, sys

    def work(n):
        return sum(range(n))

    if len(sys.argv) > 2 and sys.argv[1] == "child":
        print(work(int(sys.argv[2])))
    else:
        for n in sys.argv[1:]:
            subprocess.run([sys.executable, __file__, "child", n], check=True)
""")


def test_sessions_of_several_processes(tmp_path: pathlib.Path) -> None:
    (tmp_path / "prog.py").write_text(CHILDREN)
    for name, args in (("a.ftr", ["10", "20"]), ("b.ftr", ["10", "30"])):
        subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", name, "prog.py", *args], cwd=tmp_path,
                       check=True, capture_output=True, timeout=120)
    out = subprocess.run([sys.executable, "-m", "flowtrace", "diff", "a.ftr", "b.ftr", "--format", "json"],
                         cwd=tmp_path, check=True, capture_output=True, text=True, timeout=120)
    doc = json.loads(out.stdout)
    assert len(doc["base"]["processes"]) == len(doc["new"]["processes"]) == 3
    rows = {R.path_text(r["path"]): r for r in doc["rows"]}
    # both children run prog.py (matched together, whatever their arguments): one got another n
    work = rows["[python prog.py] › <module> › work"]
    assert work["change"][0] == "outcome" and work["base"]["calls"] == work["new"]["calls"] == 2
    assert work["first_difference"]["new"]["args"] == "n=30"
    assert "processes matched by" in out.stderr
