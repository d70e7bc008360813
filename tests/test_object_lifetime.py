"""Recording leaves the program's heap as it would be: no object of the program lives longer,
none of ours shows among its collector's objects.

Recording never keeps a program's class alive. The C recorder's batch holds a reference to
every class passed or returned and to the type of every instance captured, until its drain
makes their texts; so a session drains before any collection that could free a class
(collect.c, Session._flush_before_collection). Before, a class made and dropped lived until the
next drain: `weakref.ref(cls)()` after gc.collect() was not None, and the base's
__subclasses__() still listed it (two of attrs' own tests failed under `flowtrace run --include
'*'`)."""

from __future__ import annotations

import gc
import weakref

import pytest

import flowtrace.session
from flowtrace.recorder import available_recorders
from treeutil import record, shape

RECORDERS = ["python", "c"] if "c" in available_recorders() else ["python"]


class Base:
    pass


def take(x, y=None):
    return None


def give(x):
    return x


REFS: list[weakref.ref] = []  # (make's weak reference to its class: not in its result's text)


def make(how: str) -> None:
    class Made(Base):
        pass

    if how == "class":
        take(Made)
    elif how == "instance":
        take(Made())
    elif how == "result":
        give(Made)
    elif how == "tuple":
        take((Made(), 1.5))
    elif how == "with a container":
        take(Made(), ("a", 2))
    REFS.append(weakref.ref(Made))


EXPECTED = {
    "class": "take(x=<class 'test_object_lifetime.make.<locals>.Made'>, y=None) = None",
    "instance": "take(x=<test_object_lifetime.make.<locals>.Made object at 0x>, y=None) = None",
    "result": "give(x=<class 'test_object_lifetime.make.<locals>.Made'>) = <class 'test_object_lifetime.make.<locals>.Made'>",
    "tuple": "take(x=(<test_object_lifetime.make.<locals>.Made object at 0x>, 1.5), y=None) = None",
    "with a container": "take(x=<test_object_lifetime.make.<locals>.Made object at 0x>, y=('a', 2)) = None",
}


def _without_addresses(lines: list[str]) -> list[str]:
    import re

    return [re.sub(r" at 0x[0-9a-f]+>", " at 0x>", line) for line in lines]


@pytest.mark.usefixtures("collector_quiet")
@pytest.mark.parametrize("generation", [0, 2])
@pytest.mark.parametrize("how", list(EXPECTED))
@pytest.mark.parametrize("args", ["safe", "full"])
@pytest.mark.parametrize("recorder", RECORDERS)
def test_a_dropped_class_dies_at_the_collection_that_frees_it(recorder: str, args: str, how: str,
                                                              generation: int) -> None:
    """A class made, passed (or its instance) and dropped is freed by the next collection of its
    generation, as without recording -- and its texts are recorded as ever."""
    seen = []

    def prog() -> None:
        REFS.clear()
        make(how)
        gc.collect(generation)
        seen.append(REFS.pop()() is None)
        seen.append([c.__name__ for c in Base.__subclasses__()])

    trace = record(prog, recorder, args=args, include=["test_object_lifetime"], flush_interval=3600)
    assert seen == [True, []]
    assert _without_addresses(shape(trace)) == [
        "prog() = None",
        f"  make(how={how!r}) = None",
        "    Made() = None",
        f"    {EXPECTED[how]}",
    ]


@pytest.mark.usefixtures("collector_quiet")
@pytest.mark.skipif("c" not in RECORDERS, reason="the C recorder is not built")
def test_only_a_collection_that_could_free_a_class_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Collections of young generations holding no class made since (the program's classes are
    old) do not flush; one that holds a new class the batch holds does, once -- unless that
    class is its module's attribute (sys.modules reaches it: no collection frees it); a full
    collection flushes when the batch holds a class that is not."""
    calls = []
    real = flowtrace.session._flush_before_collection
    monkeypatch.setattr(flowtrace.session, "_flush_before_collection", lambda: (calls.append(1), real()))

    def prog() -> None:
        take(Base())
        for _ in range(5):
            gc.collect(0)
        gc.collect(1)
        calls.append("old")
        made = type("MadeAtModuleLevel", (), {"__module__": __name__})
        globals()["MadeAtModuleLevel"] = made
        take(made())
        gc.collect(0)
        calls.append("young, its module's")
        make("instance")
        gc.collect(0)
        calls.append("young")
        assert REFS.pop()() is None
        gc.collect(2)  # (the batch holds no class since that flush)
        calls.append("full, none held")
        take(Base())
        gc.collect(2)
        calls.append("full, its module's")

        class Local:
            pass

        take(Local())
        gc.collect(2)
        calls.append("full")

    try:
        record(prog, "c", include=["test_object_lifetime"], flush_interval=3600)
    finally:
        globals().pop("MadeAtModuleLevel", None)
    assert calls == ["old", "young, its module's", 1, "young", "full, none held", "full, its module's", 1, "full"]


@pytest.mark.usefixtures("collector_quiet")
@pytest.mark.parametrize("recorder", RECORDERS)
def test_an_unbound_builtin_function_dies_when_dropped(recorder: str) -> None:
    """A builtin function made at run time, bound to no module (_testcapi.create_cfunction; CPython's
    test_weakref.test_cfunction), is freed when the program drops it: the C recorder makes its
    text at call time instead of holding it until the drain as it does a module's (`len`)."""
    _testcapi = pytest.importorskip("_testcapi")
    seen = []

    def prog() -> None:
        made = _testcapi.create_cfunction()
        take(made)
        take(len)
        ref = weakref.ref(made)
        del made
        seen.append(ref() is None)

    trace = record(prog, recorder, include=["test_object_lifetime"], flush_interval=3600)
    assert seen == [True]
    assert shape(trace) == [
        "prog() = None",
        "  take(x=<built-in function create_cfunction>, y=None) = None",
        "  take(x=<built-in function len>, y=None) = None",
    ]


class Compared:
    def __eq__(self, other):
        return False


@pytest.mark.usefixtures("collector_quiet")
@pytest.mark.skipif("c" not in RECORDERS, reason="the C recorder is not built")
@pytest.mark.parametrize("args", ["safe", "full", "off"])
def test_a_first_call_adds_no_object_the_collector_tracks(args: str) -> None:
    """The first sight of a function keeps what the C recorder needs (its parameter names) out
    of the collector's view: CPython's test_descr.test_slots counts gc.get_objects() around ten
    `g == g` and found one more object under --include '*' (the tuple of names). (The Python
    recorder reads code.co_varnames, a tuple CPython makes at its first reading and keeps in the
    code object: Python code cannot untrack it; the collector does at its next pass.)"""
    recorder = "c"
    counts = []

    def prog() -> None:
        g = Compared()
        before = len(gc.get_objects())
        for _ in range(10):
            g == g
        counts.append(len(gc.get_objects()) - before)

    record(prog, recorder, args=args, include=["test_object_lifetime"], flush_interval=3600)
    assert counts == [0]


def _count_drains(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from flowtrace.recorder.c import CRecorder

    drains: list[int] = []
    real = CRecorder.drain

    def drain(self):  # type: ignore[no-untyped-def]
        drains.append(1)
        return real(self)

    monkeypatch.setattr(CRecorder, "drain", drain)
    return drains


@pytest.mark.usefixtures("collector_quiet")
@pytest.mark.skipif("c" not in RECORDERS, reason="the C recorder is not built")
@pytest.mark.parametrize("generation", [0, 1, 2])
def test_a_class_is_released_in_place_with_its_text_of_then(monkeypatch: pytest.MonkeyPatch, generation: int) -> None:
    """A collection that could free a class the batch holds does not drain it: the entries that
    reference the class are made into their texts then (collect.c, release_classes), so a class
    renamed after that collection keeps its old name in the texts recorded before it, and gets
    its new one in those after; the class dropped dies at that collection."""
    drains = _count_drains(monkeypatch)
    seen = []

    def prog() -> None:
        class Kept(Base):
            pass

        REFS.clear()
        take(Kept(), (Kept(), 2))
        for i in range(600):  # (entries in several of the set's blocks: collect.c BLOCK_SHIFT)
            give(i + 0.5)
        give(Kept)
        make("instance")
        before = len(drains)
        gc.collect(generation)
        seen.append(len(drains) - before)
        seen.append(REFS.pop()() is None)
        Kept.__qualname__ = "Renamed"
        take(Kept())
        give(Kept)

    trace = record(prog, "c", include=["test_object_lifetime"], flush_interval=3600)
    assert seen == [0, True]
    lines = _without_addresses(shape(trace))
    assert lines[3:603] == [f"  give(x={i + 0.5}) = {i + 0.5}" for i in range(600)]
    del lines[3:603]
    kept = "test_object_lifetime.test_a_class_is_released_in_place_with_its_text_of_then.<locals>.prog.<locals>.Kept"
    assert lines == [
        "prog() = None",
        "  Kept() = None",
        f"  take(x=<{kept} object at 0x>, y=(<{kept} object at 0x>, 2)) = None",
        f"  give(x=<class '{kept}'>) = <class '{kept}'>",
        "  make(how='instance') = None",
        "    Made() = None",
        f"    {EXPECTED['instance']}",
        "  take(x=<test_object_lifetime.Renamed object at 0x>, y=None) = None",
        "  give(x=<class 'test_object_lifetime.Renamed'>) = <class 'test_object_lifetime.Renamed'>",
    ]


def _made_at(name: str, log: list) -> None:
    made = type(name, (Base,), {})
    obj = made()
    take(obj)
    log.append((name, id(made), id(obj)))


@pytest.mark.usefixtures("collector_quiet")
@pytest.mark.skipif("c" not in RECORDERS, reason="the C recorder is not built")
def test_a_new_class_at_a_released_class_address_gets_its_own_text() -> None:
    """After a class is released from the batch and freed, a new class made at its address, its
    instance at the address of the first one's, is not taken for it: the hot memo's entries
    keyed by the freed class's address are forgotten (collect.c forget_dying), so the new call
    gets its own entry and text."""
    log: list = []

    def prog() -> None:
        # until two classes were made at a freed one's address (where malloc puts them depends
        # on what ran before: 40 rounds once found none, on a session whose buffers moved)
        reused = 0
        for i in range(400):
            _made_at(f"A{i}", log)
            gc.collect(0)
            _made_at(f"B{i}", log)
            gc.collect(0)
            reused += log[-2][1:] == log[-1][1:]
            if reused >= 2 and i >= 39:
                break

    trace = record(prog, "c", include=["test_object_lifetime"], flush_interval=3600)
    same = [i for i in range(0, len(log) - 1) if log[i][1:] == log[i + 1][1:]]
    assert same, "no class was made at a freed class's address, with its instance at the same address"
    texts = [line.strip() for line in _without_addresses(shape(trace)) if line.strip().startswith("take(")]
    assert texts == [f"take(x=<test_object_lifetime.{name} object at 0x>, y=None) = None" for name, _, _ in log]


@pytest.mark.usefixtures("collector_quiet")
@pytest.mark.skipif("c" not in RECORDERS, reason="the C recorder is not built")
def test_a_class_is_released_while_another_thread_writes_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The release needs the recorder only, not the session's flush: while another thread holds
    the flush (writing a batch drained already), a collection that could free a class releases
    it in place as usual -- it neither waits for that write nor drains."""
    import threading

    drains = _count_drains(monkeypatch)
    sessions: list = []
    start = flowtrace.session.Session.start
    monkeypatch.setattr(flowtrace.session.Session, "start", lambda self: sessions.append(self) or start(self))
    seen = []

    def prog() -> None:
        class Kept(Base):
            pass

        REFS.clear()
        give(Kept)
        make("instance")
        holding, done = threading.Event(), threading.Event()

        def writer() -> None:
            with sessions[0]._flush_lock:
                holding.set()
                done.wait(10)

        thread = threading.Thread(target=writer)
        thread.start()
        holding.wait(10)
        before = len(drains)
        gc.collect(0)
        seen.append(len(drains) - before)
        seen.append(REFS.pop()() is None)
        done.set()
        thread.join()

    record(prog, "c", include=["test_object_lifetime"], flush_interval=3600)
    assert seen == [0, True]
