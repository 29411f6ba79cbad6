"""train_and_evaluate with eval_in_background: the inline path's steps, metrics and exports,
evaluated in a worker thread; a fallback to inline when checkpoints could be deleted first;
a background failure raised in the training thread."""

from __future__ import annotations

import logging
import os
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from core.errors import ConfigTypeError
from core.lifecycle import Failed
from core.settings import ExperimentSettings
from shell import Experiment, create_experiment, disk, job, stop_when_no_improvement
from shell._tf import tf
from shell.cli import main
from shell.exports import exported_checkpoints
from tests.shell import models
from tests.shell.configs import base_config

EVAL_THREAD = "tfexperiment-evaluator"


class StepHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
    """An evaluation hook recording (thread name, global step) per batch; raises at a step.

    Args:
        fail_at: Raise RuntimeError when evaluating the checkpoint of this global step.
    """

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.seen: list[tuple[str, int]] = []
        self._step: Any = None

    def begin(self) -> None:
        """Find the global step tensor of the evaluation graph."""
        self._step = tf.compat.v1.train.get_global_step()

    def before_run(self, run_context: Any) -> Any:
        """Ask for the global step."""
        return tf.estimator.SessionRunArgs(self._step)

    def after_run(self, run_context: Any, run_values: Any) -> None:
        """Record the thread and step; fail at ``fail_at``."""
        step = int(run_values.results)
        self.seen.append((threading.current_thread().name, step))
        if step == self.fail_at:
            raise RuntimeError(f"boom: the evaluation of step {step} failed")


def _model_fn(features: Any, labels: Any, mode: Any) -> Any:
    """A linear regressor starting from zeros (so two runs train identically), with MAE."""
    pred = tf.compat.v1.layers.Dense(1, kernel_initializer=tf.compat.v1.zeros_initializer())(
        features["x"]
    )
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode, predictions={"y": pred})
    loss = tf.compat.v1.losses.mean_squared_error(labels, pred)
    if mode == tf.estimator.ModeKeys.EVAL:
        mae = tf.compat.v1.metrics.mean_absolute_error(labels, pred)
        return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"mae": mae})
    opt = tf.compat.v1.train.AdamOptimizer(0.05)
    train_op = opt.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def _estimator(model_dir: str, *, keep: int = 50) -> Any:
    """A deterministic tiny regressor checkpointing every 10 steps."""
    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        save_checkpoints_steps=10,
        save_checkpoints_secs=None,
        keep_checkpoint_max=keep,
        log_step_count_steps=1_000_000,
        save_summary_steps=1_000_000,
    )
    return tf.estimator.Estimator(model_fn=_model_fn, config=config)


def _experiment(
    model_dir: str, background: bool, *, keep: int = 50, hooks: Any = (), **settings: Any
) -> Experiment:
    """train_and_evaluate over the shared data, a LatestExporter and a recording one."""
    settings.setdefault("train_steps", 60)
    settings.setdefault("eval_every_n_steps", 20)
    latest = tf.estimator.LatestExporter("latest", models.serving_input_fn, exports_to_keep=None)
    return Experiment.from_settings(
        _estimator(model_dir, keep=keep),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        settings=ExperimentSettings(eval_steps=None, **settings),
        eval_hooks=list(hooks),
        export_strategies=[latest, models.RecordingExporter()],
        eval_in_background=background,
    )


def _run(model_dir: str, background: bool, **kwargs: Any) -> dict[str, Any]:
    """Run train_and_evaluate; what it evaluated, returned and exported."""
    hook = StepHook()
    experiment = _experiment(model_dir, background, hooks=[hook], **kwargs)
    evaluations: list[dict[str, Any]] = []
    experiment.on_evaluation(lambda result: evaluations.append(dict(result)))
    result, exported = experiment.train_and_evaluate()
    export_dir = os.path.join(model_dir, "export", "latest")
    recorder = experiment.export_strategies[1]
    return {
        "evaluations": evaluations,
        "result": result,
        "exported": [
            os.path.relpath(os.path.dirname(os.fsdecode(p)), model_dir) if p else None
            for p in exported
        ],
        "recorded": recorder.calls,
        "export_record": exported_checkpoints(export_dir),
        "export_count": len([d for d in os.listdir(export_dir) if d.isdigit()]),
        "threads": {name for name, _ in hook.seen},
    }


def _same_metrics(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_background_matches_inline_steps_metrics_and_exports(tmp_path: Path) -> None:
    """Evaluating in the worker thread gives the inline run's global steps, metrics, final
    result and exports (same checkpoints, same order, same finality), on real TF."""
    inline = _run(str(tmp_path / "inline"), False)
    background = _run(str(tmp_path / "bg"), True)
    assert inline["threads"] == {threading.current_thread().name}
    assert background["threads"] == {EVAL_THREAD}
    steps = [int(r["global_step"]) for r in inline["evaluations"]]
    assert steps == [20, 40, 60]
    assert [int(r["global_step"]) for r in background["evaluations"]] == steps
    for ours, theirs in zip(background["evaluations"], inline["evaluations"], strict=True):
        _same_metrics(ours, theirs)
    _same_metrics(background["result"], inline["result"])
    assert (
        background["recorded"]
        == inline["recorded"]
        == [
            ("model.ckpt-20", False),
            ("model.ckpt-40", False),
            ("model.ckpt-60", True),
        ]
    )
    assert background["export_record"] == inline["export_record"]
    assert inline["export_record"] == ("model.ckpt-20", "model.ckpt-40", "model.ckpt-60")
    assert background["export_count"] == inline["export_count"] == 3
    assert background["exported"] == inline["exported"] == [os.path.join("export", "latest"), None]


def test_background_evaluates_the_final_checkpoint_off_the_grid(tmp_path: Path) -> None:
    """A final checkpoint between evaluation marks is evaluated once, in the worker."""
    run = _run(str(tmp_path / "m"), True, train_steps=45)
    assert [int(r["global_step"]) for r in run["evaluations"]] == [20, 40, 45]
    assert int(run["result"]["global_step"]) == 45
    assert run["threads"] == {EVAL_THREAD}
    assert run["recorded"][-1] == ("model.ckpt-45", True)


def test_too_few_kept_checkpoints_fall_back_to_inline_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """keep_checkpoint_max=3 with two saves per evaluation could lose a checkpoint: one INFO
    line says so and every evaluation runs inline, with the usual steps."""
    with caplog.at_level(logging.INFO, logger="tfexperiment"):
        run = _run(str(tmp_path / "m"), True, keep=3)
    lines = [r.getMessage() for r in caplog.records if "train_and_evaluate evaluates" in r.message]
    assert len(lines) == 1 and "inline" in lines[0], lines
    assert "keep_checkpoint_max >= 4" in lines[0]
    assert run["threads"] == {threading.current_thread().name}
    assert [int(r["global_step"]) for r in run["evaluations"]] == [20, 40, 60]


def test_a_background_failure_is_raised_in_training_and_keeps_the_checkpoints(
    tmp_path: Path,
) -> None:
    """An evaluation raising in the worker is raised by train_and_evaluate (training stops
    at a later save), the checkpoints stay, and the task records the failure."""
    model_dir = str(tmp_path / "m")
    hook = StepHook(fail_at=20)
    experiment = _experiment(model_dir, True, hooks=[hook], train_steps=1000, eval_every_n_steps=10)
    with pytest.raises(RuntimeError, match="boom: the evaluation of step 20 failed"):
        experiment.train_and_evaluate()
    assert {name for name, _ in hook.seen} == {EVAL_THREAD}
    assert os.path.exists(os.path.join(model_dir, "model.ckpt-20.index"))
    latest = disk.latest_checkpoint(model_dir)
    assert latest is not None and 20 <= latest.step < 1000
    assert disk.read_done(model_dir) == []  # not finished: failed
    failed = [r for r in job.read_records(model_dir) if isinstance(r, Failed)]
    assert len(failed) == 1 and "boom" in failed[0].reason, failed


def test_the_predicate_stops_background_training_early(tmp_path: Path) -> None:
    """stop_when_no_improvement asked with each background result stops training early and
    records "stopped by the evaluator", the last result being the final checkpoint's."""
    model_dir = str(tmp_path / "m")
    experiment = Experiment.from_settings(
        _estimator(model_dir),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        settings=ExperimentSettings(train_steps=10_000, eval_steps=None, eval_every_n_steps=10),
        continuous_eval_predicate_fn=stop_when_no_improvement("loss", patience=2, min_delta=1e9),
        eval_in_background=True,
    )
    steps: list[int] = []
    experiment.on_evaluation(lambda result: steps.append(int(result["global_step"])))
    result, _ = experiment.train_and_evaluate()
    assert steps[:3] == [10, 20, 30]
    final = disk.latest_checkpoint(model_dir)
    assert final is not None and final.step < 200
    assert result is not None and int(result["global_step"]) == final.step == steps[-1]
    record = disk.read_done(model_dir)[0]
    assert record.reason.value == "stopped by the evaluator"


def test_from_settings_keyword_overrides_the_setting(tmp_path: Path) -> None:
    """eval_in_background= of from_settings replaces the record's value (None keeps it); a
    non-bool is a ConfigTypeError naming eval_in_background."""
    parts = (models.estimator(str(tmp_path)), models.raising_input_fn, models.raising_input_fn)
    on = ExperimentSettings(eval_in_background=True)
    assert Experiment.from_settings(*parts, settings=on).settings.eval_in_background is True
    off = Experiment.from_settings(*parts, settings=on, eval_in_background=False)
    assert off.settings.eval_in_background is False
    assert off.settings.train_steps == on.train_steps
    with pytest.raises(ConfigTypeError) as info:
        Experiment.from_settings(*parts, settings=on, eval_in_background="yes")  # type: ignore[arg-type]
    assert info.value.field == "eval_in_background"


def test_the_config_key_reaches_the_settings(tmp_path: Path) -> None:
    """The top-level config key eval_in_background becomes the Experiment's setting."""
    config = {**base_config(tmp_path), "eval_in_background": True}
    experiment = create_experiment(config, str(tmp_path / "m"))
    assert experiment.settings.eval_in_background is True
    default = create_experiment(base_config(tmp_path), str(tmp_path / "d"))
    assert default.settings.eval_in_background is False


def test_a_bad_config_value_names_the_key(tmp_path: Path) -> None:
    """eval_in_background: maybe is a ConfigTypeError naming the key, before training."""
    config = {**base_config(tmp_path), "eval_in_background": "maybe"}
    with pytest.raises(ConfigTypeError) as info:
        create_experiment(config, str(tmp_path / "m"))
    assert info.value.field == "eval_in_background"
    assert not (tmp_path / "m").exists()


def test_cli_bad_value_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--set eval_in_background=maybe` exits 2 with one line naming the key."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path)))
    args = ["run", "--config", str(path), "-o", str(tmp_path / "m")]
    assert main([*args, "--set", "eval_in_background=maybe"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "eval_in_background" in err[0], err
    assert not (tmp_path / "m").exists()


HOOK_MODULE = "tfx_bg_hooks"
HOOK_SOURCE = textwrap.dedent("""
    import tensorflow as tf


    class FailAtStep20(tf.estimator.SessionRunHook):
        def begin(self):
            self._step = tf.compat.v1.train.get_global_step()

        def before_run(self, run_context):
            return tf.estimator.SessionRunArgs(self._step)

        def after_run(self, run_context, run_values):
            if int(run_values.results) == 20:
                raise RuntimeError("boom: the evaluation of step 20 failed")
""")


def test_cli_background_failure_exits_1_and_keeps_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config run with eval_in_background whose evaluation fails in the worker exits 1
    with the error's message; the checkpoints written stay."""
    (tmp_path / f"{HOOK_MODULE}.py").write_text(HOOK_SOURCE)
    config = {
        **base_config(tmp_path),
        "train_steps": 200,
        "eval_in_background": True,
        "eval_hooks": [f"{HOOK_MODULE}:FailAtStep20"],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(path), "-o", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "the run failed" in err and "boom: the evaluation of step 20 failed" in err, err
    assert (tmp_path / "m" / "model.ckpt-20.index").exists()
    assert not (tmp_path / "m" / "model.ckpt-200.index").exists()
