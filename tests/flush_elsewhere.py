"""Recording for tests/test_handled_across_flushes.py, with flushes forced where its programs
ask for one (`FLUSH[0]()`): on the program's thread, or from another thread while the program
waits (the drain then runs on a thread other than the one whose calls it drains, as the
session's flusher thread does). The tests leave this module out of the recording
(`exclude=["flush_elsewhere"]`): none of it is a recorded call."""

from __future__ import annotations

import contextlib
import functools
import io
import threading
from typing import Any, Callable, Iterator

from flowtrace.recorder.base import RecorderConfig
from flowtrace.session import Session

# what the programs call for a flush: the session's flush when the test forces flushes, else a
# builtin that does nothing (neither is a recorded call)
FLUSH: list[Callable[[], Any]] = [int]


def flush_from_another_thread(session: Any) -> None:
    t = threading.Thread(target=session.flush, name="flush-elsewhere")
    t.start()
    t.join()


@contextlib.contextmanager
def recording(recorder: str, forced: bool | str = False) -> Iterator[io.BytesIO]:
    """A session recording into the buffer it yields while the block runs, with no timed flush:
    the only flushes are the forced ones (`forced` True: on the program's thread; "elsewhere":
    from another thread)."""
    buf = io.BytesIO()
    config = RecorderConfig(args="safe", exclude=["flush_elsewhere"])
    session = Session(buf, config, recorder=recorder, flush_interval=3600)
    session.start()
    if forced == "elsewhere":
        FLUSH[0] = functools.partial(flush_from_another_thread, session)
    elif forced:
        FLUSH[0] = session.flush
    try:
        yield buf
    finally:
        FLUSH[0] = int
        session.stop()
