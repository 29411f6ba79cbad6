"""train_and_evaluate builds its evaluation graph in a helper thread while training runs."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import train_eval
from shell import Experiment
from shell._tf import tf
from shell.evaluating import LazyEvaluator
from shell.evaluator import Evaluator, make_evaluator
from tests.shell import models

STEPS = 40
SAVE = 10


def _dnn(model_dir: str) -> Any:
    """A canned DNNRegressor (Keras layers) with a graph seed, checkpointing every SAVE steps."""
    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        tf_random_seed=7,
        save_checkpoints_steps=SAVE,
        save_checkpoints_secs=None,
        keep_checkpoint_max=50,
        log_step_count_steps=1_000_000,
        save_summary_steps=1_000_000,
    )
    column = tf.feature_column.numeric_column("x", shape=(2,))
    return tf.estimator.DNNRegressor([8, 4], [column], config=config)


def _scalars(result: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in result.items()}


def _weights(model_dir: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(model_dir)
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "dnn/" in name and "Adagrad" not in name
    }


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads `shell.run` makes its evaluators on, in order."""
    names: list[str] = []

    def recording(*args: Any, **kwargs: Any) -> Evaluator:
        names.append(threading.current_thread().name)
        return make_evaluator(*args, **kwargs)

    monkeypatch.setattr("shell.run.make_evaluator", recording)
    return names


def test_the_rule_builds_inline_evaluators_ahead_and_background_ones_in_their_worker() -> None:
    """Every evaluation mode has a build time: inline ahead, background in its worker."""
    assert set(train_eval.EVALUATOR_BUILD) == set(train_eval.EvalMode)
    assert train_eval.EVALUATOR_BUILD[train_eval.EvalMode.INLINE] is train_eval.EvaluatorBuild.AHEAD


def test_train_and_evaluate_builds_the_evaluator_in_a_helper_thread(
    tmp_path: Path, made: list[str]
) -> None:
    """The evaluator is made once, off the training thread, and evaluates the usual steps."""
    experiment = Experiment(
        models.estimator(str(tmp_path / "m"), save_steps=SAVE),
        train_input_fn=models.input_fn(repeat=True),
        eval_input_fn=models.input_fn(repeat=False),
        train_steps=STEPS,
        eval_steps=None,
        eval_every_n_steps=SAVE,
    )
    steps: list[int] = []
    experiment.on_evaluation(lambda result: steps.append(int(result["global_step"])))
    experiment.train_and_evaluate()
    assert made == ["tfexperiment-build-evaluator"]
    assert steps == [10, 20, 30, 40]
    assert not [t for t in threading.enumerate() if t.name == "tfexperiment-build-evaluator"]


def test_continuous_train_and_evaluate_builds_the_evaluator_in_a_helper_thread(
    tmp_path: Path, made: list[str]
) -> None:
    """continuous_train_and_evaluate builds it once, off the training thread, during the
    first iteration; every iteration is evaluated as before."""
    experiment = Experiment(
        models.estimator(str(tmp_path / "m"), save_steps=SAVE),
        train_input_fn=models.input_fn(repeat=True),
        eval_input_fn=models.input_fn(repeat=False),
        train_steps=STEPS,
        eval_steps=None,
        train_steps_per_iteration=20,
    )
    steps: list[int] = []
    experiment.on_evaluation(lambda result: steps.append(int(result["global_step"])))
    experiment.continuous_train_and_evaluate()
    assert made == ["tfexperiment-build-evaluator"]
    assert steps == [20, 40]


def test_a_canned_estimator_trains_and_evaluates_as_tf_estimator_does(tmp_path: Path) -> None:
    """DNNRegressor: with the evaluation graph built while it trains, its weights and every
    evaluation are bit-equal to tf.estimator's (train with an evaluating saver listener)."""
    ours_dir, ref_dir = str(tmp_path / "ours"), str(tmp_path / "ref")
    seen: list[dict[str, float]] = []
    random.seed(3)
    experiment = Experiment(
        _dnn(ours_dir),
        train_input_fn=models.input_fn(repeat=True),
        eval_input_fn=models.input_fn(repeat=False),
        train_steps=STEPS,
        eval_steps=None,
        eval_every_n_steps=SAVE,
    )
    experiment.on_evaluation(lambda result: seen.append(_scalars(result)))
    experiment.train_and_evaluate()

    ref_seen: list[dict[str, float]] = []

    class _Listener(tf.estimator.CheckpointSaverListener):  # type: ignore[misc]
        def after_save(self, session: Any, global_step_value: int) -> None:
            path = f"{ref_dir}/model.ckpt-{global_step_value}"
            if global_step_value:
                result = ref.evaluate(
                    models.input_fn(repeat=False), steps=None, checkpoint_path=path
                )
                ref_seen.append(_scalars(result))

    random.seed(3)
    ref = _dnn(ref_dir)
    ref.train(models.input_fn(repeat=True), max_steps=STEPS, saving_listeners=[_Listener()])

    assert [r["global_step"] for r in seen] == [10, 20, 30, 40]
    assert seen == ref_seen
    ours_w, ref_w = _weights(ours_dir), _weights(ref_dir)
    assert ours_w.keys() == ref_w.keys() and ours_w
    for name in ours_w:
        np.testing.assert_array_equal(ours_w[name], ref_w[name], err_msg=name)


class _Broken(Exception):
    pass


def test_an_error_building_ahead_is_raised_by_the_first_evaluation() -> None:
    """A build ahead that raises hands its error to the first evaluate, in the caller's thread."""

    def factory() -> Evaluator:
        raise _Broken("no graph")

    with LazyEvaluator(factory) as lazy:
        lazy.build_ahead()
        with pytest.raises(_Broken, match="no graph"):
            lazy.evaluate("unused")


def test_closing_waits_for_a_build_ahead_and_closes_what_it_built(tmp_path: Path) -> None:
    """Closing right after build_ahead waits for the build, then closes the evaluator."""
    release = threading.Event()
    built: list[Any] = []

    def factory() -> Evaluator:
        release.wait(10)
        evaluator = make_evaluator(
            models.estimator(str(tmp_path / "m")), models.input_fn(repeat=False), steps=None
        )
        built.append(evaluator)
        return evaluator

    lazy = LazyEvaluator(factory)
    lazy.build_ahead()
    release.set()
    lazy.close()
    assert len(built) == 1
    with pytest.raises(RuntimeError, match="closed"):
        built[0].evaluate("unused")
    assert not [t for t in threading.enumerate() if t.name == "tfexperiment-build-evaluator"]
