"""The call tree and detail pane show class bodies as `class Name` and module code as
`<module> file.py` (no `()`, no `→ None`), and suspension counts with a glyph that common
monospace fonts have."""

from __future__ import annotations

import asyncio

from flowtrace_tui.app import FlowtraceApp
from flowtrace_tui.widgets.call_tree import SUSPEND_GLYPH

from trace_builder import TraceBuilder

from .apps import settle, source

WIDTH = 100


def bodies_program() -> TraceBuilder:
    b = TraceBuilder(meta={"cwd": "/flowtrace-test"})
    b.func("<module>", kind="module", file="/flowtrace-test/shop/app.py")
    b.func("Cart", kind="class")
    b.func("Broken", kind="class")
    b.func("items", kind="generator")
    m = b.enter("<module>", args="")
    c = b.enter("Cart", args="")
    b.leave(c, "None")
    g = b.enter("items", args="n=2")
    b.suspend(g, "0")
    b.resume(g, m)
    b.leave(g, "None")
    k = b.enter("Broken", args="")
    b.leave(k, raised="ValueError: no")
    b.leave(m, raised="ValueError: no")
    return b


def lines(app: FlowtraceApp) -> list[str]:
    tree = app.tree
    return [tree._draw(int(p), WIDTH, False, False).text[:60].rstrip() for p in app.rows.rows.tolist()]


def test_class_module_and_suspensions_in_tree_and_detail():
    async def run() -> None:
        app = FlowtraceApp(source(bodies_program().data()), show_detail=True)
        async with app.run_test(size=(WIDTH + 60, 30)) as pilot:
            await settle(pilot)
            assert lines(app) == [
                "▼ <module> shop/app.py ✗ ValueError",
                "├─  class Cart",
                f"├─  items(n=2) {SUSPEND_GLYPH}1 → None",
                "└─  class Broken ✗ ValueError",
            ]
            await pilot.press("j")
            body = app.query_one("#detail").plain_text()
            assert "call        class Cart" in body
            assert "kind        class" in body
            assert "args " not in body and "result " not in body
            path = str(app.query_one("#detail-path").render())
            assert path == "<module> shop/app.py › class Cart"
            await pilot.press("j")
            body = app.query_one("#detail").plain_text()
            assert f"suspended   {SUSPEND_GLYPH} 1 times" in body
            assert "args        n=2" in body

    asyncio.run(run())

