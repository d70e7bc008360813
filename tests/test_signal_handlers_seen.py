"""The program sees its signals' handlers as without flowtrace (flowtrace/sighandlers.py).

`flowtrace run` handles SIGTERM where its action is the default one, to finish the file before
the process dies. Before, the program saw that handler: signal.getsignal(SIGTERM) was a bound
method of flowtrace's Session, so a program that installs its graceful handler only over the
default action left ours in place and was killed by SIGTERM (status 143) instead of shutting
down its way (status 0)."""

from __future__ import annotations

import signal

import pytest

from flowtrace.ftr.reader import load
from plain_vs_traced import assert_same, run_both, script

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM") or not hasattr(signal, "pthread_kill"),
                                reason="POSIX signals")

GRACEFUL = """
    import os, signal
    print("sigterm", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
    stopped = []

    def graceful(signum, frame):
        stopped.append(signum)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        print("previous", signal.signal(signal.SIGTERM, graceful) is signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    print("graceful", stopped)
    print("given back", signal.signal(signal.SIGTERM, signal.SIG_DFL) is graceful)
    print("default", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""


def test_a_program_installs_its_handler_over_the_default_action(tmp_path):
    prog = script(tmp_path, "graceful.py", GRACEFUL)
    plain, traced, out = run_both([str(prog)], tmp_path)
    assert plain.stdout == "sigterm True\nprevious True\ngraceful [15]\ngiven back True\ndefault True\n"
    assert_same(plain, traced)
    trace = load(str(out))
    assert trace.finished and trace.end["reason"] == "exit" and trace.end["exit_code"] == 0, trace.end


SIGTERM_UNHANDLED = """
    import os, signal
    print("sigterm", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    print("not reached")
"""


def test_sigterm_left_at_its_default_still_finishes_the_file(tmp_path):
    """The handler is still there, only unseen: SIGTERM kills the program as without us
    (status -15), and the session is finished first ("terminated by SIGTERM")."""
    prog = script(tmp_path, "term.py", SIGTERM_UNHANDLED)
    plain, traced, out = run_both([str(prog)], tmp_path)
    assert plain.stdout == "sigterm True\n" and plain.returncode == -signal.SIGTERM
    assert traced.stdout == plain.stdout and traced.returncode == plain.returncode
    trace = load(str(out))
    assert trace.finished and trace.end["reason"] == "signal" and trace.end["signal"] == "SIGTERM", trace.end
