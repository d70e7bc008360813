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

from typing import IO, Any, Iterable, Iterator

from ..ftr import format as F
from ..ftr.scan import CheckedPass, Outlook, SessionInfo, Texts, surveyed
from ..held import Held
from ..timeline import ROWS, Event, event_batches

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
_FLUSH_BYTES = 1 << 19  # packets written a buffer at a time
_NOTES_KEPT = 1 << 14  # annotations of texts kept for their next use (then dropped, all at once)
_RUNS = ("generator", "coroutine", "async_generator")
_RETURN, _RAISE = F.END_RETURN, F.END_RAISE
_MARKS = {F.MARK_RAISE: "raise", F.MARK_HANDLED: "handled", F.MARK_THROW: "throw"}


def varint(value: int) -> bytes:
    """Protobuf base-128 varint (negative numbers as their 64-bit two's complement)."""
    if 0 <= value < _SMALL:
        return _VARINTS[value]
    if 0 < value < _MEDIUM:  # (times: 14 bits at a time from two tables, not 7 in a loop)
        return _CONTINUED[value & _LOW14] + _VARINTS[value >> 14]
    if 0 < value < _LARGE:
        return _CONTINUED[value & _LOW14] + _CONTINUED[(value >> 14) & _LOW14] + _VARINTS[value >> 28]
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
# the low 14 bits of a larger value: its first two bytes, both with the continuation bit
_CONTINUED = [bytes(((v & 0x7F) | 0x80, (v >> 7) | 0x80)) for v in range(_SMALL)]
_LOW14, _MEDIUM, _LARGE = _SMALL - 1, 1 << 28, 1 << 42  # (2^42 ns: 73 minutes)


def field_int(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, data: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(data)) + data


def field_str(number: int, text: str) -> bytes:
    return field_bytes(number, text.encode("utf-8", "surrogatepass"))




_NOTE_TAG = _CALL_NOTE_TAG = varint((_TE_ANNOTATIONS << 3) | 2)
# an annotation of a text: its name's field and the string's tag, then the string's length and bytes
_TEXT_NOTES = {name: field_int(_DA_NAME_IID, _A[name]) + varint((_DA_STRING << 3) | 2)
               for name in ("args", "result", "exception", "text")}
_CALL_NOTE = field_int(_DA_NAME_IID, _A["call"]) + varint(_DA_INT << 3)  # then the call id's varint
_CALL_NOTE_SIZE = len(_CALL_NOTE)


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
        self._bodies: dict[tuple[int, int, int | str], bytes] = {}  # (type, track, fn or name) -> fields
        self._notes: dict[str, dict[int, bytes]] = {name: {} for name in _TEXT_NOTES}  # text id -> field
        self._middle = self.seq_fields + _EVENT_TAG  # what follows the timestamp (nothing interned)
        self.tasks: dict[int, int] = {}  # coroutine call -> task (its lifetime slice is open there)
        self.bytes_buf = bytearray()  # packets not written yet (_FLUSH_BYTES at most)

    def packet(self, body: bytes) -> None:
        self.bytes_buf += field_bytes(_TRACE_PACKET, body)
        if len(self.bytes_buf) >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.bytes_buf:
            self.out.write(bytes(self.bytes_buf))
            self.bytes_buf.clear()

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
        """One TrackEvent packet: the type, track and name fields of (kind, track, fn) are
        encoded once (`_body`), the function's name interned in the packet of its first use."""
        key = (kind, track, name or fn)
        body = self._bodies.get(key)
        interned = b""
        if body is None:
            body, interned = self._body(key)
        t += self.shift
        self._packet(t if t > 0 else 0, interned, body, annotations)

    def _body(self, key: tuple[int, int, int | str]) -> tuple[bytes, bytes]:
        """The fields of an event of (kind, track, fn or instant's name) but its annotations,
        kept for the next ones; and the interned name to send with it (once per function)."""
        kind, track, fn = key
        body = field_int(_TE_TYPE, kind) + field_int(_TE_TRACK, track)
        interned = b""
        if isinstance(fn, str):
            body += field_str(_TE_NAME, fn)
        elif kind != _END:
            named = field_int(_TE_NAME_IID, fn)
            if fn not in self._names:
                self._names[fn] = named
                interned = field_bytes(_P_INTERNED, field_bytes(
                    _ID_EVENT_NAMES, field_int(_IID, fn) + field_str(_NAME, self.info.functions[fn].qualname)))
            body += named
        self._bodies[key] = body
        return body, interned

    def _packet(self, t: int, interned: bytes, body: bytes, notes: bytes) -> None:
        """A TrackEvent packet into the buffer: timestamp, sequence fields, `interned`, the
        event (`body` + `notes`), each length prefixed as protobuf wants it."""
        size = len(body) + len(notes)
        stamp = varint(t)
        middle = self.seq_fields + interned + _EVENT_TAG if interned else self._middle
        length = _VARINTS[size] if size < _SMALL else varint(size)
        total = 1 + len(stamp) + len(middle) + len(length) + size
        buf = self.bytes_buf
        buf += _PACKET_TAG
        buf += _VARINTS[total] if total < _SMALL else varint(total)
        buf += _TIMESTAMP_TAG
        buf += stamp
        buf += middle
        buf += length
        buf += body
        buf += notes
        if len(buf) >= _FLUSH_BYTES:
            self.flush()

    def annotation(self, name: str, text: str | None = None, number: int | None = None) -> bytes:
        value = field_str(_DA_STRING, text) if text is not None else field_int(_DA_INT, number or 0)
        return field_bytes(_TE_ANNOTATIONS, field_int(_DA_NAME_IID, _A[name]) + value)

    def _text_note(self, name: str, sid: int) -> bytes:
        """`annotation(name, text of sid)`, kept for the next use of the same text (texts repeat:
        the same arguments, the same result); the cache is bounded."""
        notes = self._notes[name]
        note = notes.get(sid)
        if note is None:
            if len(notes) >= _NOTES_KEPT:
                notes.clear()
            data = self.texts.get(sid).encode("utf-8", "surrogatepass")  # type: ignore[union-attr]
            inner = _TEXT_NOTES[name] + varint(len(data)) + data
            note = notes[sid] = _NOTE_TAG + varint(len(inner)) + inner
        return note

    def take_all(self, batches: Iterable[list[Event]]) -> None:
        """`take` of each event (`timeline.event_batches`), with the commonest paths -- a call's
        start and end, a run's pause -- inline and their packets made here (`_packet`'s bytes):
        an export writes one to three packets per call, and a Python call for each field of
        each packet was most of the export's time. Varints as `varint` does, inline for the
        values below 2^28 (ids) and 2^42 (times)."""
        bodies, make_body, text_note = self._bodies, self._body, self._text_note
        shift, process, functions, tasks = self.shift, self.process, self.info.functions, self.tasks
        varints, continued, low, middle, small, medium, large = (
            _VARINTS, _CONTINUED, _LOW14, self._middle, _SMALL, _MEDIUM, _LARGE)
        lane = process << 40 | 1000  # (`_thread_uuid`: lane + thread)
        buf = self.bytes_buf
        for batch in batches:
            for ev in batch:
                kind, t, cid, thread, fn, text, how, frame, task = ev
                if kind == "start":
                    key = (_BEGIN, lane + thread, fn)
                    vc = (varints[cid] if cid < small else continued[cid & low] + varints[cid >> 14]
                          if cid < medium else varint(cid))
                    notes = _CALL_NOTE_TAG + varints[_CALL_NOTE_SIZE + len(vc)] + _CALL_NOTE + vc
                    if text:
                        notes += text_note("args", text)
                elif kind == "end":
                    notes = b""
                    if text and (how == _RETURN or how == _RAISE):  # (timeline: END_RAISE_HERE is END_RAISE)
                        notes = text_note("result" if how == _RETURN else "exception", text)
                    if tasks:
                        task = tasks.pop(cid, None)
                        if task is not None:
                            if frame:
                                self.event(t, lane + thread, _END, fn, notes)
                            self.event(t, _task_uuid(task, process), _END, fn, notes)
                            continue
                    if not frame:
                        continue
                    key = (_END, lane + thread, fn)
                elif kind == "pause":
                    key = (_END, lane + thread, fn)
                    notes = b""
                else:
                    self.take(ev)
                    continue
                # the packet (as `_packet`)
                body = bodies.get(key)
                here = middle
                if body is None:
                    body, interned = make_body(key)
                    if interned:
                        here = self.seq_fields + interned + _EVENT_TAG
                t += shift
                if t < small:
                    stamp = varints[t] if t > 0 else varints[0]
                elif t < medium:
                    stamp = continued[t & low] + varints[t >> 14]
                elif t < large:
                    stamp = continued[t & low] + continued[(t >> 14) & low] + varints[t >> 28]
                else:
                    stamp = varint(t)
                size = len(body) + len(notes)
                total = 1 + len(stamp) + len(here) + size + (1 if size < 128 else len(varint(size)))
                buf += _PACKET_TAG
                buf += varints[total] if total < small else varint(total)
                buf += _TIMESTAMP_TAG
                buf += stamp
                buf += here
                buf += varints[size] if size < small else varint(size)
                buf += body
                buf += notes
                if kind == "start" and task and functions[fn].kind in _RUNS:  # (`_task_begin`)
                    tasks[cid] = task
                    self.event(ev.t, _task_uuid(task, process), _BEGIN, fn)
            if len(buf) >= _FLUSH_BYTES:
                self.flush()

    def take(self, ev: Event) -> None:
        track = _thread_uuid(ev.thread, self.process)
        if ev.kind == "start":
            notes = self.annotation("call", number=ev.call)
            if ev.text:
                notes += self._text_note("args", ev.text)
            self.event(ev.t, track, _BEGIN, ev.fn, notes)
            self._task_begin(ev)
        elif ev.kind == "resume":
            self.event(ev.t, track, _BEGIN, ev.fn)
        elif ev.kind == "pause":
            self.event(ev.t, track, _END, ev.fn)
        elif ev.kind == "end":
            notes = b""
            if ev.text and ev.how in (F.END_RETURN, F.END_RAISE):  # (timeline: END_RAISE_HERE is END_RAISE)
                notes = self._text_note("result" if ev.how == F.END_RETURN else "exception", ev.text)
            if ev.frame:
                self.event(ev.t, track, _END, ev.fn, notes)
            task = self.tasks.pop(ev.call, None)
            if task is not None:
                self.event(ev.t, _task_uuid(task, self.process), _END, ev.fn, notes)
        else:
            notes = self._text_note("text", ev.text) if ev.text else b""
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
        w.take_all(event_batches(info))
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
        batches = event_batches(checked.info, records=checked.records(ROWS, w.texts))

        def released() -> Iterator[list[Event]]:
            """The batches, the held packets let through once what they depend on is checked
            (a batch is made after the records it needs are read, before the next ones)."""
            nonlocal held
            for batch in batches:
                if held is not None and batch and checked.checked >= until:
                    w.flush()
                    held.release()
                    held = None
                yield batch

        w.take_all(batches if held is None else released())
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
