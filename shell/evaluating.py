"""One evaluator's lifetime for a schedule: created on first use, always closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shell.closing import Closing
from shell.evaluator import Evaluator


class LazyEvaluator(Closing):
    """Builds an `Evaluator` the first time it is needed and closes it on leaving ``with``.

    Every evaluation loop of the Experiment (continuous_eval, train_and_evaluate,
    continuous_train_and_evaluate) evaluates through one of these, so a loop that never
    evaluates builds no evaluation graph, and one that does always releases it.

    Args:
        factory: Builds the evaluator (e.g. ``lambda: make_evaluator(...)``).
    """

    def __init__(self, factory: Callable[[], Evaluator]) -> None:
        self._factory = factory
        self._evaluator: Evaluator | None = None

    def evaluate(self, checkpoint_path: str) -> dict[str, Any]:
        """Evaluate ``checkpoint_path`` (building the evaluator first if needed)."""
        if self._evaluator is None:
            self._evaluator = self._factory()
        return dict(self._evaluator.evaluate(checkpoint_path))

    def close(self) -> None:
        """Close the evaluator if one was built (idempotent)."""
        evaluator, self._evaluator = self._evaluator, None
        if evaluator is not None:
            evaluator.close()
