"""The command line on a cluster: malformed TF_CONFIG fails in one line; the launcher cleans up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

from tests.cluster.helpers import (
    FAILING_SPEC,
    ROOT,
    SPEC,
    alive,
    kill_all,
    started_pids,
    task_env,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

A, B = "127.0.0.1:1", "127.0.0.1:2"
BAD_TF_CONFIGS = {
    "bad JSON": ('{"cluster": {"chief": [', "TF_CONFIG"),
    "unknown task type": (
        json.dumps({"cluster": {"chief": [A], "ps": [B]}, "task": {"type": "boss", "index": 0}}),
        "task.type",
    ),
    "index out of range": (
        json.dumps(
            {"cluster": {"chief": [A], "worker": [B]}, "task": {"type": "worker", "index": 3}}
        ),
        "task.index",
    ),
    "evaluator in the cluster": (
        json.dumps(
            {"cluster": {"chief": [A], "evaluator": [B]}, "task": {"type": "evaluator", "index": 0}}
        ),
        "cluster.evaluator",
    ),
}


def _launch(
    args: list[str],
    env: dict[str, str],
    *,
    stdout: int | IO[Any] | None,
    stderr: int | IO[Any] | None,
) -> subprocess.Popen[str]:
    """Start ``python -m shell ARGS`` in the repository root with ``env`` added."""
    return subprocess.Popen(
        [sys.executable, "-m", "shell", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )


@pytest.mark.timeout(120)
def test_malformed_tf_config_exits_2_at_once_with_one_line(tmp_path: Path) -> None:
    """Bad JSON, an unknown task type, an index out of range or an evaluator listed in the
    cluster: the task exits 2 within seconds with one line naming the field, no traceback."""
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, (tf_config, _) in BAD_TF_CONFIGS.items():
            env = {**task_env(), "TF_CONFIG": tf_config}
            args = ["run", SPEC, "--output-dir", str(tmp_path / name.replace(" ", "_"))]
            procs[name] = _launch(args, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=90)
            field = BAD_TF_CONFIGS[name][1]
            lines = [line for line in (out + err).splitlines() if line.strip()]
            assert proc.returncode == 2, (name, out, err)
            assert len(lines) == 1, (name, lines)
            assert field in lines[0] and "Traceback" not in err, (name, lines)
    finally:
        kill_all(p.pid for p in procs.values())
    assert not (tmp_path / "bad_JSON").exists()


def _cluster_args(spec: str, output_dir: Path) -> list[str]:
    return ["cluster", spec, "--ps", "1", "--workers", "0", "--output-dir", str(output_dir)]


@pytest.mark.timeout(240)
def test_launcher_ends_every_task_when_one_fails(tmp_path: Path) -> None:
    """`tfexperiment cluster` exits 1 naming the failed chief, and ends the ps it started."""
    proc = _launch(
        _cluster_args(FAILING_SPEC, tmp_path / "run"),
        task_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pids: list[int] = []
    try:
        out, err = proc.communicate(timeout=200)  # the launcher imports the module first
        pids = [pid for found in started_pids(out.splitlines()).values() for pid in found]
        assert proc.returncode == 1, (out[-2000:], err[-2000:])
        assert "cluster failed: chief-0 exited with status 1" in err
        assert "[chief-0]" in out and "fails on purpose" in out
        assert len(pids) == 2
        assert not any(alive(pid) for pid in pids)
    finally:
        kill_all([proc.pid, *pids])


@pytest.mark.timeout(240)
def test_ctrl_c_on_the_launcher_ends_every_task(tmp_path: Path) -> None:
    """SIGINT to `tfexperiment cluster` ends every task it started and exits 130."""
    pause = tmp_path / "pause"
    pause.touch()
    log = tmp_path / "launcher.log"
    env = task_env(train_steps=1000, pause_file=pause, pause_at_step=0)
    with open(log, "w") as sink:
        proc = _launch(
            _cluster_args(SPEC, tmp_path / "run"), env, stdout=sink, stderr=subprocess.STDOUT
        )
    pids: list[int] = []
    try:

        def both_serving() -> bool:
            text = log.read_text()
            return "[ps-0]" in text and "listening at" in text.split("[chief-0]", 1)[-1]

        # the launcher imports the module first (one TensorFlow import), then the tasks do
        wait_for(both_serving, 180, "the ps and the chief to serve")
        pids = [
            pid for found in started_pids(log.read_text().splitlines()).values() for pid in found
        ]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in pids)
        assert "interrupted; ending every task" in log.read_text()
    finally:
        kill_all([proc.pid, *pids])


@pytest.mark.timeout(300)
def test_the_demo_config_runs_on_a_local_cluster(tmp_path: Path) -> None:
    """`cluster --config` runs the wine demo on ps + chief + evaluator: exit 0, only the chief
    prints a training summary and lists exports, the ps prints none, the evaluator its
    evaluations and skips exports."""
    out = tmp_path / "wine"
    args = [
        "cluster",
        "--config",
        os.path.join(ROOT, "examples", "wine", "experiment.yaml"),
        "--set",
        "train_steps=40",
        "--set",
        "eval_every_n_steps=20",
        "--set",
        "estimator.run_config.save_checkpoints_steps=20",
        "--ps",
        "1",
        "--workers",
        "0",
        "--evaluator",
        "--output-dir",
        str(out),
        "--timeout",
        "240",
    ]
    proc = _launch(args, {}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids: list[int] = []
    try:
        stdout, stderr = proc.communicate(timeout=280)
        pids = [pid for found in started_pids(stdout.splitlines()).values() for pid in found]
        assert proc.returncode == 0, (stdout[-3000:], stderr[-3000:])
        lines = stdout.splitlines()

        def of(task: str) -> list[str]:
            return [x for x in lines if x.startswith(f"[{task}] ")]

        assert any("steps trained" in x for x in of("chief-0"))
        assert any("export: " in x for x in of("chief-0"))
        assert not any("done:" in x or "steps trained" in x for x in of("ps-0"))
        evaluator = of("evaluator-0")
        assert any("done: continuous_eval as evaluator-0" in x for x in evaluator), evaluator
        assert not any("steps trained" in x or "export: " in x for x in evaluator)
        assert any("does not export" in x for x in evaluator)
        assert (out / "export" / "best").is_dir()
    finally:
        kill_all([proc.pid, *pids])
