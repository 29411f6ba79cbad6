"""Checkpoint records and the decision whether the latest checkpoint is new."""

from __future__ import annotations

import enum
import re

import attrs

from core._validate import non_negative_int

_STEP_SUFFIX = re.compile(r"-(\d+)$")


@attrs.frozen(kw_only=True)
class Checkpoint:
    """A checkpoint as it exists on disk: its path prefix and global step.

    Attributes:
        path: The checkpoint prefix, e.g. ``/m/model.ckpt-200``.
        step: The global step the checkpoint was saved at.
    """

    path: str
    step: int = attrs.field(validator=non_negative_int)

    @classmethod
    def from_path(cls, path: str) -> Checkpoint | None:
        """Build a record from a ``...-<step>`` prefix; None if it has no step suffix."""
        step = step_from_path(path)
        return None if step is None else cls(path=path, step=step)


def step_from_path(path: str) -> int | None:
    """Return the global step encoded in a checkpoint prefix (``model.ckpt-42`` → 42)."""
    match = _STEP_SUFFIX.search(path)
    return int(match.group(1)) if match else None


class Novelty(enum.Enum):
    """How the latest checkpoint relates to the last evaluated one."""

    MISSING = "missing"  # no checkpoint exists yet
    NEW = "new"  # newer than anything evaluated
    SAME = "same"  # the checkpoint already evaluated
    STALE = "stale"  # another path, but not past the evaluated step (e.g. a restarted trainer)


def novelty(latest: Checkpoint | None, last_evaluated: Checkpoint | None) -> Novelty:
    """Classify ``latest`` against the last evaluated checkpoint.

    Robust to a vanished checkpoint: only paths and steps are compared, so a
    last-evaluated checkpoint that was since deleted never blocks a newer one.

    Args:
        latest: The newest checkpoint on disk, or None when there is none.
        last_evaluated: The checkpoint evaluated last, or None.

    Returns:
        The `Novelty` of ``latest``.
    """
    if latest is None:
        return Novelty.MISSING
    if last_evaluated is None:
        return Novelty.NEW
    if latest.path == last_evaluated.path:
        return Novelty.SAME
    if latest.step > last_evaluated.step:
        return Novelty.NEW
    return Novelty.STALE
