"""The vanished-checkpoint race: continuous_eval beside a trainer deleting old checkpoints."""

from __future__ import annotations

import glob
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from shell import Experiment
from shell._tf import tf
from tests.shell import models

VANISHED = "vanished before evaluation; skipped"


@pytest.fixture
def broken_dir(trained_dir: str, tmp_path: Path) -> str:
    """A copy whose `checkpoint` file names model.ckpt-30 as latest, its data files deleted."""
    model_dir = str(tmp_path / "model")
    shutil.copytree(trained_dir, model_dir)
    _point_latest_at(model_dir, 30)
    data = glob.glob(os.path.join(model_dir, "model.ckpt-30.data-*"))
    assert data
    for path in data:
        os.unlink(path)
    return model_dir


def _point_latest_at(model_dir: str, step: int) -> None:
    tf.compat.v1.train.update_checkpoint_state(
        model_dir,
        os.path.join(model_dir, f"model.ckpt-{step}"),
        all_model_checkpoint_paths=[
            os.path.join(model_dir, f"model.ckpt-{s}") for s in range(10, step + 1, 10)
        ],
    )


def _experiment(model_dir: str, **kwargs: Any) -> Experiment:
    kwargs.setdefault("eval_input_fn", models.input_fn(repeat=False))
    eval_input_fn = kwargs.pop("eval_input_fn")
    return models.experiment(
        models.estimator(model_dir),
        models.input_fn(repeat=True),
        eval_input_fn,
        eval_steps=None,
        **kwargs,
    )


def test_continuous_eval_survives_a_trainer_keeping_one_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A trainer saving every step with keep_checkpoint_max=1 never crashes continuous_eval."""
    caplog.set_level(logging.INFO, logger="tfexperiment")
    model_dir = str(tmp_path / "m")
    trainer = models.estimator(model_dir, save_steps=1, keep=1)
    experiment = _experiment(model_dir, train_steps=80)
    with models.training_in_background(trainer, 80) as errors:
        result = experiment.continuous_eval(throttle_delay_secs=0)
    assert not errors  # includes "the trainer thread did not finish"
    assert int(result["global_step"]) == 80
    skipped = [r for r in caplog.records if VANISHED in r.getMessage()]
    assert all(r.levelno == logging.WARNING for r in skipped)


@pytest.mark.parametrize("hooks", [False, True], ids=["persistent", "fallback"])
def test_vanished_checkpoint_is_skipped_once_and_the_next_evaluated(
    broken_dir: str, caplog: pytest.LogCaptureFixture, hooks: bool
) -> None:
    """A listed checkpoint whose data files are gone is skipped with one warning; the next is evaluated."""
    caplog.set_level(logging.INFO, logger="tfexperiment")
    polls: list[float] = []

    def sleep(secs: float) -> None:
        polls.append(secs)
        if len(polls) == 3:  # the trainer "saves" step 40 a little later
            _point_latest_at(broken_dir, 40)

    experiment = _experiment(
        broken_dir,
        train_steps=40,
        eval_hooks=[models.StepCounter()] if hooks else None,
        sleep=sleep,
    )
    seen: list[int] = []
    experiment.on_evaluation(lambda r: seen.append(int(r["global_step"])))
    result = experiment.continuous_eval(throttle_delay_secs=0)
    assert seen == [40] and int(result["global_step"]) == 40
    warnings = [r for r in caplog.records if VANISHED in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "model.ckpt-30" in warnings[0].getMessage()


def test_other_evaluation_errors_still_propagate(trained_dir: str, tmp_path: Path) -> None:
    """An eval input_fn raising RuntimeError is not mistaken for a vanished checkpoint."""
    model_dir = str(tmp_path / "model")
    shutil.copytree(trained_dir, model_dir)

    def failing_input_fn() -> Any:
        raise RuntimeError("eval input is broken")

    # An eval hook forces Estimator.evaluate, so the error arises inside the skip guard.
    experiment = _experiment(
        model_dir, train_steps=40, eval_input_fn=failing_input_fn, eval_hooks=[models.StepCounter()]
    )
    with pytest.raises(RuntimeError, match="eval input is broken"):
        experiment.continuous_eval(throttle_delay_secs=0)


def test_other_tf_errors_still_propagate(trained_dir: str, tmp_path: Path) -> None:
    """A TF error during evaluation (a failing assertion in the input) propagates."""
    model_dir = str(tmp_path / "model")
    shutil.copytree(trained_dir, model_dir)

    def asserting_input_fn() -> Any:
        def check(features: Any, labels: Any) -> Any:
            tf.debugging.assert_less(labels, -1e9, message="impossible label")
            return features, labels

        return models.input_fn(repeat=False)().map(check)

    experiment = _experiment(model_dir, train_steps=40, eval_input_fn=asserting_input_fn)
    with pytest.raises(tf.errors.InvalidArgumentError, match="impossible label"):
        experiment.continuous_eval(throttle_delay_secs=0)
