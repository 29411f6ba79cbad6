"""A tiny experiment for the cluster tests, tuned by TFX_* environment variables per run."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

import shell
from shell._tf import tf

N_ROWS = 64
BATCH = 16


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_ROWS, 2)).astype("float32")
    y = (2 * x[:, 0] - x[:, 1] + 0.5).astype("float32").reshape(-1, 1)
    return x, y


def _task_type() -> str:
    return str(json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {}).get("type", ""))


def train_input_fn() -> Any:
    """Repeats forever; on the chief only ``TFX_CHIEF_EPOCHS`` epochs (4 steps each) if set."""
    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(BATCH)
    epochs = _int("TFX_CHIEF_EPOCHS", 0) if _task_type() in ("chief", "master") else 0
    return ds.repeat(epochs) if epochs > 0 else ds.repeat()


def eval_input_fn() -> Any:
    """One epoch of the same data."""
    x, y = _data()
    return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(BATCH)


def model_fn(features: Any, labels: Any, mode: Any) -> Any:
    """One dense layer regressor trained with SGD, with an MAE metric."""
    pred = tf.compat.v1.layers.dense(features["x"], 1, name="out")
    loss = tf.compat.v1.losses.mean_squared_error(labels, pred)
    if mode == tf.estimator.ModeKeys.EVAL:
        mae = tf.compat.v1.metrics.mean_absolute_error(labels, pred)
        return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"mae": mae})
    opt = tf.compat.v1.train.GradientDescentOptimizer(0.05)
    train_op = opt.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


class _PauseHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
    """Holds training at ``TFX_PAUSE_AT_STEP`` while the file ``TFX_PAUSE_FILE`` exists."""

    def __init__(self, pause_file: str, at_step: int) -> None:
        self._pause_file = pause_file
        self._at_step = at_step

    def begin(self) -> None:
        self._step = tf.compat.v1.train.get_global_step()

    def before_run(self, run_context: Any) -> None:
        if not os.path.exists(self._pause_file):
            return
        if int(run_context.session.run(self._step)) < self._at_step:
            return
        while os.path.exists(self._pause_file):
            time.sleep(0.05)


def experiment_fn(output_dir: str) -> shell.Experiment:
    """The Experiment every task of a test cluster builds (knobs: TFX_* variables)."""
    config = tf.estimator.RunConfig(
        model_dir=output_dir,
        save_checkpoints_steps=_int("TFX_SAVE_STEPS", 20),
        save_checkpoints_secs=None,
        keep_checkpoint_max=0,
        log_step_count_steps=None,
        save_summary_steps=1_000_000,
    )
    estimator = tf.estimator.Estimator(model_fn=model_fn, config=config)
    pause_file = os.environ.get("TFX_PAUSE_FILE", "")
    hooks = [_PauseHook(pause_file, _int("TFX_PAUSE_AT_STEP", 0))] if pause_file else None
    return shell.Experiment(
        estimator,
        train_input_fn,
        eval_input_fn,
        train_steps=_int("TFX_TRAIN_STEPS", 200),
        eval_steps=None,
        train_hooks=hooks,
        continuous_eval_throttle_secs=_float("TFX_THROTTLE_SECS", 0.5),
        eval_every_n_steps=None,
        delay_workers_by_global_step=os.environ.get("TFX_DELAY_BY_STEP") == "1",
    )


def failing_experiment_fn(output_dir: str) -> shell.Experiment:
    """Like `experiment_fn`, but the chief fails at once (the launcher must end the others)."""
    if _task_type() in ("chief", "master"):
        raise RuntimeError("this chief fails on purpose")
    return experiment_fn(output_dir)
