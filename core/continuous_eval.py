"""The continuous-evaluation step: evaluate, wait (how long, why) or stop."""

from __future__ import annotations

import enum

import attrs

from core._validate import non_negative_int, non_negative_secs, optional, positive_secs
from core.checkpoints import Checkpoint, Novelty, novelty


class EvalKind(enum.Enum):
    """What the continuous-evaluation loop does next."""

    EVALUATE = "evaluate"
    WAIT = "wait"
    STOP = "stop"


class EvalReason(enum.Enum):
    """Why the loop evaluates, waits or stops."""

    DUE = "a checkpoint is due for evaluation"
    START_DELAY = "waiting for the start delay"
    NO_CHECKPOINT = "no checkpoint yet"
    NO_NEW_CHECKPOINT = "no new checkpoint"
    THROTTLED = "throttled"
    PREDICATE = "the continue predicate said stop"
    TRAINING_FINISHED = "training is finished"


@attrs.frozen(kw_only=True)
class EvalPolicy:
    """The user's knobs for continuous evaluation.

    Attributes:
        eval_delay_secs: Wait this long after the loop starts before the first evaluation.
        throttle_secs: Minimum gap between two evaluation *starts*.
        evaluate_checkpoint_only_once: Never evaluate the same checkpoint twice.
        train_steps: Stop once an evaluated global step reaches this (None: never).
        poll_secs: How often to look for a new checkpoint once the throttle has elapsed.
        max_sleep_secs: No WAIT is longer than this, so that training finishing (its
            completion record) is noticed promptly even during a long throttle.
    """

    eval_delay_secs: float = attrs.field(default=0.0, validator=non_negative_secs)
    throttle_secs: float = attrs.field(default=60.0, validator=non_negative_secs)
    evaluate_checkpoint_only_once: bool = True
    train_steps: int | None = attrs.field(default=None, validator=optional(non_negative_int))
    poll_secs: float = attrs.field(default=0.05, validator=positive_secs)
    max_sleep_secs: float = attrs.field(default=1.0, validator=positive_secs)


@attrs.frozen(kw_only=True)
class EvalState:
    """What the loop remembers between steps.

    Attributes:
        started_at: When the loop started (for ``eval_delay_secs``).
        last_evaluated: The checkpoint whose evaluation started last.
        last_eval_start: When that evaluation started.
        last_result_step: Global step reported by the last finished evaluation.
        keep_going: The continue-predicate's last answer.
        last_logged: The wait/stop reason reported last (to log once per change).
    """

    started_at: float
    last_evaluated: Checkpoint | None = None
    last_eval_start: float | None = None
    last_result_step: int | None = None
    keep_going: bool = True
    last_logged: EvalReason | None = None


@attrs.frozen(kw_only=True)
class EvalDecision:
    """One decision of the loop.

    Attributes:
        kind: EVALUATE, WAIT or STOP.
        reason: Why (``EvalReason.DUE`` for EVALUATE).
        checkpoint: The checkpoint to evaluate (EVALUATE only).
        sleep_secs: How long to sleep before asking again (WAIT only).
        log: True when the reason changed since the last decision: log it once.
    """

    kind: EvalKind
    reason: EvalReason = EvalReason.DUE
    checkpoint: Checkpoint | None = None
    sleep_secs: float = 0.0
    log: bool = False


def _stop(state: EvalState, reason: EvalReason) -> tuple[EvalDecision, EvalState]:
    decision = EvalDecision(kind=EvalKind.STOP, reason=reason, log=state.last_logged is not reason)
    return decision, attrs.evolve(state, last_logged=reason)


def _wait(
    state: EvalState, policy: EvalPolicy, reason: EvalReason, sleep_secs: float
) -> tuple[EvalDecision, EvalState]:
    sleep_secs = min(sleep_secs, max(policy.max_sleep_secs, policy.poll_secs))
    decision = EvalDecision(
        kind=EvalKind.WAIT,
        reason=reason,
        sleep_secs=sleep_secs,
        log=state.last_logged is not reason,
    )
    return decision, attrs.evolve(state, last_logged=reason)


def decide(
    state: EvalState,
    policy: EvalPolicy,
    *,
    now: float,
    latest: Checkpoint | None,
    finished_at_step: int | None = None,
) -> tuple[EvalDecision, EvalState]:
    """Decide the next step of continuous evaluation.

    Rules, in order: stop when the predicate said so, or when an evaluated global
    step reached ``train_steps``; once training is known to be finished
    (``finished_at_step``), evaluate a remaining new checkpoint at once (the throttle
    does not delay the final evaluation), then stop; wait for the start delay; wait
    while there is no (new) checkpoint; wait while the throttle has not elapsed since
    the last evaluation start; else evaluate the latest checkpoint.

    Args:
        state: The loop's state.
        policy: The user's knobs.
        now: The current time in seconds (any monotonic origin).
        latest: The newest checkpoint on disk, or None.
        finished_at_step: The final global step when training is known to be finished.

    Returns:
        The decision and the new state (an EVALUATE records its start).
    """
    if not state.keep_going:
        return _stop(state, EvalReason.PREDICATE)
    done_step = state.last_result_step
    if policy.train_steps is not None and done_step is not None and done_step >= policy.train_steps:
        return _stop(state, EvalReason.TRAINING_FINISHED)

    fresh = novelty(latest, state.last_evaluated)
    if finished_at_step is not None:
        if fresh is Novelty.NEW and latest is not None:
            return _evaluate(state, now=now, checkpoint=latest)
        return _stop(state, EvalReason.TRAINING_FINISHED)

    delay_left = state.started_at + policy.eval_delay_secs - now
    if delay_left > 0:
        return _wait(state, policy, EvalReason.START_DELAY, delay_left)

    throttle_left = 0.0
    if state.last_eval_start is not None:
        throttle_left = max(0.0, state.last_eval_start + policy.throttle_secs - now)

    if fresh is Novelty.MISSING:
        return _wait(state, policy, EvalReason.NO_CHECKPOINT, max(policy.poll_secs, throttle_left))
    if fresh is not Novelty.NEW and policy.evaluate_checkpoint_only_once:
        return _wait(
            state, policy, EvalReason.NO_NEW_CHECKPOINT, max(policy.poll_secs, throttle_left)
        )
    if throttle_left > 0:
        return _wait(state, policy, EvalReason.THROTTLED, throttle_left)
    assert latest is not None  # MISSING handled above
    return _evaluate(state, now=now, checkpoint=latest)


def _evaluate(
    state: EvalState, *, now: float, checkpoint: Checkpoint
) -> tuple[EvalDecision, EvalState]:
    decision = EvalDecision(kind=EvalKind.EVALUATE, checkpoint=checkpoint)
    new_state = attrs.evolve(
        state, last_evaluated=checkpoint, last_eval_start=now, last_logged=None
    )
    return decision, new_state


def record_result(state: EvalState, *, global_step: int, keep_going: bool = True) -> EvalState:
    """Record a finished evaluation's global step and the predicate's answer.

    Args:
        state: The state returned with the EVALUATE decision.
        global_step: The ``global_step`` the evaluation reported.
        keep_going: What the continue-predicate answered for this result.

    Returns:
        The new state.
    """
    return attrs.evolve(state, last_result_step=global_step, keep_going=keep_going)


def record_predicate(state: EvalState, *, keep_going: bool) -> EvalState:
    """Record the continue-predicate's answer given without a new result (e.g. for None)."""
    return attrs.evolve(state, keep_going=keep_going)


def record_vanished(state: EvalState, *, before: EvalState) -> EvalState:
    """Undo an evaluation start whose checkpoint vanished before it was restored.

    The vanished checkpoint stays marked as seen (it cannot be evaluated anyway), but
    the throttle is not charged for it, so a newer checkpoint is evaluated promptly.

    Args:
        state: The state returned with the EVALUATE decision.
        before: The state passed to `decide` for that decision.

    Returns:
        The new state.
    """
    return attrs.evolve(before, last_evaluated=state.last_evaluated, last_logged=None)
