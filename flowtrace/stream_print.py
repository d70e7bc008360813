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
from typing import IO, Any, Callable, Iterable

from .ftr import decode as D
from .ftr import format as F
from .ftr.scan import CheckedPass, Outlook, SessionInfo, Texts, chunks, surveyed
from .held import Held
from .printing import BODY_KINDS, Painter, body_title, call_label, call_outcome, calls_below

_SPILL_LINES = 4096  # lines a section gathers before one write


class _Function:
    """What the lines of one function's calls repeat: its kind as `printing` names it, the
    whole label of a class body or module code (`body`), the painted name with its opening
    parenthesis, and whether a return shows the time and result (`timed_result`)."""

    __slots__ = ("id", "kind", "body", "name_open", "timed_result")

    def __init__(self, fid: int, kind: str, body: str | None, name_open: str, timed_result: bool) -> None:
        self.id = fid
        self.kind = kind
        self.body = body
        self.name_open = name_open
        self.timed_result = timed_result


class _Node:
    """A call whose line(s) are not all written yet. Its label is made when it starts and its
    outcome (`tail`) when it ends, while their texts are in the STRS chunks just read. A node
    at the cut depth also counts the calls below it (`count`) and how many of those are still
    running (`open_desc`)."""

    __slots__ = ("id", "fn", "label", "task", "t0", "depth", "section", "kids", "head", "tail", "count",
                 "open_desc")

    def __init__(self, cid: int, fn: _Function, label: str, task: int, t0: int, depth: int,
                 section: "_Section") -> None:
        self.id = cid
        self.fn = fn
        self.label = label
        self.task = task
        self.t0 = t0
        self.depth = depth
        self.section = section
        self.kids: list[_Node] | None = None  # children not yet written, from `head` on (None: no child so far)
        self.head = 0
        self.tail: str | None = None  # what follows the label once the call has ended
        self.count = 0
        self.open_desc = 0


class _Lines:
    """The pieces of the `printing` shapes (`call_label`, `call_outcome`), with what repeats
    made once: each function's pieces, each depth's indent, each duration's text. The common
    cases (a call with its arguments, a call that returned) are put together by `TreePrinter`
    from these pieces; every other case goes through `printing` itself (`label`, `tail`)."""

    def __init__(self, info: SessionInfo, texts: Texts, color: bool, cwd: str | None) -> None:
        self.paint = paint = Painter(color)
        self.color = color
        self.texts = texts
        # `printing` shows durations when some call of the tree ended (returned or raised): only
        # such an end has one to show, so showing them always prints the same (and needs no
        # look at the whole file before the first line)
        self.show_time = True
        self.cwd = cwd
        self.info = info
        self.functions: dict[int, _Function] = {}  # by function id, made at first use
        self.opens: list[str] = []  # by depth: the indent and arrow before an opening or leaf line
        self.closes: list[str] = []  # by depth: the same before a closing line
        self._arrow_in = paint("arrow", "→")
        self._arrow_out = paint("arrow", "←")
        self.result_sep = " " + self._arrow_in + " "  # between the time and the result
        self.times: dict[int, str] = {}  # microseconds -> painted ` [0.000012s]` (see `duration`)

    def function(self, fid: int) -> _Function:
        known = self.functions.get(fid)
        if known is None:
            f = self.info.functions[fid]
            kind = "call" if f.kind == "function" else f.kind
            title = body_title(kind, f.qualname, f.file, self.cwd)
            known = self.functions[fid] = _Function(
                fid, kind, self.paint("name", title) if title is not None else None,
                self.paint("name", f.qualname) + "(", self.show_time and kind not in BODY_KINDS)
        return known

    def label(self, fn: _Function, args: str | None, partial: bool, task_name: str | None) -> str:
        """Any call's label (`printing.call_label`)."""
        f = self.info.functions[fn.id]
        return call_label(self.paint, fn.kind, f.qualname, f.file, args, partial, task_name, True, self.cwd)

    def tail(self, fn: _Function, how: int, t0: int, t1: int, val: int) -> str:
        """What follows the label of any call that ended `how` (F.END_*): `printing.call_outcome`."""
        if how == F.END_RETURN:
            return call_outcome(self.paint, fn.kind, "return", (t1 - t0) / 1e9, self.texts.get(val), None,
                                self.show_time)
        if how in F.RAISED:
            return call_outcome(self.paint, fn.kind, "raise", (t1 - t0) / 1e9, None, self.texts.get(val),
                                self.show_time)
        return self.unfinished(fn)

    def unfinished(self, fn: _Function) -> str:
        return call_outcome(self.paint, fn.kind, "unfinished", None, None, None, self.show_time)

    def duration(self, ns: int) -> str:
        """` [0.000012s]` (painted) as `call_outcome` writes `(t1 - t0) / 1e9`, kept in `times`
        by the microsecond it rounds to, `(ns + 500) // 1000`. Below 10^15 ns a float's error
        (< 0.2 ns) cannot carry a value across a rounding boundary unless it sits on one (a
        remainder of exactly 500 ns), so those, and anything unusual, are not kept."""
        text = " " + self.paint("time", f"[{ns / 1e9:.6f}s]")
        if 0 <= ns < 10**15 and ns % 1000 != 500:
            if len(self.times) >= 1 << 16:
                self.times.clear()  # bounded; common durations come back at their next use
            self.times[(ns + 500) // 1000] = text
        return text

    def grow(self, depth: int) -> None:
        """Make the indents of `depth` (and all depths before it)."""
        while len(self.opens) <= depth:
            pad = "  " * len(self.opens)
            self.opens.append(f"{pad}{self._arrow_in} ")
            self.closes.append(f"{pad}{self._arrow_out} ")


class _Section:
    """The lines of one thread (or of everything under `--thread`), in tree order."""

    def __init__(self, lines: _Lines, out: IO[str], header: str | None) -> None:
        self.lines = lines
        self.out = out
        self.top = _Node(0, 0, "", 0, 0, -1, self)  # holds the roots; never ends
        self.path: list[_Node] = [self.top]  # opened calls, from the top down to the newest
        self.pending: list[str] = [header] if header is not None else []

    def flush(self) -> None:
        """Write every line that is decided now (see the module docstring): a child that had
        children of its own opens (and is gone down into), one that ended is a line; one still
        running (or whose counted descendants are) stops the section."""
        path, pending, top_of_all = self.path, self.pending, self.top
        write = pending.append  # (write_out empties `pending` in place: `write` stays valid)
        opens, closes, paint = self.lines.opens, self.lines.closes, self.lines.paint
        while True:
            top = path[-1]
            kids = top.kids
            if kids:
                i, n = top.head, len(kids)
                while i < n:
                    node = kids[i]
                    if node.kids is not None:
                        write(opens[node.depth] + node.label)
                        path.append(node)
                        kids[i] = None  # type: ignore[call-overload]  (written: not kept)
                        i += 1
                        break
                    if node.tail is None or node.open_desc:
                        break
                    if node.count:
                        write(f"{opens[node.depth]}{node.label}{node.tail} {paint('note', calls_below(node.count))}")
                    else:
                        write(opens[node.depth] + node.label + node.tail)
                    kids[i] = None  # type: ignore[call-overload]
                    i += 1
                    if len(pending) >= _SPILL_LINES:
                        self.write_out()
                _written(top, i)
                if path[-1] is not top:
                    continue  # gone down into a child
                if i < n:
                    break  # a child still waits
            if top is top_of_all or top.tail is None:  # every child is written: the closing line
                break
            write(closes[top.depth] + top.label + top.tail)
            path.pop()
            if len(pending) >= _SPILL_LINES:
                self.write_out()
        self.write_out()  # (not kept for later: with many threads, each section's lines add up)

    def write_out(self) -> None:
        if self.pending:
            self.out.write("\n".join(self.pending) + "\n")
            self.pending.clear()


def _written(parent: _Node, upto: int) -> None:
    """`parent`'s children before `upto` are written: drop them (now and then only, so a call
    with a million children does not keep them, nor move the rest at every line)."""
    kids = parent.kids
    assert kids is not None
    if upto == len(kids):
        kids.clear()
        upto = 0
    elif upto >= 1024 and upto * 2 >= len(kids):
        del kids[:upto]
        upto = 0
    parent.head = upto


class TreePrinter:
    """Feeds the CALL and EXIT rows of a pass to one `_Section` per thread."""

    def __init__(self, info: SessionInfo, out: IO[str], texts: Texts, *, color: bool, max_depth: int | None,
                 thread: int | None, cwd: str | None) -> None:
        self.info = info
        self.out = out
        self.lines = _Lines(info, texts, color, cwd)
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
            sec = self.sections[thread] = _Section(self.lines, out, header)
            self.order.append(sec)
        return sec

    def calls(self, rows: D.CallRows) -> None:
        """One CALL chunk. A call below the printed depth costs two dict operations (here and
        at its end); the columns only a printed call needs are decoded only when one comes.
        A printed call's label is made here (`_Lines.label` for the uncommon ones)."""
        base = rows.base
        open_, cut, only, dirty, lines = self.open, self.cut, self.thread, self.dirty, self.lines
        functions, text, color, paint, opens = lines.functions, lines.texts.get, lines.color, lines.paint, lines.opens
        fns: list[int] = []
        for cid, p, th in zip(range(base, base + rows.rows), rows.parent.values(), rows.thread.values()):
            if only is not None and th != only:
                continue
            up = open_.get(p) if p else None
            if up is not None and cut is not None and up.depth >= cut:  # below the printed depth
                up.count += 1
                up.open_desc += 1
                open_[cid] = up
                continue
            if not fns:
                fns, t0s, args, tasks, flags = (col.values() for col in (rows.function, rows.t0, rows.args, rows.task,
                                                                          rows.flag))
            i = cid - base
            fn = functions.get(fns[i]) or lines.function(fns[i])
            task = tasks[i]
            if up is None:
                up = self._section(th).top
            if fn.body is not None:
                label = fn.body
            else:
                arg = text(args[i])
                if arg is None or flags[i] & F.CALL_PARTIAL or (task and up.task != task):
                    label = self._label(fn, arg, bool(flags[i] & F.CALL_PARTIAL), task, up)
                else:
                    label = fn.name_open + (paint("args", arg) if color else arg) + ")"
            depth = up.depth + 1
            if depth >= len(opens):
                lines.grow(depth)
            node = open_[cid] = _Node(cid, fn, label, task, t0s[i], depth, up.section)
            if up.kids is None:
                up.kids = []
            up.kids.append(node)
            dirty.add(up.section)

    def _label(self, fn: _Function, arg: str | None, partial: bool, task: int, up: _Node) -> str:
        """The label of a call without its arguments, or that starts an asyncio task."""
        task_name = None  # given only when this call starts a task (shown as {Task-2})
        if task and up.task != task and task in self.info.tasks:
            task_name = self.info.tasks[task].name
        return self.lines.label(fn, arg, partial, task_name)

    def exits(self, rows: D.ExitRows) -> None:
        """One EXIT chunk. A call that returned gets its outcome here (`_Lines.tail` for the
        other ends)."""
        pop, dirty, lines = self.open.pop, self.dirty, self.lines
        text, times, color, paint, sep = lines.texts.get, lines.times, lines.color, lines.paint, lines.result_sep
        for cid, t1, how, val in zip(rows.call.values(), rows.t1.values(), rows.how.values(), rows.value.values()):
            node = pop(cid, None)
            if node is None:
                continue  # a call of another thread (under --thread)
            if node.id != cid:  # a call below the cut depth ended
                node.open_desc -= 1
                if node.tail is not None and not node.open_desc:
                    dirty.add(node.section)
                continue
            if how == F.END_RETURN and node.fn.timed_result:
                ns = t1 - node.t0
                micro, rest = divmod(ns + 500, 1000)
                took = times.get(micro) if rest and ns >= 0 else None  # (see `duration`: rest 0 is ns
                # ending in 500; a negative ns would share micro 0 with 0..499 but print "-0.000000")
                if took is None:
                    took = lines.duration(ns)
                result = text(val)
                node.tail = took if result is None else took + sep + (paint("result", result) if color else result)
            else:
                node.tail = lines.tail(node.fn, how, node.t0, t1, val)
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
                node.tail = self.lines.unfinished(node.fn)
        self.open.clear()
        for sec in self.order:
            sec.flush()
            sec.write_out()
        for sec in self.order[1:]:
            sec.out.seek(0)
            shutil.copyfileobj(sec.out, self.out)
            sec.out.close()

    def close(self) -> None:
        """Drop the temporary files of the sections not copied out."""
        for sec in self.order[1:]:
            sec.out.close()


def print_session(info: SessionInfo | Outlook, out: IO[str], *, color: bool, max_depth: int | None,
                  thread: int | None, cwd: str | None) -> SessionInfo:
    """Print the call tree of a session, surveyed (`scan.survey`: one more pass over the file)
    or glanced (`scan.glance`: one pass that checks the file as it prints, so the first lines
    come before the file is read). Returns the session's survey (for its notes)."""
    if isinstance(info, Outlook):
        look = info
        if look.streamable and thread is None:
            checked = _print_checked(look, out, color=color, max_depth=max_depth, cwd=cwd)
            if checked is not None:
                return checked
        info = surveyed(look)  # (needs a survey first; or a check failed early: the pass made it)
    texts = Texts(info)
    printer = TreePrinter(info, out, texts, color=color, max_depth=max_depth, thread=thread, cwd=cwd)
    try:
        _feed(printer, chunks(info, {F.CALL, F.EXIT}, texts))
        printer.finish()
    finally:
        texts.close()
        printer.close()
    return info


def _feed(printer: "TreePrinter", records: Iterable[Any], on_rows: Callable[[], None] | None = None) -> None:
    """The CALL and EXIT records of a pass to `printer` (`on_rows` after each)."""
    for rows in records:
        if on_rows is not None:
            on_rows()
        if isinstance(rows, D.CallRows):
            printer.calls(rows)
        else:
            printer.exits(rows)
            printer.step()
    printer.step()


def _print_checked(look: Outlook, out: IO[str], *, color: bool, max_depth: int | None,
                   cwd: str | None) -> SessionInfo | None:
    """Print in the pass that checks the file (`CheckedPass`); the printed text depends on
    `look.info` (names, tasks), which is the survey's once the pass has checked the chunk at
    `look.settled`: until then the lines wait in a temporary file (`Held`). None when a check
    fails before that (nothing is printed; the caller prints from a survey instead). Whether
    threads get headings is the walk's finding (`Outlook.settled` says why)."""
    checked = CheckedPass(look)
    held = Held(out) if look.settled else None
    texts = Texts(checked.info)
    printer = TreePrinter(look.info, held or out, texts, color=color, max_depth=max_depth, thread=None, cwd=cwd)

    def release() -> None:
        nonlocal held
        if held is not None and checked.checked >= look.settled:
            held.release()
            held = None

    try:
        _feed(printer, checked.records({F.CALL, F.EXIT}, texts), release)
        if checked.failed_at is not None and checked.failed_at <= look.settled:
            return None
        release()
        printer.finish()
    finally:
        texts.close()
        printer.close()
        if held is not None:
            held.close()
    return checked.info

