"""Child of test_evaluator_distribute: MirroredStrategy on 2 logical CPUs, ours vs Estimator.

Run as ``python -m tests.shell.eval_distribute_child MODEL_DIR``; prints one JSON line with
both sides' metrics (as ``float.hex``) per checkpoint and what kind of evaluator was made.
Logical devices must be configured before TensorFlow initialises, hence its own process.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tensorflow as tf

_RNG = np.random.RandomState(2)
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


def _strategy() -> Any:
    # The default cross-device ops (NCCL all-reduce) hang on CPU-only devices in TF 2.15.
    return tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def main(model_dir: str) -> None:
    """Trains 20 steps under MirroredStrategy, then evaluates 10, 20, 10 both ways."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from shell.evaluator import PersistentEvaluator, make_evaluator

    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        tf_random_seed=5,
        save_checkpoints_steps=10,
        keep_checkpoint_max=100,
        train_distribute=_strategy(),
        eval_distribute=_strategy(),
    )
    estimator = tf.estimator.Estimator(_model_fn, config=config)
    estimator.train(_train_input_fn, steps=20)
    state = tf.train.get_checkpoint_state(model_dir)
    paths = [p for p in state.all_model_checkpoint_paths if not p.endswith("-0")]
    evaluator = make_evaluator(estimator, _eval_input_fn, steps=3)
    pairs = []
    for path in [*paths, paths[0]]:
        ours = evaluator.evaluate(path)
        theirs = estimator.evaluate(_eval_input_fn, steps=3, checkpoint_path=path)
        pairs.append([{k: float(v).hex() for k, v in sorted(r.items())} for r in (ours, theirs)])
    evaluator.close()
    kind = type(evaluator).__name__
    reuses = isinstance(evaluator, PersistentEvaluator) and evaluator.reuses_session
    print(json.dumps({"kind": kind, "reuses_session": reuses, "pairs": pairs}))


if __name__ == "__main__":
    main(sys.argv[1])
