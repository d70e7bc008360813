"""The newest calls read from the end of a file (model/newest.py): what the live view shows while
its reads in file order are far behind a busy program -- a window holding the same calls, with
the same columns and texts, as the window of a session read in order to the same point; the
chunks found by their headers alone (ChunkReader.spans), a chunk still being written left out;
and the pipeline's first screen made that way."""

from __future__ import annotations

import os
import threading

import pytest

from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.model import build_index
from flowtrace_tui.model import pipeline as pipeline_module
from flowtrace_tui.model import source as source_module
from flowtrace_tui.model.loader import FeedResult
from flowtrace_tui.model.newest import NewestReader
from flowtrace_tui.model.pipeline import Finished, Pipeline, Snapshot
from flowtrace_tui.model.source import StepResult, TraceSource
from flowtrace_tui.model.update_policy import UpdatePolicy
from flowtrace_tui.model.window import READING, window_data

from trace_builder import Feeder, TraceBuilder, chunk_offsets, meta_for, random_session

from .apps import screen_lines, sync, until


def read_in_order(path: str, chunks: int | None = None, upto: int | None = None) -> TraceSource:
    """The session at `path` with its first `chunks` chunks (or those before offset `upto`)
    read in order, and nothing after them."""
    src = TraceSource(ChunkReader(path, read_size=1 << 20), os.path.getsize(path))
    if upto is None:
        with open(path, "rb") as fh:
            offsets = [at for _kind, at, _end in chunk_offsets(fh.read())]
        upto = offsets[chunks] if chunks < len(offsets) else os.path.getsize(path)
    src.data.feed([c for c in src.reader.poll() if c.offset < upto])
    assert src.reader.pending_bytes == 0
    src.reader.offset = upto  # (the reads in order stopped there: what comes after is behind)
    return src


def whole(path: str) -> TraceSource:
    src = TraceSource(ChunkReader(path), os.path.getsize(path))
    while src.step().more:
        pass
    return src


CALL_COLUMNS = ("func", "thread", "t0", "t1", "how", "flag", "task", "depth")  # (and parent, root, val)


def same_window(got, want) -> None:
    """Two windows hold the same calls, columns and texts, but what `got` cannot know of the
    ancestors (newest.py): an end or suspensions in the chunks not read (it shows them open,
    with the suspensions it read)."""
    wg, ww = got.window, want.window
    assert (wg.first, wg.through, wg.n_ancestors) == (ww.first, ww.through, ww.n_ancestors)
    assert wg.ids.tolist() == ww.ids.tolist()
    ended = got.col("how") != 0
    ended[wg.n_ancestors + 1 :] = True
    for name in CALL_COLUMNS + ("parent", "root", "val"):
        mine, theirs = got.col(name), want.col(name)
        if name in ("t1", "how", "val"):
            mine, theirs = mine[ended], theirs[ended]
        assert mine.tolist() == theirs.tolist(), name
    newest = slice(wg.n_ancestors + 1, None)
    assert got.col("nsusp")[newest].tolist() == want.col("nsusp")[newest].tolist()
    assert (got.col("nsusp") <= want.col("nsusp")).all()
    for name, rows in (("args", slice(None)), ("val", ended)):
        assert [got.strings.text(int(s)) for s in got.col(name)[rows]] == \
            [want.strings.text(int(s)) for s in want.col(name)[rows]]
    assert [got.func_name(int(f)) for f in got.col("func")] == [want.func_name(int(f)) for f in want.col("func")]
    assert {t: got.thread_name(t) for t in set(got.col("thread").tolist())} == \
        {t: want.thread_name(t) for t in set(want.col("thread").tolist())}
    mine = got.mark_col("call") > wg.n_ancestors  # (the newest calls' MARK rows: all of them)
    theirs = want.mark_col("call") > ww.n_ancestors
    for name in ("call", "t", "kind", "ref", "other", "n", "run"):
        assert got.mark_col(name)[mine].tolist() == want.mark_col(name)[theirs].tolist(), name


def far_behind(tmp_path, monkeypatch) -> tuple[TraceBuilder, int, str, Feeder]:
    """A live session of `main` and 2000 `work(i=N)` calls in 40 flushes (builder, main's call,
    path, feeder), that the explorer opens far behind: its reads take ~1 KB at the open, and
    any byte behind is far."""
    monkeypatch.setattr(pipeline_module, "NEWEST_BEHIND_BYTES", 1)
    monkeypatch.setattr(source_module, "FIRST_STEP_READ_SIZE", 16)  # (open reads ~1 KB, not the file)
    b = TraceBuilder(meta=meta_for(os.getpid()))
    m = b.enter("main")
    for k in range(40):
        for i in range(50):
            b.leave(b.enter("work", args=f"i={k * 50 + i}"), "1")
        b.flush()
    path = str(tmp_path / "busy.ftr")
    return b, m, path, Feeder(b, path)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("count", [1, 7, 60])
def test_the_newest_calls_read_from_the_end_are_those_read_in_order(tmp_path, seed, count):
    """GIVEN a session of several threads with generators, its first chunks read in order and
    the rest not, WHEN its newest `count` calls are read from the file's end, THEN the window
    holds the same calls, ancestors, columns, MARK rows and texts as the window of the session
    read in order to its end; at every point the reads in order may have stopped."""
    path = str(tmp_path / "t.ftr")
    random_session(path, seed, steps=300, threads=3, ending="killed")
    full = whole(path)
    want = window_data(full.data, count)
    with open(path, "rb") as fh:
        n_chunks = len(chunk_offsets(fh.read()))
    for read in range(1, n_chunks):
        src = read_in_order(path, read)
        got = NewestReader(src.reader).window(src.data, count)
        if src.data.calls_read == full.data.calls_read:
            assert got is None  # (nothing newer past the reads)
            continue
        assert got is not None and got.window.why == READING
        # whole chunks: the newest `count` calls or more (or all past the reads), as
        # window_data takes them from the session read in order
        mine = window_data(full.data, got.window.through - got.window.first + 1)
        assert got.window.through == full.data.calls_read
        same_window(got, mine)
        assert got.window.first <= max(want.window.first, src.data.calls_read + 1)
        build_index(got)  # (it indexes)


def test_the_reads_take_none_of_what_the_newest_window_read(tmp_path):
    """GIVEN the newest calls read from the end, WHEN the reads in order go on, THEN they read
    every chunk as before (the window's reads change nothing of theirs)."""
    path = str(tmp_path / "t.ftr")
    random_session(path, 3, steps=300, threads=2, ending="killed")
    src = read_in_order(path, 2)
    newest = NewestReader(src.reader)
    assert newest.window(src.data, 5) is not None
    while src.step().more:
        pass
    full = whole(path)
    for name in CALL_COLUMNS + ("parent", "root", "nsusp", "args", "val"):
        assert src.data.col(name).tolist() == full.data.col(name).tolist()
    assert newest.behind() == 0 and newest.window(src.data, 5) is None


def test_chunk_spans_stop_at_a_chunk_still_being_written(tmp_path):
    """GIVEN a file whose last chunk is cut (being written), WHEN its chunks are walked by their
    headers, THEN every whole chunk is found where it is and the cut one is left out; a header
    that cannot be a chunk's stops the walk there."""
    b = TraceBuilder()
    m = b.enter("main")
    for i in range(5):
        b.leave(b.enter("work", args=f"i={i}"))
        b.flush()
    data = b.data(finish=False)
    want = chunk_offsets(data)
    path = tmp_path / "t.ftr"
    path.write_bytes(data[:-3])
    with ChunkReader(path) as reader:
        spans = reader.spans(F.FILE_HEADER_SIZE)
        assert [(s.kind, s.offset, s.end) for s in spans] == [tuple(w) for w in want[:-1]]
        assert reader.spans(spans[2].offset) == spans[2:]
    path.write_bytes(data[: want[3][1]] + b"\0" * 40)
    with ChunkReader(path) as reader:
        assert len(reader.spans(F.FILE_HEADER_SIZE)) == 3
    assert m == 1


def test_a_call_of_the_chunks_not_read_is_found_where_it_is(tmp_path):
    """GIVEN a session whose newest calls descend from a call in a chunk not read in order
    (started after the reads stopped, still running), WHEN the newest calls are read from the
    end, THEN that call is in the window as their ancestor, with its depth and texts."""
    b = TraceBuilder()
    m = b.enter("main")
    b.leave(b.enter("setup"))
    b.flush()
    read = len(b.out.getvalue())
    outer = b.enter("serve", args="port=80")
    b.flush()
    for i in range(30):
        b.leave(b.enter("handle", args=f"r={i}"), f"ok{i}")
        if i % 10 == 9:
            b.flush()
    path = str(tmp_path / "t.ftr")
    with open(path, "wb") as fh:
        fh.write(b.data(finish=False))
    src = read_in_order(path, upto=read)
    assert src.data.calls_read == 2
    got = NewestReader(src.reader).window(src.data, 5)
    win = got.window
    assert win.ids[1 : win.n_ancestors + 1].tolist() == [m, outer]
    assert got.strings.text(int(got.col("args")[2])) == "port=80"
    assert got.col("depth")[1:4].tolist() == [0, 1, 2]
    assert [got.strings.text(int(v)) for v in got.col("val")[3:]] == [f"ok{i}" for i in range(25, 30)]
    same_window(got, window_data(whole(path).data, win.through - win.first + 1))


def test_the_first_screen_of_a_file_far_behind_is_its_newest_calls(tmp_path, monkeypatch):
    """GIVEN a live session whose file holds far more than the explorer read at its start,
    WHEN the pipeline follows it, THEN its first snapshot is a window of the newest calls read
    from the file's end (before the reads in order have taken them), and once the reads have
    caught up the windows and index are made of what they read, holding the same newest call."""
    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    src = TraceSource.open(path)
    policy = UpdatePolicy(poll_interval=0.01, live_min_update=0, window_calls=20)
    p = Pipeline(src, poll_interval=0.01, policy=policy)
    snaps: list[Snapshot] = []
    first_read: list[int] = []
    stop = threading.Event()

    def publish(e):
        if isinstance(e, Snapshot):
            if not snaps:
                first_read.append(src.data.calls_read)
            snaps.append(e)
            if e.final:
                stop.set()

    loop = threading.Thread(target=p.run, args=(stop.is_set, publish))
    loop.start()
    loop.join(60)
    stop.set()
    assert not loop.is_alive()
    first = snaps[0].index.data
    assert first.window is not None and first.window.why == READING
    assert first.window.through == 2001 and first_read[0] < 2001
    assert first.window.ids[1] == m and first.strings.text(int(first.col("args")[-1])) == "i=1999"
    last = snaps[-1].index.data
    assert (last.window.through if last.window is not None else last.n) == 2001
    assert last.window is None or last.window.why != READING


class HeldSource(TraceSource):
    """A session whose reads in order take nothing (as reads that never get the time would)
    once `held` is set, until the test opens `gate`: reads that stay far behind the file for
    exactly as long as the test needs."""

    held = False

    def step(self):
        if self.held and not self.gate.wait(0.005):
            first = self.data.calls_read + 1
            return StepResult(FeedResult(first, first - 1, 0, 0), 0, True)
        return super().step()


def held_app(path: str) -> tuple[HeldSource, FlowtraceApp]:
    """The explorer following `path` with its reads held until the test opens `src.gate`
    (HeldSource), windows of the newest 20 calls, a poll every 0.02 s."""
    src = HeldSource.open(path)
    src.gate, src.held = threading.Event(), True
    policy = UpdatePolicy(poll_interval=0.02, live_min_update=0, window_calls=20)
    return src, FlowtraceApp(src, poll_interval=0.02, pipeline=Pipeline(src, poll_interval=0.02, policy=policy))


@sync
async def test_the_explorer_shows_the_newest_calls_while_its_reads_are_far_behind(tmp_path, monkeypatch):
    """GIVEN the explorer following a live session whose file holds far more than it has read
    (what a busy program wrote while the explorer started), THEN its first screen shows the
    newest call selected and the status line says how many earlier calls are still being read;
    WHEN the program makes more calls while the reads are held, THEN the newest of them come on
    screen; WHEN the reads catch up, the screen shows what they read, and says nothing of
    reading."""
    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    src, app = held_app(path)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.index is not None and app.tree.cursor_pos >= 0)
            win = app.index.data.window
            assert win is not None and win.why == READING and win.through == 2001
            assert app.index.node(app.tree.cursor_pos) == app.index.n  # the newest call, selected
            assert src.data.calls_read < 2001
            await until(pilot, lambda: "i=1999" in "\n".join(screen_lines(app)))
            status = " | ".join(app.status_parts())
            assert f"newest 20 calls shown (reading {win.left_out:,} earlier)" in status, status
            feed.step_calls(["later"])  # the program goes on: its newest call comes from the file's end
            await until(pilot, lambda: app.index.data.window.through == 2002)
            await until(pilot, lambda: app.index.node(app.tree.cursor_pos) == app.index.n)
            assert "later" in "\n".join(screen_lines(app)) and src.data.calls_read < 2001
            src.gate.set()
            await until(pilot, lambda: src.data.calls_read == 2002 and (
                app.index.data.window is None or app.index.data.window.why != READING), timeout=30)
            await until(pilot, lambda: "reading" not in " | ".join(app.status_parts()))
            await until(pilot, lambda: "later" in "\n".join(screen_lines(app)))
            b.leave(m)
            b.data(finish=True)
            feed.sync()
            await until(pilot, lambda: app.source.data.finished and not app.loading, timeout=30)
            await app.workers.wait_for_complete()
    finally:
        src.gate.set()


def test_a_file_that_had_ended_loads_from_its_start(tmp_path, monkeypatch):
    """GIVEN a finished session (its ENDS chunk written) opened to be followed, far behind, WHEN
    the pipeline reads it, THEN it loads as a file read once does: no window read from its end,
    its usual steps, the whole index."""
    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    b.leave(m)
    b.data(finish=True)
    feed.sync()
    src = TraceSource.open(path)
    p = Pipeline(src, poll_interval=0.01, policy=UpdatePolicy(poll_interval=0.01, live_min_update=0, window_calls=20))
    snaps: list[Snapshot] = []
    p.run(lambda: False, lambda e: isinstance(e, Snapshot) and snaps.append(e))
    assert all(s.index.data.window is None for s in snaps) and src.step_bytes is None
    assert snaps[-1].final and snaps[-1].index.n == 2001


@sync
async def test_a_window_held_while_not_following_never_comes_back_over_the_whole_session(tmp_path, monkeypatch):
    """GIVEN the explorer following a live session far behind, its newest calls read from the
    file's end on screen, WHEN the user moves the cursor (no following: the newer windows are
    held, not shown), the program makes its last calls, the reads catch up (an index of the
    whole session, published) and G (follow again) is handled while that index still waits in
    the app's queue, and then the session ends (its end chunk, no call after those), THEN the
    screen ends on the whole session, saying nothing of reading -- not on the held window G
    asked for: posted behind the index, it was shown over it, and as nothing new came after it
    the screen stayed on "newest 20 calls shown (reading N earlier)" for good, the loader done."""
    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    src, app = held_app(path)
    post, stashed, lock, released = app._post_event, [], threading.Lock(), threading.Event()

    def post_event(event):  # from the loader's first index of the whole session on, its events wait
        with lock:
            if not released.is_set() and (stashed or isinstance(event, Snapshot) and event.index.data.window is None):
                stashed.append(event)
                return
        post(event)

    app._post_event = post_event
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.index is not None and app.tree.cursor_pos >= 0)
            assert app.index.data.window.why == READING
            await pilot.press("up")  # follow mode ends: windows are held from now on
            assert not app.live_view.follow.following
            feed.step_calls(["later"])
            await until(pilot, lambda: app.live_view.held is not None)
            b.leave(m)  # the program's last calls: none comes after
            b.flush()
            feed.sync()
            src.gate.set()
            await until(pilot, lambda: stashed, timeout=30)
            assert app.live_view.held.index.data.window.why == READING and not src.data.finished
            with lock:
                released.set()
                for event in stashed:
                    post(event)
            assert app.live_view.last_key()  # G's action, while the index waits in the app's queue
            b.data(finish=True)  # the session's end chunk
            feed.sync()
            await until(pilot, lambda: src.data.finished and not app.loading, timeout=30)
            await app.workers.wait_for_complete()
            await until(pilot, lambda: "finished" in screen_lines(app)[-2])  # (the status line's next tick)
            status = screen_lines(app)[-2]
            assert "finished" in status and "reading" not in status and "newest" not in status, status
            assert "later" in "\n".join(screen_lines(app))  # following: the newest call on screen
    finally:
        src.gate.set()


class Following:
    """A pipeline following `src` on a thread of its own (no screen): its snapshots in `snaps`;
    `wait(cond)` fails loudly (with what was read and shown) when `cond` does not come true."""

    def __init__(self, src: TraceSource) -> None:
        self.src, self.snaps, self.stop = src, [], threading.Event()
        policy = UpdatePolicy(poll_interval=0.01, live_min_update=0, window_calls=20)
        p = Pipeline(src, poll_interval=0.01, policy=policy)
        self.loop = threading.Thread(target=p.run, args=(self.stop.is_set, self._publish))
        self.loop.start()

    def _publish(self, event) -> None:
        if isinstance(event, Snapshot):
            self.snaps.append(event)

    def windows(self) -> list:
        return [s.index.data for s in self.snaps if s.index.data.window is not None]

    def wait(self, cond) -> None:
        for _ in range(6000):  # (a bound of ~30 s, so that a broken test cannot hang the suite)
            if cond():
                return
            self.stop.wait(0.005)
        raise AssertionError(f"condition not reached: {self.src.data.calls_read} calls read, windows through "
                             f"{[w.window.through for w in self.windows()][-3:]}")

    def end(self) -> None:
        self.stop.set()
        self.src.gate.set()
        self.loop.join(60)


def test_a_window_is_read_again_only_once_the_file_has_grown(tmp_path, monkeypatch):
    """GIVEN a live session far behind whose reads take nothing (held) and whose file does not
    grow, WHEN the pipeline goes on reading, THEN its window of the newest calls is made once,
    not every poll interval (the same calls again: after a busy program ended far ahead of the
    reads, each took CPU from the reads that were to catch up); WHEN the program writes more,
    THEN the next window holds it."""
    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    src = HeldSource.open(path)
    src.gate, src.held = threading.Event(), True
    steps = [0]
    step = src.step

    def counted():
        steps[0] += 1
        return step()

    src.step = counted
    run = Following(src)
    try:
        wait = run.wait
        snaps = run.snaps
        wait(lambda: snaps)
        seen = steps[0]
        wait(lambda: steps[0] >= seen + 40)  # 40 reads (held: nothing read, ~0.2 s of polls)
        assert len(snaps) == 1 and snaps[0].index.data.window.through == 2001
        feed.step_calls(["later"])
        wait(lambda: len(snaps) > 1)
        assert snaps[1].index.data.window.why == READING and snaps[1].index.data.window.through == 2002
    finally:
        run.end()


@pytest.mark.parametrize("count", [1, 30, 400])
def test_the_newest_calls_read_from_the_end_once_the_columns_are_full(tmp_path, monkeypatch, count):
    """GIVEN a followed session whose call columns are full (its newest calls in a tail that lets
    older ones go: tail.py) and whose reads in order stopped far behind the file, WHEN its newest
    `count` calls are read from the file's end, THEN the window holds the same calls, ancestors,
    columns and texts as the window of the session read whole (the reads' tail takes none of
    it): once a long session's columns were full the screen showed the reads' own newest calls,
    as old as the reads were behind."""
    from flowtrace_tui.model import loader
    from flowtrace_tui.model import tail as tail_module

    from .test_tail import long_loop

    monkeypatch.setattr(tail_module, "TAIL_ROWS", 1024)
    monkeypatch.setattr(loader, "TEXTS_EVERY", 2)
    b, _running = long_loop(outers=4, inner=900)
    path = str(tmp_path / "t.ftr")
    b.save(path, finish=False)
    full = whole(path)
    with open(path, "rb") as fh:
        offsets = [at for _kind, at, _end in chunk_offsets(fh.read())]
    for upto in (offsets[len(offsets) * 2 // 3], offsets[len(offsets) * 5 // 6]):
        src = TraceSource(ChunkReader(path, read_size=1 << 20))
        src.data.expect_calls(1500)
        for chunk in [c for c in src.reader.poll() if c.offset < upto]:  # (as followed: a chunk at a time)
            src.data.feed([chunk], reader=src.reader)
        src.reader.offset = upto
        assert src.data.tail is not None and src.data.tail.let_go > 0
        got = NewestReader(src.reader).window(src.data, count)
        assert got is not None and got.window.why == READING
        same_window(got, window_data(full.data, got.window.through - got.window.first + 1))
        build_index(got)


class HeldOnceFull(TraceSource):
    """A session whose reads in order take nothing once its call columns are full (tail.py),
    until the test opens `gate`."""

    def step(self):
        if self.data.tail is not None and not self.gate.wait(0.005):
            first = self.data.calls_read + 1
            return StepResult(FeedResult(first, first - 1, 0, 0), 0, True)
        return super().step()


def test_the_pipeline_shows_the_newest_calls_once_the_columns_are_full(tmp_path, monkeypatch):
    """GIVEN a followed session whose call columns filled (1,500 calls) while its reads were far
    behind the file, WHEN the program makes more calls while the reads are held, THEN the
    pipeline's windows are read from the file's end and hold them (the reads' own windows,
    shown before, held only calls as old as the reads were behind)."""
    from flowtrace_tui.model import tail as tail_module

    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    monkeypatch.setattr(tail_module, "TAIL_ROWS", 1024)
    monkeypatch.setattr(pipeline_module, "live_calls", lambda: 1500)
    monkeypatch.setattr(source_module, "GUESS_MAX_CALLS", 1000)  # (then sized for the 1,500)
    monkeypatch.setattr(pipeline_module, "NEWEST_STEP_BYTES", 64 * 64)  # (reads of ~4 KB a step)
    src = HeldOnceFull.open(path)
    src.gate = threading.Event()
    run = Following(src)
    try:
        wait = run.wait
        wait(lambda: src.data.tail is not None)
        assert src.data.calls_read < 2001
        feed.step_calls(["later"])
        wait(lambda: any(w.window.through == 2002 for w in run.windows()))
        win = next(w for w in run.windows() if w.window.through == 2002)
        assert win.window.why == READING and win.func_name(int(win.col("func")[-1])) == "later"
        assert win.window.ids[1] == m and src.data.calls_read < 2001
    finally:
        run.end()


@sync
async def test_the_last_window_is_shown_once_the_session_is_over_even_when_not_following(tmp_path, monkeypatch):
    """GIVEN the explorer following a live session far behind whose whole index cannot be had
    (its call columns fill: windows only), WHEN the user moves the cursor (windows held from then
    on) and the program ends, THEN the screen ends on the session's last window, not on the
    window read from the file's end before: held while not following, the last window never came
    and the screen said "finished ... newest 20 calls shown (reading N earlier)" for good."""
    from flowtrace_tui.model import tail as tail_module

    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    monkeypatch.setattr(tail_module, "TAIL_ROWS", 1024)
    monkeypatch.setattr(pipeline_module, "live_calls", lambda: 1500)
    monkeypatch.setattr(source_module, "GUESS_MAX_CALLS", 1000)
    src, app = held_app(path)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.index is not None and app.tree.cursor_pos >= 0)
            assert app.index.data.window.why == READING
            await pilot.press("up")
            assert not app.live_view.follow.following
            feed.step_calls(["later"])
            b.leave(m)
            b.data(finish=True)
            feed.sync()
            src.gate.set()
            await until(pilot, lambda: src.data.finished and not app.loading, timeout=30)
            await app.workers.wait_for_complete()
            await until(pilot, lambda: "finished" in screen_lines(app)[-2])
            status = screen_lines(app)[-2]
            assert "reading" not in status and "memory holds" in status, status
    finally:
        src.gate.set()


@sync
async def test_the_screen_never_goes_back_to_older_calls_as_the_reads_come_near_the_end(tmp_path, monkeypatch):
    """GIVEN the explorer following a live session far behind, its newest calls read from the
    file's end on screen, WHEN the reads in order come near the file's end (no longer far behind)
    and take the rest in small steps, THEN every index the screen shows holds a newest call at
    least as new as the one before, and the screen ends on the session's newest call: the reads'
    own windows and indexes, older than the window read from the end, went on screen before (at
    a busy program's end: back by 39,218 calls, to one made 849 ms before)."""
    b, m, path, feed = far_behind(tmp_path, monkeypatch)
    monkeypatch.setattr(pipeline_module, "NEWEST_STEP_BYTES", 2000)  # (the reads: ~40 calls a step)
    src, app = held_app(path)
    shown: list[int] = []
    apply = FlowtraceApp._apply_index

    def applied(self, index):
        apply(self, index)
        shown.append(pipeline_module.newest_call(index))

    monkeypatch.setattr(FlowtraceApp, "_apply_index", applied)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.index is not None and "i=1999" in "\n".join(screen_lines(app)))
            assert app.index.data.window.why == READING and shown == [2001]
            monkeypatch.setattr(pipeline_module, "NEWEST_BEHIND_BYTES", 1 << 30)  # near the end from now on
            src.gate.set()
            await until(pilot, lambda: src.data.calls_read == 2001, timeout=30)
            feed.step_calls(["later"])
            await until(pilot, lambda: "later" in "\n".join(screen_lines(app)), timeout=30)
            assert shown == sorted(shown) and shown[-1] == 2002, shown
            b.leave(m)
            b.data(finish=True)
            feed.sync()
            await until(pilot, lambda: app.source.data.finished and not app.loading, timeout=30)
            await app.workers.wait_for_complete()
            assert shown == sorted(shown), shown
    finally:
        src.gate.set()
