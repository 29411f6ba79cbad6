"""Start a TensorFlow server for this task, retrying transient failures with tenacity."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import tenacity

from core.errors import ConfigError, TFExperimentError
from core.retry import RetryPolicy, wait_before_attempt
from core.tf_config import TaskType, TFConfig
from shell._tf import tf

log = logging.getLogger("tfexperiment")


class ServerStartError(TFExperimentError, RuntimeError):
    """The server could not start within the retry bound.

    Attributes:
        address: The ``host:port`` it tried to bind.
        attempts: How many attempts were made.
    """

    def __init__(self, address: str, attempts: int, cause: BaseException) -> None:
        self.address = address
        self.attempts = attempts
        super().__init__(
            f"could not start the TensorFlow server at {address} after {attempts} attempts: "
            f"{cause} (is another process holding the port?)"
        )


def is_transient(err: BaseException) -> bool:
    """Whether a server start failure may pass (a port still held by another process)."""
    return isinstance(err, tf.errors.UnknownError) and "could not start" in str(err).lower()


def server_job(config: TFConfig) -> tuple[str, int, str]:
    """The job name, task index and address this task serves.

    Raises:
        ConfigError: The task has no address in the cluster (e.g. an evaluator or a
            local run): there is nothing to serve.
    """
    if config.task_type is None or config.task_type is TaskType.EVALUATOR or not config.address:
        raise ConfigError(
            "TF_CONFIG",
            config.as_dict(),
            "names no cluster task with an address: a server needs a 'cluster' and a "
            "'task' of type chief, master, worker or ps",
        )
    return str(config.task_job), config.task_index, config.address


def start_server(
    config: TFConfig,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Any:
    """Start a ``tf.distribute.Server`` for this task, retrying a busy port.

    Args:
        config: The parsed TF_CONFIG of this task.
        retry: Attempts and backoff (the core's defaults when None).
        sleep: Sleep function for tenacity (tests may pass a recorder).

    Returns:
        The started server.

    Raises:
        ConfigError: The config names no task to serve.
        ServerStartError: The port stayed busy past the retry bound.
    """
    policy = retry or RetryPolicy()
    job, index, address = server_job(config)
    cluster = tf.train.ClusterSpec({k: list(v) for k, v in config.cluster.items()})

    def _log_retry(state: tenacity.RetryCallState) -> None:
        wait = wait_before_attempt(policy, state.attempt_number + 1)
        log.warning(
            "server %s:%d at %s did not start (attempt %d/%d), retrying in %.2fs",
            job,
            index,
            address,
            state.attempt_number,
            policy.attempts,
            wait,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=lambda state: wait_before_attempt(policy, state.attempt_number + 1),
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=_log_retry,
        sleep=sleep or tenacity.nap.sleep,
        reraise=True,
    )
    try:
        server = retrying(
            tf.distribute.Server,
            cluster,
            job_name=job,
            task_index=index,
            protocol="grpc",
            start=True,
        )
    except tf.errors.UnknownError as err:
        if is_transient(err):
            raise ServerStartError(address, policy.attempts, err) from err
        raise
    log.info("server %s:%d listening at %s", job, index, address)
    return server
