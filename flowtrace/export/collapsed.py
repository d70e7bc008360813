"""`flowtrace export --format collapsed`: collapsed stacks for flame-graph tools
(flamegraph.pl, inferno, speedscope's import, `py-spy record -f raw`'s format).

One line per call path: the frames from the root down, separated by `;`, a space, and the
self time spent in that path in nanoseconds (`main (app.py:1);fib (app.py:10) 60`). A frame is
`qualname (file:line)`, the file relative to the recorded program's directory when inside it;
a `;` inside a name becomes `:`. When calls ran on more than one thread, each path starts with
a `thread NAME` frame; in a session of several processes, with a `pid N: python argv` frame
before that. Times are running times (flowtrace/profile.py); paths with no self time
are left out.
"""

from __future__ import annotations

from typing import IO, Any, Iterator

from ..ftr.scan import Outlook, SessionInfo
from ..printing import short_path
from ..profile import profile


def lines(session: SessionInfo | Outlook, process: str | None = None) -> Iterator[str]:
    """The collapsed lines of one process (surveyed or glanced: `profile`), one at a time: a
    test suite's paths are thousands of characters each (jinja2's 851 tests: 307 k paths, 1.2 GB
    of text) and the paths table is far smaller than their text. `process` (a session of
    several): each path starts with a frame naming its process."""
    result = profile(session, paths=True)
    info = result.session
    assert info is not None
    cwd = info.meta.get("cwd") if isinstance(info.meta.get("cwd"), str) else None
    frames = {fid: f"{f.qualname} ({short_path(f.file, cwd)}:{f.line})".replace(";", ":")
              for fid, f in info.functions.items()}
    threads = len(info.root_threads) > 1
    parent: dict[int, tuple[int, int]] = {path: key for key, path in result.paths.items()}
    for path, own in result.path_self.items():
        if not own:
            continue
        names = []
        node = path
        while node > 0:
            up, fid = parent[node]
            names.append(frames[fid])
            node = up
        if threads:  # a root path's parent is minus its thread
            t = info.threads.get(-node)
            names.append(f"thread {(t.name if t else None) or -node}".replace(";", ":"))
        if process is not None:
            names.append(process.replace(";", ":"))
        yield ";".join(reversed(names)) + f" {own}"


def write(info: SessionInfo | Outlook, out: IO[str], *, parts: list[tuple[Any, Any]] | None = None,
          **_: Any) -> None:
    """The collapsed stacks; `parts` (a session of several processes): every process's, each
    path under a frame naming its process (`pid 12: python prog.py`)."""
    for proc, part in parts or [(None, info)]:
        for line in lines(part, proc.title() if proc is not None else None):
            out.write(line + "\n")
