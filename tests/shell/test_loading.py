"""Loading configs: YAML/JSON files, --set overrides, unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError, ConfigTypeError
from shell import create_experiment
from shell.config import load_config
from tests.shell.configs import base_config


@pytest.fixture(autouse=True)
def _no_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs as a local process."""
    monkeypatch.delenv("TF_CONFIG", raising=False)


def test_json_file_and_overrides(tmp_path: Path) -> None:
    """A JSON file loads, and KEY=VALUE overrides (YAML values, dotted keys) apply first."""
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(base_config(tmp_path)))
    config = load_config(
        path, ["train_steps=7", "estimator.params.learning_rate=0.5", "exports.0.type=best"]
    )
    assert config.train_steps == 7
    assert config.estimator.params["learning_rate"] == 0.5
    assert config.exports[0].type == "best"


def test_unreadable_files_name_the_config(tmp_path: Path) -> None:
    """A missing or malformed config file is one ConfigError on the field `config`."""
    with pytest.raises(ConfigError, match="no such file") as missing:
        create_experiment(tmp_path / "nope.yaml")
    assert missing.value.field == "config"
    bad = tmp_path / "bad.yaml"
    bad.write_text("estimator: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as broken:
        create_experiment(bad)
    assert broken.value.field == "config"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigTypeError, match="mapping"):
        create_experiment(bad)
