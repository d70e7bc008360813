"""Sessions of several processes in the explorer's model: every part loaded into one index under
the session's ids and clock, processes as the top level (then threads and tasks), how each
process ended, and the link between a child and the call that started it."""

from __future__ import annotations

import os

import numpy as np

from flowtrace_tui.model import TreeRows, build_index
from flowtrace_tui.model.filters import Filters
from flowtrace_tui.model.process_view import process_rows, started_processes, starting_call
from flowtrace_tui.model.row_view import END_OPEN, END_RAISE, END_RETURN, row_view
from flowtrace_tui.model.search import Query, find
from flowtrace_tui.model.source import TraceSource

from trace_builder import Feeder, TraceBuilder, child_process, exec_child, fork_child, root_program, save_session


def open_session(path: str) -> TraceSource:
    """Read a whole session as the file view does: until nothing more is complete."""
    src = TraceSource.open(path)
    while src.step().more:
        pass
    return src


def lines(ix, rows: TreeRows) -> list[str]:
    """Each visible row as `depth name(args) -> end`, as the tree would name it."""
    out = []
    for r in range(len(rows)):
        pos = rows.pos(r)
        v = row_view(ix, pos)
        end = {END_RAISE: f" ✗ {v.exception}", END_OPEN: " ⋯"}.get(v.end, f" → {v.result}" if v.result else "")
        args = f"({v.args})" if v.group is None and not v.is_body else ""
        note = f" {{{v.started_note}}}" if v.started_note else ""
        out.append(f"{int(ix.depth[pos])} {v.name}{args}{end}{note}")
    return out


def test_processes_are_the_top_level(tmp_path):
    root, ids = root_program()
    path = save_session(str(tmp_path), root, [fork_child(), exec_child()])
    data = open_session(path).data
    assert [p.title() for p in data.processes] == [
        "pid 100: python prog.py --jobs 2", "pid 101 (fork): python prog.py --jobs 2", "pid 102: python -m pkg.worker"]
    ix = build_index(data)
    rows = TreeRows(ix)
    rows.expand_to_depth(5)
    assert lines(ix, rows) == [
        "0 pid 100: python prog.py --jobs 2 → exit 0",
        "1 main() → None",
        "2 spawn(n=2) → None {started 2 processes}",
        "0 pid 101 (fork): python prog.py --jobs 2 → exit 0",
        "1 work(i=1) → 1",
        "1 work(i=2) → 2",
        "0 pid 102: python -m pkg.worker → exit 0",
        "1 thread MainThread",
        "2 <module> pkg.worker",
        "1 thread Thread-2",
        "2 helper(k='x') → 'y'",
    ]
    # each process's times on the root's clock: the fork child started 20 ns after the root
    work = np.flatnonzero(data.col("func") == data.col("func")[3])
    assert data.col("t0")[work].tolist() == [25, 80] and data.col("t1")[work].tolist() == [70, 110]
    # a process's total is its calls' (as a thread's): main 500; the two works 45 + 30
    assert [int(ix.dur[g.node]) for g in ix.groups if g.kind == "process"] == [500, 75, 99 + 4]
    # grouping off: no thread groups, the processes stay
    flat = build_index(data, grouped=False)
    rows = TreeRows(flat)
    rows.expand_to_depth(5)
    assert lines(flat, rows)[6:] == ["0 pid 102: python -m pkg.worker → exit 0", "1 <module> pkg.worker",
                                     "1 helper(k='x') → 'y'"]


def test_child_links_to_the_call_that_started_it(tmp_path):
    root, ids = root_program()
    path = save_session(str(tmp_path), root, [fork_child(), exec_child()])
    data = open_session(path).data
    # both were started while `spawn` ran (10..30 ns) on the thread with ident 1001
    assert starting_call(data, 1) == starting_call(data, 2) == ids["spawn"]
    assert started_processes(data, ids["spawn"]) == [1, 2]
    assert started_processes(data, ids["main"]) == [] and starting_call(data, 0) == 0


def test_how_processes_ended(tmp_path):
    root, _ = root_program()
    failed = fork_child(code=3)
    os.makedirs(tmp_path / "trace.ftr.d")
    with open(tmp_path / "trace.ftr.d" / "101.ftr", "wb") as fh:
        fh.write(failed.data(exit_code=3))
    killed = exec_child()
    with open(tmp_path / "trace.ftr.d" / "102.ftr", "wb") as fh:
        fh.write(killed.data(finish=False))  # SIGKILL: no ENDS
    (tmp_path / "trace.ftr.d" / "103.ftr").write_bytes(b"not a session")
    path = root.save(str(tmp_path / "trace.ftr"))
    data = open_session(path).data
    rows = process_rows(data)
    # the unreadable part has no start time: it sorts first among the root's children
    assert [(r.pid, r.depth, r.status, r.failed, r.calls) for r in rows] == [
        (100, 0, "exit 0", False, 2), (103, 1, "damaged (not a flowtrace session file (empty or too short))", False, 0),
        (101, 1, "exit 3", True, 2), (102, 1, "no end recorded (killed?)", False, 2)]
    ix = build_index(data)
    views = [row_view(ix, int(ix.pos_of[g.node])) for g in ix.groups if g.kind == "process"]
    assert [(v.end, v.exception, v.result) for v in views] == [
        (END_RETURN, "", "exit 0"), (END_RAISE, "exit 3", None), (END_OPEN, "", None)]


def test_search_and_filters_cross_processes(tmp_path):
    root, _ = root_program()
    path = save_session(str(tmp_path), root, [fork_child(), exec_child()])
    ix = build_index(open_session(path).data)
    hits = find(ix, Query("work"))  # in two processes, the module pkg.worker's code, its process row
    assert [row_view(ix, int(p)).name + row_view(ix, int(p)).args for p in hits] == [
        "worki=1", "worki=2", "pid 102: python -m pkg.worker", "<module> pkg.worker"]
    # process, thread and task rows match by the title they show
    assert [row_view(ix, int(p)).name for p in find(ix, Query("(fork)"))] == ["pid 101 (fork): python prog.py --jobs 2"]
    assert [row_view(ix, int(p)).name for p in find(ix, Query(r"^pid 10[02]\b", regex=True))] == [
        "pid 100: python prog.py --jobs 2", "pid 102: python -m pkg.worker"]
    assert [row_view(ix, int(p)).name for p in find(ix, Query("thread-2"))] == ["thread Thread-2"]
    assert [row_view(ix, int(p)).name for p in find(ix, Query("Thread-2", case=True, in_text=True))] == ["thread Thread-2"]
    assert len(find(ix, Query("thread-2", case=True))) == 0
    assert [row_view(ix, int(p)).name for p in find(ix, Query("'y'", in_text=True))] == ["helper"]
    rows = TreeRows(ix, Filters(min_dur_ns=40))
    rows.expand_to_depth(5)
    assert [line for line in lines(ix, rows) if not line.startswith("0 ")] == [
        "1 main() → None", "1 work(i=1) → 1", "1 thread MainThread", "2 <module> pkg.worker", "1 thread Thread-2"]


def test_root_loaded_before_its_parts_keeps_its_ids_and_maps_later_ones(tmp_path):
    """Live: the root's first calls load as they are; once a part is loaded, the root's later
    functions, strings and calls are mapped like any part's."""
    root = TraceBuilder(meta={"pid": 100, "argv": ["prog.py"], "parts": "trace.ftr.d"})
    path = str(tmp_path / "trace.ftr")
    feed = Feeder(root, path)
    m = root.enter("main", args="", t=0)
    feed.b.flush()
    feed.sync()
    src = TraceSource.open(path)
    src.step()
    assert src.data.n == 1 and not src.data.multi_process
    os.makedirs(path + ".d")
    child = fork_child()
    Feeder(child, path + ".d/101.ftr").b.flush()
    with open(path + ".d/101.ftr", "wb") as fh:
        fh.write(child.out.getvalue())
    src.parts.scan(force=True)
    src.step()
    assert src.data.multi_process and src.data.n == 3
    late = root.enter("late", args="x=7", t=200)
    root.leave(late, "8", t=210)
    root.leave(m, "None", t=300)
    feed.b.flush()
    feed.sync()
    src.step()
    data = src.data
    ix = build_index(data)
    rows = TreeRows(ix)
    rows.expand_to_depth(5)
    assert lines(ix, rows) == [
        "0 pid 100: python prog.py ⋯", "1 main() → None {started pid 101}", "2 late(x=7) → 8",
        "0 pid 101 (fork): python prog.py --jobs 2 ⋯", "1 work(i=1) → 1", "1 work(i=2) → 2"]


def test_processes_not_followed_are_listed(tmp_path):
    """A child on another interpreter leaves a note instead of a part (docs/FORMAT.md)."""
    root, _ = root_program()
    path = save_session(str(tmp_path), root, [fork_child()])
    (tmp_path / "trace.ftr.d" / "105.skip.json").write_text(
        '{"pid": 105, "ppid": 100, "argv": ["old.py"], "executable": "/usr/bin/python3.11", '
        '"reason": "Python 3.11 (flowtrace needs 3.12+)", "started_ns": %d}' % (5_000_000_000 + 300))
    (tmp_path / "trace.ftr.d" / "106.skip.json").write_text("{broken")
    data = open_session(path).data
    rows = process_rows(data)
    assert [(r.pid, r.depth, r.command, r.status, r.calls) for r in rows] == [
        (100, 0, "python prog.py --jobs 2", "exit 0", 2),
        (106, 1, "python", "not followed: unreadable note (Expecting property name enclosed in double quotes: "
                      "line 1 column 2 (char 1))", 0),
        (101, 1, "python prog.py --jobs 2", "exit 0", 2),
        (105, 1, "python old.py", "not followed: Python 3.11 (flowtrace needs 3.12+)", 0)]
    ix = build_index(data)  # processes without calls have no row in the call tree
    assert [g.label for g in ix.groups] == ["pid 100: python prog.py --jobs 2", "pid 101 (fork): python prog.py --jobs 2"]


def test_tasks_group_within_their_process(tmp_path):
    """asyncio tasks of a child keep their ids' meaning (root, creator) under the session's ids;
    t's task view puts each task's calls in a group under the child's process."""
    root, _ = root_program()
    c = child_process(103, 100, ["-m", "svc"], 50, started_by=(100, 1001, 12))
    m = c.enter("amain", t=1, kind="coroutine")
    a = c.enter("fetch", args="i=0", task=1, t=2, kind="coroutine")
    c.task(1, "Task-1", root=a, creator=m)
    c.leave(a, "0", t=6)
    b = c.enter("fetch", args="i=1", task=2, t=3, parent=0, kind="coroutine")
    c.task(2, "Task-2", root=b, creator=m)
    c.leave(b, "1", t=8)
    c.leave(m, None, t=10)
    data = open_session(save_session(str(tmp_path), root, [c])).data
    assert [(t.name, t.creator, t.root) for t in data.tasks.values()] == [("Task-1", 3, 4), ("Task-2", 3, 5)]
    expected = {False: ["1 amain()", "2 fetch(i=0) → 0", "1 fetch(i=1) → 1"],
                True: ["1 amain()", "1 task Task-1", "2 fetch(i=0) → 0", "1 task Task-2", "2 fetch(i=1) → 1"]}
    for tasks, shown in expected.items():
        ix = build_index(data, tasks=tasks)
        rows = TreeRows(ix)
        rows.expand_to_depth(5)
        assert lines(ix, rows)[3:] == ["0 pid 103: python -m svc → exit 0", *shown]


def test_process_titles():
    from flowtrace_tui.model.parts import ProcessRecord

    def title(**meta) -> str:
        return ProcessRecord(1, "/x/trace.ftr.d/7.ftr", meta=meta).title()

    assert title(pid=7, argv=["-c"]) == "pid 7: python -c …"
    assert title(pid=7, argv=["-c", "import x", "a b"]) == "pid 7: python -c … 'a b'"
    assert title(pid=7, argv=["-m", "pkg.w"], process={"how": "fork"}) == "pid 7 (fork): python -m pkg.w"
    assert title() == "pid 7: python"  # META unreadable: the pid from the part's name


def test_parts_followed_when_meta_comes_after_opening(tmp_path):
    """A live root file opened before its META was written still finds its parts."""
    root, _ = root_program()
    data = root.data()
    path = str(tmp_path / "trace.ftr")
    with open(path, "wb") as fh:
        fh.write(data[:16])  # the file header alone
    src = TraceSource.open(path)
    assert src.parts is None
    save_session(str(tmp_path), root_program()[0], [fork_child()])
    while src.step().more:
        pass
    assert [p.pid for p in src.data.processes] == [100, 101] and src.data.n == 4
