"""create_experiment: configs from dicts, YAML/JSON files and attrs records; bad configs."""

from __future__ import annotations

import glob
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from core.errors import ConfigError, ConfigTypeError, FieldError
from shell import Experiment, create_experiment
from shell.config import (
    EstimatorConfig,
    EvalInputConfig,
    ExperimentConfig,
    ExportConfig,
    InputConfig,
    RunConfigSpec,
    apply_overrides,
)
from tests.shell.configs import base_config, write_csv


@pytest.fixture(autouse=True)
def _no_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs as a local process."""
    monkeypatch.delenv("TF_CONFIG", raising=False)


def test_dict_config_builds_an_experiment_and_nothing_runs(tmp_path: Path) -> None:
    """A dict builds an Experiment with the config's values, and nothing is written yet."""
    model_dir = tmp_path / "model"
    experiment = create_experiment(base_config(tmp_path), str(model_dir))
    assert isinstance(experiment, Experiment)
    assert experiment.train_steps == 20
    assert experiment.eval_steps is None
    assert experiment.model_dir == str(model_dir)
    assert experiment.estimator.config.save_checkpoints_steps == 10
    assert [type(e).__name__ for e in experiment.export_strategies] == ["LatestExporter"]
    assert not model_dir.exists()


def test_yaml_file_with_relative_paths_trains_evaluates_and_exports(tmp_path: Path) -> None:
    """A YAML file's data paths are relative to it; its Experiment runs test() end to end."""
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv")
    write_csv(data / "eval.csv", rows=16, seed=1)
    config = tmp_path / "conf" / "experiment.yaml"
    config.parent.mkdir()
    config.write_text(
        textwrap.dedent("""
        estimator:
          type: DNNClassifier
          params: {hidden_units: [4], n_classes: 2, optimizer: {name: Adam, learning_rate: 0.05}}
          standardize: true
        train_input: {path: ../data/train.csv, label: target, features: [a, b]}
        eval_input: {path: ../data/eval.csv}
        train_steps: 5
        exports:
          - {name: final, type: final}
    """)
    )
    model_dir = tmp_path / "model"
    result = create_experiment(config, model_dir).test()
    assert 0.0 <= result["accuracy"] <= 1.0
    [export] = glob.glob(str(model_dir / "export" / "final" / "*"))
    loaded = tf.saved_model.load(export)
    out = loaded.signatures["predict"](a=tf.constant([1.0, -1.0]), b=tf.constant([1.0, -1.0]))
    assert out["class_ids"].shape == (2, 1)


def test_attrs_record_builds_npz_input_and_every_export_type(tmp_path: Path) -> None:
    """An ExperimentConfig record with .npz inputs maps latest/best/final to TF exporters."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(20, 3)), y=rng.normal(size=20))
    record = ExperimentConfig(
        estimator=EstimatorConfig(
            type="LinearRegressor", run_config=RunConfigSpec(model_dir=str(tmp_path / "m"))
        ),
        train_input=InputConfig(path=str(tmp_path / "d.npz"), label="y"),
        eval_input=EvalInputConfig(path=str(tmp_path / "d.npz"), label="y"),
        exports=[ExportConfig(name=n, type=n) for n in ("latest", "best", "final")],
    )
    experiment = create_experiment(record)
    assert experiment.model_dir == str(tmp_path / "m")
    assert [type(e).__name__ for e in experiment.export_strategies] == [
        "LatestExporter",
        "BestExporter",
        "FinalExporter",
    ]


def test_module_factories_for_estimator_input_and_hooks(tmp_path: Path) -> None:
    """estimator.factory, input_fn and hook factories import as module:callable beside the file."""
    (tmp_path / "tfx_cfg_helpers.py").write_text(
        textwrap.dedent("""
        import tensorflow as tf

        CALLS = []

        def make_estimator(model_dir, params, config=None):
            CALLS.append((model_dir, dict(params), config))
            column = tf.feature_column.numeric_column("x")
            return tf.estimator.LinearRegressor([column], config=config)

        def input_fn(scale=1.0):
            return tf.data.Dataset.from_tensor_slices(({"x": [1.0, 2.0]}, [scale, 2 * scale])).batch(2)

        def make_hook(every=1):
            return tf.estimator.StepCounterHook(every_n_steps=every)
    """)
    )
    path = tmp_path / "experiment.yaml"
    path.write_text(
        textwrap.dedent("""
        estimator:
          factory: tfx_cfg_helpers:make_estimator
          params: {units: 3}
          feature_columns: [x]
        train_input: {input_fn: "tfx_cfg_helpers:input_fn", params: {scale: 2.0}}
        eval_input: {input_fn: "tfx_cfg_helpers:input_fn"}
        train_hooks: ["tfx_cfg_helpers:make_hook", {factory: "tfx_cfg_helpers:make_hook", params: {every: 5}}]
        exports: [{name: latest}]
    """)
    )
    experiment = create_experiment(path, tmp_path / "m")
    import tfx_cfg_helpers  # type: ignore[import-not-found]

    [(model_dir, params, config)] = tfx_cfg_helpers.CALLS
    assert model_dir == str(tmp_path / "m") and params == {"units": 3}
    assert config.model_dir == str(tmp_path / "m")
    assert len(experiment._train_hooks) == 2


def _case(tmp_path: Path, change: str) -> dict[str, Any]:
    config = base_config(tmp_path)
    return apply_overrides(config, [change]) if "=" in change else config


BAD = [
    # (override or special, error class, field path)
    ("train_step=10", ConfigError, "train_step"),
    ("train_input.pth=x.csv", ConfigError, "train_input.pth"),
    ("train_steps='100'", ConfigTypeError, "train_steps"),
    ("train_input.batch_size=[32]", ConfigTypeError, "train_input.batch_size"),
    ("train_input.path=missing.csv", ConfigError, "train_input.path"),
    ("train_input.path=data.txt", ConfigError, "train_input.path"),
    ("train_input.label=nope", ConfigError, "train_input.label"),
    ("eval_input.features=[a, zzz]", ConfigError, "eval_input.features[1]"),
    ("estimator.type=Bogus", ConfigError, "estimator.type"),
    ("estimator.params.hidden_units=big", ConfigTypeError, "estimator.params.hidden_units"),
    ("estimator.params.hiden_units=[3]", ConfigError, "estimator.params.hiden_units"),
    ("estimator.params.optimizer=Adamm", ConfigError, "estimator.params.optimizer"),
    ("estimator.factory=nosuchmodule:make", ConfigError, "estimator.type"),
    ("factory-missing", ConfigError, "estimator.factory"),
    (
        "estimator.run_config.save_checkpoints_secs=5",
        ConfigError,
        "estimator.run_config.save_checkpoints_secs",
    ),
    ("exports.0.type=sometimes", ConfigError, "exports[0].type"),
    ("exports=[{name: a}, {name: a}]", ConfigError, "exports[1].name"),
    ("exports=latest", ConfigTypeError, "exports"),
    ("train_hooks=['nosuchmodule:hook']", ConfigError, "train_hooks[0].factory"),
    ("train_hooks=['os:sep']", ConfigTypeError, "train_hooks[0].factory"),
    ("train_hooks=['os:getcwd']", ConfigTypeError, "train_hooks[0].factory"),
    ("eval_input.num_epochs=null", ConfigError, "eval_input.num_epochs"),
    ("eval_input=null", ConfigTypeError, "eval_input"),
    ("no-model-dir", ConfigError, "estimator.run_config.model_dir"),
    ("no-eval-input", ConfigError, "eval_input"),
]


@pytest.mark.parametrize(("change", "error", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_raises_one_error_naming_the_field(
    tmp_path: Path, change: str, error: type[FieldError], field: str
) -> None:
    """Each kind of bad config raises one error naming the field path, before training."""
    config = _case(tmp_path, change)
    output_dir: str | None = str(tmp_path / "model")
    if change == "no-model-dir":
        output_dir = None
    if change == "no-eval-input":
        del config["eval_input"]
    if change == "factory-missing":
        config["estimator"] = {"factory": "nosuchmodule:make"}
    with pytest.raises(error) as info:
        create_experiment(config, output_dir)
    assert info.value.field == field, str(info.value)
    assert field in str(info.value)
    assert not (tmp_path / "model").exists()


def test_the_early_stopping_key_gives_the_experiment_its_predicate(tmp_path: Path) -> None:
    """early_stopping in a config becomes the Experiment's default predicate, with the
    key's metric, patience and direction; chief_lost_after_secs becomes a setting."""
    config = {
        **base_config(tmp_path),
        "early_stopping": {"metric": "average_loss", "patience": 2, "higher_is_better": True},
        "chief_lost_after_secs": 30,
    }
    experiment = create_experiment(config, str(tmp_path / "model"))
    predicate = experiment.continuous_eval_predicate_fn
    assert predicate is not None
    assert predicate.rule.metric == "average_loss" and predicate.rule.patience == 2  # type: ignore[attr-defined]
    assert predicate({"average_loss": 1.0}) and predicate({"average_loss": 0.5})
    assert not predicate({"average_loss": 0.9})
    assert experiment.settings.chief_lost_after_secs == 30
    assert (
        create_experiment(base_config(tmp_path), str(tmp_path / "m2")).continuous_eval_predicate_fn
        is None
    )
