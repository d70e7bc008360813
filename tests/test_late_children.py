"""A parent's EXIT row before its children's CALL rows (files written by older Python recorders,
whose drain let a parent's end out before the children a call-id gap held back): every reader
shows the children under their parent, as for the same calls written in order. Hand-made
files: the late one, and the same calls in the order the recorders write now."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from trace_builder import TraceBuilder, load as load_columns

from flowtrace.export import EXPORTS
from flowtrace.ftr.reader import load
from flowtrace.ftr.scan import survey
from flowtrace.stream_print import print_session
from flowtrace_tui.model.index import build_index

from treeutil import shape

TREE = [
    "main()",
    "  parent() = None",
    "    child() = 2",
    "      grandchild() = 1",
    "  sibling() = 3",
]


def session(late: bool) -> bytes:
    """main > parent > child > grandchild, then main > sibling. Late: the parent's EXIT row is
    in the first chunk, before the child's CALL row, and the child's EXIT row before the
    grandchild's CALL row (two late generations)."""
    b = TraceBuilder(meta={"recorder": "python"})
    main = b.enter("main", t=10)
    parent = b.enter("parent", t=20)
    if late:
        b.leave(parent, result="None", t=90)
    b.flush()
    child = b.enter("child", parent=parent, t=30)
    if late:
        b.leave(child, result="2", t=60)
    b.flush()
    grand = b.enter("grandchild", parent=child, t=40)
    b.leave(grand, result="1", t=50)
    if not late:
        b.leave(child, result="2", t=60)
        b.leave(parent, result="None", t=90)
    sibling = b.enter("sibling", parent=main, t=100)
    b.leave(sibling, result="3", t=110)
    b.leave(main, t=120)
    return b.data()


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, late in (("late", True), ("in_order", False)):
        paths[name] = tmp_path / f"{name}.ftr"
        paths[name].write_bytes(session(late))
    return paths


def test_the_late_file_is_late(files) -> None:
    """(What the other tests rely on.) The survey finds the two late parents."""
    assert survey(files["late"]).late_parents == {2: 3, 3: 4}
    assert survey(files["in_order"]).late_parents == {}


def test_load(files) -> None:
    assert shape(load(files["late"].read_bytes())) == TREE


def printed(path) -> list[str]:
    out = io.StringIO()
    print_session(survey(path), out, color=False, max_depth=None, thread=None, cwd=str(path.parent))
    return out.getvalue().splitlines()


def test_print_shows_the_children_under_their_parent(files) -> None:
    assert [line.split("(")[0] for line in printed(files["late"])] == [
        "→ main", "  → parent", "    → child", "      → grandchild", "    ← child", "  ← parent", "  → sibling",
        "← main"]
    assert printed(files["late"]) == printed(files["in_order"])


def test_print_cut_at_a_depth(files) -> None:
    def cut(path):
        out = io.StringIO()
        print_session(survey(path), out, color=False, max_depth=1, thread=None, cwd=str(path.parent))
        return out.getvalue().splitlines()
    lines = cut(files["late"])
    assert lines == cut(files["in_order"])
    assert [line.split("(")[0] for line in lines] == ["→ main", "  → parent", "  → sibling", "← main"]
    assert "[+2 calls]" in lines[1]


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_exports_are_those_of_the_calls_in_order(files, fmt: str) -> None:
    outs = []
    for name in ("late", "in_order"):
        out = io.BytesIO() if EXPORTS[fmt].binary else io.StringIO()
        EXPORTS[fmt].write(survey(files[name]), out)
        data = out.getvalue()
        outs.append(data.replace(b"late.ftr", b"X") if isinstance(data, bytes) else data.replace(name + ".ftr", "X"))
    assert outs[0] == outs[1]


def test_stats_and_print_commands(files) -> None:
    for command in ("stats", "print"):
        texts = []
        for name in ("late", "in_order"):
            proc = subprocess.run([sys.executable, "-m", "flowtrace", command, str(files[name])], capture_output=True,
                                  text=True, timeout=60)
            assert proc.returncode == 0 and not proc.stderr, proc.stderr
            texts.append(proc.stdout.replace(name + ".ftr", "X"))
        assert texts[0] == texts[1], command


def test_explorer_index(files) -> None:
    late, in_order = (build_index(load_columns(files[n].read_bytes())) for n in ("late", "in_order"))
    for column in ("order", "depth", "end", "parent", "dur", "self_time"):
        assert np.array_equal(getattr(late, column), getattr(in_order, column)), column
    assert late.parent[3] == 2 and late.parent[4] == 3  # child under parent, grandchild under child


def test_a_late_child_that_never_ended(tmp_path) -> None:
    """The parent's EXIT row waits for its late child's, which never comes (the session was
    still running): it goes out at the end, after everything else, as in the file in order."""
    def unfinished(late: bool) -> bytes:
        b = TraceBuilder(meta={"recorder": "python"})
        main = b.enter("main", t=10)
        parent = b.enter("parent", t=20)
        if late:
            b.leave(parent, result="None", t=90)
        b.flush()
        b.enter("child", parent=parent, t=30)
        if not late:
            b.leave(parent, result="None", t=90)
        b.leave(main, t=120)
        return b.data(finish=False)
    paths = {}
    for name, late in (("late", True), ("in_order", False)):
        paths[name] = tmp_path / f"{name}.ftr"
        paths[name].write_bytes(unfinished(late))
    assert survey(paths["late"]).late_parents == {2: 3}
    lines = printed(paths["late"])
    assert lines == printed(paths["in_order"])
    assert [line.split("(")[0] for line in lines] == ["→ main", "  → parent", "    → child", "  ← parent", "← main"]


def test_diff_finds_no_change_against_the_calls_in_order(files) -> None:
    proc = subprocess.run([sys.executable, "-m", "flowtrace", "diff", str(files["late"]), str(files["in_order"])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "5 paths: 5 in both, 0 only in BASE, 0 only in NEW; 0 changed" in proc.stdout
    assert proc.stdout.rstrip().endswith("no change")
