"""`raise` and `handled` marks where exceptions are re-raised, wrapped, stored and raised again,
cleaned up by `finally` / `with`, or come from code that is not recorded. The recorders do not
monitor RAISE: the `raise` mark of an exception is written at its call's handler or unwind
(recorder/python.py, "Exceptions"); these trees are the ones RAISE-based recording gave. Both
recorders, exact trees."""

from __future__ import annotations

import contextlib
import functools
import json
import re

import pytest

from treeutil import check_balanced, record, shape


def check(i):
    if i % 3 == 0:
        raise ValueError(f"bad {i}")
    return i


def middle(i):
    return check(i) + 1


def same_frame():
    try:
        raise KeyError("k")
    except KeyError:
        pass


def except_as_raise():
    try:
        middle(0)
    except ValueError as e:
        raise e


def bare_reraise():
    try:
        middle(0)
    except ValueError:
        raise


def bare_reraise_own():
    try:
        raise OSError("own")
    except OSError:
        raise


def raise_from():
    try:
        middle(0)
    except ValueError as e:
        raise RuntimeError("wrapped") from e


def with_blocks():
    with contextlib.suppress(ZeroDivisionError):
        1 / 0
    with contextlib.nullcontext():
        try:
            with contextlib.nullcontext():
                middle(0)
        except ValueError:
            pass


def from_unrecorded():
    try:
        json.loads("{bad")
    except ValueError:
        pass
    try:
        {}["x"]
    except KeyError:
        pass


def stored():
    try:
        middle(0)
    except ValueError as e:
        return e


def raise_stored():
    e = stored()
    try:
        raise e
    except ValueError:
        pass


def helper_raises(e):
    raise e


def raised_again_by_callee():
    try:
        middle(0)
    except ValueError as e:
        err = e
    try:
        helper_raises(err)
    except ValueError:
        pass


def finally_calls():
    try:
        middle(0)
    finally:
        same_frame()


def raise_in_except():
    try:
        middle(0)
    except ValueError:
        try:
            raise KeyError("in except")
        except KeyError:
            pass


def through_unrecorded():
    try:
        functools.partial(middle, 0)()
    except ValueError:
        pass


def groups():
    try:
        try:
            raise ExceptionGroup("eg", [ValueError(1), KeyError(2)])
        except* ValueError:
            pass
    except* KeyError:
        pass


class Countdown:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return self

    def __next__(self):
        if self.n == 0:
            raise StopIteration
        self.n -= 1
        return self.n


def after_a_loop():
    # The loop's end (Countdown.__next__'s StopIteration, travelling into this call) is
    # caught in C, where no event is seen, and dies there; the KeyError made next is a new
    # exception raised here, most likely at the dead one's address (found on jinja2's and
    # click's test suites: the C recorder wrote the old exception's text for the new one)
    for _ in Countdown(1):
        pass
    try:
        {}["k"]
    except KeyError:
        pass


def after_a_loop_unwinds():
    for _ in Countdown(1):
        pass
    return {}["missing"]


def caught(fn):
    def run():
        try:
            fn()
        except Exception:
            pass
    return run


CASES = {
    except_as_raise: [
        "run() = None [handled:ValueError]",
        "  except_as_raise() ! ValueError: bad 0 [handled:ValueError,raise:ValueError]",
        "    middle(i=0) ! ValueError: bad 0",
        "      check(i=0) ! ValueError: bad 0 [raise:ValueError]",
    ],
    bare_reraise: [
        "run() = None [handled:ValueError]",
        "  bare_reraise() ! ValueError: bad 0",
        "    middle(i=0) ! ValueError: bad 0",
        "      check(i=0) ! ValueError: bad 0 [raise:ValueError]",
    ],
    bare_reraise_own: [
        "run() = None [handled:OSError]",
        "  bare_reraise_own() ! OSError: own [raise:OSError]",
    ],
    raise_from: [
        "run() = None [handled:RuntimeError]",
        "  raise_from() ! RuntimeError: wrapped [handled:ValueError,raise:RuntimeError]",
        "    middle(i=0) ! ValueError: bad 0",
        "      check(i=0) ! ValueError: bad 0 [raise:ValueError]",
    ],
    with_blocks: [
        "run() = None",
        "  with_blocks() = None [raise:ZeroDivisionError,handled:ZeroDivisionError,handled:ValueError]",
        "    middle(i=0) ! ValueError: bad 0",
        "      check(i=0) ! ValueError: bad 0 [raise:ValueError]",
    ],
    from_unrecorded: [
        "run() = None",
        "  from_unrecorded() = None [raise:json.decoder.JSONDecodeError,handled:json.decoder.JSONDecodeError,"
        "raise:KeyError,handled:KeyError]",
    ],
    raise_stored: [
        "run() = None",
        "  raise_stored() = None [raise:ValueError,handled:ValueError]",
        "    stored() = <ValueError object at ?> [handled:ValueError]",
        "      middle(i=0) ! ValueError: bad 0",
        "        check(i=0) ! ValueError: bad 0 [raise:ValueError]",
    ],
    raised_again_by_callee: [
        "run() = None",
        "  raised_again_by_callee() = None [handled:ValueError,handled:ValueError]",
        "    middle(i=0) ! ValueError: bad 0",
        "      check(i=0) ! ValueError: bad 0 [raise:ValueError]",
        "    helper_raises(e=<ValueError object at ?>) ! ValueError: bad 0 [raise:ValueError]",
    ],
    finally_calls: [
        "run() = None [handled:ValueError]",
        "  finally_calls() ! ValueError: bad 0",
        "    middle(i=0) ! ValueError: bad 0",
        "      check(i=0) ! ValueError: bad 0 [raise:ValueError]",
        "    same_frame() = None [raise:KeyError,handled:KeyError]",
    ],
    raise_in_except: [
        "run() = None",
        "  raise_in_except() = None [handled:ValueError,raise:KeyError,handled:KeyError]",
        "    middle(i=0) ! ValueError: bad 0",
        "      check(i=0) ! ValueError: bad 0 [raise:ValueError]",
    ],
    through_unrecorded: [
        "run() = None",
        "  through_unrecorded() = None [handled:ValueError]",
        "    middle(i=0) ! ValueError: bad 0",
        "      check(i=0) ! ValueError: bad 0 [raise:ValueError]",
    ],
    after_a_loop: [
        "run() = None",
        "  after_a_loop() = None [raise:KeyError,handled:KeyError]",
        "    Countdown.__init__(self=<test_exception_marks.Countdown object at ?>, n=1) = None",
        "    Countdown.__iter__(self=<test_exception_marks.Countdown object at ?>) = <test_exception_marks.Countdown object at ?>",
        "    Countdown.__next__(self=<test_exception_marks.Countdown object at ?>) = 0",
        "    Countdown.__next__(self=<test_exception_marks.Countdown object at ?>) ! StopIteration [raise:StopIteration]",
    ],
    after_a_loop_unwinds: [
        "run() = None [handled:KeyError]",
        "  after_a_loop_unwinds() ! KeyError: 'missing' [raise:KeyError]",
        "    Countdown.__init__(self=<test_exception_marks.Countdown object at ?>, n=1) = None",
        "    Countdown.__iter__(self=<test_exception_marks.Countdown object at ?>) = <test_exception_marks.Countdown object at ?>",
        "    Countdown.__next__(self=<test_exception_marks.Countdown object at ?>) = 0",
        "    Countdown.__next__(self=<test_exception_marks.Countdown object at ?>) ! StopIteration [raise:StopIteration]",
    ],
    groups: [
        "run() = None",
        "  groups() = None [raise:ExceptionGroup,handled:ExceptionGroup,handled:ExceptionGroup]",
    ],
}


@pytest.mark.parametrize("fn", list(CASES), ids=lambda fn: fn.__name__)
def test_exception_marks(recorder_name: str, fn) -> None:
    trace = record(caught(fn), recorder_name, exclude=["json", "functools", "contextlib"])
    check_balanced(trace)
    assert [re.sub(r"0x[0-9a-f]+", "?", line) for line in shape(trace, marks=True)] == CASES[fn]


class Custom(ValueError):
    pass


def raise_it(e):
    raise e


def texts():
    for e in (ValueError(3), ValueError(-2**63), ValueError(2**63), ValueError(), IndexError(0), KeyError(4),
              ValueError(True), ValueError(1, 2), Custom(5), ValueError("msg")):
        try:
            raise_it(e)
        except Exception:
            pass


def test_exception_texts(recorder_name: str) -> None:
    """The exception texts: builtin types raised with one int or nothing are texts the C
    recorder makes at drain (capture.c's exc_entry), the others through str(); the same."""
    trace = record(texts, recorder_name)
    check_balanced(trace)
    assert [re.sub(r"0x[0-9a-f]+", "?", line) for line in shape(trace, marks=True)][1:] == [
        f"  raise_it(e=<{name} object at ?>) ! {text} [raise:{name}]" for name, text in [
            ("ValueError", "ValueError: 3"),
            ("ValueError", "ValueError: -9223372036854775808"),
            ("ValueError", "ValueError: 9223372036854775808"),
            ("ValueError", "ValueError"),
            ("IndexError", "IndexError: 0"),
            ("KeyError", "KeyError: 4"),
            ("ValueError", "ValueError: True"),
            ("ValueError", "ValueError: (1, 2)"),
            ("test_exception_marks.Custom", "test_exception_marks.Custom: 5"),
            ("ValueError", "ValueError: msg"),
        ]
    ]



class Spoken(ValueError):
    def __str__(self) -> str:   # (not called: a user class's text is made safely, from its args)
        return f"spoken {self.args[0]}"


def check_spoken(i):
    raise Spoken(i)


def middle_spoken(i):
    return check_spoken(i) + 1


def spoken_thrice():
    for i in range(3):
        try:
            middle_spoken(i)
        except Spoken:
            pass


def test_user_class_raised_again_two_frames_down(recorder_name: str) -> None:
    """An exception of a user class raised again and again two calls under its handler (its
    type remembered plain after the first: the C recorder's PY_UNWIND fast path), its text
    made by the Python text hook (run inside that callback), and each object likely at the
    freed one's address: every raise's text is made afresh, the same trees."""
    trace = record(spoken_thrice, recorder_name)
    check_balanced(trace)
    name = "test_exception_marks.Spoken"
    assert shape(trace, marks=True) == [f"spoken_thrice() = None [{','.join([f'handled:{name}'] * 3)}]"] + [
        line for i in range(3) for line in (
            f"  middle_spoken(i={i}) ! {name}: {i}",
            f"    check_spoken(i={i}) ! {name}: {i} [raise:{name}]",
        )
    ]
