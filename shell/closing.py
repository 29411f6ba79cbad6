"""`Closing`: the context-manager half of every object here that has a `close()`."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["Closing"]

_Self = TypeVar("_Self", bound="Closing")


class Closing:
    """A context manager whose exit calls `close()` (which the subclass defines)."""

    def close(self) -> None:
        """Releases what the object holds; subclasses override it."""

    def __enter__(self: _Self) -> _Self:
        """Returns the object itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Calls `close()`."""
        self.close()
