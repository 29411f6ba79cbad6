"""Experiments of the strategy tests: the cluster tests' tiny model under a tf.distribute strategy."""

from __future__ import annotations

import os

import shell
from core.strategy import parse_strategy
from shell import strategy
from tests.cluster.experiments import _float, _int, eval_input_fn, model_fn, train_input_fn


def multi_worker_experiment_fn(output_dir: str) -> shell.Experiment:
    """Every task's Experiment under ``strategy: multi_worker_mirrored`` (knobs: TFX_*)."""
    spec = parse_strategy(
        {"type": "multi_worker_mirrored", "communication": os.environ.get("TFX_COMM", "ring")}
    )
    config = strategy.run_config(
        spec,
        model_dir=output_dir,
        save_checkpoints_steps=_int("TFX_SAVE_STEPS", 20),
        save_checkpoints_secs=None,
        keep_checkpoint_max=0,
        log_step_count_steps=None,
        save_summary_steps=1_000_000,
    )
    from shell._tf import tf

    estimator = tf.estimator.Estimator(model_fn=model_fn, config=config)
    return shell.Experiment(
        estimator,
        train_input_fn,
        eval_input_fn,
        train_steps=_int("TFX_TRAIN_STEPS", 100),
        eval_steps=None,
        continuous_eval_throttle_secs=_float("TFX_THROTTLE_SECS", 0.5),
        eval_every_n_steps=None,
    )
