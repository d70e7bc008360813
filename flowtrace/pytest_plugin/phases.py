"""Setup, call and teardown as three recorded roots of a test's session.

pytest runs each phase of a test through `CallInfo.from_call(func, when)`. While the plugin
records, `from_call` hands `func` to one of three tiny functions named after the phase, compiled
here under the pseudo file name `<pytest phase>` and marked as user code (flowtrace's own code is
never recorded, so they cannot live in this file). Everything recorded while a phase runs --
fixtures, the test, finalizers -- has no recorded caller but that phase function, so it becomes
its child: the session's roots are `setup`, `call` and `teardown`.
"""

from __future__ import annotations

from typing import Any, Callable

from ..filters import mark_user_code

PHASE_FILE = "<pytest phase>"
PHASE_MODULE = "pytest"
PHASES = ("setup", "call", "teardown")

# Each phase function takes no argument (its row in the tree then reads `setup()`) and runs the
# phase that `run_phase` left on top of `_pending`: a stack, so that a pytest run inside a test
# (pytester's in-process runs) nests correctly.
_SOURCE = "".join(f"def {name}():\n    return _run()\n\n" for name in PHASES)
_pending: list[Callable[[], Any]] = []


def _run() -> Any:
    return _pending.pop()()


def _compile() -> dict[str, Callable[[], Any]]:
    code = compile(_SOURCE, PHASE_FILE, "exec")
    mark_user_code(code)
    namespace: dict[str, Any] = {"__name__": PHASE_MODULE, "_run": _run}
    exec(code, namespace)
    return {name: namespace[name] for name in PHASES}


_FUNCTIONS = _compile()


def run_phase(when: str, func: Callable[[], Any]) -> Any:
    """Run `func` (one phase of a test) inside the recorded function named `when`."""
    _pending.append(func)
    return _FUNCTIONS[when]()


class PhaseRoots:
    """Wraps pytest's `CallInfo.from_call` while installed; `active` says whether the phases
    being run now are recorded (between tests, collection and other callers pass through)."""

    def __init__(self) -> None:
        self.active = False
        self._original: Any = None

    def install(self) -> None:
        from _pytest.runner import CallInfo

        if self._original is not None:
            return
        self._original = CallInfo.__dict__["from_call"]
        original = self._original.__func__
        roots = self

        def from_call(cls: Any, func: Callable[[], Any], when: str, reraise: Any = None) -> Any:
            if roots.active and when in _FUNCTIONS:
                return original(cls, lambda: run_phase(when, func), when, reraise)
            return original(cls, func, when, reraise)

        CallInfo.from_call = classmethod(from_call)  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from _pytest.runner import CallInfo

        if self._original is not None:
            CallInfo.from_call = self._original  # type: ignore[method-assign]
            self._original = None
