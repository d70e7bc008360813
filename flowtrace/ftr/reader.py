"""The object reader of `.ftr` sessions: a session file (or bytes) in, Python objects out.

Consumers that want calls as objects go through `load()`: `flowtrace print` and `flowtrace
export`, the seed API (`stop_tracing()` reads its in-memory session back), the tests. The
explorer reads the same chunks into numpy columns instead (flowtrace_tui/model/loader.py); both
decode every chunk with `ftr/decode.py`, the one decoder of the format, so they cannot disagree
on what a file means. This module checks references (ids consecutive, definitions before use)
and turns rows into `Call` objects linked into a tree.

Bad input never escapes as a traceback: a file that is not a session at all (missing, empty,
wrong magic, newer major version, nothing readable before the first damage) raises `FormatError`
with a one-line message; a file that is damaged or cut short *after* a readable start loads its
valid prefix, and `Trace.status` / `Trace.problem` say so.

Standard library only (the tracer imports this inside user programs).
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from . import decode as D
from . import format as F
from .chunks import Chunk, ChunkReader
from .decode import Function, Task, Thread
from .format import FormatError

if TYPE_CHECKING:  # only for the annotation; imported lazily in trace_to_events
    from ..events import CallEvent

__all__ = [
    "Call",
    "FormatError",
    "Function",
    "Mark",
    "Task",
    "Thread",
    "Trace",
    "TraceBuilder",
    "load",
    "trace_to_events",
]


@dataclass(frozen=True, slots=True)
class Mark:
    """An event inside a call: "suspend", "resume", "throw", "raise", "handled" or "fold".

    `text` is the yielded value (suspend) or the exception text (throw/raise/handled);
    `other` is the call that resumed it (resume/throw/fold), None when not recorded.

    A "fold" stands for `count` (>= 2) runs of a generator, each a resume by `other` that ran
    to a yield with no call in between: the first resume at `t_ns`, the last yield at `end_ns`,
    `run_ns` their summed running time, `text` the first run's yielded value (docs/FORMAT.md,
    "Folded resumes"). A file's fold of one run reads as its resume and suspend marks."""

    kind: str
    t_ns: int
    text: str | None
    other: int | None
    count: int = 1
    run_ns: int = 0
    end_ns: int | None = None

    @property
    def suspensions(self) -> int:
        """How many times the call was suspended at this mark (a fold: once per run)."""
        return self.count if self.kind == "fold" else int(self.kind == "suspend")


@dataclass(slots=True, eq=False)
class Call:
    """One recorded call. Times are ns from the session origin.

    `end` is "return", "raise" or "unfinished"; `end_ns` is None when unfinished (then
    `stopped_ns` is when the session stopped with the call still open, if the recorder said so).
    `result` is the returned value's text, `exception` the text of the exception that left the
    call (`"Type: message"`); either is None when not captured. `partial` calls were already
    running when recording started: their start is the session start and their args unknown.
    `children` are call ids in start order."""

    id: int
    parent: int | None
    thread: int
    function: Function
    start_ns: int
    args: str | None = None
    task: int | None = None
    partial: bool = False
    end: str = "unfinished"
    end_ns: int | None = None
    stopped_ns: int | None = None
    result: str | None = None
    exception: str | None = None
    marks: list[Mark] = field(default_factory=list)
    children: list[int] = field(default_factory=list)

    @property
    def qualname(self) -> str:
        return self.function.qualname

    @property
    def module(self) -> str:
        return self.function.module

    @property
    def file(self) -> str:
        return self.function.file

    @property
    def line(self) -> int:
        return self.function.line

    @property
    def kind(self) -> str:
        return self.function.kind

    @property
    def finished(self) -> bool:
        return self.end != "unfinished"

    @property
    def duration_ns(self) -> int | None:
        """Wall time from start to end, None while unfinished."""
        return None if self.end_ns is None else self.end_ns - self.start_ns


@dataclass(eq=False)
class Trace:
    """A loaded session.

    - `meta`: the META object; `end`: the ENDS object, or None when the session has no end
      (still running, killed, or cut short).
    - `status`: "finished", "unfinished", or "damaged at offset X" (X = byte offset of the first
      chunk that could not be used; everything before it is loaded).
    - `problem`: a one-line explanation when the status is not "finished", else None.
    - `calls`: every call in id (start) order; `call(id)` finds one.
    """

    source: str
    version: tuple[int, int]
    meta: dict[str, Any]
    end: dict[str, Any] | None = None
    status: str = "unfinished"
    problem: str | None = None
    damage_offset: int | None = None
    functions: dict[int, Function] = field(default_factory=dict)
    threads: dict[int, Thread] = field(default_factory=dict)
    tasks: dict[int, Task] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    last_ns: int = 0  # the latest time seen anywhere in the file

    # --- lookup -------------------------------------------------------------------------------
    def call(self, call_id: int) -> Call:
        """The call with this id (ids start at 1); KeyError if there is none."""
        if 1 <= call_id <= len(self.calls):
            return self.calls[call_id - 1]
        raise KeyError(call_id)

    def __len__(self) -> int:
        return len(self.calls)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def t_end_ns(self) -> int:
        """When the session ended: ENDS `t_end`, else the latest time recorded in the file."""
        if self.end is not None and isinstance(self.end.get("t_end"), int):
            return max(self.end["t_end"], self.last_ns)
        return self.last_ns

    def thread_name(self, thread_id: int | None) -> str | None:
        t = self.threads.get(thread_id) if thread_id is not None else None
        return t.name if t is not None else None

    def task_name(self, task_id: int | None) -> str | None:
        t = self.tasks.get(task_id) if task_id is not None else None
        return t.name if t is not None else None

    # --- tree ---------------------------------------------------------------------------------
    @property
    def roots(self) -> list[Call]:
        """Calls without a recorded parent, in start order."""
        return [c for c in self.calls if c.parent is None]

    def children(self, call: Call | int) -> list[Call]:
        cid = call if isinstance(call, int) else call.id
        return [self.calls[i - 1] for i in self.call(cid).children]

    def walk(
        self,
        start: Call | int | None = None,
        *,
        max_depth: int | None = None,
        thread: int | None = None,
    ) -> Iterator[tuple[Call, int]]:
        """Yield (call, depth) in tree order (preorder, children in start order).

        From every root (depth 0), or from `start` (depth 0) when given. `max_depth` stops
        descending below that depth (0 = roots only); `thread` keeps only trees rooted on that
        session thread id. Iterative, so a deep recursion in the trace cannot overflow ours."""
        if start is None:
            tops = [c for c in self.calls if c.parent is None and (thread is None or c.thread == thread)]
        else:
            tops = [self.call(start) if isinstance(start, int) else start]
        calls = self.calls
        stack: list[tuple[Call, int]] = [(c, 0) for c in reversed(tops)]
        while stack:
            call, depth = stack.pop()
            yield call, depth
            if max_depth is not None and depth >= max_depth:
                continue
            for child_id in reversed(call.children):
                stack.append((calls[child_id - 1], depth + 1))

    def describe(self) -> str:
        """One line about the session's state, for a status line."""
        n = len(self)
        if self.status == "finished":
            reason = self.end.get("reason") if self.end else None
            return f"finished ({reason}), {n} calls" if reason else f"finished, {n} calls"
        if self.status == "unfinished":
            return f"unfinished ({self.problem}), {n} calls read"
        return f"{self.status} ({self.problem}); showing the {n} calls before it"


class TraceBuilder:
    """Applies chunks, in file order, to a `Trace`. `load()` uses it on a whole file; a consumer
    following a live file can feed it each `ChunkReader.poll()` result.

    Each chunk is decoded and checked completely before anything is applied, so a chunk that
    fails a check (raising FormatError) leaves the trace as it was before that chunk."""

    def __init__(self, source: str, version: tuple[int, int]) -> None:
        self.source = source
        self.version = version
        self.trace: Trace | None = None  # created by the META chunk
        self._strings: list[str | None] = [None]  # index = string id; id 0 = no text

    # --- helpers ---------------------------------------------------------------------------
    def _text(self, string_id: int, what: str) -> str | None:
        if string_id == 0:
            return None
        if string_id >= len(self._strings):
            raise FormatError(f"{what} refers to text {string_id}, which is not defined before it")
        return self._strings[string_id]

    def _call(self, trace: Trace, call_id: int, what: str) -> Call:
        if not 1 <= call_id <= len(trace.calls):
            raise FormatError(f"{what} refers to call {call_id}, which has not started")
        return trace.calls[call_id - 1]

    # --- chunks ----------------------------------------------------------------------------
    def apply(self, chunk: Chunk) -> None:
        """Add one chunk to the trace. Raises FormatError (nothing applied) if it is invalid."""
        if self.trace is None:
            if chunk.kind != F.META:
                raise FormatError(f"the first chunk is {chunk.kind.decode('ascii', 'replace')}, not META")
            meta = D.decode(chunk)
            assert isinstance(meta, D.Meta)
            self.trace = Trace(self.source, self.version, meta.info)
            return
        record = D.decode(chunk)
        handler = _HANDLERS.get(type(record))
        if handler is None:
            return  # a chunk type this version does not know, or a second META
        try:
            handler(self, self.trace, record)
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError(f"{chunk.kind.decode()} chunk: malformed ({type(exc).__name__}: {exc})") from None

    def _func(self, trace: Trace, defs: D.FunctionDefs) -> None:
        for f in defs.items:
            trace.functions[f.id] = f

    def _thrd(self, trace: Trace, defs: D.ThreadDefs) -> None:
        for t in defs.items:
            trace.threads[t.id] = t

    def _task(self, trace: Trace, defs: D.TaskDefs) -> None:
        for t in defs.items:
            old = trace.tasks.get(t.id)
            trace.tasks[t.id] = t if old is None else old.updated(t)

    def _strs(self, trace: Trace, strings: F.Strings) -> None:
        if strings.first_id != len(self._strings):
            raise FormatError(
                f"STRS chunk starts at text {strings.first_id}, expected {len(self._strings)}"
            )
        self._strings.extend(strings.text(strings.first_id + i) for i in range(strings.count))

    def _check_texts(self, ids: list[int], what: str) -> None:
        """Every nonzero text id in `ids` must be defined already (one C-speed max())."""
        if ids and max(ids) >= len(self._strings):
            bad = next(i for i in ids if i >= len(self._strings))
            raise FormatError(f"{what} refers to text {bad}, which is not defined before it")

    def _calls(self, trace: Trace, rows: D.CallRows) -> None:
        # Checks are whole-column set/min/max operations, then one lean loop builds the calls:
        # this is the loop that decides how long loading a big session takes.
        n = rows.rows
        first = len(trace.calls) + 1
        if n and rows.base != first:
            raise FormatError(f"CALL chunk starts at call {rows.base}, expected {first}")
        if not n:
            return
        par, fn, thr, t0 = rows.parent.values(), rows.function.values(), rows.thread.values(), rows.t0.values()
        args, task, flag = rows.args.values(), rows.task.values(), rows.flag.values()
        functions, threads = trace.functions, trace.threads
        ids = range(first, first + n)
        if max(par) >= first and not all(p < cid for p, cid in zip(par, ids)):
            cid, p = next((cid, p) for p, cid in zip(par, ids) if p >= cid)
            raise FormatError(f"call {cid} has parent {p}, which did not start before it")
        missing = set(fn).difference(functions)
        if missing:
            raise FormatError(f"a call refers to function {min(missing)}, which is not defined before it")
        missing = set(thr).difference(threads)
        if missing:
            raise FormatError(f"a call refers to thread {min(missing)}, which is not defined before it")
        self._check_texts(args, "a call's arguments")
        texts = self._strings  # texts[0] is None: "no text"
        new = [
            Call(cid, p or None, th, functions[f], t, texts[a], k or None, bool(fl & F.CALL_PARTIAL))
            for cid, p, f, th, t, a, k, fl in zip(ids, par, fn, thr, t0, args, task, flag)
        ]
        calls = trace.calls
        calls.extend(new)
        for c in new:
            if c.parent is not None:
                calls[c.parent - 1].children.append(c.id)
        trace.last_ns = max(trace.last_ns, max(t0))

    def _exits(self, trace: Trace, rows: D.ExitRows) -> None:
        # A call may end again (a repeated EXIT row): the last row read wins, as in the
        # explorer's loader (docs/FORMAT.md); a `return` after a `raise` clears the exception.
        # (A raise-here row's mark comes after the call's MARK rows: 1.6 writes MARK first.)
        if not rows.rows:
            return
        ids, t1, how, val = rows.call.values(), rows.t1.values(), rows.how.values(), rows.value.values()
        if min(ids) < 1 or max(ids) > len(trace.calls):
            bad = next(c for c in ids if not 1 <= c <= len(trace.calls))
            raise FormatError(f"an EXIT row refers to call {bad}, which has not started")
        unknown = set(how).difference(F.END_NAMES)
        if unknown:
            bad = next(c for c, h in zip(ids, how) if h in unknown)
            raise FormatError(f"call {bad} ends in an unknown way ({min(unknown)})")
        self._check_texts(val, "the end of a call")
        calls, texts = trace.calls, self._strings
        for cid, t, h, v in zip(ids, t1, how, val):
            call = calls[cid - 1]
            if h == F.END_RETURN:
                call.end, call.end_ns, call.result, call.exception = "return", t, texts[v], None
            elif h == F.END_RAISE or h == F.END_RAISE_HERE:
                call.end, call.end_ns, call.result, call.exception = "raise", t, None, texts[v]
                if h == F.END_RAISE_HERE:  # (1.6) raised here: the call's last mark, `raise`
                    call.marks.append(Mark("raise", t, texts[v], None))
            else:
                call.end, call.end_ns, call.result, call.exception = "unfinished", None, None, None
                call.stopped_ns = t
        trace.last_ns = max(trace.last_ns, max(t1))

    def _marks(self, trace: Trace, rows: D.MarkRows) -> None:
        ids, ts, kinds = rows.call.values(), rows.t.values(), rows.kind.values()
        refs, others = rows.ref.values(), rows.other.values()
        ns, runs, spans = rows.n.values(), rows.run.values(), rows.span.values()
        new = []
        for i in range(rows.rows):
            call = self._call(trace, ids[i], "a MARK row")
            name = F.MARK_NAMES.get(kinds[i])
            if name is None:
                continue  # a kind from a newer minor version: skip it, as FORMAT.md says
            other = others[i]
            if other and other > len(trace.calls):
                raise FormatError(f"a MARK row refers to call {other}, which has not started")
            text = self._text(refs[i], f"a mark of call {call.id}")
            new.extend((call, m) for m in marks_of_row(call.id, name, ts[i], text, other, ns[i], runs[i], spans[i]))
        for call, mark in new:
            call.marks.append(mark)
        if new:
            trace.last_ns = max(trace.last_ns, max(m.end_ns or m.t_ns for _c, m in new))

    def _ends(self, trace: Trace, end: D.End) -> None:
        trace.end = end.info


_HANDLERS: dict[type, Any] = {
    D.FunctionDefs: TraceBuilder._func,
    D.ThreadDefs: TraceBuilder._thrd,
    D.TaskDefs: TraceBuilder._task,
    F.Strings: TraceBuilder._strs,
    D.CallRows: TraceBuilder._calls,
    D.ExitRows: TraceBuilder._exits,
    D.MarkRows: TraceBuilder._marks,
    D.End: TraceBuilder._ends,
}


def marks_of_row(call_id: int, name: str, t: int, text: str | None, other: int, n: int, run: int,
                 span: int) -> list[Mark]:
    """The marks one MARK row of a known kind stands for (a fold of one run is its resume and
    its suspend); FormatError for a fold that runs longer than it lasts."""
    if name != "fold":
        return [Mark(name, t, text, other or None)]
    check_fold(call_id, n, run, span)
    if n == 1:  # one run: exactly its resume and its suspend
        return [Mark("resume", t, None, other or None), Mark("suspend", t + span, text, None)]
    return [Mark(name, t, text, other or None, n, run, t + span)]


def check_fold(call_id: int, n: int, run: int, span: int) -> None:
    if n < 1 or not 0 <= run <= span:
        raise FormatError(f"a fold mark of call {call_id} has {n} runs of {run} ns in {span} ns")


def check_folds(call_ids: Iterable[int], ns: Sequence[int], runs: Sequence[int], spans: Sequence[int]) -> None:
    """`check_fold` over whole columns: the same test at C speed (builtins over the columns),
    the rows looked at one by one only when one of them is bad, to name the first."""
    if ns and (min(ns) < 1 or min(runs) < 0 or any(map(operator.gt, runs, spans))):
        for call_id, n, run, span in zip(call_ids, ns, runs, spans):
            check_fold(call_id, n, run, span)


def _open(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> tuple[ChunkReader, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return ChunkReader.from_bytes(bytes(source)), "<memory>"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load() takes a path or bytes, not {type(source).__name__}")
    if os.path.isdir(source):  # Linux opens a directory read-only without complaint
        raise FormatError(f"{os.fspath(source)}: is a directory, not a session file")
    reader = ChunkReader(source)  # raises FormatError for a missing or unreadable file
    return reader, reader.path


def _chunks(reader: ChunkReader) -> Iterable[Chunk]:
    """Every complete chunk of the file. ChunkReader.poll() hands back at most ~64 MB at a time,
    so poll until neither new chunks nor new bytes arrive."""
    while True:
        before = reader.offset + reader.pending_bytes
        got = reader.poll()
        yield from got
        if not got and reader.offset + reader.pending_bytes == before:
            return


def load(source: str | os.PathLike[str] | bytes) -> Trace:
    """Read a whole session (a path, or the bytes of one) into a `Trace`.

    Raises `FormatError` with a one-line message (prefixed with the file name) when there is
    nothing to read: missing file, empty, not a session, newer format, or damage before the
    session metadata. Damage or truncation later keeps the valid prefix; see `Trace.status`."""
    reader, name = _open(source)
    return read_session(reader, name, _load)


def read_session(reader: ChunkReader, name: str, read: Callable[[ChunkReader, str], Any]) -> Any:
    """`read(reader, name)`, its errors as one line prefixed with the file name; closes the reader."""
    try:
        return read(reader, name)
    except FormatError as exc:
        msg = str(exc)
        raise FormatError(msg if msg.startswith(name + ":") else f"{name}: {msg}") from None
    except OSError as exc:
        raise FormatError(f"{name}: cannot read ({exc.strerror or exc})") from None
    finally:
        reader.close()


def apply_chunks(reader: ChunkReader, apply: Callable[[Chunk], None]) -> tuple[str | None, int | None]:
    """Give every readable chunk to `apply` until the file ends or a chunk is damaged or fails a
    check (`apply` raising FormatError): (the problem, the offset reading stopped at), or
    (None, None). FormatError when not even the file header could be read."""
    problem: str | None = None
    damage_offset: int | None = None
    for chunk in _chunks(reader):
        try:
            apply(chunk)
        except FormatError as exc:
            problem = f"{chunk.kind.decode('ascii', 'replace')} chunk at offset {chunk.offset}: {exc}"
            damage_offset = chunk.offset
            break
    if reader.version is None:  # not even a whole header
        if reader.pending_bytes == 0:
            raise FormatError("empty file, not a flowtrace session")
        raise FormatError("truncated inside its 16-byte file header")
    if problem is None and reader.damage is not None:
        problem, damage_offset = reader.damage, reader.offset
    return problem, damage_offset


def no_metadata(problem: str | None) -> FormatError:
    """The error for a file whose META chunk could not be read."""
    if problem is not None:
        return FormatError(f"damaged before its session metadata ({problem})")
    return FormatError("truncated before the end of its session metadata (META chunk)")


def set_status(trace: Trace, reader: ChunkReader, problem: str | None, damage_offset: int | None) -> None:
    """`trace.status`, `problem` and `damage_offset` once the file has been read."""
    trace.damage_offset = damage_offset
    if damage_offset is not None:
        trace.status = f"damaged at offset {damage_offset}"
        trace.problem = problem
    elif trace.end is not None:
        trace.status = "finished"
    else:
        trace.status = "unfinished"
        if reader.pending_bytes:
            trace.problem = (
                f"no end record; the last {reader.pending_bytes} bytes (from offset {reader.offset}) "
                "are an incomplete chunk: the file was cut short or is still being written"
            )
        else:
            trace.problem = "no end record: the program is still running, or was killed"


def _load(reader: ChunkReader, name: str) -> Trace:
    builder: TraceBuilder | None = None

    def apply(chunk: Chunk) -> None:
        nonlocal builder
        if builder is None:
            assert reader.version is not None
            builder = TraceBuilder(name, reader.version)
        builder.apply(chunk)

    problem, damage_offset = apply_chunks(reader, apply)
    trace = builder.trace if builder is not None else None
    if trace is None:  # no META chunk could be read
        raise no_metadata(problem)
    set_status(trace, reader, problem, damage_offset)
    return trace


def trace_to_events(trace: Trace, *, timing: bool = True) -> list["CallEvent"]:
    """The calls as seed-style `CallEvent`s, in id order (what `print_tree` takes).

    `duration` is in seconds when `timing` is true and the call finished, else None (the seed's
    `start_tracing()` records no timing unless asked)."""
    from ..events import CallEvent

    events = []
    threads, tasks = trace.threads, trace.tasks
    for c in trace.calls:
        f = c.function
        thread = threads.get(c.thread)
        task = tasks.get(c.task) if c.task is not None else None
        events.append(CallEvent(
            id=c.id,
            kind="call" if f.kind == "function" else f.kind,
            func_name=f.qualname,
            parent_id=c.parent,
            args_repr=c.args,
            result_repr=c.result,
            duration=(c.end_ns - c.start_ns) / 1e9 if timing and c.end_ns is not None else None,
            module=f.module,
            file=f.file,
            line=f.line,
            thread=c.thread,
            thread_name=thread.name if thread is not None else None,
            task=c.task,
            task_name=task.name if task is not None else None,
            end=c.end,
            exception=c.exception,
            start_ns=c.start_ns,
            end_ns=c.end_ns,
            partial=c.partial,
            marks=[(m.kind, m.t_ns, m.text, m.other or 0) for m in c.marks],
        ))
    return events
