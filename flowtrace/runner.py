"""Run a Python program the way `python` would — script, `-m module` or `-c code` — inside our
process, so that the recorder can watch it.

The program must not be able to tell the difference (beyond the extra frames below it on the
stack): `sys.argv`, `sys.path[0]`, a fresh `__main__` module with the same attributes Python
gives it (`__file__`, `__spec__`, `__loader__`, …, so that classes defined there pickle), the same
traceback text for an uncaught exception (our frames removed, printed through `sys.excepthook`),
and the same exit status. Finding the program (`prepare`) is separate from running it
(`execute`), so a missing script is reported before any recording starts.

Standard library only.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import io
import os
import runpy
import sys
import types
from typing import Any, Callable

from .filters import mark_user_code
from .interpreters import INTERPRETER_NAME  # here, not where it is used: that is while recording
from .plain import Plain
from .recorder.common import set_program_base

if sys.version_info >= (3, 13):
    import linecache  # (for _remember_c_source, which runs while recording; 3.12 does not need it)


class ProgramNotFound(Exception):
    """The program cannot be started; the message is one line (like Python's own), `status` is
    the exit status Python uses for the same problem."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Program(Plain):
    """What to run: `kind` is "script" (a file, directory or zip), "module" or "code"."""

    __slots__ = ("kind", "target", "args")

    def __init__(self, kind: str, target: str, args: list[str] | None = None) -> None:
        self.kind = kind
        self.target = target
        self.args = [] if args is None else args

    def command_line(self) -> list[str]:
        """What follows `python` to run it (the code of -c left out): the session's META argv."""
        head = {"script": [self.target], "module": ["-m", self.target], "code": ["-c"]}[self.kind]
        return [*head, *self.args]

    def describe(self) -> str:
        return {"script": self.target, "module": f"-m {self.target}", "code": "-c …"}[self.kind]


class Prepared(Plain):
    """A program ready to execute: its `__main__` module, argv, sys.path[0], and either its
    source (a script or -c) or the module runpy runs (`run_module`: -m, a directory or zip,
    as `python -m` / `python dir_or_zip` run them)."""

    __slots__ = ("program", "module", "argv", "path0", "source", "filename", "run_module", "spec")

    def __init__(self, program: Program, module: types.ModuleType, argv: list[str], path0: str,
                 source: bytes | str | None = None, filename: str = "<string>", run_module: str | None = None,
                 spec: importlib.machinery.ModuleSpec | None = None) -> None:
        self.program, self.module, self.argv, self.path0 = program, module, argv, path0
        self.source, self.filename, self.run_module, self.spec = source, filename, run_module, spec


class Outcome(Plain):
    """How the program ended. `kind`: "exit" (returned or sys.exit), "exception" (uncaught,
    already printed), "interrupt" (KeyboardInterrupt, already printed). `status` is the exit
    status to use; `error` the one-line "Type: message" of an uncaught exception."""

    __slots__ = ("kind", "status", "error")

    def __init__(self, kind: str, status: int, error: str | None = None) -> None:
        self.kind, self.status, self.error = kind, status, error


def _new_main(**attrs: Any) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __doc__=None, __package__=None, __spec__=None, __annotations__={}, __builtins__=builtins
    )
    module.__dict__.update(attrs)
    return module


def prepare(program: Program) -> Prepared:
    """Find the program and build its `__main__`; raise ProgramNotFound if it cannot start.
    Sets sys.path[0] as Python does (a module is looked up with the current directory first)."""
    if program.kind == "code":
        module = _new_main(__loader__=importlib.machinery.BuiltinImporter)
        _set_path0("")  # python -c looks up imports in the current directory first
        return Prepared(program, module, ["-c", *program.args], "", source=program.target)
    if program.kind == "module":
        path0 = os.getcwd()
        _set_path0(path0)
        _check_top_level(program.target)
        # sys.argv as `python -m` has it while runpy imports the module's packages: ["-m",
        # args…] (runpy itself then puts the module's path in sys.argv[0])
        return Prepared(program, _new_main(), ["-m", *program.args], path0, run_module=program.target)
    return _script(program)


def _set_path0(value: str) -> None:
    if sys.path:
        sys.path[0] = value
    else:
        sys.path.insert(0, value)


def _script(program: Program) -> Prepared:
    path = program.target
    argv = [path, *program.args]
    if os.path.isdir(path) or (os.path.isfile(path) and _is_zip(path)):
        path0 = os.path.abspath(path)
        spec = importlib.machinery.PathFinder.find_spec("__main__", [path0])
        if spec is None or spec.loader is None:
            raise ProgramNotFound(f"can't find '__main__' module in {path!r}")
        _set_path0(path0)
        return Prepared(program, _new_main(), argv, path0, run_module="__main__", spec=spec)
    try:
        with io.open_code(path) as f:
            source = f.read()
    except OSError as exc:
        raise ProgramNotFound(f"can't open file {path!r}: {exc.strerror or exc}", 2) from None
    if (source[:4] == b"\x7fELF" or INTERPRETER_NAME.fullmatch(os.path.basename(path))) and b"\0" in source:
        _hint_not_a_script(path)  # (a Python script named python3 runs as it is: no hint)
    filename = os.path.abspath(path)
    path0 = os.path.dirname(os.path.realpath(path))
    _set_path0(path0)
    module = _new_main(
        __file__=filename,
        __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", filename),
    )
    return Prepared(program, module, argv, path0, source=source, filename=filename)


def _hint_not_a_script(path: str) -> None:
    """A file given as the script that is an executable or named like an interpreter, and yet
    not one `flowtrace run` could run the program under (interpreters.is_interpreter: not
    executable, say): Python still runs it and fails as it would ("source code cannot contain
    null bytes"), after one line of ours saying what was probably meant."""
    if INTERPRETER_NAME.fullmatch(os.path.basename(path)):
        hint = (f"{path} is named like a Python interpreter but is not one flowtrace can run: "
                f"`flowtrace run --python PYTHON ...` runs the program under PYTHON")
    else:
        hint = f"{path} is an executable file, not a Python script: flowtrace records Python programs only"
    try:
        sys.stderr.write(f"flowtrace: {hint}\n")
    except (OSError, ValueError):
        pass


def _is_zip(path: str) -> bool:
    """zipfile.is_zipfile, which looks for the end record in the file's last 64 KiB + 22
    bytes; zipfile (with the shutil, bz2 and lzma it loads) is imported only when that record's
    signature is there, not for every script `flowtrace run` starts."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - (65535 + 22)))
            if b"PK\x05\x06" not in f.read():
                return False
    except OSError:
        return False
    import zipfile

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _check_top_level(name: str) -> None:
    """Report a `-m` module that cannot exist before recording starts, importing nothing: a
    relative name, or a top-level package or module that no finder knows. Everything past
    that (the parent packages' `__init__`, a missing submodule, a package without `__main__`)
    is runpy's to do and to report while recording, as under `python -m`."""
    if name.startswith("."):
        raise ProgramNotFound("relative module names are not supported")
    top = name.partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: finders only, no import
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise ProgramNotFound(
            f"error while finding module specification for {name!r} ({type(exc).__name__}: {exc})") from None
    if spec is None:
        raise ProgramNotFound(f"no module named {top}")


def _module_spec(name: str) -> importlib.machinery.ModuleSpec:
    """The spec `python -m name` would run: the module, or a package's `__main__`."""
    if name.startswith("."):
        raise ProgramNotFound("relative module names are not supported")
    try:
        spec = importlib.util.find_spec(name)
    except ImportError as exc:
        if getattr(exc, "name", None) and name.startswith(str(exc.name)) and "No module named" in str(exc):
            raise ProgramNotFound(f"no module named {exc.name}") from None
        raise ProgramNotFound(
            f"error while finding module specification for {name!r} ({type(exc).__name__}: {exc})") from None
    except (AttributeError, TypeError, ValueError) as exc:
        raise ProgramNotFound(
            f"error while finding module specification for {name!r} ({type(exc).__name__}: {exc})") from None
    if spec is None:
        raise ProgramNotFound(f"no module named {name}")
    if spec.submodule_search_locations is not None:
        if name == "__main__" or name.endswith(".__main__"):
            raise ProgramNotFound("cannot use package as __main__ module")
        try:
            return _module_spec(name + ".__main__")
        except ProgramNotFound as exc:
            raise ProgramNotFound(f"{exc}; {name!r} is a package and cannot be directly executed") from None
    if spec.loader is None:
        raise ProgramNotFound(f"no code object available for {name}")
    return spec


def _run_spec(prepared: Prepared) -> None:
    """Fallback for a Python without runpy._run_module_as_main: run the spec's code ourselves."""
    spec = prepared.spec
    if spec is None:  # -m: found now, while recording (it imports the parent packages)
        try:
            spec = _module_spec(prepared.run_module or prepared.program.target)
        except ProgramNotFound as exc:
            sys.exit(f"{sys.executable}: {exc}")  # as runpy reports it
        sys.argv[0] = spec.origin or prepared.program.target
    assert spec is not None and spec.loader is not None
    g = prepared.module.__dict__
    g.update(__name__="__main__", __spec__=spec, __loader__=spec.loader,
             __package__=spec.name.rpartition(".")[0], __file__=spec.origin, __cached__=spec.cached)
    code = spec.loader.get_code(spec.name)  # type: ignore[attr-defined]
    exec(code, g)


def _null_byte_error(source: bytes, filename: str) -> SyntaxError | None:
    """Python's own error for a script holding a NUL byte, where and as its tokenizer reports it
    (compile() says "source code string cannot contain null bytes", without a line). None when
    there is none, or when the text before it is not plain UTF-8 (compile() then reports what
    Python would meet first)."""
    at = source.find(b"\0")
    if at < 0:
        return None
    try:
        head = source[:at].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "coding" in "\n".join(head.splitlines()[:2]):
        return None  # (an encoding declared: compile() reads the file as that)
    lineno = head.count("\n") + 1
    text = head[head.rfind("\n") + 1:]  # (the NUL's line, up to it)
    return SyntaxError("source code cannot contain null bytes", (filename, lineno, 0, text, lineno, 0))


def _remember_c_source(source: str) -> None:
    """Python 3.13+ keeps the `-c` source in linecache, so its tracebacks show source lines."""
    linecache.cache["<string>"] = (len(source), None, [line + "\n" for line in source.splitlines()], "<string>")


def _strip(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Drop the leading traceback entries that are this module's (the exec/compile below)."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


def report(exc: BaseException) -> None:
    """Print an uncaught exception as the interpreter would: through sys.excepthook."""
    tb = _strip(exc.__traceback__)
    exc.__traceback__ = tb
    sys.last_exc = exc  # type: ignore[attr-defined]  # what the interpreter sets (3.12+)
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except BaseException as hook_exc:  # noqa: BLE001 - Python's own fallback for a broken hook
        sys.__stderr__.write("Error in sys.excepthook:\n")
        sys.__excepthook__(type(hook_exc), hook_exc, hook_exc.__traceback__)
        sys.__stderr__.write("\nOriginal exception was:\n")
        sys.__excepthook__(type(exc), exc, tb)


def exit_status(code: object) -> int:
    """The exit status of `SystemExit(code)`; a non-int code is printed on stderr (as Python)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        sys.stderr.write(f"{code}\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a closed stderr must not hide the exit status
        pass
    return 1


def execute(prepared: Prepared, started: Callable[[], None] | None = None) -> Outcome:
    """Run the program as `__main__` and say how it ended. Uncaught exceptions are printed here
    (as Python prints them), never raised. `started` is called first, in the program's time:
    a KeyboardInterrupt it raises (a Ctrl-C held off until then) is the program's."""
    sys.modules["__main__"] = prepared.module
    sys.argv = list(prepared.argv)
    try:
        if started is not None:
            try:
                started()
            except KeyboardInterrupt as exc:
                raise exc.with_traceback(None)  # before the program's first line: none of its frames
        _run(prepared)
    except SystemExit as exc:  # Python exits at once: __main__ keeps its __file__ for atexit
        return Outcome("exit", exit_status(exc.code))
    except KeyboardInterrupt as exc:
        report(exc)
        outcome = Outcome("interrupt", 130, "KeyboardInterrupt")
    except BaseException as exc:  # noqa: BLE001 - any uncaught exception is the program's
        report(exc)
        outcome = Outcome("exception", 1, one_line(exc))
    else:
        outcome = Outcome("exit", 0)
    if prepared.program.kind == "script" and prepared.run_module is None:
        # Python removes a script's __file__ and __cached__ from __main__ once it has run (and
        # its traceback is printed): atexit handlers see them gone (_PyRun_SimpleFileObject)
        prepared.module.__dict__.pop("__file__", None)
        prepared.module.__dict__.pop("__cached__", None)
    return outcome


def _run(prepared: Prepared) -> None:
    set_program_base(sys._getframe())  # (the frames below are the command's: recorder/common.py)
    try:
        if prepared.run_module is not None:
            # runpy is how Python itself runs `-m` and directories: the same __main__ set-up,
            # and the same "<frozen runpy>" lines at the top of a traceback.
            run_as_main = getattr(runpy, "_run_module_as_main", None)
            if run_as_main is not None:
                run_as_main(prepared.run_module, alter_argv=prepared.program.kind == "module")
            else:
                _run_spec(prepared)
            return
        if prepared.program.kind == "code" and sys.version_info >= (3, 13):
            _remember_c_source(str(prepared.source))
        # compiled here, not in prepare(), so a SyntaxError is reported as Python reports it
        if isinstance(prepared.source, bytes) and (error := _null_byte_error(prepared.source, prepared.filename)):
            raise error
        code = compile(prepared.source, prepared.filename, "exec", dont_inherit=True)  # type: ignore[arg-type]
        if prepared.program.kind == "code":
            # "<string>" like generated code, but it is the user's program: record it
            # (only these code objects; the traceback still says File "<string>")
            mark_user_code(code)
        exec(code, prepared.module.__dict__)
    finally:
        set_program_base(None)


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line (the ENDS `error` field)."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a __str__ that raises
        message = "<unprintable>"
    text = f"{type(exc).__qualname__}: {message}" if message else type(exc).__qualname__
    return " ".join(text.split())[:500]
