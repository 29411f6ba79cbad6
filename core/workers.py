"""How long a worker waits before it starts training."""

from __future__ import annotations

import enum
import math

import attrs

from core.errors import ConfigError, ConfigTypeError

MAX_DELAY_SECS = 60.0
SECS_PER_WORKER = 5.0
STEPS_PER_LOG_UNIT = 8000


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
    if not isinstance(delay_secs, (int, float)) or isinstance(delay_secs, bool):
        raise ConfigTypeError("delay_secs", delay_secs, "must be a number of seconds")
    if not 0 <= delay_secs < math.inf:
        raise ConfigError("delay_secs", delay_secs, "must be a finite number >= 0")
    if delay_secs == 0:
        return StartDelay(kind=DelayKind.NONE)
    return StartDelay(kind=DelayKind.SECONDS, secs=float(delay_secs))
