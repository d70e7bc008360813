"""Bounded, exception-safe texts for arguments, results and exceptions.

Modes:
- "safe" (default): builtin scalars (`None`, `bool`, `int`, `float`, `complex`, `str`, `bytes`,
  `bytearray`, `Ellipsis`) and builtin containers of them (`list`, `tuple`, `dict`, `set`,
  `frozenset`, exact types only) are shown bounded; a class as `<class 'module.Class'>`, a
  function as `<function Outer.name at 0x…>` (what repr() shows: names read, no code run), an
  Enum member as `<Color.RED: 1>` (its name and value read from its class's dicts); any other
  object as `<module.Class object at 0x…>` **without calling its `__repr__`** (user reprs may be
  slow, take locks, run queries or have side effects).
- "full": the same, but other objects' `__repr__` is called, with the same bounds; an exception
  (including RecursionError) gives `<module.Class object at 0x…; repr raised Type: message>`.

Every text is one line (`one_line`): line breaks and control characters that a user `__repr__`
or an exception message contains are escaped as `\\n`, `\\t`, `\\x1b`, like repr() of a str.
- "off": nothing is captured.

Bounds (reprlib-style): strings/bytes cut to MAX_STRING characters, containers to MAX_ITEMS
items and MAX_DEPTH levels, any single text to MAX_TEXT characters; huge ints are summarised.
Monitoring events do not fire while a callback runs, so a `__repr__` that calls traced code
neither recurses into the recorder nor appears in the trace.

The argument text is `n=3, xs=[1, 2]`: parameter names from the code object in call order —
positional, `*args` (as `*args=(…)`), keyword-only, `**kwargs` (as `**kw={…}`).
`values_only()` turns it into the seed's `3, [1, 2]` for the `@trace` decorator's output.
"""

from __future__ import annotations

import _io
import re
import signal
import sys
from types import (AsyncGeneratorType, BuiltinFunctionType, CodeType, CoroutineType, FrameType, FunctionType,
                   GeneratorType, MethodType, ModuleType, TracebackType)
from typing import Any

try:  # guard.c: an exception raised again at the program's next eval-breaker check; a user
    # __repr__ run with the program's signal handlers not held off (sighold.c)
    from ._crecorder import deliver_later as _deliver_later, unheld as _unheld
except ImportError:  # (no C extension: the program's exception propagates out of the hook)
    _deliver_later = None

    def _unheld(func: Any, arg: Any) -> Any:
        return func(arg)

_LOCALS_DICT_KEPT = sys.version_info < (3, 13)  # frame.f_locals leaves a dict on the frame (args_text)

MAX_STRING = 60
MAX_ITEMS = 6
MAX_DEPTH = 3
MAX_TEXT = 240
MAX_INT_DIGITS = 60

MODES = ("safe", "full", "off")

# builtin_function_or_method's subtype (C's PyCMethod_Type, "builtin_method") for the methods
# that take their defining class (METH_METHOD: a compiled pattern's `match`, a buffered file's
# `read`...): the same repr; neither type can be subclassed in Python
_BUILTIN_METHOD = type(_io._BufferedIOBase().read)
# importlib's (importlib.machinery's, which would be an import more at start-up)
_MODULE_SPEC = type(sys.__spec__)
_NAMESPACE_LOADER = sys.modules["_frozen_importlib_external"].NamespaceLoader
# What repr() calls a generator, a coroutine, an async generator before its __qualname__
_NAMED_OBJECTS = {GeneratorType: "generator object", CoroutineType: "coroutine object",
                  AsyncGeneratorType: "async_generator object"}
_SCALARS = frozenset({type(None), bool, float, complex, type(Ellipsis), type(NotImplemented)})
_CO_OPTIMIZED = 0x01  # a function's code: its locals live in the frame, not in a dict
_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08


def type_label(cls: type) -> str | None:
    """`module.Class` (`Class` for builtins) as a placeholder names the type; None when its
    `__module__` or `__qualname__` is not a str (or cannot be read)."""
    try:
        mod = cls.__module__
        name = cls.__qualname__
        if not isinstance(mod, str) or not isinstance(name, str):
            return None
        return name if mod == "builtins" else f"{mod}.{name}"
    except Exception:
        return None


def placeholder(obj: Any, note: str = "") -> str:
    """`<module.Class object at 0x…>` from the type alone (never calls the object's methods)."""
    return f"<{type_label(type(obj)) or 'object'} object at {id(obj):#x}{note}>"


def class_text(cls: type) -> str:
    """`<class 'module.Class'>` (what `type.__repr__` shows) for a class, by the label its
    instances' placeholders have: a class's names are read, its metaclass's `__repr__` is not
    called (an Enum's `<enum 'Color'>` is the program's code). A class whose names cannot be
    read gets its placeholder (`<type object at 0x…>`)."""
    label = type_label(cls)
    return f"<class '{label}'>" if label is not None else placeholder(cls)


_CLASS_DICT, _CLASS_NAME = type.__dict__["__dict__"], type.__dict__["__name__"]


def enum_text(obj: Any, depth: int = 0) -> str | None:
    """`<Color.RED: 1>` for a member of an Enum class (what Enum's own repr shows), from the
    class's dicts only: its name is the key `_member_map_` holds it under, its value the key
    `_value2member_map_` holds it under (shown by its safe text), without the value when it is
    not there (unhashable). None for any other object, and for a member neither dict names (a
    Flag's combination made on demand): its placeholder then. No code of the program runs: the
    member's own attributes and `__repr__` are not read. (render.c's text_enum is its twin.)"""
    t = type(obj)
    meta = type(t)
    if meta is type:  # (nearly every class: no lookup more)
        return None
    enum = sys.modules.get("enum")
    enum_type = getattr(enum, "EnumType", None) if enum is not None else None
    if enum_type is None or not issubclass(meta, enum_type):
        return None
    attrs = _CLASS_DICT.__get__(t)  # (type's own descriptors: not looked up on the metaclass)
    members, values = attrs.get("_member_map_"), attrs.get("_value2member_map_")
    name = next((k for k, m in members.items() if m is obj), None) if type(members) is dict else None
    class_name = _CLASS_NAME.__get__(t)
    if type(name) is not str or type(class_name) is not str:
        return None
    head = f"<{class_name}.{name}"
    for value, m in values.items() if type(values) is dict else ():
        if m is obj:
            return f"{head}: {_text(value, depth + 1, False)}>"
    return head + ">"


def builtin_text(func: Any) -> str:
    """`<built-in function len>`, or `<built-in method append of list object at 0x…>` for one
    bound to an object that is not a module: repr() of a builtin function or method, whose C
    code (meth_repr) reads the C names and address only -- no Python code runs."""
    return repr(func)


def method_text(method: MethodType, depth: int = 0) -> str:
    """`<bound method C.f of <C object at 0x…>>`: what repr() shows, with the object shown by
    its safe text (repr() would call its `__repr__`), `...` past MAX_DEPTH levels. The
    placeholder when the bound callable is not a plain function or its name not a plain str
    (reading or formatting them could run the program's code)."""
    func = method.__func__  # (the method type's own member: not looked up on the function)
    name = func.__qualname__ if type(func) is FunctionType else None
    if type(name) is not str:
        return placeholder(method)
    bound = "..." if depth >= MAX_DEPTH else _text(method.__self__, depth + 1, False)
    return f"<bound method {name} of {bound}>"


def _dict_str(d: dict, key: str) -> str | None:
    value = d.get(key)
    return value if type(value) is str else None


def module_text(module: ModuleType, depth: int = 0) -> str:
    """What repr() shows for a module -- `<module 'json' from '/…/json/__init__.py'>`, `<module
    'sys' (built-in)>`, `<module 'os' (frozen)>`, `<module 'x' (<its loader>)>`, `<module 'x'>`
    -- from its own dict and its spec's: importlib's _module_repr reads them by getattr, which
    would run a module's `__getattr__` or a spec subclass's code. A spec not exactly importlib's
    is skipped as missing, a name or path not a plain str too (a name reads '?'), the loader is
    shown by its safe text and a namespace package without its path list (computing that list
    runs the import system's finders). (render.c's text_module is its twin.)"""
    attrs = module.__dict__  # (the module type's member: the module's dict itself)
    spec = attrs.get("__spec__")
    if type(spec) is _MODULE_SPEC:
        spec_attrs = spec.__dict__
        name, origin = _dict_str(spec_attrs, "name"), _dict_str(spec_attrs, "origin")
        located = origin is not None and spec_attrs.get("_set_fileattr") is True  # spec.has_location
        loader = spec_attrs.get("loader") if origin is None else None
    else:
        name, origin = _dict_str(attrs, "__name__"), _dict_str(attrs, "__file__")
        located = origin is not None
        loader = attrs.get("__loader__") if origin is None else None
    head = f"<module {'?' if name is None else name!r}"
    if located:
        return f"{head} from {origin!r}>"
    if origin is not None:
        return f"{head} ({one_line(origin)})>"
    if loader is None:
        return head + ">"
    if type(loader) is _NAMESPACE_LOADER:
        return head + " (namespace)>"
    return f"{head} ({'...' if depth >= MAX_DEPTH else _text(loader, depth + 1, False)})>"


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Characters that would break a text over lines or move the cursor (C0 controls, DEL, and what
# str.splitlines() also splits at), written as Python escapes the way repr() of a str does.
_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(32), 0x7F, 0x85)}
_ESCAPES.update({9: "\\t", 10: "\\n", 13: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})
# Those characters found by a regular expression, not str.translate(_ESCAPES): translate looked
# every character of the text up in the dict, a KeyError raised and cleared for each one it
# does not hold (~200 ns a character: 37 us for the 168 characters of flask's "Working outside
# of request context." message, raised 143 times in its test_basic, in either mode).
_BREAKS = re.compile("[" + "".join(re.escape(chr(i)) for i in sorted(_ESCAPES)) + "]")


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[ord(match[0])]


def one_line(text: str) -> str:
    """`text` with line breaks and control characters escaped (`\\n`, `\\t`, `\\x1b`, ...): every
    captured text is one line, so a multi-line `__repr__` (a DataFrame) or exception message
    cannot break a printed tree or a row of the explorer. Printable text is returned as is."""
    return text if text.isprintable() else _BREAKS.sub(_escape, text)


def _int(v: int) -> str:
    if -(10**MAX_INT_DIGITS) < v < 10**MAX_INT_DIGITS:
        return repr(v)  # int subclasses with an own __repr__ are not exact ints: never here
    return f"<int with {v.bit_length()} bits>"  # repr of a huge int is slow (or refused)


def _text(obj: Any, depth: int, full: bool) -> str:
    t = type(obj)
    if t is int:
        return _int(obj)
    if t is str:
        if len(obj) > MAX_STRING:
            return repr(obj[:MAX_STRING]) + "..."
        return repr(obj)
    if t is bytes or t is bytearray:
        if len(obj) > MAX_STRING:
            return repr(obj[:MAX_STRING]) + "..."
        return repr(obj)
    if t in _SCALARS:
        return repr(obj)
    if t is list or t is tuple or t is set or t is frozenset:
        if not obj:
            return {list: "[]", tuple: "()", set: "set()", frozenset: "frozenset()"}[t]
        if t is list:
            left, right = "[", "]"
        elif t is tuple:
            left, right = "(", ",)" if len(obj) == 1 else ")"
        elif t is set:
            left, right = "{", "}"
        else:
            left, right = "frozenset({", "})"
        if depth >= MAX_DEPTH:
            return left + "..." + right
        parts = []
        for i, item in enumerate(obj):
            if i >= MAX_ITEMS:
                parts.append("...")
                break
            parts.append(_text(item, depth + 1, full))
        return left + ", ".join(parts) + right
    if t is dict:
        if not obj:
            return "{}"
        if depth >= MAX_DEPTH:
            return "{...}"
        parts = []
        for i, (k, v) in enumerate(obj.items()):
            if i >= MAX_ITEMS:
                parts.append("...")
                break
            parts.append(f"{_text(k, depth + 1, full)}: {_text(v, depth + 1, full)}")
        return "{" + ", ".join(parts) + "}"
    if not full:
        if t is FunctionType or t in _NAMED_OBJECTS:  # (its __qualname__ is the type's own:
            name = obj.__qualname__  # a str, or a subclass of str, whose formatting could run code)
            if type(name) is not str:
                return placeholder(obj)
            return f"<{_NAMED_OBJECTS.get(t, 'function')} {name} at {id(obj):#x}>"
        if t is BuiltinFunctionType or t is _BUILTIN_METHOD:
            return builtin_text(obj)
        if t is MethodType:
            return method_text(obj, depth)
        if t is ModuleType:
            return module_text(obj, depth)
        # (issubclass of the type, not isinstance: that would read a proxy's __class__)
        if issubclass(t, type):
            return class_text(obj)
        return enum_text(obj, depth) or placeholder(obj)
    try:
        text = _unheld(repr, obj)  # (the program's code: a Ctrl-C, a timeout's alarm interrupt it)
        if type(text) is not str:
            raise TypeError(f"__repr__ returned {type(text).__name__}")
    except BaseException as exc:  # includes RecursionError
        if (not isinstance(exc, Exception) or _handler_frames(exc.__traceback__)) and not _the_programs(exc):
            raise
        return placeholder(obj, f"; repr raised {exception_text(exc, 'safe')}")
    return _cut(one_line(text), MAX_STRING * 2)


def _the_programs(exc: BaseException) -> bool:
    """A user `__repr__` the tracer called raised `exc`, which is the program's: a signal
    handler's that ran inside the `__repr__` (Ctrl-C's KeyboardInterrupt, a handler's SystemExit,
    a timeout's TimeoutError), or the `__repr__`'s own that is not an Exception. Untraced, the
    signal's exception would have landed at the program's next eval-breaker check: it is raised
    there (guard.c's deliver_later) and the text says the repr raised it. Its traceback keeps a
    Python signal handler's frames, which Python shows too, not the tracer's or the `__repr__`'s.
    False without the C extension (then it propagates)."""
    if _deliver_later is None:
        return False
    _deliver_later(exc.with_traceback(_handler_frames(exc.__traceback__)))
    return True


def _handler_frames(tb: TracebackType | None) -> TracebackType | None:
    """The part of traceback `tb` from the first frame of a Python signal handler on, or None."""
    handlers = None
    while tb is not None:
        if handlers is None:
            handlers = {getattr(signal.getsignal(s), "__code__", None) for s in signal.valid_signals()}
        if tb.tb_frame.f_code in handlers:
            return tb
        tb = tb.tb_next
    return None


def value_text(obj: Any, mode: str = "safe") -> str:
    """The bounded text of one value in `mode` ("safe" or "full"). Never raises (Exception)."""
    try:
        return _cut(_text(obj, 0, mode == "full"))
    except Exception as exc:  # e.g. a dict mutated by another thread while we iterate it
        return placeholder(obj, f"; unreadable: {type(exc).__name__}")


def param_names(code: CodeType) -> tuple[tuple[str, ...], int, int, int]:
    """(names, number of positional, index of *args or -1, index of **kwargs or -1).

    Parameters whose name starts with "." are left out: the compiler makes them (the `.0`
    iterator a generator expression or, before 3.12, a comprehension receives); no user wrote
    them and their value is an anonymous iterator. They can only be positional."""
    flags = code.co_flags
    npos = code.co_argcount
    nkw = code.co_kwonlyargcount
    n = npos + nkw + bool(flags & _CO_VARARGS) + bool(flags & _CO_VARKEYWORDS)
    names = code.co_varnames[:n]
    hidden = sum(1 for nm in names[:npos] if nm.startswith("."))
    if hidden:
        names = tuple(nm for nm in names[:npos] if not nm.startswith(".")) + names[npos:]
        npos -= hidden
        n -= hidden
    star = npos + nkw if flags & _CO_VARARGS else -1
    dstar = n - 1 if flags & _CO_VARKEYWORDS else -1
    return names, npos, star, dstar


def args_text(frame: FrameType, code: CodeType, mode: str = "safe") -> str:
    """`n=3, *rest=(4,), key=5, **kw={…}` for the frame that just started running `code`."""
    try:
        names, npos, star, dstar = param_names(code)
        if not names:
            return ""
        loc = frame.f_locals
        try:
            parts = [f"{nm}={value_text(loc[nm], mode)}" if nm in loc else f"{nm}=?" for nm in names[:npos]]
            if star >= 0:
                nm = names[star]
                parts.append(f"*{nm}={value_text(loc.get(nm, ()), mode)}")
            for nm in names[npos:star if star >= 0 else (dstar if dstar >= 0 else len(names))]:
                parts.append(f"{nm}={value_text(loc[nm], mode)}" if nm in loc else f"{nm}=?")
            if dstar >= 0:
                nm = names[dstar]
                parts.append(f"**{nm}={value_text(loc.get(nm, {}), mode)}")
        finally:
            # Python 3.12 keeps the dict f_locals made on the function's frame: it would hold
            # the arguments (an object del'd in the call would live on) and be passed to
            # __import__ as the importer's locals, where Python passes None. Emptied, it holds
            # nothing (locals() fills it again when the program asks). 3.13's f_locals is a
            # proxy (PEP 667) that keeps nothing: clearing it would delete the variables.
            if _LOCALS_DICT_KEPT and code.co_flags & _CO_OPTIMIZED and type(loc) is dict:
                loc.clear()
        return _cut(", ".join(parts), MAX_TEXT * 2)
    except Exception as exc:
        return f"<arguments unreadable: {type(exc).__name__}>"


_BUILTIN_STR = {BaseException.__str__}
for _cls in (KeyError, UnicodeError, UnicodeDecodeError, UnicodeEncodeError, UnicodeTranslateError,
             OSError, SyntaxError, ImportError, StopIteration, SystemExit):
    _BUILTIN_STR.add(_cls.__str__)
del _cls
# Builtin types whose __str__ is BaseException's C function under a wrapper of their own (they
# set tp_str to it, so `AttributeError.__str__ != BaseException.__str__`): the C recorder, which
# compares the C functions, trusts them already.
_SAME_AS_BASE_STR = frozenset({AttributeError.__str__, NameError.__str__, UnboundLocalError.__str__})


def _safe_args(args: tuple) -> bool:
    return all(type(a) in (str, int, float, bool, type(None), bytes) for a in args)


def exception_text(exc: BaseException, mode: str = "safe") -> str:
    """`Type: message` (just `Type` without a message). In safe mode a user `__str__` is not
    called: the message is then built from the exception's args, each shown as a safe value."""
    try:
        cls = type(exc)
        name = cls.__qualname__
        mod = cls.__module__
        if mod not in ("builtins", "__main__") and isinstance(mod, str):
            name = f"{mod}.{name}"
        if mode == "full" or ((cls.__str__ in _BUILTIN_STR or cls.__str__ in _SAME_AS_BASE_STR)
                              and _safe_args(exc.args)):
            try:
                msg = str(exc)
            except Exception as inner:
                msg = f"<str() raised {type(inner).__name__}>"
        else:
            args = exc.args
            if len(args) == 1:
                msg = value_text(args[0], "safe")
            else:
                msg = value_text(args, "safe") if args else ""
        msg = _cut(one_line(msg))
        return f"{name}: {msg}" if msg else name
    except Exception:
        return "<exception>"


# ---- the seed's values-only rendering ---------------------------------------------------------

_OPEN = "([{<"
_CLOSE = ")]}>"


def split_top(text: str) -> list[str] | None:
    """Split an argument text at its top-level `, ` separators (quotes and brackets respected).
    None when the text does not parse (e.g. an odd user `__repr__` in full mode)."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
        elif c == "," and depth == 0 and text.startswith(", ", i):
            parts.append(text[start:i])
            start = i + 2
            i += 2
            continue
        i += 1
    if depth or quote:
        return None
    parts.append(text[start:])
    return parts


def values_only(text: str | None) -> str:
    """`n=3, xs=[1, 2]` -> `3, [1, 2]`; `a=1, *rest=(2, 3)` -> `1, 2, 3`; keyword-only and
    `**kwargs` entries keep their names. Unparseable text is returned unchanged."""
    if not text:
        return ""
    parts = split_top(text)
    if parts is None:
        return text
    out = []
    seen_star = False
    for p in parts:
        if p.startswith("**"):
            name, sep, value = p[2:].partition("=")
            inner = split_top(value[1:-1]) if value.startswith("{") and value.endswith("}") else None
            if inner is None:
                out.append(p)
                continue
            for item in inner:
                if not item:
                    continue
                key, colon, val = item.partition(": ")
                if colon and len(key) >= 2 and key[0] in "'\"" and key[-1] == key[0]:
                    out.append(f"{key[1:-1]}={val}")
                else:
                    out.append(item)
            continue
        if p.startswith("*"):
            seen_star = True
            name, sep, value = p[1:].partition("=")
            if value.startswith("(") and value.endswith(")"):
                inner_text = value[1:-1].rstrip(",")
                if inner_text:
                    out.append(inner_text)
                continue
            out.append(p)
            continue
        name, sep, value = p.partition("=")
        if seen_star or not sep or not name.isidentifier():
            out.append(p)  # keyword-only arguments keep their names
        else:
            out.append(value)
    return ", ".join(out)
