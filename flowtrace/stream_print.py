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
nothing below the printed depth is kept. Memory: the calls still running, plus one chunk, plus
the calls waiting behind a generator or coroutine that has not finished -- up to HELD_NODES of
them: past that, what follows the generator's subtree is written to a temporary file
(`_Section`).
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
    """The lines of one thread (or of everything under `--thread`), in tree order.

    They are written by one cursor (`_Cursor`) or, while lines wait, by several: when more than
    `HELD_NODES` calls wait behind one that has not ended (a generator suspended while its
    caller goes on: pytest's hook wrappers span a whole run), the lines after that call's
    subtree are written by a new cursor into a temporary file, copied out once the call's
    subtree is written. Memory then holds what no cursor can write yet, not everything behind
    it (`print` of click's suite with --include '*' took 550 MB for 1.7 M calls)."""

    def __init__(self, lines: _Lines, out: IO[str], header: str | None) -> None:
        self.lines = lines
        self.out = out
        self.top = _Node(0, 0, "", 0, 0, -1, self)  # holds the roots; never ends
        first = _Cursor(self.top, [self.top], out, opened=True)
        if header is not None:
            first.pending.append(header)
        self.cursors = [first]  # in the order of their lines; the last one's root is `top`
        self.held = 0  # calls made into nodes whose lines are not all written

    def flush(self) -> None:
        """Write every line that is decided now; a cursor whose stretch is done hands its
        output over to the next one (`_merge`); one that is held up behind a call with many
        waiting behind it is split there (`_split`)."""
        cursors = self.cursors
        k = 0
        while k < len(cursors):
            cur = cursors[k]
            if cur.run(self):
                self._merge(k)
                continue
            if self.held > HELD_NODES and len(cursors) < _MAX_CURSORS:
                after = self._split(cur)
                if after is not None:
                    cursors.insert(k + 1, after)
            cur.write_out()  # (not kept for later: with many threads, each section's lines add up)
            k += 1

    def write_out(self) -> None:
        for cur in self.cursors:
            cur.write_out()

    def _merge(self, k: int) -> None:
        """Cursor k wrote all of its stretch: the next one's lines so far follow them, and it
        writes where cursor k wrote from now on."""
        done, after = self.cursors[k], self.cursors[k + 1]
        done.write_out()
        after.write_out()
        after.out.seek(0)
        shutil.copyfileobj(after.out, done.out)
        after.out.close()
        after.out = done.out
        del self.cursors[k]

    def _split(self, cur: "_Cursor") -> "_Cursor | None":
        """If calls wait behind the one `cur` stopped at, a cursor for the lines after that
        call's subtree (writing to a temporary file); `cur` keeps only that subtree. None when
        nothing waits behind it."""
        path = cur.path
        if not path:
            return None  # (its root has no line yet: nothing of its stretch lies behind it)
        top = path[-1]
        kids = top.kids
        stopped_at_child = bool(kids) and top.head < len(kids)  # a child not decided yet, else `top` runs
        waiting = stopped_at_child and top.head + 1 < len(kids)  # type: ignore[arg-type]
        if not waiting:  # (the calls above `top` have gone past the child on the path)
            waiting = any(a.kids and a.head < len(a.kids) for a in path[:-1])
        if not waiting:
            return None
        spill = tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogatepass")
        after = _Cursor(cur.root, path, spill, opened=True)
        if stopped_at_child:  # `cur` writes that child (its line not decided yet) and its subtree
            assert kids is not None
            child = kids[top.head]
            kids[top.head] = None  # type: ignore[call-overload]  (cur holds it now)
            top.head += 1
            cur.root, cur.path, cur.opened = child, [], False
        else:  # `cur` writes the rest of `top` (its later children and its closing line)
            after.path = path[:-1]
            cur.root, cur.path = top, [top]
        return after


HELD_NODES = 1 << 16  # waiting calls (~400 bytes each) before a section writes further on to a file
_MAX_CURSORS = 64  # temporary files a section may have open at once


class _Cursor:
    """Writes the lines of `root`'s subtree (its own lines too, unless it is a section's top)
    in tree order, from where it stopped. `path`: the opened calls from `root` down to the one
    whose children it writes now (empty until `root`'s own first line is decided);
    `opened`: `root`'s opening line is written (or it has none)."""

    __slots__ = ("root", "path", "out", "pending", "opened")

    def __init__(self, root: _Node, path: list[_Node], out: IO[str], opened: bool) -> None:
        self.root = root
        self.path = path
        self.out = out
        self.pending: list[str] = []
        self.opened = opened

    def run(self, sec: _Section) -> bool:
        """Write every line of the stretch that is decided now (see the module docstring): a
        child that had children of its own opens (and is gone down into), one that ended is a
        line; one still running (or whose counted descendants are) stops the cursor. True when
        the whole stretch is written."""
        path, pending, root = self.path, self.pending, self.root
        write = pending.append  # (write_out empties `pending` in place: `write` stays valid)
        opens, closes, paint = sec.lines.opens, sec.lines.closes, sec.lines.paint
        if not self.opened:  # the root's own line: opening, or the whole call as one line
            if root.kids is not None:
                write(opens[root.depth] + root.label)
                path.append(root)
                self.opened = True
            elif root.tail is None or root.open_desc:
                return False
            else:
                write(_leaf_line(root, opens, paint))
                sec.held -= 1
                return True
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
                    write(_leaf_line(node, opens, paint))
                    kids[i] = None  # type: ignore[call-overload]
                    i += 1
                    sec.held -= 1
                    if len(pending) >= _SPILL_LINES:
                        self.write_out()
                _written(top, i)
                if path[-1] is not top:
                    continue  # gone down into a child
                if i < n:
                    return False  # a child still waits
            if top is sec.top or top.tail is None:  # every child is written: the closing line
                return False
            write(closes[top.depth] + top.label + top.tail)
            path.pop()
            sec.held -= 1
            if top is root:
                return True
            if len(pending) >= _SPILL_LINES:
                self.write_out()

    def write_out(self) -> None:
        if self.pending:
            self.out.write("\n".join(self.pending) + "\n")
            self.pending.clear()


def _leaf_line(node: _Node, opens: list[str], paint: Painter) -> str:
    """The one line of an ended call whose children (if any) are below the printed depth."""
    if node.count:
        return f"{opens[node.depth]}{node.label}{node.tail} {paint('note', calls_below(node.count))}"
    return opens[node.depth] + node.label + node.tail  # type: ignore[operator]


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
            up.section.held += 1
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

