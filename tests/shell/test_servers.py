"""Server start with tenacity (busy ports), and run_std_server's exit once training is done.

Every tf.distribute.Server started here lives until the process exits, so each test uses
its own freshly picked ports.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.completion import EndReason
from core.retry import RetryPolicy, backoff_waits, total_wait_secs
from core.tf_config import TaskType, TFConfig
from shell import Experiment, disk
from shell.servers import ServerStartError, start_server
from tests.shell import models

HOST = "127.0.0.1"


def _free_port() -> int:
    """A port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[tuple[int, socket.socket]]:
    """A port held busy by a listening socket (closed at teardown if the test did not)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    sock.listen()
    try:
        yield int(sock.getsockname()[1]), sock
    finally:
        sock.close()


def _ps_config(port: int) -> TFConfig:
    # Built directly: parsing refuses a cluster without a chief (as TF's RunConfig does).
    return TFConfig(cluster={"ps": [f"{HOST}:{port}"]}, task_type=TaskType.PS, task_index=0)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def test_server_starts_once_a_busy_port_is_freed(
    busy_port: tuple[int, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    """A port busy for ~0.7 s is retried with backoff (logged) and the server then starts."""
    caplog.set_level(logging.INFO, logger="tfexperiment")
    port, holder = busy_port
    releaser = threading.Timer(0.7, holder.close)
    releaser.start()
    try:
        server = start_server(_ps_config(port))
    finally:
        releaser.cancel()
    assert server.target == f"grpc://{HOST}:{port}"
    assert _port_in_use(port)
    retries = [r for r in caplog.records if "did not start" in r.getMessage()]
    assert retries and all(r.levelno == logging.WARNING for r in retries)
    assert f"{HOST}:{port}" in retries[0].getMessage()
    assert f"listening at {HOST}:{port}" in caplog.messages[-1]


def test_server_start_on_a_port_that_stays_busy_fails_within_the_bound(
    busy_port: tuple[int, socket.socket],
) -> None:
    """A port that stays busy raises ServerStartError naming the address after all attempts."""
    port, _ = busy_port
    policy = RetryPolicy(attempts=3, initial_wait_secs=0.05)
    started = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        start_server(_ps_config(port), retry=policy)
    elapsed = time.monotonic() - started
    assert elapsed < total_wait_secs(policy) + 5.0
    assert info.value.address == f"{HOST}:{port}" and info.value.attempts == 3
    assert f"{HOST}:{port}" in str(info.value) and "3 attempts" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_server_start_waits_follow_the_core_backoff(busy_port: tuple[int, socket.socket]) -> None:
    """The waits between attempts are exactly the core's backoff_waits for the policy."""
    port, _ = busy_port
    policy = RetryPolicy(attempts=4, initial_wait_secs=0.01, multiplier=3.0)
    waits: list[float] = []
    with pytest.raises(ServerStartError):
        start_server(_ps_config(port), retry=policy, sleep=waits.append)
    assert waits == pytest.approx(backoff_waits(policy))


@pytest.mark.parametrize(
    "config",
    [
        TFConfig.local(),
        TFConfig.from_dict(
            {
                "cluster": {"chief": [f"{HOST}:1"], "worker": [f"{HOST}:2"]},
                "task": {"type": "evaluator"},
            }
        ),
    ],
    ids=["no-task", "evaluator"],
)
def test_server_start_without_a_cluster_task_is_a_value_error(config: TFConfig) -> None:
    """A config naming no cluster task with an address raises ValueError naming TF_CONFIG."""
    with pytest.raises(ValueError, match="TF_CONFIG"):
        start_server(config, retry=RetryPolicy(attempts=1))


def test_run_std_server_serves_until_training_tasks_are_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_std_server starts the ps server and returns once the chief's completion record appears."""
    model_dir = str(tmp_path / "m")
    ps_port, chief_port = _free_port(), _free_port()
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps(
            {
                "cluster": {"ps": [f"{HOST}:{ps_port}"], "chief": [f"{HOST}:{chief_port}"]},
                "task": {"type": "ps", "index": 0},
            }
        ),
    )
    polls: list[float] = []

    def sleep(secs: float) -> None:
        polls.append(secs)
        assert _port_in_use(ps_port)  # serving while it waits
        if len(polls) == 2:
            disk.write_done(
                model_dir, "chief-0", final_step=5, reason=EndReason.TRAIN_STEPS_REACHED
            )

    experiment = models.experiment(
        models.SpyEstimator(model_dir),
        models.raising_input_fn,
        models.raising_input_fn,
        sleep=sleep,
    )
    experiment.run_std_server()
    assert len(polls) == 2


def test_run_std_server_without_a_task_is_a_value_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_std_server with no TF_CONFIG task raises ValueError (nothing to serve)."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    experiment = Experiment(
        models.SpyEstimator(str(tmp_path)), models.raising_input_fn, models.raising_input_fn
    )
    with pytest.raises(ValueError, match="TF_CONFIG"):
        experiment.run_std_server()
