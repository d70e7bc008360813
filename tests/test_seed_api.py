"""The seed's public API (SEED.md): @trace, @trace(measure_time=True), start/stop_tracing,
get_trace_data, print_tree, CallEvent; plus printing details (colour, exceptions, depth)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

import flowtrace
from flowtrace import CallEvent, format_tree, get_trace_data, print_tree, start_tracing, stop_tracing, trace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _recorder(recorder_name, monkeypatch):
    monkeypatch.setenv("FLOWTRACE_RECORDER", recorder_name)


@trace
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@trace(measure_time=True)
def compute(a, b):
    return a * b


def test_trace_decorator_prints_seed_tree(capsys):
    assert fib(3) == 2
    assert capsys.readouterr().out.splitlines() == [
        "→ fib(3)",
        "  → fib(2)",
        "    → fib(1) → 1",
        "    → fib(0) → 0",
        "  ← fib(2) → 1",
        "  → fib(1) → 1",
        "← fib(3) → 2",
    ]
    events = get_trace_data()
    assert [e.func_name for e in events] == ["fib"] * 5
    assert all(e.duration is None for e in events)


def test_trace_measure_time(capsys):
    assert compute(6, 7) == 42
    out = capsys.readouterr().out
    assert re.fullmatch(r"→ compute\(6, 7\) \[\d+\.\d{6}s\] → 42\n", out), out
    assert get_trace_data()[0].duration > 0


def test_trace_decorator_propagates_exceptions(capsys):
    @trace
    def bad(x):
        raise ValueError(f"no {x}")

    with pytest.raises(ValueError, match="no 1"):
        bad(1)
    assert capsys.readouterr().out == "→ test_trace_decorator_propagates_exceptions.<locals>.bad(1) ✗ ValueError: no 1\n"


def plain_fib(n):
    return n if n < 2 else plain_fib(n - 1) + plain_fib(n - 2)


def test_start_stop_tracing():
    start_tracing()
    plain_fib(2)
    events = stop_tracing()
    assert [(e.id, e.kind, e.func_name, e.parent_id, e.args_repr, e.result_repr, e.duration) for e in events] == [
        (1, "call", "plain_fib", None, "n=2", "1", None),
        (2, "call", "plain_fib", 1, "n=1", "1", None),
        (3, "call", "plain_fib", 1, "n=0", "0", None),
    ]
    assert get_trace_data() == events
    out = io.StringIO()
    print_tree(events, file=out)
    assert out.getvalue().splitlines() == [
        "→ plain_fib(n=2)",
        "  → plain_fib(n=1) → 1",
        "  → plain_fib(n=0) → 0",
        "← plain_fib(n=2) → 1",
    ]
    assert stop_tracing() == []  # not recording any more


def test_start_tracing_measure_time():
    start_tracing(measure_time=True, args="off")
    plain_fib(1)
    events = stop_tracing()
    assert len(events) == 1 and events[0].duration is not None and events[0].args_repr is None
    assert events[0].end == "return" and events[0].module == __name__ and events[0].line > 0


def test_print_tree_colour_and_no_color(monkeypatch):
    events = [
        CallEvent(1, "call", "main", None, "", None, 0.5, end="unfinished"),
        CallEvent(2, "call", "f", 1, "x=1", "2", 0.25),
        CallEvent(3, "call", "g", 1, "", None, 0.1, end="raise", exception="KeyError: 'k'"),
    ]
    plain = format_tree(events)
    assert plain == [
        "→ main()",
        "  → f(x=1) [0.250000s] → 2",
        "  → g() [0.100000s] ✗ KeyError: 'k'",
        "← main() [0.500000s] ⋯ unfinished",
    ]
    coloured = format_tree(events, color=True)
    assert "\x1b[" in coloured[1] and re.sub(r"\x1b\[[0-9;]*m", "", coloured[1]) == plain[1]

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.delenv("NO_COLOR", raising=False)
    print_tree(events, file=tty)
    assert "\x1b[" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = Tty()
    print_tree(events, file=tty)
    assert "\x1b[" not in tty.getvalue()


def test_print_tree_max_depth_threads_and_seed_values():
    events = [
        CallEvent(1, "call", "a", None, "n=1, *rest=(2, 3), k=4", None, None, thread=1, thread_name="MainThread"),
        CallEvent(2, "call", "b", 1, "", "None", None, thread=1),
        CallEvent(3, "call", "c", 2, "", "None", None, thread=1),
        CallEvent(4, "call", "w", None, "", "1", None, thread=2, thread_name="worker"),
    ]
    assert format_tree(events, max_depth=0) == [
        "── thread MainThread ──",
        "→ a(n=1, *rest=(2, 3), k=4) [+2 calls]",
        "── thread worker ──",
        "→ w() → 1",
    ]
    assert format_tree(events, max_depth=1)[1:3] == ["→ a(n=1, *rest=(2, 3), k=4)", "  → b() → None [+1 call]"]
    assert format_tree(events, thread="worker") == ["→ w() → 1"]
    assert format_tree(events[:1], arg_names=False) == ["→ a(1, 2, 3, k=4)"]


def test_import_is_cheap_and_stdlib_only():
    code = (
        "import sys; before = set(sys.modules); import flowtrace; "
        "new = set(sys.modules) - before; "
        "bad = [m for m in new if m.split('.')[0] not in sys.stdlib_module_names and m.split('.')[0] != 'flowtrace']; "
        "print(bad); print(sorted(m for m in new if m.startswith('flowtrace')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    bad, ours = out.splitlines()
    assert bad == "[]"
    # the recorder, writer and reader load on first use, not at import
    assert "flowtrace.recorder.python" not in ours and "flowtrace.ftr.reader" not in ours
