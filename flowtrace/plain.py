"""`Plain`: the __repr__ and __eq__ of a dataclass, by `__slots__`, for the few record classes
that `flowtrace run` needs before the traced program starts (the recorder's batch and config,
the runner's program and outcome): dataclasses, with the inspect, ast and dis modules it
imports, costs more start-up time than all of them together."""

from __future__ import annotations

from typing import Any


class Plain:
    """Base of a record class that lists its fields in `__slots__` and sets them in __init__."""

    __slots__ = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # (mutable, as a dataclass with eq)
