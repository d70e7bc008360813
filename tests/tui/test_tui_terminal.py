"""End-to-end: the real `flowtrace-tui` in a terminal (tmux), typed at and read as a person would.

Each test starts `python -m flowtrace_tui …` in a private tmux server of a fixed size, sends
keys, and waits (with a deadline, never a fixed sleep) until the screen shows what a user must
see. Skipped, with the reason, where tmux is missing or cannot start a terminal.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from trace_builder import TraceBuilder, sample_program, wide_program

WAIT_S = 30.0  # generous: CI runs this on 2 busy cores; a passing test returns as soon as it can


def _tmux_problem() -> str | None:
    if shutil.which("tmux") is None:
        return "tmux is not installed: these tests read the explorer's screen through tmux"
    try:
        probe = subprocess.run(["tmux", "-L", f"ft-probe-{os.getpid()}", "-f", "/dev/null", "new-session", "-d",
                                "-x", "20", "-y", "5", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"tmux cannot start a terminal here: {exc}"
    if probe.returncode != 0:
        return f"tmux cannot start a terminal here: {probe.stderr.decode(errors='replace').strip()}"
    return None


_PROBLEM = _tmux_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")


class Terminal:
    """One program in a tmux terminal of `width` x `height` cells, on a server of its own."""

    def __init__(self, argv: list[str], width: int, height: int, cwd: str) -> None:
        self.server = f"flowtrace-test-{uuid.uuid4().hex[:12]}"
        env = {"TERM": "xterm-256color", "COLORTERM": "truecolor", "NO_COLOR": ""}
        cmd = " ".join(shlex.quote(a) for a in argv)
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), "-c", cwd,
                   *[x for k, v in env.items() for x in ("-e", f"{k}={v}")], cmd)

    def _tmux(self, *args: str) -> str:
        # COLUMNS/LINES (set by some test tools) would override the terminal's real size
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        out = subprocess.run(["tmux", "-L", self.server, "-f", "/dev/null", *args], capture_output=True,
                             timeout=10, env=env)
        return out.stdout.decode("utf-8", "replace")

    def screen(self) -> list[str]:
        return self._tmux("capture-pane", "-p", "-t", "t").splitlines()

    def text(self) -> str:
        return "\n".join(self.screen())

    def keys(self, *keys: str) -> None:
        """tmux key names ("Escape", "Enter", "q") or literal text (sent with -l)."""
        for k in keys:
            if len(k) > 1 and not k[0].isupper():
                self._tmux("send-keys", "-t", "t", "-l", k)
            else:
                self._tmux("send-keys", "-t", "t", k)

    def wait_for(self, what, timeout: float = WAIT_S) -> list[str]:
        """The screen once `what` (a text, or a function of the screen's lines) holds."""
        test = (lambda lines: any(what in ln for ln in lines)) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = self.screen()
            if test(lines):
                return lines
            time.sleep(0.05)
        raise AssertionError(f"not on screen after {timeout:g} s: {what!r}\n" + "\n".join(lines))

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.fixture
def terminal(tmp_path):
    opened: list[Terminal] = []

    def start(*args: str, size: tuple[int, int] = (120, 40)) -> Terminal:
        term = Terminal([sys.executable, "-m", "flowtrace_tui", *args], size[0], size[1], str(tmp_path))
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


def _ends(line: str) -> list[int]:
    return [m.end() for m in re.finditer(r"\d[\d.,]* ?(?:ns|µs|ms|s)\b", line)]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_search_text_is_visible_while_typing(terminal, tmp_path, size):
    sample_program().save(str(tmp_path / "s.ftr"))
    term = terminal("s.ftr", size=size)
    term.wait_for("finished")
    term.keys("/")
    term.wait_for("search function names")  # the find bar is open (its placeholder shows)
    term.keys("fib(n")
    lines = term.wait_for(lambda ls: any("Aa" in ln and "fib(n" in ln for ln in ls))
    assert not any("▔▔▔▔▔▔▔▔▔▔" in ln and "Aa" in ln for ln in lines)  # not a bare top border
    term.keys("Escape", "q")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_header_lines_up_with_the_rows_of_a_tall_tree(terminal, tmp_path, size):
    with open(tmp_path / "w.ftr", "wb") as fh:
        fh.write(wide_program(300).data())
    term = terminal("w.ftr", size=size)

    def aligned(lines: list[str]) -> bool:
        header = next((ln for ln in lines if ln.startswith(" call")), "")
        row = next((ln for ln in lines if "handle(item=3)" in ln), "")
        ends = _ends(row)
        if "total" not in header or not ends or not any("▁" in ln or "▃" in ln or "█" in ln for ln in lines):
            return False  # (not drawn yet, or no scroll bar)
        return (header.index("total") + len("total") == ends[0]
                and ("self" not in header or (len(ends) > 1 and header.index("self") + len("self") == ends[1])))

    term.wait_for(aligned)
    term.keys("q")


def test_empty_session_says_why(terminal, tmp_path):
    opts = {"args": "safe", "include": [], "exclude": ["*"], "flush_interval_s": 0.1}
    with open(tmp_path / "e.ftr", "wb") as fh:
        fh.write(TraceBuilder(meta={"options": opts}).data())
    term = terminal("e.ftr", size=(80, 24))
    text = " ".join(" ".join(term.wait_for("No calls were recorded")).split())
    assert "nothing matched the recording's filters (--exclude '*')" in text
    assert "Error" not in text and "failed" not in text
    term.keys("q")


SLOW = textwrap.dedent("""
    import os, time

    def slow():
        deadline = time.monotonic() + 60
        while not os.path.exists("stop") and time.monotonic() < deadline:
            time.sleep(0.02)

    def main():
        slow()

    main()
""")


def test_live_running_call_shows_its_totals(terminal, tmp_path):
    (tmp_path / "slow.py").write_text(SLOW)
    term = terminal("run", "-o", "live.ftr", "slow.py", size=(120, 40))
    try:
        # follow mode selects the running call; its row and the detail pane tick. Both waited
        # for on one screen: under load a capture showed the pane ticking and the row's line
        # still at 0 ns (between two redraws, or mid-frame); a row that never ticks still fails
        # here, when the wait runs out
        def row_of(ls: list[str]) -> str:
            return next((ln for ln in ls if "slow()" in ln and "⋯" in ln), " 0 ns")

        lines = term.wait_for(lambda ls: any("⋯ running" in ln for ln in ls)
                              and any(re.search(r"self\s+\d{3} ms|self\s+[\d.]+ s\b", ln) for ln in ls)
                              and " 0 ns" not in row_of(ls))
        row = row_of(lines)
        assert " 0 ns" not in row, row  # total and self both tick
        text = "\n".join(lines)
        assert "no end recorded" not in text and "LIVE" in text
        assert re.search(r"total\s+(\d{3} ms|[\d.]+ s\b)", text), text
        footer = term.wait_for(lambda ls: "Quit" in ls[-1])[-1]
        assert "F Follow" in footer and "P Pause" in footer, footer
    finally:
        (tmp_path / "stop").write_text("")
    # once the program ended, following and pausing are no longer offered
    lines = term.wait_for(lambda ls: any("program exit 0" in ln for ln in ls) and "Quit" in ls[-1]
                          and "Follow" not in ls[-1])
    assert "Pause" not in lines[-1] and "o Output" in lines[-1], lines[-1]
    term.keys("q")


LOOP = textwrap.dedent("""
    def parse(i):
        return i * 2

    def check(v):
        if v == 2000:
            raise ValueError(v)

    def step(i):
        v = parse(i)
        try:
            check(v)
        except ValueError:
            pass

    def main():
        for i in range(3000):
            step(i)

    main()
""")


def test_merged_paths_toggle_on_a_recorded_loop(terminal, tmp_path):
    (tmp_path / "loop.py").write_text(LOOP)
    subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", "loop.ftr", "loop.py"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=60)
    term = terminal("loop.ftr", size=(120, 40))
    term.wait_for("finished")
    term.keys("j", "l")  # main() opened: 3,000 step rows
    term.wait_for("step(i=0)")
    term.keys("m")
    lines = term.wait_for(lambda ls: any("step ×3,000" in ln for ln in ls))
    assert any("merged paths" in ln for ln in lines)
    assert not any("step(i=1)" in ln for ln in lines)  # the 3,000 calls are one row
    term.keys("j", "l", "j", "j")  # into step's path: parse, then check
    lines = term.wait_for(lambda ls: any("check ×3,000 ✗ 1 raised" in ln for ln in ls)
                          and any("calls" in ln and "3,000" in ln for ln in ls))
    assert any("parse ×3,000" in ln for ln in lines)
    term.keys("m")  # back to calls, on the first check call
    lines = term.wait_for(lambda ls: any("check(v=0) → None" in ln for ln in ls)
                          and not any("merged paths" in ln for ln in ls))
    term.keys("q")


def test_diff_view_of_two_recorded_runs(terminal, tmp_path):
    (tmp_path / "v1.py").write_text(LOOP)
    (tmp_path / "v2.py").write_text(LOOP.replace("range(3000)", "range(3100)").replace("v == 2000", "v == 2002"))
    for name in ("v1", "v2"):
        subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", f"{name}.ftr", f"{name}.py"], cwd=tmp_path,
                       check=True, capture_output=True, timeout=60)
    term = terminal("diff", "v1.ftr", "v2.ftr", size=(120, 40))
    term.wait_for(lambda ls: any("changes" in ln and "v1.ftr → v2.ftr" in ln for ln in ls))
    term.keys("d", "e")  # no detail pane (room for the calls column), everything expanded
    lines = term.wait_for(lambda ls: sum("3,000→3,100" in ln for ln in ls) == 3)
    rows = {ln.split()[1]: ln for ln in lines if "3,000→3,100" in ln}
    assert set(rows) == {"step", "parse", "check"} and "calls 3,000→3,100" in rows["step"]
    # J from the top row goes to the next change below it. The top row (<module>, where the
    # cursor is) is a change itself when the two runs' times differ beyond the noise
    # thresholds, as they may on a loaded machine: then that next change is the second.
    first = 2 if any("change 1 of" in ln for ln in lines) else 1
    term.keys("g", "J")
    term.wait_for(lambda ls: any(f"change {first} of" in ln for ln in ls))
    term.keys("u")  # unchanged subtrees hidden: the changed paths stay
    term.wait_for(lambda ls: any("unchanged hidden" in ln for ln in ls) and any("step" in ln for ln in ls))
    # / searches path names as in the call tree: the find bar, then the hits
    term.keys("u", "g", "/")
    term.wait_for(lambda ls: any("search function names" in ln for ln in ls) and "esc Close search" in ls[-1])
    term.keys("pars")
    term.wait_for(lambda ls: any("Aa" in ln and "pars" in ln for ln in ls))
    term.keys("Enter")  # found, and the keys go to the tree again (its keys in the footer)
    lines = term.wait_for(lambda ls: any("hit 1 of 1" in ln for ln in ls) and "J Next change" in ls[-1])
    assert [ln.split()[1] for ln in lines if "3,000→3,100" in ln] == ["step", "parse", "check"]
    term.keys("n")  # the only hit: n stays on it
    term.wait_for(lambda ls: any("hit 1 of 1" in ln for ln in ls))
    term.keys("/")  # back in the bar (it stays open, with the last search): its keys in the footer
    term.wait_for(lambda ls: "esc Close search" in ls[-1])
    term.keys("C-a", "C-k")
    term.wait_for("search function names")
    term.keys("nothing")
    term.wait_for(lambda ls: any("Aa" in ln and "nothing" in ln for ln in ls))
    term.keys("Enter")
    term.wait_for(lambda ls: any("no hits" in ln for ln in ls))
    term.keys("q")


def test_functions_view_and_back(terminal, tmp_path):
    """v to the functions view, a call of the selected function into the tree, alt+left back."""
    sample_program().save(str(tmp_path / "s.ftr"))
    term = terminal("s.ftr", size=(80, 24))

    def footer(lines: list[str]) -> str:
        return next((ln for ln in reversed(lines) if ln.strip()), "")

    term.wait_for("finished")
    term.keys("j")  # main's first child: parse
    term.keys("v")
    lines = term.wait_for(lambda ls: any(ln.startswith(" functions") for ln in ls)
                          and any(ln.startswith(" Its calls, slowest first") for ln in ls)
                          and "v Call tree" in footer(ls))
    header = next(ln for ln in lines if ln.startswith("function"))
    assert header.split() == ["function", "calls", "↓total", "self", "mean", "max", "share", "raised"]
    row = next(ln for ln in lines if ln.startswith("fib "))
    assert row.split()[1] == "3"  # fib's three calls, counted once each
    assert any(ln.startswith(" Called by (1 function): calls, total, self of parse") for ln in lines), lines
    assert "s Sort" in footer(lines) and "/ Search" in footer(lines)
    # tab: to the list below (focus moves with the key itself, so the next keys go there)
    term.keys("Tab", "End", "Enter")  # parse's only call, in the tree
    lines = term.wait_for(lambda ls: any(ln.startswith(" call") for ln in ls) and "v Functions" in footer(ls))
    assert any("parse" in ln for ln in lines)
    term.keys("M-Left")  # alt+left: back to the functions view, on parse's row
    term.wait_for(lambda ls: any(ln.startswith(" functions") for ln in ls))
    term.keys("v")
    term.wait_for(lambda ls: "v Functions" in footer(ls))
    term.keys("q")


POOL = textwrap.dedent("""\
    import multiprocessing as mp
    import os
    import time


    def square(x):
        while not os.path.exists("go"):  # the workers wait until the test has seen them start
            time.sleep(0.02)
        return x * x


    def main():
        with mp.Pool(3) as pool:
            print("sum", sum(pool.map(square, range(30))))


    if __name__ == "__main__":
        main()
""")


def test_live_run_gains_the_processes_of_a_pool(terminal, tmp_path):
    """flowtrace-tui run on a program with a multiprocessing Pool: the workers' processes
    appear at the top of the tree while it runs, T lists them, and their ends show."""
    (tmp_path / "pool.py").write_text(POOL)
    term = terminal("run", "-o", "pool.ftr", "pool.py", size=(140, 40))
    try:
        lines = term.wait_for(lambda ls: sum(bool(re.search(r"pid \d+ \(fork\): python pool\.py", ln)) for ln in ls) >= 3)
        assert any(re.search(r"pid \d+: python pool\.py", ln) for ln in lines), "\n".join(lines)
    finally:
        (tmp_path / "go").write_text("")
    term.wait_for("program exit 0")
    term.wait_for(lambda ls: any("square" in ln for ln in ls) or any("4 processes" in ln for ln in ls))
    term.keys("T")
    lines = term.wait_for(lambda ls: any("4 processes" in ln and "enter opens one" in ln for ln in ls))
    assert sum("python pool.py" in ln for ln in lines) >= 4, "\n".join(lines)
    term.keys("Escape", "q")
