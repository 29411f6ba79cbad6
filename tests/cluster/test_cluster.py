"""Real multi-process clusters on 127.0.0.1: they train, evaluate, survive faults and end."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shell.launcher import LocalCluster
from tests.cluster.helpers import (
    ROOT,
    SPEC,
    alive,
    checkpoint_steps,
    done_records,
    event_eval_paths,
    latest_step,
    logged_eval_steps,
    progress_step,
    task_env,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

STEPS = 300
PAUSE_AT = 100
RUN_TIMEOUT = 150.0


_T0 = time.monotonic()


def _quiet(line: str) -> None:
    """Drop the tasks' output, or print it timestamped when TFX_TEST_ECHO is set."""
    if os.environ.get("TFX_TEST_ECHO"):
        print(f"{time.monotonic() - _T0:7.2f} {line}"[:200], flush=True)


def _paused(model_dir: str, min_step: int) -> bool:
    """Whether a checkpoint at ``min_step`` or later exists (training reached the pause)."""
    return (latest_step(model_dir) or 0) >= min_step


def _stable(check: Callable[[], bool], secs: float = 1.0) -> Callable[[], bool]:
    """A predicate that is true once ``check()`` has held for ``secs`` in a row."""
    since: list[float] = []

    def predicate() -> bool:
        if not check():
            since.clear()
            return False
        if not since:
            since.append(time.monotonic())
        return time.monotonic() - since[0] >= secs

    return predicate


@pytest.mark.timeout(240)
def test_full_cluster_survives_a_busy_port_and_an_evaluator_restart(tmp_path: Path) -> None:
    """ps, chief, worker and evaluator run to train_steps and exit 0; the worker's busy port
    is retried; the restarted evaluator evaluates no checkpoint twice and ends at the final step."""
    model_dir = str(tmp_path / "run")
    pause = tmp_path / "pause"
    pause.touch()
    env = task_env(
        train_steps=STEPS,
        save_steps=20,
        pause_file=pause,
        pause_at_step=PAUSE_AT,
        throttle_secs=0.3,
    )
    with LocalCluster(
        SPEC, model_dir, ps=1, workers=1, evaluator=True, env=env, sink=_quiet, cwd=ROOT
    ) as cluster:
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            holder.bind(("127.0.0.1", cluster.ports["worker-0"]))
            holder.listen()
            cluster.start()
            wait_for(
                lambda: any("did not start" in line for line in cluster.lines("worker-0")),
                90,
                "the worker's first failed server start",
            )
        finally:
            holder.close()
        paused = _stable(
            lambda: (
                _paused(model_dir, PAUSE_AT - 20)
                and progress_step(model_dir) == latest_step(model_dir)
            )
        )
        wait_for(paused, 90, "training to pause and the evaluator to catch up")
        evaluated_before = progress_step(model_dir)
        assert cluster.kill("evaluator-0").returncode == -signal.SIGKILL
        cluster.start("evaluator-0")
        wait_for(
            lambda: any("resuming" in line for line in cluster.lines("evaluator-0")),
            90,
            "the restarted evaluator to resume",
        )
        pause.unlink()
        result = cluster.wait(RUN_TIMEOUT)

    assert result.ok, (result.reason, {t: result.lines[t][-15:] for t in result.lines})
    assert [e.task for e in result.exits] == ["ps-0", "chief-0", "worker-0", "evaluator-0"]
    assert any("retrying" in line for line in result.lines["worker-0"])
    final = latest_step(model_dir)
    assert final is not None and final >= STEPS
    assert progress_step(model_dir) == final
    logged = logged_eval_steps(result.lines["evaluator-0"])
    # A checkpoint's name has the chief's step; the global step saved in it may be a little
    # later (the workers keep training while it is written), and evaluations report that.
    assert logged[-1] >= final
    assert evaluated_before is not None
    resumed_at = next(i for i, line in enumerate(result.lines["evaluator-0"]) if "resuming" in line)
    after_restart = logged_eval_steps(result.lines["evaluator-0"][resumed_at:])
    assert after_restart and min(after_restart) > evaluated_before
    counts = event_eval_paths(model_dir)
    final_path = os.path.join(model_dir, f"model.ckpt-{final}")
    # The chief evaluates the final checkpoint too (eval_every_n_steps=None): up to 2 events.
    # (Event file names carry only the second and the host name, so two processes that open
    # their eval writer in the same second on one machine share a file and one may be lost.)
    assert 1 <= counts[final_path] <= 2, counts
    assert all(n == 1 for path, n in counts.items() if path != final_path), counts
    records = done_records(model_dir)
    assert set(records) == {"chief-0", "worker-0"}
    assert records["chief-0"]["final_step"] == final
    assert not any(alive(e.pid) for e in cluster.history())


@pytest.mark.timeout(240)
def test_chief_killed_mid_training_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    """A SIGKILLed chief restarted mid-run restores its last checkpoint and the job still ends."""
    model_dir = str(tmp_path / "run")
    pause = tmp_path / "pause"
    pause.touch()
    env = task_env(train_steps=STEPS, save_steps=20, pause_file=pause, pause_at_step=PAUSE_AT)
    with LocalCluster(
        SPEC, model_dir, ps=1, workers=1, evaluator=False, env=env, sink=_quiet, cwd=ROOT
    ) as cluster:
        cluster.start()
        wait_for(_stable(lambda: _paused(model_dir, PAUSE_AT - 20)), 120, "training to pause")
        checkpointed = latest_step(model_dir)
        assert checkpointed is not None
        killed = cluster.kill("chief-0")
        restarted_at = time.time()
        cluster.start("chief-0")
        pause.unlink()
        result = cluster.wait(RUN_TIMEOUT)

    assert killed.returncode == -signal.SIGKILL
    assert result.ok, (result.reason, {t: result.lines[t][-15:] for t in result.lines})
    assert [e.returncode for e in cluster.history() if e.task == "chief-0"] == [-9, 0]
    after = checkpoint_steps(model_dir, written_after=restarted_at)
    assert after and min(after) >= checkpointed, (checkpointed, after)
    records = done_records(model_dir)
    assert records["chief-0"]["final_step"] >= STEPS
    assert records["chief-0"]["reason"] == "train_steps reached"
    assert records["worker-0"]["reason"] == "train_steps reached"
    assert set(records) == {"chief-0", "worker-0"}
    assert not any(alive(e.pid) for e in cluster.history())


@pytest.mark.timeout(180)
def test_chief_input_running_out_still_ends_ps_workers_and_evaluator(tmp_path: Path) -> None:
    """When the chief's finite input ends early, the workers (one still held at its
    global-step start gate) stop, and ps and evaluator exit 0."""
    model_dir = str(tmp_path / "run")
    env = task_env(
        train_steps=100_000, save_steps=20, chief_epochs=15, throttle_secs=0.3, delay_by_step=1
    )
    with LocalCluster(
        SPEC, model_dir, ps=1, workers=2, evaluator=True, env=env, sink=_quiet, cwd=ROOT
    ) as cluster:
        cluster.start()
        result = cluster.wait(RUN_TIMEOUT)

    assert result.ok, (result.reason, {t: result.lines[t][-15:] for t in result.lines})
    records = done_records(model_dir)
    chief = records["chief-0"]
    assert chief["reason"] == "training input ran out"
    assert 60 <= chief["final_step"] < 100_000
    assert records["worker-0"]["reason"] == "the chief finished"
    assert records["worker-1"]["reason"] == "the chief finished"  # gate: step 5545, never reached
    assert latest_step(model_dir) == chief["final_step"]
    assert progress_step(model_dir) == chief["final_step"]  # the evaluator's last checkpoint
    assert logged_eval_steps(result.lines["evaluator-0"])[-1] >= chief["final_step"]
