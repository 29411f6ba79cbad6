"""Schedules: their names, and the default schedule of a cluster task."""

from __future__ import annotations

import enum

from core.errors import ConfigTypeError, ScheduleError
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

#: Public Experiment methods that configure it rather than run it: never a schedule.
CONFIGURATION_HELPERS: frozenset[str] = frozenset(
    {
        "reset_export_strategies",
        "extend_train_hooks",
        "extend_eval_hooks",
        "on_evaluation",
        "from_settings",
    }
)


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


def known_schedule(name: str) -> Schedule | None:
    """The schedule called ``name``, or None for another method (an Experiment subclass's)."""
    return Schedule(name) if name in SCHEDULE_NAMES else None


def _unknown(name: str) -> ScheduleError:
    return ScheduleError(
        "schedule",
        name,
        f"is not a schedule (valid: {', '.join(SCHEDULE_NAMES)}, or a public method of "
        "an Experiment subclass)",
    )


def check_schedule_name(name: str) -> str:
    """Check a schedule name before the Experiment exists: a public, non-helper name.

    Raises:
        ConfigTypeError: ``name`` is not a string.
        ScheduleError: ``name`` is private or names a configuration helper
            (`CONFIGURATION_HELPERS`); the message lists the schedules.
    """
    if not isinstance(name, str):
        raise ConfigTypeError("schedule", name, "must be a schedule name")
    if not name or name.startswith("_") or name in CONFIGURATION_HELPERS:
        raise _unknown(name)
    return name


def check_schedule_member(name: str, *, exists: bool, is_callable: bool) -> str:
    """Whether the Experiment member ``name`` may run as a schedule (learn_runner's rule).

    Any public method runs, the eight schedules and a subclass's own alike.

    Args:
        name: The schedule name (`check_schedule_name` passed).
        exists: The Experiment has a member of that name.
        is_callable: That member is callable (a property's value or None is not).

    Returns:
        ``name``.

    Raises:
        ScheduleError: No such member (the message lists the schedules).
        ConfigTypeError: The member is not callable.
    """
    check_schedule_name(name)
    if not exists:
        raise _unknown(name)
    if not is_callable:
        raise ConfigTypeError("schedule", name, "names a member of Experiment that is not callable")
    return name


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
        ScheduleError: A multi-task cluster whose task type is missing, or a task of
            an extra job (one TF accepts but that has no schedule of its own).
    """
    task = config.task_type
    if task is TaskType.EVALUATOR:
        return Schedule.CONTINUOUS_EVAL
    if task is TaskType.PS:
        return Schedule.RUN_STD_SERVER
    if task is TaskType.WORKER and config.is_distributed:
        return Schedule.TRAIN
    if task is None and config.task_job is not None:
        raise ScheduleError(
            "task.type", config.task_job, "has no default schedule; give --schedule"
        )
    if task is None and config.is_distributed:
        raise ScheduleError("task.type", None, "is required to pick a default schedule")
    return Schedule.TRAIN_AND_EVALUATE
