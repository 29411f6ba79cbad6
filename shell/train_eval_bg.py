"""train_and_evaluate with its evaluations off the training path (``eval_in_background``).

Whether the evaluations may run in a background thread is `core.train_eval.evaluation_mode`'s
decision; this module gathers its inputs (the estimator's RunConfig), logs a fallback once,
and wraps a `shell.background.BackgroundEvaluator` so that `shell.schedules` gets each
finished evaluation back as ``(Checkpoint, result)``, in checkpoint order, to act on in the
training thread exactly as it acts on an inline one.
"""

from __future__ import annotations

import logging

from core import train_eval
from core.checkpoints import Checkpoint
from shell.background import BackgroundEvaluator, Evaluated
from shell.closing import Closing
from shell.run import Result, Run

log = logging.getLogger("tfexperiment")

__all__ = ["BackgroundCheckpoints", "evaluation_mode", "open_background"]


def evaluation_mode(run: Run) -> train_eval.EvalModeDecision:
    """Where this train_and_evaluate evaluates: the core's decision on the run's settings.

    Logs the decision once at INFO when ``eval_in_background`` is on (so a fallback to
    inline evaluation is said, with its reason).
    """
    config = getattr(run.estimator, "config", None)
    decision = train_eval.evaluation_mode(
        requested=run.settings.eval_in_background,
        eval_every_n_steps=run.settings.eval_every_n_steps,
        keep_checkpoint_max=getattr(config, "keep_checkpoint_max", None),
        save_checkpoints_steps=getattr(config, "save_checkpoints_steps", None),
        retention_known=hasattr(config, "keep_checkpoint_max"),
    )
    if decision.reason is not train_eval.EvalModeReason.OFF:
        log.info("%s", decision.line())
    return decision


def _pair(evaluated: Evaluated) -> tuple[Checkpoint, Result]:
    return Checkpoint(path=evaluated.checkpoint_path, step=evaluated.step), evaluated.result


class BackgroundCheckpoints(Closing):
    """Saved checkpoints evaluated in one worker thread; results in submission order.

    A context manager: leaving it lets the running evaluation finish and drops the rest.
    An exception raised by an evaluation is raised again, in the caller's (the training)
    thread, by the next `submit`, `collect`, `drain` or `evaluate_now`.
    """

    def __init__(self, evaluator: BackgroundEvaluator) -> None:
        self._evaluator = evaluator

    def submit(self, checkpoint: Checkpoint) -> None:
        """Queue ``checkpoint`` (waits while `core.train_eval.BACKGROUND_MAX_PENDING` are)."""
        self._evaluator.submit(checkpoint.path, checkpoint.step)

    def collect(self) -> list[tuple[Checkpoint, Result]]:
        """The evaluations finished since the last call, without waiting."""
        return [_pair(e) for e in self._evaluator.results()]

    def drain(self) -> list[tuple[Checkpoint, Result]]:
        """Wait for every queued checkpoint; the evaluations not yet collected."""
        return [_pair(e) for e in self._evaluator.drain()]

    def evaluate_now(self, checkpoint: Checkpoint) -> Result:
        """Evaluate ``checkpoint`` on the worker's graph and wait for it (nothing else queued).

        Raises:
            RuntimeError: Evaluations were still uncollected (call `drain` first).
        """
        self.submit(checkpoint)
        finished = self.drain()
        if [c.step for c, _ in finished] != [checkpoint.step]:
            raise RuntimeError(f"expected one evaluation of {checkpoint.path}, got {finished}")
        return finished[0][1]

    def close(self) -> None:
        """Let the running evaluation finish, drop the queued ones, release the evaluator."""
        self._evaluator.close()


def open_background(
    run: Run, decision: train_eval.EvalModeDecision
) -> BackgroundCheckpoints | None:
    """A background evaluator of ``run``'s eval input when ``decision`` says BACKGROUND.

    It evaluates with the same arguments as the inline one (`Run.lazy_evaluator`): the
    evaluation input_fn, ``eval_steps``, the evaluation hooks; its graph is built in the
    worker on the first submission.
    """
    if decision.mode is not train_eval.EvalMode.BACKGROUND:
        return None
    return BackgroundCheckpoints(
        BackgroundEvaluator(
            run.estimator,
            run.eval_input_fn,
            steps=run.settings.eval_steps,
            hooks=run.eval_hooks,
            name=None,
            max_pending=train_eval.BACKGROUND_MAX_PENDING,
        )
    )
