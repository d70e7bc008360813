"""`Batch`: what a recorder hands to the session writer, in the units of the format.

It lives with the format (not with the recorders) because it is the writer's input: the
recorders (flowtrace/recorder/) depend on the format, never the other way round.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field, replace
from typing import Any

from . import format as F

# payload column -> Batch field, per chunk type (what unpacked() fills)
_FIELDS = {
    F.CALL: {"par": "call_parent", "fn": "call_func", "thr": "call_thread", "t0": "call_t0", "args": "call_args",
             "task": "call_task", "flag": "call_flag"},
    F.EXIT: {"call": "exit_call", "t1": "exit_t1", "how": "exit_how", "val": "exit_val"},
    F.MARK: {"call": "mark_call", "t": "mark_t", "kind": "mark_kind", "ref": "mark_ref", "othr": "mark_other",
             "n": "mark_n", "run": "mark_run", "span": "mark_span"},
}


@dataclass
class Batch:
    """Everything recorded between two drains, in the units of docs/FORMAT.md.

    Definitions come first: the writer emits them before the column chunks that use them.
    Column arrays are `array.array`s with the FORMAT.md typecodes; times are absolute
    `perf_counter_ns()` values (the writer makes them relative to the session origin).
    """

    functions: list[dict[str, Any]] = field(default_factory=list)  # FUNC entries
    threads: list[dict[str, Any]] = field(default_factory=list)  # THRD entries
    tasks: list[dict[str, Any]] = field(default_factory=list)  # TASK entries
    strings_first_id: int = 1
    strings: list[str] = field(default_factory=list)  # STRS, ids from strings_first_id
    call_first_id: int = 1
    # CALL columns, one row per call start, ids call_first_id .. +len-1
    call_parent: array = field(default_factory=lambda: array("I"))
    call_func: array = field(default_factory=lambda: array("I"))
    call_thread: array = field(default_factory=lambda: array("I"))
    call_t0: array = field(default_factory=lambda: array("q"))
    call_args: array = field(default_factory=lambda: array("I"))
    call_task: array = field(default_factory=lambda: array("I"))
    call_flag: array = field(default_factory=lambda: array("B"))
    # EXIT columns
    exit_call: array = field(default_factory=lambda: array("I"))
    exit_t1: array = field(default_factory=lambda: array("q"))
    exit_how: array = field(default_factory=lambda: array("B"))
    exit_val: array = field(default_factory=lambda: array("I"))
    # MARK columns
    mark_call: array = field(default_factory=lambda: array("I"))
    mark_t: array = field(default_factory=lambda: array("q"))
    mark_kind: array = field(default_factory=lambda: array("B"))
    mark_ref: array = field(default_factory=lambda: array("I"))
    mark_other: array = field(default_factory=lambda: array("I"))
    # MARK fold columns (FORMAT 1.1): per row n, run ns, span ns; 0 on rows that are not folds.
    # Left empty when the batch has no fold row.
    mark_n: array = field(default_factory=lambda: array("I"))
    mark_run: array = field(default_factory=lambda: array("q"))
    mark_span: array = field(default_factory=lambda: array("q"))
    # Optional, from a recorder that encodes its rows itself (the C one): the CALL / EXIT /
    # MARK chunk payloads, ready to frame (times already relative to the session origin), in
    # place of the columns above, and how many calls they hold.
    payloads: list[tuple[bytes, bytes]] = field(default_factory=list)
    payload_calls: int = 0
    # Optional: the STRS payload of `strings` already encoded (format.encode_strings' bytes)
    strings_payload: bytes | None = None

    def unpacked(self) -> "Batch":
        """This batch with its encoded payloads decoded into the columns (times as the payload
        stores them: relative to the recorder's origin). For reading a C recorder's batch row by
        row (tests, diagnostics); the writer frames the payloads as they are."""
        out = replace(self, payloads=[], payload_calls=0)
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
