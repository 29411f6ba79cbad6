"""A tiny distributed experiment for the Kubernetes TFJob example and the local cluster launcher.

Every task of the job imports this module and calls `experiment_fn`; ``TF_CONFIG`` decides
what the task does (chief: train_and_evaluate, worker: train, ps: serve, evaluator:
continuous_eval). The data is synthetic (a noisy linear function), so nothing is downloaded.
Knobs, read from the environment so one container image serves every replica:
``TFX_TRAIN_STEPS`` (default 2000), ``TFX_SAVE_STEPS`` (checkpoint every N steps, 100) and
``TFX_KEEP_CHECKPOINTS`` (how many to keep, 5; 0 keeps all) and ``TFX_DATA_AUTOTUNE=0``
(turn tf.data autotuning off for the training input).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import shell
from shell._tf import tf

N_ROWS = 1024
BATCH = 32


def _data(seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_ROWS, 4)).astype("float32")
    y = x @ np.array([2.0, -1.0, 0.5, 3.0], dtype="float32") + 0.7
    y += 0.05 * rng.normal(size=N_ROWS).astype("float32")
    return x, y.reshape(-1, 1)


def train_input_fn() -> Any:
    """Shuffled batches of the training data, repeated forever."""
    x, y = _data(seed=0)
    ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
    ds = ds.shuffle(N_ROWS, seed=1).repeat().batch(BATCH)
    if os.environ.get("TFX_DATA_AUTOTUNE", "1") == "0":
        # TF 2.15 waits for tf.data's autotune thread (0-60 s) when a session closes.
        options = tf.data.Options()
        options.autotune.enabled = False
        ds = ds.with_options(options)
    return ds


def eval_input_fn() -> Any:
    """One pass over held-out data."""
    x, y = _data(seed=1)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(256)


def make_estimator(model_dir: str) -> Any:
    """A canned LinearRegressor whose RunConfig reads the cluster from TF_CONFIG."""
    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        save_checkpoints_steps=int(os.environ.get("TFX_SAVE_STEPS", 100)),
        save_checkpoints_secs=None,
        keep_checkpoint_max=int(os.environ.get("TFX_KEEP_CHECKPOINTS", 5)),
        log_step_count_steps=None,
    )
    column = tf.feature_column.numeric_column("x", shape=(4,))
    return tf.estimator.LinearRegressor([column], config=config)


def experiment_fn(output_dir: str) -> shell.Experiment:
    """The Experiment of every task; only the evaluator evaluates while training runs."""
    return shell.Experiment(
        make_estimator(output_dir),
        train_input_fn,
        eval_input_fn,
        train_steps=int(os.environ.get("TFX_TRAIN_STEPS", 2000)),
        eval_steps=None,
        eval_every_n_steps=None,
        continuous_eval_throttle_secs=2,
    )
