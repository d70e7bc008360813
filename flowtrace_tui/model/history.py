"""Back/forward history across the explorer's jumps (tree call -> its function, function -> a
caller/callee, function -> one of its calls in the tree), as a browser keeps it.

A `Place` is a view and what is selected there (a call id in the tree, a function id in the
functions view). `jump(here, there)` records both: `here` is where the user is at the moment of
the jump (the cursor may have moved since the last one), and a jump drops whatever was forward.
`back(here)` / `forward(here)` remember `here` in place of the entry they leave, so going back
and forth returns to where the cursor was, not where the jump had put it.
"""

from __future__ import annotations

from dataclasses import dataclass

TREE, FUNCTIONS = "tree", "functions"


@dataclass(frozen=True)
class Place:
    view: str  # TREE or FUNCTIONS
    key: int  # TREE: a call id (0: none); FUNCTIONS: a function id (0: none)


class History:
    def __init__(self, limit: int = 500) -> None:
        self.entries: list[Place] = []
        self.at = -1
        self.limit = limit

    def jump(self, here: Place, there: Place) -> None:
        if self.at < 0:
            self.entries, self.at = [here], 0
        else:
            self.entries[self.at] = here
            del self.entries[self.at + 1 :]
        if there != here:
            self.entries.append(there)
            self.at += 1
        if len(self.entries) > self.limit:  # the oldest go first
            cut = len(self.entries) - self.limit
            del self.entries[:cut]
            self.at -= cut

    def can_go(self, step: int) -> bool:
        return 0 <= self.at + step < len(self.entries) and self.at >= 0

    def go(self, here: Place, step: int) -> Place | None:
        """One step back (-1) or forward (+1) from `here`; None when there is nothing there."""
        if not self.can_go(step):
            return None
        self.entries[self.at] = here
        self.at += step
        return self.entries[self.at]
