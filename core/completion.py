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


class EndReason(enum.Enum):
    """Why a training task ended."""

    TRAIN_STEPS_REACHED = "train_steps reached"
    INPUT_EXHAUSTED = "training input ran out"


@attrs.frozen(kw_only=True)
class TaskDone:
    """One training task's record that it is finished.

    Attributes:
        task: ``"<type>-<index>"``, e.g. ``chief-0`` or ``worker-1``.
        final_step: The global step when it ended.
        reason: Why it ended.
    """

    task: str
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
            return cls(
                task=str(data["task"]),
                final_step=int(data["final_step"]),
                reason=EndReason(data["reason"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError("done record", text[:80], f"is not a completion record ({err})")


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
