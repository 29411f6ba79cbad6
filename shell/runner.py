"""run_experiment: build an Experiment and run the schedule this task should run."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

from core.errors import ConfigError, ConfigTypeError
from core.schedule import (
    check_schedule_member,
    check_schedule_name,
    default_schedule,
    known_schedule,
)
from core.tf_config import TFConfig
from shell.experiment import Experiment
from shell.strategy import check_setup

log = logging.getLogger("tfexperiment")


def _build(experiment_fn: Callable[..., Any], output_dir: Any) -> Any:
    try:
        params = inspect.signature(experiment_fn).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "output_dir" in params:
        return experiment_fn(output_dir=output_dir)
    return experiment_fn(output_dir)


def run_experiment(
    experiment_fn: Callable[..., Experiment],
    output_dir: str | os.PathLike[str],
    schedule: str | None = None,
) -> Any:
    """Make an Experiment with ``experiment_fn(output_dir)`` and run a schedule of it.

    Args:
        experiment_fn: Builds the Experiment; receives ``output_dir`` (use it as the
            estimator's ``model_dir``).
        output_dir: Base output directory.
        schedule: The Experiment method to run (one of the schedules, or a public
            method an Experiment subclass defines); None picks the task's default from
            ``TF_CONFIG`` (evaluator → continuous_eval, ps → run_std_server, worker →
            train, chief/master/single machine → train_and_evaluate).

    Returns:
        What the schedule returns.

    Raises:
        ValueError: ``output_dir`` is empty, ``schedule`` is no public Experiment
            method (or a configuration helper such as ``extend_train_hooks``), or
            TF_CONFIG is malformed or has no task type in a multi-task cluster.
            `core.strategy.StrategyError` (a ValueError): the estimator's tf.distribute
            strategy cannot run this schedule on this task (refused before it runs).
        TypeError: ``output_dir`` is not a path, ``experiment_fn`` is not callable or
            does not return an Experiment, or ``schedule`` names a non-callable member.
    """
    if not output_dir:
        raise ConfigError("output_dir", output_dir, "must be a non-empty path")
    if not isinstance(output_dir, (str, os.PathLike)):
        raise ConfigTypeError("output_dir", output_dir, "must be a path (str or os.PathLike)")
    if not callable(experiment_fn):
        raise ConfigTypeError("experiment_fn", experiment_fn, "must be callable")
    if schedule is None:
        config = TFConfig.from_json(os.environ.get("TF_CONFIG"))
        name = default_schedule(config).value
        log.info(
            "task %s: default schedule %s",
            config.task_type.value if config.task_type else "local",
            name,
        )
    else:
        name = check_schedule_name(schedule)
    experiment = _build(experiment_fn, os.fspath(output_dir))
    if not isinstance(experiment, Experiment):
        raise ConfigTypeError(
            "experiment_fn",
            experiment_fn,
            f"must return an Experiment, returned {type(experiment).__name__}",
        )
    missing = object()
    member: Any = getattr(experiment, name, missing)
    check_schedule_member(name, exists=member is not missing, is_callable=callable(member))
    check_setup(experiment.estimator, known_schedule(name))  # what the strategy cannot run
    return member()
