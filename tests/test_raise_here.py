"""Format 1.6's `raise` mark in the exit row (docs/FORMAT.md, "Exceptions"): a call left by an
exception raised in it ends with EXIT `how` = END_RAISE_HERE instead of END_RAISE plus a MARK
`raise` row, and a batch's MARK chunk comes before its EXIT chunk. Both recorders write it;
every reader shows the same marks for it as for the two rows of 1.5 and older, which it still reads."""

from __future__ import annotations

import io
import pathlib

from trace_builder import META, add_call, add_exit, add_mark, chunk_offsets
from treeutil import shape

from flowtrace.ftr import decode as D
from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.ordered import ordered_calls
from flowtrace.ftr.reader import load
from flowtrace.ftr.scan import survey
from flowtrace.ftr.writer import SessionWriter
from flowtrace.recorder.base import Batch, RecorderConfig
from flowtrace.session import Session
from flowtrace.timeline import events
from flowtrace_tui.model import TraceData


def check(i):
    if i % 2:
        raise ValueError(i)
    return i


def middle(i):
    return check(i) + 1


def run():
    for i in range(2):
        try:
            middle(i)
        except ValueError:
            pass


def _recorded(recorder: str) -> bytes:
    buf = io.BytesIO()
    session = Session(buf, RecorderConfig(args="safe"), recorder=recorder)
    session.start()
    try:
        run()
    finally:
        session.stop()
    return buf.getvalue()


def _records(data: bytes) -> list:
    return [r for r in map(D.decode, ChunkReader.from_bytes(data).poll()) if r is not None]


def test_both_recorders_write_the_raise_in_the_exit_row(recorder_name: str) -> None:
    data = _recorded(recorder_name)
    trace = load(data)
    ids = {c.qualname: [] for c in trace.calls}
    for c in trace.calls:
        ids[c.qualname].append(c.id)
    records = _records(data)
    exits = {c: h for r in records if isinstance(r, D.ExitRows) for c, h in zip(r.call.values(), r.how.values())}
    kinds = [k for r in records if isinstance(r, D.MarkRows) for k in r.kind.values()]
    raising_check, raising_middle = ids["check"][1], ids["middle"][1]
    assert exits[raising_check] == F.END_RAISE_HERE  # raised there: the row is its raise mark
    assert exits[raising_middle] == F.END_RAISE  # passed through
    assert kinds == [F.MARK_HANDLED]  # no MARK raise row
    order = [type(r) for r in records if isinstance(r, (D.ExitRows, D.MarkRows))]
    assert order.index(D.MarkRows) < order.index(D.ExitRows)  # a batch's MARK chunk first
    assert shape(trace, marks=True) == [
        "run() = None [handled:ValueError]",
        "  middle(i=0) = 1",
        "    check(i=0) = 0",
        "  middle(i=1) ! ValueError: 1",
        "    check(i=1) ! ValueError: 1 [raise:ValueError]",
    ]


# The same session in both layouts: 1 run -> 2 middle -> 3 check, which raises; 3 also caught an
# earlier exception of its own (handled at 20), so its marks come from both kinds of rows.
def _session(layout: str) -> bytes:
    b = Batch(functions=[{"id": 1, "qualname": "run", "module": "m", "file": "m.py", "line": 1, "kind": "function"},
                         {"id": 2, "qualname": "middle", "module": "m", "file": "m.py", "line": 5, "kind": "function"},
                         {"id": 3, "qualname": "check", "module": "m", "file": "m.py", "line": 9, "kind": "function"}],
              threads=[{"id": 1, "ident": 1, "native_id": 1, "name": "MainThread"}],
              strings_first_id=1, strings=["KeyError: 'k'", "ValueError: 1", "None"], call_first_id=1)
    for par, fn, t0 in ((0, 1, 0), (1, 2, 10), (2, 3, 15)):
        add_call(b, par, fn, 1, 1_000_000_000 + t0, 0)
    add_mark(b, 3, 1_000_000_020, F.MARK_RAISE, 1)
    add_mark(b, 3, 1_000_000_020, F.MARK_HANDLED, 1)
    if layout == "1.5":
        add_mark(b, 3, 1_000_000_030, F.MARK_RAISE, 2)
    add_mark(b, 1, 1_000_000_040, F.MARK_HANDLED, 2)
    add_exit(b, 3, 1_000_000_030, F.END_RAISE if layout == "1.5" else F.END_RAISE_HERE, 2)
    add_exit(b, 2, 1_000_000_035, F.END_RAISE, 2)
    add_exit(b, 1, 1_000_000_050, F.END_RETURN, 3)
    buf = io.BytesIO()
    w = SessionWriter(buf, dict(META), 1_000_000_000)
    w.write_batch(b)
    w.finish({"t_end_abs": 1_000_000_060, "reason": "exit", "exit_code": 0, "signal": None, "error": None})
    data = buf.getvalue()
    if layout == "1.5":  # 1.5 wrote a batch's EXIT chunk before its MARK chunk
        offsets = {kind: (lo, hi) for kind, lo, hi in chunk_offsets(data)}
        (mlo, mhi), (elo, ehi) = offsets[F.MARK], offsets[F.EXIT]
        assert mhi == elo
        data = data[:mlo] + data[elo:ehi] + data[mlo:mhi] + data[ehi:]
    return data


MARKS = {1: [("handled", 40, "ValueError: 1")], 2: [],
         3: [("raise", 20, "KeyError: 'k'"), ("handled", 20, "KeyError: 'k'"), ("raise", 30, "ValueError: 1")]}


def test_every_reader_shows_the_same_marks_in_both_layouts(tmp_path: pathlib.Path) -> None:
    for layout in ("1.5", "1.6"):
        data = _session(layout)
        trace = load(data)
        assert {c.id: [(m.kind, m.t_ns, m.text) for m in c.marks] for c in trace.calls} == MARKS, layout
        assert [(c.id, c.end, c.exception) for c in trace.calls] == [
            (1, "return", None), (2, "raise", "ValueError: 1"), (3, "raise", "ValueError: 1")]
        path = tmp_path / f"{layout}.ftr"
        path.write_bytes(data)
        streamed = {c.id: [(m.kind, m.t_ns, m.text) for m in c.marks] for c in ordered_calls(survey(path))}
        assert streamed == MARKS, layout
        d = TraceData("t")  # the explorer's loader
        d.feed(ChunkReader.from_bytes(data).poll())
        names = {F.MARK_RAISE: "raise", F.MARK_HANDLED: "handled"}
        explorer = {cid: [(names[int(d.mark_col("kind")[i])], int(d.mark_col("t")[i]),
                           d.strings.text(int(d.mark_col("ref")[i]))) for i in d.marks_of(cid)] for cid in (1, 2, 3)}
        assert explorer == MARKS, layout
        assert [int(h) for h in d.col("how")[1:4]] == [F.END_RETURN, F.END_RAISE, F.END_RAISE]
        instants = [(e.call, e.t, e.how) for e in events(survey(path)) if e.kind == "mark"]
        assert sorted(instants) == [(1, 40, F.MARK_HANDLED), (3, 20, F.MARK_RAISE), (3, 20, F.MARK_HANDLED),
                                    (3, 30, F.MARK_RAISE)], layout
        ends = [(e.call, e.how) for e in events(survey(path)) if e.kind == "end"]
        assert sorted(ends) == [(1, F.END_RETURN), (2, F.END_RAISE), (3, F.END_RAISE)], layout
