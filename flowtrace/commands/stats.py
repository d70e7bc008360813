"""`flowtrace stats FILE`: the functions table (calls, total, self, mean, max, share, raised)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import sys
from typing import Any, Mapping

from ..ftr.processes import surveyed_parts
from ..ftr.reader import Function
from ..ftr.scan import Outlook, SessionInfo, glance, survey, surveyed
from ..printing import Painter, short_path
from ..profile import FunctionTimes, profile
from .print import is_terminal, non_negative, notes, resolve_thread, use_color

SORTS = ("calls", "total", "self", "mean", "max")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "stats",
        help="which functions cost the most: a table of calls and times per function",
        description="One row per function: calls, total time (each outermost call counted once, so "
                    "recursion is not counted twice), self time, mean and max per call, share of the "
                    "session, calls left by an exception. Times are running times (a generator or "
                    "coroutine does not run while suspended), and each run of one is the child time "
                    "of the call that ran it (a context manager's generator: __enter__'s up to its "
                    "yield, __exit__'s after it). Coloured on a terminal; plain when piped or when "
                    "NO_COLOR is set.",
    )
    p.add_argument("file", metavar="FILE", help="a .ftr session file")
    p.add_argument("--sort", choices=SORTS, default="total", help="column to sort by, largest first "
                   "(default: total)")
    p.add_argument("--limit", type=non_negative, metavar="N",
                   help="show the first N rows (default: 30 as text, all as JSON; 0 = all)")
    p.add_argument("--thread", metavar="T", help="only the calls of thread T (its name or number)")
    p.add_argument("--include", action="append", default=[], metavar="P",
                   help="only functions matching P (a glob on the module, the qualified name or "
                        "module.qualname, e.g. 'json.*' or '*.save'); repeatable")
    p.add_argument("--exclude", action="append", default=[], metavar="P",
                   help="leave out functions matching P (wins over --include); repeatable")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")


def matches(f: Function, patterns: list[str]) -> bool:
    names = (f.module, f.qualname, f"{f.module}.{f.qualname}")
    return any(fnmatch.fnmatchcase(name, p) for p in patterns for name in names)


def rows(functions: Mapping[int, Function], times: dict[int, FunctionTimes], sort: str, include: list[str],
         exclude: list[str]) -> list[tuple[Function, FunctionTimes]]:
    """The table's rows: functions with calls, filtered, largest `sort` first (then by name)."""
    out = []
    for fid, t in times.items():
        f = functions[fid]
        if not t.calls or (include and not matches(f, include)) or (exclude and matches(f, exclude)):
            continue
        out.append((f, t))
    out.sort(key=lambda row: (-getattr(row[1], sort), row[0].qualname, row[0].module, row[0].id))
    return out


def format_ns(ns: float) -> str:
    """A duration in the unit that keeps three significant digits: `812 ns`, `4.20 ms`, `1.35 s`."""
    for unit, size in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= size:
            value = ns / size
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f} {unit}"
    return f"{ns:.0f} ns"


def table(info: SessionInfo, shown: list[tuple[Function, FunctionTimes]], total: int, color: bool,
          width: int | None = None) -> list[str]:
    """The rows as aligned text lines, with a header; within `width` columns when given (a
    terminal's: the text columns are shortened, as the explorer's functions view does, rather
    than every row wrapping onto a second line)."""
    paint = Painter(color)
    cwd = info.meta.get("cwd") if isinstance(info.meta.get("cwd"), str) else None
    header = ("function", "module", "location", "calls", "total", "self", "mean", "max", "share", "raised")
    body = []
    for f, t in shown:
        where = f"{short_path(f.file, cwd)}:{f.line}" if f.file else ""
        share = f"{100 * t.total / total:.1f}%" if total else "-"
        body.append((f.qualname, f.module, where, str(t.calls), format_ns(t.total), format_ns(t.self),
                     format_ns(t.mean), format_ns(t.max), share, str(t.raised)))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    left = 3  # function, module and location are text (left-aligned); the rest numbers
    if width is not None:
        widths = fitted(widths, width)

    def line(cells: tuple[str, ...], styles: tuple[str | None, ...]) -> str:
        parts = [(shortened(c, w, from_left=i == 2).ljust(w) if i < left else c.rjust(w), style)
                 for i, (c, w, style) in enumerate(zip(cells, widths, styles)) if w]
        return "  ".join(paint(s, p) if s else p for p, s in parts).rstrip()

    out = [line(header, ("thread",) * len(header))]
    for cells in body:
        raised = "error" if cells[-1] != "0" else None
        out.append(line(cells, ("name", None, "arrow", None, "time", "time", None, None, "result", raised)))
    return out


def fitted(widths: list[int], width: int) -> list[int]:
    """Column widths whose line (two spaces between columns) fits in `width`: the widest of
    the function, module and location columns gives up a character at a time, down to a
    floor each; if that is not enough the module column goes (the location names the file;
    0: left out) and the other two shrink further. The numbers are never cut."""
    for floors, dropped in (({0: 16, 1: 10, 2: 16}, False), ({0: 8, 2: 8}, True)):
        out = list(widths)
        if dropped:
            out[1] = 0
        excess = sum(out) + 2 * (sum(1 for w in out if w) - 1) - width
        while excess > 0:
            column = max(floors, key=lambda c: out[c] - floors[c])
            if out[column] <= floors[column]:
                break
            out[column] -= 1
            excess -= 1
        if excess <= 0:
            break
    return out


def shortened(text: str, width: int, from_left: bool = False) -> str:
    """`text` in `width` characters: its start and `…` (`sqlalchemy.orm.…`), or with
    `from_left`, `…` and its end (`…/orm/session.py:2141`: a location's file and line)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return "…" + text[len(text) - width + 1:] if from_left else text[:width - 1] + "…"


def document(info: SessionInfo, shown: list[tuple[Function, FunctionTimes]], total: int, sort: str,
             calls: int) -> dict[str, Any]:
    return {
        "session": {"file": info.source, "status": info.status, "calls": calls, "total_ns": total},
        "sort": sort,
        "functions": [
            {"function": f.qualname, "module": f.module, "file": f.file, "line": f.line, "kind": f.kind,
             "calls": t.calls, "total_ns": t.total, "self_ns": t.self, "mean_ns": round(t.mean), "max_ns": t.max,
             "share": t.total / total if total else None, "raised": t.raised}
            for f, t in shown
        ],
    }


def run(args: argparse.Namespace) -> int:
    if args.thread is not None:  # a thread of the root process, named by what the whole file says
        first: SessionInfo | Outlook = survey(args.file)
        thread: int | None = resolve_thread(first, args.thread)  # type: ignore[arg-type]
        session = None
    else:  # (each part checked in the pass that times it)
        first, thread = glance(args.file), None
        session = surveyed_parts(args.file, first, read=glance)
    if session is not None and session.several:  # every process's calls in one table
        profiles = [profile(part) for _proc, part in session.parts]
        functions, times, total = merged_times([(p.session, p) for p in profiles])  # type: ignore[misc]
        calls = sum(p.session.n_calls for p in profiles)  # type: ignore[union-attr]
    else:
        result = profile(first, thread=thread)
        functions, times, total = surveyed(first).functions, result.functions, result.total
        calls = surveyed(first).n_calls
    info = surveyed(first)
    shown = rows(functions, times, args.sort, args.include, args.exclude)
    limit = args.limit if args.limit is not None else (30 if args.format == "text" else 0)
    more = len(shown) - limit if limit and len(shown) > limit else 0
    if more:
        shown = shown[:limit]
    if args.format == "json":
        json.dump(document(info, shown, total, args.sort, calls), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    elif shown:
        width = shutil.get_terminal_size().columns if is_terminal(sys.stdout) else None  # (piped: whole)
        sys.stdout.write("\n".join(table(info, shown, total, use_color(sys.stdout), width)) + "\n")
    sys.stdout.flush()
    if more:
        sys.stderr.write(f"flowtrace: note: {more} more functions (--limit 0 shows all)\n")
    if session is not None and session.several:
        sys.stderr.write(f"flowtrace: note: {args.file}: calls of {len(session.parts)} processes, "
                         "summed per function\n")
        for note in session.notes:
            sys.stderr.write(f"flowtrace: note: {args.file}: {note}\n")
        for part in (surveyed(p) for _proc, p in session.parts[1:]):
            if not part.finished:
                sys.stderr.write(f"flowtrace: note: {part.source}: {part.describe()}\n")
    for note in notes(info, thread):
        sys.stderr.write(f"flowtrace: note: {info.source}: {note}\n")
    return 0


def merged_times(profiles: list[tuple[SessionInfo, Any]]) -> tuple[dict[int, Function], dict[int, FunctionTimes], int]:
    """Several processes' function times as one table: a function (same module, qualified name,
    file and line) sums its calls and times over the processes that ran it (max: the largest).
    Returns the functions and their times under new ids, and the summed total."""
    functions: dict[int, Function] = {}
    times: dict[int, FunctionTimes] = {}
    ids: dict[tuple[str, str, str, int, int], int] = {}
    total = 0
    for info, result in profiles:
        total += result.total
        seen: dict[tuple[str, str, str, int], int] = {}
        for fid in sorted(result.functions):
            t = result.functions[fid]
            f = info.functions[fid]
            # two code objects of one process with the same name and place (`<string>` code run
            # by exec) stay two rows, as in a single-process table: the n-th of each process
            # goes with the n-th of the others
            place = (f.module, f.qualname, f.file, f.line)
            seen[place] = seen.get(place, 0) + 1
            new = ids.setdefault((*place, seen[place]), len(ids) + 1)
            functions.setdefault(new, f)
            into = times.setdefault(new, FunctionTimes())
            into.calls += t.calls
            into.outer += t.outer
            into.total += t.total
            into.self += t.self
            into.sum += t.sum
            into.max = max(into.max, t.max)
            into.raised += t.raised
    return functions, times, total
