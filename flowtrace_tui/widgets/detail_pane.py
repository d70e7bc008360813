"""Everything about the selected call: arguments, result or exception, where it is defined (with
a source excerpt when the file is readable), thread/task, times (lifetime and running time for
a generator/coroutine that was suspended), suspensions, children, and the
path from the root (each step is a link that jumps to that call).

It lays out what model/call_detail.py gathered: no reading of files or columns here.
"""

from __future__ import annotations

import io
import threading

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.cache import LRUCache
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ..model.call_detail import END_OPEN, END_RAISE, END_RETURN, END_RUNNING, END_UNFINISHED, CallDetail, GroupDetail
from ..model.diff_view import DiffDetail
from ..model.merged_view import MergedDetail
from ..model.source_text import Excerpt, NoSource
from ..model.units import fmt_ns, plural
from .call_tree import SUSPEND_GLYPH
from .diff_detail import diff_body
from .merged_detail import merged_body

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

    def show(self, detail: CallDetail | GroupDetail | MergedDetail | DiffDetail | None,
             path: list[tuple[int, str]]) -> None:
        """Fill the pane (None: no call selected). `path`: (position, name) from the top down
        to the call, each a link to `app.jump(position)`."""
        shown = (detail, tuple(path))
        if shown == self._shown:
            return  # (the same facts again: a new index, then the cursor's move to the same call)
        self._shown = shown
        path_w = self.query_one("#detail-path", Static)
        body = self.query_one("#detail-body", Static)
        if detail is None:
            _update(path_w, "")
            _update(body, Text("No call selected", style="dim"))
            return
        _update(path_w, _path_content(path, detail.creator if isinstance(detail, CallDetail) else None))
        self.body = render_detail(detail)
        _update(body, _RenderedOnce(self.body))  # (laid out again and again: see _RenderedOnce)

    body: RenderableType = ""
    _shown: tuple | None = None  # (detail, path) on show

    def plain_text(self, width: int = 100) -> str:
        """The body as plain text (what a reader sees), e.g. for tests and copying."""
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(self.body)
        return console.export_text()


def _update(static: Static, content: RenderableType | Content | str) -> None:
    """Show `content` in `static`, laying the screen out again only when its height changes:
    a live view shows a new call several times a second, mostly with as many lines as the one
    before, and each layout of the whole screen took the UI thread (and the GIL the loader
    needs) ~10-40 ms. Its height at its current width is what a layout would find."""
    width = static.content_size.width
    if not width or (static.styles.width is not None and static.styles.width.is_auto):  # (None: fills)
        static.update(content)
        return
    before = static.get_content_height(static.size, static.size, width)
    static.update(content, layout=False)
    if static.get_content_height(static.size, static.size, width) != before:
        static.refresh(layout=True)


def _path_content(path: list[tuple[int, str]], creator: tuple[int, str] | None = None) -> Content:
    """'a › b › c' with each ancestor a link to `app.jump(pos)`; then, for a call in an asyncio
    task, a link to the call that created the task (C in the tree selects it too)."""
    parts = [Content.from_markup(f"[@click=app.jump({int(p)})]$name[/]", name=name) for p, name in path[:-1]]
    parts.append(Content.from_markup("[b]$name[/b]", name=path[-1][1]))
    content = Content(" › ").join(parts)
    if creator is not None:
        content += Content.from_markup(f"  (created by [@click=app.jump({int(creator[0])})]$name[/])", name=creator[1])
    return content


def render_detail(detail: CallDetail | GroupDetail | MergedDetail | DiffDetail) -> RenderableType:
    """The pane's body for a call, a group or a merged call path."""
    if isinstance(detail, MergedDetail):
        return merged_body(detail, _source(detail.source))
    if isinstance(detail, DiffDetail):
        return diff_body(detail)
    return _group_body(detail) if isinstance(detail, GroupDetail) else _call_body(detail)


def _table() -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _args(d: CallDetail) -> RenderableType:
    """The argument text, or why there is none: unknown (already running when recording
    started), not captured (`--no-args`), or none at all (a call without arguments)."""
    if d.partial:
        return Text("(unknown: already running)", style="dim")
    if d.args is None:
        return Text("(not captured)", style="dim")
    return _clip(d.args) if d.args else Text("(none)", style="dim")


def _group_body(g: GroupDetail) -> RenderableType:
    table = _table()
    table.add_row("group", g.label)
    for name, text in g.facts:
        table.add_row(name, text)
    if g.lifetime_ns is not None:
        table.add_row("lifetime", fmt_ns(g.lifetime_ns))
    table.add_row("busy", fmt_ns(g.busy_ns))
    table.add_row("calls", f"{plural(g.roots, 'root')}, {plural(g.calls, 'call')}")
    return table


def _call_body(d: CallDetail) -> RenderableType:
    table = _table()
    table.add_row("call", Text(d.title, style="bold"))
    if d.kind is not None:
        table.add_row("module", d.module or "")
        table.add_row("kind", d.kind)
    if not d.is_body:  # class/module code: no args, no result
        table.add_row("args", _args(d))
    if d.end == END_RETURN:
        if not d.is_body:
            table.add_row("result", _clip(d.value) if d.value else Text("(not captured)", style="dim"))
    elif d.end == END_RAISE:
        table.add_row("raised", Text("✗ " + (_clip(d.value) if d.value else "exception"), style="bold red"))
    elif d.end == END_UNFINISHED:
        table.add_row("end", Text("⋯ unfinished when the session stopped", style="yellow"))
    elif d.end == END_RUNNING:
        table.add_row("end", Text("⋯ running", style="yellow"))
    elif d.end == END_OPEN:
        table.add_row("end", Text("⋯ no end recorded (still running, or the process died)", style="yellow"))
    table.add_row("thread", d.thread)
    if d.task is not None:
        table.add_row("task", d.task + (f", created by {d.creator[1]} (C selects it)" if d.creator else ""))
    table.add_row("start", fmt_ns(d.start_ns) + (" (already running)" if d.partial else ""))
    if d.end_ns is not None:
        table.add_row("end", fmt_ns(d.end_ns))
    if d.suspensions:  # a generator/coroutine: its lifetime includes the time it spent suspended
        table.add_row("lifetime", f"{fmt_ns(d.lifetime_ns)} (first run to end)")
        table.add_row("running", f"{fmt_ns(d.running_ns)} (lifetime minus {fmt_ns(d.lifetime_ns - d.running_ns)} suspended)")
    else:
        table.add_row("total", fmt_ns(d.lifetime_ns))
    table.add_row("self", fmt_ns(d.self_ns))
    if d.suspensions:
        table.add_row("suspended", f"{SUSPEND_GLYPH} {d.suspensions} times")
    if d.events:
        table.add_row("events", _events(d))
    table.add_row("children", f"{d.children:,}")
    table.add_row("descendants", f"{d.descendants:,}")
    table.add_row("call id", str(d.node))
    parts: list[RenderableType] = [table]
    if d.file:
        parts.append(Text(f"\n{d.file}:{d.line}", style="underline"))
        parts.append(_source(d.source))
    return Group(*parts)


def _events(d: CallDetail) -> Text:
    """The call's suspend/resume/raise/handled events (the first ones)."""
    text = Text()
    for e in d.events:
        text.append(f"{fmt_ns(e.t_ns)} {e.what}" + (f" {_one(e.text)}" if e.text else "") + "\n")
    if d.more_events:
        text.append(f"… {d.more_events:,} more", style="dim")
    return text


def _one(text: str) -> str:
    return text if len(text) < 60 else text[:59] + "…"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… ({len(text):,} characters)"


def _source(ex: Excerpt | NoSource | None) -> RenderableType:
    """A highlighted excerpt around the definition, or why there is none."""
    if ex is None:
        return Text("(source not available)", style="dim")
    if isinstance(ex, NoSource):
        return Text(f"({ex.why})", style="dim")
    shown = _SOURCES.get(ex)
    if shown is None:
        _warmed()
        shown = _SOURCES[ex] = _RenderedOnce(_syntax(ex.code, ex.first, ex.line))
    return shown


def _syntax(code: str, first: int, line: int) -> Syntax:
    return Syntax(code, "python", line_numbers=True, start_line=first, highlight_lines={line}, theme="ansi_dark",
                  word_wrap=False, background_color="default")


_warming: threading.Thread | None = None  # `warm_up`'s thread, until the first excerpt is made


def warm_up() -> None:
    """Make what the first source excerpt needs the first time -- Pygments' Python lexer, its
    module imported and its rules compiled: ~60-70 ms of CPU, 160-350 ms of wall time on a
    loaded machine -- in a thread of its own now, while the explorer waits anyway (for the
    session of the program it runs or attaches to). Made on the UI thread when the first
    call's details came, it held a followed busy program's next screens back by that."""
    global _warming
    if _warming is None:
        _warming = threading.Thread(target=_highlight_once, name="flowtrace-warm-up", daemon=True)
        _warming.start()


def _highlight_once() -> None:
    Console(file=io.StringIO(), width=40).print(_syntax("x = 1\n", 1, 1))


def _warmed() -> None:
    """Wait for `warm_up`'s thread if it still runs: Pygments compiles a lexer's rules on its
    first use, and two threads doing it at once could mix their states up."""
    global _warming
    if _warming is not None:
        _warming.join()
        _warming = None


class _RenderedOnce:
    """A renderable drawn once per width and console options, then repeated: the pane's body
    is drawn again at every layout of the screen (to know its height, then to draw it), and
    Rich's `Syntax` runs its lexer (Pygments) each time -- in a live session several times a
    second, where follow mode also shows the same few functions' source over and over.
    Measured in the real explorer following a busy program: highlighting was the largest
    share of the UI thread's work (4-13 ms a render, twice a layout; 8 µs once drawn)."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner
        self._drawn: dict[tuple, list] = {}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> list:
        key = (options.max_width, options.min_width, options.no_wrap, options.overflow, options.justify,
               options.ascii_only, console.color_system)
        drawn = self._drawn.get(key)
        if drawn is None:
            drawn = self._drawn[key] = list(console.render(self.inner, options))
        return drawn

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.inner)


_SOURCES: LRUCache[Excerpt, _RenderedOnce] = LRUCache(64)  # the source excerpts shown last
