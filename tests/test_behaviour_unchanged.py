"""`flowtrace run` must not change what a program does: same stdout, same stderr (apart from
our one closing line), same exit status — compared against plain `python` in subprocesses."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from flowtrace.ftr.reader import load
from plain_vs_traced import PY, assert_same, run_both, script

# Everything Python sets up for __main__ that a program can see.
INTROSPECT = """
import sys
g = globals()
print("argv", sys.argv)
print("path0", repr(sys.path[0]))
print("name", __name__, "file", g.get("__file__"), "cached", g.get("__cached__", "-"))
print("package", repr(g.get("__package__")), "spec", getattr(g.get("__spec__"), "name", None))
print("loader", type(g.get("__loader__")).__name__ if not isinstance(g.get("__loader__"), type) else g.get("__loader__").__name__)
print("keys", sorted(k for k in g if k.startswith("__")))
print("main is me", sys.modules["__main__"].__dict__ is g)
"""


def test_normal_script_and_argv(tmp_path: pathlib.Path) -> None:
    s = script(tmp_path, "prog/hello.py", INTROSPECT + """
def greet(name):
    return f"hello {name}"
print(greet(sys.argv[1]))
print("to stderr", file=sys.stderr)
""")
    plain, traced, out = run_both([str(s.relative_to(tmp_path)), "world", "--flag", "-m", "x"], tmp_path)
    assert plain.returncode == 0 and "hello world" in plain.stdout
    assert "argv ['prog/hello.py', 'world', '--flag', '-m', 'x']" in plain.stdout
    assert_same(plain, traced)
    trace = load(out)
    assert trace.status == "finished" and trace.end["reason"] == "exit" and trace.end["exit_code"] == 0
    assert [(c.qualname, c.args, c.result) for c, _ in trace.walk() if c.qualname == "greet"] == [
        ("greet", "name='world'", "'hello world'")]
    assert trace.meta["argv"] == ["prog/hello.py", "world", "--flag", "-m", "x"]


def test_uncaught_exception(tmp_path: pathlib.Path) -> None:
    s = script(tmp_path, "boom.py", """
import sys
def inner(x):
    raise ValueError(f"bad {x}")
def outer():
    try:
        inner(1)
    except ValueError as exc:
        raise RuntimeError("wrapped") from exc
print("before", flush=True)
sys.stdout.write("unflushed tail")
outer()
""")
    plain, traced, out = run_both([str(s)], tmp_path)
    assert plain.returncode == 1 and "RuntimeError: wrapped" in plain.stderr
    assert_same(plain, traced)
    trace = load(out)
    assert (trace.end["reason"], trace.end["exit_code"], trace.end["error"]) == ("exception", 1, "RuntimeError: wrapped")


@pytest.mark.parametrize("code, status", [("sys.exit(3)", 3), ("sys.exit('bye now')", 1), ("sys.exit()", 0),
                                          ("sys.exit(None)", 0), ("raise SystemExit(300)", 300 & 0xFF)])
def test_sys_exit(tmp_path: pathlib.Path, code: str, status: int) -> None:
    s = script(tmp_path, "ex.py", f"import sys\nprint('start')\n{code}\nprint('not reached')\n")
    plain, traced, out = run_both([str(s)], tmp_path)
    assert plain.returncode == status
    assert_same(plain, traced)
    assert load(out).end["reason"] == "exit"


def test_stdin(tmp_path: pathlib.Path) -> None:
    s = script(tmp_path, "cat.py", """
import sys
def shout(line):
    return line.upper()
for line in sys.stdin:
    print(shout(line.rstrip("\\n")))
print(input.__name__)
""")
    plain, traced, _ = run_both([str(s)], tmp_path, stdin="one\ntwo\nthree\n")
    assert plain.stdout.startswith("ONE\nTWO\nTHREE\n")
    assert_same(plain, traced)


def test_module(tmp_path: pathlib.Path) -> None:
    script(tmp_path, "pkg/__init__.py", "")
    script(tmp_path, "pkg/tool.py", INTROSPECT)
    script(tmp_path, "pkg/__main__.py", INTROSPECT + "raise SystemExit(4)\n")
    plain, traced, _ = run_both(["-m", "pkg.tool", "a", "-c", "b"], tmp_path)
    assert f"path0 {str(tmp_path)!r}" in plain.stdout and "spec pkg.tool" in plain.stdout
    assert_same(plain, traced)
    plain, traced, _ = run_both(["-m", "pkg", "z"], tmp_path)
    assert plain.returncode == 4 and "spec pkg.__main__" in plain.stdout
    assert_same(plain, traced)


def test_module_traceback_has_runpy_lines(tmp_path: pathlib.Path) -> None:
    script(tmp_path, "mod_boom.py", "def f():\n    return 1 / 0\nf()\n")
    plain, traced, _ = run_both(["-m", "mod_boom"], tmp_path)
    assert "<frozen runpy>" in plain.stderr and "ZeroDivisionError" in plain.stderr
    assert_same(plain, traced)


def test_directory_with_main(tmp_path: pathlib.Path) -> None:
    script(tmp_path, "app/__main__.py", INTROSPECT)
    plain, traced, _ = run_both(["app", "q"], tmp_path)
    assert plain.returncode == 0
    assert_same(plain, traced)


def test_code(tmp_path: pathlib.Path) -> None:
    plain, traced, _ = run_both(["-c", INTROSPECT + "print(sum(int(a) for a in sys.argv[1:]))", "1", "2"], tmp_path)
    assert "argv ['-c', '1', '2']" in plain.stdout and "path0 ''" in plain.stdout
    assert_same(plain, traced)
    plain, traced, _ = run_both(["-c", "import sys\ndef f():\n    raise KeyError('k')\nf()"], tmp_path)
    assert plain.returncode == 1 and 'File "<string>", line 3, in f' in plain.stderr
    assert_same(plain, traced)


def test_main_pickling(tmp_path: pathlib.Path) -> None:
    s = script(tmp_path, "pick.py", """
import pickle
from dataclasses import dataclass

@dataclass
class Point:
    x: int
    y: int

class Box:
    def __init__(self, item):
        self.item = item

data = pickle.dumps([Point(1, 2), Box(Point(3, 4))])
back = pickle.loads(data)
print(back[0], back[1].item, type(back[1]).__module__)
print(b"__main__" in data)
""")
    plain, traced, _ = run_both([str(s)], tmp_path)
    assert plain.stdout == "Point(x=1, y=2) Point(x=3, y=4) __main__\nTrue\n"
    assert_same(plain, traced)


def test_syntax_error(tmp_path: pathlib.Path) -> None:
    s = script(tmp_path, "bad.py", "print('x')\ndef broken(:\n    pass\n")
    plain, traced, _ = run_both([str(s)], tmp_path)
    assert plain.returncode == 1 and "SyntaxError" in plain.stderr
    assert_same(plain, traced)


def test_a_null_byte_in_the_script(tmp_path: pathlib.Path) -> None:
    """Python's tokenizer names the line ("source code cannot contain null bytes"); compile()
    words it otherwise, without one: the runner raises Python's error."""
    s = tmp_path / "nul.py"
    s.write_bytes(b'x = 1\ny = "a\0b"\n')
    plain, traced, _ = run_both([str(s)], tmp_path)
    assert plain.returncode == 1 and 'line 2\n    y = "a\nSyntaxError: source code cannot contain null bytes' in plain.stderr
    assert_same(plain, traced)


@pytest.mark.parametrize("name, mode, words", [
    ("tool", 0o755, "is an executable file, not a Python script: flowtrace records Python programs only"),
    ("python3", 0o644, "is named like a Python interpreter but is not one flowtrace can run: "
                       "`flowtrace run --python PYTHON ...` runs the program under PYTHON"),
])
def test_a_binary_given_as_the_script(tmp_path: pathlib.Path, name: str, mode: int, words: str) -> None:
    """`flowtrace run ./tool` (a binary), or a copy of an interpreter that cannot be run: Python
    fails as `python ./tool` does, after one line saying what was probably meant. (An interpreter
    that can run is run: test_run_python.py.)"""
    binary = tmp_path / name
    binary.write_bytes(pathlib.Path(os.path.realpath(PY)).read_bytes()[:4096])
    binary.chmod(mode)
    plain, traced, _ = run_both([str(binary), "-c", "print(1)"], tmp_path)
    assert plain.returncode == 1 and "SyntaxError: source code cannot contain null bytes" in plain.stderr
    hint, rest = traced.stderr.split("\n", 1)
    assert hint == f"flowtrace: {binary} {words}"
    traced.stderr = rest
    assert_same(plain, traced)


def test_an_audit_hook_sees_nothing_of_ours_at_exit(tmp_path: pathlib.Path) -> None:
    """A program's audit hook, installed after recording started, sees no sys.monitoring event of
    ours when the program ends -- by returning, by os._exit, in the top process and in a followed
    child (CPython's test_audit saw eight `sys.monitoring.register_callback`s as its child ended)."""
    hook = "sys.addaudithook(lambda event, args: event.startswith('sys.monitoring') and print(WHO, event, flush=True))"
    child = f"import os, sys\nWHO = 'child'\n{hook}\ndef f():\n    return 1\nf()\n"
    s = script(tmp_path, "audited.py", f"""
import os, subprocess, sys
WHO = "parent"
{hook}
def work():
    return 2
work()
subprocess.run([sys.executable, "-c", {child!r}], check=True)
subprocess.run([sys.executable, "-c", {child + "os._exit(0)"!r}], check=True)
print("done")
""")
    plain, traced, out = run_both([str(s)], tmp_path)
    assert plain.returncode == 0 and plain.stdout == "done\n"
    assert_same(plain, traced)
    assert len([p for p in os.listdir(f"{out}.d") if p.endswith(".ftr")]) == 2  # (both children followed)


def test_a_python_script_named_like_an_interpreter_just_runs(tmp_path: pathlib.Path) -> None:
    """A script named python3 (not executable: `run --python` does not take it for one) is a
    script: it runs as `python python3` runs it, with no word of ours."""
    s = script(tmp_path, "python3", "def hi():\n    return 'hi'\nprint(hi())\n")
    plain, traced, out = run_both([str(s)], tmp_path)
    assert plain.returncode == 0 and plain.stdout == "hi\n"
    assert_same(plain, traced)


def test_keyboard_interrupt(tmp_path: pathlib.Path) -> None:
    s = script(tmp_path, "ki.py", """
import atexit
atexit.register(print, "atexit ran")
def work():
    raise KeyboardInterrupt
work()
""")
    plain, traced, out = run_both([str(s)], tmp_path)
    assert plain.returncode == -signal.SIGINT and "KeyboardInterrupt" in plain.stderr
    assert_same(plain, traced)
    assert (load(out).end["reason"], load(out).end["signal"]) == ("signal", "SIGINT")


CTRL_C = """
import signal, sys
def wait_for_ctrl_c():
    # SIGINT is held back until the test has sent it, so that it is delivered at one known
    # point: when the unblocking call returns (the same line with and without flowtrace)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    print("ready", flush=True)
    while signal.SIGINT not in signal.sigpending():
        pass
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    print("not reached")
def main():
    wait_for_ctrl_c()
main()
"""


def test_ctrl_c_traceback_is_pythons(tmp_path: pathlib.Path) -> None:
    """Ctrl-C from outside: the same KeyboardInterrupt traceback as plain python (no frame of
    flowtrace's signal handling in it), the same death by SIGINT, a finished session."""
    s = script(tmp_path, "ctrl_c.py", CTRL_C)
    out = tmp_path / "out.ftr"
    results = []
    for cmd in ([PY, str(s)], [PY, "-m", "flowtrace", "run", "-o", str(out), str(s)]):
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(cmd, proc.returncode, "ready\n" + stdout, stderr))
    plain, traced = results
    assert plain.returncode == -signal.SIGINT
    assert "signal.pthread_sigmask(signal.SIG_UNBLOCK" in plain.stderr and plain.stderr.endswith("KeyboardInterrupt\n")
    assert_same(plain, traced)
    assert "flowtrace" not in traced.stderr.splitlines()[-2]  # the closing line only
    trace = load(out)
    assert (trace.end["reason"], trace.end["signal"]) == ("signal", "SIGINT")
    assert [(c.qualname, c.exception) for c, _ in trace.walk()] == [
        ("<module>", "KeyboardInterrupt"), ("main", "KeyboardInterrupt"), ("wait_for_ctrl_c", "KeyboardInterrupt")]


def test_sigterm(tmp_path: pathlib.Path) -> None:
    s = script(tmp_path, "term.py", """
import os, signal
def die():
    print("dying", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    while True:
        pass
die()
""")
    plain, traced, out = run_both([str(s)], tmp_path)
    assert plain.returncode == -signal.SIGTERM
    assert traced.stdout == plain.stdout and traced.returncode == plain.returncode
    trace = load(out)
    assert (trace.end["reason"], trace.end["signal"]) == ("signal", "SIGTERM")
    assert [c.qualname for c in trace.calls] == ["<module>", "die"] or [c.qualname for c in trace.calls] == ["die"]


def test_atexit_threads_and_excepthook(tmp_path: pathlib.Path) -> None:
    s = script(tmp_path, "late.py", """
import atexit, sys, threading, time
def bye():
    print("bye from atexit")
atexit.register(bye)
def worker():
    time.sleep(0.05)
    print("worker done after main")
threading.Thread(target=worker).start()
def hook(t, v, tb):
    print("custom hook:", t.__name__, v, file=sys.stderr)
sys.excepthook = hook
print("main done")
raise LookupError("gone")
""")
    plain, traced, out = run_both([str(s)], tmp_path)
    assert plain.stdout == "main done\nworker done after main\nbye from atexit\n"
    assert plain.stderr == "custom hook: LookupError gone\n" and plain.returncode == 1
    assert_same(plain, traced)
    names = [c.qualname for c in load(out).calls]
    assert "worker" in names and "bye" in names  # recorded until the very end


def test_console_script_matches_module(tmp_path: pathlib.Path) -> None:
    exe = pathlib.Path(PY).parent / "flowtrace"
    if not exe.exists():
        pytest.skip("flowtrace console script not installed next to this Python")
    s = script(tmp_path, "p.py", INTROSPECT)
    plain = subprocess.run([PY, str(s), "1"], capture_output=True, text=True, cwd=tmp_path)
    traced = subprocess.run([str(exe), "run", "-o", str(tmp_path / "o.ftr"), str(s), "1"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert_same(plain, traced)


@pytest.mark.parametrize("ending", ["", "sys.exit(3)", "raise ValueError('x')"])
def test_main_file_at_exit(tmp_path: pathlib.Path, ending: str) -> None:
    """Python removes a script's __file__ from __main__ once it has run, unless it ended with
    sys.exit (which exits at once): atexit handlers see the difference."""
    s = script(tmp_path, "ends.py", f"""
import atexit, sys
atexit.register(lambda: print("at exit", sys.modules["__main__"].__dict__.get("__file__", "-"),
                              "__cached__" in vars(sys.modules["__main__"])))
{ending}
""")
    plain, traced, _ = run_both([str(s)], tmp_path)
    assert plain.stdout == ("at exit - False\n" if "exit" not in ending else f"at exit {s} True\n")
    assert_same(plain, traced)



# A program that measures its own memory with tracemalloc (more-itertools' test suite checks
# that 10000 peeks retain under 256 KiB) sees only its own: the C recorder's buffers, which
# grow with the calls it records, come from malloc, which tracemalloc does not trace (they
# were 9.4 MB here with arguments, 2.3 MB without; now a few KB, plus at most the chunk a drain
# on the flusher thread holds at that moment). The Python recorder's rows are Python lists:
# tracemalloc counts them.
TRACEMALLOC = """
import tracemalloc

def step(i):
    return i + 1

tracemalloc.start()
for i in range(20000):
    step(i)
retained = tracemalloc.get_traced_memory()[0]
print("retained under 1 MiB" if retained < 1024 * 1024 else f"retained {retained // 1024} KiB")
"""


@pytest.mark.parametrize("args", [[], ["--no-args"]])
def test_tracemalloc_does_not_count_the_recorders_memory(tmp_path: pathlib.Path, args: list[str]) -> None:
    pytest.importorskip("flowtrace._crecorder")
    s = script(tmp_path, "tm.py", TRACEMALLOC)
    out = tmp_path / "tm.ftr"
    plain = subprocess.run([PY, str(s)], capture_output=True, text=True, timeout=60)
    traced = subprocess.run([PY, "-m", "flowtrace", "run", *args, "-o", str(out), str(s)], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "FLOWTRACE_RECORDER": "c"})
    assert plain.stdout == traced.stdout == "retained under 1 MiB\n", traced.stderr
    trace = load(out)
    assert trace.meta["recorder"] == "c" and sum(c.qualname == "step" for c in trace.calls) == 20000


# A function's locals as Python 3.12 keeps them: a dict on the frame only once something asks
# for them (locals(), frame.f_locals). Reading the arguments must not leave one holding them
# (found on click's test suite: an __import__ hook then got a function's locals where Python
# gives None, and failed).
LOCALS_UNSEEN = """
import builtins, weakref
passed = []
real_import = builtins.__import__
def hook(name, globals=None, locals=None, fromlist=(), level=0):
    if globals and globals.get("__name__") == "__main__" and name == "json":
        passed.append(sorted(locals or ()))  # the names a hook finds in the importer's locals
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = hook

def load(n):
    import json
    return json.dumps(n)

class Big:
    pass

def consume(obj):
    ref = weakref.ref(obj)
    del obj  # the last reference: the object goes now
    return ref() is None

def keep(obj):
    mine = locals()
    return sorted(mine)

print(load(3), passed)
print("freed on del:", consume(Big()))
print(keep(1))
"""


def test_reading_the_arguments_keeps_no_locals_on_the_frame(tmp_path: pathlib.Path, recorder_name: str) -> None:
    s = script(tmp_path, "locals_unseen.py", LOCALS_UNSEEN)
    plain, traced, out = run_both([str(s)], tmp_path, env={"FLOWTRACE_RECORDER": recorder_name})
    # (Python 3.12's pure-Python recorder leaves an EMPTY dict on the frame, so a hook gets {}
    # where Python gives None: frame.f_locals is the only way to read the arguments there)
    assert plain.stdout == "3 [[]]\nfreed on del: True\n['obj']\n"
    assert_same(plain, traced)
    calls = [(c.qualname, re.sub(r"0x[0-9a-f]+", "0x…", c.args or ""), c.result) for c in load(out).calls
             if c.qualname in ("load", "consume", "keep")]
    assert calls == [("load", "n=3", "'3'"), ("consume", "obj=<__main__.Big object at 0x…>", "True"),
                     ("keep", "obj=1", "['obj']")]


CODE_EXTRA = """
    import ctypes, gc, sys

    api = ctypes.pythonapi
    freefunc = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    api.PyUnstable_Eval_RequestCodeExtraIndex.argtypes = (freefunc,)
    api.PyUnstable_Eval_RequestCodeExtraIndex.restype = ctypes.c_ssize_t
    api.PyUnstable_Code_SetExtra.argtypes = (ctypes.py_object, ctypes.c_ssize_t, ctypes.c_void_p)
    api.PyUnstable_Code_GetExtra.argtypes = (ctypes.py_object, ctypes.c_ssize_t, ctypes.POINTER(ctypes.c_void_p))
    freed = []
    FREE = freefunc(freed.append)
    index = api.PyUnstable_Eval_RequestCodeExtraIndex(FREE)

    def fresh():
        space = {}
        exec(compile("def f(x):\\n    return x + 1\\n", __file__, "exec"), space)  # (user code: recorded)
        return space["f"]

    f = fresh()
    f(1)
    del f
    gc.collect()
    print("freed without an extra", freed)
    g = fresh()
    g(2)
    api.PyUnstable_Code_SetExtra(g.__code__, index, 77)
    got = ctypes.c_void_p()
    api.PyUnstable_Code_GetExtra(g.__code__, index, ctypes.byref(got))
    print("got", got.value)
    del g
    gc.collect()
    print("freed", freed)
"""


def test_a_programs_code_extra_free_function(tmp_path: pathlib.Path) -> None:
    """The recorder keeps its per-code answer in co_extra; CPython calls every requested index's
    free function at a code object's end for each slot of its block, empty ones too: a block
    grown to the program's index (as PyUnstable_Code_SetExtra grows it) called the program's
    free function with NULL for every code object recorded -- CPython's test_code crashed at
    exit (its ctypes free function called after ctypes was gone)."""
    s = script(tmp_path, "code_extra.py", CODE_EXTRA)
    plain, traced, _ = run_both([str(s)], tmp_path)
    assert plain.stdout == "freed without an extra []\ngot 77\nfreed [77]\n", plain.stderr
    assert_same(plain, traced)
