"""The detail pane's body for a merged call path (model/merged_view.py lays out the numbers).

Each listed call is a link (`app.jump_call(id)`): the call tree leaves the merged view and
selects that call.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ..model.diff_calls import CallLike
from ..model.merged_view import MergedDetail, PathCall
from ..model.row_view import END_OPEN, END_RAISE
from ..model.units import fmt_ns, plural

MAX_ARGS = 60  # characters of a listed call's arguments / result


def merged_body(d: MergedDetail, source: RenderableType) -> RenderableType:
    """The pane's body: what the path stands for, then its first calls. `source`: the
    function's source excerpt as the call pane draws it."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("path", Text(d.title, style="bold") + Text(" (merged call path)", style="dim"))
    if d.kind is not None:
        table.add_row("module", d.module or "")
        table.add_row("kind", d.kind)
    table.add_row("calls", f"{d.count:,}")
    table.add_row("total", f"{fmt_ns(d.total_ns)} (summed)")
    table.add_row("self", f"{fmt_ns(d.self_ns)} (summed)")
    table.add_row("mean", fmt_ns(d.total_ns // max(1, d.count)))
    if d.slowest is not None:
        table.add_row("longest", Text(fmt_ns(d.slowest.run_ns) + " ") + call_link(d.slowest.call))
    if d.raised:
        table.add_row("raised", Text(f"✗ {d.raised:,} of {d.count:,}", style="bold red"))
    if d.unfinished:
        table.add_row("unfinished", Text(f"⋯ {d.unfinished:,} of {d.count:,}", style="yellow"))
    table.add_row("children", plural(d.children, "path"))
    parts: list[RenderableType] = [table]
    if d.file:
        parts.append(Text(f"\n{d.file}:{d.line}", style="underline"))
        parts.append(source)
    title = f"\nCalls ({'first ' + str(len(d.calls)) + ' of ' if d.more_calls else ''}{d.count:,}, in start order)"
    parts.append(Text(title, style="bold"))
    parts.append(calls_table(d.calls, d.is_body))
    return Group(*parts)


def call_link(call: int) -> Text:
    """`#id`, a link that selects the call in the call tree."""
    return Text(f"#{call}", style=Style(underline=True, meta={"@click": ("app.jump_call", (call,))}))


def calls_table(calls: list[PathCall], is_body: bool) -> Table:
    """One line per call: its link, running time, arguments and how it ended."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(overflow="fold")
    for c in calls:
        table.add_row(call_link(c.call), fmt_ns(c.run_ns), call_text(c, is_body))
    return table


def call_text(c: CallLike, is_body: bool, limit: int = MAX_ARGS, strong: bool = False) -> Text:
    """`(args) → result`, `(args) ✗ exception` or `(args) ⋯` for one call, each text cut to
    `limit` characters; `strong`: arguments and result in bold (the diff view's differing calls)."""
    text = Text()
    weight = "bold " if strong else ""
    if not is_body:
        text.append("(" + _cut(c.args or "", limit) + ")", style="dim" if c.args is None else weight.strip())
    if c.end == END_RAISE:
        text.append(" ✗ " + _cut(c.value or "exception", limit), style="bold red")
    elif c.end == END_OPEN:
        text.append(" ⋯", style="yellow")
    elif c.value is not None and not is_body:
        text.append(" → " + _cut(c.value, limit), style=weight + "green")
    return text


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
