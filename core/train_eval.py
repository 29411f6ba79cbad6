"""Inside train_and_evaluate: whether a newly saved checkpoint is evaluated."""

from __future__ import annotations

import enum

import attrs

from core._validate import non_negative_int, optional


class TrainEvalKind(enum.Enum):
    """What to do with a checkpoint that training just saved."""

    EVALUATE = "evaluate"
    SKIP = "skip"


class TrainEvalReason(enum.Enum):
    """Why a saved checkpoint is evaluated or skipped."""

    DUE = "at least eval_every_n_steps steps since the last evaluation"
    ONLY_AT_END = "eval_every_n_steps is None or 0: evaluating after training only"
    ALREADY_EVALUATED = "checkpoint already evaluated or saved when the session started"
    TOO_SOON = "fewer than eval_every_n_steps steps since the last evaluation"


@attrs.frozen(kw_only=True)
class TrainEvalPolicy:
    """How often to evaluate during training.

    Attributes:
        eval_every_n_steps: Minimum global-step gap between evaluations; None or 0
            evaluates only after training.
    """

    eval_every_n_steps: int | None = attrs.field(default=1, validator=optional(non_negative_int))


@attrs.frozen(kw_only=True)
class TrainEvalState:
    """What train_and_evaluate remembers.

    Attributes:
        baseline_step: The global step this training run started at (its start
            checkpoint is never evaluated; gaps count from here).
        last_evaluated_step: The step of the last checkpoint evaluated, or None.
    """

    baseline_step: int = attrs.field(validator=non_negative_int)
    last_evaluated_step: int | None = None


@attrs.frozen(kw_only=True)
class TrainEvalDecision:
    """Evaluate the saved checkpoint or skip it, and why.

    Attributes:
        kind: EVALUATE or SKIP.
        reason: Why.
    """

    kind: TrainEvalKind
    reason: TrainEvalReason = TrainEvalReason.DUE


def after_save(
    state: TrainEvalState, policy: TrainEvalPolicy, *, saved_step: int
) -> tuple[TrainEvalDecision, TrainEvalState]:
    """Decide whether the checkpoint just saved at ``saved_step`` is evaluated now.

    Args:
        state: The current state.
        policy: The evaluation cadence.
        saved_step: Global step of the checkpoint just saved.

    Returns:
        The decision and the new state.
    """
    if not policy.eval_every_n_steps:
        return TrainEvalDecision(kind=TrainEvalKind.SKIP, reason=TrainEvalReason.ONLY_AT_END), state
    reference = state.baseline_step
    if state.last_evaluated_step is not None:
        reference = max(reference, state.last_evaluated_step)
    if saved_step <= reference:
        return TrainEvalDecision(
            kind=TrainEvalKind.SKIP, reason=TrainEvalReason.ALREADY_EVALUATED
        ), state
    if saved_step - reference < policy.eval_every_n_steps:
        return TrainEvalDecision(kind=TrainEvalKind.SKIP, reason=TrainEvalReason.TOO_SOON), state
    new_state = attrs.evolve(state, last_evaluated_step=saved_step)
    return TrainEvalDecision(kind=TrainEvalKind.EVALUATE), new_state


def final_evaluation_owed(state: TrainEvalState, *, final_step: int) -> bool:
    """Whether training's final checkpoint still needs evaluating.

    Args:
        state: The state after training ended.
        final_step: Global step of the final checkpoint.

    Returns:
        False only when the final checkpoint was already evaluated.
    """
    return state.last_evaluated_step != final_step


def record_final(state: TrainEvalState, *, final_step: int) -> TrainEvalState:
    """Record that the final checkpoint at ``final_step`` was evaluated."""
    return attrs.evolve(state, last_evaluated_step=final_step)
