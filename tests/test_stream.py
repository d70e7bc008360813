"""`flowtrace print` and `export` read a session in passes (flowtrace/ftr/scan.py) instead of
loading it: the same text and the same documents as the loaded path, on sessions where tree
order and file order differ (generators resumed later, threads interleaving, calls ending in a
later batch, sessions cut short or stopped with calls running)."""

from __future__ import annotations

import io
import pathlib
import random
import subprocess
import sys

import pytest
from trace_builder import TraceBuilder, random_session, sample_bytes, write_sample

from flowtrace.export import FORMATS
from flowtrace.ftr import ordered
from flowtrace.ftr.reader import load, trace_to_events
from flowtrace.ftr.scan import Texts, survey
from flowtrace.printing import format_tree
from flowtrace.stream_print import print_session

ENDINGS = ("finished", "killed", "stopped")


def loaded_text(path: pathlib.Path, max_depth: int | None, thread: int | None, color: bool = False) -> str:
    events = trace_to_events(load(path))
    if thread is not None:
        events = [e for e in events if e.thread == thread]
    lines = format_tree(events, max_depth=max_depth, cwd="/w", color=color)
    return "\n".join(lines) + "\n" if lines else ""


def streamed_text(path: pathlib.Path, max_depth: int | None, thread: int | None, color: bool = False) -> str:
    out = io.StringIO()
    print_session(survey(path), out, color=color, max_depth=max_depth, thread=thread, cwd="/w")
    return out.getvalue()


@pytest.mark.parametrize("seed", range(24))
def test_print_equals_the_loaded_tree(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    random_session(path, seed, steps=250, threads=1 + seed % 3, ending=ENDINGS[seed % 3])
    for max_depth in (None, 0, 1, 3):
        for thread in (None, 1, 2):
            assert streamed_text(path, max_depth, thread) == loaded_text(path, max_depth, thread)


@pytest.mark.parametrize("seed", range(6))
def test_print_in_colour_equals_the_loaded_tree(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    random_session(path, seed, steps=250, threads=1 + seed % 3, ending=ENDINGS[seed % 3])
    for max_depth in (None, 1):
        assert streamed_text(path, max_depth, None, color=True) == loaded_text(path, max_depth, None, color=True)


def test_print_durations_equal_the_loaded_ones(tmp_path: pathlib.Path) -> None:
    """Durations are kept by the microsecond they round to: calls of many lengths (ties at
    500 ns, lengths that share a microsecond, a call that ends before it starts, hours) are
    written as `printing` writes them."""
    lengths = [0, 1, 499, 500, 501, 999, 1000, 1499, 1500, 1501, 2500, 3500, 123_456_500, 999_999_500, 7_000_000_499,
               10**15 + 500, 10**15 + 1, 3 * 10**15]
    lengths += [random.Random(7).randrange(10**12) for _ in range(200)] + [500 + 1000 * k for k in range(50)]
    b = TraceBuilder()
    t = 0
    for i, ns in enumerate(lengths * 2):  # twice: the second time from what was kept
        cid = b.enter("f", args=f"i={i}", t=t)
        b.leave(cid, "None", t=t + ns)
        t += ns + 3
    for back in (300, 1200):  # a clock that went back: "-0.000000s" (not the kept "0.000000s"), "-0.000001s"
        cid = b.enter("f", args=f"back={back}", t=t)
        b.leave(cid, "None", t=t - back)
    path = tmp_path / "d.ftr"
    b.save(path)
    text = streamed_text(path, None, None)
    assert "[-0.000000s]" in text and "[-0.000001s]" in text
    assert text == loaded_text(path, None, None)


def test_print_holds_a_generator_sibling_back_until_it_ends(tmp_path: pathlib.Path) -> None:
    # seed 5 has a generator resumed after later siblings started: id order is not tree order
    path = tmp_path / "s.ftr"
    random_session(path, 5, steps=250, threads=2)
    trace = load(path)
    order = [c.id for c, _d in trace.walk()]
    assert order != sorted(order)
    assert streamed_text(path, None, None) == loaded_text(path, None, None)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("held, cursors", [(0, 64), (3, 64), (0, 2)])
def test_print_writes_on_past_a_held_up_call_into_files(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                                                        seed: int, held: int, cursors: int) -> None:
    """Past HELD_NODES waiting calls, the lines after a call that has not ended go to a
    temporary file (a cursor of their own, copied out when that call's subtree is written):
    with no calls allowed to wait, a few, or cursors running out, the same text."""
    import flowtrace.stream_print as stream_print

    path = tmp_path / "s.ftr"
    random_session(path, seed, steps=250, threads=1 + seed % 3, ending=ENDINGS[seed % 3])
    expected = {(d, t): loaded_text(path, d, t) for d in (None, 0, 2) for t in (None, 1)}
    monkeypatch.setattr(stream_print, "HELD_NODES", held)
    monkeypatch.setattr(stream_print, "_MAX_CURSORS", cursors)
    splits = []
    split = stream_print._Section._split
    monkeypatch.setattr(stream_print._Section, "_split", lambda sec, cur: splits.append(split(sec, cur)) or splits[-1])
    for (max_depth, thread), text in expected.items():
        assert streamed_text(path, max_depth, thread) == text
    if seed == 5:  # (a generator resumed after later siblings started)
        assert any(s is not None for s in splits)


def test_print_of_a_generator_suspended_over_many_calls_keeps_few(tmp_path: pathlib.Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator left suspended while its caller makes 20,000 calls (in batches of 500; each
    call's line waits for the generator's subtree): with HELD_NODES at 1,000, about that many
    wait in memory at most, not all of them, and the text is the loaded tree's."""
    import flowtrace.stream_print as stream_print

    b = TraceBuilder()
    main = b.enter("main")
    gen = b.enter("gen", kind="generator")
    b.enter("inner")
    b.leave(gen + 1, "1")
    b.suspend(gen, "1")
    for i in range(20_000):
        b.leave(b.enter("f", args=f"i={i}"), "None")
        if i % 500 == 499:
            b.flush()
    b.resume(gen)
    b.leave(gen, "None")
    b.leave(main, "None")
    path = tmp_path / "g.ftr"
    b.save(path)
    held = []
    flush = stream_print._Section.flush

    def flush_and_count(sec: stream_print._Section) -> None:
        flush(sec)
        held.append(sec.held)

    monkeypatch.setattr(stream_print, "HELD_NODES", 1000)
    monkeypatch.setattr(stream_print._Section, "flush", flush_and_count)
    text = streamed_text(path, None, None)
    assert text == loaded_text(path, None, None)
    assert text.count("\n") == 20_000 + 5  # main and gen open and close, inner is one line; the calls
    assert max(held) <= 1000 + 500 + 3 and held[-1] == 0


def test_survey_agrees_with_load(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.ftr"
    for seed, ending in enumerate(ENDINGS):
        random_session(path, seed, ending=ending)
        trace, info = load(path), survey(path)
        assert (info.n_calls, info.status, info.problem, info.t_end_ns, info.describe()) == (
            len(trace.calls), trace.status, trace.problem, trace.t_end_ns, trace.describe())
        assert info.unfinished == [c.id for c in trace.calls if c.end == "unfinished" and c.stopped_ns is None]


def test_survey_stops_where_load_stops(tmp_path: pathlib.Path) -> None:
    data = bytearray(sample_bytes())
    data[-30] ^= 0xFF  # a corrupt ENDS chunk
    path = tmp_path / "d.ftr"
    path.write_bytes(bytes(data))
    trace, info = load(path), survey(path)
    assert (info.status, info.problem, info.n_calls) == (trace.status, trace.problem, len(trace.calls))


def test_texts_reads_an_old_chunk_again(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.ftr"
    random_session(path, 3, steps=400)
    info = survey(path)
    assert len(info.strs_index) > 3
    texts = Texts(info, keep=1)
    every = [texts.get(i) for i in range(1, info.n_strings + 1)]
    again = [texts.get(i) for i in range(info.n_strings, 0, -1)]  # each older chunk read again
    texts.close()
    assert every == again[::-1] and texts.get(0) is None


@pytest.mark.parametrize("seed", range(12))
def test_exports_equal_the_loaded_ones(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(ordered, "WINDOW_BITS", 3)  # many windows: rows cross them often
    path = tmp_path / "s.ftr"
    random_session(path, seed, steps=250, threads=1 + seed % 3, ending=ENDINGS[seed % 3])
    trace = load(path)
    for name, write in FORMATS.items():
        want, got = io.StringIO(), io.StringIO()
        write(trace, want, trace.calls)
        info = survey(path)
        write(info, got, ordered.ordered_calls(info))
        assert got.getvalue() == want.getvalue(), name


def _flowtrace(*args: object, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowtrace", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_print_without_arguments_recorded(tmp_path: pathlib.Path) -> None:
    (tmp_path / "sq.py").write_text("class Square:\n    def __init__(self, n):\n        self.n = n\n\nSquare(3)\n")
    assert _flowtrace("run", "--no-args", "-o", "t.ftr", "sq.py", cwd=tmp_path).returncode == 0
    proc = _flowtrace("print", "t.ftr", cwd=tmp_path)
    assert proc.returncode == 0
    assert [line.split(" [")[0] for line in proc.stdout.splitlines()] == [
        "→ <module> sq.py", "  → class Square", "  → Square.__init__(…)", "← <module> sq.py"]
    assert proc.stderr == ("flowtrace: note: t.ftr: arguments and results were not recorded (--no-args): "
                           "shown as (…)\n")


def test_print_of_a_session_without_calls(tmp_path: pathlib.Path) -> None:
    (tmp_path / "p.py").write_text("x = 1\n")
    assert _flowtrace("run", "--exclude", "*/p.py", "-o", "t.ftr", "p.py", cwd=tmp_path).returncode == 0
    proc = _flowtrace("print", "t.ftr", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == ""
    assert proc.stderr == ("flowtrace: note: t.ftr: no calls recorded (recorded with --exclude */p.py: "
                           "did they leave out every call?)\n")


def test_print_and_export_of_a_sample_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sample.ftr"
    write_sample(path)
    assert streamed_text(path, None, None) == loaded_text(path, None, None)
    assert streamed_text(path, 1, 2) == loaded_text(path, 1, 2)


@pytest.mark.parametrize("blobs", [[b"a", b"", b"None", b"x='y'"], ["é", "", "日本", "a"], [b"ok", b"\xff\xfe", b"\xe6\x97", b"\xa5"]])
def test_strings_texts_equal_text_by_text(blobs: list) -> None:
    """`Strings.texts()` (a chunk decoded in one go) gives what `text()` gives for each id,
    whatever the bytes: ASCII, UTF-8, and bytes that are not UTF-8 (a character cut in two)."""
    from flowtrace.ftr import format as F

    raw = [b if isinstance(b, bytes) else b.encode() for b in blobs]
    strings = F.decode_strings(F._strings_payload(5, raw))
    assert strings.texts() == [strings.text(5 + i) for i in range(len(raw))]
