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


class GateKind(enum.Enum):
    """What a worker does before it joins training."""

    TRAIN = "train"
    SKIP = "skip"
    WAIT = "wait"


class GateReason(enum.Enum):
    """Why a worker trains, skips training or waits."""

    MODEL_READY = "the chief has initialised the model"
    GAVE_UP_WAITING = "no sign of the chief's model yet; leaving the wait to TensorFlow"
    CHIEF_FINISHED = "the chief has already finished"
    NO_PS = "waiting for the ps tasks to accept connections"
    NOT_READY = "waiting for the chief to initialise the model"


@attrs.frozen(kw_only=True)
class WorkerGate:
    """A worker's decision before training.

    Attributes:
        kind: TRAIN, SKIP (the job is over) or WAIT.
        reason: Why.
        sleep_secs: How long to sleep before asking again (WAIT only).
    """

    kind: GateKind
    reason: GateReason
    sleep_secs: float = 0.0


def worker_gate(
    *,
    chief_finished: bool,
    ps_reachable: bool,
    model_ready: bool,
    waited_secs: float,
    max_wait_secs: float,
    poll_secs: float = 0.2,
) -> WorkerGate:
    """Decide whether a worker starts training now, skips it, or waits.

    TensorFlow's own wait (SessionManager) rechecks every 30 s; this gate is polled
    often and cheaply, so a worker joins as soon as the chief has initialised the
    model, and never connects to a ps that has already exited with the job.

    Args:
        chief_finished: The chief's completion record of this run exists.
        ps_reachable: Every ps task accepts connections.
        model_ready: The chief has initialised (or restored) the model on the ps.
        waited_secs: How long the worker has waited so far.
        max_wait_secs: After this long, train anyway and let TensorFlow wait.
        poll_secs: The sleep of a WAIT.
    """
    if chief_finished:
        return WorkerGate(kind=GateKind.SKIP, reason=GateReason.CHIEF_FINISHED)
    if ps_reachable and model_ready:
        return WorkerGate(kind=GateKind.TRAIN, reason=GateReason.MODEL_READY)
    if waited_secs >= max_wait_secs:
        return WorkerGate(kind=GateKind.TRAIN, reason=GateReason.GAVE_UP_WAITING)
    reason = GateReason.NOT_READY if ps_reachable else GateReason.NO_PS
    return WorkerGate(kind=GateKind.WAIT, reason=reason, sleep_secs=poll_secs)
