"""Messages that cross from the loader/search workers to the UI (posted from threads)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from textual.message import Message

from .model.index import TreeIndex
from .model.search import Query


@dataclass
class LoadProgress(Message):
    """Bytes read of the file so far; coalesced so a slow UI never queues a backlog."""

    done: int
    total: int
    calls: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LoadProgress)


@dataclass
class IndexReady(Message):
    """A new index snapshot. `final`: loading has finished (or was cancelled). Coalesced: a
    newer snapshot queued right behind it replaces it (the screen shows only the newest; a UI
    thread busy drawing found several queued following a busy program and carried its view to
    each in turn, ~5 ms of its CPU apiece), except a final one by one that is not."""

    index: TreeIndex
    final: bool

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, IndexReady) and (message.final or not self.final)


@dataclass
class LoadFinished(Message):
    """Loading ended: cancelled by the user, or `error` (one line) when the file could not be read."""

    cancelled: bool
    error: str | None = None


@dataclass
class SearchDone(Message):
    """A search's hits (positions, sorted) in `index`; dropped when that index is no longer shown."""

    query: Query
    index: TreeIndex
    hits: np.ndarray
