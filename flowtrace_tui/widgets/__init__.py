"""Widgets of the explorer, one per module."""

from .call_tree import CallTree
from .column_header import ColumnHeader
from .detail_pane import DetailPane
from .find_bar import FindBar
from .loading_bar import LoadingBar
from .status_line import StatusLine

__all__ = ["CallTree", "ColumnHeader", "DetailPane", "FindBar", "LoadingBar", "StatusLine"]
