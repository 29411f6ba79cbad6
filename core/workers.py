"""A worker's way into training: its start delay, the gate before it joins, its waits."""

from __future__ import annotations

import enum
import math

import attrs

from core._validate import check, non_negative_secs
from core.errors import ConfigError, ConfigTypeError
from core.tf_config import TaskType, TFConfig

MAX_DELAY_SECS = 60.0
SECS_PER_WORKER = 5.0
STEPS_PER_LOG_UNIT = 8000
#: A start delay is slept in slices of this many polls, so a finished chief is noticed.
DELAY_SLICE_POLLS = 5


class DelayKind(enum.Enum):
    """How a worker's start is delayed."""

    NONE = "none"
    SECONDS = "seconds"
    GLOBAL_STEP = "global_step"


@attrs.frozen(kw_only=True)
class StartDelay:
    """A worker's start delay: nothing, a number of seconds, or a global-step gate.

    Attributes:
        kind: NONE, SECONDS or GLOBAL_STEP.
        secs: Seconds to sleep (SECONDS).
        global_step: Start once the shared global step reaches this (GLOBAL_STEP).
    """

    kind: DelayKind
    secs: float = 0.0
    global_step: int = 0


def worker_start_delay(task_index: int, *, by_global_step: bool = False) -> StartDelay:
    """The start delay of worker ``task_index``.

    Args:
        task_index: The worker's index in its job.
        by_global_step: Gate on the global step (``int(8000 * ln(index + 1))``)
            instead of sleeping ``min(60, index * 5)`` seconds.

    Returns:
        The `StartDelay`; worker 0 is never delayed.

    Raises:
        ConfigError: ``task_index`` is negative (ConfigTypeError if not an int).
    """
    if not isinstance(task_index, int) or isinstance(task_index, bool):
        raise ConfigTypeError("task_index", task_index, "must be an int")
    if task_index < 0:
        raise ConfigError("task_index", task_index, "must be >= 0")
    if task_index == 0:
        return StartDelay(kind=DelayKind.NONE)
    if by_global_step:
        gate = int(STEPS_PER_LOG_UNIT * math.log(task_index + 1))
        return StartDelay(kind=DelayKind.GLOBAL_STEP, global_step=gate)
    return StartDelay(
        kind=DelayKind.SECONDS, secs=min(MAX_DELAY_SECS, task_index * SECS_PER_WORKER)
    )


def explicit_delay(delay_secs: float) -> StartDelay:
    """A start delay the caller asked for in seconds (``train(delay_secs=...)``).

    Raises:
        ConfigError: A negative or non-finite value (ConfigTypeError if not a number).
    """
    check(non_negative_secs, "delay_secs", delay_secs)
    if delay_secs == 0:
        return StartDelay(kind=DelayKind.NONE)
    return StartDelay(kind=DelayKind.SECONDS, secs=float(delay_secs))


def is_cluster_worker(config: TFConfig, *, waits_for_chief: bool = True) -> bool:
    """Whether this task is a worker of a multi-task cluster that joins the chief's training.

    Args:
        config: The task's TF_CONFIG.
        waits_for_chief: The strategy lets workers wait for the chief's model (False
            under all-reduce, `core.strategy.workers_wait_for_chief`: every worker
            starts at once and trains like the chief).
    """
    return config.task_type is TaskType.WORKER and config.is_distributed and waits_for_chief


def train_start_delay(
    config: TFConfig,
    *,
    delay_secs: float | None,
    by_global_step: bool,
    waits_for_chief: bool = True,
) -> StartDelay:
    """Which start delay applies in ``train``.

    Args:
        config: The task's TF_CONFIG.
        delay_secs: The caller's ``train(delay_secs=...)``, or None.
        by_global_step: ``delay_workers_by_global_step``.
        waits_for_chief: See `is_cluster_worker`.

    Returns:
        The explicit delay when given; else a joining cluster worker's
        `worker_start_delay`; else no delay.

    Raises:
        ConfigError: A bad ``delay_secs`` (ConfigTypeError if not a number).
    """
    if delay_secs is not None:
        return explicit_delay(delay_secs)
    if is_cluster_worker(config, waits_for_chief=waits_for_chief):
        return worker_start_delay(config.task_index, by_global_step=by_global_step)
    return StartDelay(kind=DelayKind.NONE)


class GateKind(enum.Enum):
    """What a worker does before it joins training."""

    TRAIN = "train"
    SKIP = "skip"
    WAIT = "wait"


class GateReason(enum.Enum):
    """Why a worker trains, skips training or waits."""

    MODEL_READY = "the chief has initialised the model"
    GAVE_UP_WAITING = "no sign of the chief's model yet; leaving the wait to TensorFlow"
    CHIEF_FINISHED = "the chief has already finished"
    NO_PS = "waiting for the ps tasks to accept connections"
    NOT_READY = "waiting for the chief to initialise the model"
    START_DELAY = "waiting for the start delay"
    DELAY_OVER = "the start delay is over"
    BELOW_START_STEP = "waiting for the global step to reach the start gate"
    START_STEP_REACHED = "the global step reached the start gate"


@attrs.frozen(kw_only=True)
class GateDecision:
    """A worker's decision before training.

    Attributes:
        kind: TRAIN, SKIP (the job is over) or WAIT.
        reason: Why.
        sleep_secs: How long to sleep before asking again (WAIT only).
        log: The reason differs from the one reported last: log it (once per change).
    """

    kind: GateKind
    reason: GateReason
    sleep_secs: float = 0.0
    log: bool = False


def _decision(
    kind: GateKind, reason: GateReason, last_logged: GateReason | None, sleep_secs: float = 0.0
) -> GateDecision:
    return GateDecision(
        kind=kind, reason=reason, sleep_secs=sleep_secs, log=reason is not last_logged
    )


def worker_gate(
    *,
    chief_finished: bool,
    ps_reachable: bool,
    model_ready: bool,
    waited_secs: float,
    max_wait_secs: float,
    poll_secs: float = 0.2,
    last_logged: GateReason | None = None,
) -> GateDecision:
    """Decide whether a worker starts training now, skips it, or waits for the chief.

    TensorFlow's own wait (SessionManager) rechecks every 30 s; this gate is polled
    often and cheaply, so a worker joins as soon as the chief has initialised the
    model, and never connects to a ps that has already exited with the job.

    Args:
        chief_finished: The chief's completion record of this run exists.
        ps_reachable: Every ps task accepts connections.
        model_ready: The chief has initialised (or restored) the model on the ps.
        waited_secs: How long the worker has waited so far.
        max_wait_secs: After this long, train anyway (give up) and let TensorFlow wait.
        poll_secs: The sleep of a WAIT.
        last_logged: The reason of the last decision that was logged.
    """
    if chief_finished:
        return _decision(GateKind.SKIP, GateReason.CHIEF_FINISHED, last_logged)
    if ps_reachable and model_ready:
        return _decision(GateKind.TRAIN, GateReason.MODEL_READY, last_logged)
    if waited_secs >= max_wait_secs:
        return _decision(GateKind.TRAIN, GateReason.GAVE_UP_WAITING, last_logged)
    reason = GateReason.NOT_READY if ps_reachable else GateReason.NO_PS
    return _decision(GateKind.WAIT, reason, last_logged, poll_secs)


def delay_gate(
    *,
    chief_finished: bool,
    now: float,
    deadline: float,
    poll_secs: float,
    last_logged: GateReason | None = None,
) -> GateDecision:
    """Decide a joined worker's next move while it sleeps its start delay.

    Args:
        chief_finished: The chief's completion record of this run exists.
        now: The current time.
        deadline: When the start delay is over (same clock).
        poll_secs: The gate's poll; the delay is slept in slices of 5 polls.
        last_logged: The reason of the last decision that was logged.

    Returns:
        SKIP once the chief has finished; TRAIN once the delay is over; else WAIT for
        the rest of the delay, at most one slice.
    """
    if chief_finished:
        return _decision(GateKind.SKIP, GateReason.CHIEF_FINISHED, last_logged)
    if now >= deadline:
        return _decision(GateKind.TRAIN, GateReason.DELAY_OVER, last_logged)
    sleep = min(poll_secs * DELAY_SLICE_POLLS, deadline - now)
    return _decision(GateKind.WAIT, GateReason.START_DELAY, last_logged, sleep)


def step_gate(
    *,
    global_step: int,
    start_step: int,
    chief_finished: bool,
    poll_secs: float,
    last_logged: GateReason | None = None,
) -> GateDecision:
    """Decide whether a worker gated on the global step (``delay_workers_by_global_step``) runs.

    Unlike TF's GlobalStepWaiterHook it also gives up when the chief finishes meanwhile.

    Args:
        global_step: The shared global step now.
        start_step: The step this worker starts at.
        chief_finished: The chief's completion record of this run exists.
        poll_secs: The sleep of a WAIT.
        last_logged: The reason of the last decision that was logged.

    Returns:
        TRAIN once the step reached ``start_step``; SKIP once the chief has finished;
        else WAIT.
    """
    if global_step >= start_step:
        return _decision(GateKind.TRAIN, GateReason.START_STEP_REACHED, last_logged)
    if chief_finished:
        return _decision(GateKind.SKIP, GateReason.CHIEF_FINISHED, last_logged)
    return _decision(GateKind.WAIT, GateReason.BELOW_START_STEP, last_logged, poll_secs)


def look_due(*, now: float, last_look: float, every_secs: float) -> bool:
    """Whether a training worker looks (on disk) for the chief's completion record again."""
    return now - last_look >= every_secs


def starts_server(config: TFConfig, *, strategy_serves: bool = False) -> bool:
    """Whether a training task starts its own std server: a distributed task with an address.

    Args:
        config: The task's TF_CONFIG.
        strategy_serves: The task's tf.distribute strategy has started (or starts) the
            server on this port itself (`core.strategy.strategy_owns_server`); a second
            one could not bind, and its device filters would cut the all-reduce.
    """
    return config.is_distributed and config.address is not None and not strategy_serves


def records_own_completion(config: TFConfig) -> bool:
    """Whether train_and_evaluate writes this task's completion record.

    The chief (or master) and a local run do; a worker that runs train_and_evaluate
    leaves the record to the chief (the ps and the evaluator wait for the chief's).
    """
    return config.is_chief or not config.is_distributed


def default_device_filters(config: TFConfig) -> list[str] | None:
    """The device filters TF's RunConfig gives a task: each trainer talks to the ps and itself.

    Returns:
        None for an evaluator or a local run (no filters).
    """
    task = config.task_type
    if task in (TaskType.CHIEF, TaskType.MASTER):
        assert task is not None
        return ["/job:ps", f"/job:{task.value}"]
    if task is TaskType.WORKER:
        return ["/job:ps", f"/job:worker/task:{config.task_index}"]
    if task is TaskType.PS:
        return ["/job:ps", "/job:worker", "/job:chief", "/job:master"]
    return None


def device_filters_to_add(config: TFConfig, *, existing: list[str] | None) -> list[str]:
    """The device filters to give a session config that has ``existing`` ones.

    RunConfig sets them only when the user passes no ``session_config``; without them a
    worker's session waits for every task of the cluster instead of only the ps and itself.

    Args:
        config: The task's TF_CONFIG.
        existing: The session config's filters (None: it has no such field).

    Returns:
        `default_device_filters` for a distributed task whose config has none; else [].
    """
    wanted = default_device_filters(config)
    if not config.is_distributed or wanted is None or existing is None or existing:
        return []
    return wanted
