"""Inside train_and_evaluate: whether a newly saved checkpoint is evaluated, and where.

`after_save` decides whether a checkpoint is evaluated; `evaluation_mode` decides whether
the evaluations may run in a background thread (``eval_in_background``) or inline, and
`EVALUATOR_BUILD` when the evaluation graph is built for each.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from core._validate import check, non_negative_int, optional, positive_int


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


#: Most checkpoints submitted to the background evaluator and not yet evaluated.
BACKGROUND_MAX_PENDING = 1


class EvalMode(enum.Enum):
    """Where train_and_evaluate evaluates its checkpoints."""

    INLINE = "inline"
    BACKGROUND = "background"


class EvalModeReason(enum.Enum):
    """Why train_and_evaluate evaluates inline or in the background."""

    OFF = "eval_in_background is off"
    ONLY_AT_END = "eval_every_n_steps is None or 0: nothing is evaluated during training"
    KEEPS_ALL = "keep_checkpoint_max keeps every checkpoint"
    KEEPS_ENOUGH = "keep_checkpoint_max keeps every checkpoint until it is evaluated"
    KEEPS_TOO_FEW = "keep_checkpoint_max could delete a checkpoint before it is evaluated"
    UNKNOWN_CADENCE = (
        "checkpoints are saved by time (no save_checkpoints_steps) and eval_every_n_steps > 1, "
        "so the checkpoints saved between two evaluations are not bounded"
    )
    UNKNOWN_RETENTION = "the estimator's config has no keep_checkpoint_max"


@attrs.frozen(kw_only=True)
class EvalModeDecision:
    """Inline or background evaluation in train_and_evaluate, and why.

    Attributes:
        mode: INLINE or BACKGROUND.
        reason: Why.
        needed_keep: With KEEPS_TOO_FEW or KEEPS_ENOUGH, the smallest
            ``keep_checkpoint_max`` that allows background evaluation.
    """

    mode: EvalMode
    reason: EvalModeReason
    needed_keep: int | None = None

    def line(self) -> str:
        """One log line: where evaluation runs and why."""
        where = "in a background thread" if self.mode is EvalMode.BACKGROUND else "inline"
        text = f"train_and_evaluate evaluates {where}: {self.reason.value}"
        if self.reason is EvalModeReason.KEEPS_TOO_FEW:
            text += f" (set keep_checkpoint_max >= {self.needed_keep}, or 0 to keep all)"
        return text


def saves_per_evaluation(
    *, eval_every_n_steps: int, save_checkpoints_steps: int | None
) -> int | None:
    """At most how many checkpoints training saves from one evaluated checkpoint to the next.

    Args:
        eval_every_n_steps: The evaluation cadence (> 0).
        save_checkpoints_steps: The checkpoint cadence in steps; None when saving by time.

    Returns:
        ``ceil(eval_every_n_steps / save_checkpoints_steps)`` (1 when every save is due,
        with ``eval_every_n_steps=1``); None when it is not bounded (saving by time).
    """
    if eval_every_n_steps == 1:
        return 1
    if not save_checkpoints_steps:
        return None
    return max(1, math.ceil(eval_every_n_steps / save_checkpoints_steps))


def evaluation_mode(
    *,
    requested: bool,
    eval_every_n_steps: int | None,
    keep_checkpoint_max: int | None,
    save_checkpoints_steps: int | None,
    max_pending: int = BACKGROUND_MAX_PENDING,
    retention_known: bool = True,
) -> EvalModeDecision:
    """Whether train_and_evaluate may evaluate its checkpoints in a background thread.

    A checkpoint evaluated in the background is restored, and exported, later than it
    would be inline: up to ``max_pending`` evaluation intervals later, i.e. after up to
    ``max_pending * saves_per_evaluation`` more saves, each of which may delete the oldest
    checkpoint beyond ``keep_checkpoint_max``. Background evaluation is used only when
    every checkpoint is certain to outlive that (with one checkpoint to spare):
    ``keep_checkpoint_max`` None or 0 (TF keeps all), or greater than
    ``max_pending * saves_per_evaluation + 1``. Otherwise evaluation stays inline.

    Args:
        requested: The ``eval_in_background`` setting.
        eval_every_n_steps: The evaluation cadence (None or 0: only after training).
        keep_checkpoint_max: The RunConfig's; None or 0 keeps every checkpoint.
        save_checkpoints_steps: The RunConfig's; None when saving by time.
        max_pending: Most submitted checkpoints not yet evaluated (>= 1).
        retention_known: Whether the estimator's config has a ``keep_checkpoint_max``.

    Returns:
        The decision (BACKGROUND only when ``requested``).

    Raises:
        ConfigError: ``max_pending`` is not a positive int.
    """
    check(positive_int, "max_pending", max_pending)
    inline = EvalMode.INLINE
    if not requested:
        return EvalModeDecision(mode=inline, reason=EvalModeReason.OFF)
    if not eval_every_n_steps:
        return EvalModeDecision(mode=inline, reason=EvalModeReason.ONLY_AT_END)
    if not retention_known:
        return EvalModeDecision(mode=inline, reason=EvalModeReason.UNKNOWN_RETENTION)
    if not keep_checkpoint_max:
        return EvalModeDecision(mode=EvalMode.BACKGROUND, reason=EvalModeReason.KEEPS_ALL)
    saves = saves_per_evaluation(
        eval_every_n_steps=eval_every_n_steps, save_checkpoints_steps=save_checkpoints_steps
    )
    if saves is None:
        return EvalModeDecision(mode=inline, reason=EvalModeReason.UNKNOWN_CADENCE)
    needed = max_pending * saves + 2
    if keep_checkpoint_max < needed:
        return EvalModeDecision(
            mode=inline, reason=EvalModeReason.KEEPS_TOO_FEW, needed_keep=needed
        )
    return EvalModeDecision(
        mode=EvalMode.BACKGROUND, reason=EvalModeReason.KEEPS_ENOUGH, needed_keep=needed
    )


class EvaluatorBuild(enum.Enum):
    """When train_and_evaluate builds its evaluation graph."""

    AHEAD = (
        "in a helper thread as soon as training's own graph is complete, so the build "
        "overlaps training (not sooner: training's graph is built alone, as tf.estimator "
        "builds it, never interleaved with a model_fn call in another thread)"
    )
    IN_WORKER = "in the background evaluator's thread, at the first submission"


#: When the evaluation graph is built, by where the evaluations run.
EVALUATOR_BUILD: Mapping[EvalMode, EvaluatorBuild] = MappingProxyType(
    {EvalMode.INLINE: EvaluatorBuild.AHEAD, EvalMode.BACKGROUND: EvaluatorBuild.IN_WORKER}
)
