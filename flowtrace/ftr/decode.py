"""The one decoder of `.ftr` chunks: a checked chunk in, a typed record out.

Everything that reads a session goes through `decode()`: the object reader (ftr/reader.py:
print, export, the seed API), the explorer's numpy loader (flowtrace_tui/model/loader.py) and
anything built on them. This module alone knows which column of a CALL/EXIT/MARK chunk means
what, which columns must be there, what a FUNC/THRD/TASK entry holds and what a missing field
means; consumers only decide how to store the records (Python objects, or numpy columns from
`Column.data`) and check references against what they have loaded so far.

Rules every consumer shares (docs/FORMAT.md, "Reading"):
- a chunk type this version does not know decodes to None and is skipped;
- an optional column a writer left out reads as zeros; a required one missing is damage;
- a function kind this version does not know reads as "function";
- a repeated TASK definition fills in what the later one says (`Task.updated`);
- a repeated EXIT row for a call is accepted: the last row read wins (see FORMAT.md).

To add a record: a dataclass below, a function that decodes its chunk, one line in `_DECODERS`.
Standard library only (the tracer imports this inside user programs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from . import format as F
from .chunks import Chunk
from .format import Column, FormatError, Strings

FUNCTION_KINDS = frozenset({"function", "generator", "coroutine", "async_generator", "class", "module"})


# --- definitions (JSON chunks) -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Function:
    """A FUNC definition: where a recorded code object lives."""

    id: int
    qualname: str
    module: str
    file: str
    line: int
    kind: str  # one of FUNCTION_KINDS


@dataclass(slots=True)
class Thread:
    """A THRD definition (the last definition of an id wins: threads get renamed)."""

    id: int
    ident: int
    native_id: int
    name: str


@dataclass(slots=True)
class Task:
    """An asyncio task (TASK): `creator` is the call that created it, `root` its coroutine's call
    (None when unknown)."""

    id: int
    name: str
    thread: int | None
    creator: int | None
    root: int | None

    def updated(self, later: "Task") -> "Task":
        """This task as a later definition of the same id leaves it: what the later one knows
        wins, what it leaves out (empty name, unknown ids) keeps its earlier value."""
        return Task(self.id, later.name or self.name, later.thread or self.thread,
                    later.creator or self.creator, later.root or self.root)


@dataclass(frozen=True, slots=True)
class Meta:
    """The META object (always the first chunk)."""

    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class End:
    """The ENDS object: the session ended cleanly (always the last chunk)."""

    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FunctionDefs:
    items: list[Function]


@dataclass(frozen=True, slots=True)
class ThreadDefs:
    items: list[Thread]


@dataclass(frozen=True, slots=True)
class TaskDefs:
    items: list[Task]


# --- rows (column chunks) ------------------------------------------------------------------
# Each row record names its columns; `_COLUMNS` maps a field to its name on disk and says
# whether a writer may leave it out (then it reads as zeros).
@dataclass(frozen=True, slots=True)
class CallRows:
    """CALL: one row per call start; call ids are base .. base+rows-1."""

    base: int
    rows: int
    parent: Column  # 0: no recorded parent
    function: Column
    thread: Column
    t0: Column
    args: Column  # text id, 0: not captured
    task: Column  # 0: not in a task
    flag: Column  # F.CALL_PARTIAL


@dataclass(frozen=True, slots=True)
class ExitRows:
    """EXIT: one row per call end."""

    base: int
    rows: int
    call: Column
    t1: Column
    how: Column  # F.END_*
    value: Column  # text id of the result or exception, 0: not captured


@dataclass(frozen=True, slots=True)
class MarkRows:
    """MARK: events inside calls (F.MARK_*)."""

    base: int
    rows: int
    call: Column
    t: Column
    kind: Column
    ref: Column  # text id
    other: Column  # the resuming call, 0: none recorded
    n: Column  # (1.1) a fold's runs, else 0
    run: Column  # (1.1) a fold's summed running ns, else 0
    span: Column  # (1.1) a fold's last yield - t, else 0


_COLUMNS: dict[type, dict[str, tuple[str, bool]]] = {
    CallRows: {"parent": ("par", True), "function": ("fn", True), "thread": ("thr", True),
               "t0": ("t0", True), "args": ("args", False), "task": ("task", False),
               "flag": ("flag", False)},
    ExitRows: {"call": ("call", True), "t1": ("t1", True), "how": ("how", True), "value": ("val", False)},
    MarkRows: {"call": ("call", True), "t": ("t", True), "kind": ("kind", True), "ref": ("ref", False),
               "other": ("othr", False), "n": ("n", False), "run": ("run", False), "span": ("span", False)},
}

Record = Union[Meta, End, FunctionDefs, ThreadDefs, TaskDefs, Strings, CallRows, ExitRows, MarkRows]
Rows = Union[CallRows, ExitRows, MarkRows]


def _rows(cls: type, chunk: Chunk) -> Any:
    cols = F.decode_columns(chunk.kind, chunk.payload)
    return cls(base=cols.base, rows=cols.rows, **_named(chunk.kind, cols, _COLUMNS[cls]))


def _named(kind_bytes: bytes, cols: F.Columns, fields: dict[str, tuple[str, bool]]) -> dict[str, Column]:
    """The record fields `fields` of decoded columns: a required column missing is damage, an
    optional one reads as zeros."""
    kind = kind_bytes.decode()
    named: dict[str, Column] = {}
    for field_name, (disk, required) in fields.items():
        col = cols.columns.get(disk)
        if col is None:
            if required:
                raise FormatError(f"{kind} chunk lacks its {disk!r} column")
            col = Column(disk, "B", F.ENC_RAW, memoryview(bytes(cols.rows)))  # zeros
        named[field_name] = col
    return named


_ROW_TYPES: dict[bytes, type] = {F.CALL: CallRows, F.EXIT: ExitRows, F.MARK: MarkRows}


def some_columns(chunk: Chunk, *fields: str) -> list[Column]:
    """Some columns of a CALL / EXIT / MARK chunk, named by their record fields (`"thread"`), as
    `decode()` gives them; the other columns are not decoded (a quick look at a whole file).
    Raises FormatError as `decode()` does for damage in what it reads."""
    cls = _ROW_TYPES[chunk.kind]
    wanted = {f: _COLUMNS[cls][f] for f in fields}
    try:
        cols = F.decode_columns(chunk.kind, chunk.payload, frozenset(disk for disk, _req in wanted.values()))
        named = _named(chunk.kind, cols, wanted)
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise FormatError(f"{chunk.kind.decode()} chunk: malformed ({type(exc).__name__}: {exc})") from None
    return [named[f] for f in fields]


def _json_list(chunk: Chunk) -> list[dict[str, Any]]:
    value = chunk.json()
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise FormatError(f"{chunk.kind.decode()} chunk is not a list of objects")
    return value


def _json_object(chunk: Chunk) -> dict[str, Any]:
    value = chunk.json()
    if not isinstance(value, dict):
        raise FormatError(f"the {chunk.kind.decode()} chunk is not a JSON object")
    return value


def _function(d: dict[str, Any]) -> Function:
    kind = str(d.get("kind", "function"))
    return Function(int(d["id"]), str(d["qualname"]), str(d.get("module", "")), str(d.get("file", "")),
                    int(d.get("line", 0) or 0), kind if kind in FUNCTION_KINDS else "function")


def _thread(d: dict[str, Any]) -> Thread:
    return Thread(int(d["id"]), int(d.get("ident", 0)), int(d.get("native_id", 0)), str(d.get("name", "")))


def _task(d: dict[str, Any]) -> Task:
    return Task(int(d["id"]), str(d.get("name", "")), int(d.get("thread", 0)) or None,
                int(d.get("creator", 0)) or None, int(d.get("root", 0)) or None)


_DECODERS: dict[bytes, Callable[[Chunk], Record]] = {
    F.META: lambda c: Meta(_json_object(c)),
    F.ENDS: lambda c: End(_json_object(c)),
    F.FUNC: lambda c: FunctionDefs([_function(d) for d in _json_list(c)]),
    F.THRD: lambda c: ThreadDefs([_thread(d) for d in _json_list(c)]),
    F.TASK: lambda c: TaskDefs([_task(d) for d in _json_list(c)]),
    F.STRS: lambda c: F.decode_strings(c.payload),
    F.CALL: lambda c: _rows(CallRows, c),
    F.EXIT: lambda c: _rows(ExitRows, c),
    F.MARK: lambda c: _rows(MarkRows, c),
}


def decode(chunk: Chunk) -> Record | None:
    """The record of one chunk; None for a chunk type this version does not know (skip it).

    Raises FormatError (one line, without the offset: the caller knows where it read) when
    the chunk is well framed but its contents do not follow the format."""
    decoder = _DECODERS.get(chunk.kind)
    if decoder is None:
        return None
    try:
        return decoder(chunk)
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise FormatError(f"{chunk.kind.decode()} chunk: malformed ({type(exc).__name__}: {exc})") from None

