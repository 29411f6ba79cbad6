"""The Estimator interface an Experiment accepts, as a structural Protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

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
