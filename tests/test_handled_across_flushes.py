"""A `handled` mark that a re-raise takes back (a bare `raise`, a cleanup handler) is taken
back whether or not a flush falls between the catch and the re-raise: the recorders hold a
call's `handled` mark back from the drain while it is the call's latest mark and the call is
still running (recorder/python.py, "Exceptions"). Each program is recorded with flushes forced
at the marked points (the session API's flush, on the program's thread or from another thread;
no timed flush: flush_elsewhere.py) and without them: the trees are the same, exact. Both
recorders."""

from __future__ import annotations

import re
from typing import Any, Callable

import pytest

from flowtrace.ftr.reader import load
from flush_elsewhere import FLUSH as _flush, recording
from treeutil import check_balanced, shape


def helper() -> int:
    _flush[0]()
    return 1


def fails() -> None:
    raise KeyError("k")


def bare_reraise() -> None:
    try:
        fails()
    except KeyError:
        helper()  # the flush falls between the except and the raise
        raise


def bare_reraise_named(*args: Any) -> None:
    # toolz's curry.__call__: `except TypeError as exc:`, a call, a bare `raise` (the `as`
    # clause's cleanup handler catches and re-raises once more)
    try:
        fails()
    except KeyError as exc:
        if helper() > len(args) + len(str(exc)):
            return
        raise


def bare_reraise_flush_in_handler() -> None:
    try:
        fails()
    except KeyError:
        _flush[0]()  # in the handler itself, no recorded call between
        raise


def two_flushes_then_reraise() -> None:
    try:
        fails()
    except KeyError:
        helper()
        helper()  # held over two drains
        raise


def reraise_as() -> None:
    try:
        fails()
    except KeyError as e:
        helper()
        raise e  # not a re-raise: a new raise of the same exception, caught here again


def finally_runs_a_flush() -> None:
    try:
        fails()
    finally:
        helper()


def caught_then_more() -> None:
    try:
        fails()
    except KeyError:
        helper()
    try:
        fails()
    except KeyError:
        pass  # the first handled mark was held over a flush: it comes before this one


def caught_in_a_generator():
    try:
        fails()
    except KeyError:
        helper()
    yield 1
    _flush[0]()
    yield 2


def generator_caller() -> None:
    list(caught_in_a_generator())


def raise_between() -> None:
    # another mark of the call (the inner raise and catch) between the catch and the re-raise:
    # the outer `handled` mark is not the call's latest mark any more, and stays (the rule
    # that keeps the held marks to one a running call: docs/FORMAT.md, "Exceptions")
    try:
        fails()
    except KeyError:
        helper()
        try:
            raise ValueError("inner")
        except ValueError:
            pass
        _flush[0]()
        raise


def caught(fn: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except Exception:
            pass
    return run


CASES: dict[Callable[[], Any], list[str]] = {
    bare_reraise: [
        "run() = None [handled:KeyError]",
        "  bare_reraise() ! KeyError: 'k'",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
        "    helper() = 1",
    ],
    bare_reraise_named: [
        "run() = None [handled:KeyError]",
        "  bare_reraise_named(*args=()) ! KeyError: 'k'",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
        "    helper() = 1",
    ],
    bare_reraise_flush_in_handler: [
        "run() = None [handled:KeyError]",
        "  bare_reraise_flush_in_handler() ! KeyError: 'k'",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
    ],
    two_flushes_then_reraise: [
        "run() = None [handled:KeyError]",
        "  two_flushes_then_reraise() ! KeyError: 'k'",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
        "    helper() = 1",
        "    helper() = 1",
    ],
    reraise_as: [
        "run() = None [handled:KeyError]",
        "  reraise_as() ! KeyError: 'k' [handled:KeyError,raise:KeyError]",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
        "    helper() = 1",
    ],
    finally_runs_a_flush: [
        "run() = None [handled:KeyError]",
        "  finally_runs_a_flush() ! KeyError: 'k'",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
        "    helper() = 1",
    ],
    caught_then_more: [
        "run() = None",
        "  caught_then_more() = None [handled:KeyError,handled:KeyError]",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
        "    helper() = 1",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
    ],
    generator_caller: [
        "run() = None",
        "  generator_caller() = None",
        "    caught_in_a_generator() = None [handled:KeyError,suspend,resume<generator_caller,suspend,"
        "resume<generator_caller]",
        "      fails() ! KeyError: 'k' [raise:KeyError]",
        "      helper() = 1",
    ],
    raise_between: [
        "run() = None [handled:KeyError]",
        "  raise_between() ! KeyError: 'k' [handled:KeyError,raise:ValueError,handled:ValueError]",
        "    fails() ! KeyError: 'k' [raise:KeyError]",
        "    helper() = 1",
    ],
}


def record_with(fn: Callable[[], Any], recorder: str, forced: bool | str) -> list[str]:
    with recording(recorder, forced) as buf:
        fn()
    trace = load(buf.getvalue())
    check_balanced(trace)
    return [re.sub(r"0x[0-9a-f]+", "?", line) for line in shape(trace, marks=True)]


@pytest.mark.parametrize("forced", [True, "elsewhere", False], ids=["flushes", "flushes-elsewhere", "no-flush"])
@pytest.mark.parametrize("fn", list(CASES), ids=lambda fn: fn.__name__)
def test_handled_marks_do_not_depend_on_flushes(recorder_name: str, fn: Callable[[], Any], forced: bool | str
                                                ) -> None:
    assert record_with(caught(fn), recorder_name, forced) == CASES[fn]


def test_a_held_mark_is_in_the_file_before_the_call_ends(recorder_name: str) -> None:
    """A caught exception's `handled` mark is held back only while it may still be taken back:
    the flush after the call ended writes it (a reader of the file so far sees it)."""
    with recording(recorder_name, forced=True) as buf:
        caught_then_more()
        _flush[0]()
        so_far = load(buf.getvalue())
        marks = [m.kind for c in so_far.calls if c.qualname == "caught_then_more" for m in c.marks]
    assert marks == ["handled", "handled"]


def own_caught_held() -> None:
    try:
        raise KeyError("own")
    except KeyError:
        helper()
        helper()


def test_a_held_mark_keeps_its_time_and_text(recorder_name: str) -> None:
    """A mark held over two drains keeps its time (the `raise` mark's, written at the same
    event) and its text (a string of the batch it was made in)."""
    with recording(recorder_name, forced=True) as buf:
        own_caught_held()
    call, = [c for c in load(buf.getvalue()).calls if c.qualname == "own_caught_held"]
    assert [(m.kind, m.text) for m in call.marks] == [("raise", "KeyError: 'own'"), ("handled", "KeyError: 'own'")]
    assert call.marks[0].t_ns == call.marks[1].t_ns
