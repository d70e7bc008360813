"""Instruction counts of one phase of a process, every thread, from callgrind (valgrind).

Timings on a shared VM are noisy; the number of instructions a process executes is not (nearly:
see below). e2e.py --instructions runs each cell under

    valgrind --tool=callgrind --callgrind-out-file=DIR/cg.%p <the user's command>

and the benchmark's driver script marks its workload phase through a tiny C helper (built here
with `cc` against <valgrind/callgrind.h>, loaded with ctypes): CALLGRIND_DUMP_STATS_AT("e2e-start")
just before the loop over run(), CALLGRIND_DUMP_STATS_AT("e2e-end") just after it. Each dump writes
the costs gathered since the previous dump (or the start) to its own file, `cg.<pid>.<n>`, and
zeroes them; the process's end writes the rest to `cg.<pid>`. So:

- the workload phase = the "totals:" of the dump whose trigger is e2e-end;
- the whole process  = the sum of the "totals:" of all of that pid's dumps.

Why every thread is in those totals (valgrind 3.19's callgrind source, dump.c and main.c): with
the default --separate-threads=no all threads' costs live in one table ("All BBCC/JCC costs is
stored for thread 1"), a client dump writes that whole table (prepare_dump: "if we do not separate
among threads, this gives all") and adds each written cost into the "totals:" line
(fprint_fcost: add_and_zero_cost into dump_total_cost), zeroing it. Only the "summary:" line is
kept per thread (lastdump_cost), so "totals:" is the one read. CALLGRIND_TOGGLE_COLLECT was not
used: it flips the *current thread's* collection state only (CLG_(current_state).collect), and
threads started later take --collect-atstart. Checked by running: work done by a second thread
between the marks is counted as if the main thread had done it (tests/test_benchmarks_e2e.py).

In the counts: every instruction of every thread between the two marks (the program, the tracer's
callbacks, flowtrace's writer and flusher threads, VizTracer's buffer), and the mark call's own
few thousand instructions. Out: interpreter start-up, the tracer's set-up, everything after the
end mark (VizTracer's save to JSON, flowtrace's last flushes and file completion), exactly as the
timing mode's process_time() pair leaves them out.

Valgrind runs threads one at a time on its own schedule (--fair-sched=no: a thread woken may wait
while the running one goes on), so the work of flowtrace's own threads fell inside or outside the
phase as that schedule had it -- the same build counted 314.8-321.1 M on generators --no-args
(session 15). Two parts of that, and what e2e.py does about each:

- the writer thread's zlib and writes of the batches drained in the phase (~4.5 M on generators
  at scale 3): each mark first waits until the writer has written what was put so far
  (SessionWriter.sync, e2e.driver's `_written`), so they are in the phase, and the set-up's not;
- the flusher thread's looks at the pending count, every 25 ms of wall time (session._POLL_S),
  ~20 K instructions each (threading.Event.wait with a timeout, the GIL taken and handed back):
  5-96 of them in one generators phase under valgrind (0.1-1.9 M) -- as many as the load and the
  schedule let the flusher run, where a user's phase of the same work (~0.3 s) has ~12 (~0.25 M;
  a user pays ~0.8 M instructions a second for them, a few 0.01% of the work). Counted cells set
  the poll to --counted-poll-interval (1000 s: e2e.POLL_BOOT, in any checkout), so the count has
  none; rows-count flushes (backpressure) are unchanged. (Since session 20 the flusher looks
  only where it has something to look at -- a signal watch of followed children, a recorder
  without a backpressure hook; a plain `flowtrace run` wakes for its timed flush alone, so the
  poll setting changes nothing there. It is kept for the baseline checkouts that still poll.)

flowtrace also flushes on a wall-clock interval (0.1 s), and valgrind slows the program
50-800x (more under load): at the default interval the count depended on the load (exceptions,
ft, load 20: 386.1 M instructions against 375.6 M with --flush-interval 60, the same run twice
gave 2.05x and 2.13x). So e2e.py gives flowtrace --flush-interval 1000 when it counts
(--counted-flush-interval): flushes then come from the rows pending (backpressure), as they
mostly do for a user's short workload; a user's 0.1 s timer flushes cost ~35 k instructions
each, a few a second, next to ~1-2 G instructions a second of work."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

START = "e2e-start"
END = "e2e-end"
HEADER = "/usr/include/valgrind/callgrind.h"

HELPER_C = """\
/* e2e.py --instructions: mark the workload phase for callgrind (see benchmarks/callgrind_phase.py) */
#include <valgrind/callgrind.h>

int e2e_on_valgrind(void) { return RUNNING_ON_VALGRIND; }

void e2e_dump(const char *trigger) { CALLGRIND_DUMP_STATS_AT(trigger); }
"""


class CallgrindError(RuntimeError):
    """The instruction counts could not be taken or read (the message says why)."""


def missing_tools() -> str | None:
    """Why the instruction-count mode cannot run here, or None when it can."""
    needs = [name for name in ("valgrind", "cc") if shutil.which(name) is None]
    if not os.path.exists(HEADER):
        needs.append(HEADER + " (valgrind's development headers)")
    return f"missing: {', '.join(needs)}" if needs else None


def build_helper(directory: str) -> str:
    """Compile the marking helper into `directory`; its shared library's path."""
    source = os.path.join(directory, "e2e_callgrind_marks.c")
    library = os.path.join(directory, "libe2e_callgrind_marks.so")
    with open(source, "w") as fh:
        fh.write(HELPER_C)
    proc = subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", library, source],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise CallgrindError(f"building the callgrind marks helper failed: {proc.stderr.strip()}")
    return library


def under_callgrind(command: list[str], out_dir: str, cache_sim: bool = False) -> list[str]:
    """`command` run under callgrind, its dumps written into `out_dir` (`cg.<pid>[.<n>]`). The
    options this module relies on are given, not left to defaults or VALGRIND_OPTS: one table for
    all threads, one file a dump, collection on from the start in every thread. With `cache_sim`
    callgrind also simulates the caches (--cache-sim=yes: I1mr, D1mr, D1mw... beside Ir; the
    machine's own cache sizes, slower)."""
    sim = ["--cache-sim=yes"] if cache_sim else []
    return ["valgrind", "--tool=callgrind", "-q", "--separate-threads=no", "--combine-dumps=no",
            "--collect-atstart=yes", *sim, f"--callgrind-out-file={os.path.join(out_dir, 'cg.%p')}", *command]


@dataclass(frozen=True)
class Dump:
    """One callgrind output file: the process, what triggered the dump, its event totals."""

    pid: int
    trigger: str
    totals: dict[str, int]


def parse_dump(text: str) -> Dump:
    """Read a callgrind output file's header and its "totals:" line (the costs it dumped)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("pid", "desc", "events", "totals", "summary"):
            if key == "desc":
                key, _, value = value.partition(": ")
            fields.setdefault(key, value.strip())
    if "events" not in fields or not ("totals" in fields or "summary" in fields):
        raise CallgrindError("not a complete callgrind output file (no events: or totals: line)")
    names = fields["events"].split()
    counts = [int(n) for n in fields.get("totals", fields.get("summary", "")).split()]
    counts += [0] * (len(names) - len(counts))  # (trailing zero counts may be left out)
    return Dump(int(fields.get("pid", "0")), fields.get("Trigger", ""), dict(zip(names, counts)))


def phase_dump(dumps: list[Dump]) -> Dump:
    """The one dump the workload phase's end made (its counts are the phase's)."""
    ends = [d for d in dumps if d.trigger.endswith(END)]
    if len(ends) != 1:
        raise CallgrindError(f"expected one dump marked {END!r}, found {len(ends)} (was the helper "
                             "called, under valgrind --tool=callgrind?)")
    return ends[0]


def phase_counts(dumps: list[Dump], event: str = "Ir") -> dict[str, int]:
    """{"instr": the workload phase's count of `event`, "instr_whole": the whole process's}."""
    end = phase_dump(dumps)
    return {"instr": end.totals.get(event, 0),
            "instr_whole": sum(d.totals.get(event, 0) for d in dumps if d.pid == end.pid)}


# --cache-sim's phase figures: callgrind's event name -> the result key (e2e.COUNT_METRICS)
CACHE_EVENTS = {"I1mr": "i1_miss", "D1mr": "d1r_miss", "D1mw": "d1w_miss"}


def phase_cache_misses(dumps: list[Dump]) -> dict[str, int]:
    """The workload phase's simulated cache misses (--cache-sim=yes), by CACHE_EVENTS' keys."""
    end = phase_dump(dumps)
    return {key: end.totals.get(event, 0) for event, key in CACHE_EVENTS.items()}


def read_dumps(out_dir: str) -> list[Dump]:
    """Every callgrind output file under `out_dir` (named cg.<pid>[.<n>])."""
    dumps = []
    for name in sorted(os.listdir(out_dir)):
        if re.fullmatch(r"cg\.\d+(\.\d+)?", name):
            with open(os.path.join(out_dir, name), errors="replace") as fh:
                dumps.append(parse_dump(fh.read()))
    return dumps
