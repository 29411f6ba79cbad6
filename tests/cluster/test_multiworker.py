"""MultiWorkerMirroredStrategy across real processes on 127.0.0.1 (chief + worker + evaluator),
driven by ``run_experiment`` with the default schedules."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shell.launcher import LocalCluster, task_command
from tests.cluster.helpers import (
    ROOT,
    checkpoint_steps,
    done_records,
    latest_step,
    logged_eval_steps,
    task_env,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SPEC = "tests.cluster.strategy_experiments:multi_worker_experiment_fn"
STEPS = 100
RUN_TIMEOUT = 240.0
_T0 = time.monotonic()


def _quiet(line: str) -> None:
    """Drop the tasks' output, or print it timestamped when TFX_TEST_ECHO is set."""
    if os.environ.get("TFX_TEST_ECHO"):
        print(f"{time.monotonic() - _T0:7.2f} {line}"[:200], flush=True)


def test_multi_worker_cluster_trains_evaluates_and_every_task_exits_0(tmp_path: Path) -> None:
    """Chief, worker and evaluator under multi_worker_mirrored all exit 0; the evaluator's last
    evaluation is at the final step and both trainers write their completion records."""
    model_dir = str(tmp_path / "model")
    with LocalCluster(
        SPEC,
        model_dir,
        ps=0,
        workers=1,
        evaluator=True,
        env=task_env(train_steps=STEPS, save_steps=20),
        sink=_quiet,
        cwd=ROOT,
    ) as cluster:
        cluster.start()
        result = cluster.wait(RUN_TIMEOUT)
    lines = {task: "\n".join(found) for task, found in result.lines.items()}
    assert result.ok, f"{result.reason}\n" + "\n".join(
        f"--- {t}\n{text[-2000:]}" for t, text in lines.items()
    )
    assert [e.returncode for e in result.exits] == [0, 0, 0]
    assert not any("ServerStartError" in text for text in lines.values())
    evaluated = logged_eval_steps(result.lines["evaluator-0"])
    assert evaluated and evaluated[-1] == STEPS
    assert latest_step(model_dir) == STEPS
    assert checkpoint_steps(model_dir)[-1] == STEPS
    records = done_records(model_dir)
    assert records["chief-0"]["final_step"] == STEPS
    # A worker saves no checkpoint: its record holds the chief's latest step it read.
    assert 0 <= records["worker-0"]["final_step"] <= STEPS


def test_a_schedule_that_would_leave_the_all_reduce_waiting_is_refused(tmp_path: Path) -> None:
    """continuous_train_and_evaluate under multi_worker_mirrored: chief and worker exit 2 with
    one line naming the schedule, before anything is trained."""
    model_dir = str(tmp_path / "model")
    command = [*task_command(SPEC, model_dir), "--schedule", "continuous_train_and_evaluate"]
    with LocalCluster(
        SPEC,
        model_dir,
        ps=0,
        workers=1,
        evaluator=False,
        env=task_env(train_steps=STEPS),
        sink=_quiet,
        cwd=ROOT,
        command=command,
    ) as cluster:
        cluster.start()
        result = cluster.wait(RUN_TIMEOUT, fail_fast=False)
    assert [e.returncode for e in result.exits] == [2, 2], result.reason
    for task in ("chief-0", "worker-0"):
        errors = [line for line in result.lines[task] if "error:" in line]
        assert len(errors) == 1, result.lines[task][-20:]
        assert "schedule='continuous_train_and_evaluate'" in errors[0]
        assert "multi_worker_mirrored" in errors[0]
    assert checkpoint_steps(model_dir) == []
