"""Why a session shows no call: the words the explorer puts where the tree would be.

A session can hold no readable call for several reasons (every call excluded by the recording's
filters, a file cut or damaged before its first call, a live program that has not made a
recorded call yet); the user is told which one instead of an empty screen. No Textual imports.
"""

from __future__ import annotations

import shlex
from typing import Any

META_CUT = "the file ends inside its session metadata (META chunk): it was cut short"


def recording_filters(meta: dict[str, Any]) -> str:
    """The recording's --include/--exclude options as typed ("" when there were none)."""
    opts = meta.get("options")
    if not isinstance(opts, dict):
        return ""
    words: list[str] = []
    for flag in ("include", "exclude"):
        pats = opts.get(flag)
        if isinstance(pats, list):
            words += [f"--{flag} {shlex.quote(str(p))}" for p in pats]
    return " ".join(words)


def no_calls_reason(meta: dict[str, Any], ends: dict[str, Any] | None, damage: str | None,
                    live: bool) -> str:
    """One or two sentences saying why there is no call to show."""
    filters = recording_filters(meta)
    matched = f"nothing matched the recording's filters ({filters})" if filters else ""
    if damage:
        return f"No calls could be read: {damage}."
    if live:
        if matched:
            return f"No calls yet: {matched} so far."
        return "No calls yet: the program has not made a recorded call so far."
    if ends is None:
        why = "the recording stopped (or the file was cut) before its first call was written"
        return f"No calls in this session: {why}."
    if matched:
        return f"No calls were recorded: {matched}."
    error = ends.get("error")
    if isinstance(error, str) and error:
        return f"No calls were recorded: the program ended with {error} before making one."
    return "No calls were recorded: the program made no call that flowtrace records."
