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
