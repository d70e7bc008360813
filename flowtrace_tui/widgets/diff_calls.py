"""The detail pane's two call lists of a path in a diff, side by side (model/diff_calls.py
pairs them): `#`, then BASE's call and NEW's, each as `#id  time  (args) → result`; a pair whose
outcomes differ is marked `≠` and its texts are bold, one side missing shows `–`.

`base_link` / `new_link` make each call id a link (the app decides which session it jumps in).
"""

from __future__ import annotations

from typing import Callable, Sequence

from rich.table import Table
from rich.text import Text

from flowtrace import diff_rules as R

from ..model.diff_calls import CallLike, CallPair
from ..model.units import fmt_ns
from .merged_detail import call_text

MAX_TEXT = 40  # characters of a listed call's arguments / result (each side has half the pane)
Link = Callable[[int], Text]
_MARK = {R.SAME: ("", ""), R.OUTCOME: ("≠", "bold yellow"), R.NEW: ("+", "green"), R.GONE: ("−", "dim")}


def plain_link(call: int) -> Text:
    return Text(f"#{call}")


def paired_calls_table(pairs: Sequence[CallPair], labels: tuple[str, str] = ("BASE", "NEW"),
                       more: tuple[int, int] = (0, 0), is_body: bool = False, base_link: Link = plain_link,
                       new_link: Link = plain_link, earlier: int = 0) -> Table:
    """One line per call number: the mark, BASE's call, NEW's call; `labels` head the two
    columns, `earlier` says how many calls of both sides come before the listed ones, `more`
    how many calls each side has past them."""
    table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
    table.add_column("#", justify="right", no_wrap=True, style="dim")
    table.add_column("", no_wrap=True)
    table.add_column(labels[0], overflow="fold", ratio=1)
    table.add_column(labels[1], overflow="fold", ratio=1)
    if earlier:
        table.add_row("", "", *(Text(f"{earlier:,} earlier", style="dim"),) * 2)
    for p in pairs:
        mark, style = _MARK[p.kind]
        strong = p.kind == R.OUTCOME
        table.add_row(str(p.number), Text(mark, style=style),
                      side_text(p.base, is_body, base_link, strong), side_text(p.new, is_body, new_link, strong))
    if any(more):
        table.add_row("", "", *(Text(f"{n:,} more" if n else "", style="dim") for n in more))
    return table


def side_text(c: CallLike | None, is_body: bool, link: Link, strong: bool) -> Text:
    """`#id time (args) → result` for one side (`–` when that side has no such call)."""
    if c is None:
        return Text("–", style="dim")
    text = link(c.call) + Text(f" {fmt_ns(c.run_ns)} ", style="magenta")
    text.append_text(call_text(c, is_body, MAX_TEXT, strong))
    return text
