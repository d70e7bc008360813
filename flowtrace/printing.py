"""The seed-style text tree of a list of `CallEvent`s.

Shapes (from the seed, flowtrace 0.1.1):

    → fib(3)                 a call with children opens…
      → fib(1) → 1           …a call without children is one line…
    ← fib(3) → 2             …and a call with children closes with its result
    → compute(6, 7) [0.000265s] → 42     with timing, the duration precedes the result

Additions: `✗ Type: message` instead of `→ result` for a call left by an exception,
`⋯ unfinished` for a call still open when the session ended, `{Task-2}` after the name of a
call that starts an asyncio task, `(…)` for the unknown arguments of a call already running
when recording started, and a `── thread NAME ──` line before each thread's calls when a
trace has more than one thread. A class body is shown as `class Name` and a module's top-level
code as `<module> path/to/file.py` (no arguments, no `→ None`: they are not calls a user made,
and their result is always None). Colour on a terminal (names, arguments, results, exceptions,
times); plain when the output is not a terminal or `NO_COLOR` is set.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Iterable, Sequence

from .events import CallEvent
from .reprs import values_only

_RESET = "\x1b[0m"
_STYLES = {
    "arrow": "\x1b[2m",  # dim
    "name": "\x1b[1;36m",  # bold cyan
    "args": "\x1b[33m",  # yellow
    "result": "\x1b[32m",  # green
    "error": "\x1b[1;31m",  # bold red
    "time": "\x1b[35m",  # magenta
    "note": "\x1b[2;33m",  # dim yellow
    "thread": "\x1b[1;34m",  # bold blue
}


def use_color(file: IO[str] | None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if file is None:
        file = sys.stdout
    try:
        return bool(file.isatty())
    except Exception:
        return False


class Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, style: str, text: str) -> str:
        if not self.color or not text:
            return text
        return f"{_STYLES[style]}{text}{_RESET}"


BODY_KINDS = ("class", "module")  # FUNC kinds that are code bodies, not calls (no args, no result)


def short_path(file: str, cwd: str | None = None) -> str:
    """`file` relative to `cwd` (the recorded program's working directory) when it is inside
    it, else as recorded. Pseudo names like `<string>` stay as they are."""
    if not file or file.startswith("<") or not cwd:
        return file
    try:
        rel = os.path.relpath(file, cwd)
    except ValueError:  # another drive (Windows)
        return file
    return file if rel.startswith(os.pardir) else rel


def body_title(kind: str, qualname: str, file: str | None, cwd: str | None = None,
               module: str | None = None) -> str | None:
    """How a class body (`class Outer.Inner`) or module code is named in a tree; None for any
    other kind (those are calls: name plus arguments). Module code under the program's working
    directory shows its path there (`<module> pkg/mod.py`); elsewhere (site-packages, the
    standard library) its path as recorded, or, given `module` (the explorer, whose rows cut
    long paths to the width: they all looked the same), its module name (`<module> rich.markdown`)."""
    if kind == "class":
        return f"class {qualname}"
    if kind == "module":
        where = short_path(file or "", cwd)
        if os.path.isabs(where) and module and module != "__main__":
            return f"<module> {module}"
        return f"<module> {where}" if where else "<module>"
    return None


def call_label(paint: Painter, kind: str, name: str, file: str | None, args: str | None, partial: bool,
               task_name: str | None, arg_names: bool, cwd: str | None) -> str:
    """`name(args)`, `class Name` or `<module> file`; `(…)` when the arguments are unknown (the
    call was already running when recording started, or arguments were not recorded);
    `{Task-2}` after a call that starts an asyncio task (`task_name` given only then)."""
    title = body_title(kind, name, file, cwd)
    if title is not None:
        return paint("name", title)
    if partial or args is None:
        text = "…"
    elif arg_names:
        text = args
    else:
        text = values_only(args)
    label = paint("name", name) + "(" + paint("args", text) + ")"
    if task_name:
        label += " " + paint("note", "{" + task_name + "}")
    return label


def call_outcome(paint: Painter, kind: str, end: str, duration: float | None, result: str | None,
                 exception: str | None, show_time: bool) -> str:
    """What follows a call's label: ` [0.000265s] → 42`, ` ✗ Type: message`, ` ⋯ unfinished`."""
    parts = []
    if show_time and duration is not None:
        parts.append(paint("time", f"[{duration:.6f}s]"))
    if end == "raise":
        parts.append(paint("error", "✗ " + (exception or "exception")))
    elif end == "unfinished":
        parts.append(paint("note", "⋯ unfinished"))
    elif result is not None and kind not in BODY_KINDS:
        parts.append(paint("arrow", "→") + " " + paint("result", result))
    return (" " + " ".join(parts)) if parts else ""


def _label(ev: CallEvent, paint: Painter, arg_names: bool, task_start: bool, cwd: str | None) -> str:
    return call_label(paint, ev.kind, ev.func_name, ev.file, ev.args_repr, ev.partial,
                      ev.task_name if task_start else None, arg_names, cwd)


def _outcome(ev: CallEvent, paint: Painter, show_time: bool) -> str:
    return call_outcome(paint, ev.kind, ev.end, ev.duration, ev.result_repr, ev.exception, show_time)


def format_tree(
    events: Sequence[CallEvent] | Iterable[CallEvent],
    *,
    color: bool = False,
    max_depth: int | None = None,
    thread: int | str | None = None,
    show_time: bool | None = None,
    arg_names: bool = True,
    cwd: str | None = None,
) -> list[str]:
    """The tree as lines (no trailing newlines).

    - `max_depth`: 0 shows roots only; a call cut off there shows `[+N calls]`.
    - `thread`: only calls of this session thread id (int) or thread name (str).
    - `show_time`: None = show durations when the events have them.
    - `arg_names`: `fib(n=3)` (True) or the seed's values-only `fib(3)` (False).
    - `cwd`: module code is shown with its file relative to this directory (the recorded
      program's; default: the current directory).
    """
    if cwd is None:
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = None
    evs = list(events)
    if thread is not None:
        evs = [e for e in evs if e.thread == thread or (isinstance(thread, str) and e.thread_name == thread)]
    if show_time is None:
        show_time = any(e.duration is not None for e in evs)
    paint = Painter(color)
    by_id, children, roots = _tree_shape(evs)
    threads: list[int | None] = []
    for r in roots:
        if r.thread not in threads:
            threads.append(r.thread)
    lines: list[str] = []
    for th in threads:
        if len(threads) > 1:
            name = next((r.thread_name for r in roots if r.thread == th and r.thread_name), None)
            lines.append(paint("thread", f"── thread {name or th} ──"))
        thread_roots = [r for r in roots if r.thread == th]
        lines.extend(_walk_lines(thread_roots, by_id, children, paint, max_depth, show_time, arg_names, cwd))
    return lines


def _tree_shape(
    evs: list[CallEvent],
) -> tuple[dict[int, CallEvent], dict[int, list[CallEvent]], list[CallEvent]]:
    """Calls by id, each call's children in order, and the roots (calls whose parent is absent)."""
    by_id = {e.id: e for e in evs}
    children: dict[int, list[CallEvent]] = {}
    roots: list[CallEvent] = []
    for e in evs:
        if e.parent_id is not None and e.parent_id in by_id:
            children.setdefault(e.parent_id, []).append(e)
        else:
            roots.append(e)
    return by_id, children, roots


def calls_below(count: int) -> str:
    """The note a call cut by --max-depth ends with: `[+3 calls]`, `[+1 call]`."""
    return f"[+{count} call{'' if count == 1 else 's'}]"


def _walk_lines(
    roots: list[CallEvent],
    by_id: dict[int, CallEvent],
    children: dict[int, list[CallEvent]],
    paint: Painter,
    max_depth: int | None,
    show_time: bool,
    arg_names: bool,
    cwd: str | None,
) -> list[str]:
    """The lines of one thread's trees: iterative (deep recursion must not hit Python's limit)."""

    def subtree_size(ev: CallEvent) -> int:
        n = 0
        todo = list(children.get(ev.id, ()))
        while todo:
            c = todo.pop()
            n += 1
            todo.extend(children.get(c.id, ()))
        return n

    lines: list[str] = []
    arrow_in = paint("arrow", "→")
    arrow_out = paint("arrow", "←")
    # ("open", ev, depth) / ("close", ev, depth)
    todo: list[tuple[bool, CallEvent, int]] = [(True, r, 0) for r in reversed(roots)]
    while todo:
        opening, ev, depth = todo.pop()
        parent = by_id.get(ev.parent_id) if ev.parent_id is not None else None
        task_start = ev.task is not None and (parent is None or parent.task != ev.task)
        label = _label(ev, paint, arg_names, task_start, cwd)
        pad = "  " * depth
        kids = children.get(ev.id)
        if not opening:
            lines.append(f"{pad}{arrow_out} {label}{_outcome(ev, paint, show_time)}")
            continue
        if not kids:
            lines.append(f"{pad}{arrow_in} {label}{_outcome(ev, paint, show_time)}")
        elif max_depth is not None and depth >= max_depth:
            more = paint("note", calls_below(subtree_size(ev)))
            lines.append(f"{pad}{arrow_in} {label}{_outcome(ev, paint, show_time)} {more}")
        else:
            lines.append(f"{pad}{arrow_in} {label}")
            todo.append((False, ev, depth))
            for k in reversed(kids):
                todo.append((True, k, depth + 1))
    return lines


def print_tree(
    events: Sequence[CallEvent] | Iterable[CallEvent],
    *,
    file: IO[str] | None = None,
    color: bool | None = None,
    max_depth: int | None = None,
    thread: int | str | None = None,
    show_time: bool | None = None,
    arg_names: bool = True,
    cwd: str | None = None,
) -> None:
    """Print the seed-style call tree (see `format_tree`); colour decided by `use_color(file)`
    when `color` is None."""
    out = file if file is not None else sys.stdout
    if color is None:
        color = use_color(out)
    lines = format_tree(events, color=color, max_depth=max_depth, thread=thread,
                        show_time=show_time, arg_names=arg_names, cwd=cwd)
    if lines:
        out.write("\n".join(lines) + "\n")
    try:
        out.flush()
    except Exception:
        pass
