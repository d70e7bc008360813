"""The side-by-side call lists of a path in a diff (model/diff_calls.py, widgets/diff_calls.py)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from flowtrace_tui.model.diff_calls import first_difference, pair_calls
from flowtrace_tui.widgets.diff_calls import paired_calls_table


@dataclass(frozen=True)
class Listed:  # the shape of the merged view's PathCall
    call: int
    args: str | None
    end: str
    value: str | None
    run_ns: int


def render(table) -> list[str]:
    console = Console(width=100, record=True, color_system=None)
    console.print(table)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_pairs_by_number_with_the_shared_outcome_rule() -> None:
    base = [Listed(3, "x=1", "return", "1", 900), Listed(5, "x=2", "return", "2", 800),
            Listed(7, "self=<C object at 0x7f0011223344>", "return", "None", 700)]
    new = [Listed(3, "x=1", "return", "1", 950), Listed(6, "x=2", "raise", "ValueError: x=2", 300),
           Listed(8, "self=<C object at 0x7fdd00ee1100>", "return", "None", 650), Listed(9, "x=4", "open", None, 10)]
    pairs = pair_calls(base, new)
    assert [p.kind for p in pairs] == ["same", "outcome", "same", "new"]
    assert first_difference(pairs) == 2
    assert first_difference(pair_calls(base[:1], new[:1])) is None
    assert [p.kind for p in pair_calls(base, [])] == ["gone"] * 3


def test_the_table_shows_both_sides() -> None:
    base = [Listed(3, "x=1", "return", "1", 900), Listed(5, "x=2", "return", "2", 800)]
    new = [Listed(3, "x=1", "return", "1", 950), Listed(6, "x=2", "raise", "ValueError: x=2", 300),
           Listed(9, "x=4", "open", None, 10)]
    lines = render(paired_calls_table(pair_calls(base, new), ("BASE a.ftr", "NEW b.ftr"), more=(0, 12)))
    assert lines[0].split() == ["#", "BASE", "a.ftr", "NEW", "b.ftr"]
    assert lines[1].split() == ["1", "#3", "900", "ns", "(x=1)", "→", "1", "#3", "950", "ns", "(x=1)", "→", "1"]
    assert lines[2].split() == ["2", "≠", "#5", "800", "ns", "(x=2)", "→", "2", "#6", "300", "ns", "(x=2)", "✗",
                                "ValueError:", "x=2"]
    assert lines[3].split() == ["3", "+", "–", "#9", "10", "ns", "(x=4)", "⋯"]
    assert lines[4].split() == ["12", "more"]
