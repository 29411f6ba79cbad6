"""Evaluate saved checkpoints in a background thread while training goes on.

A saved checkpoint never changes, so its evaluation need not hold up training: the trainer
`submit`s each checkpoint as it is saved, one worker thread evaluates them in order on the
evaluator's own graph and session, and the trainer collects the finished results in the
same order (`results`, `drain`) to act on them (listeners, exports) in its own thread.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shell.closing import Closing
from shell.evaluator import Evaluator, make_evaluator

__all__ = ["BackgroundEvaluator", "Evaluated"]


@dataclass(frozen=True)
class Evaluated:
    """One finished evaluation.

    Attributes:
        step: The global step the checkpoint was submitted with.
        checkpoint_path: The evaluated checkpoint.
        result: What `Evaluator.evaluate` returned for it.
    """

    step: int
    checkpoint_path: str
    result: dict[str, Any]


class BackgroundEvaluator(Closing):
    """Evaluates submitted checkpoints in one worker thread, in submission order.

    The evaluator is made (by `make_evaluator`, with the same arguments) in the worker on the
    first submission, so building its graph is off the caller's path too. At most
    `max_pending` submitted checkpoints are unfinished at any time: `submit` waits for the
    worker beyond that, which bounds how far evaluation lags behind training (a checkpoint
    must still exist when it is evaluated and exported: keep `keep_checkpoint_max` above
    `max_pending` + 1, or evaluate inline). An exception raised by an evaluation is raised
    again, once, by the next `submit`, `results` or `drain`; later submissions are refused
    with it too. A context manager (`close` on exit).
    """

    def __init__(
        self,
        estimator: Any,
        input_fn: Any,
        *,
        steps: int | None,
        hooks: Sequence[Any] = (),
        name: str | None = None,
        max_pending: int = 1,
        factory: Callable[..., Evaluator] = make_evaluator,
    ) -> None:
        """Stores the evaluator's arguments; the worker starts on the first `submit`.

        Args:
            estimator: The Estimator whose checkpoints are evaluated.
            input_fn: The evaluation input_fn.
            steps: Batches per evaluation, or None to evaluate until the input ends.
            hooks: `SessionRunHook`s for every evaluation.
            name: Evaluation name (metrics go to `eval_<name>`).
            max_pending: Most submitted checkpoints not yet evaluated (≥ 1).
            factory: Makes the evaluator (`make_evaluator`'s signature).

        Raises:
            ValueError: If `max_pending < 1` or `steps <= 0`.
        """
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, given: {max_pending!r}")
        if steps is not None and steps <= 0:
            raise ValueError(f"Must specify steps > 0, given: steps={steps!r}")
        self._factory = factory
        self._args: tuple[Any, Any] = (estimator, input_fn)
        self._kwargs: dict[str, Any] = {"steps": steps, "hooks": hooks, "name": name}
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._jobs: collections.deque[tuple[str, int]] = collections.deque()
        self._done: collections.deque[Evaluated] = collections.deque()
        self._pending = 0
        self._error: BaseException | None = None
        self._raised = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._evaluator: Evaluator | None = None

    def submit(self, checkpoint_path: str, step: int) -> None:
        """Queues `checkpoint_path` for evaluation; waits while `max_pending` are unfinished.

        Args:
            checkpoint_path: Path prefix of a saved checkpoint.
            step: Its global step (returned with the result).

        Raises:
            RuntimeError: If the evaluator is closed.
            BaseException: What an earlier evaluation raised.
        """
        with self._cond:
            if self._closing:
                raise RuntimeError("BackgroundEvaluator is closed")
            self._cond.wait_for(
                lambda: self._error is not None or self._pending < self._max_pending
            )
            self._raise_error()
            self._jobs.append((checkpoint_path, step))
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="tfexperiment-evaluator", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def results(self) -> list[Evaluated]:
        """Returns the evaluations finished since the last call, in submission order.

        Raises:
            BaseException: What an evaluation raised (after the results before it).
        """
        with self._cond:
            finished = list(self._done)
            self._done.clear()
            if not finished:
                self._raise_error()
            return finished

    def drain(self) -> list[Evaluated]:
        """Waits for every submitted checkpoint and returns the results not yet returned.

        Raises:
            BaseException: What an evaluation raised.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._error is not None or self._pending == 0)
            self._raise_error()
            finished = list(self._done)
            self._done.clear()
            return finished

    @property
    def evaluator(self) -> Evaluator | None:
        """The evaluator the worker made (None before the first evaluation started)."""
        return self._evaluator

    def close(self) -> None:
        """Lets the worker finish its current evaluation, drops the rest, closes; idempotent."""
        with self._cond:
            self._closing = True
            self._pending -= len(self._jobs)
            self._jobs.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None

    def _raise_error(self) -> None:
        """Raises the worker's exception (caller holds the lock)."""
        if self._error is not None:
            if self._raised:
                raise RuntimeError("an earlier background evaluation failed") from self._error
            self._raised = True
            raise self._error

    def _work(self) -> None:
        """The worker: evaluates queued checkpoints until closed or an evaluation fails."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or bool(self._jobs))
                if not self._jobs:
                    return
                path, step = self._jobs.popleft()
            try:
                if self._evaluator is None:
                    self._evaluator = self._factory(*self._args, **self._kwargs)
                result = self._evaluator.evaluate(path)
            except BaseException as error:  # carried back to the caller
                with self._cond:
                    self._error = error
                    self._jobs.clear()
                    self._pending = 0
                    self._cond.notify_all()
                return
            with self._cond:
                self._done.append(Evaluated(step=step, checkpoint_path=path, result=result))
                self._pending -= 1
                self._cond.notify_all()
