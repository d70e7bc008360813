"""The view models the widgets draw from, without Textual: one line of the tree (row_view),
the detail pane's content (call_detail), the program's output (output_log)."""

from __future__ import annotations

from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.model import TraceData, build_index
from flowtrace_tui.model.call_detail import END_OPEN, END_RAISE, CallDetail, GroupDetail, detail_of, path_to
from flowtrace_tui.model.output_log import OutputLog
from flowtrace_tui.model.row_view import END_OPEN as ROW_OPEN
from flowtrace_tui.model.row_view import END_RAISE as ROW_RAISE
from flowtrace_tui.model.row_view import row_view
from flowtrace_tui.model.source_text import NoSource

from trace_builder import TraceBuilder


def indexed(b: TraceBuilder, finish: bool = True):
    d = TraceData("t")
    d.feed(ChunkReader.from_bytes(b.data(finish=finish)).poll())
    return build_index(d)


def test_row_of_a_finished_call_and_its_share():
    # GIVEN main(0..100) -> work(10..60) returning 'ok', and bad(60..90) raising
    b = TraceBuilder()
    m = b.enter("main", t=0)
    w = b.enter("work", args="n=1\n2", t=10)
    b.leave(w, "ok", t=60)
    x = b.enter("bad", t=60)
    b.leave(x, raised="ValueError: no", t=90)
    b.leave(m, t=100)
    ix = indexed(b)
    # WHEN the rows of work and bad are viewed
    rw, rx = row_view(ix, int(ix.pos_of[w])), row_view(ix, int(ix.pos_of[x]))
    # THEN names, one-line args, ends, times and shares of the parent's running time
    assert (rw.name, rw.args, rw.result, rw.total_ns, rw.share) == ("work", "n=1⏎2", "ok", 50, 0.5)
    assert (rx.end, rx.exception, rx.result, rx.share) == (ROW_RAISE, "ValueError", None, 0.3)
    assert row_view(ix, int(ix.pos_of[m])).share is None  # a top-level call


def test_row_of_a_running_call_ticks_with_the_live_clock():
    # GIVEN main running since 0 with child c running since 20 (no end yet, session time 30)
    b = TraceBuilder()
    m = b.enter("main", t=0)
    c = b.enter("c", t=20)
    ix = indexed(b, finish=False)
    # WHEN drawn at session time 1000
    row, parent = row_view(ix, int(ix.pos_of[c]), live_now=1000), row_view(ix, int(ix.pos_of[m]), live_now=1000)
    # THEN both show their elapsed time so far and c's share of main moves with it
    assert (row.end, row.total_ns, parent.total_ns) == (ROW_OPEN, 980, 1000)
    assert row.share == 0.98
    assert row_view(ix, int(ix.pos_of[c])).total_ns == ix.dur[c]  # no live clock: the index's


def test_call_detail_without_widgets():
    b = TraceBuilder()
    m = b.enter("main", t=0)
    g = b.enter("gen", args="k=1", kind="generator", t=5)
    b.suspend(g, "1")
    b.resume(g)
    b.leave(g, raised="StopIteration", t=40)
    ix = indexed(b, finish=False)
    d = detail_of(ix, int(ix.pos_of[g]))
    assert isinstance(d, CallDetail)
    assert (d.title, d.kind, d.args, d.end, d.value, d.thread) == ("gen", "generator", "k=1", END_RAISE, "StopIteration", "MainThread")
    assert d.suspensions == 1 and [(e.what, e.text) for e in d.events] == [("suspend", "1"), ("resume", "")]
    assert d.source == NoSource("source not available")  # the builder's file does not exist
    assert detail_of(ix, int(ix.pos_of[m])).end == END_OPEN
    assert path_to(ix, int(ix.pos_of[g])) == [(int(ix.pos_of[m]), "main"), (int(ix.pos_of[g]), "gen")]


def test_group_detail():
    b = TraceBuilder()
    b.leave(b.enter("a", thread=1), t=10)
    b.leave(b.enter("b", thread=2), t=20)
    ix = indexed(b)
    g = ix.groups[0]
    d = detail_of(ix, int(ix.pos_of[g.node]))
    assert isinstance(d, GroupDetail) and d.label.startswith("thread") and (d.roots, d.calls) == (1, 1)


def test_call_detail_reads_the_source_excerpt(tmp_path):
    src = tmp_path / "prog.py"
    src.write_text("".join(f"line {i}\n" for i in range(1, 30)))
    b = TraceBuilder()
    b.func("f", file=str(src), line=10)
    b.leave(b.enter("f"), "r")
    ix = indexed(b)
    ex = detail_of(ix, 0).source
    assert ex is not None and (ex.first, ex.line) == (8, 10)
    assert ex.code.splitlines()[0] == "line 8" and ex.code.splitlines()[-1] == "line 18"


def test_call_detail_reads_a_frozen_modules_source_from_the_recorded_stdlib(tmp_path):
    """`<frozen posixpath>` / `<frozen importlib._bootstrap>`: frozen code keeps its source's line
    numbers, and the file it was frozen from is in the recorded interpreter's standard library
    (META `stdlib`); a session without that key, or a module not there, has no excerpt."""
    lib = tmp_path / "lib"
    (lib / "importlib").mkdir(parents=True)
    (lib / "posixpath.py").write_text("".join(f"posix {i}\n" for i in range(1, 90)))
    (lib / "importlib" / "_bootstrap.py").write_text("".join(f"boot {i}\n" for i in range(1, 90)))
    (lib / "pkg").mkdir()
    (lib / "pkg" / "__init__.py").write_text("".join(f"pkg {i}\n" for i in range(1, 9)))
    names = [("join", "<frozen posixpath>", 71), ("_find", "<frozen importlib._bootstrap>", 40),
             ("p", "<frozen pkg>", 3), ("gone", "<frozen nothere>", 5)]

    def first_lines(meta):
        b = TraceBuilder(meta=meta)
        calls = []
        for name, file, line in names:
            b.func(name, file=file, line=line)
            calls.append(b.enter(name))
            b.leave(calls[-1])
        ix = indexed(b)
        found = [detail_of(ix, int(ix.pos_of[c])).source for c in calls]
        return [s.code.splitlines()[s.line - s.first] if not isinstance(s, NoSource) else s for s in found]

    assert first_lines({"stdlib": str(lib)}) == ["posix 71", "boot 40", "pkg 3", NoSource("source not available")]
    assert first_lines({}) == [NoSource("source not available")] * 4


def test_call_detail_says_why_there_is_no_source_excerpt(tmp_path):
    """An empty file (an empty module's code starts at its line 1), a file shorter than the
    recorded line (changed since), a code without a line: each said as it is, not as a file that
    cannot be read."""
    empty, short = tmp_path / "empty.py", tmp_path / "short.py"
    empty.write_text("")
    short.write_text("a = 1\nb = 2\nc = 3\n")
    b = TraceBuilder()
    b.func("<module>", module="empty", kind="module", file=str(empty), line=1)
    b.func("f", file=str(short), line=10)
    b.func("g", file=str(short), line=0)
    b.func("h", file=str(tmp_path / "gone.py"), line=1)
    calls = [b.enter(name, module=module) for name, module in (("<module>", "empty"), ("f", "__main__"),
                                                                ("g", "__main__"), ("h", "__main__"))]
    for c in reversed(calls):
        b.leave(c)
    ix = indexed(b)
    assert [detail_of(ix, int(ix.pos_of[c])).source for c in calls] == [
        NoSource("the file is empty"),
        NoSource("source not available: the file has 3 lines now, none at 10"),
        NoSource("no source line recorded for this code"),
        NoSource("source not available"),
    ]


def test_output_log_reads_only_what_is_new(tmp_path):
    path = tmp_path / "out.log"
    log = OutputLog(str(path))
    assert log.read_new() == ""  # not there yet
    path.write_bytes(b"one \x1b[31mred\x1b[0m\r\ncaf\xc3")  # an escape, CRLF, half a character
    assert log.read_new() == "one red\ncaf"
    with open(path, "ab") as fh:
        fh.write(b"\xa9\n")
    assert log.read_new() == "é\n"
    assert log.read_new() == ""
