"""The built C recorder agrees with the Python side, or is not used (not skipped when the
extension is missing: a compiled module that fails its import check must be noticed)."""

from __future__ import annotations

import importlib.util

import pytest


def test_a_built_extension_is_the_active_recorder() -> None:
    if importlib.util.find_spec("flowtrace._crecorder") is None:
        pytest.skip("the C recorder is not built")
    import flowtrace.recorder.c  # noqa: F401  (its import check raises on a mismatch)
    from flowtrace.recorder import available_recorders

    assert "c" in available_recorders()


def test_constants_mismatch_is_an_import_error() -> None:
    if importlib.util.find_spec("flowtrace._crecorder") is None:
        pytest.skip("the C recorder is not built")
    from flowtrace import _crecorder
    from flowtrace.recorder.c import check_constants

    check_constants(dict(_crecorder.CONSTANTS), _crecorder.BUILTIN_STR_TYPES)
    wrong = dict(_crecorder.CONSTANTS, MAX_TEXT=_crecorder.CONSTANTS["MAX_TEXT"] + 1)
    with pytest.raises(ImportError, match="MAX_TEXT: C 241 vs Python 240"):
        check_constants(wrong, _crecorder.BUILTIN_STR_TYPES)
    with pytest.raises(ImportError, match="BUILTIN_STR_TYPES"):
        without_key_error = tuple(t for t in _crecorder.BUILTIN_STR_TYPES if t is not KeyError)
        check_constants(dict(_crecorder.CONSTANTS), without_key_error)


def _stub_names() -> tuple[set[str], dict[str, set[str]]]:
    """The module-level names and each class's methods and attributes that flowtrace/_crecorder.pyi
    declares."""
    import ast
    import pathlib

    import flowtrace

    tree = ast.parse((pathlib.Path(flowtrace.__file__).parent / "_crecorder.pyi").read_text())
    names: set[str] = set()
    methods: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        if isinstance(node, ast.ClassDef):
            methods[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} | {
                n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    return names, methods


def test_the_stub_declares_everything_the_module_has() -> None:
    """flowtrace/_crecorder.pyi names every function and constant of the module and every
    method and attribute of its types (it had fallen behind: gc_phase, set_collect_hook, Core.release_classes
    and eight more were missing)."""
    if importlib.util.find_spec("flowtrace._crecorder") is None:
        pytest.skip("the C recorder is not built")
    from flowtrace import _crecorder

    names, methods = _stub_names()
    public = {n for n in dir(_crecorder) if not n.startswith("_")}
    assert public - names == set(), "in the module, not in the stub"
    assert names - public == set(), "in the stub, not in the module"
    for cls, declared in methods.items():
        have = {n for n in dir(getattr(_crecorder, cls)) if not n.startswith("_")} | {"__init__"}
        assert have - declared - {"__init__"} == set(), f"{cls}: in the type, not in the stub"
        assert declared - have == set(), f"{cls}: in the stub, not in the type"


def test_the_drain_fetches_its_lines_ahead() -> None:
    """strings_batch fetches the text table's lines for a text before its lookup (crecorder.h
    stab_prefetch) and the text memo's objects it lets go: GCC 12 dropped a __builtin_prefetch
    that runs past a test without a word (stab_prefetch's two, from session 27 on), so the
    build is read back: x86-64 builds with symbols and objdump on the machine only."""
    import platform
    import shutil
    import subprocess

    if importlib.util.find_spec("flowtrace._crecorder") is None:
        pytest.skip("the C recorder is not built")
    if platform.machine() != "x86_64" or not shutil.which("objdump"):
        pytest.skip("reads x86-64 code with objdump")
    from flowtrace import _crecorder

    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", _crecorder.__file__], capture_output=True, text=True).stdout
    body, found = [], False
    for line in out.splitlines():
        if line.endswith("<strings_batch>:"):
            found = True
        elif found and not line.strip():
            break
        elif found:
            body.append(line)
    if not found:
        pytest.skip("the build has no symbols")
    assert sum("prefetch" in line for line in body) >= 3  # (the table's two lines, the memo's objects)
