"""flowtrace: execution tracer for Python 3.12+ built on sys.monitoring (PEP 669)."""
__version__ = "0.2.0"


def install(*, signal: int | None = None, flush_interval: float = 0.1) -> str:
    """Serve a control channel so `flowtrace attach PID` can record this process later
    (zero overhead until then); see flowtrace.control.install and docs/ATTACH.md."""
    from .control import install as _install

    return _install(signal=signal, flush_interval=flush_interval)
