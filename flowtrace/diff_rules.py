"""What a diff of two sessions means: the rules `flowtrace diff` and the explorer's diff view
(`flowtrace-tui diff`) share, so that both call the same things changed.

- **Path identity.** A call's path is the names of the calls from its root (a call with no
  recorded caller) down to it, a name being `function_key(module, qualname)`: no ids, files,
  lines, threads or tasks, so two runs of one program (even from another checkout) match. The
  paths of all threads are merged (a pool's workers run the same paths in any order). In a
  session of several processes a child process's paths start under `process_key(the program
  it ran)`, so processes running one program (a pool's worker processes) are merged as threads
  are. The calls of one path are numbered 1, 2, … in start order (call id order) within each
  run (and part: process files in the session's order).
- **Outcome.** What a call did: its argument text, how it ended (`return` / `raise` /
  `unfinished`) and its result or exception text, each text normalized by `normalize_text`
  (object addresses `0x7f…` differ between runs of the same program). Two paths called the
  same number of times have the same outcomes when the *multisets* of their calls' outcomes are
  equal (`outcome_hash` summed with `add_hash`): calls made in another order (threads, set
  iteration under hash randomization) are not a change.
- **What changed** (`change_kinds`): `new` / `gone` (a path in one run only), `calls` (called
  another number of times), `raised` (calls left by an exception: another number of them, or
  exception types that appear or disappear), `outcome` (the same number of calls, other
  outcomes), `slower` / `faster` (total or self time changed beyond the thresholds). A path with
  none of them is `same`.
- **Noise** (`Thresholds`): a time change counts only when it is at least `relative` of the
  base time (10 %) *and* at least an absolute floor: `absolute_ns` when given, else the larger of
  `MIN_ABS_NS` (50 µs) and `SESSION_SHARE` (0.5 %) of the longer session's running time. Counts
  and outcomes have no threshold: the same deterministic program run twice has equal ones.

Standard library only (imported by `flowtrace` and by the explorer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NEW, GONE, CALLS, RAISED, OUTCOME, SLOWER, FASTER, SAME = (
    "new", "gone", "calls", "raised", "outcome", "slower", "faster", "same")
KINDS = (NEW, GONE, RAISED, CALLS, OUTCOME, SLOWER, FASTER, SAME)  # by precedence: `primary_kind`
STRUCTURAL = frozenset({NEW, GONE, CALLS, RAISED, OUTCOME})  # changes that are never noise

END_RETURN, END_RAISE, END_UNFINISHED = "return", "raise", "unfinished"

MIN_ABS_NS = 50_000
SESSION_SHARE = 0.005
RELATIVE = 0.10

MASK = (1 << 64) - 1
PATH_SEPARATOR = " › "

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


def function_key(module: str, qualname: str) -> str:
    """A function's name as paths use it: `module:qualname` (`app.db:Session.query`)."""
    return f"{module}:{qualname}"


PROCESS_MODULE = "[process]"  # a path's first name may be a process: `[process]:python worker.py`


def process_key(command: str) -> str:
    """The name a process's paths start under, in a session of several processes (its root
    process's paths start at its calls, as in a session of one)."""
    return f"{PROCESS_MODULE}:{command}"


def display_name(key: str) -> str:
    """The short name of a function key, for a path shown to a user: the qualname, and for a
    module's top-level code the module (`<module json.decoder>`; the program's is `<module>`)."""
    module, _, qualname = key.partition(":")
    if module == PROCESS_MODULE:
        return f"[{qualname}]"
    if qualname == "<module>" and module != "__main__":
        return f"<module {module}>"
    return qualname or key


def path_text(keys: tuple[str, ...] | list[str]) -> str:
    """A path as a user reads it: `<module> › main › load`; a recursion's run of one name is
    written once with its length: `main › fib (×5)`."""
    parts: list[str] = []
    run = 0
    for i, key in enumerate(keys):
        run += 1
        if i + 1 == len(keys) or keys[i + 1] != key:
            parts.append(display_name(key) + (f" (×{run})" if run > 1 else ""))
            run = 0
    return PATH_SEPARATOR.join(parts)


def normalize_text(text: str | None) -> str | None:
    """A recorded text without what differs between runs of one program (object addresses)."""
    if text is None or "0x" not in text:
        return text
    return _ADDRESS.sub("0x…", text)


def exception_type(text: str | None) -> str:
    """The type of a recorded exception text (`ValueError: n=0` -> `ValueError`)."""
    if not text:
        return "?"
    return text.partition(":")[0].strip() or "?"


def text_hash(text: str | None) -> int:
    """A recorded text as outcomes compare it (`normalize_text`), as a number (within one
    process: `hash` of str is salted)."""
    return hash(normalize_text(text))


def combine_outcome(args_hash: int, end: str, value_hash: int) -> int:
    """An outcome's 64-bit number from its texts' `text_hash` (a pass that hashes each text
    once, as its chunk goes by, makes outcomes from the numbers). The tuple's hash goes through
    SipHash once more: CPython's tuple hash is nearly additive in its items, so digests (sums)
    of two calls that swap their results were equal about half of the time."""
    return hash((hash((args_hash, end, value_hash)) & MASK).to_bytes(8, "little")) & MASK


def outcome_hash(args: str | None, end: str, value: str | None) -> int:
    """A call's outcome as a 64-bit number (within one process: `hash` of str is salted)."""
    return combine_outcome(text_hash(args), end, text_hash(value))


def add_hash(total: int, h: int) -> int:
    """The multiset digest of a path's outcomes: the sum of their hashes, modulo 2^64."""
    return (total + h) & MASK


@dataclass(frozen=True)
class Thresholds:
    """When a time change is more than noise (see the module docstring)."""

    relative: float = RELATIVE
    absolute_ns: int | None = None

    def floor_ns(self, session_a_ns: int, session_b_ns: int) -> int:
        """The absolute floor for these two sessions (their root calls' running time)."""
        if self.absolute_ns is not None:
            return self.absolute_ns
        return max(MIN_ABS_NS, round(SESSION_SHARE * max(session_a_ns, session_b_ns)))

    def time_change(self, a_ns: int, b_ns: int, floor_ns: int) -> int:
        """+1 slower, -1 faster, 0 within noise: |b - a| >= floor and >= relative x a."""
        delta = b_ns - a_ns
        if abs(delta) < floor_ns or abs(delta) < self.relative * a_ns:
            return 0
        return 1 if delta > 0 else -1


def percent(a: int | float, b: int | float) -> float | None:
    """The change from a to b in % of a; None when a is 0 (a new cost has no percentage)."""
    return 100.0 * (b - a) / a if a else None


@dataclass(frozen=True, slots=True)
class SideFacts:
    """What the rules need of one path in one run (None for a path the run does not have)."""

    calls: int
    total_ns: int
    self_ns: int
    raised: int
    exception_types: frozenset[str]
    outcomes: int  # multiset digest (add_hash of outcome_hash)


def change_kinds(a: SideFacts | None, b: SideFacts | None, thresholds: Thresholds, floor_ns: int) -> list[str]:
    """What changed for one path, in `KINDS` order (`[SAME]` when nothing did)."""
    if a is None or b is None:
        return [NEW] if a is None else [GONE]
    out = []
    if a.raised != b.raised or a.exception_types != b.exception_types:
        out.append(RAISED)
    if a.calls != b.calls:
        out.append(CALLS)
    elif a.outcomes != b.outcomes:
        out.append(OUTCOME)
    direction = time_direction(a, b, thresholds, floor_ns)
    if direction:
        out.append(SLOWER if direction > 0 else FASTER)
    return out or [SAME]


def time_direction(a: SideFacts, b: SideFacts, thresholds: Thresholds, floor_ns: int) -> int:
    """+1 slower, -1 faster, 0 noise: by the total or the self time, whichever changed beyond
    the thresholds (both: the one that changed more)."""
    moves = [(abs(y - x), thresholds.time_change(x, y, floor_ns))
             for x, y in ((a.total_ns, b.total_ns), (a.self_ns, b.self_ns))]
    significant = [m for m in moves if m[1]]
    return max(significant)[1] if significant else 0


def primary_kind(kinds: list[str]) -> str:
    """The kind a row is coloured by: the first of `kinds` in `KINDS` order."""
    return min(kinds, key=KINDS.index)
