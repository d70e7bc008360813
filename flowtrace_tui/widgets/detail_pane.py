"""Everything about the selected call: arguments, result or exception, where it is defined (with
a source excerpt when the file is readable), thread/task, times (lifetime and running time for
a generator/coroutine that was suspended), suspensions, children, and the
path from the root (each step is a link that jumps to that call)."""

from __future__ import annotations

import linecache
import os

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from flowtrace.ftr import format as F
from flowtrace.printing import BODY_KINDS, body_title

from ..model.index import TreeIndex
from ..model.loader import HOW_OPEN, HOW_RAISE, HOW_RETURN, HOW_UNFINISHED
from ..model.units import fmt_ns, plural
from .call_tree import SUSPEND_GLYPH

MAX_TEXT = 4000  # characters of one argument/result text shown (the rest is elided)


class DetailPane(VerticalScroll, can_focus=False):
    DEFAULT_CSS = """
    DetailPane {
        width: 45%;
        min-width: 30;
        border-left: vkey $primary 50%;
        background: $surface;
        padding: 0 1;
        display: none;
        &.-shown { display: block; }
        #detail-path { margin-bottom: 1; }
        #detail-body { width: 1fr; }
    }
    """

    def compose(self):
        yield Static(id="detail-path")
        yield Static(id="detail-body")

    def show_call(self, index: TreeIndex | None, pos: int) -> None:
        """Fill the pane for the call at `pos` (-1 or no index: empty)."""
        path = self.query_one("#detail-path", Static)
        body = self.query_one("#detail-body", Static)
        if index is None or pos < 0 or pos >= index.size:
            path.update("")
            body.update(Text("No call selected", style="dim"))
            return
        path.update(_path_content(index, pos))
        self.body = _body(index, pos)
        body.update(self.body)

    body: RenderableType = ""

    def plain_text(self, width: int = 100) -> str:
        """The body as plain text (what a reader sees), e.g. for tests and copying."""
        from rich.console import Console

        console = Console(width=width, record=True, file=open(os.devnull, "w"), color_system=None)
        console.print(self.body)
        return console.export_text()


def _name(index: TreeIndex, pos: int) -> str:
    node = index.node(pos)
    if index.is_group(node):
        g = index.group(node)
        return f"{g.kind} {g.label}" if g else "group"
    return _title(index.data, int(index.data.col("func")[node]))


def _title(data: object, fid: int) -> str:
    """The function's qualified name, or `class Name` / `<module> file` for class and module
    code (as the call tree shows them)."""
    info = data.func(fid)  # type: ignore[attr-defined]
    if info is not None:
        cwd = data.meta.get("cwd")  # type: ignore[attr-defined]
        title = body_title(info.kind, info.qualname, info.file, cwd if isinstance(cwd, str) else None)
        if title is not None:
            return title
    return data.func_name(fid)  # type: ignore[attr-defined]


def _path_content(index: TreeIndex, pos: int) -> Content:
    """'a › b › c' with each ancestor a link to `app.jump(pos)`."""
    parts = []
    for p in index.ancestors(pos)[-12:]:
        parts.append(Content.from_markup(f"[@click=app.jump({int(p)})]$name[/]", name=_name(index, p)))
    parts.append(Content.from_markup("[b]$name[/b]", name=_name(index, pos)))
    return Content(" › ").join(parts)


def _body(index: TreeIndex, pos: int) -> RenderableType:
    data = index.data
    node = index.node(pos)
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    kids = len(index.children(pos))
    desc = index.descendants(pos)
    if index.is_group(node):
        g = index.group(node)
        table.add_row("group", f"{g.kind} {g.label}" if g else "")
        table.add_row("busy", fmt_ns(int(index.dur[node])))
        table.add_row("calls", f"{plural(kids, 'root')}, {plural(desc, 'call')}")
        return table
    fid = int(data.col("func")[node])
    info = data.func(fid)
    how = int(data.col("how")[node])
    t0 = int(data.col("t0")[node])
    t1 = int(data.col("t1")[node])
    args = data.strings.text(int(data.col("args")[node]))
    val = data.strings.text(int(data.col("val")[node]))
    flag = int(data.col("flag")[node])
    table.add_row("call", Text(_title(data, fid), style="bold"))
    if info is not None:
        table.add_row("module", info.module)
        table.add_row("kind", info.kind)
    body = info is not None and info.kind in BODY_KINDS  # class/module code: no args, no result
    if not body:
        table.add_row("args", _clip(args) if args else Text("(not captured)" if not flag else "(unknown: already running)", style="dim"))
    if how == HOW_RETURN:
        if not body:
            table.add_row("result", _clip(val) if val else Text("(not captured)", style="dim"))
    elif how == HOW_RAISE:
        table.add_row("raised", Text("✗ " + (_clip(val) or "exception"), style="bold red"))
    elif how == HOW_UNFINISHED:
        table.add_row("end", Text("⋯ unfinished when the session stopped", style="yellow"))
    elif how == HOW_OPEN:
        table.add_row("end", Text("⋯ no end recorded (still running, or the process died)", style="yellow"))
    thr = int(data.col("thread")[node])
    table.add_row("thread", data.thread_name(thr))
    task = int(data.col("task")[node])
    if task:
        table.add_row("task", data.task_name(task))
    table.add_row("start", fmt_ns(t0) + (" (already running)" if flag & F.CALL_PARTIAL else ""))
    if how != HOW_OPEN:
        table.add_row("end", fmt_ns(t1))
    nsusp = int(data.col("nsusp")[node])
    life = int(index.dur[node])
    if nsusp:  # a generator/coroutine: its lifetime includes the time it spent suspended
        run = int(index.run[node])
        table.add_row("lifetime", f"{fmt_ns(life)} (first run to end)")
        table.add_row("running", f"{fmt_ns(run)} (lifetime minus {fmt_ns(life - run)} suspended)")
    else:
        table.add_row("total", fmt_ns(life))
    table.add_row("self", fmt_ns(int(index.self_time[node])))
    if nsusp:
        table.add_row("suspended", f"{SUSPEND_GLYPH} {nsusp} times")
    marks = _marks(index, node)
    if marks is not None:
        table.add_row("events", marks)
    table.add_row("children", f"{kids:,}")
    table.add_row("descendants", f"{desc:,}")
    table.add_row("call id", str(node))
    parts: list[RenderableType] = [table]
    if info is not None and info.file:
        parts.append(Text(f"\n{info.file}:{info.line}", style="underline"))
        parts.append(_source(info.file, info.line))
    return Group(*parts)


def _marks(index: TreeIndex, node: int) -> Text | None:
    """The call's suspend/resume/raise/handled events (the first 20)."""
    data = index.data
    rows = data.marks_of(node)
    if len(rows) == 0:
        return None
    kind = data.mark_col("kind")
    t = data.mark_col("t")
    ref = data.mark_col("ref")
    text = Text()
    for i in rows[:20].tolist():
        name = F.MARK_NAMES.get(int(kind[i]), "?")
        if kind[i] == F.MARK_FOLD:  # n runs in one row: how many, and how long they ran
            name = f"{int(data.mark_col('n')[i]):,} runs, {fmt_ns(int(data.mark_col('run')[i]))} running, first yield"
        r = data.strings.text(int(ref[i]))
        text.append(f"{fmt_ns(int(t[i]))} {name}" + (f" {_one(r)}" if r else "") + "\n")
    if len(rows) > 20:
        text.append(f"… {len(rows) - 20:,} more", style="dim")
    return text


def _one(text: str) -> str:
    return text if len(text) < 60 else text[:59] + "…"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… ({len(text):,} characters)"


def _source(path: str, line: int) -> RenderableType:
    """A highlighted excerpt around `line`, or a note when the file cannot be read."""
    if not path or not os.path.isfile(path):
        return Text("(source not available)", style="dim")
    lines = linecache.getlines(path)
    if not lines or line <= 0:
        return Text("(source not available)", style="dim")
    start = max(1, line - 2)
    stop = min(len(lines), line + 8)
    code = "".join(lines[start - 1 : stop])
    return Syntax(code, "python", line_numbers=True, start_line=start, highlight_lines={line},
                  theme="ansi_dark", word_wrap=False, background_color="default")
