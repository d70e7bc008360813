"""`flowtrace diff BASE NEW`: what changed between two sessions, path by path (or by function)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from typing import Any

from .. import diff_rules as R
from ..ftr.processes import Process, surveyed_parts
from ..ftr.scan import survey
from ..printing import Painter
from ..session_diff import FirstDifference, Outcome, Part, Row, SessionDiff, UnitStats, diff_sessions, program_of
from .print import is_terminal, non_negative, use_color
from .stats import format_ns

SORTS = ("self", "total", "calls")
_STYLE = {R.NEW: "result", R.GONE: "note", R.RAISED: "error", R.CALLS: "args", R.OUTCOME: "thread",
          R.SLOWER: "error", R.FASTER: "result", R.SAME: "arrow"}
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_TEXT_WIDTH = 100  # an argument or result text longer than this is cut (text output only)
_MIN_PATH_WIDTH = 40  # on a narrow terminal a path's lines are this long (and wrap)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diff",
        help="what changed between two sessions: calls, times, exceptions, results, path by path",
        description="Match the calls of two sessions by call path (the function names from the root "
                    "call down; threads merged) or by function, and show what changed: paths only in "
                    "one run, call counts, total and self time, exceptions that appear or disappear, "
                    "and, where a path was called as often in both, results or arguments that differ "
                    "(the first differing call named). Changes of calls, outcomes and exceptions "
                    "first, then changes of time, largest first. A time change counts "
                    "only when it is at least 10% of BASE's and at least max(50 µs, 0.5% of the "
                    "longer session) (--threshold). Coloured on a terminal; plain when piped or when "
                    "NO_COLOR is set.",
    )
    p.add_argument("base", metavar="BASE", help="the session to compare against (.ftr)")
    p.add_argument("new", metavar="NEW", help="the session to compare (.ftr)")
    p.add_argument("--by", choices=("path", "function"), default="path",
                   help="match calls by call path (default) or aggregate them by function")
    p.add_argument("--threshold", action="append", default=[], type=threshold, metavar="T",
                   help="what a time change must reach to count: a share of BASE's time ('10%%', the "
                        "default) or a duration ('2ms', '500us'); give both as two options")
    p.add_argument("--sort", choices=SORTS, default="self",
                   help="order of changes: by the change of self time (default), total time or calls")
    p.add_argument("--all", action="store_true", help="also list what did not change (at the end)")
    p.add_argument("--limit", type=non_negative, metavar="N",
                   help="show the first N rows (default: 30 as text, all as JSON; 0 = all)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")


def threshold(text: str) -> tuple[str, float]:
    """argparse type: `10%` (relative) or `2ms` / `500us` / `1.5s` / `800ns` (absolute)."""
    t = text.strip().replace(" ", "")
    try:
        if t.endswith("%"):
            value = float(t[:-1])
            if value >= 0:
                return ("relative", value / 100)
        else:
            m = re.fullmatch(r"([0-9.]+)(ns|us|µs|ms|s)", t)
            if m:
                return ("absolute", float(m.group(1)) * _UNITS[m.group(2)])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"not a threshold: {text!r} (a percentage like 10%, or a duration "
                                     "like 2ms, 500us)")


def thresholds_of(given: list[tuple[str, float]]) -> R.Thresholds:
    kw: dict[str, Any] = {}
    for kind, value in given:
        if kind == "relative":
            kw["relative"] = value
        else:
            kw["absolute_ns"] = round(value)
    return R.Thresholds(**kw)


def delta(a: UnitStats | None, b: UnitStats | None, attr: str) -> int:
    return (getattr(b, attr) if b else 0) - (getattr(a, attr) if a else 0)


def ranked(diff: SessionDiff, sort: str, everything: bool) -> list[Row]:
    """Changes of calls, outcomes and exceptions first (never noise), then changes of time
    only (where noise, such as a call descheduled on a busy machine, can be), each largest
    change of `sort` first, then in the order paths were first met (tree order); with
    `everything` the unchanged rows follow."""
    def key(r: Row) -> tuple[int, int, int]:
        tier = 2 if not r.changed else 0 if R.STRUCTURAL.intersection(r.kinds) else 1
        return (tier, -abs(delta(r.base, r.new, sort)), r.unit)
    return sorted((r for r in diff.rows if everything or r.changed), key=key)


def run(args: argparse.Namespace) -> int:
    base, base_notes = session_parts(args.base)
    new, new_notes = session_parts(args.new)
    diff = diff_sessions(base, new, args.by, thresholds_of(args.threshold))
    shown = ranked(diff, args.sort, args.all)
    limit = args.limit if args.limit is not None else (30 if args.format == "text" else 0)
    more = len(shown) - limit if limit and len(shown) > limit else 0
    if more:
        shown = shown[:limit]
    if args.format == "json":
        json.dump(document(diff, shown, args.sort), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        width = shutil.get_terminal_size().columns if is_terminal(sys.stdout) else None  # (piped: whole paths)
        sys.stdout.write("\n".join(text_report(diff, shown, use_color(sys.stdout), width)) + "\n")
    sys.stdout.flush()
    if more:
        sys.stderr.write(f"flowtrace: note: {more} more rows (--limit 0 shows all)\n")
    for note in [*base_notes, *new_notes, *diff.notes]:
        sys.stderr.write(f"flowtrace: note: {note}\n")
    return 0


def session_parts(path: str) -> tuple[list[Part], list[str]]:
    """A session's parts (the root file first, then each followed process's part in FILE.d/,
    in tree order) and the notes on processes that could not be read or were not followed."""
    info = survey(path)
    session = surveyed_parts(path, info)
    if not session.several:
        return [Part("", info)], []
    parts = [Part("" if proc.how == "root" else process_command(proc), part) for proc, part in session.parts]
    return parts, [f"{path}: {note}" for note in session.notes]


def process_command(proc: Process) -> str:
    """What a child process's paths start under: the program it ran (`python prog.py`,
    `python -m pkg.worker`, `python -c …`; a forked child's is its parent's, marked `(fork)`),
    without its arguments or pid, so that the workers of one program are matched together."""
    words = [str(w) for w in proc.argv]
    if words[:1] == ["-m"] and len(words) > 1:
        program = f"python -m {words[1]}"
    elif words[:1] == ["-c"]:
        program = "python -c …"
    else:
        program = f"python {os.path.basename(words[0])}" if words else "python"
    return f"{program} (fork)" if proc.how == "fork" else program


def matched(diff: SessionDiff) -> dict[str, int]:
    """How many units there are, in both sessions, in one only, changed."""
    rows = diff.rows
    return {"units": len(rows), "both": sum(1 for r in rows if r.base is not None and r.new is not None),
            "only_base": sum(1 for r in rows if r.new is None), "only_new": sum(1 for r in rows if r.base is None),
            "changed": sum(1 for r in rows if r.changed)}


# --- text ---------------------------------------------------------------------------------------

def summary_lines(diff: SessionDiff) -> list[str]:
    """Two lines: the sessions, then what was matched and what the thresholds were."""
    a, b = diff.base, diff.new
    change = R.percent(a.total, b.total)
    pct = f" ({change:+.0f}%)" if change is not None else ""
    unit = "paths" if diff.by == "path" else "functions"
    m = matched(diff)
    return [
        f"BASE {a.info.source}: {a.n_calls} calls, {format_ns(a.total)}   "
        f"NEW {b.info.source}: {b.n_calls} calls, {format_ns(b.total)}{pct}",
        f"{m['units']} {unit}: {m['both']} in both, {m['only_base']} only in BASE, {m['only_new']} only in NEW; "
        f"{m['changed']} changed (a time change under {diff.thresholds.relative:.0%} of BASE or under "
        f"{format_ns(diff.floor_ns)} is noise)",
    ]


def _side(u: UnitStats | None, attr: str) -> str:
    if u is None:
        return "–"
    v = getattr(u, attr)
    return str(v) if attr == "calls" else format_ns(v)


def _signed_ns(ns: int) -> str:
    return ("+" if ns > 0 else "-" if ns < 0 else "±") + format_ns(abs(ns))


def _pct(a: UnitStats | None, b: UnitStats | None, attr: str) -> str:
    p = R.percent(getattr(a, attr), getattr(b, attr)) if a is not None and b is not None else None
    return f"{p:+.0f}%" if p is not None else ""


def unit_label(keys: tuple[str, ...]) -> str:
    """A path as `<module> › main › load`; a function (one key) as `load (app.io)`."""
    if len(keys) == 1:
        module, _, qualname = keys[0].partition(":")
        return f"{qualname} ({module})" if qualname != "<module>" else R.display_name(keys[0])
    return R.path_text(keys)


def table_cells(r: Row) -> tuple[str, ...]:
    a, b = r.base, r.new
    calls = f"{_side(a, 'calls')} → {_side(b, 'calls')}"
    return (",".join(r.kinds), calls, _side(a, "total"), _side(b, "total"), _signed_ns(delta(a, b, "total")),
            _pct(a, b, "total"), _side(a, "self"), _side(b, "self"), _signed_ns(delta(a, b, "self")),
            _pct(a, b, "self"), unit_label(r.keys))


def text_report(diff: SessionDiff, shown: list[Row], color: bool, width: int | None = None) -> list[str]:
    """The text output. With `width` (a terminal's) every line fits: a path too long for its row
    goes under the row's figures, whole, on lines of its own broken between names (wrap_path):
    shortening it would make paths that differ in their middle read the same. Piped, each path
    is on its row, on one line (for grep)."""
    paint = Painter(color)
    out = summary_lines(diff)
    if not shown:
        out.append("no change" if diff.rows else "no calls in either session")
        return out
    header = ("change", "calls", "total BASE", "NEW", "Δ total", "%", "self BASE", "NEW", "Δ self", "%",
              "path" if diff.by == "path" else "function")
    body = [table_cells(r) for r in shown]
    widths = [max(len(c[i]) for c in [header, *body]) for i in range(len(header) - 1)]
    indent = " " * (widths[0] + 2)
    room = None if width is None else width - 1 - sum(w + 2 for w in widths)  # the path column's
    path_width = None if width is None else max(_MIN_PATH_WIDTH, width - 1 - len(indent))  # a line's own

    def line(cells: tuple[str, ...], kind: str | None, last: str) -> str:
        parts = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        if kind is not None:
            parts[0] = paint(_STYLE[kind], parts[0])
            parts[4], parts[8] = paint("time", parts[4]), paint("time", parts[8])
        return "  ".join([*parts, paint("name", last) if kind else last]).rstrip()

    out.append("")
    out.append(paint("thread", line(header, None, header[-1])))
    for r, cells in zip(shown, body):
        kind = R.primary_kind(r.kinds)
        if room is None or path_width is None or len(cells[-1]) <= room:
            out.append(line(cells, kind, cells[-1]))
        else:
            out.append(line(cells, kind, ""))
            out.extend(indent + paint("name", text) for text in wrap_path(cells[-1], path_width))
        out.extend(indent + paint(style, text) for style, text in detail_lines(diff, r))
    return out


def wrap_path(path: str, width: int) -> list[str]:
    """A call path on lines of at most `width` characters, each broken after a separator (a
    name longer than the width has a line of its own)."""
    lines: list[str] = []
    current = ""
    names = path.split(R.PATH_SEPARATOR)
    for i, name in enumerate(names):
        piece = name + (R.PATH_SEPARATOR.rstrip() if i + 1 < len(names) else "")
        if current and len(current) + 1 + len(piece) > width:
            lines.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    lines.append(current)
    return lines


def detail_lines(diff: SessionDiff, r: Row) -> list[tuple[str, str]]:
    """The lines under a row: exceptions that appear or disappear, the first differing call."""
    out = []
    a, b = r.base, r.new
    if R.RAISED in r.kinds and a is not None and b is not None:
        for kind in sorted(a.exceptions.keys() | b.exceptions.keys()):
            x, y = a.exceptions.get(kind, 0), b.exceptions.get(kind, 0)
            if not x:
                out.append(("error", f"raises {kind} (in {y} of {b.calls} calls; not in BASE)"))
            elif not y:
                out.append(("result", f"no longer raises {kind} (in {x} of {a.calls} calls in BASE)"))
            elif x != y:
                out.append(("error", f"{kind} left {x} → {y} calls"))
    d = r.first_difference
    if d is not None:
        name = R.display_name(r.keys[-1])
        out.append(("args", f"call {d.index + 1} of {a.calls if a else '?'} differs (BASE call "
                            f"{call_name(diff, 'base', d.base)}, NEW call {call_name(diff, 'new', d.new)}):"))
        base, new = outcome_texts(name, d.base, d.new)
        out.append(("arrow", f"  BASE  {base}"))
        out.append(("args", f"  NEW   {new}"))
    elif r.difference_range is not None:
        lo, hi = r.difference_range
        out.append(("args", f"outcomes differ from a call among calls {lo}–{hi} of {a.calls if a else '?'}"))
    return out


def call_name(diff: SessionDiff, which: str, o: Outcome) -> str:
    """A call's id, and in a session of several processes the file of the process it ran in."""
    run = diff.base if which == "base" else diff.new
    return f"{o.call} in {run.parts[o.part].info.source}" if len(run.parts) > 1 else str(o.call)


def _cut(text: str) -> str:
    return text if len(text) <= _TEXT_WIDTH else text[: _TEXT_WIDTH - 1] + "…"


def cut_pair(a: str | None, b: str | None) -> tuple[str | None, str | None]:
    """Two texts shown one above the other: as they are when both fit. Else each without its
    object addresses (the comparison ignores them: they differ between runs) and, where they
    differ, from a little before their first different character: a long argument list that
    differs in its last argument would otherwise be cut before the difference on both lines."""
    if a is None or b is None or (len(a) <= _TEXT_WIDTH and len(b) <= _TEXT_WIDTH):
        return (None if a is None else _cut(a)), (None if b is None else _cut(b))
    a, b = R.normalize_text(a) or "", R.normalize_text(b) or ""  # (str in, str out)
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = 0 if a == b else max(0, first - _TEXT_WIDTH // 4)
    return _from(a, start), _from(b, start)


def _from(text: str, start: int) -> str:
    if start == 0:
        return _cut(text)
    rest = text[start:]
    return "…" + (rest if len(rest) < _TEXT_WIDTH else rest[: _TEXT_WIDTH - 2] + "…")


def outcome_texts(name: str, a: Outcome, b: Outcome) -> tuple[str, str]:
    """Two calls' lines, `f(n=2) → 1`, `f(n=2) ✗ ValueError: …`, `f(n=2) ⋯ unfinished`, each
    part cut so that where the two differ shows (cut_pair)."""
    (args_a, args_b), (value_a, value_b) = cut_pair(a.args, b.args), cut_pair(a.value, b.value)
    return _outcome_line(name, a.end, args_a, value_a), _outcome_line(name, b.end, args_b, value_b)


def _outcome_line(name: str, end: int, args: str | None, value: str | None) -> str:
    tail = {R.END_RETURN: f"→ {value if value is not None else '…'}",
            R.END_RAISE: f"✗ {value if value is not None else 'raised'}"}.get(end, "⋯ unfinished")
    return f"{name}({args if args is not None else '…'}) {tail}"


# --- json ---------------------------------------------------------------------------------------

def _stats(u: UnitStats | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {"calls": u.calls, "total_ns": u.total, "self_ns": u.self, "raised": u.raised,
            "exceptions": dict(sorted(u.exceptions.items())), "first_call": u.first_call}


def _outcome(run: Any, o: Outcome) -> dict[str, Any]:
    return {"call": o.call, "file": run.parts[o.part].info.source, "args": o.args, "end": o.end, "value": o.value}


def _difference(diff: SessionDiff, d: FirstDifference | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"number": d.index + 1, "base": _outcome(diff.base, d.base), "new": _outcome(diff.new, d.new)}


def _session(diff: SessionDiff, which: str) -> dict[str, Any]:
    r = diff.base if which == "base" else diff.new
    info = r.info
    return {"file": info.source, "status": info.status, "problem": info.problem, "calls": r.n_calls,
            "total_ns": r.total, "program": program_of(info),
            "processes": [{"process": p.key or None, "file": p.info.source, "status": p.info.status,
                           "calls": p.info.n_calls} for p in r.parts]}


def document(diff: SessionDiff, shown: list[Row], sort: str) -> dict[str, Any]:
    rows = []
    for r in shown:
        a, b = r.base, r.new
        rows.append({
            "path": list(r.keys), "change": r.kinds, "base": _stats(a), "new": _stats(b),
            "delta": {"calls": delta(a, b, "calls"), "total_ns": delta(a, b, "total"),
                      "total_pct": R.percent(a.total, b.total) if a and b else None,
                      "self_ns": delta(a, b, "self"), "self_pct": R.percent(a.self, b.self) if a and b else None},
            "first_difference": _difference(diff, r.first_difference),
            "difference_range": list(r.difference_range) if r.difference_range else None,
        })
    return {
        "format": "flowtrace-diff", "version": 1, "by": diff.by, "sort": sort,
        "base": _session(diff, "base"), "new": _session(diff, "new"),
        "thresholds": {"relative": diff.thresholds.relative, "absolute_ns": diff.floor_ns},
        "outcomes_compared": "texts" if diff.compared_texts else "ends",
        "matched": matched(diff),
        "notes": diff.notes,
        "rows": rows,
    }
