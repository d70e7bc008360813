"""Threads: started before and after recording starts, thread pools; one stack per thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from treeutil import check_balanced, record, shape


def square(x):
    return x * x


def work(n):
    return sum(square(i) for i in range(n))


def test_threads_started_after_start(recorder_name):
    def run():
        ts = [threading.Thread(target=work, args=(2,), name=f"w{i}") for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    trace = record(run, recorder_name)
    by_thread = {}
    for t in trace.threads.values():
        if t.name.startswith("w"):
            by_thread[t.name] = shape(trace, thread=t.id)
    assert sorted(by_thread) == ["w0", "w1", "w2"]
    for lines in by_thread.values():
        assert lines == [
            "work(n=2) = 1",
            "  <genexpr>() = None",  # its compiler-made `.0` iterator is not an argument
            "    square(x=0) = 0",
            "    square(x=1) = 1",
        ]
    check_balanced(trace)


def test_threads_named_when_threading_itself_is_recorded(recorder_name):
    # With threading's own code included, a thread's first recorded call is Thread._bootstrap,
    # before threading registers the thread: it was named "thread-<ident>" for good.
    kept = []  # alive at the session's end: its rename is read from the Thread object then

    def run():
        t = threading.Thread(target=work, args=(1,), name="first")
        t.start()
        t.join()
        with ThreadPoolExecutor(1, thread_name_prefix="pool") as pool:
            assert pool.submit(work, 1).result() == 0
        renamed = threading.Thread(target=lambda: setattr(threading.current_thread(), "name", "after"),
                                   name="before")
        kept.append(renamed)
        renamed.start()
        renamed.join()

    trace = record(run, recorder_name, include=["threading", "concurrent.futures.*"])
    names = sorted(t.name for t in trace.threads.values())
    assert names == ["MainThread", "after", "first", "pool_0"]
    pool_thread = next(t.id for t in trace.threads.values() if t.name == "pool_0")
    assert shape(trace, thread=pool_thread)[0].startswith("Thread._bootstrap(self=<threading.Thread object at ")
    check_balanced(trace)


def test_thread_started_before_start(recorder_name):
    go = threading.Event()
    done = threading.Event()

    def waiter():
        go.wait()
        square(7)
        done.set()

    t = threading.Thread(target=waiter, name="early")
    t.start()

    def run():
        go.set()
        done.wait()

    trace = record(run, recorder_name)
    t.join()
    early = next(th for th in trace.threads.values() if th.name == "early")
    # waiter() started before recording: its return is ignored, square() is a root
    assert shape(trace, thread=early.id) == ["square(x=7) = 49"]


def test_thread_pool(recorder_name):
    def run():
        with ThreadPoolExecutor(max_workers=2) as ex:
            return list(ex.map(square, [1, 2, 3, 4]))

    trace = record(run, recorder_name)
    assert shape(trace, thread=trace.calls[0].thread) == ["run() = [1, 4, 9, 16]"]
    squares = sorted(c.args for c in trace.calls if c.qualname == "square")
    assert squares == ["x=1", "x=2", "x=3", "x=4"]
    for c in trace.calls:
        if c.qualname == "square":
            assert c.parent is None and c.end == "return"
            assert trace.threads[c.thread].name.startswith("ThreadPoolExecutor")
    check_balanced(trace)


class _SlowRepr:
    """Its __repr__ (called by --repr full while the call's row is being made) waits for
    `go`: the thread has taken its call id but not appended its row yet."""

    def __init__(self, entered: threading.Event, go: threading.Event) -> None:
        self.entered, self.go = entered, go

    def __repr__(self) -> str:
        self.entered.set()
        self.go.wait(10)
        return "slow"


def held(x):
    return 1


def parent_of_late_child(start_held):
    start_held()  # another thread takes the next call id and holds it
    return square(3)


def test_a_parent_ends_in_the_file_after_its_children_start(tmp_path):
    """A thread held between taking its call id and appending its row makes a gap: the calls
    after it wait for the next drain. A parent of a waiting call must wait too, else its EXIT
    comes before its child's CALL and `flowtrace print` (which streams the file) shows the
    child as a top-level call after its parent ended."""
    import io

    from flowtrace.ftr.scan import survey
    from flowtrace.stream_print import print_session
    from flowtrace.recorder.base import RecorderConfig
    from flowtrace.session import Session

    path = tmp_path / "gap.ftr"
    entered, go = threading.Event(), threading.Event()
    with open(path, "wb") as f:
        session = Session(f, RecorderConfig(args="full"), recorder="python")
        session.start()
        try:
            t = threading.Thread(target=held, args=(_SlowRepr(entered, go),), name="held")

            def start_held():
                t.start()
                assert entered.wait(10)

            parent_of_late_child(start_held)  # its child's id is after the held one's: kept back
            session.flush()
            go.set()
            t.join()
        finally:
            session.stop()
    out = io.StringIO()
    print_session(survey(path), out, color=False, max_depth=None, thread=None, cwd=str(tmp_path))
    lines = [line for line in out.getvalue().splitlines() if "square" in line or "parent_of" in line]
    assert [line.split("(")[0] for line in lines] == ["→ parent_of_late_child", "  → square", "← parent_of_late_child"]
