"""`flowtrace export --format perfetto`: a Perfetto protobuf trace (TrackEvent), for
ui.perfetto.dev and trace_processor.

Mapping (docs/EXPORT.md):
- one process track (pid and argv from the session), one thread track per thread (its name and
  native id); one async track per asyncio task (its name), under the process;
- a slice per call on its thread's track, or per run of a generator/coroutine (from its start or
  resume to its suspend or end, flowtrace/timeline.py), named by the function's qualified name;
  the arguments text and the call id are debug annotations of the slice's begin, the result or
  the exception of its end (Perfetto merges both into the slice's args);
- a coroutine or generator that runs in a task also gets one slice for its whole lifetime on the
  task's track (so a task's await chain stacks up there);
- raise / handled / throw marks are instant events on the thread's track.
Function names and annotation names are interned (InternedData, once each, on the one packet
sequence). Times are nanoseconds from the session start. Written with a small protobuf encoder
(standard library only), packet by packet as the session is read.
"""

from __future__ import annotations

from typing import IO, Any

from ..ftr import format as F
from ..ftr.scan import CheckedPass, Outlook, SessionInfo, Texts, surveyed
from ..held import Held
from ..timeline import ROWS, Event, events

# field numbers (perfetto/protos/perfetto/trace/...)
_TRACE_PACKET = 1  # Trace.packet
_P_TIMESTAMP, _P_SEQ_ID, _P_TRACK_EVENT, _P_INTERNED, _P_SEQ_FLAGS, _P_TRACK_DESC = 8, 10, 11, 12, 13, 60
_SEQ_CLEARED, _SEQ_NEEDS_STATE = 1, 2
_TD_UUID, _TD_NAME, _TD_PROCESS, _TD_THREAD, _TD_PARENT = 1, 2, 3, 4, 5
_PD_PID, _PD_NAME = 1, 6
_THD_PID, _THD_TID, _THD_NAME = 1, 2, 5
_TE_ANNOTATIONS, _TE_TYPE, _TE_NAME_IID, _TE_TRACK, _TE_NAME = 4, 9, 10, 11, 23
_BEGIN, _END, _INSTANT = 1, 2, 3
_DA_NAME_IID, _DA_INT, _DA_STRING = 1, 4, 6
_ID_EVENT_NAMES, _ID_ANNOTATION_NAMES = 2, 3
_IID, _NAME = 1, 2

ANNOTATIONS = ("args", "result", "exception", "call", "text")  # interned as 1, 2, ...
_A = {name: i + 1 for i, name in enumerate(ANNOTATIONS)}
_SEQ = 1
_PACKET_TAG = bytes([(_TRACE_PACKET << 3) | 2])
_TIMESTAMP_TAG = bytes([_P_TIMESTAMP << 3])
_EVENT_TAG = bytes([(_P_TRACK_EVENT << 3) | 2])
_PROCESS_UUID = 1
_RUNS = ("generator", "coroutine", "async_generator")
_MARKS = {F.MARK_RAISE: "raise", F.MARK_HANDLED: "handled", F.MARK_THROW: "throw"}


def varint(value: int) -> bytes:
    """Protobuf base-128 varint (negative numbers as their 64-bit two's complement)."""
    if 0 <= value < _SMALL:
        return _VARINTS[value]
    return _encode_varint(value & ((1 << 64) - 1))


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = 1 << 14  # the varints of ids, lengths and tags: encoded once (two bytes at most)
_VARINTS = [_encode_varint(v) for v in range(_SMALL)]


def field_int(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, data: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(data)) + data


def field_str(number: int, text: str) -> bytes:
    return field_bytes(number, text.encode("utf-8", "surrogatepass"))




def _thread_uuid(thread: int, process: int = 0) -> int:
    return process << 40 | (1000 + thread)


def _task_uuid(task: int, process: int = 0) -> int:
    return process << 40 | 1 << 32 | task


class _Writer:
    """One process's packets. `process` numbers it within the session (0: the root; its tracks'
    uuids and its packet sequence are its own), `shift` moves its times onto the root's clock,
    `name`/`pid` name its process track."""

    def __init__(self, info: SessionInfo, out: IO[bytes], process: int = 0, shift: int = 0,
                 name: str | None = None, pid: int | None = None, texts: Texts | None = None) -> None:
        """`texts`: the session's texts, when `info` (its definitions) is not its survey (a
        glanced session checked as it is read: the texts of that pass's survey)."""
        self.info = info
        self.out = out
        self.process, self.shift, self.name, self.pid = process, shift, name, pid
        self.seq_fields = field_int(_P_SEQ_ID, _SEQ + process) + field_int(_P_SEQ_FLAGS, _SEQ_NEEDS_STATE)
        self.process_uuid = _PROCESS_UUID + (process << 40)
        self.texts = Texts(info) if texts is None else texts
        self._names: dict[int, bytes] = {}  # function -> its name_iid field (interned once)
        self._heads: dict[tuple[int, int], bytes] = {}  # (type, track) -> their fields
        self.tasks: dict[int, int] = {}  # coroutine call -> task (its lifetime slice is open there)
        self.buf: list[bytes] = []

    def packet(self, body: bytes) -> None:
        self.buf.append(field_bytes(_TRACE_PACKET, body))
        if len(self.buf) >= 4096:
            self.flush()

    def flush(self) -> None:
        self.out.write(b"".join(self.buf))
        self.buf.clear()

    def descriptors(self) -> None:
        info = self.info
        pid = self.pid or int(info.meta.get("pid") or 1)
        argv = info.meta.get("argv")
        name = self.name or (" ".join(map(str, argv)) if isinstance(argv, list) and argv else "python")
        self.packet(field_bytes(_P_TRACK_DESC, field_int(_TD_UUID, self.process_uuid) + field_bytes(
            _TD_PROCESS, field_int(_PD_PID, pid) + field_str(_PD_NAME, name))))
        for t in sorted(info.threads.values(), key=lambda t: t.id):
            thread = field_int(_THD_PID, pid) + field_int(_THD_TID, t.native_id or t.id) + field_str(_THD_NAME, t.name)
            self.packet(field_bytes(_P_TRACK_DESC, field_int(_TD_UUID, _thread_uuid(t.id, self.process))
                                    + field_int(_TD_PARENT, self.process_uuid) + field_bytes(_TD_THREAD, thread)))
        for task in sorted(info.tasks.values(), key=lambda t: t.id):
            self.packet(field_bytes(_P_TRACK_DESC, field_int(_TD_UUID, _task_uuid(task.id, self.process))
                                    + field_int(_TD_PARENT, self.process_uuid)
                                    + field_str(_TD_NAME, task.name or f"task {task.id}")))
        names = b"".join(field_bytes(_ID_ANNOTATION_NAMES, field_int(_IID, i) + field_str(_NAME, n))
                         for n, i in _A.items())
        self.packet(field_int(_P_SEQ_ID, _SEQ + self.process) + field_int(_P_SEQ_FLAGS, _SEQ_CLEARED)
                    + field_bytes(_P_INTERNED, names))

    def event(self, t: int, track: int, kind: int, fn: int, annotations: bytes = b"", name: str = "") -> None:
        """One TrackEvent packet; the parts that repeat (type and track, name id) are encoded once."""
        head = self._heads.get((kind, track))
        if head is None:
            head = self._heads[(kind, track)] = field_int(_TE_TYPE, kind) + field_int(_TE_TRACK, track)
        interned = b""
        if name:
            body = head + field_str(_TE_NAME, name)
        elif kind != _END:
            named = self._names.get(fn)
            if named is None:
                named = self._names[fn] = field_int(_TE_NAME_IID, fn)
                interned = field_bytes(_P_INTERNED, field_bytes(
                    _ID_EVENT_NAMES, field_int(_IID, fn) + field_str(_NAME, self.info.functions[fn].qualname)))
            body = head + named
        else:
            body = head
        event = body + annotations
        t += self.shift
        packet = (_TIMESTAMP_TAG + varint(t if t > 0 else 0) + self.seq_fields + interned + _EVENT_TAG
                  + varint(len(event)) + event)
        self.buf.append(_PACKET_TAG + varint(len(packet)) + packet)
        if len(self.buf) >= 4096:
            self.flush()

    def annotation(self, name: str, text: str | None = None, number: int | None = None) -> bytes:
        value = field_str(_DA_STRING, text) if text is not None else field_int(_DA_INT, number or 0)
        return field_bytes(_TE_ANNOTATIONS, field_int(_DA_NAME_IID, _A[name]) + value)

    def take(self, ev: Event) -> None:
        track = _thread_uuid(ev.thread, self.process)
        if ev.kind == "start":
            notes = self.annotation("call", number=ev.call)
            if ev.text:
                notes += self.annotation("args", self.texts.get(ev.text))
            self.event(ev.t, track, _BEGIN, ev.fn, notes)
            self._task_begin(ev)
        elif ev.kind == "resume":
            self.event(ev.t, track, _BEGIN, ev.fn)
        elif ev.kind == "pause":
            self.event(ev.t, track, _END, ev.fn)
        elif ev.kind == "end":
            notes = b""
            if ev.text and ev.how in (F.END_RETURN, F.END_RAISE):  # (timeline: END_RAISE_HERE is END_RAISE)
                notes = self.annotation("result" if ev.how == F.END_RETURN else "exception", self.texts.get(ev.text))
            if ev.frame:
                self.event(ev.t, track, _END, ev.fn, notes)
            task = self.tasks.pop(ev.call, None)
            if task is not None:
                self.event(ev.t, _task_uuid(task, self.process), _END, ev.fn, notes)
        else:
            notes = self.annotation("text", self.texts.get(ev.text)) if ev.text else b""
            self.event(ev.t, track, _INSTANT, ev.fn, notes, name=_MARKS.get(ev.how, "mark"))

    def _task_begin(self, ev: Event) -> None:
        """A coroutine or generator that runs in a task: its lifetime on the task's track."""
        task = ev.task
        if task and self.info.functions[ev.fn].kind in _RUNS:
            self.tasks[ev.call] = task
            self.event(ev.t, _task_uuid(task, self.process), _BEGIN, ev.fn)


def write(info: SessionInfo | Outlook, out: IO[bytes], *, parts: list[tuple[Any, Any]] | None = None,
          **_: Any) -> None:
    """The trace; `parts` (a session of several processes): one process track per process,
    each with its own packet sequence, all on the root's clock (docs/EXPORT.md). Sessions
    surveyed or glanced (`scan.glance`: each checked in the pass that reads its events)."""
    origin = int(info.meta.get("origin_ns") or 0)
    for k, (proc, part) in enumerate(parts or [(None, info)]):
        shift = int(part.meta.get("origin_ns") or origin) - origin
        args = (k, shift, proc.title() if proc is not None else None, proc.pid if proc is not None else None)
        if not (isinstance(part, Outlook) and part.streamable and _write_checked(part, out, *args)):
            _write_part(surveyed(part), out, *args)


def _write_part(info: SessionInfo, out: IO[bytes], *args: Any) -> None:
    w = _Writer(info, out, *args)
    try:
        w.descriptors()
        for ev in events(info):
            w.take(ev)
        w.flush()
    finally:
        w.texts.close()


def _write_checked(look: Outlook, out: IO[bytes], *args: Any) -> bool:
    """Write a glanced part in the pass that checks it. Its tracks and names come from the
    glance, so what is written waits (`Held`) until the pass has checked the last chunk they
    depend on (`Outlook.settled`, `Outlook.listed`); False (nothing written) when a check
    failed before it."""
    checked = CheckedPass(look)
    until = max(look.settled, look.listed)
    held = Held(out, binary=True) if until else None
    w = _Writer(look.info, held or out, *args, texts=Texts(checked.info))  # type: ignore[arg-type]
    try:
        w.descriptors()
        for ev in events(checked.info, records=checked.records(ROWS, w.texts)):
            if held is not None and checked.checked >= until:
                w.flush()
                held.release()
                held = None
            w.take(ev)
        w.flush()
        if checked.failed_at is not None and checked.failed_at <= until:
            return False
        if held is not None:
            held.release()
    finally:
        w.texts.close()
        if held is not None:
            held.close()
    return True
