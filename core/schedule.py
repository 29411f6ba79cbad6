"""Schedules: their names, and the default schedule of a cluster task."""

from __future__ import annotations

import enum

from core.errors import ScheduleError
from core.tf_config import TaskType, TFConfig


class Schedule(enum.Enum):
    """The schedules an Experiment runs; each value is the method's name."""

    TRAIN = "train"
    EVALUATE = "evaluate"
    CONTINUOUS_EVAL = "continuous_eval"
    CONTINUOUS_EVAL_ON_TRAIN_DATA = "continuous_eval_on_train_data"
    TRAIN_AND_EVALUATE = "train_and_evaluate"
    CONTINUOUS_TRAIN_AND_EVALUATE = "continuous_train_and_evaluate"
    RUN_STD_SERVER = "run_std_server"
    TEST = "test"


SCHEDULE_NAMES: tuple[str, ...] = tuple(s.value for s in Schedule)


def parse_schedule(name: str) -> Schedule:
    """The schedule called ``name``.

    Raises:
        ScheduleError: ``name`` is not a schedule; the message lists the valid ones.
    """
    try:
        return Schedule(name)
    except ValueError:
        raise ScheduleError(
            "schedule", name, f"is not a schedule (valid: {', '.join(SCHEDULE_NAMES)})"
        ) from None


def default_schedule(config: TFConfig) -> Schedule:
    """The schedule a task runs when none is given.

    Decided by task type first: TF's RunConfig empties the evaluator's cluster, so
    the cluster alone would wrongly say "single machine".

    Args:
        config: The parsed TF_CONFIG.

    Returns:
        evaluator → continuous_eval; ps → run_std_server; worker of a multi-task
        cluster → train; chief, master, a single task or no cluster → train_and_evaluate.

    Raises:
        ScheduleError: A multi-task cluster whose task type is missing.
    """
    task = config.task_type
    if task is TaskType.EVALUATOR:
        return Schedule.CONTINUOUS_EVAL
    if task is TaskType.PS:
        return Schedule.RUN_STD_SERVER
    if task is TaskType.WORKER and config.is_distributed:
        return Schedule.TRAIN
    if task is None and config.is_distributed:
        raise ScheduleError("task.type", None, "is required to pick a default schedule")
    return Schedule.TRAIN_AND_EVALUATE
