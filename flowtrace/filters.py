"""Which code the recorder records: decided once per code object (see docs/FORMAT.md).

The default is *user code only*: not the standard library, not site-packages (nor dist-packages,
nor the user site), not frozen modules, not generated code whose file name is a `<...>` pseudo
name (`<string>` from `exec`/dataclasses/namedtuple, `<frozen ...>`), and never flowtrace itself.
Interactive input (`<stdin>`, `<python-input-N>`) counts as user code, and so does the code of
`flowtrace run -c CODE`: the runner compiles it and marks exactly those code objects
(`mark_user_code`), although their file name is `<string>` too. The other way round, the
launcher of the `flowtrace` command (the console script pip writes into the venv's `bin`, whose
top-level code calls `flowtrace.cli.main()`) is flowtrace's own code although its file is not in
the flowtrace package: `cli.main` marks it (`mark_internal_code`), so that a `flowtrace run
--paused` program attached later does not show the launcher above its own `<module>`.

Patterns refine the default:
- `include` patterns add code the default leaves out (e.g. `json.*` to see the json package);
- `exclude` patterns remove code; they win over everything else.

A pattern is matched against the module name (dotted, from the frame's globals `__name__`) and
against the absolute file name. A pattern that contains `/` or ends in `.py` is a path glob
(`fnmatch`, `*` also crosses `/`), and so is a `<...>` pseudo file name (`<string>`); any other
pattern is a module glob, and a module pattern with no glob characters also matches its
submodules (`mypkg` matches `mypkg` and `mypkg.sub`). A module glob ending in `.*` matches
the package itself too: `json.*` means the json package (`json.dumps` lives in
`json/__init__.py`, module `json`), as `json` does; `json.d*` matches only the submodules it
names. Code run by `-m pkg.mod` runs as `__main__` and matches under both names.

The program itself -- the code that runs as `__main__`, a script or the module `-m` names -- is
user code wherever its file lies: `flowtrace run -m tokenize f.py` records tokenize's `main()`
and what it calls in that module (it recorded nothing, the whole program being standard
library), though not the other library modules it uses (`--include` adds those).

Code compiled from a string is decided by its file name alone: generated code (a `<...>` file
name other than `<frozen NAME>` and interactive input: `<string>` from `exec`, dataclass
`__init__`/`__eq__`/... and namedtuple `__new__`, `<doctest ...>`, ...) is recorded only when an
`include` pattern names that file name (`--include '<string>'`), never because the namespace it
was exec'd in belongs to an included module (`--include mypkg` does not record the dataclass
methods made for mypkg's classes). `<frozen NAME>` is the code of the frozen module NAME (`os`,
`runpy`, `importlib._bootstrap`): standard library, included by its module name like the rest.
`exclude` patterns apply to every code object by module and by file name.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import site
import sys
import sysconfig
from types import CodeType
from typing import Callable, Iterable

_FLOWTRACE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_USER_PSEUDO_FILES = ("<stdin>", "<python-input-", "<console>")

# Code objects that are user code whatever their file name: `flowtrace run -c CODE` compiles
# the program itself, under the same "<string>" name that namedtuple/dataclass/exec code gets,
# so it names exactly those code objects here. id -> code (kept alive, so an id is never reused).
_USER_CODES: dict[int, CodeType] = {}
# The file names of the code objects in a registry: looked at first (_marked), since id() is an
# audited event (builtins.id: every audit hook of the process runs -- the program's, and
# flowtrace's, ~2,500 instructions while it was a Python hook, a name test since audit.c) and
# next to no code has a marked file name.
_USER_FILES: set[str] = set()


# Called after code is marked: the C recorder keeps answers by file name and module
# (CodeFilter.first_sight's `settled`), and a mark can change them for the marked code's file name.
_MARK_LISTENERS: list[Callable[[], object]] = []


def on_mark(listener: Callable[[], object]) -> None:
    """Call `listener()` whenever code is marked (mark_user_code, mark_internal_code)."""
    _MARK_LISTENERS.append(listener)


def _register_tree(registry: dict[int, CodeType], files: set[str], code: CodeType) -> None:
    """Put `code` and every code object nested in it (`co_consts`, recursively) in `registry`
    (and their file names in `files`)."""
    todo = [code]
    while todo:
        c = todo.pop()
        if registry.get(id(c)) is c:
            continue
        registry[id(c)] = c
        files.add(c.co_filename)
        todo.extend(k for k in c.co_consts if isinstance(k, CodeType))
    for listener in _MARK_LISTENERS:
        listener()


def _marked(registry: dict[int, CodeType], files: set[str], code: CodeType) -> bool:
    """Is `code` itself (not an equal code object) in `registry`?"""
    return code.co_filename in files and registry.get(id(code)) is code


def mark_user_code(code: CodeType) -> None:
    """Count `code` and every code object nested in it (functions, classes, lambdas, generator
    expressions: `co_consts`, recursively) as user code, whatever its file name. Other code with
    the same pseudo file name (`<string>` from exec, namedtuple, dataclasses) is unaffected."""
    _register_tree(_USER_CODES, _USER_FILES, code)


# A followed child started as `python -c CODE` (flowtrace/follow.py): the interpreter compiles
# CODE itself, so mark_user_code cannot see it; its "<string>" code in __main__ is the program.
_c_program = False


def record_c_program() -> None:
    """This process runs `python -c CODE`: count "<string>" code of `__main__` as user code."""
    global _c_program
    _c_program = True


# Code objects that are flowtrace's own whatever their file name (the console-script launcher);
# never recorded, even when an --include pattern matches. id -> code, kept alive as above.
_INTERNAL_CODES: dict[int, CodeType] = {}
_INTERNAL_FILES: set[str] = set()


def mark_internal_code(code: CodeType) -> None:
    """Never record `code` nor any code object nested in it: it is part of flowtrace."""
    _register_tree(_INTERNAL_CODES, _INTERNAL_FILES, code)


def _library_dirs() -> tuple[str, ...]:
    """Directories whose code is not user code: the stdlib and every site-packages we can see.
    Worked out once per value of sys.path (~2.7 ms, mostly sysconfig; pytest --flowtrace makes
    a recorder, so a filter, for every test)."""
    return _library_dirs_for(tuple(sys.path))


@functools.lru_cache(maxsize=8)
def _library_dirs_for(path: tuple[str, ...]) -> tuple[str, ...]:
    dirs: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            dirs.add(sysconfig.get_paths()[key])
        except (KeyError, OSError):
            pass
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:  # some embedded/virtualenv `site` modules lack it
        pass
    user_site = getattr(site, "USER_SITE", None)
    if user_site:
        dirs.add(user_site)
    for p in path:  # any other site-packages/dist-packages on the path
        if p.rstrip(os.sep).endswith(("site-packages", "dist-packages")):
            dirs.add(p)
    dirs.add(os.path.dirname(os.__file__))  # the stdlib as actually imported
    out = []
    for d in dirs:
        if d:
            out.append(os.path.abspath(d).rstrip(os.sep) + os.sep)
            real = os.path.realpath(d).rstrip(os.sep) + os.sep
            if real != out[-1]:
                out.append(real)
    return tuple(sorted(set(out)))


def _main_spec_name() -> str | None:
    """The module name `__main__` runs under `-m` (its `__spec__.name`, e.g. "json.tool" or
    "pkg.__main__"), None for a script or -c."""
    try:
        name = sys.modules["__main__"].__spec__.name  # type: ignore[union-attr]
    except (KeyError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _is_path_pattern(pattern: str) -> bool:
    return "/" in pattern or os.sep in pattern or pattern.endswith(".py") or pattern.startswith("<")


def _has_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


# A pattern list as two regexes' match methods (None: no such pattern): one for the file name
# (path patterns), one for the module name (module patterns).
_Compiled = tuple[Callable[[str], object] | None, Callable[[str], object] | None]


def _compile_patterns(patterns: list[str]) -> _Compiled:
    """The patterns' rule (the module docstring) for all of `patterns`, as one alternation per
    kind. Matched one by one (generator expressions, fnmatchcase, each pattern's kind tested
    again), `--include '*'` cost ~25,000 instructions a verdict: flask's test_basic asks for 410
    (file name, module) verdicts (callgrind)."""
    paths: list[str] = []
    modules: list[str] = []
    for p in patterns:
        if _is_path_pattern(p):
            paths += [fnmatch.translate(p), fnmatch.translate("*/" + p.lstrip("/"))]
        elif _has_glob(p):
            modules.append(fnmatch.translate(p))
            if p.endswith(".*"):  # `pkg.*` is the package and everything in it
                modules.append(fnmatch.translate(p[:-2]))
        else:  # the module or a submodule of it
            modules.append(r"(?s:%s(?:\..*)?)\Z" % re.escape(p))
    return (re.compile("|".join(paths)).match if paths else None,
            re.compile("|".join(modules)).match if modules else None)


class CodeFilter:
    """Decides, for one code object (plus the module it runs in), whether it is recorded."""

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self.include = [p for p in include if p]
        self.exclude = [p for p in exclude if p]
        self._include_re = _compile_patterns(self.include)
        self._exclude_re = _compile_patterns(self.exclude)
        self._not_user = (_FLOWTRACE_DIR, *_library_dirs())  # (path prefixes: is_user_code)
        # What the rules say from a file name (and module) alone, kept per name: a program's
        # code objects come from a few hundred files, and deciding one anew (abspath, the
        # library prefixes, the patterns) cost ~60,000 instructions -- flask's test_basic asks
        # for 5,000 code objects (callgrind). See _cacheable for what is not kept.
        self._verdicts: dict[tuple[str, str], int] = {}
        self._user_files: dict[str, bool] = {}

    # -- pattern matching ---------------------------------------------------------------------
    @staticmethod
    def _matches_any(compiled: _Compiled, module: str, filename: str) -> bool:
        """Does any pattern compiled into `compiled` (_compile_patterns) match the module or the
        file name?"""
        paths, modules = compiled
        if paths is not None and paths(filename) is not None:
            return True
        if modules is None or not module:
            return False
        if modules(module) is not None:
            return True
        if module == "__main__":  # `-m pkg.mod` runs pkg.mod as __main__: both names match
            spec_name = _main_spec_name()
            return bool(spec_name) and modules(spec_name) is not None
        return False

    # -- default rule -------------------------------------------------------------------------
    def is_user_code(self, filename: str, path: str | None = None) -> bool:
        """The default rule, from the file name alone (`path`: its abspath, when known)."""
        known = self._user_files.get(filename)
        if known is not None:
            return known
        if not filename:
            return False
        # (`filename[:1] == "<"`, not startswith: on 3.12 each str.startswith parses its
        # arguments, ~600 instructions, and a verdict made ~13 such calls)
        if filename[:1] == "<":
            user = filename.startswith(_USER_PSEUDO_FILES)
        else:
            path = _abspath(filename) if path is None else path
            user = not path.startswith(self._not_user)
            if not _isabs(filename):  # (_cacheable)
                return user
        _keep(self._user_files, filename, user)
        return user

    def is_own(self, code: CodeType) -> bool:
        """Is `code` the program's own, i.e. recorded by the default rule alone (not through an
        --include)? A task's root coroutine hangs from the nearest call of such code."""
        return self.is_user_code(code.co_filename) or _marked(_USER_CODES, _USER_FILES, code)

    def wants(self, code: CodeType, module: str | None) -> bool:
        """True if calls of `code` (running in module `module`) are recorded."""
        filename = code.co_filename
        mod = module or ""
        key = (filename, mod)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdict(filename, mod)
            if _cacheable(filename, mod):
                _keep(self._verdicts, key, verdict)
        return _wanted(verdict, code)

    def first_sight(self, code: CodeType, module: str | None) -> tuple[bool, bool, bool]:
        """(wants(), is_own() if wanted, settled) for `code` running in `module`, in one call:
        the C recorder's question. Settled: every code object of `code`'s file name running in
        `module` gets the same two answers until code is next marked (on_mark) -- unless a
        verdict on the name is not kept (_cacheable) or code of that file is marked. The C
        recorder keeps settled answers (codes.c) and asks once per name: wants()'s own cache
        of verdicts would be looked up in vain."""
        filename = code.co_filename
        mod = module or ""
        settled = _cacheable(filename, mod) and filename not in _USER_FILES and filename not in _INTERNAL_FILES
        if not _wanted(self._verdict(filename, mod), code):
            return False, False, settled
        return True, self.is_own(code), settled

    def _verdict(self, filename: str, mod: str) -> int:
        """wants()'s rules from the file name and module alone: _OUT (never recorded), _IN
        (recorded unless marked internal) or _NOT (recorded only if marked user code)."""
        pseudo = filename[:1] == "<"  # (not startswith: see is_user_code)
        if pseudo:
            path = filename
        else:
            path = _abspath(filename)
            if path.startswith(_FLOWTRACE_DIR):
                return _OUT  # never record the tracer (its flusher thread, hooks, decorator)
        if mod == "flowtrace" or mod[:10] == "flowtrace.":
            return _OUT  # flowtrace's own generated code too (its dataclasses' "<string>" methods)
        if self.exclude and self._matches_any(self._exclude_re, mod, path):
            return _OUT
        if self.is_user_code(filename, path) or (_c_program and filename == "<string>" and mod == "__main__"):
            return _IN
        if mod == "__main__" and not pseudo:
            return _IN  # the program the user named (`-m tokenize`, a script in site-packages)
        if not self.include:
            return _NOT
        if pseudo and filename[:8] != "<frozen ":
            # generated code (exec'd strings, dataclass/namedtuple methods): chosen by its file
            # name alone, never by the namespace it was exec'd in (see the module docstring)
            return _IN if self._matches_any(self._include_re, "", path) else _NOT
        return _IN if self._matches_any(self._include_re, mod, path) else _NOT


# CodeFilter._verdict's answers
_OUT, _IN, _NOT = 0, 1, 2


def _wanted(verdict: int, code: CodeType) -> bool:
    """CodeFilter.wants() from the verdict on `code`'s name and the marks of single code objects,
    after the name's verdict as the rules have them: the launcher is never recorded, `-c
    CODE`'s code is user code unless out by name."""
    if verdict == _OUT:
        return False
    if verdict == _NOT and not _marked(_USER_CODES, _USER_FILES, code):
        return False
    return not _marked(_INTERNAL_CODES, _INTERNAL_FILES, code)
_KEPT_MAX = 4096  # names a CodeFilter keeps verdicts for (then it starts again: bounded memory)


def _cacheable(filename: str, mod: str) -> bool:
    """May a verdict on this name be kept? Not for a relative file name (abspath reads the
    working directory, which the program may change), nor for `__main__` (its spec name, which
    patterns match too, and `-c` programs are set while the program starts)."""
    return mod != "__main__" and (filename[:1] == "<" or _isabs(filename))


if os.name == "posix":
    def _isabs(filename: str) -> bool:
        """os.path.isabs for a str on POSIX, without its three calls (a verdict made three)."""
        return filename[:1] == "/"

    def _abspath(filename: str) -> str:
        """os.path.abspath for a str on POSIX, without its isabs when the name is absolute."""
        return os.path.normpath(filename) if filename[:1] == "/" else os.path.abspath(filename)
else:
    _isabs = os.path.isabs
    _abspath = os.path.abspath


def _keep(kept: dict, key: object, value: object) -> None:
    if len(kept) >= _KEPT_MAX:
        kept.clear()
    kept[key] = value
