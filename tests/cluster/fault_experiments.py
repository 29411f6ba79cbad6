"""Experiments for the fault tests: the cluster tests' tiny model, with a failing chief,
a short chief deadline and early stopping (knobs: TFX_* environment variables)."""

from __future__ import annotations

import os
from typing import Any

import shell
from core.settings import ExperimentSettings
from shell._tf import tf
from tests.cluster import experiments as base

FAULT_SPEC = "tests.cluster.fault_experiments:experiment_fn"


class _FailHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
    """Raises a permanent error once the global step reaches ``at_step``."""

    def __init__(self, at_step: int) -> None:
        self._at_step = at_step

    def begin(self) -> None:
        self._step = tf.compat.v1.train.get_global_step()

    def after_run(self, run_context: Any, run_values: Any) -> None:
        if int(run_context.session.run(self._step)) >= self._at_step:
            raise ValueError(f"bad data at step {self._at_step} (on purpose)")


def experiment_fn(output_dir: str) -> shell.Experiment:
    """The cluster tests' experiment, plus: ``TFX_FAIL_AT_STEP`` (the chief raises),
    ``TFX_CHIEF_LOST_SECS`` (chief_lost_after_secs), ``TFX_PATIENCE`` (early stopping on
    loss with a min_delta no evaluation beats, so it stops after that many evaluations)."""
    config = tf.estimator.RunConfig(
        model_dir=output_dir,
        save_checkpoints_steps=base._int("TFX_SAVE_STEPS", 20),
        save_checkpoints_secs=None,
        keep_checkpoint_max=0,
        log_step_count_steps=None,
        save_summary_steps=1_000_000,
    )
    estimator = tf.estimator.Estimator(model_fn=base.model_fn, config=config)
    hooks: list[Any] = []
    pause_file = os.environ.get("TFX_PAUSE_FILE", "")
    if pause_file:
        hooks.append(base._PauseHook(pause_file, base._int("TFX_PAUSE_AT_STEP", 0)))
    fail_at = base._int("TFX_FAIL_AT_STEP", 0)
    if fail_at and base._task_type() in ("chief", "master", ""):
        hooks.append(_FailHook(fail_at))
    patience = base._int("TFX_PATIENCE", 0)
    predicate = (
        shell.stop_when_no_improvement("loss", patience=patience, min_delta=1e9)
        if patience
        else None
    )
    settings = ExperimentSettings(
        train_steps=base._int("TFX_TRAIN_STEPS", 200),
        eval_steps=None,
        continuous_eval_throttle_secs=base._float("TFX_THROTTLE_SECS", 0.3),
        eval_every_n_steps=base._int("TFX_EVAL_EVERY", 0) or None,
        chief_lost_after_secs=base._float("TFX_CHIEF_LOST_SECS", 600.0),
    )
    return shell.Experiment.from_settings(
        estimator,
        base.train_input_fn,
        base.eval_input_fn,
        settings=settings,
        train_hooks=hooks,
        continuous_eval_predicate_fn=predicate,
    )
