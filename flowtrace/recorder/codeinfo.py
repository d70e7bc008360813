"""What kind of code a code object is: the FUNC `kind` both recorders write (docs/FORMAT.md).

One function, shared by the Python reference recorder and the C recorder, so that the two
always agree. Decided once per code object (cold path), from `co_flags` and `co_name` only.
"""

from __future__ import annotations

from types import CodeType

# co_flags bits (Include/cpython/code.h); `inspect` has them too, but importing inspect in a
# traced program is heavy and these values are fixed.
CO_OPTIMIZED = 0x01
CO_NEWLOCALS = 0x02
CO_GENERATOR = 0x20
CO_COROUTINE = 0x80
CO_ITERABLE_COROUTINE = 0x100
CO_ASYNC_GENERATOR = 0x200

KINDS = ("function", "generator", "coroutine", "async_generator", "class", "module")


def code_kind(code: CodeType) -> str:
    """"coroutine", "async_generator", "generator", "class" (a class body), "module" (a
    module's top-level code, also `exec`'d code) or "function".

    A function's code has CO_OPTIMIZED and CO_NEWLOCALS (fast locals, a fresh namespace per
    call); module and class-body code has neither (it runs in a namespace dict). The compiler
    names module code "<module>" and a class body after the class."""
    flags = code.co_flags
    if flags & CO_COROUTINE:
        return "coroutine"
    if flags & CO_ASYNC_GENERATOR:
        return "async_generator"
    if flags & (CO_GENERATOR | CO_ITERABLE_COROUTINE):
        return "generator"
    if not flags & (CO_OPTIMIZED | CO_NEWLOCALS):
        return "module" if code.co_name == "<module>" else "class"
    return "function"
