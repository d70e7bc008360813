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

from functools import partial
from operator import itemgetter
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


_Open = tuple[int, int]  # a call started and not ended: (thread, fn)


ROWS = frozenset({F.CALL, F.EXIT, F.MARK})


def events(info: SessionInfo, *, thread: int | None = None, records: Iterable[Any] | None = None) -> Iterator[Event]:
    """Every event of the session (or of one thread), in time order, frames nested per thread.
    `records`: the session's CALL, EXIT and MARK records when they come from elsewhere than
    `chunks(info)` (`scan.CheckedPass.records(ROWS)`: `info` is complete once they are)."""
    for batch in event_batches(info, thread=thread, records=records):
        yield from batch


def event_batches(info: SessionInfo, *, thread: int | None = None, records: Iterable[Any] | None = None
                  ) -> Iterator[list[Event]]:
    """`events()` a list at a time (one recorder batch's events: a consumer that goes through
    each list in a loop of its own makes no generator step per event). Each list is made once
    the records it needs are read, and before the next are."""
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
            yield _nest(batch, stacks)  # a new batch: the previous ones are complete
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
    yield _nest(batch, stacks)
    end = info.t_end_ns
    unfinished = []
    for th, stack in stacks.items():
        for cid, fn in reversed(stack.frames):
            live.pop(cid, None)
            unfinished.append(Event("end", max(end, 0), cid, th, fn, 0, F.END_UNFINISHED))
    for cid, c in live.items():  # suspended when the session ended
        unfinished.append(Event("end", end, cid, c[0], c[1], 0, F.END_UNFINISHED, False))
    yield unfinished


class _Stack:
    """The frames open on one thread, outermost first (and as a set, to test membership)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, int]] = []  # (call, fn)
        self.calls: set[int] = set()


# An Event made as the tuple it is: the NamedTuple's own constructor is a Python function (a
# call per event, with keywords); the rows below make one to three events per call.
_event = partial(tuple.__new__, Event)


def _calls(rows: D.CallRows, only: int | None, live: dict[int, _Open], batch: list) -> None:
    base = rows.base
    append, event = batch.append, _event
    for cid, f, th, t, a, k in zip(range(base, base + rows.rows), rows.function.values(), rows.thread.values(),
                                   rows.t0.values(), rows.args.values(), rows.task.values()):
        if only is not None and th != only:
            continue
        live[cid] = (th, f)
        append((t, _OPEN, cid, event(("start", t, cid, th, f, a, 0, True, k))))


def _exits(rows: D.ExitRows, live: dict[int, _Open], batch: list) -> None:
    append, event, pop = batch.append, _event, live.pop
    for cid, t1, how, val in zip(rows.call.values(), rows.t1.values(), rows.how.values(), rows.value.values()):
        c = pop(cid, None)
        if c is not None:
            th, fn = c
            if how == F.END_RAISE_HERE:  # (1.6) raised here: the row is its `raise` mark too
                append((t1, _INSTANT, cid, event(("mark", t1, cid, th, fn, val, F.MARK_RAISE, True, 0))))
                how = F.END_RAISE
            append((t1, _CLOSE, -cid, event(("end", t1, cid, th, fn, val, how, True, 0))))


def _marks(rows: D.MarkRows, live: dict[int, _Open], batch: list) -> None:
    append, event = batch.append, _event
    for cid, t, kind, ref, span in zip(rows.call.values(), rows.t.values(), rows.kind.values(), rows.ref.values(),
                                       rows.span.values()):
        c = live.get(cid)
        if c is None:
            continue
        th, fn = c
        if kind == F.MARK_SUSPEND:
            append((t, _CLOSE, -cid, event(("pause", t, cid, th, fn, 0, 0, True, 0))))
        elif kind == F.MARK_RESUME:
            append((t, _OPEN, cid, event(("resume", t, cid, th, fn, 0, 0, True, 0))))
        elif kind == F.MARK_FOLD:  # its runs as one, from the first resume to the last yield
            append((t, _OPEN, cid, event(("resume", t, cid, th, fn, 0, 0, True, 0))))
            append((t + span, _CLOSE, -cid, event(("pause", t + span, cid, th, fn, 0, 0, True, 0))))
        if kind in _INSTANTS:
            if kind == F.MARK_THROW:  # a throw() runs the call again
                append((t, _OPEN, cid, event(("resume", t, cid, th, fn, 0, 0, True, 0))))
            append((t, _INSTANT, cid, event(("mark", t, cid, th, fn, ref, kind, True, 0))))


def _nest(batch: list[tuple[Any, ...]], stacks: dict[int, _Stack]) -> list[Event]:
    """The batch's events in time order, each thread's frames kept nested (module docstring)."""
    batch.sort(key=_WHEN)
    out: list[Event] = []
    emit = out.append
    thread, stack = None, None
    for _t, _order, _key, ev in batch:
        kind, t, call, th = ev[:4]
        if th != thread:
            stack = stacks.get(th)
            if stack is None:
                stack = stacks[th] = _Stack()
            thread = th
        assert stack is not None
        if kind == "start" or kind == "resume":
            stack.frames.append((call, ev[4]))
            stack.calls.add(call)
            emit(ev)
        elif kind == "pause" or kind == "end":
            if call not in stack.calls:  # closed already (with an outer frame), or never opened
                if kind == "end":
                    emit(ev._replace(frame=False))
                continue
            frames, calls = stack.frames, stack.calls
            while True:  # frames opened inside it close with it
                cid, fn = frames.pop()
                calls.discard(cid)
                if cid == call:
                    break
                emit(_event(("pause", t, cid, th, fn, 0, 0, True, 0)))
            emit(ev)
        else:
            emit(ev)
    return out


_WHEN = itemgetter(0, 1, 2)  # a batch row's sort key: time, closing before opening, call
