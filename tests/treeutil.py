"""Record a piece of code in memory and render the recorded tree as comparable lines.

`record(fn, recorder)` runs `fn()` inside a Session writing to memory and loads the result with
the one reader. `shape(trace)` renders each call as one line, indented two spaces per level:

    name(args) = result        returned
    name(args) ! Type: msg     left by an exception
    name(args) ~               unfinished
    name(…)                    partial (already running when recording started)

with `marks=True`, ` [suspend,resume<caller,...]` lists the call's marks in order (resume/throw
name the resumer's function; `fold<caller*n` is n folded runs), and `tasks=True` appends ` {task name}` to calls in a task (`{#N}`, the session's task id,
for asyncio's default `Task-N` names).
"""

from __future__ import annotations

import io
import re
from typing import Any, Callable, Iterable

from flowtrace.ftr.reader import Trace, load
from flowtrace.recorder.base import RecorderConfig
from flowtrace.session import Session


def record(
    fn: Callable[[], Any],
    recorder: str,
    *,
    args: str = "safe",
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    seed_running: bool = False,
    flush_interval: float = 0.1,
) -> Trace:
    buf = io.BytesIO()
    config = RecorderConfig(args=args, include=list(include), exclude=list(exclude), seed_running=seed_running)
    session = Session(buf, config, recorder=recorder, flush_interval=flush_interval)
    session.start()
    try:
        fn()
    finally:
        session.stop()
    return load(buf.getvalue())


def _line(trace: Trace, call: Any, marks: bool, tasks: bool) -> str:
    args = "…" if call.partial else (call.args or "")
    text = f"{call.qualname.split('.<locals>.')[-1]}({args})"
    if call.end == "return":
        text += f" = {call.result}" if call.result is not None else ""
    elif call.end == "raise":
        text += f" ! {call.exception}"
    else:
        text += " ~"
    if marks and call.marks:
        parts = []
        for m in call.marks:
            if m.kind in ("resume", "throw", "fold"):
                other = trace.call(m.other).qualname.split(".<locals>.")[-1] if m.other else "-"
                parts.append(f"{m.kind}<{other}" + (f"*{m.count}" if m.kind == "fold" else ""))
            elif m.kind in ("raise", "handled"):
                parts.append(f"{m.kind}:{(m.text or '').split(':')[0]}")
            else:
                parts.append(m.kind)
        text += " [" + ",".join(parts) + "]"
    if tasks and call.task is not None:
        name = trace.task_name(call.task) or "?"
        # asyncio's default names count tasks process-wide: show the session's task id instead
        text += " {" + (f"#{call.task}" if re.fullmatch(r"Task-\d+", name) else name) + "}"
    return text


def shape(trace: Trace, *, marks: bool = False, tasks: bool = False, thread: int | None = None) -> list[str]:
    """One line per call, in tree order (see the module docstring)."""
    return ["  " * depth + _line(trace, c, marks, tasks) for c, depth in trace.walk(thread=thread)]


def check_balanced(trace: Trace) -> None:
    """Every call ended exactly once (the reader refuses a second end) and children nest."""
    for c in trace.calls:
        assert c.end in ("return", "raise", "unfinished"), c
        if c.parent is not None:
            assert c.parent < c.id


def _within(trace: Trace, call_id: int | None, ancestor: int) -> bool:
    while call_id is not None and call_id != ancestor:
        call_id = trace.call(call_id).parent
    return call_id == ancestor


def time_nesting_errors(trace: Trace, *, resumed_elsewhere_ok: bool = False) -> list[str]:
    """The calls that do not nest in time in their parent: started before it, or (both
    finished) ended after it. With `resumed_elsewhere_ok`, a generator or coroutine resumed by
    a call outside its parent's subtree may end after its parent (its parent is the call that
    first ran it; the resume marks name the later resumers)."""
    errors = []
    for c in trace.calls:
        if c.parent is None:
            continue
        p = trace.call(c.parent)
        late = c.end_ns is not None and p.end_ns is not None and c.end_ns > p.end_ns
        if late and resumed_elsewhere_ok and any(
                m.kind in ("resume", "throw", "fold") and not _within(trace, m.other, p.id) for m in c.marks):
            late = False
        if c.start_ns < p.start_ns or late:
            errors.append(f"{c.qualname}#{c.id} [{c.start_ns}, {c.end_ns}] in {p.qualname}#{p.id} "
                          f"[{p.start_ns}, {p.end_ns}]")
    return errors


def unstarted_generators() -> list:
    """A generator, a coroutine and an async generator, none started (values whose texts the
    tests compare; close the coroutine when done)."""
    def gen():
        yield 1

    async def coro():
        pass

    async def agen():
        yield 1

    return [gen(), coro(), agen()]
