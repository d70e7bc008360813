"""The five benchmark workloads shared by overhead.py and c_overhead.py.

Each module defines the same small interface (read one, e.g. fib.py); `load` imports one from
its file so that a benchmark child process can run it by name."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

NAMES = ["fib", "oop", "async_wl", "threaded", "exceptions"]
HERE = os.path.dirname(os.path.abspath(__file__))


def load(name: str) -> ModuleType:
    """Import workload `name` from its file (registered in sys.modules: asyncio and pickling
    look modules up there)."""
    path = os.path.join(HERE, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"wl_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod
