"""Record a real program and check it against plain `python` (used by test_realworld.py).

`Run(tmp_path).compare(args, ...)` runs `python ARGS` and `python -m flowtrace run ... ARGS`
under the same probe (a `sitecustomize` whose audit hook writes, when the program imports the
module named by FIDELITY_WATCH, its `sys.argv` and what `__main__` is at that moment, and at
exit what `__main__` ended as) and returns both results and the recorded trace. The checks:
`same_behaviour` (stdout, stderr but our closing line, exit status, the probe's notes),
`nesting_errors` (balanced, nested in time), `profile_counts` / `flowtrace_counts` (calls per
function, cProfile's way of counting), `bytes_per_call` and `explorer_loads`.
"""

from __future__ import annotations

import collections
import os
import pathlib
import pstats
import re
import resource
import subprocess
import sys
import textwrap
from dataclasses import dataclass

from treeutil import check_balanced, time_nesting_errors

from flowtrace.ftr.reader import Trace, load

PY = sys.executable
CLOSING = re.compile(r"^flowtrace: recorded \d+ calls to .+\n\Z", re.M)
# A run is limited in CPU time (a runaway loop), and in wall time only far beyond, against a hang
# (which uses no CPU). A 60 s wall limit was the cause of test_pytest_suite_with_pytest_recorded's
# flake: its cProfile run needs ~1.7 s of CPU and took 20 s of wall time at load 36 on this
# 2-core machine (8 engineers' suites), past 60 s at load 34+ with the runs of the suite beside it.
CPU_LIMIT = 60
TIMEOUT = 900


def _limit_cpu() -> None:
    """(preexec_fn) The child's CPU time limit: SIGXCPU past CPU_LIMIT seconds."""
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT + 5))

PROBE = '''
import atexit, os, sys
_watch, _out = os.environ.get("FIDELITY_WATCH"), os.environ.get("FIDELITY_PROBE")
def _main():
    m = sys.modules.get("__main__")
    spec = getattr(m, "__spec__", None)
    return (getattr(m, "__file__", None), getattr(spec, "name", None))
def _note(text):
    with open(_out, "a") as f:
        f.write(text + "\\n")
def _hook(event, args):
    if event == "import" and args[0] == _watch:
        _note(f"import {_watch}: argv={sys.argv!r} main={_main()!r}")
if _out:
    sys.addaudithook(_hook)
    atexit.register(lambda: _note(f"exit: argv={sys.argv!r} main={_main()!r}"))
'''

# What the flowtrace command has imported before the program starts: the cProfile baseline
# imports the same, so that modules both runs find already imported (json, threading, ...)
# run no import-time code in either.
PRELOAD = ("import flowtrace.cli, flowtrace.commands.run, flowtrace.session, flowtrace.runner, "
           "flowtrace.recorder.python, flowtrace.untraced\n"
           "try:\n    import flowtrace.recorder.c\nexcept ImportError:\n    pass\n")


@dataclass
class Result:
    plain: subprocess.CompletedProcess
    traced: subprocess.CompletedProcess
    plain_probe: str
    traced_probe: str
    trace: Trace
    path: pathlib.Path


class Run:
    def __init__(self, tmp_path: pathlib.Path) -> None:
        self.dir = tmp_path
        (tmp_path / "probe").mkdir(exist_ok=True)
        (tmp_path / "probe" / "sitecustomize.py").write_text(PROBE)

    def write(self, name: str, text: str) -> pathlib.Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def env(self, probe: str, watch: str, extra: dict[str, str] | None) -> dict[str, str]:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "80", "FIDELITY_WATCH": watch,
               "FIDELITY_PROBE": str(self.dir / probe), "PYTHONPATH": str(self.dir / "probe")}
        for name in ("NO_COLOR", "FORCE_COLOR", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
            env.pop(name, None)
        env.update(extra or {})
        return env

    def compare(self, args: list[str], *, options: list[str] = (), recorder: str = "c", watch: str = "",
                env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        out = self.dir / "t.ftr"
        kw = dict(input=stdin, capture_output=True, text=True, cwd=self.dir, timeout=TIMEOUT, preexec_fn=_limit_cpu)
        plain = subprocess.run([PY, *args], env=self.env("plain.probe", watch, env), **kw)
        traced = subprocess.run(
            [PY, "-m", "flowtrace", "run", "-o", str(out), "--exclude", "sitecustomize", *options, *args],
            env=self.env("traced.probe", watch, {**(env or {}), "FLOWTRACE_RECORDER": recorder}), **kw)
        return Result(plain, traced, self._read("plain.probe"), self._read("traced.probe"), load(out), out)

    def _read(self, name: str) -> str:
        path = self.dir / name
        text = path.read_text() if path.exists() else ""
        path.unlink(missing_ok=True)
        return text

    def profile_counts(self, args: list[str], env: dict[str, str] | None = None) -> collections.Counter:
        """Calls per function (file, first line, name) as cProfile counts them, with the same
        modules imported beforehand as under `flowtrace run` (PRELOAD)."""
        prof = self.dir / "prof.out"
        code = PRELOAD + textwrap.dedent(f"""
            import sys, cProfile
            sys.argv = [sys.argv[0], "-o", {str(prof)!r}, *sys.argv[1:]]
            cProfile.main()
        """)
        proc = subprocess.run([PY, "-c", code, *args], capture_output=True, text=True, cwd=self.dir,
                              env=self.env("profile.probe", "", env), timeout=TIMEOUT, preexec_fn=_limit_cpu)
        assert prof.exists(), proc.stderr
        stats = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]
        return collections.Counter({(os.path.abspath(os.path.join(self.dir, f)) if not f.startswith("<") else f,
                                     line, name): nc
                                    for (f, line, name), (_cc, nc, _tt, _ct, _callers) in stats.items()})


def same_behaviour(r: Result) -> None:
    """Stdout, stderr (but our closing line), exit status and the probe's notes as plain python."""
    assert r.traced.stdout == r.plain.stdout
    closing = CLOSING.search(r.traced.stderr)
    assert closing is not None, r.traced.stderr
    assert r.traced.stderr[: closing.start()] == r.plain.stderr
    assert r.traced.returncode == r.plain.returncode
    assert r.traced_probe == r.plain_probe


def nesting_errors(trace: Trace) -> list[str]:
    """Balanced, and nested in time (a generator resumed outside its parent's subtree may end
    after its parent: treeutil.time_nesting_errors)."""
    check_balanced(trace)
    assert all(c.end != "unfinished" for c in trace.calls)
    return time_nesting_errors(trace, resumed_elsewhere_ok=True)


def flowtrace_counts(trace: Trace) -> collections.Counter:
    """Calls per function counted as cProfile does: a generator or coroutine once per run (its
    start, every resume or throw, and each of the runs a fold mark stands for), every other
    call once."""
    counts: collections.Counter = collections.Counter()
    for c in trace.calls:
        f = c.function
        name = f.qualname.rsplit(".", 1)[-1] if f.kind != "class" else f.qualname.rsplit(".", 1)[-1]
        counts[(f.file, f.line, name)] += 1 + sum(m.count if m.kind == "fold" else m.kind in ("resume", "throw")
                                                  for m in c.marks)
    return counts


def counts_match(flowtrace: collections.Counter, profile: collections.Counter) -> dict:
    """{function: (flowtrace's count, cProfile's)} where they differ, for the functions flowtrace
    recorded."""
    return {k: (n, profile.get(k, 0)) for k, n in flowtrace.items() if profile.get(k, 0) != n}


SESSION_OVERHEAD = 4096  # the header, META, ENDS and the first tables: what a 0-call session takes


def bytes_per_call(r: Result) -> float:
    """The file's size per recorded call, past a fixed allowance for what any session holds."""
    return max(0, r.path.stat().st_size - SESSION_OVERHEAD) / max(1, len(r.trace.calls))


def explorer_loads(path: pathlib.Path, calls: int) -> None:
    """The explorer's model reads the whole file and indexes every call."""
    from flowtrace_tui.model.index import build_index
    from flowtrace_tui.model.source import TraceSource

    src = TraceSource.open(path)
    try:
        while not src.done:
            src.step()
        assert src.damage is None
        assert src.data.n == calls
        assert build_index(src.data, grouped=False).size == calls  # (grouped: + a node per thread)
    finally:
        src.reader.close()
