"""The benchmark model: a tiny two-dense-layer regressor with Adam on in-memory data."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as shell does: same env on both sides
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import tensorflow as tf

__all__ = [
    "CountingHook",
    "canned_estimator",
    "estimator",
    "eval_input_fn",
    "model_fn",
    "numpy_eval_input_fn",
    "quiet",
    "tf",
    "train_input_fn",
]

SEED = 42
TRAIN_ROWS = 256
EVAL_ROWS = 512
BATCH = 32
FEATURES = 4


def data(rows: int, seed: int) -> tuple[Any, Any]:
    """A regression problem ``y = x·w + 0.5 + noise`` with a fixed ``w``, as float32 arrays.

    Args:
        rows: Number of examples.
        seed: Seed of the example generator (``w`` is always the same).

    Returns:
        ``(x, y)`` of shapes ``(rows, FEATURES)`` and ``(rows, 1)``.
    """
    weights = np.array([2.0, -1.0, 0.5, 3.0], dtype="float32")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES)).astype("float32")
    y = x @ weights + 0.5 + 0.01 * rng.normal(size=rows).astype("float32")
    return x, y.reshape(-1, 1).astype("float32")


def train_input_fn() -> Any:
    """Training input: the training rows, shuffled with a fixed seed, batched, repeated."""
    x, y = data(TRAIN_ROWS, seed=0)
    ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
    return ds.shuffle(TRAIN_ROWS, seed=SEED).batch(BATCH).repeat()


def eval_input_fn() -> Any:
    """Evaluation input: one epoch of the evaluation rows (16 batches, more than 10 steps)."""
    x, y = data(EVAL_ROWS, seed=1)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(BATCH)


def model_fn(features: Any, labels: Any, mode: Any, params: Any) -> Any:
    """Two dense layers (16 ReLU units, 1 linear output), MSE loss, Adam, an MAE metric."""
    del params
    # Keras' unseeded initializers draw a random seed in Python and ignore RunConfig's
    # tf_random_seed: seed them explicitly so both sides start from the same weights.
    hidden = tf.compat.v1.layers.dense(
        features["x"],
        16,
        activation=tf.nn.relu,
        name="hidden",
        kernel_initializer=tf.compat.v1.glorot_uniform_initializer(seed=SEED),
    )
    pred = tf.compat.v1.layers.dense(
        hidden,
        1,
        name="out",
        kernel_initializer=tf.compat.v1.glorot_uniform_initializer(seed=SEED + 1),
    )
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode, predictions={"y": pred})
    loss = tf.compat.v1.losses.mean_squared_error(labels, pred)
    if mode == tf.estimator.ModeKeys.EVAL:
        mae = tf.compat.v1.metrics.mean_absolute_error(labels, pred)
        return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"mae": mae})
    optimizer = tf.compat.v1.train.AdamOptimizer(0.01)
    train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def estimator(
    model_dir: str, *, save_steps: int | None = 200, save_secs: float | None = None
) -> Any:
    """The benchmark Estimator, seeded (``tf_random_seed``), checkpointing by steps or secs.

    Args:
        model_dir: Where checkpoints and event files go.
        save_steps: Checkpoint every this many steps (None: use ``save_secs``).
        save_secs: Checkpoint every this many seconds (only when ``save_steps`` is None).

    Returns:
        A ``tf.estimator.Estimator`` over `model_fn`.
    """
    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        tf_random_seed=SEED,
        save_checkpoints_steps=save_steps,
        save_checkpoints_secs=save_secs if save_steps is None else None,
        keep_checkpoint_max=50,
    )
    return tf.estimator.Estimator(model_fn=model_fn, config=config)


InputFn = Callable[[], Any]


def quiet() -> None:
    """Silence TensorFlow's INFO logs and deprecation warnings, as ``shell`` does for itself.

    Imported by every side, so both sides of a workload pay the same logging cost.
    """
    tf.get_logger().setLevel(logging.ERROR)
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    from tensorflow.python.util import deprecation

    deprecation._PRINT_DEPRECATION_WARNINGS = False


quiet()


# ------------------------------------------------------------ W1 set-ups beyond the plain one
def canned_estimator(model_dir: str, *, save_steps: int | None = 200) -> Any:
    """A canned ``DNNRegressor`` (16 hidden units, Adam) on the same data and ``RunConfig``.

    Keras' layers inside it draw unseeded initializer seeds from Python's ``random``: the
    seeds are fixed here so both sides start from the same weights.
    """
    tf.keras.utils.set_random_seed(SEED)
    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        tf_random_seed=SEED,
        save_checkpoints_steps=save_steps,
        keep_checkpoint_max=50,
    )
    columns = [tf.feature_column.numeric_column("x", shape=(FEATURES,))]
    return tf.estimator.DNNRegressor([16], columns, optimizer="Adam", config=config)


def numpy_eval_input_fn() -> Any:
    """Evaluation input through queue runners: ``numpy_input_fn``, one epoch, in order."""
    x, y = data(EVAL_ROWS, seed=1)
    fn = tf.compat.v1.estimator.inputs.numpy_input_fn(
        {"x": x}, y, batch_size=BATCH, num_epochs=1, shuffle=False
    )
    return fn()


class CountingHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
    """An evaluation hook that fetches the global step each run and counts the runs."""

    def __init__(self) -> None:
        self.runs = 0

    def begin(self) -> None:
        self._step = tf.compat.v1.train.get_global_step()

    def before_run(self, run_context: Any) -> Any:
        return tf.compat.v1.train.SessionRunArgs(self._step)

    def after_run(self, run_context: Any, run_values: Any) -> None:
        self.runs += 1
