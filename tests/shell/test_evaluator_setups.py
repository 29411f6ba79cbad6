"""The persistent evaluator reproduces Estimator.evaluate bit for bit in every common set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from shell.evaluator import FallbackEvaluator, PersistentEvaluator, make_evaluator

_RNG = np.random.RandomState(1)
_X = _RNG.rand(48, 2).astype(np.float32)
_Y = (_X @ np.array([[1.0], [-2.0]], np.float32) + 0.5).astype(np.float32)
_COLOR = np.array(["red", "green", "blue"] * 16)
_CLASS = (_X[:, 0] > 0.5).astype(np.int64).reshape(-1, 1)
_CALLS: list[tuple[Any, ...]] = []  # what RecordingHook instances saw, in order


def _train_input_fn() -> Any:
    return tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).repeat().batch(8)


def _eval_input_fn() -> Any:
    return tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).batch(8)


class RecordingHook(tf.compat.v1.train.SessionRunHook):  # type: ignore[misc]
    """Records every life-cycle call with what it fetched (global step; eval step at the end).

    The eval step is not fetched per run: its read races the run's own increment.
    """

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def begin(self) -> None:
        _CALLS.append((self.tag, "begin"))
        self._step = tf.compat.v1.train.get_global_step()
        self._eval_step = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.EVAL_STEP)[0]

    def after_create_session(self, session: Any, coord: Any) -> None:
        _CALLS.append((self.tag, "after_create_session", coord is not None))

    def before_run(self, run_context: Any) -> Any:
        _CALLS.append((self.tag, "before_run"))
        return tf.compat.v1.train.SessionRunArgs(self._step)

    def after_run(self, run_context: Any, run_values: Any) -> None:
        _CALLS.append((self.tag, "after_run", int(run_values.results)))

    def end(self, session: Any) -> None:
        _CALLS.append((self.tag, "end", int(session.run(self._eval_step))))


class GrowingHook(tf.compat.v1.train.SessionRunHook):  # type: ignore[misc]
    """Adds an op to the graph in every `begin` (it needs a new graph per evaluation)."""

    def begin(self) -> None:
        self._constant = tf.constant(1.0)


def _model_fn(features: Any, labels: Any, mode: Any, params: Any) -> Any:
    """A small regressor; `params["spec_hook"]` adds a RecordingHook to evaluation_hooks."""
    hidden = tf.compat.v1.layers.dense(features["x"], 4, activation=tf.nn.relu)
    predictions = tf.compat.v1.layers.dense(hidden, 1)
    loss = tf.compat.v1.losses.mean_squared_error(labels, predictions)
    train_op = tf.compat.v1.train.AdamOptimizer(0.05).minimize(
        loss, global_step=tf.compat.v1.train.get_global_step()
    )
    hooks = [RecordingHook("spec")] if params.get("spec_hook") else None
    return tf.estimator.EstimatorSpec(
        mode,
        loss=loss,
        train_op=train_op,
        eval_metric_ops={"mae": tf.compat.v1.metrics.mean_absolute_error(labels, predictions)},
        evaluation_hooks=hooks,
    )


def _config(model_dir: Path) -> Any:
    return tf.estimator.RunConfig(
        model_dir=str(model_dir),
        tf_random_seed=11,
        save_checkpoints_steps=10,
        keep_checkpoint_max=100,
        save_summary_steps=1000,
        log_step_count_steps=1000,
    )


def _checkpoints(estimator: Any) -> list[str]:
    state = tf.train.get_checkpoint_state(estimator.model_dir)
    paths = [p for p in state.all_model_checkpoint_paths if not p.endswith("-0")]
    return [*paths, paths[0]]  # back to the first: nothing carries over


def _assert_identical(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert np.asarray(actual[key]).dtype == np.asarray(value).dtype, key
        assert np.array_equal(actual[key], value), (key, actual[key], value)


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A custom Estimator with an evaluation hook in its spec, trained 20 steps."""
    estimator = tf.estimator.Estimator(
        _model_fn, config=_config(tmp_path_factory.mktemp("setups")), params={"spec_hook": True}
    )
    estimator.train(_train_input_fn, steps=20)
    return estimator


def _compare(estimator: Any, input_fn: Any, *, steps: int | None, hooks: Any = ()) -> Any:
    """Evaluates each checkpoint both ways; asserts identical metrics and hook calls."""
    evaluator = make_evaluator(estimator, input_fn, steps=steps, hooks=hooks, name="cmp")
    with evaluator:
        for path in _checkpoints(estimator):
            _CALLS.clear()
            ours = evaluator.evaluate(path)
            our_calls = list(_CALLS)
            _CALLS.clear()
            theirs = estimator.evaluate(
                input_fn, steps=steps, hooks=list(hooks), checkpoint_path=path, name="cmp"
            )
            _assert_identical(ours, theirs)
            assert our_calls == _CALLS
    return evaluator


@pytest.mark.parametrize("steps", [3, None])
def test_user_and_spec_hooks_see_the_calls_estimator_makes(custom: Any, steps: int | None) -> None:
    """Pins that eval_hooks and evaluation_hooks get Estimator.evaluate's calls, in its order."""
    evaluator = _compare(custom, _eval_input_fn, steps=steps, hooks=[RecordingHook("user")])
    assert isinstance(evaluator, PersistentEvaluator) and evaluator.reuses_session
    assert _CALLS[0] == ("user", "begin") and _CALLS[-1][:2] == ("spec", "end")


def test_hook_growing_the_graph_hands_over_to_estimator_evaluate(custom: Any) -> None:
    """Pins that a hook adding ops in each begin makes later evaluations fall back, same results."""
    evaluator = _compare(custom, _eval_input_fn, steps=2, hooks=[GrowingHook()])
    assert isinstance(evaluator, PersistentEvaluator)
    assert isinstance(evaluator._fallback, FallbackEvaluator)


@pytest.mark.parametrize("steps", [3, None])
def test_numpy_input_fn_restarts_its_queues_each_evaluation(custom: Any, steps: int | None) -> None:
    """Pins that numpy_input_fn (queue runners, one epoch) restarts, fed into one session, exactly."""
    input_fn = tf.compat.v1.estimator.inputs.numpy_input_fn(
        {"x": _X}, _Y, batch_size=8, num_epochs=1, shuffle=False
    )
    hooks = [RecordingHook("user")]
    evaluator = _compare(custom, input_fn, steps=steps, hooks=hooks)
    assert isinstance(evaluator, PersistentEvaluator) and evaluator.reuses_session
    assert evaluator.feeds_input


def test_pandas_input_fn_matches(custom: Any) -> None:
    """Pins that pandas_input_fn (queue runners over a DataFrame) matches exactly."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x0": _X[:, 0], "x1": _X[:, 1]})
    labels = pd.Series(_Y[:, 0])

    def input_fn() -> Any:
        features, label = tf.compat.v1.estimator.inputs.pandas_input_fn(
            frame, labels, batch_size=8, num_epochs=1, shuffle=False
        )()
        x = tf.stack([tf.cast(features["x0"], tf.float32), tf.cast(features["x1"], tf.float32)], 1)
        return {"x": x}, tf.reshape(tf.cast(label, tf.float32), (-1, 1))

    evaluator = _compare(custom, input_fn, steps=None)
    assert isinstance(evaluator, PersistentEvaluator) and evaluator.reuses_session
    assert evaluator.feeds_input


def test_reshuffling_dataset_gets_a_fresh_session(custom: Any) -> None:
    """Pins that an eval Dataset reshuffled per iteration restarts its order, as Estimator's."""

    def input_fn() -> Any:
        return tf.data.Dataset.from_tensor_slices(({"x": _X}, _Y)).shuffle(48).batch(8)

    evaluator = _compare(custom, input_fn, steps=3)
    assert isinstance(evaluator, PersistentEvaluator) and not evaluator.reuses_session


def _numeric() -> list[Any]:
    return [tf.feature_column.numeric_column("x", shape=(2,))]


def _color() -> Any:
    return tf.feature_column.categorical_column_with_vocabulary_list("color", ["red", "green"])


_CANNED = {
    "LinearClassifier": lambda c: tf.estimator.LinearClassifier([*_numeric(), _color()], config=c),
    "LinearRegressor": lambda c: tf.estimator.LinearRegressor(_numeric(), config=c),
    "DNNClassifier": lambda c: tf.estimator.DNNClassifier([3], _numeric(), config=c),
    "DNNRegressor": lambda c: tf.estimator.DNNRegressor(
        [3], [*_numeric(), tf.feature_column.indicator_column(_color())], config=c
    ),
    "DNNLinearCombinedClassifier": lambda c: tf.estimator.DNNLinearCombinedClassifier(
        linear_feature_columns=[_color()],
        dnn_feature_columns=_numeric(),
        dnn_hidden_units=[3],
        config=c,
    ),
    "DNNLinearCombinedRegressor": lambda c: tf.estimator.DNNLinearCombinedRegressor(
        linear_feature_columns=[_color()],
        dnn_feature_columns=_numeric(),
        dnn_hidden_units=[3],
        config=c,
    ),
}


@pytest.mark.parametrize("kind", sorted(_CANNED))
def test_canned_estimators_stay_on_the_fast_path(kind: str, tmp_path: Path) -> None:
    """Pins that the main canned estimators reuse one session and match Estimator.evaluate."""
    labels = _CLASS if "Classifier" in kind else _Y

    def input_fn(repeat: bool) -> Any:
        data = tf.data.Dataset.from_tensor_slices(({"x": _X, "color": _COLOR}, labels))
        return data.repeat().batch(8) if repeat else data.batch(8)

    estimator = _CANNED[kind](_config(tmp_path))
    estimator.train(lambda: input_fn(True), steps=20)
    evaluator = _compare(estimator, lambda: input_fn(False), steps=4)
    assert isinstance(evaluator, PersistentEvaluator) and evaluator.reuses_session
