"""Fast checks of the launcher and the worker code, without starting a cluster."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.completion import EndReason
from core.errors import ConfigError
from core.schedule import Schedule, default_schedule
from core.tf_config import TFConfig
from core.workers import default_device_filters
from shell import disk
from shell.cli import add_cluster_parser
from shell.launcher import (
    ClusterResult,
    TaskExit,
    check_spec,
    cluster_tasks,
    describe_exit,
    pick_free_ports,
    task_command,
    tf_configs,
)
from shell.worker import (
    ChiefWatch,
    ReadinessProbe,
    ensure_device_filters,
)

EXPECTED_SCHEDULE = {
    "ps": Schedule.RUN_STD_SERVER,
    "chief": Schedule.TRAIN_AND_EVALUATE,
    "master": Schedule.TRAIN_AND_EVALUATE,
    "worker": Schedule.TRAIN,
    "evaluator": Schedule.CONTINUOUS_EVAL,
}


def test_tasks_are_launched_ps_first_and_evaluator_last() -> None:
    """ps tasks start first, then the chief, the workers and the evaluator."""
    names = [t.name for t in cluster_tasks(ps=2, workers=2, evaluator=True)]
    assert names == ["ps-0", "ps-1", "chief-0", "worker-0", "worker-1", "evaluator-0"]


def test_without_chief_the_legacy_master_job_is_used() -> None:
    """``chief=False`` names the chief's job ``master`` (Estimator needs one of the two)."""
    names = [t.name for t in cluster_tasks(ps=1, workers=1, chief=False, evaluator=False)]
    assert names == ["ps-0", "master-0", "worker-0"]


@pytest.mark.parametrize("field,value", [("ps", -1), ("workers", -2), ("workers", True)])
def test_bad_task_counts_are_config_errors(field: str, value: object) -> None:
    """A negative (or non-int) count raises a ConfigError naming the field."""
    with pytest.raises(ConfigError, match=field):
        cluster_tasks(**{field: value})  # type: ignore[arg-type]


@given(
    ps=st.integers(0, 3),
    workers=st.integers(0, 4),
    chief=st.booleans(),
    evaluator=st.booleans(),
)
def test_every_task_config_parses_and_gets_its_default_schedule(
    ps: int, workers: int, chief: bool, evaluator: bool
) -> None:
    """Each generated TF_CONFIG parses in the core and maps to the task's default schedule."""
    tasks = cluster_tasks(ps=ps, workers=workers, chief=chief, evaluator=evaluator)
    clustered = [t for t in tasks if t.type != "evaluator"]
    ports = list(range(20000, 20000 + len(clustered)))
    docs = tf_configs(tasks, ports)
    for task in tasks:
        config = TFConfig.from_json(json.dumps(docs[task.name]))
        assert "evaluator" not in config.cluster
        assert config.task_type is not None and config.task_type.value == task.type
        if len(clustered) > 1 or task.type == "evaluator":
            assert default_schedule(config) is EXPECTED_SCHEDULE[task.type]
    addresses = [a for job in docs[tasks[0].name]["cluster"].values() for a in job]
    assert len(addresses) == len(set(addresses)) == len(clustered)


def test_free_ports_are_distinct_and_bindable() -> None:
    """Picked ports differ and can be bound on 127.0.0.1 right after."""
    ports = pick_free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_tasks_run_the_cli() -> None:
    """A task runs ``python -m shell run SPEC --output-dir DIR`` (``--verbose`` on request)."""
    assert task_command("m:f", "/d") == [
        sys.executable,
        "-m",
        "shell",
        "run",
        "m:f",
        "--output-dir",
        "/d",
    ]
    assert task_command("m:f", "/d", verbose=True)[3] == "--verbose"


@pytest.mark.parametrize("spec", ["module", "m:", ":f", "m:f:g", "a b:f", ""])
def test_bad_specs_are_refused(spec: str) -> None:
    """A spec that is not ``package.module:function`` is a ConfigError."""
    with pytest.raises(ConfigError, match="experiment_fn"):
        check_spec(spec)


def test_exits_are_described_in_one_line() -> None:
    """A failed task is named with its status or the signal that killed it."""
    assert describe_exit(TaskExit(task="worker-1", pid=1, returncode=3, wall_secs=1)) == (
        "worker-1 exited with status 3"
    )
    assert describe_exit(TaskExit(task="ps-0", pid=1, returncode=-9, wall_secs=1)) == (
        "ps-0 was killed by SIGKILL"
    )


def test_result_exit_codes() -> None:
    """0 when every task exited 0, 130 when interrupted, else 1."""
    good = TaskExit(task="chief-0", pid=1, returncode=0, wall_secs=1)
    bad = TaskExit(task="ps-0", pid=2, returncode=1, wall_secs=1)
    assert ClusterResult(exits=(good,)).returncode == 0
    assert ClusterResult(exits=(good, bad), failed_task="ps-0", reason="x").returncode == 1
    assert ClusterResult(exits=(good,), reason="interrupted").returncode == 130
    assert ClusterResult(exits=(good, bad)).exit_of("ps-0") is bad


def test_cluster_subcommand_parses_and_sets_its_handler() -> None:
    """``cluster`` registers its options and an int-returning handler as func and handler."""
    parser = argparse.ArgumentParser()
    add_cluster_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["cluster", "--ps", "2", "--workers", "3", "--evaluator", "m:f", "--output-dir", "/d"]
    )
    assert (args.ps, args.workers, args.evaluator, args.master) == (2, 3, True, False)
    assert args.experiment_fn == "m:f" and args.output_dir == "/d"
    assert args.func is args.handler and callable(args.func)


def test_device_filters_match_tf_run_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our device filters are those TF's RunConfig sets when it builds the session config."""
    from shell._tf import tf

    docs = tf_configs(cluster_tasks(ps=2, workers=2, evaluator=True), [1, 2, 3, 4, 5])
    for name, doc in docs.items():
        monkeypatch.setenv("TF_CONFIG", json.dumps(doc))
        session_config = tf.estimator.RunConfig().session_config
        theirs = list(session_config.device_filters) if session_config is not None else None
        ours = default_device_filters(TFConfig.from_dict(doc))
        assert ours == (theirs or None), name


def test_stale_chief_record_is_ignored_until_it_reaches_train_steps(tmp_path: Path) -> None:
    """A chief record older than the worker counts only if it already reached train_steps."""
    disk.write_done(str(tmp_path), "chief-0", final_step=50, reason=EndReason.INPUT_EXHAUSTED)
    later = 1e12
    watch = ChiefWatch(str(tmp_path), since=later, train_steps=100)
    assert not watch.look(force=True)
    watch = ChiefWatch(str(tmp_path), since=later, train_steps=50)
    assert watch.look(force=True)


def test_chief_watch_looks_at_most_every_interval_and_stops_a_step_wait(tmp_path: Path) -> None:
    """The watch reads the disk at most every `every_secs`, and a step wait ends with the chief."""
    now = [0.0]
    watch = ChiefWatch(
        str(tmp_path),
        since=0.0,
        train_steps=None,
        every_secs=1.0,
        clock=lambda: now[0],
        sleep=lambda secs: now.__setitem__(0, now[0] + secs),
        wait_until_step=1000,
    )
    disk.write_done(str(tmp_path), "chief-0", final_step=7, reason=EndReason.INPUT_EXHAUSTED)
    assert not watch.look()  # within the interval: not read yet
    now[0] = 1.5
    assert watch.look() and watch.fired
    fresh = ChiefWatch(
        str(tmp_path), since=0.0, train_steps=None, wait_until_step=1000, sleep=lambda secs: None
    )
    assert fresh.hold_until_step(lambda: 3) is False


def _worker_estimator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **config: Any) -> Any:
    """A real Estimator built as worker 0 of a ps/chief/worker cluster (no server started)."""
    from shell._tf import tf

    docs = tf_configs(cluster_tasks(ps=1, workers=1, evaluator=False), [1, 2, 3])
    monkeypatch.setenv("TF_CONFIG", json.dumps(docs["worker-0"]))
    run_config = tf.estimator.RunConfig(model_dir=str(tmp_path), **config)
    return tf.estimator.Estimator(model_fn=lambda features, labels, mode: None, config=run_config)


def test_user_session_config_without_device_filters_gets_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker's own session_config without device_filters gets TF's: the ps and itself."""
    from shell._tf import tf

    estimator = _worker_estimator(
        monkeypatch,
        tmp_path,
        session_config=tf.compat.v1.ConfigProto(inter_op_parallelism_threads=2),
    )
    config = TFConfig.from_json(json.dumps(json.loads(os.environ["TF_CONFIG"])))
    assert ensure_device_filters(estimator, config)
    assert list(estimator._session_config.device_filters) == ["/job:ps", "/job:worker/task:0"]
    assert estimator._session_config.inter_op_parallelism_threads == 2
    assert not ensure_device_filters(estimator, config)  # already set: left alone


def test_readiness_probe_without_ps_says_ready(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no ps to ask (a local estimator), the probe reports ready without a session."""
    from shell._tf import tf

    monkeypatch.delenv("TF_CONFIG", raising=False)
    estimator = tf.estimator.Estimator(
        model_fn=lambda features, labels, mode: None,
        config=tf.estimator.RunConfig(model_dir=str(tmp_path)),
    )
    probe = ReadinessProbe(estimator)
    assert not probe.supported and probe.ready()
    probe.close()
