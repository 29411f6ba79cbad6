"""continuous_train_and_evaluate: how many steps the next training iteration runs."""

from __future__ import annotations

import enum

import attrs

from core._validate import check, non_negative_int, optional, positive_int
from core.completion import is_final_export

DEFAULT_ITERATION_STEPS = 1000


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
    check(optional(positive_int), "train_steps_per_iteration", train_steps_per_iteration)
    check(optional(non_negative_int), "train_steps", train_steps)
    if train_steps_per_iteration is not None:
        return train_steps_per_iteration
    if train_steps is not None:
        return max(1, train_steps // 10)
    return DEFAULT_ITERATION_STEPS


class IterationKind(enum.Enum):
    """What continuous_train_and_evaluate does next."""

    TRAIN = "train"
    STOP = "stop"


class IterationReason(enum.Enum):
    """Why continuous_train_and_evaluate trains on or stops."""

    STEPS_LEFT = "steps left to train"
    PREDICATE = "the continue predicate said stop"
    TRAINING_FINISHED = "global step reached train_steps"
    INPUT_EXHAUSTED = "the last iteration trained no step: training input ran out"


@attrs.frozen(kw_only=True)
class IterationDecision:
    """Train ``steps`` more steps, or stop; and why.

    Attributes:
        kind: TRAIN or STOP.
        steps: Steps to train (TRAIN only).
        reason: Why.
    """

    kind: IterationKind
    steps: int = 0
    reason: IterationReason = IterationReason.STEPS_LEFT


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
        return IterationDecision(kind=IterationKind.STOP, reason=IterationReason.PREDICATE)
    if last_trained_steps is not None and input_ran_out(
        requested=last_requested_steps, trained=last_trained_steps
    ):
        return IterationDecision(kind=IterationKind.STOP, reason=IterationReason.INPUT_EXHAUSTED)
    size = iteration_size(train_steps_per_iteration, train_steps)
    if train_steps is not None:
        left = train_steps - global_step
        if left <= 0:
            return IterationDecision(
                kind=IterationKind.STOP, reason=IterationReason.TRAINING_FINISHED
            )
        size = min(size, left)
    return IterationDecision(kind=IterationKind.TRAIN, steps=size)


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


@attrs.frozen(kw_only=True)
class IterationOutcome:
    """What follows a training iteration of continuous_train_and_evaluate.

    Attributes:
        evaluate: Evaluate (and export) the iteration's checkpoint; False when it
            trained nothing or there is no checkpoint (nothing new to evaluate).
        ran_out: The iteration's training input ran out (the loop stops next).
        final: The export after the evaluation is the run's final one.
    """

    evaluate: bool
    ran_out: bool
    final: bool


def after_iteration(
    *, requested: int | None, trained: int, has_checkpoint: bool, reached: bool, step: int
) -> IterationOutcome:
    """Decide what follows a training iteration.

    Args:
        requested: Steps the iteration was asked to train.
        trained: Steps it advanced the global step.
        has_checkpoint: A checkpoint exists after it.
        reached: The global step reached ``train_steps`` (`ExperimentSettings.reached`).
        step: The global step after it.
    """
    ran_out = input_ran_out(requested=requested, trained=trained)
    return IterationOutcome(
        evaluate=has_checkpoint and trained > 0,
        ran_out=ran_out,
        final=is_final_export(reached=reached, step=step, input_ran_out=ran_out),
    )
