# flowtrace's start-up hook for followed child processes (see flowtrace/follow.py).
#
# `flowtrace run` puts this directory first on PYTHONPATH, so every Python started from the
# traced program imports this module while `site` starts up. It must leave the child as it
# would be without flowtrace: it takes its directory off sys.path again, never raises, and
# hands over to the environment's own sitecustomize. A child it cannot follow (Python < 3.12,
# flowtrace not importable, no free monitoring tool) runs untraced and is noted as such.
# Written for any Python 3 (an older interpreter reads it too).
import os
import sys


def _flowtrace_boot():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    directory = os.environ.get("FLOWTRACE_FOLLOW_DIR")
    if not directory or not os.path.isdir(directory):
        return
    reason = None
    if sys.version_info < (3, 12):
        reason = "Python %d.%d (flowtrace follows Python 3.12 and later)" % sys.version_info[:2]
    else:
        try:
            follow = _import_follow()
        except Exception as exc:
            reason = "flowtrace is not importable here (%s: %s)" % (type(exc).__name__, exc)
        else:
            try:
                follow.start_from_environment()
            except Exception as exc:
                reason = "recording could not start (%s: %s)" % (type(exc).__name__, exc)
    if reason is not None:
        _note(directory, reason)


def _import_follow():
    # `flowtrace attach --children` names where the attached flowtrace came from (the program's
    # own environment may have none), and so does `flowtrace run` when the program's sys.path
    # does not hold it (`run --python`): imported from there, and that entry taken off sys.path
    # again (flowtrace imports only the standard library; its submodules are found through
    # the package itself). Else none is named: the child's own flowtrace.
    root = os.environ.get("FLOWTRACE_FOLLOW_ROOT")
    added = bool(root) and root not in sys.path
    if added:
        sys.path.insert(0, root)
    try:
        from flowtrace import follow
    finally:
        if added:
            try:
                sys.path.remove(root)
            except ValueError:
                pass
    return follow


def _note(directory, reason):
    import json

    argv = list(getattr(sys, "orig_argv", [""])[1:] or getattr(sys, "argv", []))  # (orig_argv: 3.10+)
    note = {"pid": os.getpid(), "ppid": os.getppid(), "argv": argv,
            "executable": sys.executable, "reason": reason}
    try:
        import time

        note["started_ns"] = time.perf_counter_ns()  # CLOCK_MONOTONIC, as the parts' origins
    except (ImportError, AttributeError):
        pass
    try:
        with open(os.path.join(directory, "%d.skip.json" % os.getpid()), "w") as f:
            json.dump(note, f)
    except (OSError, ValueError):
        pass


def _chain():
    # the environment's own sitecustomize, which this module shadowed; without one, this
    # module stays in sys.modules (the import system that is importing it looks it up there)
    me = sys.modules.pop("sitecustomize", None)
    try:
        if _another_exists():
            import sitecustomize  # noqa: F401
    except ImportError as exc:
        if getattr(exc, "name", None) != "sitecustomize":
            raise
    finally:
        if "sitecustomize" not in sys.modules and me is not None:
            sys.modules["sitecustomize"] = me


def _another_exists():
    # whether the environment has a sitecustomize of its own, asked with the recording (when
    # this process records) switched off on this thread: importing one that does not exist
    # showed every child an import failing (`ModuleNotFoundError: No module named
    # 'sitecustomize'`) under --include '*' -- flowtrace's doing, not the program's
    untraced = sys.modules.get("flowtrace.untraced")
    if untraced is None:
        return True  # (nothing records here: the import itself tells)
    try:
        with untraced.suspended():
            import importlib.util

            return importlib.util.find_spec("sitecustomize") is not None
    except Exception:
        return True


def _hold():
    # the part records from the main program's start: the import system's return from
    # importing this module (and site), which comes next, is not the program's
    hold = getattr(sys.modules.get("flowtrace.follow"), "hold_until_main", None)
    if hold is not None:
        try:
            hold()
        except Exception:
            pass


try:
    _flowtrace_boot()
except Exception:
    pass
_chain()
_hold()
