"""The pytest plugin's entry point (`pytest11`): options only, until asked.

Installing flowtrace registers this module with pytest. It declares the command-line and ini
options and nothing else: it imports no part of the recorder and takes no sys.monitoring tool
id, so a `pytest` run without `--flowtrace` behaves and costs exactly as without flowtrace.
With `--flowtrace[=failed|all]` (or `flowtrace = failed|all` in the ini file) it registers the
recording plugin (`recording.FlowtracePlugin`), which records each test into its own session.
"""

from __future__ import annotations

from typing import Any

MODES = ("failed", "all", "off")
ARGS_MODES = ("off", "safe", "full")
PLUGIN_NAME = "flowtrace-recording"


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("flowtrace", "flowtrace: record each test's call tree")
    group.addoption(
        "--flowtrace", dest="flowtrace", nargs="?", const="failed", default=None, metavar="failed|all|off",
        help="record each test (setup, call, teardown) into its own session under .flowtrace/; keep "
             "the failing and erroring tests' sessions (failed, the default), every one (all), or "
             "record nothing (off). Give a value with '=': --flowtrace=all.")
    group.addoption("--flowtrace-dir", dest="flowtrace_dir", default=None, metavar="DIR",
                    help="where the sessions go (default: .flowtrace in the rootdir)")
    group.addoption("--flowtrace-include", dest="flowtrace_include", action="append", default=[], metavar="P",
                    help="record this module or path glob too (as flowtrace run --include)")
    group.addoption("--flowtrace-exclude", dest="flowtrace_exclude", action="append", default=[], metavar="P",
                    help="do not record this module or path glob (as flowtrace run --exclude)")
    group.addoption("--flowtrace-args", dest="flowtrace_args", default=None, choices=ARGS_MODES,
                    help="capture arguments, results and exception texts: safe (default), full "
                         "(objects' own __repr__) or off")
    parser.addini("flowtrace", "record each test with flowtrace: failed, all or off (as --flowtrace=...)",
                  default="off")


def pytest_load_initial_conftests(early_config: Any, parser: Any, args: list[str]) -> None:
    """A bare `--flowtrace` followed by a path (`pytest --flowtrace tests/`) means `failed`, not
    a mode named `tests/`: give it its value explicitly before pytest parses the arguments for
    good, and parse again what argparse took for the option's value."""
    if "--flowtrace" not in args:
        return
    stop = args.index("--") if "--" in args else len(args)
    for i, arg in enumerate(args[:stop]):
        if arg == "--flowtrace":
            args[i] = "--flowtrace=failed"
    again = parser.parse_known_args(args)
    early_config.known_args_namespace.file_or_dir = again.file_or_dir
    early_config.known_args_namespace.flowtrace = again.flowtrace


def mode_of(config: Any) -> str:
    """failed, all or off: the command line wins over the ini file."""
    value = config.getoption("flowtrace")
    if value is None:
        value = str(config.getini("flowtrace") or "off").strip() or "off"
    value = value.strip().lower()
    if value not in MODES:
        import pytest

        raise pytest.UsageError(f"--flowtrace: {value!r} is not one of failed, all, off")
    return value


def pytest_configure(config: Any) -> None:
    if mode_of(config) == "off":
        return
    from .recording import FlowtracePlugin

    config.pluginmanager.register(FlowtracePlugin(config, mode_of(config)), PLUGIN_NAME)
