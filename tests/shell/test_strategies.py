"""MirroredStrategy under every schedule (2 logical CPUs, one child process per case), and the
strategy refusals, on real TensorFlow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.strategy import StrategyError, StrategyKind, parse_strategy
from tests.cluster.helpers import ROOT

CASE_TIMEOUT_SECS = 240.0


def run_case(name: str, work: Path) -> dict[str, Any]:
    """Run `tests.shell.strategy_cases` case ``name`` in a child process bounded by a timeout."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("TF_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.shell.strategy_cases", name, str(work)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=CASE_TIMEOUT_SECS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"case {name} still running after {CASE_TIMEOUT_SECS:g}s:\n{out[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"case {name} exited {proc.returncode}:\n{out[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    assert result["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    return result


def _close(ours: Any, ref: Any) -> None:
    """Assert two results (nested dicts/lists of floats) are equal up to float rounding."""
    if isinstance(ours, dict) and isinstance(ref, dict):
        assert sorted(ours) == sorted(ref)
        for key in ours:
            _close(ours[key], ref[key])
    elif isinstance(ours, list) and isinstance(ref, list):
        assert len(ours) == len(ref)
        for a, b in zip(ours, ref):
            _close(a, b)
    else:
        assert ours == pytest.approx(ref, rel=1e-5, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        "train",
        "evaluate",
        "continuous_eval",
        "train_and_evaluate",
        "continuous_train_and_evaluate",
        "test",
    ],
)
def test_mirrored_schedule_matches_tf_estimator(case: str, tmp_path: Path) -> None:
    """Each schedule under MirroredStrategy over 2 CPUs finishes with tf.estimator's steps and results."""
    result = run_case(case, tmp_path)
    _close(result["ours"], result["ref"])
    if "ours_steps" in result:
        assert result["ours_steps"] == result["ref_steps"]
        assert result["ours_steps"], "nothing was evaluated"


@pytest.mark.slow
def test_background_evaluation_under_mirrored_matches_tf_estimator(tmp_path: Path) -> None:
    """eval_in_background under MirroredStrategy evaluates in the background and gives
    tf.estimator.train_and_evaluate's evaluated steps and final result."""
    result = run_case("train_and_evaluate_in_background", tmp_path)
    assert result["mode"] == "background"
    assert result["ours_steps"] == result["ref_steps"] == [20, 40]
    assert result["seen_steps"] == [20, 40]
    _close(result["ours"], result["ref"])


@pytest.mark.slow
def test_replica_inputs_get_no_autotune_in_our_graphs_only(tmp_path: Path) -> None:
    """Per-device replica datasets have autotune off in the graphs tfexperiment trains and
    evaluates (and on the thread inside `no_replica_autotune` only), never in tf.estimator's,
    and training under them gives tf.estimator's weights."""
    result = run_case("replica_autotune", tmp_path)
    replicas = [f"/job:localhost/replica:0/task:0/device:CPU:{i}" for i in (0, 1)]
    assert result["outside"] == result["after"] == [] and result["other_thread"] == [[]]
    assert result["inside"] == replicas and result["on"] and not result["on_after"]
    assert result["ours_train"] == [replicas]
    assert result["ours_eval"] and all(seen == replicas for seen in result["ours_eval"])
    assert result["ref_train"] == [[]]
    assert result["ours_steps"] == [20, 40] and result["final_step"] == 40
    assert result["ours_weights"] == result["ref_weights"]


@pytest.mark.slow
def test_default_cross_device_ops_over_cpus_are_refused_before_training(tmp_path: Path) -> None:
    """A user's MirroredStrategy with TF's default (hanging) ops over 2 CPUs is refused untrained."""
    result = run_case("refuse_default_ops", tmp_path)
    assert result["error"] == "StrategyError"
    assert "ReductionToOneDevice" in result["message"]
    assert "\n" not in result["message"]
    assert result["checkpoints"] == []


def _cluster_tf_config() -> str:
    cluster = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]}
    return json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})


def test_mirrored_in_a_cluster_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """strategy mirrored on the chief of a TF_CONFIG cluster stops with one line, nothing trained."""
    from shell import Experiment, strategy
    from shell._tf import tf
    from shell.runner import run_experiment
    from tests.shell import models

    monkeypatch.setenv("TF_CONFIG", _cluster_tf_config())
    model_dir = str(tmp_path / "model")

    def experiment_fn(output_dir: str) -> Experiment:
        config = strategy.run_config(parse_strategy("mirrored"), model_dir=output_dir)
        est = tf.estimator.Estimator(model_fn=models.model_fn, config=config, params={})
        return Experiment(est, models.input_fn(repeat=True), models.input_fn(repeat=False))

    with pytest.raises(StrategyError, match="trains on one machine") as caught:
        run_experiment(experiment_fn, model_dir)
    assert isinstance(caught.value, ConfigError) and caught.value.field == "strategy.type"
    assert not list(Path(tmp_path).rglob("model.ckpt-*"))


def test_run_config_gives_the_evaluator_no_multi_worker_strategy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under multi_worker_mirrored the evaluator's RunConfig has neither train nor eval strategy."""
    from shell import strategy

    cluster = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "evaluator", "index": 0}})
    )
    config = strategy.run_config(parse_strategy("multi_worker_mirrored"), model_dir=str(tmp_path))
    assert config.train_distribute is None and config.eval_distribute is None
    assert config.task_type == "evaluator"


def test_run_config_mirrored_locally_uses_reduction_to_one_device_on_cpu(tmp_path: Path) -> None:
    """A local mirrored RunConfig over TF's default device (the CPU) trains and evaluates with it."""
    from shell import strategy
    from shell._tf import tf

    config = strategy.run_config(parse_strategy("mirrored"), model_dir=str(tmp_path))
    mirrored = config.train_distribute
    assert mirrored is config.eval_distribute
    assert isinstance(mirrored.extended._cross_device_ops, tf.distribute.ReductionToOneDevice)
    est = tf.estimator.Estimator(model_fn=lambda features, labels, mode: None, config=config)
    assert strategy.strategy_kind(est) is StrategyKind.MIRRORED
    assert not config._distribute_coordinator_mode


def test_all_gpus_without_a_gpu_is_refused(tmp_path: Path) -> None:
    """devices: all_gpus on a machine without a GPU fails naming strategy.devices."""
    from shell import strategy
    from shell._tf import tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is visible: all_gpus is valid here")
    spec = parse_strategy({"type": "mirrored", "devices": "all_gpus"})
    with pytest.raises(StrategyError, match="no GPU") as caught:
        strategy.run_config(spec, model_dir=str(tmp_path))
    assert caught.value.field == "strategy.devices"


@pytest.mark.gpu
def test_mirrored_over_every_visible_gpu_trains_and_evaluates(tmp_path: Path) -> None:
    """devices: all_gpus mirrors the model over every visible GPU; train_and_evaluate finishes."""
    from shell import Experiment, strategy
    from shell._tf import tf
    from tests.shell import models

    gpus = tf.config.list_logical_devices("GPU")
    assert gpus, "TensorFlow sees no GPU"
    config = strategy.run_config(
        parse_strategy({"type": "mirrored", "devices": "all_gpus"}),
        model_dir=str(tmp_path),
        save_checkpoints_steps=20,
        save_checkpoints_secs=None,
    )
    assert config.train_distribute.num_replicas_in_sync == len(gpus)
    est = tf.estimator.Estimator(model_fn=models.model_fn, config=config, params={})
    exp = Experiment(
        est,
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=40,
        eval_steps=None,
    )
    result, _ = exp.train_and_evaluate()
    assert result is not None and result["global_step"] == 40


@pytest.mark.slow
def test_config_file_strategy_key_builds_the_estimator_under_the_strategy(tmp_path: Path) -> None:
    """``strategy: mirrored`` in a config file gives the estimator a MirroredStrategy with
    ReductionToOneDevice on the CPU for training and evaluation; the pipeline runs under it."""
    from shell import strategy
    from shell._tf import tf
    from shell.config import create_experiment
    from tests.shell.configs import base_config

    config = {**base_config(tmp_path), "strategy": "mirrored"}
    experiment = create_experiment(config, str(tmp_path / "model"))
    run = experiment.estimator.config
    assert strategy.strategy_kind(experiment.estimator) is StrategyKind.MIRRORED
    assert run.train_distribute is run.eval_distribute
    assert isinstance(
        run.train_distribute.extended._cross_device_ops, tf.distribute.ReductionToOneDevice
    )
    assert run.save_checkpoints_steps == 10
    assert experiment.test()["global_step"] == 1


def test_config_file_mirrored_in_a_cluster_is_refused_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config file's ``strategy: mirrored`` on the chief of a cluster fails naming
    ``strategy.type`` while the experiment is built, before any strategy exists."""
    from shell.config import create_experiment
    from tests.shell.configs import base_config

    monkeypatch.setenv("TF_CONFIG", _cluster_tf_config())
    config = {**base_config(tmp_path), "strategy": "mirrored"}
    with pytest.raises(StrategyError, match="trains on one machine") as caught:
        create_experiment(config, str(tmp_path / "model"))
    assert caught.value.field == "strategy.type"
    assert not (tmp_path / "model").exists()
