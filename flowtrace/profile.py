"""Per-function times of a session, in one streaming pass: what `flowtrace stats` shows and the
pstats and collapsed-stack exports write.

Times are *running* times, as in the explorer (flowtrace_tui/model/timing.py): a call's running
time is its lifetime minus the time it spent suspended (a generator or coroutine is suspended
from each `suspend` mark, or from a `fold` mark minus its running ns, to its next `resume`,
`throw` or `fold`, or to its end). A call's *self* time is its running time minus the running
time of what ran inside it (never below 0): its children, and each run of a generator or
coroutine in the call that ran it -- its first run in its parent (the call that first ran it),
each later run in the call its `resume`/`throw`/`fold` mark names. So a context manager's
generator counts in `__enter__` up to its `yield` and in `__exit__` after it, and a task's steps
in the event loop's call that ran them (when the loop is recorded), not all in the first.
A call still running when the session ended ends at its stop time, or at the session's end.

Per function: `calls` (one per call; a generator or coroutine is one call per object),
`total` (the running time of its *outermost* calls only -- calls with no ancestor of the same
function -- so recursion is not counted twice), `self`, `sum` and `max` of its calls' running
times, `raised` (calls left by an exception). Per (caller, callee) function pair the same, for
pstats' callers. Per call path (`collapsed`), the self time.

Order of rows: a batch of the recorder writes its CALL, EXIT and MARK chunks in that order, and a
call's marks all come before its end; so the EXIT rows of a chunk are applied after the MARK
chunk that follows them. Memory: the calls still running, one entry per function, per caller
pair and (for collapsed stacks) per distinct call path.

The pass below (`_Pass`) is the definition, and the pass wherever the C extension is not built.
Where it is, `profile()` runs the same pass in C (flowtrace/_crecorder_src/profile_pass.c,
through `_NativePass`): the same numbers, in the same dict order, from the chunks' decoded
column buffers without a Python int per row (~2 us a call here, ~0.1 us there). A value that
does not fit 64 bits (a crafted file: Python's ints do not overflow) makes it give up, and the
Python pass reads the session instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .ftr import decode as D
from .ftr import format as F
from .ftr.scan import CheckedPass, Outlook, SessionInfo, Texts, chunks, surveyed

# An open call is a list (cheaper to make than an object, and there is one per call):
(_FN, _UP, _T0, _KIDS, _ANC, _KANC, _OUTER, _SUSP, _GAP, _CREDIT, _PATH, _OPEN, _RUN, _RAISED,
 _RUNNER, _RUN_T, _AWAY) = range(17)
_FIELDS = 17  # (session_diff's pass appends its own after these)
_NO_SUSPENSION = -1
_PARENT = -1  # an open call's _RUNNER while it runs in its parent (its first run, or resumed there)
_EMPTY: frozenset[int] = frozenset()


@dataclass(slots=True)
class FunctionTimes:
    """The aggregates of one function (ns)."""

    calls: int = 0
    outer: int = 0  # calls with no ancestor of the same function
    total: int = 0  # running time of the outermost calls
    self: int = 0
    sum: int = 0  # running time of every call (recursion counted again)
    max: int = 0
    raised: int = 0  # calls left by an exception

    @property
    def mean(self) -> float:
        return self.sum / self.calls if self.calls else 0.0


@dataclass
class Profile:
    """The result of `profile()`."""

    functions: dict[int, FunctionTimes] = field(default_factory=dict)  # function id -> times
    edges: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (caller fn, fn) -> [cc, nc, tt, ct]
    paths: dict[tuple[int, int], int] = field(default_factory=dict)  # (parent path, fn) -> path id
    path_self: dict[int, int] = field(default_factory=dict)  # path id -> self ns
    path_thread: dict[int, int] = field(default_factory=dict)  # root path id -> thread
    total: int = 0  # running time of the root calls (the share of a function is its total over this)
    session: SessionInfo | None = None  # the survey of the session (`profile()` of a glanced one checks it)


class _Pass:
    def __init__(self, info: SessionInfo, thread: int | None, edges: bool, paths: bool,
                 functions: Iterable[int] | None = None) -> None:
        """`functions`: every function id the rows may name, when `info.functions` does not
        hold them yet (a pass that checks the file as it goes: `scan.CheckedPass`)."""
        self.info = info
        self.thread = thread
        self.result = Profile(session=info)
        self.open: dict[int, list[Any]] = {}
        self.want_edges = edges
        self.want_paths = paths
        fns = self.result.functions
        for fid in info.functions if functions is None else functions:
            fns[fid] = FunctionTimes()

    def calls(self, rows: D.CallRows) -> None:
        open_, only, fns = self.open, self.thread, self.result.functions
        paths = self.result.paths if self.want_paths else None
        base = rows.base
        for cid, p, f, th, t in zip(range(base, base + rows.rows), rows.parent.values(), rows.function.values(),
                                    rows.thread.values(), rows.t0.values()):
            if only is not None and th != only:
                continue
            up = open_.get(p) if p else None
            if up is None:
                anc = _EMPTY
            else:
                anc = up[_KANC]
                if anc is None:  # the ancestors of up's children: made once, shared by them
                    a = up[_ANC]
                    anc = up[_KANC] = a if up[_FN] in a else a | {up[_FN]}
            fns[f].calls += 1
            path = 0
            if paths is not None:
                key = (up[_PATH] if up is not None else -th, f)
                path = paths.get(key, 0)
                if not path:
                    path = paths[key] = len(paths) + 1
                    if up is None:
                        self.result.path_thread[path] = th
            if up is not None:
                up[_OPEN] += 1
            open_[cid] = [f, up, t, 0, anc, None, f not in anc, _NO_SUSPENSION, 0, 0, path, 0, -1, False,
                          _PARENT, t, 0]

    def marks(self, rows: D.MarkRows) -> None:
        get, credit = self.open.get, self._credit
        for cid, t, kind, run, by in zip(rows.call.values(), rows.t.values(), rows.kind.values(), rows.run.values(),
                                         rows.other.values()):
            e = get(cid)
            if e is None or kind not in _WAKE:
                continue
            if e[_SUSP] != _NO_SUSPENSION:  # a suspension ends here
                e[_GAP] += t - e[_SUSP] - e[_CREDIT]
                e[_SUSP] = _NO_SUSPENSION
            elif e[_RUNNER] != _PARENT:  # a run elsewhere than in its parent ends here
                credit(e, e[_RUNNER], t - e[_RUN_T])
            if kind == F.MARK_SUSPEND:
                e[_SUSP], e[_CREDIT] = t, 0
            elif kind == F.MARK_FOLD:  # runs `run` ns from here to the next mark; the rest is suspended
                e[_SUSP], e[_CREDIT] = t, run
                if get(by) is not e[_UP]:
                    credit(e, by, run)
            else:  # resumed (or thrown into) by the call `by` (0: none recorded)
                e[_RUNNER], e[_RUN_T] = (_PARENT if get(by) is e[_UP] else by), t

    def _credit(self, e: list[Any], runner: int, ns: int) -> None:
        """A run of the generator or coroutine `e` took `ns` in the call `runner`, not in its
        parent (which gets the rest of its running time as children's time when it settles):
        child time of that call, so not its self time -- a context manager's generator runs
        first in `__enter__` and after its `yield` in `__exit__`. `runner` 0: no recorded call
        ran it (nobody's). A runner that has ended already (rows in an unusual order) leaves
        the run to the parent."""
        if ns <= 0:
            return
        if runner:
            r = self.open.get(runner)
            if r is None or r[_RUN] >= 0:
                return
            r[_KIDS] += ns
        e[_AWAY] += ns

    def exits(self, rows: D.ExitRows) -> None:
        pop = self.open.pop
        for cid, t1, how in zip(rows.call.values(), rows.t1.values(), rows.how.values()):
            e = pop(cid, None)
            if e is not None:
                self.end(e, t1, how in F.RAISED)

    def end(self, e: list[Any], t1: int, raised: bool) -> None:
        """A call ended at `t1`. Its self time is known once its children have ended too (a
        generator it ran first may outlive it): then it goes to its function (`_count`)."""
        if e[_SUSP] != _NO_SUSPENSION:
            e[_GAP] += max(0, t1 - e[_SUSP] - e[_CREDIT])
        elif e[_RUNNER] != _PARENT:  # its last run, elsewhere than in its parent, ends here
            self._credit(e, e[_RUNNER], t1 - e[_RUN_T])
        run = t1 - e[_T0] - e[_GAP]
        e[_RUN] = run if run > 0 else 0  # (not max(): a call of it per call was ~8 % of a diff's pass)
        e[_RAISED] = raised
        while e is not None and not e[_OPEN] and e[_RUN] >= 0:  # counted; maybe its parent now too
            e = self._count(e)

    def _count(self, e: list[Any]) -> list[Any] | None:
        """Settle an ended call whose children have all ended (its running time, but for the
        runs that went elsewhere, goes to its parent's children's time); return its parent."""
        running = e[_RUN]
        own = running - e[_KIDS]
        if own < 0:
            own = 0
        up = e[_UP]
        if up is not None:
            here = running - e[_AWAY]
            if here > 0:
                up[_KIDS] += here
            up[_OPEN] -= 1
        else:
            self.result.total += running
        self.add(e, up, running, own)
        return up

    def add(self, e: list[Any], up: list[Any] | None, running: int, own: int) -> None:
        """Count a settled call (running and self time in ns) in the aggregates."""
        f = e[_FN]
        ft = self.result.functions[f]
        ft.self += own
        ft.sum += running
        if running > ft.max:
            ft.max = running
        if e[_RAISED]:
            ft.raised += 1
        if e[_OUTER]:
            ft.outer += 1
            ft.total += running
        if self.want_edges:
            key = (up[_FN] if up is not None else 0, f)
            edge = self.result.edges.get(key)
            if edge is None:
                edge = self.result.edges[key] = [0, 0, 0, 0]
            edge[1] += 1
            edge[2] += own
            if e[_OUTER]:
                edge[0] += 1
                edge[3] += running
        if self.want_paths:
            paths = self.result.path_self
            paths[e[_PATH]] = paths.get(e[_PATH], 0) + own

    def finish(self) -> None:
        """Calls still running end with the session (children first: their time is their
        parent's children's time)."""
        end = self.info.t_end_ns
        for e in self.open.values():  # runs in progress stop with the session, each in its call
            if e[_SUSP] == _NO_SUSPENSION and e[_RUNNER] != _PARENT:
                self._credit(e, e[_RUNNER], max(end, e[_T0]) - e[_RUN_T])
                e[_RUNNER] = _PARENT  # (its time elsewhere is counted: none left for `end`)
        for e in reversed(list(self.open.values())):
            self.end(e, max(end, e[_T0]), False)
        self.open.clear()
        self.result.functions = _defined(self.result.functions, self.info)


_WAKE = frozenset({F.MARK_SUSPEND, F.MARK_RESUME, F.MARK_THROW, F.MARK_FOLD})


def _defined(fns: dict[int, FunctionTimes], info: SessionInfo) -> dict[int, FunctionTimes]:
    """A pass's functions, only those the session defines (a checked pass starts from more ids
    than the checked part may define), in its order."""
    if len(fns) == len(info.functions):
        return fns
    return {fid: fns[fid] for fid in info.functions}


_NATIVE_PASS_VERSION = 2  # profile_pass.c's PROFILE_PASS_VERSION that counts as this pass does


def _native_pass_type() -> Any:
    """The C extension's ProfilePass, or None: not built, built without it or with an older one
    (a stale build: PROFILE_PASS_VERSION), or built with other values of the constants it
    shares with ftr/format.py."""
    try:
        from . import _crecorder
    except ImportError:
        return None
    constants = getattr(_crecorder, "CONSTANTS", {})
    shared = ("MARK_SUSPEND", "MARK_RESUME", "MARK_THROW", "MARK_FOLD", "END_RAISE", "END_RAISE_HERE")
    if any(constants.get(name) != getattr(F, name) for name in shared):
        return None
    if getattr(_crecorder, "PROFILE_PASS_VERSION", 1) != _NATIVE_PASS_VERSION:
        return None
    return getattr(_crecorder, "ProfilePass", None)


_ProfilePass = _native_pass_type()


def _column(col: F.Column) -> tuple[memoryview, str, int]:
    return col.data, col.typecode, col.encoding


class _NativePass:
    """`_Pass`, its rows counted in C (`_crecorder.ProfilePass`): the same methods for
    `run_pass`, the same `result` once finished."""

    def __init__(self, info: SessionInfo, thread: int | None, edges: bool, paths: bool,
                 functions: Iterable[int] | None = None) -> None:
        self.info = info
        self.ids = list(info.functions if functions is None else functions)
        self.native = _ProfilePass(self.ids, thread, edges, paths)
        self.result = Profile(session=info)

    def calls(self, rows: D.CallRows) -> None:
        self.native.calls(rows.base, rows.rows, _column(rows.parent), _column(rows.function),
                          _column(rows.thread), _column(rows.t0))

    def marks(self, rows: D.MarkRows) -> None:
        self.native.marks(rows.rows, _column(rows.call), _column(rows.t), _column(rows.kind), _column(rows.run),
                          _column(rows.other))

    def exits(self, rows: D.ExitRows) -> None:
        self.native.exits(rows.rows, _column(rows.call), _column(rows.t1), _column(rows.how))

    def finish(self) -> None:
        """As `_Pass.finish`: the calls still running end with the session; the result."""
        times, edges, paths, path_self, path_thread, total = self.native.finish(self.info.t_end_ns)
        r = self.result
        r.functions = _defined({fid: FunctionTimes(*row) for fid, row in zip(self.ids, times)}, self.info)
        r.edges, r.paths, r.path_self, r.path_thread, r.total = edges, paths, path_self, path_thread, total


def profile(info: SessionInfo | Outlook, *, thread: int | None = None, edges: bool = False,
            paths: bool = False) -> Profile:
    """Per-function times of a surveyed session (one pass over its CALL, EXIT and MARK chunks),
    or of a glanced one (`scan.glance`: the pass checks the file as a survey would, and
    `Profile.session` is its survey); `edges` adds the per-caller times (pstats), `paths` the
    self time per call path."""
    if _ProfilePass is not None:
        try:
            return _profile(_NativePass, info, thread, edges, paths)
        except OverflowError:  # a value beyond 64 bits: the Python pass's ints hold it
            pass
    return _profile(_Pass, info, thread, edges, paths)


def _profile(kind: Any, info: SessionInfo | Outlook, thread: int | None, edges: bool, paths: bool) -> Profile:
    """`profile()` with the pass `kind` (`_Pass` or `_NativePass`)."""
    if isinstance(info, Outlook):
        if info.streamable:
            checked = CheckedPass(info)
            p = kind(checked.info, thread, edges, paths, info.info.functions)
            run_pass(p, checked.info, records=checked.records(_ROWS))
            return p.result
        info = surveyed(info)  # (a file that needs a survey first: see Outlook)
    p = kind(info, thread, edges, paths)
    run_pass(p, info)
    return p.result


_ROWS = frozenset({F.CALL, F.EXIT, F.MARK})


def run_pass(p: Any, info: SessionInfo, texts: Texts | None = None, records: Iterable[Any] | None = None) -> None:
    """Feed a pass (`_Pass` or a subclass) the session's CALL, MARK and EXIT rows in the order
    their times need, then `finish` it; `texts` sees the STRS chunks go by. `records`: those
    chunks' records when they come from elsewhere than `chunks(info)` (`CheckedPass.records`)."""
    waiting: D.ExitRows | None = None  # an EXIT chunk waits for the MARK chunk of its batch
    for rows in chunks(info, _ROWS, texts) if records is None else records:
        if isinstance(rows, D.MarkRows):
            p.marks(rows)
        if waiting is not None:
            p.exits(waiting)
            waiting = None
        if isinstance(rows, D.CallRows):
            p.calls(rows)
        elif isinstance(rows, D.ExitRows):
            waiting = rows
    if waiting is not None:
        p.exits(waiting)
    p.finish()
