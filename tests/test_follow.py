"""`flowtrace run` follows child processes (flowtrace/follow.py): each descendant records into
its own part in FILE.d/, and ftr/processes.py lists them in tree order with how they ended.
Real processes, each test bounded by a timeout; the program's output and exit status are
compared with plain `python`."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from flowtrace.follow import BOOT_DIR, ENV_DIR, ENV_OPTS
from flowtrace.ftr.processes import Process, session_processes
from flowtrace.ftr.reader import load

PY = sys.executable
CLOSING = re.compile(r"^flowtrace: recorded \d+ calls? to .+\n", re.M)
OLD_PY = "/usr/bin/python3"  # a Python without flowtrace (3.11 here), when the machine has it


def _run(tmp_path: pathlib.Path, body: str, *flags: str, plain: bool = True
         ) -> tuple[subprocess.CompletedProcess, list[Process]]:
    """Run the script traced (and plain, to compare output and status); the session's processes."""
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(body))
    out = tmp_path / "trace.ftr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_FOLLOW")}
    kw = dict(capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    traced = subprocess.run([PY, "-m", "flowtrace", "run", *flags, "-o", str(out), str(script)], **kw)
    if plain:
        untraced = subprocess.run([PY, str(script)], **kw)
        assert traced.stdout == untraced.stdout
        assert traced.returncode == untraced.returncode, traced.stderr
    return traced, session_processes(str(out))


def _tree(proc: Process) -> list[str]:
    """The process's calls, indented by depth, `(…)` after a partial one (a seeded frame)."""
    assert proc.path is not None
    return [("  " * d) + c.qualname + ("(…)" if c.partial else "") for c, d in load(proc.path).walk()]


def _names(proc: Process) -> list[str]:
    assert proc.path is not None
    return [call.qualname for call, _depth in load(proc.path).walk()]


POOL = """
import multiprocessing as mp, sys

def square(x):
    return x * x

if __name__ == "__main__":
    with mp.get_context(sys.argv[1] if len(sys.argv) > 1 else "{method}").Pool(4) as pool:
        print(sum(pool.map(square, range(40))))
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_workers_each_call_once_under_its_worker(tmp_path: pathlib.Path, method: str) -> None:
    proc, procs = _run(tmp_path, POOL.format(method=method))
    assert proc.returncode == 0 and proc.stdout == "20540\n"
    root = procs[0]
    assert root.how == "root" and root.status() == "exit 0" and "square" not in _names(root)
    workers = [p for p in procs if p.path is not None and "square" in _names(p)]
    assert sum(_names(p).count("square") for p in workers) == 40  # every call once
    for worker in workers:
        assert worker.depth >= 1 and worker.end is not None, worker.status()
        # forkserver: workers are forked by the server process (itself a child of the root)
        assert worker.how == ("exec" if method == "spawn" else "fork")
        assert worker.depth == (2 if method == "forkserver" else 1)
    # (the forkserver itself may still be ending when the root has exited: not checked)


def test_subprocess_child_and_grandchild(tmp_path: pathlib.Path) -> None:
    (tmp_path / "child.py").write_text(textwrap.dedent("""
        import subprocess, sys
        def child_work():
            return subprocess.run([sys.executable, "-c", "def grand(): print('grand')\\ngrand()"]).returncode
        print("child", child_work())
    """))
    proc, procs = _run(tmp_path, """
        import subprocess, sys
        def launch():
            return subprocess.run([sys.executable, "child.py"]).returncode
        print("root", launch())
    """)
    assert proc.stdout == "grand\nchild 0\nroot 0\n"
    assert [(p.depth, p.how) for p in procs] == [(0, "root"), (1, "exec"), (2, "exec")]
    root, child, grand = procs
    assert "launch" in _names(root) and "child_work" in _names(child) and "grand" in _names(grand)
    assert child.started_by is not None and child.started_by["pid"] == root.pid
    assert grand.started_by is not None and grand.started_by["pid"] == child.pid
    assert child.argv == ["child.py"] and child.status() == "exit 0"  # it returned: no sys.exit
    assert CLOSING.sub("", proc.stderr) == ""  # the children's start-up hook says nothing
    assert proc.stderr.endswith("/trace.ftr, and 2 child processes in trace.ftr.d/\n"), proc.stderr


FORKER = """
import os

def child_work(i):
    return i

def main():
    pid = os.fork()
    if pid == 0:
        child_work(1)
        os._exit(3)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status))

main()
"""


def test_fork_without_exec_records_the_child_in_its_own_part(tmp_path: pathlib.Path) -> None:
    proc, procs = _run(tmp_path, FORKER)
    assert proc.stdout == "child exit 3\n"
    root, child = procs
    assert child.how == "fork" and child.ppid == root.pid and child.status() == "exit 3"
    assert child.started_by is not None and child.started_by["pid"] == root.pid
    assert "child_work" not in _names(root)
    # the stack the child inherited is partial; what it ran afterwards is recorded in full
    assert _tree(child) == ["<module>(…)", "  main(…)", "    child_work"]


@pytest.mark.parametrize("how", ["script", "module"])
def test_a_forked_childs_inherited_stack_is_the_programs_only(tmp_path: pathlib.Path, how: str) -> None:
    """`python -m flowtrace` runs through runpy as a `-m` program does: with runpy recorded,
    the child's seeded stack began with the command's `_run_module_as_main(…) > _run_code(…)`
    (a test suite under `--include '*'`); it begins where the program does."""
    (tmp_path / "forker.py").write_text(FORKER)
    out = tmp_path / "trace.ftr"
    target = ["-m", "forker"] if how == "module" else [str(tmp_path / "forker.py")]
    done = subprocess.run([PY, "-m", "flowtrace", "run", "--include", "runpy", "-o", str(out), *target],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    root, child = session_processes(str(out))
    lines = _tree(child)
    top = ["_run_module_as_main(…)", "  _run_code(…)"] if how == "module" else []
    pad = "    " if how == "module" else ""
    assert lines == [*top, f"{pad}<module>(…)", f"{pad}  main(…)", f"{pad}    child_work"]
    assert [c.qualname for c, d in load(root.path).walk() if d == 0] == (
        ["_run_module_as_main"] if how == "module" else ["<module>"])


def test_a_forked_child_has_the_command_line_of_the_process_it_forked_from(tmp_path: pathlib.Path) -> None:
    """A fork runs its parent's command: `python -m forker a` forked said `python /…/forker.py a`
    (its sys.argv, which `-m` rewrites), and a child of an exec'd child gives that child's."""
    (tmp_path / "forker.py").write_text(FORKER)
    (tmp_path / "launch.py").write_text(
        "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'forker', 'b'], check=False)\n")
    out = tmp_path / "trace.ftr"
    for target, expected in ((["-m", "forker", "a"], ["-m", "forker", "a"]),
                             (["launch.py"], ["-m", "forker", "b"])):
        done = subprocess.run([PY, "-m", "flowtrace", "run", "-o", str(out), *target],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert done.returncode == 0, done.stderr
        forked = [p for p in session_processes(str(out)) if p.how == "fork"]
        assert [p.argv for p in forked] == [expected]
        shutil.rmtree(str(out) + ".d")


def test_killed_child_is_reported_and_the_rest_reads(tmp_path: pathlib.Path) -> None:
    proc, procs = _run(tmp_path, """
        import os, signal, subprocess, sys
        code = "import time\\ndef spin():\\n    print('ready', flush=True)\\n    time.sleep(30)\\nspin()"
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        child.stdout.readline()
        import time; time.sleep(0.3)   # past the child's first flush
        child.kill()
        print("killed", child.wait())
    """)
    assert proc.stdout == "killed -9\n"
    root, child = procs
    assert root.status() == "exit 0"
    assert child.end is None and "no end record" in child.status()
    names = _names(child)
    assert names == ["<module>", "spin"]  # what the child flushed before the kill


def test_exit_codes_and_other_interpreters(tmp_path: pathlib.Path) -> None:
    if not os.path.exists(OLD_PY):
        pytest.skip(f"{OLD_PY} not on this machine")
    proc, procs = _run(tmp_path, f"""
        import os, subprocess, sys
        r = subprocess.run([{OLD_PY!r}, "-c", "import sys; print(sys.version_info[:2] < (3, 12), repr(sys.path[0]))"])
        r2 = subprocess.run([sys.executable, "-I", "-c", "import sys; print('isolated', 'flowtrace' in sys.modules)"])
        r3 = subprocess.run([sys.executable, "-c", "import os; os._exit(3)"])
        r4 = subprocess.run([sys.executable, "-c", "print('own env')"], env={{"PATH": os.environ["PATH"]}})
        print(r.returncode, r2.returncode, r3.returncode, r4.returncode)
        sys.exit(5)
    """)
    assert proc.returncode == 5
    assert proc.stdout == "True ''\nisolated False\nown env\n0 0 3 0\n"
    root, *children = procs
    assert root.status() == "exit 5"
    by_reason = {(p.skipped or p.status()).split(" (")[0]: p for p in children}
    assert len(children) == 4  # (3.13's subprocess starts some children by os.posix_spawn: noted once)
    assert set(by_reason) == {"Python 3.11", "started with -I", "exit 3",
                              "started with an environment of its own, without flowtrace's variables"}
    old = by_reason["Python 3.11"]
    assert old.path is None and old.pid > 0 and old.ppid == root.pid
    isolated = by_reason["started with -I"]
    assert isolated.pid == 0 and isolated.title().startswith("pid ?: ") and "-I -c …" in isolated.title()
    assert all(p.depth == 1 for p in children)
    out = subprocess.run([PY, "-m", "flowtrace", "print", str(tmp_path / "trace.ftr")], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert out.returncode == 0
    assert "not followed: started with -I" in out.stderr and "not followed: Python 3.11" in out.stderr


def test_a_child_whose_environment_drops_the_start_up_hook_is_noted(tmp_path: pathlib.Path) -> None:
    """A child given a copy of the environment without PYTHONPATH (what venv does for its
    ensurepip child, to keep path variables from overruling the new environment) gets
    flowtrace's variables but not the start-up hook that reads them: it runs untraced, and the
    session says so (it said nothing: the child was simply missing). A PYTHONPATH of its own
    that still holds the hook is followed."""
    proc, procs = _run(tmp_path, """
        import os, subprocess, sys
        no_path = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        r1 = subprocess.run([sys.executable, "-c", "print('no PYTHONPATH')"], env=no_path)
        other = dict(no_path, PYTHONPATH=os.path.dirname(os.__file__))
        r2 = subprocess.run([sys.executable, "-c", "print('other PYTHONPATH')"], env=other)
        kept = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", "") + os.pathsep + "/nonexistent")
        r3 = subprocess.run([sys.executable, "-c", "def f():\\n    return 7\\nprint(f())"], env=kept)
        print(r1.returncode, r2.returncode, r3.returncode)
    """)
    assert proc.stdout == "no PYTHONPATH\nother PYTHONPATH\n7\n0 0 0\n"
    root, *children = procs
    reason = "started with an environment of its own, without flowtrace's start-up hook on PYTHONPATH"
    skipped = [p for p in children if p.skipped]
    assert [p.skipped for p in skipped] == [reason, reason]
    assert all(p.pid == 0 and p.title().startswith("pid ?: ") and p.title().endswith(" -c …") for p in skipped)
    followed = [p for p in children if not p.skipped]
    assert len(followed) == 1 and _names(followed[0]) == ["<module>", "f"]


def test_a_start_up_hook_of_another_flowtrace_is_not_recorded(tmp_path: pathlib.Path, recorder_name: str) -> None:
    """A child whose start-up hook is another flowtrace's copy than the one it imports (a
    subprocess run by another environment's Python; a copy of the package) records its program
    only: the hook's functions (`_chain`, which hands over to the environment's own
    sitecustomize) are flowtrace's, wherever its file is. (A root `_chain` call came first.)"""
    boot = tmp_path / "boot"
    boot.mkdir()
    shutil.copy(os.path.join(BOOT_DIR, "sitecustomize.py"), boot)
    parts = tmp_path / "s.ftr.d"
    parts.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWTRACE", "PYTHONPATH"))}
    env.update({ENV_DIR: str(parts), ENV_OPTS: "{}", "PYTHONPATH": str(boot), "FLOWTRACE_RECORDER": recorder_name})
    proc = subprocess.run([PY, "-c", "def work():\n    return 1\nprint(work())"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "1\n", "")
    [part] = parts.glob("*.ftr")
    assert [(c.qualname, depth) for c, depth in load(str(part)).walk()] == [("<module>", 0), ("work", 1)]


def test_no_follow_records_the_parent_only(tmp_path: pathlib.Path) -> None:
    proc, procs = _run(tmp_path, POOL.format(method="spawn"), "--no-follow", plain=False)
    assert proc.returncode == 0 and proc.stdout == "20540\n"
    assert len(procs) == 1 and not (tmp_path / "trace.ftr.d").exists()


def test_a_program_that_starts_no_process_leaves_no_parts_directory(tmp_path: pathlib.Path) -> None:
    """Every `flowtrace run` left an empty `trace.ftr.d/` beside the file; now only a program that
    started a process keeps it (its part may still be on its way), and a root whose directory
    went says so, so that readers do not report its parts as missing."""
    proc, procs = _run(tmp_path, "print(sum(range(10)))\n")
    assert proc.stdout == "45\n" and not (tmp_path / "trace.ftr.d").exists()
    assert [(p.how, p.problem) for p in procs] == [("root", None)]
    assert procs[0].end is not None and procs[0].end["no_parts"] is True

    _run(tmp_path, "import os\nos.system('true')\n")  # a process that is not Python: no part
    assert (tmp_path / "trace.ftr.d").is_dir() and not list((tmp_path / "trace.ftr.d").iterdir())

    proc, procs = _run(tmp_path, "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'pass'])\n")
    assert len(procs) == 2 and "no_parts" not in procs[0].end
    shutil.rmtree(tmp_path / "trace.ftr.d")  # the file copied without its directory
    [root] = session_processes(str(tmp_path / "trace.ftr"))
    assert root.problem == "its processes' parts are missing (trace.ftr.d/ not found)"


def test_print_shows_each_process_under_a_heading(tmp_path: pathlib.Path) -> None:
    _run(tmp_path, """
        import os
        def in_child():
            return 1
        pid = os.fork()
        if pid == 0:
            in_child()
            os._exit(0)
        os.waitpid(pid, 0)
    """, plain=False)
    out = subprocess.run([PY, "-m", "flowtrace", "print", str(tmp_path / "trace.ftr")], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert out.returncode == 0, out.stderr
    headings = [line for line in out.stdout.splitlines() if "== pid" in line]
    assert len(headings) == 2
    assert headings[0].startswith("== pid ") and "(root, exit 0)" in headings[0]
    assert headings[1].startswith("  == pid ") and "(fork, exit 0)" in headings[1]
    assert out.stdout.index("in_child") > out.stdout.index(headings[1])


def test_exports_give_every_call_its_process(tmp_path: pathlib.Path) -> None:

    _run(tmp_path, """
        import os
        def in_child():
            return 1
        def in_root():
            pid = os.fork()
            if pid == 0:
                in_child()
                os._exit(0)
            os.waitpid(pid, 0)
        in_root()
    """, plain=False)
    session = str(tmp_path / "trace.ftr")
    root, child = session_processes(session)
    for fmt in ("json", "chrome"):
        out = subprocess.run([PY, "-m", "flowtrace", "export", session, "-f", fmt, "-o", str(tmp_path / fmt)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "json").read_text())
    assert [(p["process"], p["pid"], p["parent"]) for p in doc["processes"]] == [(0, root.pid, None), (1, child.pid, 0)]
    owner = {c["function"]: c["process"] for c in doc["calls"] if not c["partial"]}
    assert owner == {"<module>": 0, "in_root": 0, "in_child": 1}
    (forker,) = [c["id"] for c in doc["calls"] if c["function"] == "in_root" and c["process"] == 0]
    assert doc["processes"][1]["started_by_call"] == forker  # the call that forked the child
    assert doc["processes"][1]["how"] == "fork" and doc["processes"][1]["exit"] == "exit 0"
    events = json.loads((tmp_path / "chrome").read_text())["traceEvents"]
    tracks = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert tracks == {root.pid, child.pid}
    (child_slice,) = [e for e in events if e.get("name") == "in_child"]
    (root_slice,) = [e for e in events if e.get("name") == "in_root" and e["pid"] == root.pid]
    assert child_slice["pid"] == child.pid
    # on the root's clock: the child's call lies inside the root's call that forked it
    assert root_slice["ts"] <= child_slice["ts"] <= root_slice["ts"] + root_slice["dur"]


def test_a_childs_part_starts_without_flowtraces_own_calls(tmp_path: pathlib.Path) -> None:
    """Under --include '*', an exec'd child's first recorded calls were flowtrace's: the exit
    of the contextlib manager that holds signals while its part starts, the start-up hook's
    import of the environment's own sitecustomize, failing when there is none
    (`ModuleNotFoundError`, in every child), and the import system returning from importing
    the hook and `site` (6 calls). Its part now starts with the program's `<module>`."""
    proc, procs = _run(tmp_path, """
        import subprocess, sys
        subprocess.run([sys.executable, "-c", "def f():\\n    return 1\\nf()"], check=True)
    """, "--include", "*")
    assert proc.returncode == 0, proc.stderr
    child = procs[1]
    assert child.path is not None
    trace = load(child.path)
    roots = [c for c, depth in trace.walk() if depth == 0]
    names = [c.qualname for c in roots]
    assert names[-2:] == ["<module>", "_shutdown"]  # (threading's, at the interpreter's exit)
    # (3.13's -c puts its source in linecache first: Python's own start of the main program)
    assert names[:-2] in ([], ["_find_and_load", "_register_code"])
    assert not [c for c in roots if "sitecustomize" in (c.args or "") or "'site'" in (c.args or "")]
    assert [c.qualname for c, _d in trace.walk() if c.qualname == "f"] == ["f"]


def test_call_spans_are_the_calls_ids_threads_and_times(tmp_path: pathlib.Path) -> None:
    """`call_spans` (what finds a child's spawning call without a whole `ordered_calls` pass)
    gives each call's id, thread, start and end as the complete calls have them: a call that
    raised ends, one that never ended (os._exit inside it) does not, a thread's calls are its."""
    from flowtrace.ftr.ordered import ordered_calls
    from flowtrace.ftr.processes import Span, call_spans
    from flowtrace.ftr.scan import survey

    _run(tmp_path, """
        import os, threading
        def fails():
            raise ValueError("x")
        def handles():
            try:
                fails()
            except ValueError:
                pass
        def in_thread():
            handles()
        def leaves():
            os._exit(0)
        t = threading.Thread(target=in_thread)
        t.start()
        t.join()
        handles()
        leaves()
    """)
    info = survey(str(tmp_path / "trace.ftr"))
    calls = list(ordered_calls(info))
    expected = [Span(c.id, c.thread, c.start_ns, c.end_ns) for c in calls]
    assert sorted(call_spans(info)) == sorted(expected)
    assert {c.qualname for c in calls if c.end_ns is None} == {"<module>", "leaves"}
    assert len({c.thread for c in calls if c.qualname == "fails"}) == 2



def test_every_way_of_starting_a_python(tmp_path: pathlib.Path) -> None:
    (tmp_path / "child.py").write_text("import sys\ndef child(how):\n    print('child', how)\nchild(sys.argv[1])\n")
    (tmp_path / "run.sh").write_text(f"#!/bin/sh\nexec {PY} child.py shell\n")
    (tmp_path / "run.sh").chmod(0o755)
    proc, procs = _run(tmp_path, f"""
        import os, subprocess, sys
        from concurrent.futures import ProcessPoolExecutor
        def double(x):
            return 2 * x
        def system():
            return os.system(f"{{sys.executable}} child.py system")
        def script():
            return subprocess.run(["./run.sh"]).returncode
        def spawn():
            pid = os.posix_spawn(sys.executable, [sys.executable, "child.py", "posix_spawn"], os.environ)
            return os.waitpid(pid, 0)[1]
        def execv():
            pid = os.fork()
            if pid == 0:
                os.execv(sys.executable, [sys.executable, "child.py", "execv"])
            return os.waitpid(pid, 0)[1]
        if __name__ == "__main__":
            sys.stdout.flush()
            print(system(), script(), spawn(), execv(), flush=True)
            with ProcessPoolExecutor(2) as pool:
                print(sum(pool.map(double, range(10))))
    """)
    assert proc.stdout == "child system\nchild shell\nchild posix_spawn\nchild execv\n0 0 0 0\n90\n"
    root = procs[0]
    said = {}
    for p in procs[1:]:
        if p.path is not None and p.argv[:1] == ["child.py"]:
            said[p.argv[1]] = p
    assert set(said) == {"system", "shell", "posix_spawn", "execv"}
    for how, p in said.items():
        assert _names(p) == ["<module>", "child"], how
        assert p.started_by is not None and p.end is not None, how
    assert said["system"].started_by["pid"] == root.pid  # through the shell, which is not Python
    assert said["posix_spawn"].ppid == root.pid and said["posix_spawn"].depth == 1
    forked = [p for p in procs if p.how == "fork" and p.end and p.end.get("reason") == "exec"]
    assert len(forked) == 1 and said["execv"].pid == forked[0].pid  # the fork, then its exec
    assert said["execv"] in forked[0].children
    doubles = [n for p in procs if p.path for n in _names(p) if n == "double"]
    assert len(doubles) == 10  # ProcessPoolExecutor's workers, each call once


def test_pool_terminated_while_its_workers_start(tmp_path: pathlib.Path) -> None:
    # Pool.terminate right away: SIGTERM meets workers that are still starting (their part,
    # their queue); every pool must end (the test's timeout bounds it) and the status stay 0
    proc, procs = _run(tmp_path, """
        import multiprocessing as mp
        def noop(x):
            return x
        if __name__ == "__main__":
            for method in ("fork", "forkserver", "spawn"):
                for _ in range(2):
                    pool = mp.get_context(method).Pool(4)
                    pool.terminate()
                    pool.join()
                with mp.get_context(method).Pool(2) as pool:
                    print(method, sum(pool.map(noop, range(10))))
    """)
    assert proc.stdout == "fork 45\nforkserver 45\nspawn 45\n"
    assert sum(_names(p).count("noop") for p in procs if p.path) == 30


def test_worker_killed_mid_run_loses_only_its_own_tail(tmp_path: pathlib.Path) -> None:
    proc, procs = _run(tmp_path, """
        import multiprocessing as mp, os, signal, time
        def step(i):
            return i
        def work(ready):
            for i in range(3):
                step(i)
            ready.set()
            while True:
                time.sleep(0.01)
        if __name__ == "__main__":
            ready = mp.get_context("fork").Event()
            p = mp.get_context("fork").Process(target=work, args=(ready,))
            p.start()
            ready.wait(30)
            time.sleep(0.4)  # past the worker's next flush
            os.kill(p.pid, signal.SIGKILL)
            p.join()
            print("worker", p.exitcode)
    """)
    assert proc.stdout == "worker -9\n"
    root = procs[0]
    (worker,) = [p for p in procs if p.how == "fork" and "step" in _names(p)]
    assert root.status() == "exit 0" and worker.end is None and "no end record" in worker.status()
    assert _names(worker).count("step") == 3 and "work" in _names(worker)


@pytest.mark.parametrize("threads", [0, 1])
def test_fork_warns_exactly_as_without_flowtrace(tmp_path: pathlib.Path, threads: int) -> None:
    # Python warns at os.fork in a process with several OS threads; flowtrace's own threads
    # are away while the program forks (session.pause_for_fork), so only the program's count
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(f"""
        import os, threading, time
        def forked():
            return 1
        stop = threading.Event()
        for _ in range({threads}):
            threading.Thread(target=stop.wait).start()
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                forked()
                os._exit(0)
            os.waitpid(pid, 0)
            time.sleep(0.05)
        stop.set()
        print("done")
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWTRACE_")}
    kw = dict(capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    plain = subprocess.run([PY, str(script)], **kw)
    traced = subprocess.run([PY, "-m", "flowtrace", "run", "-o", str(tmp_path / "t.ftr"), str(script)], **kw)
    pid_free = re.compile(r"pid=\d+")
    assert traced.stdout == plain.stdout == "done\n"
    assert pid_free.sub("", CLOSING.sub("", traced.stderr)) == pid_free.sub("", plain.stderr)
    assert ("multi-threaded" in plain.stderr) == bool(threads)
    procs = session_processes(str(tmp_path / "t.ftr"))
    assert [p.how for p in procs] == ["root", "fork", "fork", "fork"]
    assert all("forked" in _names(p) for p in procs[1:])


def test_profiles_and_stats_over_every_process(tmp_path: pathlib.Path) -> None:
    import marshal

    _run(tmp_path, """
        import os
        def work():
            return sum(range(1000))
        def main():
            work()
            pid = os.fork()
            if pid == 0:
                work()
                work()
                os._exit(0)
            os.waitpid(pid, 0)
        main()
    """, plain=False)
    session = str(tmp_path / "trace.ftr")
    root, child = session_processes(session)

    def export(fmt: str) -> pathlib.Path:
        out = tmp_path / f"out.{fmt}"
        done = subprocess.run([PY, "-m", "flowtrace", "export", session, "-f", fmt, "-o", str(out)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "2 processes" in done.stderr
        return out

    stats = marshal.loads(export("pstats").read_bytes())
    (work,) = [v for k, v in stats.items() if k[2] == "work"]
    assert work[1] == 3  # one call in the root, two in the forked child: summed
    collapsed = export("collapsed").read_text().splitlines()
    assert {line.split(";")[0] for line in collapsed} == {root.title(), child.title()}
    speed = json.loads(export("speedscope").read_text())
    assert sorted(p["name"] for p in speed["profiles"]) == sorted(
        [f"pid {root.pid}: MainThread", f"pid {child.pid}: MainThread"])
    trace = export("perfetto").read_bytes()
    assert root.title().encode() in trace and child.title().encode() in trace
    table = subprocess.run([PY, "-m", "flowtrace", "stats", session, "--format", "json"], capture_output=True,
                           text=True, timeout=60)
    assert table.returncode == 0 and "calls of 2 processes" in table.stderr
    rows = {r["function"]: r["calls"] for r in json.loads(table.stdout)["functions"]}
    # the forked child's inherited main is a (partial) call of its part, as in any part
    assert rows["work"] == 3 and rows["main"] == 2


def test_a_nested_flowtrace_run_records_its_own_session(tmp_path: pathlib.Path) -> None:
    (tmp_path / "child.py").write_text("def hello():\n    print('hello')\nhello()\n")
    proc, procs = _run(tmp_path, """
        import subprocess, sys
        def go():
            return subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", "inner.ftr", "child.py"]).returncode
        print("rc", go())
    """, plain=False)
    assert proc.returncode == 0 and proc.stdout == "hello\nrc 0\n"
    root, nested = procs
    assert nested.path is None and nested.skipped is not None and "flowtrace itself" in nested.skipped
    assert nested.title().startswith(f"pid {nested.pid}: python -m flowtrace run -o inner.ftr child.py")
    assert _names(session_processes(str(tmp_path / "inner.ftr"))[0]) == ["<module>", "hello"]
