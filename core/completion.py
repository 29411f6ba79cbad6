"""The training-finished record: what ends ps and evaluator tasks cleanly."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from typing import Any

import attrs

from core._validate import non_negative_int
from core.errors import ConfigError

DONE_DIR = "tfexperiment"


def _non_empty_name(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(attribute.name, value, "must be a non-empty task name")


class EndReason(enum.Enum):
    """Why a training task ended."""

    TRAIN_STEPS_REACHED = "train_steps reached"
    INPUT_EXHAUSTED = "training input ran out"
    CHIEF_FINISHED = "the chief finished"
    STOPPED_BY_EVALUATOR = "stopped by the evaluator"


@attrs.frozen(kw_only=True)
class TaskDone:
    """One training task's record that it is finished.

    Attributes:
        task: ``"<type>-<index>"``, e.g. ``chief-0`` or ``worker-1``.
        final_step: The global step when it ended.
        reason: Why it ended.
    """

    task: str = attrs.field(validator=_non_empty_name)
    final_step: int = attrs.field(validator=non_negative_int)
    reason: EndReason

    def to_json(self) -> str:
        """The record as JSON text."""
        return json.dumps(
            {"task": self.task, "final_step": self.final_step, "reason": self.reason.value}
        )

    @classmethod
    def from_json(cls, text: str) -> TaskDone:
        """Parse a record written by `to_json`.

        Raises:
            ConfigError: The text is not such a record.
        """
        try:
            data: Any = json.loads(text)
            task, step = data["task"], data["final_step"]
            if not isinstance(task, str) or not task:
                raise TypeError(f"task must be a non-empty string, not {task!r}")
            if not isinstance(step, int) or isinstance(step, bool):
                raise TypeError(f"final_step must be an int, not {step!r}")
            return cls(task=task, final_step=step, reason=EndReason(data["reason"]))
        except (ValueError, KeyError, TypeError, OverflowError) as err:
            raise ConfigError(
                "done record", text[:80], f"is not a completion record ({err})"
            ) from None


def done_file_name(task: str) -> str:
    """The file name (under ``<model_dir>/tfexperiment/``) of ``task``'s record."""
    return f"{task}.done.json"


def training_tasks(cluster_jobs: dict[str, int]) -> frozenset[str]:
    """Names of the tasks that train, from job name → task count."""
    return frozenset(
        f"{job}-{i}"
        for job in ("chief", "master", "worker")
        for i in range(cluster_jobs.get(job, 0))
    )


def chief_final_step(records: Iterable[TaskDone]) -> int | None:
    """The chief's (or master's) final step once it has finished, else None."""
    for record in records:
        if record.task in ("chief-0", "master-0"):
            return record.final_step
    return None


def all_training_done(records: Iterable[TaskDone], expected: frozenset[str]) -> bool:
    """Whether every task in ``expected`` has a completion record (ps may exit)."""
    return expected <= {record.task for record in records}


def is_current(
    record: TaskDone, *, written_at: float, since: float, train_steps: int | None = None
) -> bool:
    """Whether a record found on disk belongs to this run of the job.

    A record written before this task started (``written_at < since``) is left from an
    earlier run, unless it already reached ``train_steps``: training again would do
    nothing, so the job is finished for this task too.

    Args:
        record: The record.
        written_at: When it was written (the file's modification time).
        since: When this task started, on the same clock.
        train_steps: The job's train_steps (None: train forever).
    """
    return written_at >= since or (train_steps is not None and record.final_step >= train_steps)


def end_reason(*, reached: bool, chief_finished: bool, told: str = "") -> EndReason:
    """Why a training task ended, by precedence.

    Args:
        reached: Its final global step reached ``train_steps``
            (`core.settings.ExperimentSettings.reached`).
        chief_finished: A worker stopped because the chief's record appeared.
        told: The ``done_reason`` of the lifecycle decision that stopped it (an
            EndReason's value, e.g. ``"stopped by the evaluator"``), or empty.

    Returns:
        TRAIN_STEPS_REACHED over the reason it was told over CHIEF_FINISHED over
        INPUT_EXHAUSTED (training that ends on its own before ``train_steps`` ran out
        of input).
    """
    if reached:
        return EndReason.TRAIN_STEPS_REACHED
    if told:
        return EndReason(told)
    if chief_finished:
        return EndReason.CHIEF_FINISHED
    return EndReason.INPUT_EXHAUSTED


def is_final_export(
    *,
    reached: bool,
    step: int,
    finished_at_step: int | None = None,
    input_ran_out: bool = False,
) -> bool:
    """Whether an export of the checkpoint at ``step`` is the run's final export.

    The one rule of continuous_eval, train_and_evaluate and
    continuous_train_and_evaluate: final once ``train_steps`` is reached, once the
    step reaches the chief's final step, or once the training input ran out.

    Args:
        reached: ``step`` reached ``train_steps`` (`ExperimentSettings.reached`).
        step: The evaluated checkpoint's global step.
        finished_at_step: The chief's final step when training is known to be over.
        input_ran_out: The training that produced the checkpoint ran out of input.
    """
    return reached or input_ran_out or (finished_at_step is not None and step >= finished_at_step)
