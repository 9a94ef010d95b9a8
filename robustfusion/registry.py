"""Tiny name -> builder registries (timm-style ``@register_model`` / ``create_model``).

Configs name components by registry name, never by import path (DESIGN.md, conventions).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of builders.

    >>> encoders = Registry("encoder")
    >>> @encoders.register("mlp")
    ... class MLP: ...
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders and self._builders[name] is not builder:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return deco

    def add(self, name: str, entry: T) -> T:
        """Register a ready-made ``entry`` (not a builder) under ``name``; returns it."""
        if name in self._builders and self._builders[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._builders[name] = entry  # type: ignore[assignment]
        return entry

    def remove(self, name: str) -> None:
        """Forget ``name`` (``KeyError`` if it is not registered); for tests and plug-ins."""
        if name not in self._builders:
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {sorted(self._builders)}")
        del self._builders[name]

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._builders[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._builders, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}; registered: {sorted(self._builders)}{hint}"
            ) from None

    def create(self, name: str, **kwargs: Any) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._builders)

    def ordered(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders
