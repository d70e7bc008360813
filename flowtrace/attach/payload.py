"""The Python source that `flowtrace attach` makes a target run, for every injection mechanism.

It does one thing: import flowtrace (from the attaching flowtrace's location, added to
`sys.path` only for the import) and start the control channel (`flowtrace.control.install()`).
Recording itself is then started over the channel, like for a cooperative process.

It binds no name in `__main__` (it runs inside `exec` with a fresh namespace), and a failure
never prints into the target's stderr: it is written to `errfile` (created exclusively, so a
planted file or symlink is not followed), which the attaching side reads and deletes. Its
first act creates `runfile` (empty, exclusively): the attaching side knows then that the
payload runs, however long its import takes on a loaded machine (inject_gdb.py).
"""

from __future__ import annotations

import os

import flowtrace

__all__ = ["flowtrace_root", "body", "direct", "in_new_thread"]

_BODY = '''\
def _flowtrace_inject(entry, errfile, runfile):
    import sys
    try:
        open(runfile, "x").close()
    except BaseException:
        pass
    try:
        if "flowtrace.control" not in sys.modules:
            added = entry not in sys.path
            if added:
                sys.path.insert(0, entry)
            try:
                import flowtrace.control
            finally:
                if added:
                    try:
                        sys.path.remove(entry)
                    except ValueError:
                        pass
        sys.modules["flowtrace.control"]._injected()
    except BaseException as exc:
        try:
            with open(errfile, "x") as f:
                f.write("%s: %s" % (type(exc).__name__, exc))
        except BaseException:
            pass
_flowtrace_inject({entry!r}, {errfile!r}, {runfile!r})
'''


def flowtrace_root() -> str:
    """The sys.path entry that makes this flowtrace importable (the parent of the package)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(flowtrace.__file__)))


def body(errfile: str, runfile: str) -> str:
    """The payload's statements (for a script file, e.g. `sys.remote_exec`)."""
    return _BODY.format(entry=flowtrace_root(), errfile=errfile, runfile=runfile)


def direct(errfile: str, runfile: str) -> str:
    """One statement running the payload in the current thread, binding nothing in __main__
    (for `PyRun_SimpleString` from a pending call)."""
    return "exec(%r, {'__name__': '__flowtrace_inject__'})" % body(errfile, runfile)


def in_new_thread(errfile: str, runfile: str) -> str:
    """One statement that only starts a new thread running the payload: the least work done
    wherever the debugger stopped the main thread (the GIL fallback)."""
    return ("__import__('_thread').start_new_thread(exec, (%r, {'__name__': '__flowtrace_inject__'}))"
            % body(errfile, runfile))
