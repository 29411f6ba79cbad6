"""Data files: CSV/.npz to input functions; bad files and labels fail before training."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf

from core import canned
from core.errors import ConfigError
from shell import create_experiment
from tests.shell.configs import base_config


@pytest.fixture(autouse=True)
def _no_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs as a local process."""
    monkeypatch.delenv("TF_CONFIG", raising=False)


def test_non_numeric_csv_names_the_file_and_line(tmp_path: Path) -> None:
    """A CSV value that is not a number is reported with its file and line."""
    config = base_config(tmp_path)
    path = Path(config["train_input"]["path"])
    path.write_text(path.read_text().replace("\n", "\nx,1,0\n", 1))
    with pytest.raises(ConfigError, match="line 2") as info:
        create_experiment(copy.deepcopy(config), str(tmp_path / "m"))
    assert info.value.field == "train_input.path"


def test_labels_follow_the_estimator_kind(tmp_path: Path) -> None:
    """A classifier gets int labels, a regressor float labels (label_dtype: auto)."""
    config = base_config(tmp_path)
    classifier = create_experiment(config, str(tmp_path / "c"))
    _, labels = next(iter(classifier._train_input_fn()))
    assert labels.dtype == tf.int64
    config["estimator"] = {"type": "LinearRegressor"}
    regressor = create_experiment(config, str(tmp_path / "r"))
    _, labels = next(iter(regressor._train_input_fn()))
    assert labels.dtype == tf.float32


def test_labels_outside_n_classes_fail_before_training(tmp_path: Path) -> None:
    """Class labels a canned classifier cannot take are a ConfigError on n_classes."""
    config = base_config(tmp_path)
    path = Path(config["train_input"]["path"])
    path.write_text(path.read_text() + "0.5,0.5,2\n")
    with pytest.raises(ConfigError, match=r"range over 0\.\.2") as info:
        create_experiment(config, str(tmp_path / "m"))
    assert info.value.field == "estimator.params.n_classes"


@pytest.mark.parametrize(
    ("kind", "params", "labels"),
    [
        ("LinearClassifier", {}, [0, 1] * 4),
        ("DNNClassifier", {"n_classes": 3, "hidden_units": [2]}, [0, 1, 2, 0, 1, 2, 0, 1]),
        ("LinearRegressor", {}, [0.5 * i for i in range(8)]),
    ],
)
def test_canned_metrics_are_what_tf_evaluation_reports(
    tmp_path: Path, kind: str, params: dict[str, Any], labels: list[float]
) -> None:
    """core.canned.metrics names exactly the metrics a real canned evaluation returns."""
    columns = [tf.feature_column.numeric_column("x")]
    built = getattr(tf.estimator, kind)(feature_columns=columns, model_dir=str(tmp_path), **params)

    def input_fn() -> Any:
        x = {"x": [float(i) for i in range(8)]}
        return tf.data.Dataset.from_tensor_slices((x, labels)).batch(4)

    built.train(input_fn, steps=1)
    assert set(built.evaluate(input_fn)) == canned.metrics(kind, params)
