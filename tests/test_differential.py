"""Differential test: the same programs recorded by the Python (reference) and the C recorder
give the same trees -- every call's function, parent, thread, task, arguments, result,
exception, end and marks (with the calls they name) -- ignoring times and addresses."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import io
import re
import sys
import threading
from typing import Any, Callable, Iterator

import pytest

from flowtrace.ftr.reader import Trace
from flowtrace.recorder import available_recorders

from treeutil import check_balanced, record

pytestmark = pytest.mark.skipif("c" not in available_recorders(), reason="the C recorder is not built")

_ADDR = re.compile(r"0x[0-9a-f]+|Task-\d+")


def _norm(text: str | None) -> str | None:
    return None if text is None else _ADDR.sub("?", text)


def canonical(trace: Trace) -> list[tuple]:
    """The trace as comparable rows, in call-id order (ids are preorder within a thread)."""
    check_balanced(trace)
    index = {c.id: i for i, c in enumerate(trace.calls)}
    threads = {}
    for t in trace.threads.values():
        threads[t.id] = t.name
    tasks = {}
    for tk in trace.tasks.values():
        tasks[tk.id] = (index.get(tk.creator) if tk.creator else None, index.get(tk.root) if tk.root else None)
    rows = []
    for c in trace.calls:
        marks = tuple(
            (m.kind, _norm(m.text), index.get(m.other) if m.other else None, m.count) for m in c.marks
        )
        rows.append((
            c.function.qualname, c.function.kind, index.get(c.parent) if c.parent else None,
            threads.get(c.thread), tasks.get(c.task) if c.task else None, c.partial,
            _norm(c.args), c.end, _norm(c.result), _norm(c.exception), marks,
        ))
    return rows


# ---- programs -----------------------------------------------------------------------------

class Point:
    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y

    def __repr__(self) -> str:  # never called in safe mode
        return f"Point({self.x}, {self.y})"

    def norm2(self) -> float:
        return self.x * self.x + self.y * self.y


class Bad:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def values(*args: Any, key: Any = None, **kw: Any) -> Any:
    return args


def signature(a, b=2, *rest, k, m=3, **kw):
    return (a, b)


def prog_values() -> None:
    fib(6)
    long_text = "é" * 70 + "\n'\""
    values(1, -2**63, 2**63, 10**70, 1.5, float("inf"), float("nan"), -0.0, 1e300, 2j, True, None,
           ..., NotImplemented, "x", long_text, b"\x00\xff" * 40, bytearray(b"ab"),
           [1, [2, [3, [4, [5]]]]], (1,), (), {"a": {1, 2}}, frozenset({3}), set(), list(range(20)),
           Point(1, 2), Bad(), key=[Point(0, 0)], extra={"z": Bad()})
    signature(1, 2, 3, 4, k=5, z=6)
    signature("a", k=None)
    Point(3.0, 4.0).norm2()
    (lambda q: q)(7)


def pair(a: Any, b: Any) -> Any:
    return b


def flag(v: Any) -> Any:
    return v


def prog_scalars() -> None:
    """Arguments and results the C recorder keys straight from the values (ints around the
    one- and two-digit bounds, floats, singletons, instances), each twice (a hit), and the
    singleton results it keeps per batch."""
    p = Point(1, 2)
    for v in (2**30 - 1, 2**30, -(2**30), 2**59, -(2**60 - 1), 2**60, -(2**60), 2**62, 0.5, -0.0, p, None):
        for _ in range(2):
            pair(p, v)
            pair(v, p)
    for v in (None, True, False, None, False, True, 0, 1, 2**31, -(2**31)):
        flag(v)


def check(i: int) -> int:
    if i % 3 == 0:
        raise ValueError(f"bad {i}")
    return i


def middle(i: int) -> int:
    return check(i) + 1


def cleanup(i: int) -> int:
    try:
        return middle(i)
    finally:
        pass


def lookup(obj: object) -> object:
    return obj.missing  # type: ignore[attr-defined]


def unbound() -> object:
    return not_defined_anywhere  # type: ignore[name-defined]  # noqa: F821


def prog_exceptions() -> None:
    for i in range(7):
        try:
            cleanup(i)
        except ValueError:
            pass
    for fails in (lambda: lookup(object()), unbound):  # types whose __str__ is BaseException's
        try:
            fails()
        except (AttributeError, NameError):
            pass
    try:
        {}["missing"]
    except KeyError:
        pass
    with contextlib.suppress(ZeroDivisionError):
        middle(1) / 0


def gen(n: int):
    for i in range(n):
        try:
            yield i
        except KeyError:
            yield -1


def delegate():
    yield from gen(2)
    return "done"


@contextlib.contextmanager
def managed(tag: str):
    yield tag


def prog_generators() -> None:
    list(gen(3))
    list(delegate())
    g = gen(5)
    next(g)
    g.throw(KeyError("k"))
    g.close()
    with managed("t") as t:
        fib(2)
    abandoned = gen(3)
    next(abandoned)
    sum(x for x in range(3))


class Node:
    def __init__(self, left: "Node | None", value: int, right: "Node | None") -> None:
        self.left, self.value, self.right = left, value, right

    def __iter__(self):
        if self.left:
            yield from self.left
        yield self.value
        if self.right:
            yield from self.right


def grow(lo: int, hi: int) -> "Node | None":
    if lo >= hi:
        return None
    mid = (lo + hi) // 2
    return Node(grow(lo, mid), mid, grow(mid + 1, hi))


def counted(n: int):
    for i in range(n):
        yield i
    return [n, "end"]  # (a result whose text is not at hand: the general path)


def at_once() -> Iterator[int]:
    return
    yield 0  # (a generator that ends without ever suspending)


def after_at_once() -> Iterator[int]:
    yield from at_once()  # (ends in its first run, under a generator that goes on)
    yield 1


def prog_generator_map() -> None:
    """The C recorder's generator map and its fast paths (first yields, ends): a tree walked
    by `yield from` chains, then 100 generators suspended at once (the map grows while some
    run) and ended in an order unlike their starts (entries shifted back on removal), and
    generators that end in their first run (no map record: gen_end's exit row alone), alone and
    under one that goes on."""
    sum(grow(0, 40))
    many = [counted(2) for _ in range(100)]
    for g in many:
        next(g)
    for g in many[::3] + many[1::3] + many[2::3]:
        list(g)
    for _ in range(3):
        list(at_once())
        list(after_at_once())


async def leaf(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2


async def branch(n: int) -> int:
    return await leaf(n) + await leaf(n + 1)


async def failing() -> None:
    await asyncio.sleep(0)
    raise LookupError("nope")


async def amain() -> None:
    await asyncio.gather(branch(1), branch(2))
    task = asyncio.get_running_loop().create_task(leaf(5), name="named")
    await task
    t2 = asyncio.ensure_future(asyncio.sleep(10))
    await asyncio.sleep(0)
    t2.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await t2
    with contextlib.suppress(LookupError):
        await failing()


def prog_async() -> None:
    asyncio.run(amain())


async def stepper(n: int) -> int:
    total = 0
    for i in range(n):
        total += await leaf(i) if i % 2 else i
    return total


async def many_tasks() -> None:
    # more tasks stepping in turn than any one-entry cache holds, and tasks that end while
    # new ones are made (a new task may take a dead one's address)
    await asyncio.gather(*(stepper(4) for _ in range(6)))
    for i in range(40):
        await asyncio.get_running_loop().create_task(branch(i))


async def numbers(n: int):
    for i in range(n):
        await asyncio.sleep(0)
        yield await leaf(i)


async def shared_agen() -> None:
    # one async generator stepped by two tasks in turn: what runs inside it belongs to the
    # task stepping it now, not to the one that started it
    agen = numbers(6)

    async def take(k: int) -> list:
        return [await agen.__anext__() for _ in range(k)]

    loop = asyncio.get_running_loop()
    await loop.create_task(take(2))
    await loop.create_task(take(2))
    await take(2)


async def eager_tasks() -> None:
    loop = asyncio.get_running_loop()
    if hasattr(asyncio, "eager_task_factory"):
        loop.set_task_factory(asyncio.eager_task_factory)
    await asyncio.gather(branch(1), stepper(3))
    loop.set_task_factory(None)


def drive(coro) -> None:
    # a coroutine stepped by hand, with no event loop running: no task
    try:
        while True:
            coro.send(None)
    except StopIteration:
        pass


async def no_loop(n: int) -> int:
    return await plain(n) + await plain(n + 1)


async def plain(n: int) -> int:
    return n


def in_thread() -> None:
    asyncio.run(stepper(3))


def prog_tasks() -> None:
    asyncio.run(many_tasks())
    drive(no_loop(1))  # after a loop ended
    asyncio.run(shared_agen())
    asyncio.run(eager_tasks())
    t = threading.Thread(target=in_thread, name="loop2")
    t.start()
    t.join()
    drive(no_loop(2))


def worker(n: int) -> int:
    return fib(n)


def prog_threads() -> None:
    ts = [threading.Thread(target=worker, args=(i,), name=f"w{i}") for i in range(4)]
    for t in ts:
        t.start()
        t.join()  # one at a time: the same order with both recorders


class Shape:
    @classmethod
    def make(cls, *parts: Any) -> "Shape":
        return cls()


class Square(Shape):
    pass


def prog_named() -> None:
    """Classes, functions, builtin functions and methods, bound methods and modules as
    arguments, results and items: shown by their names (each
    twice: the C recorder's second capture of an argument list may take another path)."""
    import abc
    import enum
    import json
    import math

    class Color(enum.Enum):
        RED = 1

    for _ in range(2):
        Shape.make(int, Square)
        Square.make(Color, abc.ABC, worker)
        pair([Shape, int], (Square, Point(1, 2)))
        pair({"k": Color}, (fib, lambda: 0))
        flag(Shape)
        flag(worker)
        # builtin functions and methods, bound methods, modules (the C recorder holds a
        # module's builtin function to the drain; the others' texts are made now)
        items = [1]
        point = Point(1, 2)
        pair(len, items.append)
        pair(Shape.make, point.norm2)
        pair([len, point.norm2, math], {"k": (items.append, sys)})
        flag(math.sqrt)
        flag(point.norm2)
        flag(json)
        running = _suspended()
        pair(running, [running, _suspended])


class Request:
    pass


class Response:
    pass


SHARED = Request()


def pairs_of(n: int) -> Iterator[object]:
    for i in range(n):
        yield ("key", i)  # a tuple of scalars: a value record written at the yield (capture.c packed_value_rec)
        yield ["it's", i]  # a str packing refuses (a quote): its text the general way
        yield (i, (2 ** 70, i))  # an int past 64 bits: the general way
        yield [Request(), i]  # an instance in it: a packed slot holding its type
        # the yield's fast path (callbacks.c yield_row_out, capture.c value_id_now): an object
        # met again (the value before, the hot memo), a new one, an int and a float past the
        # small-int tables, a str, bools, and what it leaves to the general path (a dict, a
        # function, a class, a big int)
        yield SHARED
        yield Request()
        yield SHARED
        yield 2 ** 40 + i
        yield i + 0.5
        yield "name"
        yield i % 3 == 0
        yield {"k": i}
        yield made
        yield Response
        yield 2 ** 70 + i


def first_yields(i: int) -> Iterator[object]:
    # a first yield's value: its own fast path (callbacks.c first_yield), or for a dict the general
    # path, the map's record given back to the pool first
    yield (Request(), SHARED, 2 ** 40 + i, "name", (i, "x"), {"k": i})[i % 6]


def listed(*args: object) -> list:
    return list(args)  # a list returned: packed straight (capture.c value_packed) or not, as the items say


def made(i: int) -> object:
    return Request() if i % 2 else Response()  # one new object a call: its record (capture.c rec_object)


def wrapped(self: object, *args: object, **kwargs: object) -> tuple:
    return args  # a tuple of whatever was passed: packed or not, as the items say


def prog_results() -> None:
    """Results and arguments that miss the hot memo, as a real program's do (new objects, fresh
    tuples): values written as records at event time (packed tuples and lists, single objects) and
    argument lists captured slot by slot (an instance, a str, None, bools, ints of one and two
    digits, a float, a class, a function, a tuple, a dict) -- each of capture_value's ways."""
    for _ in range(3):
        list(pairs_of(40))
        for i in range(60):
            next(first_yields(i))
            listed(i, "x", 0.5)
            listed(Request(), i)
            listed("it's", {"k": i})
            made(i)
            wrapped(Request(), "name", None, True, False, i, 2 ** 40 + i, 0.5, Request, made, (i, "x"), {"k": i})
            wrapped(Response(), ("a", (1, 2.5)), [None, True], b"raw", k=i)
            wrapped(i, *[Request()] * 2)


class Renamed:
    pass


def keywords(**kwargs: object) -> int:
    return len(kwargs)


def given(d: dict, t: tuple) -> int:
    return len(d) + len(t)


def _name(i: int) -> str:
    return "".join(["Renamed", str(i)])  # a new str each time (a literal would be held by the code)


def prog_dicts() -> None:
    """Dicts and `**kwargs` passed as arguments, their texts made at call time (render.c
    render_now; kept by the dict's tag, capture.c dict_text_now): empty, str keys, int keys,
    nested, instances of one and two classes, past MAX_ITEMS, past MAX_TEXT (a text of ~13 KB
    before its cut, past builtin_text_now's spare buffer), non-ASCII, a dict changed after the
    call, passed again unchanged -- and classes renamed between calls (a new __qualname__ str each
    time: the old one freed; a new __module__; a class made again, maybe at a freed one's address),
    which the call-time label cache (render.c labels_now) and the kept texts of dicts holding
    objects (dict_obj_texts) must follow."""
    import gc

    big = {f"k{i}": tuple(tuple("x" * 60 for _ in range(6)) for _ in range(6)) for i in range(6)}
    for _ in range(2):
        r, p = Renamed(), Point(1, 2)
        both = {"obj": r, "pt": p}  # passed again unchanged below: its kept text by its tag
        for i in range(4):
            Renamed.__qualname__ = _name(100 + i)  # renamed twice between calls: the str the last
            Renamed.__qualname__ = _name(i)  # calls' texts named is freed, its address free for this one
            keywords()
            keywords(a=1, b="x", c=None, d=1.5, e=True)
            keywords(obj=r, pt=p, n=i)
            keywords(**both)
            given(both, (r, Renamed))
            given({1: r, 2: Point}, (p, r, i))
            given({"é": "ü", "k": [r, p]}, ())
            given({"d": {"e": {"f": {"g": 1}}}, "l": [1, (2, 3)]}, ())
            given({j: r for j in range(8)}, ())
            given(big, (big,))
            given({"ascii": p, "after": "big"}, ())
        changing = {"n": 0, "obj": r}
        for i in range(3):
            given(changing, ())
            changing["n"] = i + 1  # the text stays what it was at each call
            changing[f"x{i}"] = p
        Renamed.__module__ = "elsewhere"
        keywords(obj=r, pt=p)
        given(both, ())
        Renamed.__module__ = __name__
        for i in range(3):
            made_here = type("Made", (), {"__module__": f"mod{i}"})
            given({"m": made_here(), "p": p}, (made_here(), p))
            del made_here
            gc.collect()


class Mode(enum.Enum):
    FAST = 1
    SLOW = "slow"
    BOTH = (1, "slow")
    QUICK = 1  # an alias of FAST

    def describe(self) -> str:
        return self.name


class Bits(enum.IntFlag):
    A = 1
    B = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def _enum_items() -> Iterator[Mode]:
    yield Mode.FAST
    yield Mode.SLOW


def prog_enums() -> None:
    """Enum members every way a value is recorded: arguments (alone, beside other objects, as
    keywords), results, packed tuples and lists (of one class, of several, beside a class or a
    function), dict values, yields, a bound method of a member, a Flag's made-up combination, and
    the same members again and again (the memos' hits)."""
    p = Point(1.0, 2.0)
    for i in range(40):
        m = (Mode.FAST, Mode.SLOW, Mode.BOTH, Mode.QUICK)[i % 4]
        flag(m)
        pair(m, p)
        pair(Level.LOW, i)
        keywords(mode=m, level=Level.HIGH, pt=p)
        flag((m, Mode.SLOW))
        flag([m, Level.HIGH, p])
        flag((m, Point))
        flag([Bits.A, flag])
        flag({"m": m, "n": [Level.LOW, Bits.B]})
        flag(Bits.A | Bits.B)
        flag(m.describe)
        m.describe()
        list(_enum_items())


PROGRAMS: dict[str, Callable[[], None]] = {
    "enums": prog_enums,
    "dicts": prog_dicts,
    "results": prog_results,
    "named": prog_named,
    "values": prog_values,
    "scalars": prog_scalars,
    "exceptions": prog_exceptions,
    "generators": prog_generators,
    "generator_map": prog_generator_map,
    "async": prog_async,
    "tasks": prog_tasks,
    "threads": prog_threads,
}


@pytest.mark.parametrize("mode", ["safe", "off", "full"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_same_tree(name: str, mode: str) -> None:
    prog = PROGRAMS[name]
    # no timed flush: a fold of a quiet run of switches ends at a batch's end, so a flush that
    # falls inside the run (a slow machine) splits it in one recorder and not in the other
    py = canonical(record(prog, "python", args=mode, flush_interval=3600))
    c = canonical(record(prog, "c", args=mode, flush_interval=3600))
    assert len(py) > 3
    assert c == py


def _suspended() -> Iterator[int]:
    yield 1
    yield 2


class _Holder:
    def __init__(self, gen: Iterator[int]) -> None:
        self.gen = gen
        self.me = self  # a reference cycle: only the garbage collector frees it (and closes gen)


def _hold_one() -> None:
    next(_Holder(_suspended()).gen)


def gc_closed_generators() -> None:
    """200 suspended generators, each closed (GeneratorExit raised in it) when the AUTOMATIC
    garbage collector frees its cycle; the last ones by a collection the program asks for."""
    threshold = gc.get_threshold()
    gc.set_threshold(5)
    try:
        for _ in range(200):
            _hold_one()
    finally:
        gc.set_threshold(*threshold)
    gc.collect()


@pytest.mark.parametrize("recorder", ["python", "c"])
def test_generators_closed_by_the_automatic_collector_end(recorder: str) -> None:
    trace = record(gc_closed_generators, recorder, flush_interval=3600)
    ends = [(c.end, _norm(c.exception)) for c in trace.calls if c.function.qualname == "_suspended"]
    assert ends == [("raise", "GeneratorExit")] * 200


EXC_TYPES = (ValueError, IndexError, KeyError, TypeError, RuntimeError, ZeroDivisionError, EOFError,
             AssertionError, LookupError, ArithmeticError)  # (more than the C recorder's tables: EXC_TYPES)


def raising(i: int, kind: type) -> int:
    if i % 3 == 0:
        raise kind(i) if i % 2 else kind(-i) if i % 4 else kind()
    return i


def one_pass() -> None:
    for i in range(60):
        try:
            middle(i)
        except ValueError:
            pass
        for kind in EXC_TYPES:
            try:
                raising(i, kind)
            except EXC_TYPES:
                pass


def twice_across_a_flush(program: Callable[[], None], recorder: str, mode: str) -> list[tuple]:
    """`program` run twice in one session of `recorder` (argument capture `mode`), a flush
    between the runs: the trace as canonical rows."""
    from flowtrace.ftr.reader import load
    from flowtrace.recorder.base import RecorderConfig
    from flowtrace.session import Session

    buf = io.BytesIO()
    session = Session(buf, RecorderConfig(args=mode), recorder=recorder)
    session.start()
    try:
        program()
        session.flush()
        program()
    finally:
        session.stop()
    return canonical(load(buf.getvalue()))


@pytest.mark.parametrize("mode", ["safe", "off"])
def test_same_tree_across_batches(mode: str) -> None:
    """Small ints and exceptions of one small int (or none) seen again in a later batch: the
    C recorder writes their texts' final ids at event time (capture.c small_hit, exc_entry),
    the same texts as the reference's."""
    py, c = twice_across_a_flush(one_pass, "python", mode), twice_across_a_flush(one_pass, "c", mode)
    assert len(py) > 1000
    assert c == py
    texts = {e for row in c for e in (row[9], *(m[1] for m in row[10]))}
    assert {"ValueError: 3", "KeyError: -6", "EOFError: 15", "LookupError", "ArithmeticError: 57", "ValueError: bad 3"} <= texts


def raised_where_it_ends(e: BaseException) -> None:
    raise e


def seen_texts_pass() -> None:
    for e in (ValueError(), ValueError(-1), ValueError(0), ValueError(-1), ValueError(), ValueError(2 ** 62)):
        try:
            raised_where_it_ends(e)
        except ValueError:
            pass


@pytest.mark.parametrize("mode", ["safe", "off"])
def test_exception_text_seen_again_is_its_own(mode: str) -> None:
    """A raise whose call it ends takes its text's id from the type's small-int table when that
    text was seen in this session (callbacks.c exc_seen_id: this batch's, or a final id after a
    flush): ValueError(-1) is never ValueError()'s entry (index 0), nor a large int a small one's."""
    rows = twice_across_a_flush(seen_texts_pass, "c", mode)
    raised = [row[9] for row in rows if row[0].endswith("raised_where_it_ends")]
    assert raised == ["ValueError", "ValueError: -1", "ValueError: 0", "ValueError: -1", "ValueError",
                      f"ValueError: {2 ** 62}"] * 2
    assert rows == twice_across_a_flush(seen_texts_pass, "python", mode)


def rarely_raising(i: int) -> int:
    if i % 9 == 4:
        raise (ValueError(i) if i % 2 else KeyError(f"k{i}"))
    return i


def rare_raises(n: int) -> None:
    for i in range(n):
        try:
            middle_of_rare(i)
        except (ValueError, KeyError):
            pass


def middle_of_rare(i: int) -> int:
    return rarely_raising(i) + rarely_raising(i + 1) * 0


@pytest.mark.parametrize("recorder", ["python", "c"])
def test_rare_raises_keep_their_texts_without_arguments(recorder: str) -> None:
    """Without argument capture an EXIT chunk's `val` holds the raises' exception texts alone;
    where raises are few the C drain writes it from those rows only (encode.c raise_rows): every
    raise keeps its text, in every batch, first and later (final ids), the same tree as the
    reference's."""
    from flowtrace.ftr.reader import load
    from flowtrace.recorder.base import RecorderConfig
    from flowtrace.session import Session

    def run(rec: str) -> list[tuple]:
        buf = io.BytesIO()
        session = Session(buf, RecorderConfig(args="off"), recorder=rec)
        session.start()
        try:
            rare_raises(300)
            session.flush()
            rare_raises(300)
            session.flush()
            rare_raises(7)   # (a batch with fewer than 8 exits: the tail of the `how` scan)
        finally:
            session.stop()
        return canonical(load(buf.getvalue()))

    rows = run(recorder)
    raised = [(row[0].rsplit(".", 1)[-1], row[9]) for row in rows if row[7] == "raise"]
    expected = []   # (in call order: middle_of_rare, then the rarely_raising that raised)
    for n in (300, 300, 7):
        for i in range(n):
            j = i if i % 9 == 4 else i + 1 if (i + 1) % 9 == 4 else None
            if j is not None:
                text = f"ValueError: {j}" if j % 2 else f"KeyError: 'k{j}'"
                expected += [("middle_of_rare", text), ("rarely_raising", text)]
    assert raised == expected
    if recorder == "c":
        assert rows == run("python")


def test_excluded_code_and_include() -> None:
    def prog() -> None:
        import json

        json.dumps({"a": [1, 2]})
        sorted([3, 1, 2], key=lambda v: -v)

    for include in ([], ["json"]):
        py = canonical(record(prog, "python", include=include))
        c = canonical(record(prog, "c", include=include))
        assert c == py
    assert any(row[0].startswith("JSONEncoder") for row in canonical(record(prog, "c", include=["json"])))
