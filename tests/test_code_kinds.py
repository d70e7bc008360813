"""Class bodies and module code are recorded with their own FUNC kind ("class", "module") and
shown as such (`class Name`, `<module> file.py`, never `Name() → None`); the compiler-made `.0`
parameter of generator expressions is not an argument. Exact trees, once per recorder."""

from __future__ import annotations

import sys
import textwrap

import pytest

from flowtrace.ftr.reader import trace_to_events
from flowtrace.printing import body_title, format_tree, short_path
from flowtrace.recorder.codeinfo import code_kind
from flowtrace.reprs import param_names

from treeutil import check_balanced, record, shape

MODULE = textwrap.dedent('''\
    def double(x):
        return 2 * x

    class Outer:
        size = sum(double(x) for x in (1, 2))

        class Inner:
            pass

    LIMIT = Outer.size
''')


@pytest.fixture
def kmod(tmp_path, monkeypatch):
    """A fresh user module `ft_kinds_mod` in tmp_path, imported (and so run) by the test."""
    (tmp_path / "ft_kinds_mod.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("ft_kinds_mod", None)
    yield tmp_path
    sys.modules.pop("ft_kinds_mod", None)


def kinds(trace) -> list[tuple[str, str]]:
    return [(c.qualname.split(".<locals>.")[-1], c.function.kind) for c in trace.calls]


def make_local():
    class Local:
        def method(self):
            return 1

    return Local().method()


def broken_class():
    class Broken:
        raise ValueError("no class today")


def test_class_and_module_code(recorder_name, kmod):
    def run():
        import ft_kinds_mod  # noqa: F401  (its module code and class bodies run here)

        make_local()
        try:
            broken_class()
        except ValueError:
            pass

    trace = record(run, recorder_name)
    lines = shape(trace)
    assert lines[:9] == [
        "run() = None",
        "  <module>() = None",
        "    Outer() = None",
        "      Outer.<genexpr>() = None",
        "        double(x=1) = 2",
        "        double(x=2) = 4",
        "      Outer.Inner() = None",
        "  make_local() = 1",
        "    Local() = None",
    ]
    assert lines[9].startswith("    Local.method(self=<") and lines[9].endswith(" = 1")
    assert lines[10:] == [
        "  broken_class() ! ValueError: no class today",
        "    Broken() ! ValueError: no class today",
    ]
    assert kinds(trace) == [
        ("run", "function"), ("<module>", "module"), ("Outer", "class"),
        ("Outer.<genexpr>", "generator"), ("double", "function"), ("double", "function"),
        ("Outer.Inner", "class"), ("make_local", "function"), ("Local", "class"),
        ("Local.method", "function"), ("broken_class", "function"), ("Broken", "class"),
    ]
    assert trace.calls[1].function.file == str(kmod / "ft_kinds_mod.py")
    check_balanced(trace)


def test_printed_class_and_module(recorder_name, kmod):
    def run():
        import ft_kinds_mod  # noqa: F401

        try:
            broken_class()
        except ValueError:
            pass

    trace = record(run, recorder_name)
    lines = format_tree(trace_to_events(trace, timing=False), cwd=str(kmod))
    assert lines == [
        "→ test_printed_class_and_module.<locals>.run()",
        "  → <module> ft_kinds_mod.py",
        "    → class Outer",
        "      → Outer.<genexpr>()",
        "        → double(x=1) → 2",
        "        → double(x=2) → 4",
        "      ← Outer.<genexpr>() → None",
        "      → class Outer.Inner",
        "    ← class Outer",
        "  ← <module> ft_kinds_mod.py",
        "  → broken_class()",
        "    → class broken_class.<locals>.Broken ✗ ValueError: no class today",
        "  ← broken_class() ✗ ValueError: no class today",
        "← test_printed_class_and_module.<locals>.run() → None",
    ]
    # outside the program's directory the module's file is shown as recorded
    outside = format_tree(trace_to_events(trace, timing=False), cwd="/nonexistent-dir", max_depth=1)
    assert outside[1] == f"  → <module> {kmod / 'ft_kinds_mod.py'} [+5 calls]"


def gen_user():
    total = sum(x * x for x in range(2))
    squares = list(x for x in [3] if x)
    return total, squares


def test_genexpr_iterator_is_not_an_argument(recorder_name):
    trace = record(gen_user, recorder_name)
    assert shape(trace) == [
        "gen_user() = (1, [3])",
        "  <genexpr>() = None",
        "  <genexpr>() = None",
    ]
    assert [c.args for c in trace.calls] == ["", "", ""]


def test_param_names_leave_out_compiler_made_parameters():
    genexpr = next(c for c in gen_user.__code__.co_consts if getattr(c, "co_name", "") == "<genexpr>")
    assert genexpr.co_varnames[0] == ".0"
    assert param_names(genexpr) == ((), 0, -1, -1)

    def f(a, b=1, *rest, key, **kw):
        return a

    assert param_names(f.__code__) == (("a", "b", "key", "rest", "kw"), 2, 3, 4)  # co_varnames order


def test_code_kind():
    def function():
        return 1

    def generator():
        yield 1

    async def coroutine():
        return 1

    async def async_generator():
        yield 1

    module = compile("class K:\n    x = 1\n", "<test>", "exec")
    class_body = next(c for c in module.co_consts if getattr(c, "co_name", "") == "K")
    assert [code_kind(c) for c in (function.__code__, generator.__code__, coroutine.__code__,
                                   async_generator.__code__, (lambda: 0).__code__, module,
                                   class_body)] == [
        "function", "generator", "coroutine", "async_generator", "function", "module", "class"]


def test_body_titles():
    assert body_title("class", "Outer.Inner", "/p/m.py", "/p") == "class Outer.Inner"
    assert body_title("module", "<module>", "/p/pkg/m.py", "/p") == "<module> pkg/m.py"
    assert body_title("module", "<module>", "/q/m.py", "/p") == "<module> /q/m.py"
    # outside the working directory (site-packages): the module name tells them apart
    site = "/venv/lib/python3.12/site-packages"
    assert body_title("module", "<module>", f"{site}/rich/markdown.py", "/p", "rich.markdown") == "<module> rich.markdown"
    assert body_title("module", "<module>", f"{site}/rich/__init__.py", "/p", "rich") == "<module> rich"
    assert body_title("module", "<module>", "/p/pkg/m.py", "/p", "pkg.m") == "<module> pkg/m.py"
    assert body_title("module", "<module>", "/q/m.py", "/p", "__main__") == "<module> /q/m.py"
    assert body_title("module", "<module>", "<string>", "/p") == "<module> <string>"
    assert body_title("module", "<module>", "", None) == "<module>"
    assert body_title("function", "f", "/p/m.py", "/p") is None
    assert body_title("generator", "g", "/p/m.py", "/p") is None
    assert short_path("/p/m.py", None) == "/p/m.py"
