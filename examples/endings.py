"""Child processes that end every way a child ends: returning, sys.exit(N), an exception, for
each multiprocessing start method, a Python subprocess and os.fork. `flowtrace run` records
each into its own part; `flowtrace print` and the explorer say how each ended (exit 0, exit 7,
uncaught exception ...), as the program's own output does.

Usage: python examples/endings.py
"""

import multiprocessing as mp
import os
import subprocess
import sys


def returns() -> None:
    pass


def exits() -> None:
    sys.exit(7)


def raises() -> None:
    raise ValueError("in the worker")  # multiprocessing prints it; the worker's status is 1


def python(code: str) -> int:
    return subprocess.run([sys.executable, "-c", code]).returncode


def fork_child(how: str) -> int | None:
    """The child's status in the parent; None in the child, which runs on to the program's end."""
    pid = os.fork()
    if pid == 0:
        if how == "exit":
            sys.exit(3)
        if how == "raise":
            raise ValueError("in the child")
        return None
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def main() -> None:
    for method in ("fork", "spawn", "forkserver"):
        for target in (returns, exits, raises):
            proc = mp.get_context(method).Process(target=target)
            proc.start()
            proc.join()
            print(method, target.__name__, proc.exitcode)
    print("python -c", python("def f(): pass\nf()"), python("import sys\nsys.exit(4)"),
          python("raise SystemExit('bye')"), python("raise ValueError('x')"),
          python("import os\nif os.fork() == 0:\n    pass\nelse:\n    os.wait()"))
    for how in ("return", "exit", "raise"):
        status = fork_child(how)
        if status is None:
            return
        print("os.fork", how, status)


if __name__ == "__main__":
    main()
