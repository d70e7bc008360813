"""The diff view's two sessions read and merged by name, each in a process of its own.

Reading a session and merging its calls by path is numpy work in many small steps (per chunk,
per depth level) that each take and drop the GIL: two threads in one process ran slower than
one after the other (measured: 2 x 5 M calls, 3.4-4.9 s in threads vs 3.2-3.7 s in turn). So a
big session is read by a child Python (`child_main`) -- the same `read_side` as in-process --
and handed back without a copy: the child writes its numpy columns
into an anonymous memory file (memfd) the parent created and passed down, pickles the rest
(functions, threads, texts' offsets, meta) to its stdout, and the parent maps the memory file
and unpickles with the arrays as views of the map. The two children run at the same time on
two cores; the parent's UI thread stays free.

Small sessions, sessions in memory (tests), systems without `memfd_create` and a machine
with no idle core are read in this process, one after the other: the result is the same
`SideRead`. Either way the texts (STRS chunks, most of a session with arguments) stay
compressed until asked for.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from flowtrace.ftr import format as F

from .diff_tree import exception_types, merged_by_name, name_keys
from .loader import PackedStrings, TraceData
from .merged import Cancelled, MergeCancelled, MergedIndex
from .source import TraceSource

# A session file at least this big is read in a child process (below it, starting a Python
# with numpy costs more than reading: ~1 M calls of a synthetic session take 5 MB).
PROCESS_MIN_BYTES = 4 << 20
_ALIGN = 64  # arrays in the memory file start on cache lines
_MIN_SHARED = 4096  # arrays smaller than this many bytes are pickled inline
_POLL_S = 0.02  # how often the parent looks whether a child is done or it was cancelled
_LOCK_TYPE = type(threading.Lock())
# what a child runs: argv is this package's root, the session's path, the memory file's fd
_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); from flowtrace_tui.model.diff_sides import child_main; "
          "sys.exit(child_main(sys.argv[2:], sys.stdout.buffer.write))")


@dataclass
class SideRead:
    """One session read as far as it goes, its calls merged by name (threads merged), and per
    merged node the exception types its calls raised (`diff_tree.exception_types`)."""

    data: TraceData
    merged: MergedIndex
    types: dict[int, frozenset[str]]


def read_all(source: TraceSource, cancelled: Cancelled = lambda: False) -> TraceSource:
    """Read a session as far as it goes (a live or cut file: what is there); MergeCancelled
    when `cancelled()` says so between steps (the app quits while loading)."""
    while not source.done and source.step().more:
        if cancelled():
            raise MergeCancelled
    return source


def read_side(source: TraceSource, cancelled: Cancelled = lambda: False) -> SideRead:
    """Read `source` and merge its calls by path of names (`diff_rules.function_key`): the
    merged tree does not depend on how names are numbered, so each session is merged with its
    own numbering and the two are matched by name later (`diff_tree`). Texts stay compressed
    until asked for (they take most of a session with arguments; few are shown, and the
    outcomes are compared after the first screen)."""
    source.reader.keep_compressed = frozenset({F.STRS})
    data = read_all(source, cancelled).data
    _, keys = name_keys([data])
    merged = merged_by_name(data, keys[0], cancelled)
    return SideRead(data, merged, exception_types(merged))


def read_sides(sources: list[TraceSource], cancelled: Cancelled = lambda: False,
               processes: bool | None = None) -> list[SideRead]:
    """Every source read and merged (`read_side`): in child processes at the same time when
    `processes` (None: when a session file is big, the system can, and a core is free), else
    here in turn."""
    if processes is None:
        processes = (can_use_processes(sources) and spare_core()
                     and any(s.current_size() >= PROCESS_MIN_BYTES for s in sources))
    if not processes:
        return [read_side(s, cancelled) for s in sources]
    children: list[_Child] = []
    try:
        children.extend(_Child(s.path) for s in sources)
        return [child.result(cancelled) for child in children]
    finally:
        for child in children:
            child.stop()


def can_use_processes(sources: list[TraceSource]) -> bool:
    """Every source is a file (not a session in memory) and memory files can be passed down."""
    return hasattr(os, "memfd_create") and all(s.reader.mtime_ns() is not None for s in sources)


def spare_core() -> bool:
    """A core is idle (the 1-minute load average leaves one): children cost more CPU in all
    (each starts a Python, their columns are copied once), which pays only when they run at
    the same time. On a busy machine they share the CPU this process would have had (measured,
    2 cores at load 6: 12-16 s in children vs 7 s here for 2 x 5 M calls)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not known here: read in this process, which is never the worse road by much
        return False
    return cores >= 2 and load < cores - 0.5


class SideReadError(Exception):
    """A child could not read its session (the message says why, in one line)."""


class _Child:
    """One session read by a child Python running `child_main` (started at once)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.memfd_create("flowtrace-diff-side", os.MFD_CLOEXEC)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:  # -P: not the current directory first (a user's numpy.py), this package's root instead
            self.proc = subprocess.Popen([sys.executable, "-P", "-c", _CHILD, root, path, str(self.fd)],
                                         pass_fds=(self.fd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
        except OSError:
            os.close(self.fd)
            raise
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        # the pipes are drained by threads: a child blocked on a full pipe would never end
        self._readers = [threading.Thread(target=_drain, args=(p, into), daemon=True)
                         for p, into in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))]
        for t in self._readers:
            t.start()

    def result(self, cancelled: Cancelled) -> SideRead:
        """Wait for the child (MergeCancelled when `cancelled()` says so), then map its arrays."""
        while self.proc.poll() is None:
            if cancelled():
                raise MergeCancelled
            time.sleep(_POLL_S)
        for t in self._readers:
            t.join()
        out, err = b"".join(self._out), b"".join(self._err)
        if self.proc.returncode != 0 or not out:
            code = self.proc.returncode
            why = f"killed by signal {-code} (out of memory?)" if code < 0 else f"exit status {code}"
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"the reader process ended: {why}"]
            raise SideReadError(f"reading {os.path.basename(self.path)} failed: {last[0]}")
        size = os.fstat(self.fd).st_size
        shared = mmap.mmap(self.fd, size) if size else None
        status, value = _Unpacker(io.BytesIO(out), shared).load()
        if status != "ok":
            raise SideReadError(str(value))
        for lv in value.merged.levels:  # read-only, as TreeIndex makes them (views handed out)
            lv.flags.writeable = False
        return value

    def stop(self) -> None:
        """End the child if it still runs, and let go of the memory file (a map keeps it)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for t in self._readers:
            t.join()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _drain(pipe: Any, into: list[bytes]) -> None:
    with pipe:
        while chunk := pipe.read(1 << 16):
            into.append(chunk)


class _Packer(pickle.Pickler):
    """Pickles with every sizeable numpy array and byte view written into the memory file `fd`
    instead of the stream (the stream names where); locks travel as new locks."""

    def __init__(self, stream: io.BufferedIOBase, fd: int) -> None:
        super().__init__(stream, protocol=pickle.HIGHEST_PROTOCOL)
        self.file = os.fdopen(fd, "wb", closefd=False)
        self.at = 0

    def _put(self, buf: memoryview) -> int:
        at = -(-self.at // _ALIGN) * _ALIGN
        self.file.seek(at)
        self.file.write(buf)
        self.at = at + buf.nbytes
        return at

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray) and obj.nbytes >= _MIN_SHARED and not obj.dtype.hasobject:
            arr = np.ascontiguousarray(obj)
            return ("array", self._put(memoryview(arr).cast("B")), arr.dtype.str, arr.shape)
        if isinstance(obj, PackedStrings):  # its compressed texts, shared
            return ("packed", self._put(memoryview(obj.payload).cast("B")), len(obj.payload))
        if isinstance(obj, memoryview):  # (texts' blobs) not picklable: as bytes, big ones shared
            if obj.nbytes >= _MIN_SHARED and obj.c_contiguous:
                return ("bytes", self._put(obj.cast("B")), obj.nbytes)
            return ("small bytes", obj.tobytes())
        if isinstance(obj, _LOCK_TYPE):
            return ("lock",)
        return None


class _Unpacker(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, shared: mmap.mmap | None) -> None:
        super().__init__(stream)
        self.shared = shared

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0]
        if kind == "array":
            _, at, dtype, shape = pid
            count = int(np.prod(shape)) if shape else 1
            return np.frombuffer(self.shared, dtype=np.dtype(dtype), count=count, offset=at).reshape(shape)
        if kind == "bytes":
            _, at, nbytes = pid
            return memoryview(self.shared)[at : at + nbytes]
        if kind == "packed":
            _, at, nbytes = pid
            return PackedStrings(memoryview(self.shared)[at : at + nbytes])
        if kind == "small bytes":
            return memoryview(pid[1])
        if kind == "lock":
            return threading.Lock()
        raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")


def child_main(argv: list[str], write: Callable[[bytes], Any]) -> int:
    """The child's work: read and merge the session at argv[0], arrays into fd argv[1], the
    pickled ("ok", SideRead) or ("error", message) written with `write`."""
    path, fd = argv[0], int(argv[1])
    try:
        source = TraceSource.open(path)
        side = read_side(source)
        source.close()
        side.data.compact()
        result: tuple[str, Any] = ("ok", side)
    except F.FormatError as exc:
        result = ("error", str(exc))
    except MemoryError:
        result = ("error", f"{os.path.basename(path)}: not enough memory to read it")
    stream = io.BytesIO()
    packer = _Packer(stream, fd)
    packer.dump(result)
    packer.file.flush()
    write(stream.getvalue())
    return 0

