"""A flush made by another thread while the caller waits: the drain runs on a thread other
than the one whose calls it drains (as the session's flusher thread does). The tests that use
it leave this module out of the recording (`exclude=["flush_elsewhere"]`)."""

from __future__ import annotations

import threading
from typing import Any


def flush_from_another_thread(session: Any) -> None:
    t = threading.Thread(target=session.flush, name="flush-elsewhere")
    t.start()
    t.join()
