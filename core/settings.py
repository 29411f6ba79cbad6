"""ExperimentSettings: the Experiment's schedule settings, checked once, in one frozen record."""

from __future__ import annotations

import attrs

from core._validate import (
    boolean,
    non_negative_int,
    non_negative_secs,
    optional,
    positive_int,
    positive_secs,
)

_optional_non_negative = optional(non_negative_int)
_optional_positive = optional(positive_int)


@attrs.frozen(kw_only=True)
class ExperimentSettings:
    """How an Experiment schedules training and evaluation (the seed's defaults).

    Attributes:
        train_steps: Train to this global step; None trains forever (or until the input
            ends).
        eval_steps: Evaluation batches; None runs until the input is exhausted.
        eval_delay_secs: Wait this long before the first evaluation.
        continuous_eval_throttle_secs: Minimum gap between evaluation starts in
            continuous_eval.
        eval_every_n_steps: train_and_evaluate's minimum global-step gap between
            evaluations; None or 0 evaluates after training only.
        delay_workers_by_global_step: Delay workers by global step instead of time.
        train_steps_per_iteration: continuous_train_and_evaluate's steps per iteration
            (None: ``train_steps // 10``, else 1000).
        chief_lost_after_secs: In a cluster, a chief silent this long (no heartbeat) is
            lost and every other task exits 1 (see `core.faults.lifecycle_policy`).
        eval_in_background: train_and_evaluate evaluates each due checkpoint in a
            background thread while training goes on, instead of inline (same evaluated
            steps, metrics and exports; inline where `core.train_eval.evaluation_mode`
            refuses it, e.g. a small ``keep_checkpoint_max``).
    """

    train_steps: int | None = attrs.field(default=None, validator=_optional_non_negative)
    eval_steps: int | None = attrs.field(default=10, validator=_optional_positive)
    eval_delay_secs: float = attrs.field(default=0, validator=non_negative_secs)
    continuous_eval_throttle_secs: float = attrs.field(default=60, validator=non_negative_secs)
    eval_every_n_steps: int | None = attrs.field(default=1, validator=_optional_non_negative)
    delay_workers_by_global_step: bool = attrs.field(default=False, validator=boolean)
    train_steps_per_iteration: int | None = attrs.field(default=100, validator=_optional_positive)
    chief_lost_after_secs: float = attrs.field(default=600.0, validator=positive_secs)
    eval_in_background: bool = attrs.field(default=False, validator=boolean)

    def reached(self, step: int | None) -> bool:
        """Whether global step ``step`` has reached ``train_steps`` (never when it is None)."""
        return self.train_steps is not None and step is not None and step >= self.train_steps
