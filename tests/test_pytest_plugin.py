"""The pytest plugin (flowtrace/pytest_plugin): pytest runs in a subprocess (pytester) on small
suites; the sessions it keeps are read back with the one reader and their trees compared exactly.
"""

from __future__ import annotations

import os
import sys

import pytest

from flowtrace.ftr.reader import load
from flowtrace.pytest_plugin.outcome import session_file_name

from treeutil import check_balanced, shape

pytest_plugins = ["pytester"]

SUITE = '''
import asyncio
import threading

import pytest


def add(a, b):
    return a + b


def check(x):
    assert x == 4, "x is not four"


@pytest.fixture
def numbers():
    xs = [add(1, 1)]
    yield xs
    add(2, 2)


@pytest.fixture
def broken():
    add(0, 0)
    raise ValueError("no database")


@pytest.fixture
def bad_teardown():
    yield 1
    raise RuntimeError("cleanup failed")


def test_passes(numbers):
    assert add(1, 2) == 3


def test_fails(numbers):
    check(add(1, 2))


def test_setup_error(broken):
    add(5, 5)


def test_teardown_error(bad_teardown):
    add(bad_teardown, 1)


def test_skipped():
    pytest.skip("not here")


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    check(5)


@pytest.mark.parametrize("v", [1, "a/b"])
def test_param(v):
    if add(v, v) != v + v:
        raise AssertionError("not doubled")
    if v == 1:
        raise AssertionError("one")


async def fetch(n):
    await asyncio.sleep(0)
    return n * 2


async def gather_all():
    return await asyncio.gather(fetch(1), fetch(2))


def test_asyncio():
    assert asyncio.run(gather_all()) == [2, 4]


def work(out):
    out.append(add(3, 4))


def test_thread():
    out = []
    t = threading.Thread(target=work, args=(out,), name="worker")
    t.start()
    t.join()
    assert out == [7]
'''

NESTED = '''
import flowtrace


def test_nested_record():
    with flowtrace.record("own.ftr"):
        sum([1, 2])
'''

# name -> (outcome, the session's tree with resume marks)
TREES = {
    "test_passes": ("passed", [
        "setup() = None",
        "  numbers() = None [suspend,resume<teardown]",
        "    add(a=1, b=1) = 2",
        "    add(a=2, b=2) = 4",
        "call() = None",
        "  test_passes(numbers=[2]) = None",
        "    add(a=1, b=2) = 3",
        "teardown() = None",
    ]),
    "test_fails": ("failed", [
        "setup() = None",
        "  numbers() = None [suspend,resume<teardown]",
        "    add(a=1, b=1) = 2",
        "    add(a=2, b=2) = 4",
        "call() ! AssertionError: x is not four\\nassert 3 == 4",
        "  test_fails(numbers=[2]) ! AssertionError: x is not four\\nassert 3 == 4",
        "    add(a=1, b=2) = 3",
        "    check(x=3) ! AssertionError: x is not four\\nassert 3 == 4 [raise:AssertionError]",
        "teardown() = None",
    ]),
    "test_setup_error": ("error", [
        "setup() ! ValueError: no database",
        "  broken() ! ValueError: no database [raise:ValueError]",
        "    add(a=0, b=0) = 0",
        "teardown() = None",
    ]),
    "test_teardown_error": ("error", [
        "setup() = None",
        "  bad_teardown() ! RuntimeError: cleanup failed [suspend,resume<teardown,raise:RuntimeError]",
        "call() = None",
        "  test_teardown_error(bad_teardown=1) = None",
        "    add(a=1, b=1) = 2",
        "teardown() ! RuntimeError: cleanup failed",
    ]),
    "test_skipped": ("skipped", [
        "setup() = None",
        "call() ! Skipped: 'not here'",
        "  test_skipped() ! Skipped: 'not here' [raise:Skipped]",
        "teardown() = None",
    ]),
    "test_xfail": ("xfailed", [
        "setup() = None",
        "call() ! AssertionError: x is not four\\nassert 5 == 4",
        "  test_xfail() ! AssertionError: x is not four\\nassert 5 == 4",
        "    check(x=5) ! AssertionError: x is not four\\nassert 5 == 4 [raise:AssertionError]",
        "teardown() = None",
    ]),
    "test_param[1]": ("failed", [
        "setup() = None",
        "call() ! AssertionError: one",
        "  test_param(v=1) ! AssertionError: one [raise:AssertionError]",
        "    add(a=1, b=1) = 2",
        "teardown() = None",
    ]),
    "test_param[a/b]": ("passed", [
        "setup() = None",
        "call() = None",
        "  test_param(v='a/b') = None",
        "    add(a='a/b', b='a/b') = 'a/ba/b'",
        "teardown() = None",
    ]),
    "test_asyncio": ("passed", [
        "setup() = None",
        "call() = None",
        "  test_asyncio() = None",
        "    gather_all() = [2, 4] [suspend,resume<test_asyncio]",
        "    fetch(n=1) = 2 [suspend,resume<test_asyncio]",
        "    fetch(n=2) = 4 [suspend,resume<test_asyncio]",
        "teardown() = None",
    ]),
    "test_thread": ("passed", [
        "setup() = None",
        "call() = None",
        "  test_thread() = None",
        "teardown() = None",
    ]),
}
OUTCOMES = {"passed": 5, "failed": 2, "errors": 2, "skipped": 1, "xfailed": 1}


# pytest's start-up in each subprocess without the heavy plugins of this venv (about half of it)
LEAN = ("-p", "no:textual-snapshot", "-p", "no:syrupy")


def _run(pytester: pytest.Pytester, *args: str, cache: bool = False) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*LEAN, *(() if cache else ("-p", "no:cacheprovider")), *args)


def _session(directory, nodeid: str):
    trace = load(os.path.join(directory, session_file_name(nodeid)))
    check_balanced(trace)
    return trace


def _kept(directory) -> set[str]:
    return {n for n in os.listdir(directory) if n.endswith(".ftr")}


def test_every_kind_of_test_recorded_exactly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE, test_nested=NESTED)
    result = _run(pytester, "--flowtrace=all")
    result.assert_outcomes(**{**OUTCOMES, "failed": OUTCOMES["failed"] + 1})
    sessions = pytester.path / ".flowtrace"
    for name, (outcome, tree) in TREES.items():
        trace = _session(sessions, f"test_suite.py::{name}")
        assert shape(trace, marks=True, thread=1) == tree, name
        test = trace.end["test"]
        assert (test["nodeid"], test["outcome"]) == (f"test_suite.py::{name}", outcome)
        assert trace.meta["pytest"]["nodeid"] == test["nodeid"] and trace.meta["command"] == "pytest"
    failed = _session(sessions, "test_suite.py::test_fails").end["test"]
    assert failed["failed_phase"] == "call"
    assert failed["exception"] == "AssertionError: x is not four\\nassert 3 == 4"
    assert failed["location"]["line"] == 12 and failed["location"]["file"].endswith("test_suite.py")
    assert _session(sessions, "test_suite.py::test_setup_error").end["test"]["failed_phase"] == "setup"
    assert _session(sessions, "test_suite.py::test_teardown_error").end["test"]["phases"] == {
        "setup": "passed", "call": "passed", "teardown": "failed"}
    # tasks of the asyncio test carry their task; the thread's calls are on their own thread
    asyncio_trace = _session(sessions, "test_suite.py::test_asyncio")
    assert [c.qualname for c in asyncio_trace.calls if c.task] == ["gather_all", "fetch", "fetch"]
    thread_trace = _session(sessions, "test_suite.py::test_thread")
    assert shape(thread_trace, thread=2) == ["work(out=[]) = None", "  add(a=3, b=4) = 7"]
    assert thread_trace.thread_name(2) == "worker"
    # a test that records with flowtrace itself gets a clear error; its own session is whole
    nested = _session(sessions, "test_nested.py::test_nested_record")
    message = ("RuntimeError: flowtrace is already recording this process (pytest --flowtrace records each "
               "test); a second recording cannot start inside it")
    assert nested.end["test"]["exception"] == message
    assert shape(nested) == ["setup() = None", f"call() ! {message}", f"  test_nested_record() ! {message}",
                             "teardown() = None"]
    assert nested.status == "finished" and not (pytester.path / "own.ftr").exists()
    result.stdout.fnmatch_lines(["*- flowtrace -*", "FAILED test_suite.py::test_fails",
                                 "    flowtrace-tui .flowtrace/test_suite.py__test_fails.ftr",
                                 "PASSED test_suite.py::test_passes",
                                 "11 sessions in .flowtrace; pick one: flowtrace-tui .flowtrace/"])


def test_failed_sessions_kept_and_outcomes_unchanged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    stale = pytester.path / ".flowtrace" / session_file_name("test_suite.py::test_passes")
    stale.parent.mkdir()
    stale.write_bytes(b"an older run's session of a test that passes now")
    plain = _run(pytester)
    traced = _run(pytester, "--flowtrace")
    assert traced.ret == plain.ret == pytest.ExitCode.TESTS_FAILED
    plain.assert_outcomes(**OUTCOMES)
    traced.assert_outcomes(**OUTCOMES)
    assert _kept(stale.parent) == {session_file_name(f"test_suite.py::{n}") for n in (
        "test_fails", "test_setup_error", "test_teardown_error", "test_param[1]")}
    assert (stale.parent / ".gitignore").exists() is False  # the directory was there already
    traced.stdout.fnmatch_lines([
        "    flowtrace-tui '.flowtrace/test_suite.py__test_param[1].ftr'",
        "ERROR test_suite.py::test_setup_error", "    flowtrace-tui .flowtrace/test_suite.py__test_setup_error.ftr",
        "4 sessions in .flowtrace;*"])


def test_passing_suite_passes_and_keeps_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ok="def test_ok():\n    assert sum([1, 2]) == 3\n")
    result = _run(pytester, "--flowtrace")
    assert result.ret == pytest.ExitCode.OK
    assert _kept(pytester.path / ".flowtrace") == set()
    assert (pytester.path / ".flowtrace" / ".gitignore").read_text().endswith("*\n")
    result.stdout.fnmatch_lines(["flowtrace: no session kept (no test failed; --flowtrace=all keeps every test's)"])


def test_off_imports_nothing_and_takes_no_tool_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_off='''
import sys

def test_plugin_loaded_but_idle():
    assert "flowtrace.pytest_plugin" in sys.modules  # the entry point was loaded
    for name in ("flowtrace.session", "flowtrace.recorder", "flowtrace._crecorder", "flowtrace.reprs",
                 "flowtrace.printing", "flowtrace.events", "flowtrace.pytest_plugin.recording",
                 "flowtrace.filters"):
        assert name not in sys.modules, name
    assert "flowtrace" not in [sys.monitoring.get_tool(i) for i in range(6)]
''')
    for args in ((), ("--flowtrace=off",)):
        result = _run(pytester, *args)
        result.assert_outcomes(passed=1)
        assert not (pytester.path / ".flowtrace").exists()


def test_options_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nflowtrace = all\n")
    pytester.makepyfile(helpers="def helper(x):\n    return x + 1\n", test_opts='''
import json
from helpers import helper

def double(x):
    return helper(x) * 2

def test_opts():
    assert json.loads(json.dumps(double(1))) == 4
''')
    result = _run(pytester, 
        "--flowtrace-dir", "out/sessions", "--flowtrace-args", "off", "--flowtrace-exclude", "helpers",
        "--flowtrace-include", "json")
    result.assert_outcomes(passed=1)
    trace = _session(pytester.path / "out" / "sessions", "test_opts.py::test_opts")
    names = [c.qualname for c in trace.calls]
    assert names[:3] == ["setup", "call", "test_opts"] and "double" in names and "helper" not in names
    assert "dumps" in names and "loads" in names  # --flowtrace-include json
    assert all(c.args is None for c in trace.calls) and trace.meta["options"]["args"] == "off"
    result.stdout.fnmatch_lines(["    flowtrace-tui out/sessions/test_opts.py__test_opts.ftr"])


def test_bare_flag_before_a_path_and_bad_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a():\n    assert 0\n", test_b="def test_b():\n    assert 0\n")
    result = _run(pytester, "--flowtrace", "test_a.py")
    result.assert_outcomes(failed=1)  # test_a.py is the path to run, not a mode
    assert _kept(pytester.path / ".flowtrace") == {"test_a.py__test_a.ftr"}
    bad = _run(pytester, "--flowtrace=sometimes")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--flowtrace: 'sometimes' is not one of failed, all, off*"])


def test_exitfirst_and_last_failed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x='''
def test_1():
    pass

def test_2():
    assert 0

def test_3():
    assert 0
''')
    first = _run(pytester, "--flowtrace", "-x", cache=True)
    first.assert_outcomes(passed=1, failed=1)
    assert _kept(pytester.path / ".flowtrace") == {"test_x.py__test_2.ftr"}
    before = (pytester.path / ".flowtrace" / "test_x.py__test_2.ftr").read_bytes()
    again = _run(pytester, "--flowtrace", "--lf", cache=True)
    again.assert_outcomes(failed=1)  # only test_2, which failed last time
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    assert _kept(pytester.path / ".flowtrace") == {"test_x.py__test_2.ftr"}
    assert (pytester.path / ".flowtrace" / "test_x.py__test_2.ftr").read_bytes() != before  # recorded again


def test_xdist_workers_record_their_own_tests(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (it is in the test extras)")
    pytester.makepyfile(test_w='''
import pytest

def twice(x):
    return 2 * x

@pytest.mark.parametrize("n", range(4))
def test_n(n):
    assert twice(n) != 4
''')
    result = _run(pytester, "--flowtrace=all", "-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    directory = pytester.path / ".flowtrace"
    assert _kept(directory) == {f"test_w.py__test_n[{n}].ftr" for n in range(4)}
    workers = set()
    for n in range(4):
        trace = _session(directory, f"test_w.py::test_n[{n}]")
        workers.add(trace.meta["pytest"]["worker"])
        assert shape(trace)[1:4] == ["call()" + (" ! AssertionError: assert 4 != 4\\n +  where 4 = twice(2)" if n == 2 else " = None"),
                                     f"  test_n(n={n})" + (" ! AssertionError: assert 4 != 4\\n +  where 4 = twice(2)" if n == 2 else " = None"),
                                     f"    twice(x={n}) = {2 * n}"]
    assert workers <= {"gw0", "gw1"} and workers
    result.stdout.fnmatch_lines(["FAILED test_w.py::test_n[2]", "4 sessions in .flowtrace;*"])


@pytest.mark.parametrize(("nodeid", "name"), [
    ("test_x.py::test_y", "test_x.py__test_y.ftr"),
    ("tests/test_x.py::TestA::test_y[1-2]", "tests__test_x.py__TestA__test_y[1-2].ftr"),
    ("t.py::test[a_b]", "t.py__test[a_b].ftr"),
    # not the node id spelled plainly: a hash of the node id tells them apart
    ("t.py::test[a/b]", "t.py__test[a_b]-577e9e1b7b.ftr"),
    ("t.py::test[é:*?]", "t.py__test[____]-88f1e8176c.ftr"),
    ("con.py::test", "_con.py__test-c1692aad12.ftr"),  # CON is a device name on Windows
])
def test_session_file_names(nodeid: str, name: str) -> None:
    assert session_file_name(nodeid) == name


def test_session_file_names_unique_and_short() -> None:
    ids = ["t.py::test[a/b]", "t.py::test[a::b]", "t.py::test[a_b]", "t.py::test[a__b]", "t.py::test[a\\b]",
           "t.py::test[" + "x" * 400 + "]", "t.py::test[" + "x" * 401 + "]"]
    names = [session_file_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert all(len(n) <= 170 and "/" not in n and "\\" not in n and ":" not in n for n in names)


def test_plugins_own_work_not_recorded_with_pytest_included(pytester: pytest.Pytester) -> None:
    # The plugin asked item.nodeid after its session started, and read the reports' properties
    # while recording: with pytest's modules included they were recorded as the test's calls.
    pytester.makepyfile(test_one="def test_one():\n    assert 1 + 1 == 2\n")
    result = _run(pytester, "--flowtrace=all", "--flowtrace-include", "_pytest.nodes",
                  "--flowtrace-include", "_pytest.reports")
    result.assert_outcomes(passed=1)
    trace = _session(pytester.path / ".flowtrace", "test_one.py::test_one")
    roots = [c.qualname for c in trace.calls if c.parent is None]
    made = ["TestReport.from_item_and_call", "BaseReport.skipped", "BaseReport.passed"]  # pytest's runner
    assert roots == [
        "Node.ihook", "Node.nodeid", "Item.location", "Node.ihook",  # pytest's, before setup
        "setup", *made, "BaseReport.failed", "BaseReport.failed", "BaseReport.skipped", "BaseReport.passed",
        "Node.ihook",
        "call", *made, "BaseReport.failed", "BaseReport.passed", "BaseReport.passed", "Node.ihook",
        "teardown", *made]  # (pytest 8.4.2; before, the plugin's own reads added 5 calls)
