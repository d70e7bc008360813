"""The `flowtrace` command line, run as a user runs it (subprocesses): run, print, export, and
every error as one line on stderr with a non-zero status, never a traceback."""

from __future__ import annotations

import io
import json
import os
import pathlib
import pty
import subprocess
import sys

import pytest
from trace_builder import sample_bytes, write_sample

from flowtrace import __version__
from flowtrace.ftr.reader import load, trace_to_events
from flowtrace.printing import print_tree

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def flowtrace(*args: str, cwd: pathlib.Path | None = None, env: dict[str, str] | None = None,
              stdin: str | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("NO_COLOR", None)
    if env and "NO_COLOR" in env:
        full_env["NO_COLOR"] = env["NO_COLOR"]
    return subprocess.run([sys.executable, "-m", "flowtrace", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, input=stdin, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str, status: int | None = None) -> None:
    assert proc.returncode != 0
    if status is not None:
        assert proc.returncode == status
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("flowtrace: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def sample(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "sample.ftr"
    write_sample(path)
    return path


# --- run ------------------------------------------------------------------------------------

def test_run_default_output_and_exact_tree(tmp_path: pathlib.Path) -> None:
    proc = flowtrace("run", EXAMPLES / "fib.py", "3", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "fib(3) = 2\n"
    assert proc.stderr == "flowtrace: recorded 6 calls to trace.ftr\n"
    trace = load(tmp_path / "trace.ftr")
    assert trace.status == "finished" and trace.meta["command"] == "run"
    assert trace.meta["argv"] == [str(EXAMPLES / "fib.py"), "3"]
    # (<module> has no arguments: "" or None, depending on the recorder; parity is the recorders' tests' job)
    assert [("  " * d + c.qualname, c.args or None, c.result, c.end) for c, d in trace.walk()] == [
        ("<module>", None, "None", "return"),
        ("  fib", "n=3", "2", "return"),
        ("    fib", "n=2", "1", "return"),
        ("      fib", "n=1", "1", "return"),
        ("      fib", "n=0", "0", "return"),
        ("    fib", "n=1", "1", "return"),
    ]


def test_run_options(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "sub.ftr"
    proc = flowtrace("run", "-o", out, "--no-args", "--flush-interval", "0.05", "--exclude", "*/fib.py",
                     EXAMPLES / "fib.py", "2", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "fib(2) = 1\n"
    trace = load(out)
    assert trace.meta["options"]["args"] == "off" and trace.meta["options"]["exclude"] == ["*/fib.py"]
    assert trace.calls == []  # the whole file is excluded
    proc = flowtrace("run", "-o", out, "--no-args", EXAMPLES / "fib.py", "2", cwd=tmp_path)
    assert [(c.qualname, c.args, c.result) for c in load(out).calls][:2] == [("<module>", None, None), ("fib", None, None)]


def test_run_repr_full(tmp_path: pathlib.Path) -> None:
    prog = tmp_path / "p.py"
    prog.write_text("class P:\n    def __repr__(self):\n        return 'P!'\n"
                    "def take(p):\n    return p\ntake(P())\n")
    for mode, text in (("safe", "<__main__.P object at 0x"), ("full", "P!")):
        flowtrace("run", "-o", tmp_path / f"{mode}.ftr", "--repr", mode, prog, cwd=tmp_path)
        take = [c for c in load(tmp_path / f"{mode}.ftr").calls if c.qualname == "take"][0]
        assert take.args.startswith(f"p={text}") and take.result.startswith(text)


def test_run_module_and_code(tmp_path: pathlib.Path) -> None:
    (tmp_path / "mymod.py").write_text("def f(x):\n    return x * 2\nprint(f(21))\n")
    proc = flowtrace("run", "-o", "m.ftr", "-m", "mymod", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "42\n")
    assert [(c.qualname, c.args or None, c.result) for c in load(tmp_path / "m.ftr").calls] == [
        ("<module>", None, "None"), ("f", "x=21", "42")]
    proc = flowtrace("run", "-o", "c.ftr", "-c", "import mymod; print(mymod.f(1))", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "42\n2\n")
    calls = [(c.qualname, c.args or None, c.result) for c in load(tmp_path / "c.ftr").calls]
    # the -c program's own <module> is recorded too (the runner marks the code it compiled)
    assert calls == [("<module>", None, "None"), ("<module>", None, "None"), ("f", "x=21", "42"),
                     ("f", "x=1", "2")]
    tree = load(tmp_path / "c.ftr")
    assert [(c.id, c.parent) for c in tree.calls] == [(1, None), (2, 1), (3, 2), (4, 1)]
    assert tree.calls[0].function.file == "<string>" and tree.calls[1].function.module == "mymod"


def test_run_program_options_are_not_ours(tmp_path: pathlib.Path) -> None:
    prog = tmp_path / "args.py"
    prog.write_text("import sys\nprint(sys.argv[1:])\n")
    proc = flowtrace("run", prog, "-o", "x", "--help", "-m", cwd=tmp_path)
    assert proc.stdout == "['-o', 'x', '--help', '-m']\n" and (tmp_path / "trace.ftr").exists()
    proc = flowtrace("run", "--", prog, "--version", cwd=tmp_path)
    assert proc.stdout == "['--version']\n"


@pytest.mark.parametrize(
    "args, fragments, status",
    [
        (["run"], ["nothing to run"], 2),
        (["run", "-o", "x.ftr"], ["nothing to run"], 2),
        (["run", "missing.py"], ["can't open file 'missing.py'", "No such file"], 2),
        (["run", "-m", "no_such_module_xyz"], ["no module named no_such_module_xyz"], 1),
        # (`-m emptypkg` imports the package first, as `python -m` does: tests/test_run_module.py)
        (["run", "emptypkg"], ["can't find '__main__' module in 'emptypkg'"], 1),
        (["run", "-m"], ["-m needs a value"], 2),
        (["run", "--bogus", "x.py"], ["unrecognized arguments: --bogus (see 'flowtrace run --help')"], 2),
        (["--bogus"], ["unrecognized arguments: --bogus (see 'flowtrace --help')"], 2),
        (["print", "ok.ftr", "--bogus"], ["unrecognized arguments: --bogus (see 'flowtrace print --help')"], 2),
        (["run", "--repr", "pretty", "x.py"], ["invalid choice: 'pretty'"], 2),
        (["run", "--flush-interval", "soon", "x.py"], ["not a number of seconds"], 2),
        (["run", "-o", "no/such/dir/t.ftr", "ok.py"], ["cannot write no/such/dir/t.ftr"], 1),
        ([], ["no command given"], 2),
        (["frobnicate"], ["invalid choice: 'frobnicate'"], 2),
        (["print"], ["the following arguments are required: FILE"], 2),
        (["print", "missing.ftr"], ["missing.ftr: no such file"], 1),
        (["print", "notes.txt"], ["notes.txt: not a flowtrace session file (wrong magic bytes)"], 1),
        (["print", "empty.ftr"], ["empty.ftr: empty file, not a flowtrace session"], 1),
        (["print", "."], ["is a directory"], 1),
        (["print", "short.ftr"], ["short.ftr: truncated inside its 16-byte file header"], 1),
        (["print", "newer.ftr"], ["newer than this flowtrace reads"], 1),
        (["print", "ok.ftr", "--max-depth", "-1"], ["must be 0 or more"], 2),
        (["print", "ok.ftr", "--thread", "nope"], ["no thread 'nope'", "1 (MainThread), 2 (worker-1)"], 1),
        (["export", "ok.ftr"], ["the following arguments are required: --format"], 2),
        (["export", "ok.ftr", "--format", "xml"], ["invalid choice: 'xml'"], 2),
        (["export", "ok.ftr", "-f", "json", "-o", "no/dir/x.json"], ["no/dir/x.json.part", "No such file"], 1),
        (["export", "ok.ftr", "-f", "json", "-o", "ok.ftr"], ["refusing to overwrite the session file"], 1),
        (["export", "notes.txt", "-f", "chrome"], ["not a flowtrace session file"], 1),
    ],
)
def test_errors_are_one_line(tmp_path: pathlib.Path, args: list[str], fragments: list[str], status: int) -> None:
    (tmp_path / "emptypkg").mkdir()
    (tmp_path / "emptypkg" / "__init__.py").write_text("")
    (tmp_path / "ok.py").write_text("print('never run')\n")
    (tmp_path / "notes.txt").write_text("just some text, long enough to hold a header\n")
    (tmp_path / "empty.ftr").write_bytes(b"")
    (tmp_path / "short.ftr").write_bytes(sample_bytes()[:9])
    newer = bytearray(sample_bytes())
    newer[8] = 9
    (tmp_path / "newer.ftr").write_bytes(bytes(newer))
    write_sample(tmp_path / "ok.ftr")
    proc = flowtrace(*args, cwd=tmp_path)
    assert_one_line_error(proc, *fragments, status=status)
    assert proc.stdout == ""


def test_version() -> None:
    proc = flowtrace("--version")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith(f"flowtrace {__version__} (recorder: ")
    assert ("recorder: python" in proc.stdout) or ("recorder: c" in proc.stdout)


# --- print ----------------------------------------------------------------------------------

def expected_print(path: pathlib.Path, **kw: object) -> str:
    trace = load(path)
    events = trace_to_events(trace)
    if "thread" in kw:
        thread = kw.pop("thread")
        events = [e for e in events if e.thread == thread]
    out = io.StringIO()
    print_tree(events, file=out, color=False, **kw)
    return out.getvalue()


def test_print(sample: pathlib.Path) -> None:
    proc = flowtrace("print", sample)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == expected_print(sample)
    assert "fib(n=2)" in proc.stdout and "ValueError: n=0" in proc.stdout and "Shop.items" in proc.stdout
    assert "\x1b[" not in proc.stdout  # piped: no colour


def test_print_depth_and_thread(sample: pathlib.Path) -> None:
    proc = flowtrace("print", sample, "--max-depth", "0")
    assert proc.stdout == expected_print(sample, max_depth=0)
    assert "fib(n=1)" not in proc.stdout
    by_name = flowtrace("print", sample, "--thread", "worker-1")
    by_number = flowtrace("print", sample, "--thread", "2")
    assert by_name.stdout == by_number.stdout == expected_print(sample, thread=2)
    assert "n=5" in by_name.stdout and "main" not in by_name.stdout


def test_print_unfinished_and_damaged(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "u.ftr"
    write_sample(path, finish=False)
    proc = flowtrace("print", path)
    assert proc.returncode == 0 and "fib(n=2)" in proc.stdout
    assert proc.stderr == f"flowtrace: note: {path}: unfinished (no end record: the program is still running, or was killed), 7 calls read\n"
    data = bytearray(sample_bytes())
    data[-30] ^= 0xFF  # inside the ENDS chunk
    path.write_bytes(bytes(data))
    proc = flowtrace("print", path)
    assert proc.returncode == 0 and "fib(n=2)" in proc.stdout
    assert proc.stderr.startswith(f"flowtrace: note: {path}: damaged at offset ")
    assert proc.stderr.endswith("showing the 7 calls before it\n") and proc.stderr.count("\n") == 1


def _run_on_terminal(args: list[str], env: dict[str, str]) -> str:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "flowtrace", *args], stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode()


def test_print_colour_on_terminal_only(sample: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert "\x1b[" in _run_on_terminal(["print", str(sample)], env)
    assert "\x1b[" not in _run_on_terminal(["print", str(sample)], {**env, "NO_COLOR": "1"})


def test_print_into_closed_pipe(tmp_path: pathlib.Path) -> None:
    flowtrace("run", "-o", "big.ftr", EXAMPLES / "fib.py", "16", cwd=tmp_path)
    proc = subprocess.run(f"{sys.executable} -m flowtrace print big.ftr | head -n 1", shell=True, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("→ <module>") and proc.stderr == ""


# --- export ---------------------------------------------------------------------------------

def test_export_json_stdout_and_default_name(sample: pathlib.Path) -> None:
    proc = flowtrace("export", sample, "--format", "json", "-o", "-")
    assert proc.returncode == 0 and proc.stderr == ""
    doc = json.loads(proc.stdout)
    assert doc["format"] == "flowtrace" and len(doc["calls"]) == 7
    proc = flowtrace("export", sample, "-f", "json")
    assert proc.stderr == f"flowtrace: wrote {str(sample)[:-4]}.json (json, 7 calls)\n"
    assert json.loads(pathlib.Path(str(sample)[:-4] + ".json").read_text()) == doc


def test_export_chrome_of_a_real_run(tmp_path: pathlib.Path) -> None:
    proc = flowtrace("run", "-o", "shop.ftr", EXAMPLES / "shop.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = flowtrace("export", "shop.ftr", "--format", "chrome", "-o", "shop.json", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr.startswith("flowtrace: wrote shop.json (chrome, ")
    doc = json.loads((tmp_path / "shop.json").read_text())
    events = doc["traceEvents"]
    names = {e["name"] for e in events if e["ph"] == "X"}
    assert {"main", "process", "invoice", "Warehouse.take", "unit_price", "shipping_quote", "check_payment"} <= names
    threads = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert "MainThread" in threads and len(threads) >= 2
    assert not list(tmp_path.glob("*.part"))
