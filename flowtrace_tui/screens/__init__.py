"""Screens of the explorer, one per module."""

from .error import ErrorScreen
from .filter_dialog import FilterDialog
from .help import HelpScreen

__all__ = ["ErrorScreen", "FilterDialog", "HelpScreen"]
