"""One evaluator's lifetime for a schedule: created on first use (or ahead), always closed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from shell.closing import Closing
from shell.evaluator import Evaluator

log = logging.getLogger("tfexperiment")


class LazyEvaluator(Closing):
    """Builds an `Evaluator` the first time it is needed and closes it on leaving ``with``.

    Every evaluation loop of the Experiment (continuous_eval, train_and_evaluate,
    continuous_train_and_evaluate) evaluates through one of these, so a loop that never
    evaluates builds no evaluation graph, and one that does always releases it.
    `build_ahead` starts the build in a helper thread instead (train_and_evaluate does,
    once training's own graph is complete, so the build overlaps training); the first
    evaluation then waits for it.

    Args:
        factory: Builds the evaluator (e.g. ``lambda: make_evaluator(...)``).
    """

    def __init__(self, factory: Callable[[], Evaluator]) -> None:
        self._factory = factory
        self._evaluator: Evaluator | None = None
        self._error: BaseException | None = None
        self._builder: threading.Thread | None = None
        self._lock = threading.Lock()

    def build_ahead(self) -> None:
        """Start building the evaluator in a helper thread now (once; no-op once built)."""
        with self._lock:
            if self._builder is not None or self._evaluator is not None:
                return
            log.info("building the evaluation graph while training runs")
            self._builder = threading.Thread(
                target=self._build, name="tfexperiment-build-evaluator", daemon=True
            )
            self._builder.start()

    def _build(self) -> None:
        try:
            self._evaluator = self._factory()
        except BaseException as error:  # handed to the first evaluation, in its thread
            self._error = error

    def _wait_for_build(self) -> None:
        """Wait for a build ahead, if one was started."""
        with self._lock:
            builder = self._builder
        if builder is not None:
            builder.join()

    def _built(self) -> Evaluator:
        """The evaluator: waits for a build ahead, else builds it here.

        Raises:
            Exception: What building it raised (also a build ahead's, in this thread).
        """
        self._wait_for_build()
        if self._error is not None:
            error, self._error, self._builder = self._error, None, None
            raise error
        if self._evaluator is None:
            self._evaluator = self._factory()
        return self._evaluator

    def evaluate(self, checkpoint_path: str) -> dict[str, Any]:
        """Evaluate ``checkpoint_path`` (building the evaluator first if needed)."""
        return dict(self._built().evaluate(checkpoint_path))

    def close(self) -> None:
        """Close the evaluator if one was built (idempotent; waits for a build ahead)."""
        self._wait_for_build()
        evaluator, self._evaluator, self._error = self._evaluator, None, None
        if evaluator is not None:
            evaluator.close()
