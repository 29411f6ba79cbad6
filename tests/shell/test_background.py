"""BackgroundEvaluator evaluates checkpoints in a worker thread while training goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from shell.background import BackgroundEvaluator, Evaluated
from shell.evaluator import PersistentEvaluator

_RNG = np.random.RandomState(3)
_X = _RNG.rand(64, 2).astype(np.float32)
_Y = (_X @ np.array([[1.0], [-2.0]], np.float32) + 0.5).astype(np.float32)


def _train_input_fn() -> Any:
    return tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).repeat().batch(8)


def _eval_input_fn() -> Any:
    return tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).batch(8)


def _model_fn(features: Any, labels: Any, mode: Any) -> Any:
    hidden = tf.compat.v1.layers.dense(features["x"], 4, activation=tf.nn.relu)
    predictions = tf.compat.v1.layers.dense(hidden, 1)
    loss = tf.compat.v1.losses.mean_squared_error(labels, predictions)
    train_op = tf.compat.v1.train.AdamOptimizer(0.05).minimize(
        loss, global_step=tf.compat.v1.train.get_global_step()
    )
    metrics = {"mae": tf.compat.v1.metrics.mean_absolute_error(labels, predictions)}
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, eval_metric_ops=metrics)


def _estimator(model_dir: Path) -> Any:
    config = tf.estimator.RunConfig(
        model_dir=str(model_dir),
        tf_random_seed=3,
        save_checkpoints_steps=10,
        keep_checkpoint_max=100,
        save_summary_steps=1000,
        log_step_count_steps=1000,
    )
    return tf.estimator.Estimator(_model_fn, config=config)


def test_evaluates_during_training_in_order_with_estimator_metrics(tmp_path: Path) -> None:
    """Pins the same steps, order and metrics as evaluating each saved checkpoint inline."""
    estimator = _estimator(tmp_path)
    collected: list[Evaluated] = []
    background = BackgroundEvaluator(estimator, _eval_input_fn, steps=4)

    class Listener(tf.estimator.CheckpointSaverListener):  # type: ignore[misc]
        def after_save(self, session: Any, global_step_value: int) -> None:
            background.submit(tf.train.latest_checkpoint(estimator.model_dir), global_step_value)
            collected.extend(background.results())

    with background:
        estimator.train(_train_input_fn, steps=40, saving_listeners=[Listener()])
        collected.extend(background.drain())
        assert isinstance(background.evaluator, PersistentEvaluator)
    assert [e.step for e in collected] == [0, 10, 20, 30, 40]
    for evaluated in collected:
        expected = estimator.evaluate(
            _eval_input_fn, steps=4, checkpoint_path=evaluated.checkpoint_path
        )
        assert sorted(evaluated.result) == sorted(expected)
        for key, value in expected.items():
            assert np.array_equal(evaluated.result[key], value), key
    assert background.evaluator is None  # closed


def test_failure_is_carried_back_then_refused(tmp_path: Path) -> None:
    """Pins that an evaluation's exception is raised by drain, later submits are refused."""
    estimator = _estimator(tmp_path)
    estimator.train(_train_input_fn, steps=10)
    with BackgroundEvaluator(estimator, _eval_input_fn, steps=2, max_pending=2) as background:
        background.submit(tf.train.latest_checkpoint(str(tmp_path)), 10)
        background.submit(str(tmp_path / "model.ckpt-999"), 999)
        with pytest.raises((ValueError, tf.errors.OpError)):
            background.drain()
        with pytest.raises(RuntimeError, match="earlier background evaluation failed"):
            background.submit(tf.train.latest_checkpoint(str(tmp_path)), 10)
    with pytest.raises(RuntimeError, match="closed"):
        background.submit(tf.train.latest_checkpoint(str(tmp_path)), 10)
    with pytest.raises(ValueError, match="max_pending"):
        BackgroundEvaluator(estimator, _eval_input_fn, steps=2, max_pending=0)
