"""The diff view's tree: the call tree's lines (guides, expand/collapse, keys) over a
`DiffIndex`, each path with both runs' calls and total times and the change, coloured by what
changed (model/diff_view.py says what; this only draws)."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style

from flowtrace import diff_rules as R

from ..model.diff_view import DiffRow, diff_row
from ..model.units import fmt_count, fmt_ns
from .call_tree import CallTree, _fit
from .columns import Col

CALLS = Col("calls", "calls", 14)
BASE = Col("base", "base", 9)
NEW = Col("new", "new", 9)
DELTA = Col("delta", "Δ total", 10)
PCT = Col("pct", "Δ%", 7)

# the tag after a path's name, by its primary kind
TAGS = {R.NEW: "+ new", R.GONE: "− gone", R.RAISED: "✗ raised", R.CALLS: "calls", R.OUTCOME: "≠ outcome",
        R.SLOWER: "▲ slower", R.FASTER: "▼ faster", R.SAME: ""}


def diff_columns(width: int) -> list[Col]:
    """All five from 100 cells; narrower terminals drop Δ% then the calls."""
    if width >= 100:
        return [CALLS, BASE, NEW, DELTA, PCT]
    if width >= 80:
        return [CALLS, BASE, NEW, DELTA]
    if width >= 56:
        return [BASE, NEW, DELTA]
    return [DELTA]


class DiffTree(CallTree):
    """Posts the call tree's messages; `rows` is a `TreeRows` over a `DiffIndex`."""

    COMPONENT_CLASSES = CallTree.COMPONENT_CLASSES | {f"difftree--{k}" for k in R.KINDS}

    DEFAULT_CSS = """
    DiffTree {
        & > .difftree--new { color: $success; text-style: bold; }
        & > .difftree--gone { color: $foreground 50%; text-style: strike; }
        & > .difftree--raised { color: $error; text-style: bold; }
        & > .difftree--calls { color: $warning; }
        & > .difftree--outcome { color: $accent; text-style: bold; }
        & > .difftree--slower { color: $error; }
        & > .difftree--faster { color: $primary; }
        & > .difftree--same { color: $foreground; }
    }
    """

    def row_at(self, pos: int) -> DiffRow:  # type: ignore[override]
        return diff_row(self.rows.index, pos)  # type: ignore[union-attr, arg-type]

    def columns(self, width: int) -> list[Col]:
        return diff_columns(width)

    def _label(self, view: DiffRow, room: int, with_count: bool = False) -> list[tuple[str, Style]]:  # type: ignore[override]
        style = self._style(f"difftree--{view.kind}")
        out = [(view.name, style + Style(bold=True) if view.kind == R.SAME else style)]
        tag = TAGS[view.kind]
        if view.kind == R.CALLS:
            tag = f"calls {view.calls[0]:,}→{view.calls[1]:,}"
        if tag:
            out.append((f"  {tag}", style))
        return _fit(out, room)

    def _cells(self, view: DiffRow, cols: list[Col], pos: int) -> list[Segment]:  # type: ignore[override]
        time_s = self._style("calltree--time")
        kind_s = self._style(f"difftree--{view.kind}")
        segs: list[Segment] = []
        for col in cols:
            if col.key == "calls":
                a, b = view.calls
                text = fmt_count(b) if a == b else f"{fmt_count(a)}→{fmt_count(b)}"
                segs.append(Segment(text.rjust(col.width - 1) + " ", self._style("calltree--count")))
            elif col.key in ("base", "new"):
                i = 0 if col.key == "base" else 1
                text = fmt_ns(view.total_ns[i]) if view.calls[i] else "–"
                segs.append(Segment(text.rjust(col.width - 1) + " ", time_s))
            elif col.key == "delta":
                d = view.delta_ns
                text = ("+" if d > 0 else "") + fmt_ns(d) if d else "0"
                segs.append(Segment(text.rjust(col.width - 1) + " ", kind_s if view.kind in (R.SLOWER, R.FASTER) else time_s))
            elif col.key == "pct":
                p = view.percent
                text = "" if p is None or not view.calls[1] else f"{p:+.0f}%"
                segs.append(Segment(text.rjust(col.width - 1) + " ", kind_s if view.kind in (R.SLOWER, R.FASTER) else time_s))
        return segs
