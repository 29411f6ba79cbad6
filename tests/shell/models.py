"""Tiny real estimators and in-memory data shared by the shell tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shell._tf import tf

N_ROWS = 64


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small linear regression problem: y = 2*x0 - x1 + 0.5 + noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_ROWS, 2)).astype("float32")
    y = (2 * x[:, 0] - x[:, 1] + 0.5 + 0.01 * rng.normal(size=N_ROWS)).astype("float32")
    return x, y.reshape(-1, 1)


def input_fn(*, repeat: bool, batch: int = 16, seed: int = 0) -> Callable[[], Any]:
    """A Dataset input_fn over `data`; repeating for training, one epoch for evaluation."""
    x, y = data(seed)

    def fn() -> Any:
        ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(batch)
        return ds.repeat() if repeat else ds

    return fn


def finite_train_input_fn(epochs: int, batch: int = 16) -> Callable[[], Any]:
    """Training input that runs out after `epochs` epochs (N_ROWS/batch steps each)."""
    x, y = data()

    def fn() -> Any:
        return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(batch).repeat(epochs)

    return fn


def model_fn(features: Any, labels: Any, mode: Any, params: Any) -> Any:
    """One dense layer regressor with Adam, plus an MAE metric."""
    x = features["x"]
    layer = tf.compat.v1.layers.Dense(1, name="out")
    pred = layer(x)
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode, predictions={"y": pred})
    loss = tf.compat.v1.losses.mean_squared_error(labels, pred)
    if mode == tf.estimator.ModeKeys.EVAL:
        mae = tf.compat.v1.metrics.mean_absolute_error(labels, pred)
        return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"mae": mae})
    opt = tf.compat.v1.train.AdamOptimizer(params.get("lr", 0.05))
    train_op = opt.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def estimator(model_dir: str, *, save_steps: int = 10, keep: int = 50, **params: Any) -> Any:
    """A tiny custom-model_fn Estimator checkpointing every `save_steps` steps."""
    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        save_checkpoints_steps=save_steps,
        save_checkpoints_secs=None,
        keep_checkpoint_max=keep,
        log_step_count_steps=1_000_000,
        save_summary_steps=1_000_000,
    )
    return tf.estimator.Estimator(model_fn=model_fn, config=config, params=params)


def linear(model_dir: str, *, save_steps: int = 10) -> Any:
    """A canned LinearRegressor over the same data."""
    config = tf.estimator.RunConfig(
        model_dir=model_dir, save_checkpoints_steps=save_steps, save_checkpoints_secs=None,
        log_step_count_steps=1_000_000,
    )
    column = tf.feature_column.numeric_column("x", shape=(2,))
    return tf.estimator.LinearRegressor([column], config=config)


def serving_input_fn() -> Any:
    """A serving input receiver for exports: a float tensor `x` of shape (None, 2)."""
    x = tf.compat.v1.placeholder(tf.float32, shape=(None, 2), name="x")
    return tf.estimator.export.ServingInputReceiver({"x": x}, {"x": x})
