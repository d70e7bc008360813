"""benchmarks/real_suite.py's parts that need no network: the commands it runs, the ratios it
prints, and its pytest plugin, run for real -- untraced and under `flowtrace run` -- on a small
test file (it must time the session, count the tests and failures, and find the recording
session to flush)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

import real_suite  # noqa: E402


def test_commands_are_what_a_user_types():
    py, tests, out = "/v/bin/python", "tests/test_x.py", "/s/out"
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", real_suite.PLUGIN, tests]
    assert real_suite.command("untraced", py, tests, out) == [py, *pytest_args]
    assert real_suite.command("ft", py, tests, out) == [py, "-m", "flowtrace", "run", "--include", "*", "-o", out,
                                                        *pytest_args]
    assert real_suite.command("base-ft-noargs", py, tests, out) == [
        py, "-m", "flowtrace", "run", "--include", "*", "-o", out, "--no-args", *pytest_args]
    assert real_suite.command("viz", py, tests, out) == [py, "-m", "viztracer", "-o", out + ".json", "--quiet",
                                                         *pytest_args]
    # counted runs (--instructions) give flowtrace a long flush interval, as e2e.py's
    assert real_suite.command("ft", py, tests, out, 1000.0) == [
        py, "-m", "flowtrace", "run", "--include", "*", "-o", out, "--flush-interval", "1000.0", *pytest_args]
    assert real_suite.command("viz", py, tests, out, 1000.0) == real_suite.command("viz", py, tests, out)


def test_overhead_ratio_per_round_and_of_the_medians():
    runs = {"untraced": [{"cpu": 1.0}, {"cpu": 2.0}, {"cpu": 1.0}],
            "viz": [{"cpu": 2.0}, {"cpu": 3.0}, {"cpu": 3.0}],      # overheads 1, .5, 2
            "ft": [{"cpu": 1.5}, {"cpu": 3.0}, {"cpu": 2.0}]}       # overheads .5, .5, 1
    assert real_suite.overhead_ratio(runs, "ft", "cpu", 0) == pytest.approx(0.5)
    assert real_suite.overhead_ratio(runs, "ft", "cpu", 1) == pytest.approx(1.0)
    assert real_suite.overhead_ratio(runs, "ft", "cpu", 2) == pytest.approx(0.5)
    # medians: untraced 1, viz 3, ft 2 -> (2 - 1) / (3 - 1)
    assert real_suite.overhead_ratio(runs, "ft", "cpu") == pytest.approx(0.5)
    runs["viz"] = [{"cpu": 1.0}] * 3
    assert real_suite.overhead_ratio(runs, "ft", "cpu") is None   # no viz overhead to divide by


def test_report_prints_each_metric_with_its_ratio_to_viztracer(capsys):
    runs = {"untraced": [{"instr": 100e6, "i1_miss": 10e6}], "ft": [{"instr": 150e6, "i1_miss": 30e6}],
            "viz": [{"instr": 200e6, "i1_miss": 20e6}]}
    real_suite.report(runs, ["instr", "i1_miss"])
    lines = capsys.readouterr().out.splitlines()
    ft = [line for line in lines if line.startswith("ft ")]
    headers = [line.split(":")[0].strip() for line in lines if "median (min-max)" in line]
    assert headers == ["M instr", "M I1 misses"]
    assert ft[0].split()[:2] == ["ft", "150.00"] and "÷viz 0.50" in ft[0]   # (150-100) / (200-100)
    assert ft[1].split()[:2] == ["ft", "30.00"] and "÷viz 2.00" in ft[1]    # (30-10) / (20-10)
    runs["viz"] = [{"instr": 100e6, "i1_miss": 10e6}]   # no overhead to divide by: a dash, not a crash
    real_suite.report(runs, ["instr"])
    assert "÷viz -  (rounds: -)" in capsys.readouterr().out


@pytest.fixture
def suite(tmp_path):
    (tmp_path / f"{real_suite.PLUGIN}.py").write_text(real_suite.plugin_source())
    (tmp_path / "test_small.py").write_text(
        "def work(n):\n    return sum(i * i for i in range(n))\n\n"
        "def test_one():\n    assert work(10) == 285\n\n"
        "def test_two():\n    assert work(3) == 5\n\n"
        "def test_fails():\n    assert work(2) == 0\n")
    return tmp_path


@pytest.mark.parametrize("config", ["untraced", "ft"])
def test_plugin_times_the_session_and_counts_its_tests(suite, config):
    result = suite / "result.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(suite), os.path.dirname(BENCHMARKS)]),
               REAL_SUITE_OUT=str(result))
    cmd = real_suite.command(config, sys.executable, "test_small.py", str(suite / "out.ftr"))
    proc = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr   # the failing test, as without the plugin
    figures = json.loads(result.read_text())
    assert (figures["tests"], figures["failed"], figures["exit"]) == (3, 1, 1)
    assert 0 < figures["cpu"] < 60 and 0 < figures["wall"] < 60
    if config == "ft":
        assert (suite / "out.ftr").stat().st_size > 0


def test_plugin_finds_the_recording_session_to_flush(suite):
    """Before each callgrind mark the plugin flushes flowtrace's recording session (as e2e.py's
    --drain-in-phase): its `_setup` must find that session under `flowtrace run`, and none without."""
    probe = suite / "probe.py"
    probe.write_text(f"import {real_suite.PLUGIN} as p\ndrain = p._setup()\n"
                     "print(type(getattr(drain, '__self__', None)).__name__)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(suite), os.path.dirname(BENCHMARKS)]))
    traced = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", str(suite / "p.ftr"), str(probe)],
                            cwd=suite, env=env, capture_output=True, text=True, timeout=120)
    assert traced.stdout.strip() == "Session", traced.stdout + traced.stderr
    plain = subprocess.run([sys.executable, str(probe)], cwd=suite, env=env, capture_output=True, text=True,
                           timeout=120)
    assert plain.stdout.strip() == "NoneType", plain.stdout + plain.stderr
