"""Asyncio tasks and the calls that created them.

A task's coroutine is first run by the event loop, which is not recorded, so its call sits under
the nearest recorded call on the thread (often `<module>`, the caller of `asyncio.run`), not under
the call that created the task (docs/FORMAT.md). The TASK record names both, `root` and
`creator`: these helpers let the explorer show the creator on the task's root row and jump to
it from any call of the task. No Textual imports.
"""

from __future__ import annotations

from .loader import TraceData


def task_creator(data: TraceData, call: int) -> int:
    """The call that created the task `call` runs in (0: not in a task, or not known)."""
    if not 0 < call <= data.n:
        return 0
    task = data.tasks.get(int(data.col("task")[call]))
    creator = task.creator if task is not None else None
    return creator if creator and 0 < creator <= data.n and creator != call else 0


def task_root_note(data: TraceData, call: int) -> str | None:
    """`Task-2 ← main` when `call` is the root coroutine of a task whose creator is known
    (`Task-2` when it is not); None for any other call."""
    if not 0 < call <= data.n:
        return None
    task = data.tasks.get(int(data.col("task")[call]))
    if task is None or task.root != call:
        return None
    creator = task_creator(data, call)
    if not creator:
        return task.name or f"task {task.id}"
    return f"{task.name or f'task {task.id}'} ← {data.func_name(int(data.col('func')[creator]))}"
