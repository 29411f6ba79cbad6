"""Bad config files, --set values and data files: exit 2, one line naming key/file/value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.errors import ConfigError
from shell import create_experiment
from shell.cli import main
from tests.shell.configs import HEADER, base_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs as a local process."""
    monkeypatch.delenv("TF_CONFIG", raising=False)


def _write_config(tmp_path: Path, **changes: object) -> Path:
    """The base config (its CSVs in ``tmp_path``) as YAML, with top-level ``changes``."""
    config = base_config(tmp_path)
    config.pop("exports")
    config.update(changes)
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, *extra: str
) -> tuple[int, list[str]]:
    """Run ``tfexperiment run --config`` in process; the exit code and stderr's lines."""
    code = main(["run", "--config", str(config), "--output-dir", str(tmp_path / "m"), *extra])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def _assert_one_line(code: int, lines: list[str], tmp_path: Path, *words: str) -> None:
    assert code == 2, lines
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines
    assert not (tmp_path / "m").exists()


def _console(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "shell", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ----------------------------------------------------------------- --set and --config
SET_CASES = [
    (("--set", "train_steps=99999999999999999999999"), ("train_steps=", "int64")),
    (("--set", "train_steps="), ("--set train_steps", "no value")),
    (("--set", "train_steps.b.c=1"), ("train_steps=20", "train_steps.b.c")),
    (("--set", "exports.0.type=final"), ("exports[0].name", "is required")),
    (
        ("--set", "exports=[{name: b, type: best, metric: f1}]"),
        ("exports[0].metric='f1'", "is not a metric of the LinearClassifier evaluation"),
    ),
]
SET_IDS = ["beyond-int64", "empty-value", "through-a-scalar", "index-without-a-list", "metric"]


@pytest.mark.parametrize(("args", "words"), SET_CASES, ids=SET_IDS)
def test_bad_set_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    words: tuple[str, ...],
) -> None:
    """A bad --set value exits 2 with one line naming the key and value; nothing trains."""
    code, lines = _run(capsys, _write_config(tmp_path), tmp_path, *args)
    _assert_one_line(code, lines, tmp_path, *words)


def test_empty_set_value_as_a_process_exits_2_with_one_line(tmp_path: Path) -> None:
    """As a process, `--set train_steps=` exits 2 with one line instead of training forever."""
    config = _write_config(tmp_path)
    done = _console(
        tmp_path, "run", "--config", str(config), "-o", str(tmp_path / "m"), "--set", "train_steps="
    )
    _assert_one_line(
        done.returncode, done.stderr.splitlines(), tmp_path, "--set train_steps", "no value"
    )


def test_a_directory_as_config_says_it_is_a_directory(tmp_path: Path) -> None:
    """`--config DIR` exits 2 saying the path is a directory (not 'no such file')."""
    done = _console(tmp_path, "run", "--config", str(tmp_path), "-o", str(tmp_path / "m"))
    _assert_one_line(done.returncode, done.stderr.splitlines(), tmp_path, "is a directory")


# ----------------------------------------------------------------- config files
def test_train_steps_beyond_int64_in_the_file_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train_steps: 99999999999999999999999` in the file exits 2 naming train_steps."""
    path = _write_config(tmp_path)
    path.write_text(
        path.read_text().replace("train_steps: 20", "train_steps: 99999999999999999999999")
    )
    code, lines = _run(capsys, path, tmp_path)
    _assert_one_line(code, lines, tmp_path, "train_steps=99999999999999999999999", "int64")


def test_duplicate_yaml_key_names_the_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key given twice in one YAML mapping exits 2 naming the key and its line."""
    path = _write_config(tmp_path)
    text = path.read_text()
    lines_before = text.count("\n")
    path.write_text(text + "train_steps: 30\n")
    code, lines = _run(capsys, path, tmp_path)
    _assert_one_line(
        code, lines, tmp_path, "duplicate key 'train_steps'", f"line {lines_before + 1}"
    )


def test_duplicate_json_key_is_an_error(tmp_path: Path) -> None:
    """A key given twice in a JSON object is a ConfigError on the config naming the key."""
    path = tmp_path / "experiment.json"
    path.write_text('{"train_steps": 1, "train_steps": 2}')
    with pytest.raises(ConfigError, match="duplicate key 'train_steps'") as info:
        create_experiment(path)
    assert info.value.field == "config"


def test_a_config_that_is_not_utf8_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config file in Latin-1 exits 2 naming the file and saying it is not UTF-8."""
    path = _write_config(tmp_path)
    path.write_bytes(path.read_bytes() + "# caf\u00e9\n".encode("latin-1"))
    code, lines = _run(capsys, path, tmp_path)
    _assert_one_line(code, lines, tmp_path, str(path), "not UTF-8")


# ----------------------------------------------------------------- data files
def test_a_csv_that_is_not_utf8_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV in Latin-1 exits 2 naming the input key and the file."""
    path = _write_config(tmp_path)
    train = tmp_path / "train.csv"
    train.write_bytes(train.read_bytes().replace(b"target", "targ\u00e9".encode("latin-1"), 1))
    code, lines = _run(capsys, path, tmp_path)
    _assert_one_line(code, lines, tmp_path, "train_input.path", str(train), "not UTF-8")


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """A UTF-8 BOM (as spreadsheets write) is skipped: the first column keeps its name."""
    config = base_config(tmp_path)
    for name in ("train.csv", "eval.csv"):
        csv = tmp_path / name
        csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())
    experiment = create_experiment(config, tmp_path / "m")
    features, _ = next(iter(experiment._train_input_fn()))
    assert sorted(features) == HEADER[:2]


def test_a_float_label_names_the_label_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Non-integer labels for a classifier name the label key and its column."""
    path = _write_config(tmp_path)
    train = tmp_path / "train.csv"
    train.write_text(train.read_text() + "0.1,0.2,0.5\n")
    code, lines = _run(capsys, path, tmp_path)
    _assert_one_line(code, lines, tmp_path, "train_input.label='target'", "non-integer")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_csv_values_name_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    """nan/inf in a CSV exits 2 before training, naming the file, its line and column."""
    path = _write_config(tmp_path)
    evaluation = tmp_path / "eval.csv"
    rows = evaluation.read_text().splitlines()
    rows[3] = f"0.5,{bad},1"
    evaluation.write_text("\n".join(rows) + "\n")
    code, lines = _run(capsys, path, tmp_path)
    _assert_one_line(
        code, lines, tmp_path, "eval_input.path", str(evaluation), "line 4", "column 'b'", "finite"
    )


def test_non_finite_npz_values_name_the_array_and_row(tmp_path: Path) -> None:
    """nan in an .npz array is a ConfigError on the input's path naming the array and row."""
    x = np.ones((6, 2))
    x[4, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(6))
    config = {
        "estimator": {"type": "LinearRegressor"},
        "train_input": {"path": str(tmp_path / "d.npz"), "label": "y"},
        "eval_input": {"path": str(tmp_path / "d.npz")},
    }
    with pytest.raises(ConfigError, match=r"array 'x', row 4: nan is not finite") as info:
        create_experiment(config, tmp_path / "m")
    assert info.value.field == "train_input.path"


def test_a_batch_larger_than_repeating_data_names_the_key_and_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """batch_size: 100000000000 over 48 repeating rows exits 2 at once, naming both."""
    path = _write_config(tmp_path)
    code, lines = _run(capsys, path, tmp_path, "--set", "train_input.batch_size=100000000000")
    _assert_one_line(code, lines, tmp_path, "train_input.batch_size=100000000000", "48 examples")


# ----------------------------------------------------------------- user modules
def test_a_module_with_a_syntax_error_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An experiment module that does not compile exits 2 naming the module and SyntaxError."""
    (tmp_path / "tfx_broken_syntax.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["run", "tfx_broken_syntax:f", "--output-dir", str(tmp_path / "m")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    _assert_one_line(code, lines, tmp_path, "experiment_fn='tfx_broken_syntax:f'", "SyntaxError")


def test_a_module_that_raises_on_import_names_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module raising while importing is a ConfigError on the field, with the error's text."""
    (tmp_path / "tfx_raises_on_import.py").write_text("raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = base_config(tmp_path)
    config["estimator"] = {"factory": "tfx_raises_on_import:build", "feature_columns": ["a", "b"]}
    with pytest.raises(ConfigError, match="raised RuntimeError: no GPU here") as info:
        create_experiment(config, tmp_path / "m")
    assert info.value.field == "estimator.factory"


def test_an_estimator_factory_that_raises_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A factory raising while building the estimator exits 2 naming estimator.factory."""
    (tmp_path / "tfx_bad_factory.py").write_text(
        "def build(model_dir, params):\n    raise ValueError('units must be even')\n"
    )
    path = _write_config(
        tmp_path, estimator={"factory": "tfx_bad_factory:build", "feature_columns": ["a", "b"]}
    )
    code, lines = _run(capsys, path, tmp_path)
    _assert_one_line(
        code, lines, tmp_path, "estimator.factory='tfx_bad_factory:build'", "raised ValueError"
    )


def test_a_hook_factory_that_raises_names_the_hook(tmp_path: Path) -> None:
    """A hook factory raising is a ConfigError on train_hooks[i].factory."""
    (tmp_path / "tfx_bad_hook.py").write_text(
        "def make(**params):\n    raise TypeError('every must be an int')\n"
    )
    path = _write_config(tmp_path, train_hooks=["tfx_bad_hook:make"])
    with pytest.raises(ConfigError, match="raised TypeError") as info:
        create_experiment(path, tmp_path / "m")
    assert info.value.field == "train_hooks[0].factory"
