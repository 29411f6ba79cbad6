"""PersistentEvaluator / make_evaluator give exactly what Estimator.evaluate gives, faster."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from shell.evaluator import (
    FallbackEvaluator,
    PersistentEvaluator,
    UnsupportedEvaluationError,
    make_evaluator,
)

_RNG = np.random.RandomState(0)
_X = _RNG.rand(64, 2).astype(np.float32)
_Y = (_X @ np.array([[1.0], [-2.0]], np.float32) + 0.5).astype(np.float32)


def _train_input_fn() -> Any:
    return tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).repeat().batch(8)


def _eval_input_fn() -> Any:
    """A finite Dataset of 64 rows in batches of 8 (8 steps until OutOfRange)."""
    return tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).batch(8)


def _tensor_input_fn() -> Any:
    """Returns (features, labels) tensors, not a Dataset: its input cannot be rewound."""
    return {"x": tf.constant(_X[:16])}, tf.constant(_Y[:16])


def _model_fn(features: Any, labels: Any, mode: Any, params: Any) -> Any:
    """A tiny two-dense-layer regressor with Adam and two extra metrics."""
    hidden = tf.compat.v1.layers.dense(features["x"], params["units"], activation=tf.nn.relu)
    if params.get("noise"):
        hidden = hidden + tf.random.normal(tf.shape(hidden))
    predictions = tf.compat.v1.layers.dense(hidden, 1)
    loss = tf.compat.v1.losses.mean_squared_error(labels, predictions)
    train_op = tf.compat.v1.train.AdamOptimizer(0.05).minimize(
        loss, global_step=tf.compat.v1.train.get_global_step()
    )
    metrics = {
        "mae": tf.compat.v1.metrics.mean_absolute_error(labels, predictions),
        "pred_mean": tf.compat.v1.metrics.mean(predictions),
    }
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, eval_metric_ops=metrics)


def _config(model_dir: Path) -> Any:
    return tf.estimator.RunConfig(
        model_dir=str(model_dir),
        tf_random_seed=7,
        save_checkpoints_steps=10,
        keep_checkpoint_max=100,
        save_summary_steps=1000,
        log_step_count_steps=1000,
    )


def _checkpoints(estimator: Any) -> list[str]:
    state = tf.train.get_checkpoint_state(estimator.model_dir)
    return [p for p in state.all_model_checkpoint_paths if not p.endswith("-0")]


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A custom model_fn Estimator trained once for 20 steps (checkpoints at 10 and 20)."""
    estimator = tf.estimator.Estimator(
        _model_fn, config=_config(tmp_path_factory.mktemp("custom")), params={"units": 4}
    )
    estimator.train(_train_input_fn, steps=20)
    return estimator


@pytest.fixture(scope="module")
def linear(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A canned LinearRegressor trained once for 20 steps."""
    estimator = tf.estimator.LinearRegressor(
        [tf.feature_column.numeric_column("x", shape=(2,))],
        config=_config(tmp_path_factory.mktemp("linear")),
    )
    estimator.train(_train_input_fn, steps=20)
    return estimator


def _assert_same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sorted(actual) == sorted(expected)
    assert actual["global_step"] == expected["global_step"]
    for key, value in expected.items():
        assert np.allclose(actual[key], value), (key, actual[key], value)


def _scalar_events(event_dir: str) -> list[tuple[int, str, float]]:
    events = []
    for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    events.append((event.step, value.tag, round(value.simple_value, 5)))
                elif value.tag == "checkpoint_path":
                    text = tf.make_ndarray(value.tensor).item().decode()
                    events.append((event.step, value.tag, os.path.basename(text)))
    return sorted(events)


@pytest.mark.parametrize("steps", [5, None])
def test_custom_model_two_checkpoints_match_estimator(custom: Any, steps: int | None) -> None:
    """Pins equal results to Estimator.evaluate on two checkpoints in turn (re-restore, reset)."""
    first, second = _checkpoints(custom)[:2]
    with PersistentEvaluator(custom, _eval_input_fn, steps=steps, name="two") as evaluator:
        for path in (first, second, first):
            expected = custom.evaluate(
                _eval_input_fn, steps=steps, checkpoint_path=path, name="two"
            )
            _assert_same(evaluator.evaluate(path), expected)
    assert expected["global_step"] == 10


def test_canned_linear_regressor_matches_estimator(linear: Any) -> None:
    """Pins that canned estimators (LinearRegressor) go persistent and match Estimator.evaluate."""
    evaluator = make_evaluator(linear, _eval_input_fn, steps=3)
    assert isinstance(evaluator, PersistentEvaluator)
    with evaluator:
        for path in _checkpoints(linear):
            expected = linear.evaluate(_eval_input_fn, steps=3, checkpoint_path=path)
            _assert_same(evaluator.evaluate(path), expected)


def test_tensor_input_fn_is_fed_into_one_session_with_equal_results(custom: Any) -> None:
    """Pins that an input_fn returning tensors (not a Dataset) is fed into one session, same results."""
    evaluator = make_evaluator(custom, _tensor_input_fn, steps=2, name="tensor")
    assert isinstance(evaluator, PersistentEvaluator)
    assert evaluator.reuses_session and evaluator.feeds_input
    with evaluator:
        for path in _checkpoints(custom)[:2]:
            expected = custom.evaluate(
                _tensor_input_fn, steps=2, checkpoint_path=path, name="tensor"
            )
            _assert_same(evaluator.evaluate(path), expected)


def test_hooks_and_random_ops_stay_persistent_fallback_for_non_estimators(custom: Any) -> None:
    """Pins: user hooks and stateful random ops stay persistent; a non-Estimator falls back."""
    hook = tf.compat.v1.train.StepCounterHook(every_n_steps=1000, output_dir=custom.model_dir)
    with make_evaluator(custom, _eval_input_fn, steps=2, hooks=[hook]) as hooked:
        assert isinstance(hooked, PersistentEvaluator)
        assert hooked.reuses_session
    noisy = tf.estimator.Estimator(
        _model_fn, config=_config(Path(custom.model_dir)), params={"units": 4, "noise": True}
    )
    path = _checkpoints(custom)[0]
    with make_evaluator(noisy, _eval_input_fn, steps=2, name="noisy") as evaluator:
        assert isinstance(evaluator, PersistentEvaluator)
        assert not evaluator.reuses_session  # the RNG restarts with each session
        assert not evaluator.feeds_input  # the model's own random ops keep session state
        for _ in range(2):
            expected = noisy.evaluate(_eval_input_fn, steps=2, checkpoint_path=path, name="noisy")
            _assert_same(evaluator.evaluate(path), expected)

    class NotAnEstimator:
        def eval_dir(self, name: str | None = None) -> str:
            return custom.eval_dir(name)

    assert isinstance(make_evaluator(NotAnEstimator(), _eval_input_fn, steps=2), FallbackEvaluator)
    with pytest.raises(UnsupportedEvaluationError, match="not an Estimator"):
        PersistentEvaluator(NotAnEstimator(), _eval_input_fn, steps=2)
    with pytest.raises(ValueError, match="steps > 0"):
        make_evaluator(custom, _eval_input_fn, steps=0)


def test_event_files_written_to_eval_dir(custom: Any) -> None:
    """Pins that summaries land in model_dir/eval and equal what Estimator.evaluate writes."""
    first, second = _checkpoints(custom)[:2]
    with make_evaluator(custom, _eval_input_fn, steps=2) as evaluator:
        assert isinstance(evaluator, PersistentEvaluator)
        evaluator.evaluate(first)
        evaluator.evaluate(second)
    eval_dir = os.path.join(custom.model_dir, "eval")
    assert glob.glob(os.path.join(eval_dir, "events.out.tfevents.*"))
    for path in (first, second):
        custom.evaluate(_eval_input_fn, steps=2, checkpoint_path=path, name="reference")
    written = _scalar_events(eval_dir)
    assert {tag for _, tag, _ in written} == {"loss", "mae", "pred_mean", "checkpoint_path"}
    assert written == _scalar_events(custom.eval_dir("reference"))


def test_evaluates_inside_saver_listener_during_train(tmp_path: Path) -> None:
    """Pins that a lazy first build inside after_save during train() works and stays correct."""
    estimator = tf.estimator.Estimator(_model_fn, config=_config(tmp_path), params={"units": 3})
    # Built on the first evaluate, i.e. while train()'s finalized graph is the default graph.
    evaluator = PersistentEvaluator(estimator, _eval_input_fn, steps=4)
    seen: list[tuple[str, dict[str, Any]]] = []

    class Listener(tf.estimator.CheckpointSaverListener):  # type: ignore[misc]
        def after_save(self, session: Any, global_step_value: int) -> None:
            path = tf.train.latest_checkpoint(estimator.model_dir)
            seen.append((path, evaluator.evaluate(path)))

    estimator.train(_train_input_fn, steps=20, saving_listeners=[Listener()])
    evaluator.close()
    assert [result["global_step"] for _, result in seen] == [0, 10, 20]
    for path, result in seen:
        _assert_same(result, estimator.evaluate(_eval_input_fn, steps=4, checkpoint_path=path))
    with pytest.raises(RuntimeError, match="closed"):
        evaluator.evaluate(seen[-1][0])
