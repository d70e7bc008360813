"""Reading the other processes' parts of a session, beside its root file.

`flowtrace run -o trace.ftr` writes the root process into `trace.ftr` and every followed
descendant into its own part in `trace.ftr.d/` (docs/FORMAT.md, "Sessions of several
processes"). `PartReaders` finds those parts (again and again while the session is live: new
processes appear), keeps one `ChunkReader` per part and feeds what each has complete into the
session's `TraceData` under the session's ids (`PartIds`, model/parts.py). A part that cannot
be read is reported on its process; the others read on.
"""

from __future__ import annotations

import json
import os
import time

from flowtrace.ftr import format as F
from flowtrace.ftr.chunks import ChunkReader
from flowtrace.ftr.processes import part_files, parts_dir

from .loader import FeedResult, TraceData
from .parts import PartIds, ProcessRecord

RESCAN_INTERVAL_S = 0.25  # how often a live session's directory is listed for new parts
PART_READ_SIZE = 1 << 17


class _Part:
    def __init__(self, ids: PartIds, reader: ChunkReader) -> None:
        self.ids = ids
        self.reader = reader

    @property
    def done(self) -> bool:
        return self.reader.ended or self.reader.damage is not None


class PartReaders:
    """The parts of one session besides its root (see the module docstring). `root_ids` maps the
    root's ids once another part is loaded (None before: the root loads as it is)."""

    def __init__(self, root_path: str, data: TraceData, clock=time.monotonic) -> None:
        self.root_path = os.fspath(root_path)
        self.directory = parts_dir(root_path)
        self.data = data
        self.root_ids: PartIds | None = None
        self._parts: dict[str, _Part] = {}
        self._skips: set[str] = set()
        self._clock = clock
        self._scanned_at = -1e9

    @property
    def bytes_read(self) -> int:
        return sum(p.reader.offset for p in self._parts.values())

    def size(self) -> int:
        return sum(p.reader.size() or 0 for p in self._parts.values())

    def mtime_ns(self) -> int | None:
        times = [t for p in self._parts.values() if (t := p.reader.mtime_ns()) is not None]
        return max(times) if times else None

    @property
    def done(self) -> bool:
        return all(p.done for p in self._parts.values())

    def scan(self, force: bool = False) -> None:
        """Open the parts that appeared since the last look (at most every RESCAN_INTERVAL_S)."""
        now = self._clock()
        if not force and now - self._scanned_at < RESCAN_INTERVAL_S:
            return
        self._scanned_at = now
        parts, notes = part_files(self.directory)
        for name in parts:
            if name not in self._parts:
                self._open(name)
        self._notes(notes)

    def _notes(self, notes: list[str]) -> None:
        """Processes that were not followed (`<pid>.skip.json`: another Python, `-I`, …)."""
        for name in (n for n in notes if n not in self._skips):
            self._skips.add(name)
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8") as fh:
                    note = json.load(fh)
                if not isinstance(note, dict):
                    raise ValueError("not an object")
            except (OSError, ValueError) as exc:
                note = {"reason": f"unreadable note ({exc})"}
            if self.root_ids is None:
                self.root_ids = self.data.adopt_root(self.root_path)
            meta = {k: note.get(k) for k in ("pid", "ppid", "argv")}
            root_origin = self.data.meta.get("origin_ns")
            started = note.get("started_ns")
            meta["origin_ns"] = started if isinstance(started, int) else root_origin
            proc = ProcessRecord(len(self.data.processes), path, meta=meta, skipped=str(note.get("reason") or "not followed"))
            if isinstance(started, int) and isinstance(root_origin, int):
                proc.shift = started - root_origin
            self.data.processes.append(proc)

    def _open(self, name: str) -> None:
        path = os.path.join(self.directory, name)
        if self.root_ids is None:  # the first other part: the root's later ids are mapped
            self.root_ids = self.data.adopt_root(self.root_path)
        index = len(self.data.processes)
        self.data.processes.append(ProcessRecord(index, path))
        try:
            reader = ChunkReader(path, read_size=PART_READ_SIZE)
        except (OSError, F.FormatError) as exc:
            reader = ChunkReader.from_bytes(b"", path)
            reader.damage = f"cannot open: {exc}"
        self._parts[name] = _Part(PartIds(index), reader)

    def step(self) -> tuple[FeedResult, bool]:
        """Feed what every part holds complete now (one bounded read each); and whether more is
        probably waiting."""
        data = self.data
        first_new = data.calls_read + 1
        exits = marks = 0
        more = False
        for part in self._parts.values():
            if part.done:
                continue
            proc = data.processes[part.ids.process]
            chunks = []
            try:
                chunks = part.reader.poll()
                res = data.feed(chunks, part.ids, part.reader)
            except (F.FormatError, KeyError, TypeError, ValueError) as exc:
                part.reader.damage = str(exc) if not chunks else f"damaged data ({exc})"
            else:
                exits += res.exits
                marks += res.marks
            proc.damage = part.reader.damage
            size = part.reader.size() or 0
            more = more or bool(chunks) and (part.reader.pending_bytes > 0 or part.reader.offset < size - F.CHUNK_HEADER_SIZE)
        return FeedResult(first_new, data.calls_read, exits, marks), more
