"""The diff view's detail pane body for one path (model/diff_view.py gathers it): what
changed, both runs' figures side by side, then each run's first calls paired by number
(widgets/diff_calls.py: pairs whose outcomes differ are marked)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from flowtrace import diff_rules as R

from ..model.diff_calls import pair_calls
from ..model.diff_view import DiffDetail, SideDetail
from ..model.units import fmt_ns
from .diff_calls import paired_calls_table

WHAT = {R.NEW: "new: only NEW has this path", R.GONE: "gone: only BASE has this path",
        R.RAISED: "exceptions changed", R.CALLS: "called another number of times",
        R.OUTCOME: "other outcomes (arguments, results or exceptions)", R.SLOWER: "slower", R.FASTER: "faster",
        R.SAME: "no change"}


def diff_body(d: DiffDetail) -> RenderableType:
    """The pane's body for a path of the diff."""
    head = Table.grid(padding=(0, 1))
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")
    head.add_row("path", Text(d.path))
    head.add_row("changed", Text(", ".join(WHAT[k] for k in d.kinds), style="bold"))
    if not d.outcomes_known:
        head.add_row("", Text("(outcomes are still being compared)", style="dim"))
    elif d.differs is not None:
        head.add_row("first ≠", Text(f"call {d.differs + 1:,} of {d.base.calls:,} is the first whose outcome differs",
                                     style="bold yellow"))
    head.add_row("noise", f"time changes under {fmt_ns(d.floor_ns)} or 10 % are not a change")
    sides = Table(box=None, padding=(0, 1), show_edge=False)
    sides.add_column("", style="bold", no_wrap=True)
    sides.add_column(d.base.label, justify="right", no_wrap=True)
    sides.add_column(d.new.label, justify="right", no_wrap=True)
    sides.add_column("Δ", justify="right", no_wrap=True)
    a, b = d.base, d.new
    sides.add_row("calls", _n(a, a.calls), _n(b, b.calls), _signed(b.calls - a.calls, str))
    sides.add_row("total", _t(a, a.total_ns), _t(b, b.total_ns), _signed(b.total_ns - a.total_ns, fmt_ns))
    sides.add_row("self", _t(a, a.self_ns), _t(b, b.self_ns), _signed(b.self_ns - a.self_ns, fmt_ns))
    sides.add_row("raised", _n(a, a.raised), _n(b, b.raised), _signed(b.raised - a.raised, str))
    if a.exception_types or b.exception_types:
        sides.add_row("types", ", ".join(a.exception_types), ", ".join(b.exception_types), "")
    calls = paired_calls_table(pair_calls(a.listed, b.listed, a.first), (f"{a.label} ({a.file})", f"{b.label} ({b.file})"),
                               (a.more, b.more), earlier=a.first)
    return Group(head, Text(""), sides, Text("\nCalls, in start order (≠: other outcome)", style="bold"), calls)


def _n(s: SideDetail, v: int) -> str:
    return f"{v:,}" if s.present else "–"


def _t(s: SideDetail, v: int) -> str:
    return fmt_ns(v) if s.present else "–"


def _signed(v: int, fmt) -> str:
    return "0" if not v else ("+" if v > 0 else "") + fmt(v)
