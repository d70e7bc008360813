"""flowtrace: execution tracer for Python 3.12+ built on sys.monitoring (PEP 669)."""
__version__ = "0.2.0"
