"""`Batch`: what a recorder hands to the session writer, in the units of the format.

It lives with the format (not with the recorders) because it is the writer's input: the
recorders (flowtrace/recorder/) depend on the format, never the other way round.
"""

from __future__ import annotations

from array import array
from typing import Any, Callable

from ..plain import Plain
from . import format as F

# payload column -> Batch field, per chunk type (what unpacked() fills)
_FIELDS = {
    F.CALL: {"par": "call_parent", "fn": "call_func", "thr": "call_thread", "t0": "call_t0", "args": "call_args",
             "task": "call_task", "flag": "call_flag"},
    F.EXIT: {"call": "exit_call", "t1": "exit_t1", "how": "exit_how", "val": "exit_val"},
    F.MARK: {"call": "mark_call", "t": "mark_t", "kind": "mark_kind", "ref": "mark_ref", "othr": "mark_other",
             "n": "mark_n", "run": "mark_run", "span": "mark_span"},
}


def _ints(typecode: str) -> Callable[[], array]:
    # A new empty array as a slice of one made once: array() raises an audit event
    # ("array.__new__") that runs every audit hook of the process -- `flowtrace run`'s is a
    # Python function (follow.py), ~3,000 instructions each, 19 for every Batch -- a slice none.
    empty = array(typecode)
    return lambda: empty[:]


# Batch's fields and how each starts (the column arrays with the FORMAT.md typecodes)
_FIELD_DEFAULTS: dict[str, Callable[[], Any]] = {
    "functions": list,  # FUNC entries
    "threads": list,  # THRD entries
    "tasks": list,  # TASK entries
    "strings_first_id": lambda: 1,
    "strings": list,  # STRS, ids from strings_first_id
    "call_first_id": lambda: 1,
    # CALL columns, one row per call start, ids call_first_id .. +len-1
    "call_parent": _ints("I"), "call_func": _ints("I"), "call_thread": _ints("I"), "call_t0": _ints("q"),
    "call_args": _ints("I"), "call_task": _ints("I"), "call_flag": _ints("B"),
    # EXIT columns
    "exit_call": _ints("I"), "exit_t1": _ints("q"), "exit_how": _ints("B"), "exit_val": _ints("I"),
    # MARK columns
    "mark_call": _ints("I"), "mark_t": _ints("q"), "mark_kind": _ints("B"), "mark_ref": _ints("I"),
    "mark_other": _ints("I"),
    # MARK fold columns (FORMAT 1.1): per row n, run ns, span ns; 0 on rows that are not folds.
    # Left empty when the batch has no fold row.
    "mark_n": _ints("I"), "mark_run": _ints("q"), "mark_span": _ints("q"),
    # Optional, from a recorder that encodes its rows itself (the C one): the CALL / EXIT /
    # MARK chunk payloads [(kind, payload)], ready to frame (times already relative to the
    # session origin), in place of the columns above, and how many calls they hold.
    "payloads": list,
    "payload_calls": lambda: 0,
    # Optional: the STRS payload of `strings` already encoded (format.encode_strings' bytes)
    "strings_payload": lambda: None,
}


class Batch(Plain):
    """Everything recorded between two drains, in the units of docs/FORMAT.md: the fields of
    _FIELD_DEFAULTS, given by keyword (the others start empty).

    Definitions come first: the writer emits them before the column chunks that use them.
    Column arrays are `array.array`s with the FORMAT.md typecodes; times are absolute
    `perf_counter_ns()` values (the writer makes them relative to the session origin).
    """

    __slots__ = tuple(_FIELD_DEFAULTS)

    def __init__(self, **fields: Any) -> None:
        unknown = fields.keys() - _FIELD_DEFAULTS.keys()
        if unknown:
            raise TypeError(f"Batch() got unexpected fields: {', '.join(sorted(unknown))}")
        for name, start in _FIELD_DEFAULTS.items():
            setattr(self, name, fields[name] if name in fields else start())

    def unpacked(self) -> "Batch":
        """This batch with its encoded payloads decoded into the columns (times as the payload
        stores them: relative to the recorder's origin). For reading a C recorder's batch row by
        row (tests, diagnostics); the writer frames the payloads as they are."""
        out = Batch(**{**{name: getattr(self, name) for name in self.__slots__}, "payloads": [], "payload_calls": 0})
        for kind, payload in self.payloads:
            cols = F.decode_columns(kind, payload)
            for name, field_name in _FIELDS[kind].items():
                typecode = getattr(out, field_name).typecode
                if kind == F.MARK and name in ("n", "run", "span") and name not in cols.columns:
                    continue  # (no fold row: left empty, as the recorders leave them)
                setattr(out, field_name, array(typecode, cols.get(name)))
        return out

    def is_empty(self) -> bool:
        return not (
            self.functions or self.threads or self.tasks or self.strings
            or self.call_parent or self.exit_call or self.mark_call or self.payloads
        )
