"""continuous_train_and_evaluate: how many steps the next training iteration runs."""

from __future__ import annotations

import enum

import attrs

from core.errors import ConfigError, ConfigTypeError

DEFAULT_ITERATION_STEPS = 1000


def _check_optional_positive(field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigTypeError(field, value, "must be None or a positive int")
    if value < 1:
        raise ConfigError(field, value, "must be None or a positive int")


def iteration_size(train_steps_per_iteration: int | None, train_steps: int | None) -> int:
    """The number of training steps per iteration.

    Args:
        train_steps_per_iteration: The user's value, or None.
        train_steps: Total training steps, or None (train forever).

    Returns:
        The user's value; else ``train_steps // 10`` but at least 1; else 1000.

    Raises:
        ConfigError: A value that is not None or a positive int (ConfigTypeError for
            a wrong type).
    """
    _check_optional_positive("train_steps_per_iteration", train_steps_per_iteration)
    if train_steps is not None:
        if not isinstance(train_steps, int) or isinstance(train_steps, bool):
            raise ConfigTypeError("train_steps", train_steps, "must be None or an int >= 0")
        if train_steps < 0:
            raise ConfigError("train_steps", train_steps, "must be None or an int >= 0")
    if train_steps_per_iteration is not None:
        return train_steps_per_iteration
    if train_steps is not None:
        return max(1, train_steps // 10)
    return DEFAULT_ITERATION_STEPS


class Step(enum.Enum):
    """What continuous_train_and_evaluate does next."""

    TRAIN = "train"
    STOP = "stop"


class StopReason(enum.Enum):
    """Why continuous_train_and_evaluate stops (``NONE`` while training)."""

    NONE = "train"
    PREDICATE = "the continue predicate said stop"
    TRAINING_FINISHED = "global step reached train_steps"
    INPUT_EXHAUSTED = "the last iteration trained no step: training input ran out"


@attrs.frozen(kw_only=True)
class IterationDecision:
    """Train ``steps`` more steps, or stop and why."""

    step: Step
    steps: int = 0
    reason: StopReason = StopReason.NONE


def next_iteration(
    *,
    train_steps_per_iteration: int | None,
    train_steps: int | None,
    global_step: int,
    keep_going: bool,
    last_trained_steps: int | None = None,
    last_requested_steps: int | None = None,
) -> IterationDecision:
    """Decide the next iteration of continuous_train_and_evaluate.

    Args:
        train_steps_per_iteration: The user's iteration size, or None.
        train_steps: Total training steps, or None (train forever).
        global_step: The model's current global step.
        keep_going: The continue-predicate's last answer.
        last_trained_steps: Steps the previous iteration advanced the global step
            (None before the first).
        last_requested_steps: Steps the previous iteration was asked to train; fewer
            trained than asked (or 0) means its input ran out.

    Returns:
        TRAIN with a step count that never goes past ``train_steps``, or STOP.
    """
    if not keep_going:
        return IterationDecision(step=Step.STOP, reason=StopReason.PREDICATE)
    if last_trained_steps is not None and input_ran_out(
        requested=last_requested_steps, trained=last_trained_steps
    ):
        return IterationDecision(step=Step.STOP, reason=StopReason.INPUT_EXHAUSTED)
    size = iteration_size(train_steps_per_iteration, train_steps)
    if train_steps is not None:
        left = train_steps - global_step
        if left <= 0:
            return IterationDecision(step=Step.STOP, reason=StopReason.TRAINING_FINISHED)
        size = min(size, left)
    return IterationDecision(step=Step.TRAIN, steps=size)


def input_ran_out(*, requested: int | None, trained: int) -> bool:
    """Whether an iteration's training input ran out.

    Each iteration calls ``input_fn`` afresh, so a finite input shows up as an
    iteration cut short rather than as one that trains nothing.

    Args:
        requested: Steps the iteration was asked to train (None: unknown).
        trained: Steps it actually advanced the global step.

    Returns:
        True when it trained nothing, or fewer steps than requested.
    """
    return trained <= 0 or (requested is not None and trained < requested)
