"""Input that keeps state in the session is fed from an input graph into one kept session."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from shell.evaluator import PersistentEvaluator, make_evaluator

_RNG = np.random.RandomState(3)
_X = _RNG.rand(40, 2).astype(np.float32)
_Y = (_X @ np.array([[1.5], [-1.0]], np.float32) + 0.25).astype(np.float32)


def _train_input_fn() -> Any:
    return tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).repeat().batch(8)


def _model_fn(features: Any, labels: Any, mode: Any) -> Any:
    """A one-layer regressor with two metrics."""
    predictions = tf.compat.v1.layers.dense(features["x"], 1)
    loss = tf.compat.v1.losses.mean_squared_error(labels, predictions)
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
        loss, global_step=tf.compat.v1.train.get_global_step()
    )
    metrics = {
        "mae": tf.compat.v1.metrics.mean_absolute_error(labels, predictions),
        "label_sum": tf.compat.v1.metrics.mean(tf.reduce_sum(labels)),
    }
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, eval_metric_ops=metrics)


@pytest.fixture(scope="module")
def estimator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An Estimator trained 20 steps with checkpoints at 10 and 20."""
    config = tf.estimator.RunConfig(
        model_dir=str(tmp_path_factory.mktemp("fed")),
        tf_random_seed=11,
        save_checkpoints_steps=10,
        keep_checkpoint_max=10,
        log_step_count_steps=1000,
    )
    est = tf.estimator.Estimator(_model_fn, config=config)
    est.train(_train_input_fn, steps=20)
    return est


def _paths(estimator: Any) -> list[str]:
    state = tf.train.get_checkpoint_state(estimator.model_dir)
    return [p for p in state.all_model_checkpoint_paths if not p.endswith("-0")]


def _same(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert np.array_equal(ours[key], value), (key, ours[key], value)


def _compare(estimator: Any, input_fn: Any, steps: int | None) -> PersistentEvaluator:
    """Evaluates every checkpoint twice both ways; asserts bit-identical metrics."""
    evaluator = make_evaluator(estimator, input_fn, steps=steps, name="fed")
    assert isinstance(evaluator, PersistentEvaluator)
    with evaluator:
        for path in _paths(estimator) * 2:
            theirs = estimator.evaluate(input_fn, steps=steps, checkpoint_path=path, name="fed")
            _same(evaluator.evaluate(path), theirs)
    return evaluator


@pytest.mark.parametrize("steps", [2, None])
def test_one_shot_iterator_restarts_each_evaluation(estimator: Any, steps: int | None) -> None:
    """Pins that a one-shot iterator input restarts per evaluation, fed into one session."""

    def input_fn() -> Any:
        dataset = tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).batch(16)
        return tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()

    evaluator = _compare(estimator, input_fn, steps)
    assert evaluator.reuses_session and evaluator.feeds_input


def test_an_input_error_is_raised_as_estimators_and_the_next_evaluation_runs(
    estimator: Any,
) -> None:
    """Pins that an input error mid-evaluation surfaces like Estimator's, then evaluation goes on."""
    bad = _X.copy()
    bad[20, 0] = np.nan

    def failing() -> Any:
        dataset = tf.data.Dataset.from_tensor_slices(({"x": bad}, _Y)).batch(8)
        dataset = dataset.map(lambda f, y: ({"x": tf.debugging.check_numerics(f["x"], "x")}, y))
        return tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()

    path = _paths(estimator)[-1]
    with pytest.raises(tf.errors.InvalidArgumentError):
        estimator.evaluate(failing, steps=None, checkpoint_path=path, name="bad")
    with make_evaluator(estimator, failing, steps=None, name="bad") as evaluator:
        assert isinstance(evaluator, PersistentEvaluator) and evaluator.feeds_input
        for _ in range(2):
            with pytest.raises(tf.errors.InvalidArgumentError):
                evaluator.evaluate(path)
        # Two batches come before the bad row: those evaluate as Estimator's do.
        theirs = estimator.evaluate(failing, steps=2, checkpoint_path=path, name="bad")
    with make_evaluator(estimator, failing, steps=2, name="bad") as evaluator:
        _same(evaluator.evaluate(path), theirs)


def test_closing_ends_every_input_thread(estimator: Any) -> None:
    """Pins that closing the evaluator stops the input session opened ahead and its runners."""
    before = set(threading.enumerate())
    input_fn = tf.compat.v1.estimator.inputs.numpy_input_fn(
        {"x": _X}, _Y, batch_size=8, num_epochs=1, shuffle=False
    )
    with make_evaluator(estimator, input_fn, steps=None, name="threads") as evaluator:
        for path in _paths(estimator):
            evaluator.evaluate(path)
    # Summary writers' EventLoggerThreads are TF's own (one per eval dir), kept for reuse.
    ours = [t for t in set(threading.enumerate()) - before if t.name != "EventLoggerThread"]
    for thread in ours:
        thread.join(timeout=10)
    assert not [t.name for t in ours if t.is_alive()]


def test_estimator_own_model_dir_is_untouched_by_the_input_graph(
    estimator: Any, tmp_path: Path
) -> None:
    """Pins that the input graph writes nothing: only eval_<name> gets event files."""
    input_fn = tf.compat.v1.estimator.inputs.numpy_input_fn(
        {"x": _X}, _Y, batch_size=8, num_epochs=1, shuffle=False
    )
    before = sorted(p.name for p in Path(estimator.model_dir).iterdir())
    with make_evaluator(estimator, input_fn, steps=2, name="quiet") as evaluator:
        evaluator.evaluate(_paths(estimator)[0])
    after = sorted(p.name for p in Path(estimator.model_dir).iterdir())
    assert set(after) - set(before) <= {"eval_quiet"}
