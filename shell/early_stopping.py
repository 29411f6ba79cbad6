"""Early stopping for a whole job: a continue-predicate built on `core.faults`."""

from __future__ import annotations

from typing import Any

from core.errors import ConfigError
from core.faults import EarlyStopping, Improvement, keep_going, observe

__all__ = ["NoImprovementPredicate", "predicate_of", "stop_when_no_improvement"]


class NoImprovementPredicate:
    """A ``continuous_eval_predicate_fn``: False once ``rule.metric`` has not improved
    for ``rule.patience`` evaluations (True before the first evaluation).

    Attributes:
        rule: The early-stopping rule.
        state: What it remembers (the best value, evaluations since).
        stop_reason: The reason the schedules write in the job's stop record.
    """

    def __init__(self, rule: EarlyStopping) -> None:
        self.rule = rule
        self.state = Improvement()
        self.stop_reason = rule.reason

    def __call__(self, eval_result: dict[str, Any] | None) -> bool:
        """Record one evaluation result; whether training goes on.

        Raises:
            ConfigError: The result has no ``rule.metric``.
        """
        if eval_result is None:
            return True
        if self.rule.metric not in eval_result:
            raise ConfigError(
                "early_stopping.metric",
                self.rule.metric,
                f"is not in the evaluation result (metrics: {', '.join(sorted(eval_result))})",
            )
        self.state = observe(self.state, self.rule, float(eval_result[self.rule.metric]))
        return keep_going(self.state, self.rule)


def stop_when_no_improvement(
    metric: str = "loss",
    patience: int = 3,
    higher_is_better: bool = False,
    min_delta: float = 0.0,
) -> NoImprovementPredicate:
    """A predicate that stops the job when ``metric`` has not improved for ``patience``
    evaluations in a row (by more than ``min_delta``).

    Give it as ``continuous_eval_predicate_fn`` (to `Experiment.from_settings`,
    `Experiment.set_continuous_eval_predicate_fn` or a schedule).

    Raises:
        ConfigError: A bad argument (e.g. ``patience`` < 1), naming it.
    """
    return NoImprovementPredicate(
        EarlyStopping(
            metric=metric, patience=patience, higher_is_better=higher_is_better, min_delta=min_delta
        )
    )


def predicate_of(rule: EarlyStopping | None) -> NoImprovementPredicate | None:
    """The predicate of a config's ``early_stopping`` section (None: none)."""
    return None if rule is None else NoImprovementPredicate(rule)
