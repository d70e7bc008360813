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
