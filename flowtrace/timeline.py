"""A session as what ran on each thread over time: properly nested begin/end events in time
order, streamed -- what the speedscope and Perfetto exports draw.

A plain call runs from its start to its end. A generator or coroutine runs from its start to
its first `suspend`, then from each `resume`/`throw` to the next `suspend`, and the last run to
its end; a `fold` (several quiet runs in one row) is one run from its first resume to its last
yield. Each run nests inside whatever was running on its thread when it began (the call that
resumed it), which is how it looked on the thread's stack.

Events, in time order (`events()`):
- ("start", t, call, thread, fn, args text id, task): a call's first run begins (opens a frame);
- ("resume", t, call, thread, fn, 0): a later run begins (opens a frame);
- ("pause", t, call, thread, fn, 0): a run stops at a yield or await (closes the frame);
- ("end", t, call, thread, fn, text id, how): the call ended (F.END_*; closes its frame when it
  is open: `frame` False when it was not, e.g. a generator closed while suspended);
- ("mark", t, call, thread, fn, text id, mark kind): raise, handled or throw inside the call.

Each thread's frames are kept nested: the recorder's batches come in time order, so sorting one
batch's rows by time (ends before starts at the same nanosecond; an inner frame closes before
its outer one) gives each thread's order, and a frame that ends while frames opened after it
are still open closes those at the same time (their own end, later, is then dropped). Frames
still open when the session ended close at its end. Memory: one batch of rows and the frames
open on each thread.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, NamedTuple

from .ftr import decode as D
from .ftr import format as F
from .ftr.scan import SessionInfo, chunks

_INSTANTS = {F.MARK_RAISE: "raise", F.MARK_HANDLED: "handled", F.MARK_THROW: "throw"}
# sort order at one nanosecond: closing before opening; instants between
_CLOSE, _INSTANT, _OPEN = 0, 1, 2


class Event(NamedTuple):
    kind: str  # "start", "resume", "pause", "end", "mark"
    t: int
    call: int
    thread: int
    fn: int
    text: int = 0  # string id: arguments (start), result or exception (end), the mark's text
    how: int = 0  # end: F.END_*; mark: F.MARK_*
    frame: bool = True  # start/resume/pause/end: whether it opens or closes a frame
    task: int = 0  # start: the asyncio task the call runs in (0: none)


class _Open(NamedTuple):
    thread: int
    fn: int


ROWS = frozenset({F.CALL, F.EXIT, F.MARK})


def events(info: SessionInfo, *, thread: int | None = None, records: Iterable[Any] | None = None) -> Iterator[Event]:
    """Every event of the session (or of one thread), in time order, frames nested per thread.
    `records`: the session's CALL, EXIT and MARK records when they come from elsewhere than
    `chunks(info)` (`scan.CheckedPass.records(ROWS)`: `info` is complete once they are)."""
    live: dict[int, _Open] = {}  # calls started and not ended
    stacks: dict[int, _Stack] = {}  # per thread: the open frames
    batch: list[tuple[Any, ...]] = []
    last = None
    waiting: D.ExitRows | None = None  # an EXIT chunk is applied after the MARK chunk of its batch
    for rows in chunks(info, ROWS) if records is None else records:
        if isinstance(rows, D.CallRows) and last is not None and not isinstance(last, D.CallRows):
            if waiting is not None:
                _exits(waiting, live, batch)
                waiting = None
            yield from _nest(batch, stacks)  # a new batch: the previous ones are complete
            batch = []
        last = rows
        if isinstance(rows, D.MarkRows):
            _marks(rows, live, batch)
        if waiting is not None:
            _exits(waiting, live, batch)
            waiting = None
        if isinstance(rows, D.CallRows):
            _calls(rows, thread, live, batch)
        elif isinstance(rows, D.ExitRows):
            waiting = rows
    if waiting is not None:
        _exits(waiting, live, batch)
    yield from _nest(batch, stacks)
    end = info.t_end_ns
    for th, stack in stacks.items():
        for cid, fn in reversed(stack.frames):
            live.pop(cid, None)
            yield Event("end", max(end, 0), cid, th, fn, 0, F.END_UNFINISHED)
    for cid, c in live.items():  # suspended when the session ended
        yield Event("end", end, cid, c.thread, c.fn, 0, F.END_UNFINISHED, False)


class _Stack:
    """The frames open on one thread, outermost first (and as a set, to test membership)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, int]] = []  # (call, fn)
        self.calls: set[int] = set()


def _calls(rows: D.CallRows, only: int | None, live: dict[int, _Open], batch: list) -> None:
    base = rows.base
    for cid, f, th, t, a, k in zip(range(base, base + rows.rows), rows.function.values(), rows.thread.values(),
                                   rows.t0.values(), rows.args.values(), rows.task.values()):
        if only is not None and th != only:
            continue
        live[cid] = _Open(th, f)
        batch.append((t, _OPEN, cid, Event("start", t, cid, th, f, a, task=k)))


def _exits(rows: D.ExitRows, live: dict[int, _Open], batch: list) -> None:
    for cid, t1, how, val in zip(rows.call.values(), rows.t1.values(), rows.how.values(), rows.value.values()):
        c = live.pop(cid, None)
        if c is not None:
            if how == F.END_RAISE_HERE:  # (1.6) raised here: the row is its `raise` mark too
                batch.append((t1, _INSTANT, cid, Event("mark", t1, cid, c.thread, c.fn, val, F.MARK_RAISE)))
                how = F.END_RAISE
            batch.append((t1, _CLOSE, -cid, Event("end", t1, cid, c.thread, c.fn, val, how)))


def _marks(rows: D.MarkRows, live: dict[int, _Open], batch: list) -> None:
    for cid, t, kind, ref, span in zip(rows.call.values(), rows.t.values(), rows.kind.values(), rows.ref.values(),
                                       rows.span.values()):
        c = live.get(cid)
        if c is None:
            continue
        if kind == F.MARK_SUSPEND:
            batch.append((t, _CLOSE, -cid, Event("pause", t, cid, c.thread, c.fn)))
        elif kind == F.MARK_RESUME:
            batch.append((t, _OPEN, cid, Event("resume", t, cid, c.thread, c.fn)))
        elif kind == F.MARK_FOLD:  # its runs as one, from the first resume to the last yield
            batch.append((t, _OPEN, cid, Event("resume", t, cid, c.thread, c.fn)))
            batch.append((t + span, _CLOSE, -cid, Event("pause", t + span, cid, c.thread, c.fn)))
        if kind in _INSTANTS:
            if kind == F.MARK_THROW:  # a throw() runs the call again
                batch.append((t, _OPEN, cid, Event("resume", t, cid, c.thread, c.fn)))
            batch.append((t, _INSTANT, cid, Event("mark", t, cid, c.thread, c.fn, ref, kind)))


def _nest(batch: list[tuple[Any, ...]], stacks: dict[int, _Stack]) -> Iterator[Event]:
    """The batch's events in time order, each thread's frames kept nested (module docstring)."""
    batch.sort(key=lambda row: row[:3])
    for _t, _order, _key, ev in batch:
        stack = stacks.get(ev.thread)
        if stack is None:
            stack = stacks[ev.thread] = _Stack()
        if ev.kind == "start" or ev.kind == "resume":
            stack.frames.append((ev.call, ev.fn))
            stack.calls.add(ev.call)
            yield ev
        elif ev.kind == "pause" or ev.kind == "end":
            if ev.call not in stack.calls:  # closed already (with an outer frame), or never opened
                if ev.kind == "end":
                    yield ev._replace(frame=False)
                continue
            while True:  # frames opened inside it close with it
                cid, fn = stack.frames.pop()
                stack.calls.discard(cid)
                if cid == ev.call:
                    break
                yield Event("pause", ev.t, cid, ev.thread, fn)
            yield ev
        else:
            yield ev
