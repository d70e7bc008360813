"""`CallEvent`: one recorded call as the seed API and the text printer see it.

The seed (flowtrace 0.1.1) fields come first and keep their meaning: `id`, `kind`, `func_name`,
`parent_id`, `args_repr`, `result_repr`, `duration`. The optional fields after them carry what a
`.ftr` session records beyond the seed (location, thread, task, how the call ended, times).
The reader (`flowtrace.ftr.reader.trace_to_events`) builds these from a session file; the seed
API (`stop_tracing()`, `@trace`) builds them through that same reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CallEvent:
    """One call.

    - `kind`: "call" (the seed's only kind), or "generator" / "coroutine" / "async_generator"
      for code objects of those kinds (one logical call per generator/coroutine object),
      "class" for a class body (`func_name` is the class's qualified name) and "module" for a
      module's top-level code.
    - `args_repr`: the argument text as recorded, `"n=3, xs=[1, 2]"` (names from the code object,
      `*args`/`**kwargs` as `*args=(…)`/`**kw={…}`), or None when arguments were not captured.
      `flowtrace.printing` can show it as values only (`3, [1, 2]`), as the seed's decorator did.
    - `result_repr`: the returned value's text (None if not captured, or if the call raised).
    - `duration`: seconds, or None when timing was not asked for (seed: opt-in timing).
    - `end`: "return", "raise" or "unfinished"; `exception`: `"Type: message"` when it raised.
    - `start_ns` / `end_ns`: nanoseconds from the session origin (`end_ns` None if unfinished).
    - `partial`: the call was already running when recording started (start/args unknown).
    """

    id: int
    kind: str
    func_name: str
    parent_id: int | None
    args_repr: str | None = None
    result_repr: str | None = None
    duration: float | None = None
    # --- richer fields (not in the seed) ---
    module: str | None = None
    file: str | None = None
    line: int | None = None
    thread: int | None = None  # session thread id (THRD)
    thread_name: str | None = None
    task: int | None = None  # asyncio task id (TASK), None outside tasks
    task_name: str | None = None
    end: str = "return"  # "return" | "raise" | "unfinished"
    exception: str | None = None  # "Type: message" when end == "raise"
    start_ns: int | None = None
    end_ns: int | None = None
    partial: bool = False
    marks: list[tuple[str, int, str | None, int]] = field(default_factory=list)
    # marks: (kind name, t ns, text or None, other call id or 0) — suspend/resume/throw/raise/handled
