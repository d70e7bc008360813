"""`flowtrace-tui diff BASE NEW` on screen: the merged tree of both runs, the change keys, the
unchanged filter, the detail pane, what was matched, bad input, snapshots."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from flowtrace_tui.diff_app import DiffApp
from flowtrace_tui.widgets import DetailPane, FindBar
from textual.widgets import Input

from trace_builder import TraceBuilder, loop_nodes as loop, nested_session as session

from .apps import at_rest, screen_lines, source, starved, sync, type_ahead  # noqa: F401 (starved: a fixture)


async def settled(pilot, timeout: float = 60.0) -> None:
    """Both sessions compared, outcomes too, a search done, the screen at rest. A condition
    with a deadline, not a count of turns (400 turns, ~8-12 s, a loaded machine can outlast),
    and the search too (its worker may start after the turn that looked)."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    turns = 0
    while app.loading or app.comparing or app.searching:
        if time.monotonic() > deadline:
            raise AssertionError(f"the diff did not settle in {timeout} s: {app.status_parts()}")
        turns += 1
        await pilot.pause(None if turns < 50 else 0.01)
    await app.workers.wait_for_complete()
    await at_rest(pilot)


def pair_app(**kw) -> DiffApp:
    base = session(loop(3) + [("report", "", "=1", [])], step=1000)
    new = session(loop(4, work="work2", raise_at=2) + [("report", "", "=1", [])], step=1000)
    return DiffApp(source(base, "base.ftr"), source(new, "new.ftr"), **kw)


def lines(app) -> list[str]:
    return [" ".join(ln.split()) for ln in screen_lines(app)]


@sync
async def test_tree_keys_filter_and_detail():
    app = pair_app(show_detail=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await settled(pilot)
        assert lines(app)[:4] == [
            "path calls base new Δ total Δ%",
            "▼ main 1 19.0 µs 25.0 µs +6.00 µs +32%",  # 6 µs: under the noise floor, no change
            "└─▶ step ✗ raised 3→4 15.0 µs 20.0 µs +5.00 µs +33%",
            "report 1 1.00 µs 1.00 µs 0 +0%",
        ]
        assert "4 changes" in app.status_parts()
        # J walks the changes, opening what hides them; K goes back
        await pilot.press("J")
        assert app.tree.cursor_pos == 1 and "change 1 of 4" in app.status_parts()
        await pilot.press("J", "J")
        assert "change 3 of 4" in app.status_parts()
        assert lines(app)[3:7] == [
            "├─ parse calls 3→4 3→4 3.00 µs 4.00 µs +1.00 µs +33%",
            "├─ work − gone 3→0 3.00 µs – -3.00 µs",
            "└─ work2 + new 0→4 – 4.00 µs +4.00 µs",
            "report 1 1.00 µs 1.00 µs 0 +0%",
        ]
        await pilot.press("K")
        assert "change 2 of 4" in app.status_parts()
        # u hides the subtrees where nothing changed (report)
        await pilot.press("u")
        assert lines(app)[6] == "" and "unchanged hidden" in app.status_parts()
        await pilot.press("u")
        assert lines(app)[6].startswith("report")


@sync
async def test_detail_pane_shows_both_runs_side_by_side():
    app = pair_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await settled(pilot)
        await pilot.press("J")  # main › step
        body = [" ".join(ln.split()) for ln in app.query_one(DetailPane).plain_text(100).splitlines()]
        assert body[0] == "path main › step"
        assert body[1].startswith("changed exceptions changed, called another number of times")
        assert "calls 3 4 +1" in body and "raised 0 1 +1" in body and "types ValueError" in body
        assert body[body.index("Calls, in start order (≠: other outcome)") + 1:][:5] == [
            "# BASE (base.ftr) NEW (new.ftr)",
            "1 #2 5.00 µs (i=0) → None #2 5.00 µs (i=0) → None",
            "2 #5 5.00 µs (i=1) → None #5 5.00 µs (i=1) → None",
            "3 ≠ #8 5.00 µs (i=2) → None #8 5.00 µs (i=2) ✗ ValueError: bad",
            "4 + – #11 5.00 µs (i=3) → None",
        ]


@sync
async def test_what_was_matched_is_said():
    b = TraceBuilder(meta={"argv": ["other.py"]})
    b.leave(b.enter("main"))
    cut = b.data(finish=False)
    app = DiffApp(source(session(loop(1)), "a.ftr"), source(cut, "b.ftr"))
    async with app.run_test(size=(200, 30)) as pilot:
        await settled(pilot)
        status = " ".join(app.status_parts())
        assert "NEW unfinished (still running, or crashed): compared as far as recorded" in status
        assert "different programs (prog.py / other.py): paths matched by function names" in status
        assert lines(app)[1].startswith("▼ main")


# Only against a hang: three cold starts of the command took 31 s at load 15, while two
# benchmarks at nice -15 held 1.7 of the 2 cores (one start: 15.8 s of wall time for 0.6 s of
# CPU); 60 s a start was not enough under heavier load.
HANG_GUARD_S = 600


def test_bad_input_is_one_line(tmp_path):
    good = tmp_path / "a.ftr"
    good.write_bytes(session(loop(1)))
    (tmp_path / "junk.ftr").write_text("not a session")
    for args, said in ((["missing.ftr", "a.ftr"], "missing.ftr: no such file"),
                       (["a.ftr", "junk.ftr"], "junk.ftr"), (["a.ftr"], "the following arguments are required")):
        proc = subprocess.run([sys.executable, "-m", "flowtrace_tui", "diff", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=HANG_GUARD_S)
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_bad_file_is_said_before_textual_is_imported(tmp_path):
    """Checking the files needs no UI: textual (most of the start's CPU) is imported after."""
    (tmp_path / "a.ftr").write_bytes(session(loop(1)))
    code = ("import sys; from flowtrace_tui.cli import main; rc = main(['diff', 'missing.ftr', 'a.ftr']); "
            "print(rc, 'textual' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)
    assert (proc.stdout, proc.stderr) == ("2 False\n", "flowtrace-tui: error: missing.ftr: no such file\n")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_diff_view(snap_compare, size):
    async def run_before(pilot):
        await settled(pilot)
        await pilot.press("J", "l", "J", "J")  # the new path work2, with its parent open

    assert snap_compare(pair_app(), terminal_size=size, run_before=run_before)


@sync
async def test_search_finds_paths_by_name_as_the_call_tree_does(starved):
    """/ opens the call tree's find bar; enter finds the paths (a gone one too), goes to the
    first and highlights them; n / N walk them, J / K still walk the changes; with unchanged
    paths hidden, a hidden path is no hit."""
    app = pair_app(show_detail=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await settled(pilot)
        await pilot.press("n")  # no search yet: n opens the find bar, as in the call tree
        assert app.query_one(FindBar).has_class("-shown")
        await pilot.press("escape", "slash", *"work", "enter")
        await settled(pilot)
        assert app.hits.tolist() == [3, 4] and app.tree.cursor_pos == 3  # work (gone), work2 (new)
        assert "hit 1 of 2" in app.status_parts()
        assert lines(app)[4].startswith("├─ work − gone")
        await pilot.press("n")
        assert app.tree.cursor_pos == 4 and "hit 2 of 2" in app.status_parts()
        await pilot.press("n")  # wraps
        assert app.tree.cursor_pos == 3
        await pilot.press("N", "N")
        assert app.tree.cursor_pos == 3
        await pilot.press("J")  # the changes: the one after work
        assert app.tree.cursor_pos == 4 and "change 4 of 4" in app.status_parts()
        # argument text (alt+t): NEW's 4th step and work2 have 'i=3' (the cursor, on a hit, stays)
        # (ctrl+a ctrl+k pressed first: the input's bindings run only once the keys bubble
        # back to the app, after the characters typed behind them are in: Textual's order)
        await pilot.press("slash", "ctrl+a", "ctrl+k")
        await pilot.press(*"i=3", "alt+t", "enter")
        await settled(pilot)
        assert app.hits.tolist() == [1, 4] and "hit 2 of 2" in app.status_parts()
        # report is unchanged: hidden by u, and no hit of a search for it
        await pilot.press("slash", "ctrl+a", "ctrl+k")
        await pilot.press("alt+t", *"report", "enter")
        await settled(pilot)
        assert app.hits.tolist() == [5]
        await pilot.press("u")
        await settled(pilot)
        assert app.hits.tolist() == [] and "[$error]no hits[/]" in app.status_parts()


@sync
async def test_a_word_typed_ahead_after_slash_goes_to_the_find_bar():
    """/ and a word typed while the app is busy (every key queued before the first is handled)
    reach the find bar, not the tree (where u hides unchanged paths, e expands, p goes up)."""
    app = pair_app(show_detail=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await settled(pilot)
        before = lines(app)
        type_ahead(app, "/report")
        await at_rest(pilot)
        assert app.query_one(FindBar).query_one(Input).value == "report"
        assert lines(app)[:7] == before[:7] and "unchanged hidden" not in app.status_parts()
        await pilot.press("enter")
        await settled(pilot)
        assert app.hits.tolist() == [5] and app.tree.cursor_pos == 5


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_diff_view_search(snap_compare, size):
    async def run_before(pilot):
        await settled(pilot)
        await pilot.press("slash", *"work", "enter")  # work and work2 highlighted, on work
        await settled(pilot)

    assert snap_compare(pair_app(), terminal_size=size, run_before=run_before)


@sync
async def test_a_damaged_base_is_compared_as_far_as_it_goes():
    raw = bytearray(session(loop(3)))
    raw[-30] ^= 0xFF  # the end chunk
    app = DiffApp(source(bytes(raw), "a.ftr"), source(session(loop(3)), "b.ftr"))
    async with app.run_test(size=(200, 30)) as pilot:
        await settled(pilot)
        status = " ".join(app.status_parts())
        assert "BASE damaged (" in status and "compared as far as it could be read" in status
        assert lines(app)[1].startswith("▼ main 1 190 ns 190 ns 0 +0%") and "no change" in app.status_parts()


@sync
async def test_detail_pane_lists_the_calls_around_the_first_differing_one():
    """A path's 1,000th call is the first whose outcome differs: the pane says so and lists the
    calls from two before it, that one marked."""
    def run(changed: int) -> bytes:
        return session([("main", "", "=0", [("f", f"i={i}", "=x" if i == changed else "=0", [])
                                            for i in range(1500)])])

    app = DiffApp(source(run(-1), "base.ftr"), source(run(999), "new.ftr"))
    async with app.run_test(size=(160, 40)) as pilot:
        await settled(pilot)
        await pilot.press("J", "J")  # main › f
        body = [" ".join(ln.split()) for ln in app.query_one(DetailPane).plain_text(100).splitlines()]
        assert "first ≠ call 1,000 of 1,500 is the first whose outcome differs" in body
        at = body.index("# BASE (base.ftr) NEW (new.ftr)")
        assert body[at + 1:at + 5] == [
            "997 earlier 997 earlier",
            "998 #999 10 ns (i=997) → 0 #999 10 ns (i=997) → 0",
            "999 #1000 10 ns (i=998) → 0 #1000 10 ns (i=998) → 0",
            "1000 ≠ #1001 10 ns (i=999) → 0 #1001 10 ns (i=999) → x",
        ]
