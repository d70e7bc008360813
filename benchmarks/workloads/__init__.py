"""The five benchmark workloads shared by overhead.py and e2e.py (and five programs e2e.py adds), and what both do with
the peers they compare against.

Each module defines the same small interface (read one, e.g. fib.py); `load` imports one from
its file so that a benchmark child process can run it by name."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from types import ModuleType
from typing import Callable

NAMES = ["fib", "oop", "async_wl", "threaded", "exceptions"]
# pyperformance-style programs (written for this project), used by e2e.py; webapp passes what
# real programs pass (str arguments and results, str-keyed dicts, kwargs: webapp.py says why)
PROGRAMS = ["richards", "deltablue", "raytrace", "generators", "webapp"]
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


def viztracer_cpu(work: Callable[[], None], *, args: bool, save: bool, entries: int) -> float:
    """CPU seconds of `work()` under VizTracer: start, work, stop and, with `save`, writing its
    JSON file (`args`: log_func_args + log_func_retval)."""
    from viztracer import VizTracer  # type: ignore[import-not-found]

    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        kw = {"log_func_args": True, "log_func_retval": True} if args else {}
        tracer = VizTracer(output_file=path, verbose=0, tracer_entries=entries, **kw)
        t0 = time.process_time()
        tracer.start()
        work()
        tracer.stop()
        if save:
            tracer.save()
        return time.process_time() - t0
    finally:
        os.unlink(path)


def unavailable(viztracer: bool = False, c_recorder: bool = False) -> str | None:
    """None if what a configuration needs is here, else why not."""
    if viztracer and importlib.util.find_spec("viztracer") is None:
        return "VizTracer is not installed in this interpreter (pip install viztracer in a benchmark venv)"
    if c_recorder:
        sys.path.insert(0, os.path.dirname(HERE))
        from flowtrace.recorder import available_recorders

        if "c" not in available_recorders():
            return "the C recorder is not built for this interpreter (pip install -e .)"
    return None
