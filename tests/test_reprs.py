"""Argument/result texts: bounded, safe by default, never raising."""

from __future__ import annotations

import re
import sys
import time

from flowtrace.reprs import (args_text, exception_text, placeholder, split_top, value_text,
                             values_only)
from treeutil import record, shape, unstarted_generators


class Raises:
    def __repr__(self):
        raise ValueError("boom")


class Recurses:
    def __repr__(self):
        return repr(self)


class Slow:
    calls = 0

    def __repr__(self):
        Slow.calls += 1
        time.sleep(0.2)
        return "Slow()"


class Nice:
    def __repr__(self):
        return "Nice(1)"


ADDR = r"0x[0-9a-f]+"


def test_scalars_and_containers_safe():
    assert value_text(3) == "3"
    assert value_text("a'b") == repr("a'b")
    assert value_text([1, (2,), {"k": {3}}]) == "[1, (2,), {'k': {3}}]"
    assert value_text(None) == "None" and value_text(1.5) == "1.5" and value_text(b"x") == "b'x'"
    assert value_text("x" * 100) == repr("x" * 60) + "..."
    assert value_text(list(range(100))) == "[0, 1, 2, 3, 4, 5, ...]"
    assert value_text([[[[[1]]]]]) == "[[[[...]]]]"
    big = 10**100
    assert value_text(big) == f"<int with {big.bit_length()} bits>"
    loop = []
    loop.append(loop)
    assert value_text(loop) == "[[[[...]]]]"


def test_other_objects_safe_mode_do_not_call_repr():
    Slow.calls = 0
    for obj in (Raises(), Recurses(), Slow(), Nice()):
        text = value_text(obj)
        assert re.fullmatch(rf"<test_reprs\.{type(obj).__name__} object at {ADDR}>", text), text
    assert Slow.calls == 0
    assert re.fullmatch(rf"<test_reprs\.Nice object at {ADDR}>", value_text([Nice()])[1:-1])


def test_classes_and_functions_shown_by_name_in_safe_mode():
    """A class reads as repr() shows it (`<class 'module.Class'>`) and a function too
    (`<function qualname at 0x…>`): their names, read without running the program's code --
    a metaclass's __repr__ is not called, nor a proxy's __class__ read."""
    import abc
    import enum

    class Color(enum.Enum):  # EnumType.__repr__ would say <enum 'Color'>
        RED = 1

    class Proxy:
        reads = 0

        @property
        def __class__(self):
            Proxy.reads += 1
            return type

    def outer():
        def inner():
            pass
        return inner

    assert value_text(Nice) == "<class 'test_reprs.Nice'>"
    assert value_text(int) == "<class 'int'>"
    assert value_text(Color) == f"<class 'test_reprs.{Color.__qualname__}'>"
    assert value_text(abc.ABC) == "<class 'abc.ABC'>"
    assert value_text([Nice, (int,)]) == "[<class 'test_reprs.Nice'>, (<class 'int'>,)]"
    inner = outer()
    assert value_text(inner) == f"<function {inner.__qualname__} at {id(inner):#x}>" == repr(inner)
    assert inner.__qualname__.endswith(".outer.<locals>.inner")
    assert value_text(value_text) == repr(value_text)
    assert re.fullmatch(rf"<test_reprs\.{re.escape(Proxy.__qualname__)} object at {ADDR}>", value_text(Proxy()))
    assert Proxy.reads == 0
    nameless = type("Nameless", (), {"__module__": None})
    assert value_text(nameless) == placeholder(nameless)  # no label: its placeholder


class Loud:
    """Every way of being read by name runs code here that counts (and says so)."""
    reads = 0

    def __repr__(self):
        Loud.reads += 1
        return "Loud()"

    def method(self):
        pass


class NamedMeta(type):
    def __repr__(cls):
        Loud.reads += 1
        return "NamedMeta's"


class WithNamedMeta(metaclass=NamedMeta):
    def method(self):
        pass


def test_builtins_bound_methods_and_modules_shown_as_python_shows_them():
    """Safe mode: builtin functions and methods read as repr() shows them (its C code reads
    names and an address), a bound method as repr() would with the object shown by its safe
    text (repr() calls the object's __repr__), a module as importlib's repr from its dicts."""
    import json
    import math
    import os
    import types

    lst = [1]
    loud = Loud()
    pattern = re.compile("a")
    assert value_text(len) == "<built-in function len>" == repr(len)
    assert value_text(math.sqrt) == "<built-in function sqrt>"
    for builtin in (lst.append, pattern.match, dict.fromkeys, bytes.maketrans, sys.stdout.write):
        assert value_text(builtin) == repr(builtin)
    assert value_text(lst.append) == f"<built-in method append of list object at {id(lst):#x}>"
    assert value_text(loud.__sizeof__) == f"<built-in method __sizeof__ of Loud object at {id(loud):#x}>"
    assert value_text(loud.method) == f"<bound method Loud.method of <test_reprs.Loud object at {id(loud):#x}>>"
    assert value_text(Loud.method) == f"<function Loud.method at {id(Loud.method):#x}>"
    assert value_text(WithNamedMeta().method).startswith("<bound method WithNamedMeta.method of <test_reprs.WithNamedMeta object at 0x")
    assert value_text(dict.fromkeys) == f"<built-in method fromkeys of type object at {id(dict):#x}>"
    bound_class = types.MethodType(Loud.method, WithNamedMeta)
    assert value_text(bound_class) == "<bound method Loud.method of <class 'test_reprs.WithNamedMeta'>>"
    assert value_text(types.MethodType(Loud.method, [1, (2,)])) == "<bound method Loud.method of [1, (2,)]>"
    deep = loud
    for _ in range(5):
        deep = types.MethodType(Loud.method, deep)
    assert value_text(deep) == "<bound method Loud.method of " * 4 + "..." + ">" * 4
    not_a_function = types.MethodType(len, loud)
    assert value_text(not_a_function) == placeholder(not_a_function) == f"<method object at {id(not_a_function):#x}>"
    assert value_text([len, loud.method]) == f"[<built-in function len>, {value_text(loud.method)}]"
    assert value_text(os) == repr(os) and value_text(sys) == repr(sys) == "<module 'sys' (built-in)>"
    assert value_text(json) == f"<module 'json' from {json.__file__!r}>" == repr(json)
    assert value_text(types.ModuleType("x")) == "<module 'x'>" == repr(types.ModuleType("x"))
    assert Loud.reads == 0


def test_odd_modules_never_run_the_programs_code():
    """A module's `__getattr__`, a spec or name that is not importlib's / a str, a module
    subclass (its own __repr__ may say anything: the placeholder), a loader: read from dicts,
    shown by safe texts, nothing the program wrote is called."""
    import importlib.machinery
    import types

    def getattr_(name):
        Loud.reads += 1
        raise AttributeError(name)

    odd = types.ModuleType("odd")
    odd.__getattr__ = getattr_
    assert value_text(odd) == "<module 'odd'>"
    odd.__name__ = Loud()
    assert value_text(odd) == "<module '?'>"
    odd.__file__ = "/x/odd\nfile.py"
    assert value_text(odd) == "<module '?' from '/x/odd\\nfile.py'>"
    odd.__spec__ = importlib.machinery.ModuleSpec("odd", Loud(), origin="line\nbreak")
    assert value_text(odd) == "<module 'odd' (line\\nbreak)>"
    odd.__spec__ = importlib.machinery.ModuleSpec("odd", Loud())
    assert re.fullmatch(rf"<module 'odd' \(<test_reprs\.Loud object at {ADDR}>\)>", value_text(odd))

    class Spec(importlib.machinery.ModuleSpec):
        def __getattribute__(self, name):
            Loud.reads += 1
            return "o"

    odd.__spec__ = Spec("odd", None)
    assert value_text(odd) == "<module '?' from '/x/odd\\nfile.py'>"

    class Sub(types.ModuleType):
        def __repr__(self):
            Loud.reads += 1
            return "Sub"

    sub = Sub("sub")
    assert value_text(sub) == placeholder(sub)
    assert value_text(value_text.__globals__["sys"]) == "<module 'sys' (built-in)>"
    assert Loud.reads == 0


def test_generators_and_coroutines_shown_by_name_in_safe_mode():
    """A generator, a coroutine, an async generator read as repr() shows them (its C code
    reads the object's own __qualname__); a name that is a str subclass, their placeholder."""
    class Name(str):
        def __format__(self, spec):
            Loud.reads += 1
            return "formatted"

        __str__ = __format__

    objects = unstarted_generators()
    for obj in objects:
        assert value_text(obj) == repr(obj)
    assert value_text(objects[0]) == f"<generator object unstarted_generators.<locals>.gen at {id(objects[0]):#x}>"
    assert value_text(objects[1]).startswith("<coroutine object unstarted_generators.<locals>.coro at 0x")
    assert value_text(objects[2]).startswith("<async_generator object unstarted_generators.<locals>.agen at 0x")
    for obj in objects:
        obj.__qualname__ = Name("x")
        assert value_text(obj) == placeholder(obj) == f"<{type(obj).__name__} object at {id(obj):#x}>"
    objects[1].close()
    assert Loud.reads == 0


def test_a_function_whose_name_is_a_str_subclass_reads_as_its_placeholder():
    class Name(str):
        def __format__(self, spec):
            Loud.reads += 1
            return "formatted"

    def f():
        pass

    f.__qualname__ = Name("f")
    assert value_text(f) == placeholder(f) == f"<function object at {id(f):#x}>"
    assert value_text(types_method(f)).startswith("<method object at 0x")
    assert Loud.reads == 0


def types_method(func):
    import types
    return types.MethodType(func, 1)


def test_full_mode():
    assert value_text(Nice(), "full") == "Nice(1)"
    assert re.fullmatch(rf"<test_reprs\.Raises object at {ADDR}; repr raised ValueError: boom>",
                        value_text(Raises(), "full"))
    text = value_text(Recurses(), "full")
    assert re.fullmatch(rf"<test_reprs\.Recurses object at {ADDR}; repr raised RecursionError: .*>", text)
    assert value_text({"a": Nice()}, "full") == "{'a': Nice(1)}"


def test_placeholder_builtin_types():
    assert re.fullmatch(rf"<object object at {ADDR}>", placeholder(object()))


def test_exception_text():
    assert exception_text(ValueError("bad")) == "ValueError: bad"
    assert exception_text(KeyError("k")) == "KeyError: 'k'"
    assert exception_text(StopIteration()) == "StopIteration"
    # builtin types whose C __str__ is BaseException's (as the C recorder knows them: by tp_str)
    assert exception_text(AttributeError("'X' object has no attribute 'y'")) == \
        "AttributeError: 'X' object has no attribute 'y'"
    assert exception_text(NameError("name 'z' is not defined")) == "NameError: name 'z' is not defined"
    assert exception_text(UnboundLocalError("cannot access local variable 'v'")) == \
        "UnboundLocalError: cannot access local variable 'v'"

    class Custom(Exception):
        def __str__(self):
            raise RuntimeError("no")

    text = exception_text(Custom(Nice()))
    assert re.fullmatch(rf"test_reprs\.test_exception_text\.<locals>\.Custom: <test_reprs\.Nice object at {ADDR}>", text) \
        or re.fullmatch(rf"Custom: <test_reprs\.Nice object at {ADDR}>", text.split(".<locals>.")[-1])
    assert exception_text(Custom(), "full").endswith("<str() raised RuntimeError>")


def f(a, b=2, *rest, k, **kw):
    return sys._getframe()


def test_args_text_order_and_values_only():
    frame = f(1, 2, 3, k=4, z=5)
    text = args_text(frame, f.__code__)
    assert text == "a=1, b=2, *rest=(3,), k=4, **kw={'z': 5}"
    assert values_only(text) == "1, 2, 3, k=4, z=5"
    assert values_only("n=3, s='a, b=c'") == "3, 'a, b=c'"
    assert split_top("x=[1, 2], y=(3, 4)") == ["x=[1, 2]", "y=(3, 4)"]
    assert split_top("x=[1") is None and values_only("x=[1") == "x=[1"


def takes(obj):
    return obj


def test_recorded_args_safe_and_full(recorder_name):
    Slow.calls = 0
    trace = record(lambda: (takes(Raises()), takes(Slow()), takes(Nice())), recorder_name)
    lines = shape(trace)
    assert [re.sub(ADDR, "0x?", line) for line in lines[1:]] == [
        "  takes(obj=<test_reprs.Raises object at 0x?>) = <test_reprs.Raises object at 0x?>",
        "  takes(obj=<test_reprs.Slow object at 0x?>) = <test_reprs.Slow object at 0x?>",
        "  takes(obj=<test_reprs.Nice object at 0x?>) = <test_reprs.Nice object at 0x?>",
    ]
    assert Slow.calls == 0
    trace = record(lambda: (takes(Raises()), takes(Recurses()), takes(Nice())), recorder_name, args="full")
    lines = [re.sub(ADDR, "0x?", line) for line in shape(trace)[1:]]
    assert lines[0] == ("  takes(obj=<test_reprs.Raises object at 0x?; repr raised ValueError: boom>)"
                        " = <test_reprs.Raises object at 0x?; repr raised ValueError: boom>")
    assert lines[1].startswith("  takes(obj=<test_reprs.Recurses object at 0x?; repr raised RecursionError")
    assert lines[2] == "  takes(obj=Nice(1)) = Nice(1)"
    assert len(lines) == 3  # the __repr__ calls made by the recorder are not recorded


class TracedRepr:
    def __repr__(self):
        return "T" + str(takes(1))


def test_full_mode_repr_calling_traced_code_is_not_recorded(recorder_name):
    trace = record(lambda: takes(TracedRepr()), recorder_name, args="full")
    assert shape(trace) == ["<lambda>() = T1", "  takes(obj=T1) = T1"]


def test_one_line_escapes_exactly_the_line_breaking_characters():
    """one_line escapes each character of _ESCAPES the way repr() of a str does and leaves
    every other character as it is -- printable or not (a lone surrogate, U+200B, NBSP)."""
    from flowtrace.reprs import _ESCAPES, one_line

    assert one_line("plain text") == "plain text"
    assert one_line("a\nb\r\nc\td\x1b[0m\x7f\x85\u2028\u2029") == "a\\nb\\r\\nc\\td\\x1b[0m\\x7f\\x85\\u2028\\u2029"
    others = "\u00a0\u200b\ud800\U0001f600\x80\x84\x86\u2027\u202a ]^\\-"
    for code, escaped in _ESCAPES.items():
        assert one_line(f"{others}{chr(code)}{others}{chr(code)}") == f"{others}{escaped}{others}{escaped}"
    assert one_line(others + "\n") == others + "\\n"
    assert one_line(others) == others  # not printable, nothing to escape


import enum as _enum  # noqa: E402  (the members below are module-level, as most are)


class Color(_enum.Enum):
    RED = 1
    GREEN = "g"
    CRIMSON = 1  # an alias of RED
    SPOT = (3, [4, 5])  # an unhashable value: not in _value2member_map_

    def __repr__(self):  # the program's code: never called in safe mode
        raise AssertionError("called")


class Perm(_enum.IntFlag):
    R = 4
    W = 2


class Planet(_enum.Enum):
    EARTH = (5.97e24, 6.37e6)


def test_enum_members_shown_by_name_and_value_in_safe_mode():
    """An Enum member reads as Enum's repr shows it, `<Color.RED: 1>`, from its class's dicts:
    no __repr__ of the program's runs. An alias names its canonical member; a value the class
    cannot look up (unhashable) is left out; a Flag's combination made on demand is in neither
    dict: its placeholder."""
    import http
    import signal

    assert value_text(Color.RED) == "<Color.RED: 1>"
    assert value_text(Color.CRIMSON) == "<Color.RED: 1>"
    assert value_text(Color.GREEN) == "<Color.GREEN: 'g'>"
    assert value_text(Color.SPOT) == "<Color.SPOT>"
    assert value_text(Perm.R) == "<Perm.R: 4>"
    assert value_text(Planet.EARTH) == "<Planet.EARTH: (5.97e+24, 6370000.0)>"
    assert value_text(http.HTTPStatus.NOT_FOUND) == "<HTTPStatus.NOT_FOUND: 404>"
    assert value_text(signal.SIGTERM) == "<Signals.SIGTERM: 15>"
    assert value_text([Color.RED, {"k": Perm.W}]) == "[<Color.RED: 1>, {'k': <Perm.W: 2>}]"
    assert re.fullmatch(rf"<test_reprs\.Perm object at {ADDR}>", value_text(Perm.R | Perm.W))
    assert re.fullmatch(rf"<test_reprs\.Color object at {ADDR}; repr raised AssertionError: called>",
                        value_text(Color.RED, "full"))  # (full mode calls the program's __repr__)
    assert value_text(Color) == "<class 'test_reprs.Color'>"


def test_recorded_enum_members_safe(recorder_name):
    """Both recorders, every way a value is recorded: an argument, a result, items of a tuple
    and a list (of one class, of several), a dict's value, keyword arguments, a yield."""

    def gen():
        yield Color.GREEN

    def prog():
        takes(Color.RED)
        takes((Color.RED, Color.GREEN))
        takes([Perm.R, Color.RED, 1])
        takes({"c": Color.GREEN})
        takes(Perm.R | Perm.W)
        list(gen())

    lines = [re.sub(ADDR, "0x?", line) for line in shape(record(prog, recorder_name))[1:]]
    assert lines == [
        "  takes(obj=<Color.RED: 1>) = <Color.RED: 1>",
        "  takes(obj=(<Color.RED: 1>, <Color.GREEN: 'g'>)) = (<Color.RED: 1>, <Color.GREEN: 'g'>)",
        "  takes(obj=[<Perm.R: 4>, <Color.RED: 1>, 1]) = [<Perm.R: 4>, <Color.RED: 1>, 1]",
        "  takes(obj={'c': <Color.GREEN: 'g'>}) = {'c': <Color.GREEN: 'g'>}",
        "  takes(obj=<test_reprs.Perm object at 0x?>) = <test_reprs.Perm object at 0x?>",
        "  gen() = None",
    ]
