"""Types of flowtrace._crecorder, the C hot path (sources: flowtrace/_crecorder_src/).

Used only by flowtrace/recorder/c.py; see there and crecorder.h for what each part does.
"""

from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, Literal

CLOCK: Literal["tsc", "monotonic"]
"""The hot path's clock: the raw TSC (mapped onto CLOCK_MONOTONIC at drain) or CLOCK_MONOTONIC."""

CONSTANTS: dict[str, int]
"""Values shared with reprs.py and ftr/format.py; recorder/c.py checks them at import."""

BUILTIN_STR_TYPES: tuple[type[BaseException], ...]
"""Exception types whose __str__ the C side calls without a hook (reprs._BUILTIN_STR's)."""

def now() -> int:
    """The recorder's clock in ns (CLOCK_MONOTONIC, as rows are after the drain)."""

def suspend_events() -> None:
    """No monitoring event on this thread until resume_events() (flowtrace/untraced.py)."""

def resume_events() -> None:
    """Undo one suspend_events() on this thread."""

def builtin_text(value: object, safe: bool = False, /) -> str | None:
    """reprs.value_text's text for a builtin value as the callbacks make it in C (`safe`: other
    objects inside as safe mode's placeholders); None where the value holds anything else
    (the wrapper's hook renders it then)."""

def decode_varints(body: bytes | memoryview, rows: int, encoding: int, base: int = 0, /) -> bytes:
    """A varint column's rows (FORMAT 1.2-1.3 encodings 2-8; `base`: the chunk's first call id,
    for ENC_PARENT) as little-endian i64 bytes
    (ValueError when the body does not hold exactly `rows` values): ftr/format.py's fast path."""

def decode_shared(stream: bytes | memoryview, rows: int, earlier: bytes | memoryview, /) -> bytes:
    """A shared column's rows (FORMAT 1.9 encoding 14; `stream`: its body after the index byte,
    `earlier`: the named column's rows as little-endian 8-byte values) as little-endian i64
    bytes (ValueError when the stream does not hold one value for each row where `earlier` is
    not 0): ftr/format.py's fast path."""

def func_entry(fid: int, code: CodeType, module: str | None, /) -> dict[str, Any]:
    """recorder/common.func_entry(fid, code, module): the same dict (the C recorder's hook)."""

def func_json(functions: list[dict[str, object]], /) -> bytes | None:
    """format.json_payload(functions)'s bytes when every entry has common.func_entry's shape (its
    six keys in order, exact ints and ASCII strs), else None: ftr/format.py's fast path."""

def expand_strings(payload: bytes | memoryview, /) -> bytes:
    """A STRS payload with its value records (FORMAT 1.4) made into their texts, as a payload of
    texts only (ValueError when it does not parse): ftr/format.py's fast path."""

def watch_generator(frame: FrameType, on_gone: Callable[[Any, bool], object], data: object, /) -> Any:
    """A weak reference (with `.data`) to the generator running `frame` (None if the frame is
    not a generator's): `on_gone(ref, unseen)` is called when the generator is freed, just before
    its close; `unseen`: that close will send no monitoring event (genwatch.c)."""

def after_fork_child() -> None:
    """Reset the thread states in a forked child (only the forking thread survives)."""

def audit_launches(f: Callable[[str, tuple[Any, ...]], object] | None, /) -> None:
    """`f(event, args)` at each launch audit event (follow.py's _LAUNCHES), None: no more. The
    process's one audit hook, added from C at the first call (audit.c): other events cost a
    name test, not a Python call."""

def audit_every(f: Callable[[str, tuple[Any, ...]], object] | None, /) -> None:
    """`f(event, args)` at every audit event (session.py's fork resume, 3.13), None: no more."""

def forget_verdicts() -> None:
    """Code was marked (filters.py): every core forgets the answers it kept by file name and
    module (codes.c)."""

def gc_phase(phase: str, info: dict[str, int], /) -> None:
    """For gc.callbacks while a session records: a collection started in flowtrace's own work
    runs with events on; one outside it that could free a class a batch holds has that class
    released first (the collect hook)."""

def place_gc_phase(on: bool, /) -> None:
    """gc_phase first and last in gc.callbacks (on), where the program may have put its own
    callbacks since; or out of it. Not placed while a collection runs."""

def set_collect_hook(hook: Callable[[], object] | None, /) -> None:
    """`hook()` releases the classes a collection about to start could free from every
    recording session's batch, or drains it (session.py; collect.c); None: never."""

def guard(func: Callable[..., object], flag: int, prefix: str, main_thread_ident: int, /) -> Callable[..., object]:
    """`func` as a monitoring callback, with asynchronous exceptions delivered to the program
    instead (guard.c: the Python recorder's callbacks)."""

def deliver_later(exc: BaseException, /) -> None:
    """Raise `exc` again at the program's next eval-breaker check, outside any monitoring
    callback (guard.c); on a thread other than the main one, its class."""

def unheld(func: Callable[[Any], Any], arg: object, /) -> Any:
    """`func(arg)` -- the program's own code called from a hook -- with the program's signal
    handlers not held off while it runs (sighold.c)."""

class Core:
    """The monitoring callbacks and event buffers of one recording session."""

    def __init__(
        self,
        args_mode: int = ...,
        on_code: Callable[[CodeType, object], int] = ...,  # FUNC id | FUNC_OWN, 0, or -1
        on_thread: Callable[[int | None], int] = ...,
        exc_text: Callable[[BaseException], str] = ...,
        repr_now: Callable[[object], str] = ...,
        task_hook: Callable[[int, int], tuple[int, dict[str, Any] | None]] = ...,
        task_created: Callable[[object, int], None] = ...,
        tasks_out: list[dict[str, Any]] = ...,
    ) -> None: ...
    # sys.monitoring callbacks (PY_START, PY_RESUME, ...): registered by recorder/c.py
    def py_start(self, code: CodeType, offset: int, /) -> object: ...
    def py_resume(self, code: CodeType, offset: int, /) -> object: ...
    def py_throw(self, code: CodeType, offset: int, exc: BaseException, /) -> object: ...
    def py_return(self, code: CodeType, offset: int, retval: object, /) -> object: ...
    def py_yield(self, code: CodeType, offset: int, retval: object, /) -> object: ...
    def py_unwind(self, code: CodeType, offset: int, exc: BaseException, /) -> object: ...
    def exception_handled(self, code: CodeType, offset: int, exc: BaseException, /) -> object: ...
    def reraise(self, code: CodeType, offset: int, exc: BaseException, /) -> object: ...
    def drain(
        self, render_obj: Callable[[object], str], type_label: Callable[[type], str], origin_ns: int, /
    ) -> dict[str, Any]:
        """Swap the pending rows out: the CALL / EXIT / MARK chunk payloads (bytes, varint
        columns, times relative to origin_ns; None without rows), the number of calls, the number
        of new texts ("strings") and their STRS payload (None without any), keyed by name (see
        recorder/c.py drain)."""
    def start(self) -> None:
        """Begin a session (new ids, a new generation)."""
    def seed(self, ident: int, frames: list[FrameType], /) -> int:
        """Partial calls for the frames running on thread `ident` at start; its THRD id (0: none)."""
    def stop(self) -> None:
        """End every open call as unfinished; stop recording."""
    def pending(self) -> int:
        """Rows waiting for the next drain."""
    def release(self) -> None:
        """Drop the hooks (after stop; __init__ sets them again)."""
    def stats(self) -> dict[str, int]:
        """Counters for tests and diagnostics."""
    def set_overflow(self, hook: Callable[[], None] | None, rows: int, /) -> None:
        """Call hook() on the recording thread when `rows` rows are pending (None: never)."""
    def set_exit_hook(self, hook: Callable[[BaseException], object] | None, /) -> None:
        """Call hook(exc) when a SystemExit leaves a thread's outermost frame (None: never)."""
    def callback(self, name: str, /) -> Callable[..., object]:
        """The object to register for that event (faster to call than the bound method)."""
    def note_monitoring(self, tool: int, /) -> None:
        """Our events are on for that tool id (genwatch.c: what other tools may run)."""
    def release_classes(self, render_obj: Callable[[object], str], type_label: Callable[[type], str], /) -> bool:
        """Release the classes a collection about to start could free from the batch: the
        entries that reference them become their texts now (collect.c). False: not done (no
        collection pending, or a failure): drain instead."""

Column = tuple[bytes | memoryview, str, int]
"""A decoded column as ftr/records.py's Column holds it: (data, typecode, encoding) -- its
little-endian bytes, 'B' 'H' 'I' 'i' 'q' or 'Q', ENC_RAW or ENC_DELTA."""

PROFILE_PASS_VERSION: int
"""2: ProfilePass.marks takes the resumer column (profile.py uses no other)."""

class ProfilePass:
    """flowtrace/profile.py's `_Pass` in C (profile_pass.c): the same numbers from the same rows,
    fed a chunk's columns at a time; OverflowError when a value or sum does not fit 64 bits
    (profile.py then reads the session with its Python pass)."""

    def __init__(self, functions: list[int], thread: int | None, edges: bool, paths: bool) -> None: ...
    def calls(self, base: int, rows: int, parent: Column, function: Column, thread: Column, t0: Column, /) -> None:
        """A CALL chunk's rows."""
    def marks(self, rows: int, call: Column, t: Column, kind: Column, run: Column, other: Column, /) -> None:
        """A MARK chunk's rows."""
    def exits(self, rows: int, call: Column, t1: Column, how: Column, /) -> None:
        """An EXIT chunk's rows."""
    def finish(
        self, t_end: int, /
    ) -> tuple[list[tuple[int, int, int, int, int, int, int]], dict[tuple[int, int], list[int]],
               dict[tuple[int, int], int], dict[int, int], dict[int, int], int]:
        """The calls still running end at t_end; then (per function given, in that order: (calls,
        outer, total, self, sum, max, raised); edges; paths; path_self; path_thread; total) as
        profile.Profile holds them. The pass cannot be used after."""

class NativeWriter:
    """A thread that frames chunks (zlib level 1 when smaller, crc32) and appends them to a
    file descriptor without the GIL (absent when the extension was built without zlib)."""

    bytes_written: int
    def __init__(self, fd: int, /) -> None: ...
    def put(self, parts: list[tuple[bytes, bytes | bytearray | memoryview, bool]], /) -> None:
        """Queue one batch's chunks (type, payload, compress); blocks while 2 batches wait."""
    def flush(self) -> None:
        """Return once everything put is in the file; OSError if a write failed."""
    def close(self) -> None:
        """flush() and stop the thread (the descriptor stays open)."""
