"""benchmarks/e2e.py's parts that need no timing: the rounds' spread and the goal verdicts it
allows (e2e_spread.py), reading callgrind's dumps (callgrind_phase.py), the tables printed from
made-up figures, and -- where valgrind and cc are installed -- that the marked phase counts every
thread's instructions and nothing outside the marks."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

import callgrind_phase  # noqa: E402
import e2e  # noqa: E402
from callgrind_phase import (CallgrindError, Dump, parse_dump, phase_cache_misses, phase_counts,  # noqa: E402
                             read_dumps, under_callgrind)
from e2e_spread import Spread, goal_verdict, range_text  # noqa: E402


# -- spread and verdicts ---------------------------------------------------------------------

def test_spread_of_rounds():
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(1.0, 2.0, 3.0)
    assert Spread.of([4.0, 1.0, 2.0, 3.0]) == Spread(1.0, 2.5, 4.0)
    assert Spread.of([5.0]) == Spread(5.0, 5.0, 5.0)
    assert Spread(2.0, 3.0, 4.0).scaled(2.0) == Spread(1.0, 1.5, 2.0)
    with pytest.raises(ValueError):
        Spread.of([])


def test_verdict_ok_when_even_the_worst_case_meets_the_goal():
    # untraced 100; ft 150..160 (overhead .5-.6), viz 190..210 (.9-1.1)
    v = goal_verdict(Spread(150, 155, 160), Spread(190, 200, 210), Spread.of([100]), 1.0)
    assert v.word == "ok"
    assert v.ratio == pytest.approx(0.55)
    assert v.best == pytest.approx(0.5 / 1.1)
    assert v.worst == pytest.approx(0.6 / 0.9)


def test_verdict_miss_when_even_the_best_case_misses():
    v = goal_verdict(Spread(300, 310, 320), Spread(190, 200, 210), Spread.of([100]), 1.0)
    assert v.word == "MISS"
    assert v.best == pytest.approx(2.0 / 1.1)


def test_verdict_noise_when_the_ranges_allow_both():
    # the VM's oop figures: viz slowdown 1.35 / 2.90 / 3.69, ft 3.82 (one made-up range around it)
    v = goal_verdict(Spread(330, 382, 420), Spread(135, 290, 369), Spread.of([100]), 1.0)
    assert v.word == "noise"
    assert v.ratio == pytest.approx(2.82 / 1.90)
    assert v.best == pytest.approx(2.30 / 2.69) and v.best <= 1.0
    assert v.worst == pytest.approx(3.20 / 0.35) and v.worst > 1.0


def test_one_round_gives_a_plain_verdict():
    assert goal_verdict(Spread.of([170]), Spread.of([200]), Spread.of([100]), 0.7).word == "ok"
    assert goal_verdict(Spread.of([171]), Spread.of([200]), Spread.of([100]), 0.7).word == "MISS"


def test_verdict_when_viztracer_can_be_as_fast_as_untraced():
    # viz's fastest round no slower than untraced: no bound on the worst ratio
    v = goal_verdict(Spread(110, 120, 130), Spread(95, 150, 160), Spread.of([100]), 1.0)
    assert math.isinf(v.worst) and v.word == "noise"
    assert goal_verdict(Spread(110, 120, 130), Spread(90, 100, 105), Spread.of([100]), 1.0) is None
    assert goal_verdict(Spread(110, 120, 130), Spread(90, 150, 160), Spread.of([0]), 1.0) is None


def test_fastest_rounds_ratio_takes_each_configuration_at_its_least_disturbed_round():
    # untraced 80-140 (a disturbed VM): at the fastest rounds ft's overhead is 40, viz's 80
    v = goal_verdict(Spread(120, 200, 260), Spread(160, 210, 300), Spread(80, 100, 140), 1.0)
    assert v.fastest == pytest.approx(0.5)
    assert v.ratio == pytest.approx(100 / 110)
    # VizTracer's fastest round no slower than the untraced one's: nothing to compare with
    assert goal_verdict(Spread(120, 200, 260), Spread(80, 210, 300), Spread(80, 100, 140), 1.0).fastest is None


def test_range_text():
    assert range_text(0.25, 1.5) == "0.25-1.50"
    assert range_text(0.5, math.inf) == "0.50-inf"
    assert range_text(19.4, 22.6, 0) == "19-23"


# -- callgrind's dumps ----------------------------------------------------------------------

def dump_text(pid: int, trigger: str, events: str, totals: str | None, summary: str = "1") -> str:
    """A callgrind output file as valgrind 3.19 writes it (header, a little body, totals)."""
    text = (f"# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: {pid}\n"
            f"cmd:  /usr/bin/python3 bench_oop.py\npart: 2\n\n\ndesc: I1 cache: \ndesc: Timerange: "
            f"Basic block 10 - 20\ndesc: Trigger: {trigger}\n\npositions: line\nevents: {events}\n"
            f"summary: {summary}\n\n\nob=(1) /usr/bin/python3\nfl=(1) ???\nfn=(1) f: g\n0 5\n")
    return text + (f"\ntotals: {totals}\n" if totals is not None else "")


def test_parse_dump_reads_pid_trigger_and_totals():
    d = parse_dump(dump_text(41, "Client Request: e2e-end", "Ir", "123456"))
    assert d == Dump(41, "Client Request: e2e-end", {"Ir": 123456})
    final = parse_dump(dump_text(41, "Program termination", "Ir Dr Dw", "7 8 9"))
    assert final.trigger == "Program termination" and final.totals == {"Ir": 7, "Dr": 8, "Dw": 9}
    assert parse_dump(dump_text(41, "x", "Ir Bc", "7")).totals == {"Ir": 7, "Bc": 0}


def test_parse_dump_takes_totals_not_the_per_thread_summary():
    # (the summary: line is kept per thread; totals: is the sum of everything dumped)
    assert parse_dump(dump_text(1, "x", "Ir", "500", summary="3")).totals == {"Ir": 500}
    assert parse_dump(dump_text(1, "x", "Ir", None, summary="3")).totals == {"Ir": 3}


def test_parse_dump_refuses_what_is_not_a_callgrind_file():
    with pytest.raises(CallgrindError):
        parse_dump("hello: world\n")


def test_phase_is_the_end_marks_dump_and_whole_is_every_dump_of_that_process():
    dumps = [Dump(7, "Client Request: e2e-start", {"Ir": 1000}), Dump(7, "Client Request: e2e-end", {"Ir": 300}),
             Dump(7, "Program termination", {"Ir": 50}), Dump(9, "Program termination", {"Ir": 99999})]
    assert phase_counts(dumps) == {"instr": 300, "instr_whole": 1350}


def test_cache_sim_takes_the_phase_dumps_misses_and_asks_valgrind_for_them():
    events = {"Ir": 300, "I1mr": 12, "D1mr": 5, "D1mw": 7, "ILmr": 1}
    dumps = [Dump(7, "Client Request: e2e-start", {"Ir": 1000, "I1mr": 900}), Dump(7, "Client Request: e2e-end", events)]
    assert phase_cache_misses(dumps) == {"i1_miss": 12, "d1r_miss": 5, "d1w_miss": 7}
    assert "--cache-sim=yes" in under_callgrind(["python"], "/tmp/x", cache_sim=True)
    assert "--cache-sim=yes" not in under_callgrind(["python"], "/tmp/x")
    with pytest.raises(CallgrindError, match="one dump marked"):
        phase_cache_misses(dumps[:1])


def test_phase_needs_exactly_one_end_mark():
    with pytest.raises(CallgrindError, match="one dump marked"):
        phase_counts([Dump(7, "Program termination", {"Ir": 50})])


def test_read_dumps_reads_only_callgrind_outputs(tmp_path):
    (tmp_path / "cg.12").write_text(dump_text(12, "Program termination", "Ir", "5"))
    (tmp_path / "cg.12.2").write_text(dump_text(12, "Client Request: e2e-end", "Ir", "3"))
    (tmp_path / "out.ftr").write_text("not a dump")
    assert phase_counts(read_dumps(str(tmp_path))) == {"instr": 3, "instr_whole": 8}


# -- the driver and the tables -----------------------------------------------------------------

def test_driver_marks_exactly_the_timed_loop():
    plain = e2e.driver("oop", 2, None)
    assert "_mark" not in plain and "ctypes" not in plain
    marked = e2e.driver("oop", 2, "/tmp/libx.so").splitlines()
    loop = marked.index("for _ in range(2):")
    assert marked[loop - 1] == "_mark(b'e2e-start')" and marked[loop - 2] == "_written()"
    assert marked[loop - 3].startswith("c0, w0 = ")
    assert marked[loop + 2] == "_written()" and marked[loop + 3] == "_mark(b'e2e-end')"
    assert marked[loop + 4].startswith("c1, w1 = ")
    compile("\n".join(marked), "bench_oop.py", "exec")
    assert "os._exit" not in "\n".join(marked)
    cut = e2e.driver("oop", 2, "/tmp/libx.so", phase_only=True).splitlines()
    assert cut[-1] == "os._exit(0)" and cut.index("_mark(b'e2e-end')") < len(cut) - 3  # (after the report)


def test_drain_in_phase_flushes_just_before_each_mark():
    assert "_drain()" not in e2e.driver("oop", 2, "/tmp/libx.so").splitlines()
    assert "_drain" not in e2e.driver("oop", 2, None, drain_in_phase=True)  # (no marks: timing mode)
    lines = e2e.driver("oop", 2, "/tmp/libx.so", drain_in_phase=True).splitlines()
    start, end = lines.index("_mark(b'e2e-start')"), lines.index("_mark(b'e2e-end')")
    assert lines[start - 1] == "_drain()" and lines[start - 2].startswith("c0, w0 = ")
    assert lines[start + 1] == "for _ in range(2):" and lines[end - 1] == "_drain()"
    assert lines.index("_drain = _ft.flush if _ft else (lambda: None)") < start - 2
    assert "_written()" not in lines  # (a flush waits for the writer too)
    compile("\n".join(lines), "bench_oop.py", "exec")


DRAIN_SCRIPT = """\
import sys
from flowtrace.ftr.reader import load
{setup}
def leaf(i):
    return i

for i in range(3000):
    leaf(i)
_drain()  # the 3000 calls are in the file now (no timed flush: --flush-interval 1000)
print(sum(1 for c in load(sys.argv[1]).calls if c.function.qualname == "leaf"))
"""


@pytest.mark.parametrize("recorded", [True, False])
def test_drain_in_phase_writes_the_rows_made_so_far_or_does_nothing_untraced(tmp_path, recorded):
    script = tmp_path / "drain.py"
    script.write_text(DRAIN_SCRIPT.format(setup=e2e.DRAIN_SETUP))
    out = str(tmp_path / "out.ftr")
    pre = [sys.executable, "-m", "flowtrace", "run", "-o", out, "--flush-interval", "1000"] if recorded else [
        sys.executable]
    if not recorded:
        first = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", out, "-c", "pass"],
                               capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
    proc = subprocess.run([*pre, str(script), out], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == ("3000" if recorded else "0")


WRITTEN_SCRIPT = """\
import sys
{setup}
print(_written.__qualname__, _drain.__qualname__)
"""


@pytest.mark.parametrize("recorded", [True, False])
def test_the_marks_wait_for_the_writer_thread_of_the_recording_session(tmp_path, recorded):
    script = tmp_path / "written.py"
    script.write_text(WRITTEN_SCRIPT.format(setup=e2e.DRAIN_SETUP))
    pre = [sys.executable, "-m", "flowtrace", "run", "-o", str(tmp_path / "out.ftr")] if recorded else [sys.executable]
    proc = subprocess.run([*pre, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # SessionWriter.sync: returns once the native writer thread has written every batch put
    assert proc.stdout.split()[-2:] == (["SessionWriter.sync", "Session.flush"] if recorded
                                        else ["<lambda>", "<lambda>"])


POLL_SCRIPT = """\
import sys

def leaf(i):
    return i

for i in range(10):
    leaf(i)
print(sys.modules["flowtrace.session"]._POLL_S)
"""


def test_counted_cells_set_the_flushers_poll_and_record_as_flowtrace_run_does(tmp_path):
    script = tmp_path / "poll.py"
    script.write_text(POLL_SCRIPT)
    out = str(tmp_path / "out.ftr")
    argv = e2e.command("ft-noargs", str(script), out, None, flush_interval=1000.0, poll_interval=500.0)
    assert argv[1] == "-c" and argv[3:] == ["run", "-o", out, "--no-args", "--flush-interval", "1000.0", str(script)]
    assert e2e.command("ft", "s.py", "o.ftr", None, flush_interval=1000.0)[1:3] == ["-m", "flowtrace"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "500.0"
    from flowtrace.ftr.reader import load
    names = [c.function.qualname for c in load(out).calls]
    as_user = str(tmp_path / "user.ftr")  # what `python -m flowtrace run` records of it
    proc = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", as_user, "--no-args", str(script)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert names.count("leaf") == 10 and names == [c.function.qualname for c in load(as_user).calls]


def test_keep_dumps_names_a_directory_per_counted_cell(tmp_path):
    class O:
        instructions, keep_dumps = True, str(tmp_path / "kept")
    assert e2e.kept_dumps(O, "fib", "base-ft", 1) == str(tmp_path / "kept" / "fib-base-ft-r2")
    assert os.path.isdir(tmp_path / "kept")
    O.keep_dumps = None
    assert e2e.kept_dumps(O, "fib", "ft", 0) is None


def test_counted_cells_give_flowtrace_a_long_flush_interval():
    ft = e2e.command("base-ft-noargs", "s.py", "o.ftr", None, flush_interval=1000.0)
    assert ft[-4:] == ["--no-args", "--flush-interval", "1000.0", "s.py"] and ft[ft.index("run") + 1] == "-o"
    assert "--flush-interval" not in e2e.command("ft", "s.py", "o.ftr", None)
    assert e2e.command("viz", "s.py", "o.json", "/v/viztracer", flush_interval=1000.0) == [
        "/v/viztracer", "-o", "o.json", "--quiet", "s.py"]


class Opts:
    def __init__(self, **kw):
        self.repeat, self.scale, self.instructions = kw.get("repeat", 3), 3, kw.get("instructions", False)


def test_time_tables_show_the_spread_and_a_noise_verdict(capsys):
    rounds = {"untraced": [0.10, 0.10, 0.11], "ft": [0.33, 0.382, 0.42], "viz": [0.135, 0.29, 0.369]}
    results = {("oop", c): [{"cpu": t, "wall": t, "whole": t + 0.1, "rss_mb": 20.0, "bytes": 1000, "calls": 100}
                            for t in ts] for c, ts in rounds.items()}
    summary = e2e.report(e2e.spreads(results), list(rounds), ["oop"], Opts())
    out = capsys.readouterr().out
    assert "min-max" in out and "0.33-0.42" not in out  # (slowdowns against the untraced median)
    assert "3.30-4.20" in out and "1.35-3.69" in out
    assert summary["verdicts"]["oop: ft/viz cpu <= 1.0"]["verdict"] == "noise"
    assert "(at the fastest rounds)" in out and "6.57" in out  # (0.33 / 0.10 - 1) / (0.135 / 0.10 - 1)
    assert summary["verdicts"]["oop: ft/viz cpu <= 1.0"]["fastest"] == pytest.approx(6.571, abs=1e-3)
    assert summary["goals"]["oop: ft/viz cpu <= 1.0"] == [pytest.approx(1.484, abs=1e-3), False]
    assert summary["spreads"]["oop/viz"]["cpu"] == [0.135, 0.29, 0.369]


def test_count_tables_say_they_are_instruction_counts(capsys):
    counts = {"untraced": 100_000_000, "ft": 250_000_000, "ft-noargs": 150_000_000, "viz": 200_000_000}
    results = {("oop", c): [{"instr": n, "instr_whole": n + 50_000_000, "bytes": 500, "calls": 100}]
               for c, n in counts.items()}
    results.update({("oop", "base-" + c): [{"instr": n + 10_000_000, "instr_whole": n, "bytes": 500}]
                    for c, n in counts.items() if c.startswith("ft")})
    configs = ["untraced", "base-ft", "base-ft-noargs", "ft", "ft-noargs", "viz"]
    summary = e2e.report(e2e.spreads(results), configs, ["oop"], Opts(repeat=1, instructions=True))
    out = capsys.readouterr().out
    assert "instruction counts" in out and "counts, not times" in out and "100.0M" in out
    assert "min-max" not in out and "cpu" not in out
    assert summary["verdicts"]["oop: ft/viz instr <= 1.0"] == {"ratio": 1.5, "best": 1.5, "worst": 1.5,
                                                                "verdict": "MISS", "fastest": 1.5}
    assert summary["verdicts"]["oop: ft-noargs/viz instr <= 0.7"]["verdict"] == "ok"
    assert summary["verdicts"]["oop: base-ft/viz instr <= 1.0"]["ratio"] == 1.6
    assert "ft         oop 0.938" in out  # A/B: 1.5 / 1.6


def test_phase_only_counts_print_no_whole_process_table(capsys):
    results = {("oop", c): [{"instr": n}] for c, n in (("untraced", 100e6), ("ft", 180e6), ("viz", 200e6))}
    summary = e2e.report(e2e.spreads(results), ["untraced", "ft", "viz"], ["oop"], Opts(repeat=1, instructions=True))
    out = capsys.readouterr().out
    assert "workload instructions" in out and "whole process" not in out and "instr_whole" not in out
    assert summary["verdicts"] == {"oop: ft/viz instr <= 1.0": {"ratio": 0.8, "best": 0.8, "worst": 0.8,
                                                                "verdict": "ok", "fastest": 0.8}}


# -- the marked phase under callgrind (valgrind and cc needed) ------------------------------------

PHASE_SCRIPT = """\
import ctypes, sys, threading
mark = ctypes.CDLL(sys.argv[1]).e2e_dump
def spin(n):
    x = 0
    for i in range(n):
        x += i
spin(300000)                 # before the phase: not counted
mark(b"e2e-start")
if sys.argv[2] == "thread":  # the phase's work done by another thread
    t = threading.Thread(target=spin, args=(100000,))
    t.start()
    t.join()
else:
    spin(100000)
mark(b"e2e-end")
spin(300000)                 # after the phase: not counted
"""


@pytest.mark.slow
@pytest.mark.skipif(callgrind_phase.missing_tools() is not None or shutil.which("valgrind") is None,
                    reason="needs valgrind, cc and valgrind/callgrind.h")
def test_the_phase_counts_every_thread_and_nothing_outside_the_marks(tmp_path):
    library = callgrind_phase.build_helper(str(tmp_path))
    script = tmp_path / "phase.py"
    script.write_text(PHASE_SCRIPT)
    counts = {}
    for where in ("main", "thread"):
        out = tmp_path / where
        out.mkdir()
        cmd = callgrind_phase.under_callgrind([sys.executable, str(script), library, where], str(out))
        subprocess.run(cmd, check=True, timeout=600, capture_output=True)
        counts[where] = phase_counts(read_dumps(str(out)))
    main, thread = counts["main"]["instr"], counts["thread"]["instr"]
    # the same loop, in the main thread or in another (+ starting and joining it: a few %)
    assert main * 0.98 < thread < main * 1.10
    # the 2 x 300000 iterations outside the marks are in the whole process only
    assert counts["main"]["instr_whole"] > main * 6


def test_each_configuration_runs_once_with_a_baseline():
    assert e2e.chosen_configs("untraced,ft,ft-noargs,viz", True) == [
        "untraced", "base-ft", "base-ft-noargs", "ft", "ft-noargs", "viz"]
    assert e2e.chosen_configs("untraced,ft,ft-noargs,viz,base-ft,base-ft-noargs", True) == [
        "untraced", "ft", "ft-noargs", "viz", "base-ft", "base-ft-noargs"]
    assert e2e.chosen_configs("untraced,ft,ft,viz", False) == ["untraced", "ft", "viz"]


def test_median_run_figures_leave_one_disturbed_run_out():
    runs = [[0.010, 0.011], [0.012, 0.013], [0.250, 0.400]]  # (the third run() met a neighbour's burst)
    assert e2e.median_run_figures(runs) == {"cpu_run": 0.012 * 3, "wall_run": 0.013 * 3}


def test_driver_times_each_run():
    lines = e2e.driver("oop", 2, None).splitlines()
    loop = lines.index("for _ in range(2):")
    assert lines[loop + 1] == "    timed(workload.run)"
    assert '"runs": runs' in lines[loop + 4]
