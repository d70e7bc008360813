"""The program sees its own threads only (untraced.Thread(hidden=True)): threading's table and
sys's per-thread tables leave the session's flusher out, in the process and in a followed
forked child. CPython's test_threading.test_clear_threads_states_after_fork checks
`len(sys._current_frames()) == 1` in a forked child: it found the child session's flusher; and
test_sys.test_current_frames that the calling thread's entry is its own frame (it was the
wrapper's that leaves ours out)."""

from __future__ import annotations

import os
import sys

import pytest

from plain_vs_traced import assert_same, run_both, script

THREADS = """
    import os, sys, threading, warnings

    warnings.simplefilter("ignore", DeprecationWarning)  # (a joined thread may still be counted at the fork)

    def seen(where):
        frames, errors = sys._current_frames(), sys._current_exceptions()
        names = sorted(t.name for t in threading.enumerate())
        print(where, len(frames), len(errors), threading.active_count(), names,
              frames.get(threading.get_ident()) is sys._getframe(), flush=True)

    seen("alone")
    go = threading.Event()
    worker = threading.Thread(target=go.wait, name="worker")
    worker.start()
    seen("with a worker")
    go.set()
    worker.join()
    pid = os.fork()
    if pid == 0:
        seen("forked child")
        os._exit(0)
    os.waitpid(pid, 0)
    seen("after the fork")
"""


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="os.fork")
def test_the_program_sees_its_own_threads_only(tmp_path):
    prog = script(tmp_path, "threads_seen.py", THREADS)
    plain, traced, out = run_both([str(prog)], tmp_path)
    assert plain.stdout == ("alone 1 1 1 ['MainThread'] True\n"
                            "with a worker 2 2 2 ['MainThread', 'worker'] True\n"
                            "forked child 1 1 1 ['MainThread'] True\n"
                            "after the fork 1 1 1 ['MainThread'] True\n"), plain.stdout
    assert_same(plain, traced)
    assert [name for name in os.listdir(f"{out}.d") if name.endswith(".ftr")]  # (the child was followed)
