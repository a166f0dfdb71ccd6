"""A small timm-style registry: defining a component registers it.

Usage::

    IMAGE_ENCODERS = Registry("image encoder")

    @IMAGE_ENCODERS.register("resnet50", dim=2048)
    def build_resnet50(**kwargs): ...

    IMAGE_ENCODERS.get("resnet5")   # UnknownNameError: ... did you mean 'resnet50'?
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pipeline.errors import UnknownNameError
from pipeline.helpers import did_you_mean

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its name, the object and free-form metadata."""

    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Maps names to factories (or classes) with helpful errors on a miss."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` with metadata ``meta``."""

        def decorator(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: T, **meta: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, obj, dict(meta))

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self._unknown_message(name)) from None

    def get(self, name: str) -> T:
        """The registered object, or an :class:`UnknownNameError` listing valid names."""
        return self.entry(name).obj

    def meta(self, name: str) -> dict[str, Any]:
        return self.entry(name).meta

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def _unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self._entries)
        valid = ", ".join(self.names()) or "(none registered)"
        return f"unknown {self.kind} {name!r}.{hint} Valid names: {valid}."
