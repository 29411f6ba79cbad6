"""train_and_evaluate and continuous_train_and_evaluate on real tf.estimator."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from shell import Experiment, ExportStrategy, disk, stop_when_no_improvement
from tests.shell import models


def _experiment(model_dir: str, *, save_steps: int = 10, **kwargs: Any) -> Experiment:
    kwargs.setdefault("eval_steps", None)
    kwargs.setdefault("train_input_fn", models.input_fn(repeat=True))
    return Experiment(
        models.estimator(model_dir, save_steps=save_steps),
        eval_input_fn=models.input_fn(repeat=False),
        **kwargs,
    )


def _listen(experiment: Experiment) -> list[int]:
    steps: list[int] = []
    experiment.on_evaluation(lambda result: steps.append(int(result["global_step"])))
    return steps


class _Recorder:
    """An export_fn recording the checkpoint it exported; returns a marker."""

    def __init__(self) -> None:
        self.checkpoints: list[str | None] = []

    def __call__(self, estimator: Any, export_path: str, checkpoint_path: str | None) -> str:
        self.checkpoints.append(checkpoint_path)
        return f"exported {os.path.basename(checkpoint_path or '')}"


# ---------------------------------------------------------------- train_and_evaluate


def test_train_and_evaluate_evaluates_every_n_steps_and_returns_result_and_exports(
    tmp_path: Path,
) -> None:
    """Saving every 10 steps with eval_every_n_steps=20 over 100 evaluates exactly 20..100."""
    model_dir = str(tmp_path / "m")
    exports = _Recorder()
    experiment = _experiment(
        model_dir,
        train_steps=100,
        eval_every_n_steps=20,
        export_strategies=ExportStrategy("rec", exports),
    )
    steps = _listen(experiment)
    result, exported = experiment.train_and_evaluate()
    assert steps == [20, 40, 60, 80, 100]
    assert int(result["global_step"]) == 100
    assert exported == ["exported model.ckpt-100"]
    assert exports.checkpoints == [os.path.join(model_dir, "model.ckpt-100")]
    assert os.path.exists(os.path.join(model_dir, "tfexperiment", "chief-0.done.json"))


def test_train_and_evaluate_runs_exporters_once_per_evaluation(tmp_path: Path) -> None:
    """Exporters run after each in-training evaluation and once, as final, for the last one."""
    exporter = models.RecordingExporter()
    experiment = _experiment(
        str(tmp_path / "m"), train_steps=60, eval_every_n_steps=20, export_strategies=[exporter]
    )
    experiment.train_and_evaluate()
    assert exporter.calls == [
        ("model.ckpt-20", False),
        ("model.ckpt-40", False),
        ("model.ckpt-60", True),
    ]


def test_train_and_evaluate_every_step_evaluates_each_checkpoint_once(tmp_path: Path) -> None:
    """eval_every_n_steps=1 evaluates every saved checkpoint but the start one, never twice."""
    experiment = _experiment(str(tmp_path / "m"), train_steps=50, eval_every_n_steps=1)
    steps = _listen(experiment)
    experiment.train_and_evaluate()
    assert steps == [10, 20, 30, 40, 50]


@pytest.mark.parametrize("every", [None, 0])
def test_train_and_evaluate_none_or_zero_evaluates_only_the_final(
    tmp_path: Path, every: int | None
) -> None:
    """eval_every_n_steps None or 0 evaluates only after training, the final checkpoint."""
    experiment = _experiment(str(tmp_path / "m"), train_steps=40, eval_every_n_steps=every)
    steps = _listen(experiment)
    result, exported = experiment.train_and_evaluate()
    assert steps == [40]
    assert int(result["global_step"]) == 40 and exported == []


def test_train_and_evaluate_resuming_does_not_evaluate_the_start_checkpoint(
    tmp_path: Path,
) -> None:
    """Resuming from a checkpoint at step 50 evaluates 60..100 but never step 50."""
    model_dir = str(tmp_path / "m")
    models.train_to(model_dir, 50)
    experiment = _experiment(model_dir, train_steps=100, eval_every_n_steps=1)
    steps = _listen(experiment)
    experiment.train_and_evaluate()
    assert steps == [60, 70, 80, 90, 100]


def test_train_and_evaluate_evaluates_the_final_checkpoint_off_the_grid(tmp_path: Path) -> None:
    """A final checkpoint between eval_every_n_steps marks is still evaluated, once."""
    experiment = _experiment(str(tmp_path / "m"), train_steps=45, eval_every_n_steps=20)
    steps = _listen(experiment)
    result, _ = experiment.train_and_evaluate()
    assert steps == [20, 40, 45]
    assert int(result["global_step"]) == 45


# ---------------------------------------------------------------- continuous_train_and_evaluate


def test_continuous_train_and_evaluate_iteration_sizes(tmp_path: Path) -> None:
    """train_steps 100 with 30 steps per iteration evaluates at 30, 60, 90 and 100."""
    exports = _Recorder()
    experiment = _experiment(
        str(tmp_path / "m"),
        train_steps=100,
        train_steps_per_iteration=30,
        export_strategies=ExportStrategy("rec", exports),
    )
    steps = _listen(experiment)
    result, exported = experiment.continuous_train_and_evaluate()
    assert steps == [30, 60, 90, 100]
    assert int(result["global_step"]) == 100
    assert exported == ["exported model.ckpt-100"]
    assert [os.path.basename(p or "") for p in exports.checkpoints] == [
        "model.ckpt-30",
        "model.ckpt-60",
        "model.ckpt-90",
        "model.ckpt-100",
    ]


def test_continuous_train_and_evaluate_predicate_stops(tmp_path: Path) -> None:
    """A predicate answering False after the first result stops after one iteration."""
    calls: list[Any] = []

    def predicate(result: Any) -> bool:
        calls.append(result)
        return result is None

    experiment = _experiment(str(tmp_path / "m"), train_steps=100, train_steps_per_iteration=10)
    steps = _listen(experiment)
    result, _ = experiment.continuous_train_and_evaluate(predicate)
    assert steps == [10]
    assert calls == [None, result]
    assert disk.latest_checkpoint(str(tmp_path / "m")).step == 10


@pytest.mark.parametrize("predicate", ["stop", 0, [None]])
def test_continuous_train_and_evaluate_non_callable_predicate_is_a_value_error(
    tmp_path: Path, predicate: Any
) -> None:
    """A non-callable continuous_eval_predicate_fn raises ValueError before training."""
    spy = models.SpyEstimator(str(tmp_path))
    experiment = Experiment(spy, models.raising_input_fn, models.raising_input_fn)
    with pytest.raises(ValueError, match="continuous_eval_predicate_fn"):
        experiment.continuous_train_and_evaluate(predicate)
    assert spy.train_calls == []


def test_continuous_train_and_evaluate_stops_when_finite_input_runs_out(tmp_path: Path) -> None:
    """Without train_steps, an iteration cut short by a finite input ends the loop."""
    model_dir = str(tmp_path / "m")
    exporter = models.RecordingExporter()
    experiment = _experiment(
        model_dir,
        train_steps=None,
        train_steps_per_iteration=10,
        train_input_fn=models.finite_train_input_fn(epochs=1),
        export_strategies=exporter,
    )
    steps = _listen(experiment)
    result, _ = experiment.continuous_train_and_evaluate()
    rows_per_epoch = models.N_ROWS // 16
    assert steps == [rows_per_epoch]
    assert int(result["global_step"]) == rows_per_epoch
    assert exporter.calls == [(f"model.ckpt-{rows_per_epoch}", True)]


def test_continuous_train_and_evaluate_resumes_from_the_current_step(tmp_path: Path) -> None:
    """Iterations count from the model's current global step, not from 0."""
    model_dir = str(tmp_path / "m")
    shutil.rmtree(model_dir, ignore_errors=True)
    models.train_to(model_dir, 50)
    experiment = _experiment(model_dir, train_steps=80, train_steps_per_iteration=20)
    steps = _listen(experiment)
    experiment.continuous_train_and_evaluate()
    assert steps == [70, 80]


# ---------------------------------------------------------------- early stopping


def test_train_and_evaluate_stops_early_when_the_default_predicate_says_stop(
    tmp_path: Path,
) -> None:
    """With stop_when_no_improvement as the Experiment's predicate (a min_delta no
    evaluation beats), local train_and_evaluate stops after patience+1 evaluations, saves
    the step it stopped at and records "stopped by the evaluator"."""
    model_dir = str(tmp_path / "m")
    experiment = models.experiment(
        models.estimator(model_dir, save_steps=10),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=10_000,
        eval_steps=None,
        eval_every_n_steps=10,
        continuous_eval_predicate_fn=stop_when_no_improvement("loss", patience=2, min_delta=1e9),
    )
    steps = _listen(experiment)
    result, _ = experiment.train_and_evaluate()
    assert steps[:3] == [10, 20, 30]
    final = disk.latest_checkpoint(model_dir)
    assert final is not None and final.step < 100
    assert int(result["global_step"]) == final.step
    record = disk.read_done(model_dir)[0]
    assert record.reason.value == "stopped by the evaluator"
    assert record.final_step == final.step


def test_the_default_predicate_is_used_by_continuous_train_and_evaluate(tmp_path: Path) -> None:
    """continuous_train_and_evaluate without its own predicate asks the Experiment's."""
    model_dir = str(tmp_path / "m")
    experiment = _experiment(model_dir, train_steps=1000, train_steps_per_iteration=10)
    experiment.set_continuous_eval_predicate_fn(
        stop_when_no_improvement("loss", patience=1, min_delta=1e9)
    )
    steps = _listen(experiment)
    experiment.continuous_train_and_evaluate()
    assert steps == [10, 20]
    with pytest.raises(ValueError):
        experiment.set_continuous_eval_predicate_fn(42)  # type: ignore[arg-type]
