"""The call tree's merged-paths toggle (key m): the app's wiring of model/merged.py.

While it is on, every call index the app is given (the first, a live session's next one, a
regrouping) is merged first -- on the UI thread when small, else in a worker that a newer index
cancels -- and the merged index is what the app shows: its own `_apply_index` carries the view
over (expanded paths and cursor matched by the calls they hold, see `TreeRows.carry_full`),
and search, filters and the detail pane work on it as on calls. Turning it off shows the
latest call index again, the cursor on the first call of the path it was on.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

from .model.index import TreeIndex
from .model.merged import MergeCancelled, MergedIndex, merge_paths

if TYPE_CHECKING:
    from .app import FlowtraceApp

SYNC_MERGE_LIMIT = 200_000  # positions merged on the UI thread (a few ms); bigger: a worker


class MergedPaths:
    """Whether the tree shows merged call paths, and the call index they are merged from."""

    def __init__(self, app: "FlowtraceApp") -> None:
        self.app = app
        self.on = False
        self.merging = False  # a worker is merging (the status line says so)
        self.source: TreeIndex | None = None  # the newest call index (shown again when turned off)

    def status(self) -> str | None:
        """The status line's part: None when off."""
        if not self.on:
            return None
        return "merging call paths…" if self.merging else "merged paths"

    def toggle(self) -> None:
        app = self.app
        self.on = not self.on
        if self.on:
            if app.index is not None:
                self.divert(app.index)
        elif self.source is not None:
            self.merging = False
            src, self.source = self.source, None
            app.workers.cancel_group(app, "merge")
            app._apply_index(src)
            app.update_detail()
        app.update_status()

    def divert(self, ix: TreeIndex) -> bool:
        """Take a call index the app is about to show: with merged paths on it is merged and
        the result shown instead (True); else the app shows it as usual (False)."""
        if not self.on or ix.merged:
            return False
        self.source = ix
        if ix.size <= SYNC_MERGE_LIMIT:
            self._show(ix, merge_paths(ix))
        else:
            self.merging = True
            self.app.run_worker(partial(self._merge, ix), thread=True, exclusive=True, group="merge",
                                exit_on_error=False)
        return True

    def _merge(self, ix: TreeIndex) -> None:
        """Worker: merge, then show on the UI thread (unless a newer index came meanwhile)."""
        worker = get_current_worker()
        try:
            merged = merge_paths(ix, lambda: worker.is_cancelled)
        except MergeCancelled:
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, ix, merged)

    def _show(self, ix: TreeIndex, merged: MergedIndex) -> None:
        if not self.on or ix is not self.source:
            return  # turned off, or a newer index is being merged
        self.merging = False
        app = self.app
        app._apply_index(merged)
        app.update_detail()
        app.update_status()

    def jump_to_call(self, call: int) -> None:
        """Leave the merged view and select call `call` (a link in a merged path's detail)."""
        if self.on:
            self.toggle()
        ix = self.app.index
        if ix is not None and not ix.merged and 0 < call <= ix.n:
            self.app.tree.move_to_pos(int(ix.pos_of[call]))
            self.app.tree.focus()
