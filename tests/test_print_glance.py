"""`flowtrace print` checks the file in the pass that prints it (`scan.glance` + `CheckedPass`)
instead of surveying it first: its first lines come before the file is read to its end, and
what it prints -- and what it says of the session afterwards -- is what the surveyed path
(`print_session(survey(path))`) gives, on sessions cut short, still running, stopped with calls
running, damaged (a bad CRC, a chunk that fails a check before or after what the first lines
depend on), with threads renamed late."""

from __future__ import annotations

import io
import json
import pathlib
import zlib

import pytest
from trace_builder import TraceBuilder, random_session

from flowtrace.ftr import format as F
from flowtrace.ftr import scan
from flowtrace.ftr.scan import glance, survey
from flowtrace.stream_print import print_session

ENDINGS = ("finished", "killed", "stopped")
INFO_FIELDS = ("n_calls", "n_strings", "status", "problem", "damage_offset", "end_offset", "unfinished",
               "root_threads", "late_parents", "functions", "threads", "tasks", "strs_index", "last_ns", "end")


def split_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, payload decompressed) of each whole chunk after the file header; the rest is
    dropped."""
    out, pos = [], F.FILE_HEADER_SIZE
    while pos + F.CHUNK_HEADER_SIZE <= len(data):
        kind, flags, length = F.CHUNK_HEADER.unpack_from(data, pos)
        stored = data[pos + F.CHUNK_HEADER_SIZE : pos + F.CHUNK_HEADER_SIZE + length]
        if pos + F.CHUNK_HEADER_SIZE + length + F.CHUNK_TRAILER_SIZE > len(data):
            break
        out.append((kind, zlib.decompress(stored) if flags & F.FLAG_ZLIB else stored))
        pos += F.CHUNK_HEADER_SIZE + length + F.CHUNK_TRAILER_SIZE
    return out


def join_chunks(data: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    return data[: F.FILE_HEADER_SIZE] + b"".join(F.frame_chunk(kind, payload) for kind, payload in chunks)


def c_session(path: pathlib.Path, seed: int, threads: int, ending: str) -> list[tuple[bytes, bytes]]:
    """A random session as the C recorder's META names it (the files print streams at once);
    returns its chunks."""
    random_session(path, seed, steps=250, threads=threads, ending=ending)
    data = path.read_bytes()
    chunks = split_chunks(data)
    meta = json.loads(chunks[0][1])
    meta["recorder"] = "c"
    chunks[0] = (F.META, F.json_payload(meta))
    tail = b"" if ending == "finished" else data[len(join_chunks(data, split_chunks(data))) :]
    path.write_bytes(join_chunks(data, chunks) + tail)
    return chunks


def printed(session: object, max_depth: int | None = None, color: bool = False) -> tuple[str, scan.SessionInfo]:
    out = io.StringIO()
    info = print_session(session, out, color=color, max_depth=max_depth, thread=None, cwd="/w")  # type: ignore[arg-type]
    return out.getvalue(), info


def assert_same(path: pathlib.Path, streamed_expected: bool = True) -> None:
    """The glanced print equals the surveyed one: text and what it says of the session."""
    look = glance(path)
    assert look.streamable == streamed_expected
    for max_depth, color in ((None, False), (1, False), (None, True)):
        want_text, want = printed(survey(path), max_depth, color)
        got_text, got = printed(glance(path), max_depth, color)
        assert got_text == want_text
        assert [getattr(got, f) for f in INFO_FIELDS] == [getattr(want, f) for f in INFO_FIELDS]
        assert got.describe() == want.describe()


@pytest.mark.parametrize("seed", range(12))
def test_glanced_print_equals_the_surveyed_one(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    c_session(path, seed, 1 + seed % 3, ENDINGS[seed % 3])
    assert_same(path)


def print_counting_checks(path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int | None]:
    """The glanced print's text, and how many chunks the pass had checked at its first write."""
    checked: list[int] = []
    real_apply = scan._Checker.apply

    def apply(self: scan._Checker, chunk: object) -> object:
        checked.append(1)
        return real_apply(self, chunk)  # type: ignore[arg-type]

    monkeypatch.setattr(scan._Checker, "apply", apply)

    class Out(io.StringIO):
        at_first_write: int | None = None

        def write(self, text: str) -> int:
            if self.at_first_write is None:
                self.at_first_write = len(checked)
            return super().write(text)

    out = Out()
    print_session(glance(path), out, color=False, max_depth=None, thread=None, cwd="/w")
    return out.getvalue(), out.at_first_write


def test_first_lines_come_before_the_file_is_read(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass writes lines while it checks the file: most of it is unchecked at the first
    write (the surveyed path checks all of it before printing anything)."""
    path = tmp_path / "s.ftr"
    chunks = c_session(path, 5, 1, "finished")
    _text, at_first_write = print_counting_checks(path, monkeypatch)
    assert at_first_write is not None and at_first_write < len(chunks) // 2


@pytest.mark.parametrize("ending", ["finished", "killed"])
def test_a_file_cut_anywhere(tmp_path: pathlib.Path, ending: str) -> None:
    """Cut short (a crash, or a session still being written): calls still open are unfinished."""
    path = tmp_path / "s.ftr"
    c_session(path, 7, 2, ending)
    data = path.read_bytes()
    for cut in range(F.FILE_HEADER_SIZE + 300, len(data), max(1, len(data) // 23)):
        path.write_bytes(data[:cut])
        assert_same(path)


def test_a_corrupt_chunk_anywhere(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.ftr"
    c_session(path, 8, 3, "finished")
    data = path.read_bytes()
    for at in range(F.FILE_HEADER_SIZE + 400, len(data), max(1, len(data) // 19)):
        bad = bytearray(data)
        bad[at] ^= 0x55
        path.write_bytes(bytes(bad))
        assert_same(path)


@pytest.mark.parametrize("threads", [1, 3])
def test_a_chunk_that_fails_a_check_anywhere(tmp_path: pathlib.Path, threads: int) -> None:
    """A CALL chunk whose first id is wrong (well framed, so only a check finds it), anywhere
    (before a second thread that starts late: test_a_check_failing_before_a_late_second_thread)."""
    path = tmp_path / "s.ftr"
    chunks = c_session(path, 9, threads, "finished")
    data = path.read_bytes()
    calls = [i for i, (kind, _p) in enumerate(chunks) if kind == F.CALL]
    assert len(calls) > 4
    for i in calls:
        bad = list(chunks)
        payload = bytearray(bad[i][1])
        payload[0] ^= 0x01  # (the u64 base)
        bad[i] = (F.CALL, bytes(payload))
        path.write_bytes(join_chunks(data, bad))
        assert_same(path)


def late_thread_session(path: pathlib.Path) -> list[tuple[bytes, bytes]]:
    """The main thread's calls over ten batches, then a helper thread's first root call (a test
    suite starting a worker thread late); returns the chunks (META names the C recorder)."""
    b = TraceBuilder(meta={"recorder": "c"})
    main = b.enter("main")
    for batch in range(10):
        for k in range(5):
            b.leave(b.enter("step", args=f"k={batch * 5 + k}"), result="None")
        b.flush()
    worker = b.enter("work", thread=2)
    b.leave(worker, result="1")
    b.leave(main, result="None")
    path.write_bytes(b.data())
    return split_chunks(path.read_bytes())


def test_first_lines_come_before_a_late_second_thread(tmp_path: pathlib.Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread headings are the walk's: the lines do not wait for the chunk where a second
    thread first has a root call (rich's test suite: 20 s of nothing before `flowtrace print`'s
    first lines, 60 % of a 150 MB file held on disk meanwhile)."""
    path = tmp_path / "s.ftr"
    chunks = late_thread_session(path)
    second = max(i for i, (kind, p) in enumerate(chunks) if kind == F.CALL)
    text, at_first_write = print_counting_checks(path, monkeypatch)
    assert at_first_write is not None and at_first_write < second // 2
    assert text.startswith("── thread MainThread ──\n→ main(…)\n  → step(k=0) [")
    assert text == printed(survey(path))[0]
    assert_same(path)


def test_a_check_failing_before_a_late_second_thread(tmp_path: pathlib.Path) -> None:
    """A well-framed chunk that fails a check before the second thread's first root call (a
    writer's bug): the survey stops there and knows one thread, but the lines already printed
    under the walk's headings keep them -- the rest is the survey's text."""
    path = tmp_path / "s.ftr"
    chunks = late_thread_session(path)
    data = path.read_bytes()
    calls = [i for i, (kind, _p) in enumerate(chunks) if kind == F.CALL]
    bad = list(chunks)
    payload = bytearray(bad[calls[4]][1])
    payload[0] ^= 0x01  # (the u64 base)
    bad[calls[4]] = (F.CALL, bytes(payload))
    path.write_bytes(join_chunks(data, bad))
    want_text, want = printed(survey(path))
    got_text, got = printed(glance(path))
    assert want.root_threads == [1] and "thread" not in want_text
    assert got_text == "── thread MainThread ──\n" + want_text
    assert [getattr(got, f) for f in INFO_FIELDS] == [getattr(want, f) for f in INFO_FIELDS]


def test_a_thread_renamed_late(tmp_path: pathlib.Path) -> None:
    """A heading names a thread as the whole file leaves it; a check that fails before the
    renaming chunk keeps the earlier name."""
    path = tmp_path / "s.ftr"
    chunks = c_session(path, 10, 3, "finished")
    data = path.read_bytes()
    threads = [d for kind, p in chunks if kind == F.THRD for d in json.loads(p)]
    renamed = [dict(d, name=f"renamed-{d['id']}") for d in threads]
    ends = len(chunks) - 1
    late = chunks[:ends] + [(F.THRD, F.json_payload(renamed))] + chunks[ends:]
    path.write_bytes(join_chunks(data, late))
    assert_same(path)
    assert "renamed-1" in printed(glance(path))[0]
    calls = [i for i, (kind, _p) in enumerate(late) if kind == F.CALL]
    bad = list(late)
    payload = bytearray(bad[calls[-1]][1])
    payload[0] ^= 0x01
    bad[calls[-1]] = (F.CALL, bytes(payload))
    path.write_bytes(join_chunks(data, bad))
    assert_same(path)
    assert "renamed-1" not in printed(glance(path))[0]
    for variant in (late, bad):  # the exports that name threads
        path.write_bytes(join_chunks(data, variant))
        assert_same_exports(path, ("speedscope", "perfetto", "collapsed", "json", "chrome"))


def test_a_python_recorder_file_is_surveyed_first(tmp_path: pathlib.Path) -> None:
    """Its calls may come after their parent's end (late_children.py): a survey finds them."""
    path = tmp_path / "s.ftr"
    random_session(path, 11, steps=250, threads=2)
    assert_same(path, streamed_expected=False)


# --- the profile passes (stats, the pstats and collapsed exports) check as they go too ---------

def assert_same_profiles(path: pathlib.Path) -> None:
    from flowtrace.export import EXPORTS
    from flowtrace.profile import profile

    for kw in ({}, {"edges": True}, {"paths": True}):
        want, got = profile(survey(path), **kw), profile(glance(path), **kw)  # type: ignore[arg-type]
        assert (got.functions, got.edges, got.paths, got.path_self, got.path_thread, got.total) == (
            want.functions, want.edges, want.paths, want.path_self, want.path_thread, want.total)
        assert got.session is not None and want.session is not None
        assert [getattr(got.session, f) for f in INFO_FIELDS] == [getattr(want.session, f) for f in INFO_FIELDS]
    for fmt in ("pstats", "collapsed"):
        outs = []
        for session in (survey(path), glance(path)):
            out = io.BytesIO() if EXPORTS[fmt].binary else io.StringIO()
            EXPORTS[fmt].write(session, out)
            outs.append(out.getvalue())
        assert outs[1] == outs[0], fmt


@pytest.mark.parametrize("seed", range(6))
def test_glanced_profiles_equal_the_surveyed_ones(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    c_session(path, seed, 1 + seed % 3, ENDINGS[seed % 3])
    assert_same_profiles(path)


def test_glanced_profiles_of_damaged_files(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.ftr"
    chunks = c_session(path, 12, 2, "finished")
    data = path.read_bytes()
    for cut in range(F.FILE_HEADER_SIZE + 300, len(data), max(1, len(data) // 7)):
        path.write_bytes(data[:cut])
        assert_same_profiles(path)
    calls = [i for i, (kind, _p) in enumerate(chunks) if kind == F.CALL]
    for i in calls[1::3]:
        bad = list(chunks)
        payload = bytearray(bad[i][1])
        payload[0] ^= 0x01
        bad[i] = (F.CALL, bytes(payload))
        path.write_bytes(join_chunks(data, bad))
        assert_same_profiles(path)


@pytest.mark.parametrize("seed", range(6))
def test_glanced_exports_equal_the_surveyed_ones(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                                                  seed: int) -> None:
    """json and chrome: the pass that sorts ends and marks checks the file; calls that never
    ended keep their parents at hand (read again after that pass). speedscope, perfetto: the
    pass that reads the events; perfetto's tracks wait for the last THRD/TASK chunk."""
    from flowtrace.ftr import ordered

    monkeypatch.setattr(ordered, "WINDOW_BITS", 3)
    path = tmp_path / "s.ftr"
    chunks = c_session(path, seed, 1 + seed % 3, ENDINGS[seed % 3])
    data = path.read_bytes()
    variants = [data, data[: len(data) * 2 // 3]]
    calls = [i for i, (kind, _p) in enumerate(chunks) if kind == F.CALL]
    bad = list(chunks)
    payload = bytearray(bad[calls[len(calls) // 2]][1])
    payload[0] ^= 0x01
    bad[calls[len(calls) // 2]] = (F.CALL, bytes(payload))
    variants.append(join_chunks(data, bad))
    for variant in variants:
        path.write_bytes(variant)
        assert_same_exports(path, ("json", "chrome", "speedscope", "perfetto"))


def assert_same_exports(path: pathlib.Path, formats: tuple[str, ...]) -> None:
    from flowtrace.export import EXPORTS

    for fmt in formats:
        want, got = (io.BytesIO(), io.BytesIO()) if EXPORTS[fmt].binary else (io.StringIO(), io.StringIO())
        EXPORTS[fmt].write(survey(path), want)
        look = glance(path)
        EXPORTS[fmt].write(look, got)
        assert got.getvalue() == want.getvalue(), fmt
        assert look.survey is not None and look.survey.unfinished == survey(path).unfinished
