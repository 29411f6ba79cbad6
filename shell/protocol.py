"""What an Experiment accepts: the Estimator interface (a structural Protocol) and hook lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from core.errors import ConfigTypeError

ESTIMATOR_METHODS = ("train", "evaluate", "export_saved_model", "latest_checkpoint")
ESTIMATOR_ATTRIBUTES = ("model_dir", "config")


@runtime_checkable
class EstimatorLike(Protocol):
    """What an Experiment needs of an estimator; real ``tf.estimator.Estimator``s qualify."""

    @property
    def model_dir(self) -> str:
        """Where checkpoints and event files live."""

    @property
    def config(self) -> Any:
        """The estimator's ``RunConfig``."""

    def train(
        self,
        input_fn: Callable[..., Any],
        hooks: Sequence[Any] | None = ...,
        steps: int | None = ...,
        max_steps: int | None = ...,
        saving_listeners: Sequence[Any] | None = ...,
    ) -> Any:
        """Train the model."""

    def evaluate(
        self,
        input_fn: Callable[..., Any],
        steps: int | None = ...,
        hooks: Sequence[Any] | None = ...,
        checkpoint_path: str | None = ...,
        name: str | None = ...,
    ) -> dict[str, Any]:
        """Evaluate a checkpoint."""

    def export_saved_model(self, export_dir_base: str, serving_input_receiver_fn: Any) -> Any:
        """Export a SavedModel."""

    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint's path, or None."""


def missing_members(estimator: object) -> list[str]:
    """The Estimator members ``estimator`` lacks (empty when it qualifies)."""
    missing = [name for name in ESTIMATOR_METHODS if not callable(getattr(estimator, name, None))]
    missing += [name for name in ESTIMATOR_ATTRIBUTES if not hasattr(estimator, name)]
    return missing


HOOK_METHODS = ("begin", "before_run", "after_run", "end")


def check_hooks(field: str, hooks: Any) -> list[Any]:
    """``hooks`` as a new list, each element checked to look like a ``SessionRunHook``.

    Args:
        field: The argument's name, for the error (elements are named ``field[i]``).
        hooks: An iterable of hooks, or None (no hooks).

    Raises:
        ConfigTypeError: ``hooks`` is not an iterable (or is a string), or an element
            lacks a SessionRunHook method (``begin``, ``before_run``, ``after_run``, ``end``).
    """
    if hooks is None:
        return []
    if isinstance(hooks, (str, bytes)) or not isinstance(hooks, Iterable):
        raise ConfigTypeError(field, hooks, "must be a list of SessionRunHooks or None")
    checked = list(hooks)
    for i, hook in enumerate(checked):
        lacking = [name for name in HOOK_METHODS if not callable(getattr(hook, name, None))]
        if lacking:
            raise ConfigTypeError(
                f"{field}[{i}]",
                hook,
                f"must be a tf.estimator.SessionRunHook (lacks {', '.join(lacking)})",
            )
    return checked
