"""`flowtrace print` without loading the session: the text tree written while the file is read.

The lines are the ones `printing.format_tree` gives for the same session (same shapes, same
colours); only the way there differs. Calls arrive in id (start) order, the tree is printed in
tree order, and the two differ in two ways this module takes care of:

- a generator or coroutine resumed later gets children after calls that started after it (its
  later siblings must wait until it has ended), and a call's end is known only when its EXIT row
  arrives. So each call waits as a small node until its line is decided, and lines go out as
  soon as everything before them is known (`_Section.flush`): a call's opening line when its
  first child starts, a leaf line or a closing line when it has ended.
- threads are printed one after the other although their calls interleave: the thread whose
  root comes first writes straight to the output, the others to temporary files that are
  copied out at the end (disk, not memory, holds what has to wait).

With `--max-depth N` a call at depth N is a node, its descendants only a count (`[+K calls]`):
nothing below the printed depth is kept. Memory: the calls still running, plus the calls
waiting behind a generator or coroutine that has not finished, plus one chunk.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import IO

from .ftr import decode as D
from .ftr import format as F
from .ftr.scan import SessionInfo, Texts, chunks
from .printing import Painter, body_title, call_label, call_outcome

_SPILL_LINES = 4096  # lines a section gathers before one write


class _Node:
    """A call whose line(s) are not all written yet. A node at the cut depth also counts the
    calls below it (`count`) and how many of those are still running (`open_desc`)."""

    __slots__ = ("id", "fn", "args", "task_name", "partial", "t0", "depth", "section", "task",
                 "kids", "head", "ended", "how", "t1", "val", "count", "open_desc")

    def __init__(self, cid: int, fn: int, args: int, task: int, task_name: str | None, partial: bool,
                 t0: int, depth: int, section: "_Section") -> None:
        self.id = cid
        self.fn = fn
        self.args = args
        self.task = task
        self.task_name = task_name  # set only when this call starts a task (shown as {Task-2})
        self.partial = partial
        self.t0 = t0
        self.depth = depth
        self.section = section
        self.kids: list[_Node | None] | None = None  # children not yet written, from `head` on
        self.head = 0
        self.ended = False
        self.how = F.END_UNFINISHED
        self.t1 = 0
        self.val = 0
        self.count = 0
        self.open_desc = 0


class _Lines:
    """Turns nodes into text lines (the `printing` shapes)."""

    def __init__(self, info: SessionInfo, texts: Texts, color: bool, show_time: bool, cwd: str | None) -> None:
        self.paint = Painter(color)
        self.texts = texts
        self.show_time = show_time
        self.cwd = cwd
        self.functions = info.functions
        self._kinds: dict[int, tuple[str, str | None]] = {}
        self.arrow_in = self.paint("arrow", "→")
        self.arrow_out = self.paint("arrow", "←")

    def _kind(self, fn: int) -> tuple[str, str | None]:
        """(kind as `printing` names it, the whole label of a class body or module code)."""
        known = self._kinds.get(fn)
        if known is None:
            f = self.functions[fn]
            kind = "call" if f.kind == "function" else f.kind
            title = body_title(kind, f.qualname, f.file, self.cwd)
            known = self._kinds[fn] = (kind, self.paint("name", title) if title is not None else None)
        return known

    def label(self, n: _Node) -> str:
        kind, body = self._kind(n.fn)
        if body is not None:
            return body
        f = self.functions[n.fn]
        return call_label(self.paint, kind, f.qualname, f.file, self.texts.get(n.args), n.partial, n.task_name,
                          True, self.cwd)

    def outcome(self, n: _Node) -> str:
        how = n.how
        if how == F.END_RETURN:
            return call_outcome(self.paint, self._kind(n.fn)[0], "return", (n.t1 - n.t0) / 1e9,
                                self.texts.get(n.val), None, self.show_time)
        if how in F.RAISED:
            return call_outcome(self.paint, self._kind(n.fn)[0], "raise", (n.t1 - n.t0) / 1e9, None,
                                self.texts.get(n.val), self.show_time)
        return call_outcome(self.paint, self._kind(n.fn)[0], "unfinished", None, None, None, self.show_time)


class _Section:
    """The lines of one thread (or of everything under `--thread`), in tree order."""

    def __init__(self, lines: _Lines, out: IO[str], header: str | None, cut: int | None) -> None:
        self.lines = lines
        self.out = out
        self.cut = cut  # the depth whose calls count their descendants instead of showing them
        self.top = _Node(0, 0, 0, 0, None, False, 0, -1, self)  # holds the roots; never ends
        self.path: list[_Node] = [self.top]  # opened calls, from the top down to the newest
        self.pending: list[str] = [header] if header is not None else []

    def flush(self) -> None:
        """Write every line that is decided now (see the module docstring)."""
        path, lines, write, cut = self.path, self.lines, self.pending.append, self.cut  # (write_out
        # empties `pending` in place, so `write` stays valid)
        while True:
            top = path[-1]
            kids = top.kids
            if kids is not None and top.head < len(kids):
                node = kids[top.head]
                assert node is not None
                pad = "  " * node.depth
                if node.depth == cut:
                    if not node.ended or node.open_desc:
                        break
                    line = f"{pad}{lines.arrow_in} {lines.label(node)}{lines.outcome(node)}"
                    if node.count:
                        line += " " + lines.paint("note", f"[+{node.count} calls]")
                    write(line)
                elif node.kids:
                    write(f"{pad}{lines.arrow_in} {lines.label(node)}")
                    path.append(node)
                elif node.ended:
                    write(f"{pad}{lines.arrow_in} {lines.label(node)}{lines.outcome(node)}")
                else:
                    break
                _advance(top)
                if len(self.pending) >= _SPILL_LINES:
                    self.write_out()
                continue
            if top is self.top or not top.ended:
                break
            write(f"{'  ' * top.depth}{lines.arrow_out} {lines.label(top)}{lines.outcome(top)}")
            path.pop()
            if len(self.pending) >= _SPILL_LINES:
                self.write_out()

    def write_out(self) -> None:
        if self.pending:
            self.out.write("\n".join(self.pending) + "\n")
            self.pending.clear()


def _advance(parent: _Node) -> None:
    """The first waiting child of `parent` is written: drop it (and, now and then, the
    written part of the list, so a call with a million children does not keep them)."""
    kids = parent.kids
    assert kids is not None
    kids[parent.head] = None
    parent.head += 1
    if parent.head == len(kids):
        kids.clear()
        parent.head = 0
    elif parent.head >= 1024 and parent.head * 2 >= len(kids):
        del kids[: parent.head]
        parent.head = 0


class TreePrinter:
    """Feeds the CALL and EXIT rows of a pass to one `_Section` per thread."""

    def __init__(self, info: SessionInfo, out: IO[str], texts: Texts, *, color: bool, max_depth: int | None,
                 thread: int | None, cwd: str | None) -> None:
        self.info = info
        self.out = out
        self.lines = _Lines(info, texts, color, info.any_finished, cwd)
        self.cut = max_depth
        self.thread = thread
        self.many = thread is None and len(info.root_threads) > 1
        self.sections: dict[int, _Section] = {}
        self.order: list[_Section] = []
        self.open: dict[int, _Node] = {}  # running calls: their node, or the cut node above them
        self.dirty: set[_Section] = set()

    def _section(self, thread: int) -> _Section:
        sec = self.sections.get(thread)
        if sec is None:
            header = None
            if self.many:
                t = self.info.threads.get(thread)
                header = self.lines.paint("thread", f"── thread {(t.name if t else None) or thread} ──")
            out = self.out if not self.order else tempfile.TemporaryFile(
                "w+", encoding="utf-8", errors="surrogatepass")
            sec = self.sections[thread] = _Section(self.lines, out, header, self.cut)
            self.order.append(sec)
        return sec

    def calls(self, rows: D.CallRows) -> None:
        """One CALL chunk. A call below the printed depth costs two dict operations (here and
        at its end); the columns only a printed call needs are decoded only when one comes."""
        base = rows.base
        open_, cut, only, dirty = self.open, self.cut, self.thread, self.dirty
        rest: list[list[int]] | None = None
        for cid, p, th in zip(range(base, base + rows.rows), rows.parent.values(), rows.thread.values()):
            if only is not None and th != only:
                continue
            up = open_.get(p) if p else None
            if up is not None and cut is not None and up.depth >= cut:  # below the printed depth
                up.count += 1
                up.open_desc += 1
                open_[cid] = up
                continue
            if rest is None:
                rest = [col.values() for col in (rows.function, rows.t0, rows.args, rows.task, rows.flag)]
            i = cid - base
            node = self._node(up, cid, th, *(col[i] for col in rest))
            open_[cid] = node
            dirty.add(node.section)

    def _node(self, up: _Node | None, cid: int, thread: int, fn: int, t0: int, args: int, task: int,
              flag: int) -> _Node:
        """A printed call's node, added under its parent (or as a root of its thread)."""
        starts_task = task and (up is None or up.task != task)
        task_name = self.info.tasks[task].name if starts_task and task in self.info.tasks else None
        if up is None:
            up = self._section(thread).top
        node = _Node(cid, fn, args, task, task_name, bool(flag & F.CALL_PARTIAL), t0, up.depth + 1, up.section)
        if up.kids is None:
            up.kids = []
        up.kids.append(node)
        return node

    def exits(self, rows: D.ExitRows) -> None:
        """One EXIT chunk."""
        pop, dirty = self.open.pop, self.dirty
        for cid, t1, how, val in zip(rows.call.values(), rows.t1.values(), rows.how.values(), rows.value.values()):
            node = pop(cid, None)
            if node is None:
                continue  # a call of another thread (under --thread)
            if node.id != cid:  # a call below the cut depth ended
                node.open_desc -= 1
                if node.ended and not node.open_desc:
                    dirty.add(node.section)
                continue
            node.ended, node.how, node.t1, node.val = True, how, t1, val
            dirty.add(node.section)

    def step(self) -> None:
        """Write what the rows so far decided."""
        for sec in self.dirty:
            sec.flush()
        self.dirty.clear()

    def finish(self) -> None:
        """The file is read: calls still running are unfinished; write everything out."""
        for cid, node in self.open.items():
            if node.id != cid:
                node.open_desc -= 1
            else:
                node.ended = True
        self.open.clear()
        for sec in self.order:
            sec.flush()
            sec.write_out()
        for sec in self.order[1:]:
            sec.out.seek(0)
            shutil.copyfileobj(sec.out, self.out)
            sec.out.close()


def print_session(info: SessionInfo, out: IO[str], *, color: bool, max_depth: int | None,
                  thread: int | None, cwd: str | None) -> None:
    """Print the call tree of a surveyed session (one more pass over the file)."""
    texts = Texts(info)
    printer = TreePrinter(info, out, texts, color=color, max_depth=max_depth, thread=thread, cwd=cwd)
    try:
        for rows in chunks(info, {F.CALL, F.EXIT}, texts):
            if isinstance(rows, D.CallRows):
                printer.calls(rows)
            else:
                printer.exits(rows)
                printer.step()
        printer.step()
        printer.finish()
    finally:
        texts.close()
        for sec in printer.order[1:]:
            sec.out.close()
