"""Faults on real processes: a failing or silent chief, a worker that never joins,
SIGTERM/SIGINT, and early stopping of the whole job; every task must end by itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shell.launcher import LocalCluster
from tests.cluster.fault_experiments import FAULT_SPEC
from tests.cluster.helpers import (
    ROOT,
    alive,
    checkpoint_steps,
    done_records,
    kill_all,
    latest_step,
    task_env,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

_T0 = time.monotonic()
#: Measured times (fault → last task's exit), printed at the end of each test.
MEASURED: dict[str, float] = {}


def _quiet(line: str) -> None:
    """Drop the tasks' output, or print it timestamped when TFX_TEST_ECHO is set."""
    if os.environ.get("TFX_TEST_ECHO"):
        print(f"{time.monotonic() - _T0:7.2f} {line}"[:200], flush=True)


def _records(model_dir: str) -> dict[str, dict[str, Any]]:
    """The lifecycle records on disk (``<task>.state.json``, ``stop.json``), by file stem."""
    out = {}
    folder = Path(model_dir, "tfexperiment")
    for path in [*folder.glob("*.state.json"), *folder.glob("stop.json")]:
        out[path.name.split(".")[0]] = json.loads(path.read_text())
    return out


def _wait_all(cluster: LocalCluster, timeout_secs: float) -> dict[str, int]:
    """Wait (bounded) until every started task exited; their exit codes by task."""
    wait_for(lambda: all(e is not None for e in cluster.poll().values()), timeout_secs, "exits")
    return {task: e.returncode for task, e in cluster.poll().items() if e is not None}


def _measure(name: str, since: float) -> float:
    """Record and print the seconds from ``since`` to now for scenario ``name``."""
    MEASURED[name] = time.monotonic() - since
    print(f"\nmeasured: {name}: {MEASURED[name]:.1f} s from the fault to the last exit")
    return MEASURED[name]


def _exited(cluster: LocalCluster, task: str) -> bool:
    return cluster.poll().get(task) is not None


def _lines(cluster: LocalCluster, task: str) -> str:
    return "\n".join(cluster.lines(task))


_OTHERS = ("ps-0", "worker-0", "evaluator-0")


def _chief_newer_than(model_dir: str, task: str) -> bool:
    """Whether the chief's latest record is newer than ``task``'s (which ``task``, having
    started before writing its own, reads as a record of this run)."""
    records = _records(model_dir)
    if "chief-0" not in records or task not in records:
        return False
    return bool(records["chief-0"]["t"] > records[task]["t"])


@pytest.mark.timeout(240)
def test_a_failing_chief_ends_every_task_with_exit_1(tmp_path: Path) -> None:
    """A chief whose training raises writes `failed` and exits 1; ps, worker and evaluator
    each exit 1 within seconds with one line naming chief-0 and its reason."""
    model_dir = str(tmp_path / "run")
    env = task_env(train_steps=300, save_steps=20, fail_at_step=60)
    with LocalCluster(
        FAULT_SPEC, model_dir, ps=1, workers=1, evaluator=True, env=env, sink=_quiet, cwd=ROOT
    ) as cluster:
        cluster.start()
        wait_for(lambda: _exited(cluster, "chief-0"), 150, "the chief to fail")
        failed_at = time.monotonic()
        codes = _wait_all(cluster, 60)
        took = _measure("chief fails for good", failed_at)
        pids = [e.pid for e in cluster.history()]

    assert codes == {"ps-0": 1, "chief-0": 1, "worker-0": 1, "evaluator-0": 1}, codes
    assert took < 30
    reason = "ValueError: bad data at step 60 (on purpose)"
    assert _records(model_dir)["chief-0"]["kind"] == "failed"
    assert reason in _records(model_dir)["chief-0"]["reason"]
    for task in ("ps-0", "worker-0", "evaluator-0"):
        assert f"{task}: chief-0 failed: {reason}" in _lines(cluster, task), task
    assert not any(alive(pid) for pid in pids)


@pytest.mark.timeout(240)
def test_a_silent_chief_is_lost_after_the_deadline(tmp_path: Path) -> None:
    """A SIGKILLed chief that is not restarted is declared lost after chief_lost_after_secs
    (5 s here): ps, worker and evaluator exit 1 naming chief-0 as lost."""
    model_dir = str(tmp_path / "run")
    pause = tmp_path / "pause"
    pause.touch()
    env = task_env(
        train_steps=100_000, save_steps=20, pause_file=pause, pause_at_step=60, chief_lost_secs=5
    )
    with LocalCluster(
        FAULT_SPEC, model_dir, ps=1, workers=1, evaluator=True, env=env, sink=_quiet, cwd=ROOT
    ) as cluster:
        cluster.start()
        wait_for(lambda: (latest_step(model_dir) or 0) >= 40, 150, "training to pause")
        # Kill only once the worker (it joins last) can have read a chief record of this
        # run: one written after the worker's own; a task that started later than the
        # chief's last word reports "not joined" instead.
        wait_for(lambda: _chief_newer_than(model_dir, "worker-0"), 60, "a chief record")
        killed = cluster.kill("chief-0")
        killed_at = time.monotonic()
        pause.unlink()
        codes = _wait_all(cluster, 60)
        took = _measure("chief killed silently (chief_lost_after_secs=5)", killed_at)
        pids = [e.pid for e in cluster.history()]

    assert killed.returncode == -signal.SIGKILL
    assert codes == {"ps-0": 1, "chief-0": -9, "worker-0": 1, "evaluator-0": 1}, codes
    assert 4 < took < 40
    for task in _OTHERS:
        assert f"{task}: chief-0 is lost: no word for" in _lines(cluster, task), task
    assert not any(alive(pid) for pid in pids)


@pytest.mark.timeout(240)
def test_a_worker_that_never_joins_does_not_hold_the_ps(tmp_path: Path) -> None:
    """With 2 workers in the spec and only worker 0 started, every started task exits 0:
    the ps waits only for the workers that joined."""
    model_dir = str(tmp_path / "run")
    env = task_env(train_steps=100, save_steps=20)
    with LocalCluster(
        FAULT_SPEC, model_dir, ps=1, workers=2, evaluator=True, env=env, sink=_quiet, cwd=ROOT
    ) as cluster:
        for task in ("ps-0", "chief-0", "worker-0", "evaluator-0"):
            cluster.start(task)
        wait_for(lambda: _exited(cluster, "chief-0"), 150, "the chief to finish")
        finished_at = time.monotonic()
        codes = _wait_all(cluster, 60)
        took = _measure("a worker never joins (after the chief's exit)", finished_at)
        pids = [e.pid for e in cluster.history()]

    assert codes == {"ps-0": 0, "chief-0": 0, "worker-0": 0, "evaluator-0": 0}, codes
    assert took < 30
    assert set(done_records(model_dir)) == {"chief-0", "worker-0"}
    assert not any(alive(pid) for pid in pids)


@pytest.mark.timeout(300)
def test_sigterm_keeps_the_work_and_a_rerun_resumes(tmp_path: Path) -> None:
    """SIGTERM on chief and worker: they stop at the next step, the chief saves there,
    both write `preempted` and exit 143; the waiting ps and evaluator exit 143 at once on
    SIGTERM; a rerun of the job resumes from the saved checkpoint and ends with 0."""
    model_dir = str(tmp_path / "run")
    pause = tmp_path / "pause"
    pause.touch()
    env = task_env(train_steps=200, save_steps=1000, pause_file=pause, pause_at_step=50)
    with LocalCluster(
        FAULT_SPEC, model_dir, ps=1, workers=1, evaluator=True, env=env, sink=_quiet, cwd=ROOT
    ) as cluster:
        cluster.start()
        wait_for(
            lambda: (
                any("waiting" not in line for line in cluster.lines("worker-0"))
                and "chief-0" in _records(model_dir)
                and "worker-0" in _records(model_dir)
            ),
            150,
            "chief and worker to join",
        )
        time.sleep(3.0)  # both reach the pause at step 50
        signalled = time.monotonic()
        cluster.signal("chief-0", signal.SIGTERM)
        cluster.signal("worker-0", signal.SIGTERM)
        time.sleep(0.5)
        pause.unlink()
        wait_for(lambda: _exited(cluster, "chief-0") and _exited(cluster, "worker-0"), 60, "143")
        _measure("SIGTERM on chief and worker", signalled)
        others = time.monotonic()
        cluster.signal("ps-0", signal.SIGTERM)
        cluster.signal("evaluator-0", signal.SIGTERM)
        codes = _wait_all(cluster, 30)
        _measure("SIGTERM on ps and evaluator", others)
        pids = [e.pid for e in cluster.history()]

    assert codes == {"ps-0": 143, "chief-0": 143, "worker-0": 143, "evaluator-0": 143}, codes
    records = _records(model_dir)
    saved = records["chief-0"]["step"]
    assert records["chief-0"]["kind"] == "preempted" and saved >= 50
    assert records["worker-0"]["kind"] == "preempted"
    assert latest_step(model_dir) == saved  # the step the signal arrived at is on disk
    assert f"chief-0: interrupted by SIGTERM; saved a checkpoint at step {saved}" in _lines(
        cluster, "chief-0"
    )
    assert not any(alive(pid) for pid in pids)

    rerun_at = time.time()
    env = task_env(train_steps=200, save_steps=1000)
    with LocalCluster(
        FAULT_SPEC, model_dir, ps=1, workers=1, evaluator=True, env=env, sink=_quiet, cwd=ROOT
    ) as rerun:
        rerun.start()
        result = rerun.wait(150, fail_fast=False)
    assert result.ok, (result.reason, {t: result.lines[t][-10:] for t in result.lines})
    assert min(checkpoint_steps(model_dir, written_after=rerun_at)) >= saved
    assert done_records(model_dir)["chief-0"]["final_step"] >= 200
    assert not any(alive(e.pid) for e in rerun.history())


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_local_run_saves_on_a_signal_and_resumes(tmp_path: Path, signum: int, code: int) -> None:
    """A local run whose checkpoints are rare saves at the step a SIGTERM (143) or SIGINT
    (130) arrives, writes `preempted`, prints one line; a rerun resumes there."""
    model_dir = str(tmp_path / "run")
    pause = tmp_path / "pause"
    pause.touch()
    env = {**os.environ, **task_env(train_steps=120, save_steps=1000)}
    env.pop("TF_CONFIG", None)
    cmd = [sys.executable, "-m", "shell", "run", FAULT_SPEC, "--output-dir", model_dir]
    paused_env = {**env, **task_env(pause_file=pause, pause_at_step=50)}
    process = subprocess.Popen(
        cmd, env=paused_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(lambda: "chief-0" in _records(model_dir), 90, "the run to join")
        time.sleep(3.0)  # reaches the pause at step 50
        signalled = time.monotonic()
        process.send_signal(signum)
        time.sleep(0.5)
        pause.unlink()
        out, _ = process.communicate(timeout=60)
        _measure(f"local {signal.Signals(signum).name}", signalled)
    finally:
        kill_all([process.pid])
    assert process.returncode == code, out[-2000:]
    record = _records(model_dir)["chief-0"]
    assert record["kind"] == "preempted" and record["step"] >= 50
    assert latest_step(model_dir) == record["step"]
    name = signal.Signals(signum).name
    assert f"chief-0: interrupted by {name}; saved a checkpoint at step {record['step']}" in out

    rerun_at = time.time()
    rerun = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert min(checkpoint_steps(model_dir, written_after=rerun_at)) >= record["step"]
    assert done_records(model_dir)["chief-0"]["final_step"] == 120


@pytest.mark.timeout(240)
def test_the_evaluator_stops_the_whole_job_early(tmp_path: Path) -> None:
    """The evaluator's predicate (no improvement in 2 evaluations) writes a stop request:
    chief and worker stop at their next step with `done` "stopped by the evaluator", the
    ps exits, every task exits 0, long before train_steps."""
    model_dir = str(tmp_path / "run")
    env = task_env(train_steps=100_000, save_steps=20, patience=2, throttle_secs=0.3)
    with LocalCluster(
        FAULT_SPEC, model_dir, ps=1, workers=1, evaluator=True, env=env, sink=_quiet, cwd=ROOT
    ) as cluster:
        cluster.start()
        wait_for(lambda: "stop" in _records(model_dir), 150, "the stop request")
        stopped_at = time.monotonic()
        codes = _wait_all(cluster, 60)
        took = _measure("the evaluator stops the job", stopped_at)
        pids = [e.pid for e in cluster.history()]

    assert codes == {"ps-0": 0, "chief-0": 0, "worker-0": 0, "evaluator-0": 0}, codes
    assert took < 30
    records = done_records(model_dir)
    assert records["chief-0"]["reason"] == "stopped by the evaluator"
    assert records["worker-0"]["reason"] in ("stopped by the evaluator", "the chief finished")
    assert records["chief-0"]["final_step"] < 100_000
    assert latest_step(model_dir) == records["chief-0"]["final_step"]
    assert _records(model_dir)["stop"]["reason"] == "no improvement of loss in 2 evaluations"
    assert not any(alive(pid) for pid in pids)
