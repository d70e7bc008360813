"""Regenerate screenshots/ (SVG + PNG) of the explorer from a real recorded trace.

    python scripts/make_screenshots.py        (or: make screenshots)

Records examples/shop.py with `flowtrace run` into a temporary file (falls back to a synthetic
trace, and says so, when the recorder cannot run), opens it headless in the explorer at 120×36,
and saves the main view, the detail pane, a search and the help screen. PNGs are made with
rsvg-convert (apt-get install librsvg2-bin) or cairosvg (pip install cairosvg); without either
the script says so and keeps the SVGs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

OUT = os.path.join(ROOT, "screenshots")
SIZE = (120, 36)


def record_trace(path: str) -> str:
    """Record examples/shop.py; return a description of what was recorded."""
    example = os.path.join(ROOT, "examples", "shop.py")
    cmd = [sys.executable, "-m", "flowtrace", "run", "-o", path, example]
    try:
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        res = None
        err = str(exc)
    else:
        err = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"
    if res is not None and res.returncode == 0 and os.path.exists(path):
        return "examples/shop.py recorded with flowtrace run"
    print(f"make_screenshots: could not record examples/shop.py ({err}); using a synthetic trace", file=sys.stderr)
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import synth

    synth.write(path, 20_000)
    return "synthetic trace (benchmarks/synth.py)"


async def shoot(path: str) -> list[str]:
    from flowtrace_tui.app import FlowtraceApp
    from flowtrace_tui.model.source import TraceSource

    async def settle(pilot) -> None:
        app = pilot.app
        for _ in range(500):
            await pilot.pause()
            if not app.loading and not app.searching and app.rows is not None:
                break
        await app.workers.wait_for_complete()
        await pilot.pause()

    def find_call(app, name: str) -> int:
        ix = app.index
        d = ix.data
        fn = d.col("func")
        for p in range(ix.size):
            node = ix.node(p)
            if node <= ix.n and d.func_name(int(fn[node])) == name:
                return p
        return 0

    saved = []

    async def scene(name: str, keys: list[str], select: str | None = None, detail: bool = True,
                    find: str | None = None) -> None:
        app = FlowtraceApp(TraceSource.open(path), show_detail=detail)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            if select:
                app.tree.move_to_pos(find_call(app, select))
                await pilot.pause()
            if find:
                await pilot.press("slash", *find, "enter")
                await settle(pilot)
            await pilot.press(*keys)
            await pilot.pause()
            await pilot.pause(0.2)
            svg = app.export_screenshot(title=f"flowtrace-tui — {name}")
        out = os.path.join(OUT, f"{name}.svg")
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(svg)
        saved.append(out)

    await scene("main", ["3"], select="main", detail=False)
    await scene("detail", ["l"], select="process", detail=True)
    await scene("search", [], detail=True, find="check_payment")
    await scene("help", ["question_mark"], detail=False)
    return saved


def to_png(svg: str) -> str | None:
    """Convert one SVG; None when no converter is installed."""
    png = svg[:-4] + ".png"
    with open(svg, encoding="utf-8") as fh:
        text = fh.read()
    # Textual writes runs of non-breaking spaces and relies on textLength; librsvg draws NBSP
    # narrower than a cell, so hand it plain spaces with xml:space="preserve" instead.
    text = text.replace("&#160;", " ").replace("<svg ", '<svg xml:space="preserve" ', 1)
    with tempfile.NamedTemporaryFile("w", suffix=".svg", delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    try:
        if shutil.which("rsvg-convert"):
            subprocess.run(["rsvg-convert", "-o", png, tmp.name], check=True)
            return png
        try:
            import cairosvg  # type: ignore[import-not-found]
        except ImportError:
            return None
        cairosvg.svg2png(url=tmp.name, write_to=png)
        return png
    finally:
        os.unlink(tmp.name)


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "shop.ftr")
        what = record_trace(trace)
        svgs = asyncio.run(shoot(trace))
    missing = False
    for svg in svgs:
        png = to_png(svg)
        if png is None:
            missing = True
        print(f"{os.path.relpath(svg, ROOT)}" + (f" + {os.path.basename(png)}" if png else ""))
    print(f"from: {what}")
    if missing:
        print("make_screenshots: no PNG converter: install rsvg-convert (apt-get install librsvg2-bin) "
              "or cairosvg (pip install cairosvg); the SVGs are written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
