"""The README's worked example: a tiny custom model_fn classifier on synthetic data.

Run it with ``tfexperiment run examples.quickstart:experiment_fn --output-dir runs/quickstart``
or ``python -m examples.quickstart``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from shell import Experiment, run_experiment

_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(600, 4)).astype("float32")
_Y = (_X[:, 0] + _X[:, 1] > 0).astype("int64") + (_X[:, 2] > 1).astype("int64")  # 3 classes


def model_fn(features: Any, labels: Any, mode: Any, params: Any) -> Any:
    """A linear softmax classifier with an accuracy metric."""
    weights = tf.compat.v1.get_variable("weights", [4, 3])
    bias = tf.compat.v1.get_variable("bias", [3], initializer=tf.compat.v1.zeros_initializer())
    logits = tf.matmul(features["x"], weights) + bias
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode, predictions={"class": tf.argmax(logits, 1)})
    loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
    if mode == tf.estimator.ModeKeys.EVAL:
        accuracy = tf.compat.v1.metrics.accuracy(labels, tf.argmax(logits, 1))
        return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"accuracy": accuracy})
    train_op = tf.compat.v1.train.AdamOptimizer(0.05).minimize(
        loss, global_step=tf.compat.v1.train.get_global_step()
    )
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def train_input_fn() -> Any:
    """The first 500 rows, shuffled and repeated."""
    data = tf.data.Dataset.from_tensor_slices(({"x": _X[:500]}, _Y[:500]))
    return data.shuffle(500, seed=1).repeat().batch(32)


def eval_input_fn() -> Any:
    """The last 100 rows, one epoch."""
    return tf.data.Dataset.from_tensor_slices(({"x": _X[500:]}, _Y[500:])).batch(50)


def serving_input_fn() -> Any:
    """Exports take a float32 batch ``x`` of shape [None, 4]."""
    x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
    return tf.estimator.export.ServingInputReceiver({"x": x}, {"x": x})


def experiment_fn(output_dir: str) -> Experiment:
    """Train 2000 steps, evaluate the whole eval set every 400 steps, keep the best model."""
    config = tf.estimator.RunConfig(model_dir=output_dir, save_checkpoints_steps=200)
    return Experiment(
        tf.estimator.Estimator(model_fn, config=config),
        train_input_fn,
        eval_input_fn,
        train_steps=2000,
        eval_steps=None,  # evaluate the whole eval set
        eval_every_n_steps=400,  # at most every 400 steps, on a saved checkpoint
        export_strategies=[tf.estimator.BestExporter("best", serving_input_fn)],
    )


if __name__ == "__main__":
    eval_result, exports = run_experiment(experiment_fn, "runs/quickstart")
    print(eval_result, exports)
