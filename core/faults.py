"""Small rules the shell applies around the lifecycle: its policy, which records count,
whether a task watches a job, and early stopping ("no improvement for N evaluations")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from core._validate import (
    boolean,
    check,
    non_empty_str,
    non_negative_number,
    positive_int,
    positive_secs,
)
from core.lifecycle import Done, LifecyclePolicy, TaskRecord
from core.tf_config import TaskType, TFConfig

#: The default deadline for a silent chief: long enough for a pod to be restarted.
DEFAULT_CHIEF_LOST_AFTER_SECS = 600.0
_HEARTBEAT_SECS = 10.0
_WORKER_LOST_AFTER_SECS = 120.0
_POLL_SECS = 0.5


def lifecycle_policy(
    chief_lost_after_secs: float = DEFAULT_CHIEF_LOST_AFTER_SECS,
) -> LifecyclePolicy:
    """The lifecycle policy of a job whose chief is lost after ``chief_lost_after_secs``.

    The worker deadline is 120 s, or the chief's when shorter; a task heartbeats every
    10 s, or five times per deadline when that is shorter; waiting tasks look every
    0.5 s, or at every heartbeat when that is shorter.

    Raises:
        ConfigError: ``chief_lost_after_secs`` is not a positive number of seconds.
    """
    check(positive_secs, "chief_lost_after_secs", chief_lost_after_secs)
    worker_lost = min(_WORKER_LOST_AFTER_SECS, float(chief_lost_after_secs))
    heartbeat = min(_HEARTBEAT_SECS, worker_lost / 5)
    return LifecyclePolicy(
        chief_lost_after_secs=float(chief_lost_after_secs),
        worker_lost_after_secs=worker_lost,
        heartbeat_secs=heartbeat,
        poll_secs=min(_POLL_SECS, heartbeat),
    )


def is_current_record(record: TaskRecord, *, since: float, train_steps: int | None) -> bool:
    """Whether a record found on disk belongs to this run of the job.

    The rule of `core.completion.is_current`: a record said before the reader started
    (``record.t < since``) is left from an earlier run, unless it is a `Done` that
    already reached ``train_steps`` (the job is finished for this run too).
    """
    if record.t >= since:
        return True
    return isinstance(record, Done) and train_steps is not None and record.final_step >= train_steps


def watches_job(cluster: Mapping[str, Sequence[str]]) -> bool:
    """Whether a task of this TF_CONFIG cluster follows the job's records (it has a chief
    or master job); a local run has no job to follow."""
    return "chief" in cluster or "master" in cluster


# --- early stopping ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class EarlyStopping:
    """Stop the job when ``metric`` has not improved for ``patience`` evaluations.

    Attributes:
        metric: The evaluation metric to watch (a key of the evaluation result).
        patience: How many evaluations in a row without improvement stop the job.
        higher_is_better: Whether a larger value is better (accuracy) or smaller (loss).
        min_delta: An improvement must beat the best value by more than this.
    """

    metric: str = attrs.field(default="loss", validator=non_empty_str)
    patience: int = attrs.field(default=3, validator=positive_int)
    higher_is_better: bool = attrs.field(default=False, validator=boolean)
    min_delta: float = attrs.field(default=0.0, validator=non_negative_number)

    @property
    def reason(self) -> str:
        """The stop reason, e.g. ``"no improvement of loss in 3 evaluations"``."""
        return f"no improvement of {self.metric} in {self.patience} evaluations"


@attrs.frozen(kw_only=True)
class Improvement:
    """What early stopping remembers between evaluations.

    Attributes:
        best: The best value seen so far (None before the first real value).
        since_best: Evaluations since the best one.
    """

    best: float | None = None
    since_best: int = 0


def improved(rule: EarlyStopping, best: float | None, value: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (NaN never does)."""
    if value != value:  # NaN
        return False
    if best is None:
        return True
    if rule.higher_is_better:
        return value > best + rule.min_delta
    return value < best - rule.min_delta


def observe(state: Improvement, rule: EarlyStopping, value: float) -> Improvement:
    """The state after an evaluation whose ``metric`` is ``value``."""
    if improved(rule, state.best, value):
        return Improvement(best=value, since_best=0)
    return Improvement(best=state.best, since_best=state.since_best + 1)


def keep_going(state: Improvement, rule: EarlyStopping) -> bool:
    """Whether training goes on: fewer than ``patience`` evaluations without improvement."""
    return state.since_best < rule.patience


def watches_stop_requests(config: TFConfig) -> bool:
    """Whether a training task looks for the evaluator's stop request itself: the chief
    (or master) of a cluster (a worker's chief watch follows the whole job instead)."""
    return watches_job(config.cluster) and config.task_type in (TaskType.CHIEF, TaskType.MASTER)


def line_changed(last: str | None, line: str) -> bool:
    """Whether a waiting task logs ``line`` (once per change of what it waits for)."""
    return line != last
