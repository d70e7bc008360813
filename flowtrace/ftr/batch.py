"""`Batch`: what a recorder hands to the session writer, in the units of the format.

It lives with the format (not with the recorders) because it is the writer's input: the
recorders (flowtrace/recorder/) depend on the format, never the other way round.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any


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
    # Optional, pre-encoded by a recorder that can do it cheaply (the C one): each time column
    # as array('i') of steps from the previous value; item 0 is left for the writer (it alone
    # knows the origin). None: not provided, or a step does not fit in 32 bits.
    call_t0_deltas: array | None = None
    exit_t1_deltas: array | None = None
    mark_t_deltas: array | None = None
    # Optional, from the C recorder: CALL.par and EXIT.call as array('i') steps (item 0 the
    # first value itself), written delta-encoded; None: raw (or a step does not fit 32 bits).
    call_parent_deltas: array | None = None
    exit_call_deltas: array | None = None
    # Optional: the STRS payload of `strings` already encoded (format.encode_strings' bytes)
    strings_payload: bytes | None = None

    def is_empty(self) -> bool:
        return not (
            self.functions or self.threads or self.tasks or self.strings
            or self.call_parent or self.exit_call or self.mark_call
        )
