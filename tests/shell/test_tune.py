"""Sweeps on a real SQLite study: shared by two processes, pruning, failures, reruns, bad keys."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from shell import disk
from shell.experiment import Experiment
from shell.sweep import tune
from shell.tune_config import tune_config
from shell.tune_report import summary_lines
from tests.shell import models

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"
TRAIN_STEPS = 30


def _config(**search: Any) -> dict[str, Any]:
    """A tiny wine sweep: 10 steps, then a checkpoint and an evaluation."""
    return {
        "estimator": {
            "type": "DNNClassifier",
            "params": {"hidden_units": [4], "n_classes": 3, "optimizer": "Adam"},
            "standardize": True,
            "run_config": {"save_checkpoints_steps": 10, "tf_random_seed": 1},
        },
        "train_input": {"path": str(DATA / "wine_train.csv"), "label": "target"},
        "eval_input": {"path": str(DATA / "wine_eval.csv")},
        "train_steps": 10,
        "eval_every_n_steps": 10,
        "search": search
        or {
            "estimator.params.learning_rate": {"loguniform": [0.005, 0.05]},
            "train_input.batch_size": {"int": [16, 32]},
        },
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "sampler": {"name": "random", "seed": 3},
    }


def _write(tmp_path: Path, data: dict[str, Any], name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """Start ``tfexperiment tune ARGS`` (ended by PID by the caller)."""
    return subprocess.Popen(
        [sys.executable, "-m", "shell", "tune", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"tune did not end in {timeout}s:\n{out}")
    return proc.returncode, out


def _study(out: Path, name: str) -> Any:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (
            {"estimator.params.learning_rate": {"loguniform": [0, 0.1]}},
            "search.estimator.params.learning_rate.loguniform",
        ),
        ({"train_input.batch_sise": {"int": [8, 16]}}, "search.train_input.batch_sise"),
        (
            {"estimator.params.hidden_units": {"choice": [[8], [0]]}},
            "search.estimator.params.hidden_units",
        ),
        ({"estimator.params.learnin_rate": {"float": [0.1, 0.2]}}, "search.estimator.params"),
    ],
)
def test_bad_search_entries_exit_2_naming_the_key_before_any_trial(
    tmp_path: Path, entry: dict[str, Any], field: str
) -> None:
    """A bad range, an unknown key path or a value the config refuses: exit 2, one line, no trial."""
    config = _write(tmp_path, _config(**entry))
    code, out = _finish(_cli("--config", str(config), "--trials", "2", "-o", "out", cwd=tmp_path))
    assert code == 2, out
    (line,) = [ln for ln in out.splitlines() if "error" in ln]
    assert f"sweep.yaml: {field}" in line, line
    assert not list(tmp_path.glob("out/trial-*"))


def test_two_processes_on_one_storage_share_the_study_without_repeats_or_losses(
    tmp_path: Path,
) -> None:
    """Two `tune --trials 4` on one SQLite study run 4 distinct trials between them, all kept."""
    config = _write(tmp_path, _config())
    args = ("--config", str(config), "--trials", "4", "-o", "out", "--study", "shared")
    procs = [_cli(*args, cwd=tmp_path), _cli(*args, cwd=tmp_path)]
    results = [_finish(p) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    started = [{int(n) for n in re.findall(r"\(#(\d+)\) started", out)} for _, out in results]
    assert not started[0] & started[1], started  # no trial ran twice
    trials = _study(tmp_path / "out", "shared").trials
    numbers = sorted(t.number for t in trials)
    assert started[0] | started[1] == set(numbers)
    assert 4 <= len(trials) <= 5  # two processes finishing at the same instant may add one
    for t in trials:
        assert t.state.name == "COMPLETE", (t.number, t.state)
        trial_dir = tmp_path / "out" / f"trial-{t.number}"
        params = json.loads((trial_dir / "params.json").read_text())
        assert params == t.params
        assert disk.latest_checkpoint(str(trial_dir)).step == 10  # type: ignore[union-attr]
    assert "best trial #" in results[0][1] and (tmp_path / "out" / "tune.png").is_file()


class _PruneTrial3(optuna.pruners.BasePruner):  # type: ignore[misc]
    """Prunes trial 3 at its first report, no other."""

    def prune(self, study: Any, trial: Any) -> bool:
        return bool(trial.number == 3)


def _nan_model_fn(features: Any, labels: Any, mode: Any, params: Any) -> Any:
    """models.model_fn whose training loss is NaN."""
    from shell._tf import tf

    spec = models.model_fn(features, labels, mode, params)
    if mode != tf.estimator.ModeKeys.TRAIN:
        return spec
    return spec._replace(loss=spec.loss * float("nan"))


def experiment_fn(trial: Any, output_dir: str) -> Experiment:
    """Trial 1 has bad hyperparameters, trial 2 a NaN loss; the others train 30 steps."""
    from shell._tf import tf

    lr = trial.suggest_float("lr", 0.01, 0.1, log=True)
    if trial.number == 1:
        raise ValueError(f"bad hyperparameters: lr={lr}")
    config = tf.estimator.RunConfig(model_dir=output_dir, save_checkpoints_steps=10)
    fn = _nan_model_fn if trial.number == 2 else models.model_fn
    estimator = tf.estimator.Estimator(fn, params={"lr": lr}, config=config)
    return Experiment(
        estimator,
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=TRAIN_STEPS,
        eval_steps=None,
        eval_every_n_steps=10,
    )


def test_failed_and_pruned_trials_are_recorded_and_a_rerun_continues_the_study(
    tmp_path: Path,
) -> None:
    """A raising trial and a NaN loss fail with a reason, a pruned one stops at its first
    evaluation keeping its checkpoint, and a rerun with a larger total adds trials."""
    out = tmp_path / "sweep"
    kwargs: dict[str, Any] = {
        "metric": "mae",
        "direction": "minimize",
        "output_dir": str(out),
        "pruner": _PruneTrial3(),
        "sampler": optuna.samplers.RandomSampler(seed=0),
    }
    study = tune(experiment_fn, n_trials=4, **kwargs)
    by_number = {t.number: t for t in study.trials}
    assert [by_number[n].state.name for n in range(4)] == ["COMPLETE", "FAIL", "FAIL", "PRUNED"]
    assert by_number[0].value == pytest.approx(by_number[0].intermediate_values[TRAIN_STEPS])
    assert by_number[1].user_attrs["fail_reason"].startswith("ValueError: bad hyperparameters")
    assert "NaN" in by_number[2].user_attrs["fail_reason"]
    assert "\n" not in by_number[2].user_attrs["fail_reason"]
    pruned = by_number[3]
    assert pruned.user_attrs["pruned_at_step"] == 10
    assert list(pruned.intermediate_values) == [10]
    latest = disk.latest_checkpoint(str(out / "trial-3"))
    assert latest is not None and latest.step == 10  # training ended at once, checkpoint kept
    assert json.loads((out / "trial-3" / "params.json").read_text()) == pruned.params

    again = tune(experiment_fn, n_trials=5, **kwargs)
    assert [t.number for t in again.trials] == [0, 1, 2, 3, 4]
    assert again.trials[4].state.name == "COMPLETE"
    assert [t.state for t in again.trials[:4]] == [by_number[n].state for n in range(4)]
    assert tune(experiment_fn, n_trials=5, **kwargs).trials == again.trials  # nothing left


def test_ctrl_c_ends_the_running_trial_cleanly_and_a_rerun_continues(tmp_path: Path) -> None:
    """SIGINT: exit 130, the trial keeps its checkpoints and is marked interrupted (not
    counted), and a rerun on the same study runs the study's trial again."""
    data = _config()
    data["train_steps"] = 100_000
    config = _write(tmp_path, data)
    args = ("--config", str(config), "--trials", "1", "-o", "out")
    proc = _cli(*args, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while disk.latest_checkpoint(str(tmp_path / "out" / "trial-0")) is None:
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        code, out = _finish(proc, timeout=90)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert code == 130, out
    (first,) = _study(tmp_path / "out", "sweep").trials
    assert first.state.name == "FAIL" and first.user_attrs["interrupted"] is True
    assert disk.latest_checkpoint(str(tmp_path / "out" / "trial-0")) is not None

    study = tune_config(
        config, n_trials=1, output_dir=tmp_path / "out", overrides=["train_steps=10"]
    )
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert "interrupted" in "\n".join(summary_lines(study))  # the table's note on trial 0


def test_a_journal_file_storage_holds_the_study(tmp_path: Path) -> None:
    """--storage PATH.journal keeps the study in an Optuna journal file, rerun-safe."""
    journal = tmp_path / "shared" / "study.journal"
    kwargs: dict[str, Any] = {
        "metric": "mae",
        "output_dir": str(tmp_path / "sweep"),
        "storage": str(journal),
        "study_name": "j",
    }
    tune(experiment_fn, n_trials=1, **kwargs)
    tune(experiment_fn, n_trials=1, **kwargs)  # joins the study: nothing left to run
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    (trial,) = optuna.load_study(study_name="j", storage=storage).trials
    assert trial.state.name == "COMPLETE"
    assert trial.user_attrs["model_dir"] == str(tmp_path / "sweep" / "trial-0")


BLOCK_OPTUNA = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "optuna":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from shell.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_optuna_tune_exits_2_saying_what_to_install(tmp_path: Path) -> None:
    """With Optuna not importable, `tune` exits 2 naming the tfexperiment[tune] extra."""
    config = _write(tmp_path, _config())
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_OPTUNA, "tune", "--config", str(config), "--trials", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'tfexperiment[tune]'" in done.stderr


def test_a_study_without_a_complete_trial_exits_1_and_a_missing_metric_stops_it(
    tmp_path: Path,
) -> None:
    """An objective metric the evaluation lacks fails the first trial and ends the study
    (every trial would fail alike): exit 1, the reason names objective.metric."""
    from shell.cli import main

    data = _config()
    data["objective"] = {"metric": "auc", "direction": "maximize"}
    config = _write(tmp_path, data)
    out = tmp_path / "out"
    assert main(["tune", "--config", str(config), "--trials", "3", "-o", str(out)]) == 1
    (trial,) = _study(out, "sweep").trials
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"].startswith("ConfigError: objective.metric='auc'")
