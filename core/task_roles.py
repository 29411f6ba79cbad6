"""What each task of a run reports and writes: its closing summary, export ownership, notes.

Pure rules over a task's `TFConfig` and schedule: which summary a task prints at the end
of its run, which task owns ``<model_dir>/export/``, whether a checkpoint still needs an
export, and whether ``eval_every_n_steps`` is finer than training's checkpoint cadence.
"""

from __future__ import annotations

import enum
from collections.abc import Collection

from core.schedule import Schedule
from core.tf_config import TaskType, TFConfig

#: Schedules that evaluate without training.
EVALUATING_SCHEDULES = frozenset(
    {Schedule.EVALUATE, Schedule.CONTINUOUS_EVAL, Schedule.CONTINUOUS_EVAL_ON_TRAIN_DATA}
)


class SummaryKind(enum.Enum):
    """The closing summary a task prints when its schedule returns."""

    TRAINING = "training"  # steps trained, the last evaluation, the exports it owns
    WORKER = "worker"  # one line: it trained a share; the cluster's global step
    EVALUATIONS = "evaluations"  # how many evaluations ran, the last one's metrics
    NONE = "none"  # nothing (a ps serves; it neither trains nor evaluates)


def summary_kind(config: TFConfig, schedule: Schedule) -> SummaryKind:
    """The summary a task prints after running ``schedule``.

    A ps (or ``run_std_server``) prints nothing; an evaluating schedule or an evaluator
    prints its evaluations; a worker other than the chief trained a share of the steps
    and says so in one line; the chief (or a local run) prints the training summary.

    Args:
        config: The task's TF_CONFIG.
        schedule: The schedule it ran.
    """
    if schedule is Schedule.RUN_STD_SERVER or config.task_type is TaskType.PS:
        return SummaryKind.NONE
    if schedule in EVALUATING_SCHEDULES or config.task_type is TaskType.EVALUATOR:
        return SummaryKind.EVALUATIONS
    if config.is_distributed and not config.is_chief:
        return SummaryKind.WORKER
    return SummaryKind.TRAINING


def owns_exports(config: TFConfig) -> bool:
    """Whether this task writes ``<model_dir>/export/``: one task owns each export directory.

    Locally the one process does. In a cluster the chief (or master; worker 0 without
    either) does: it evaluates and exports in ``train_and_evaluate``. An evaluator, the
    other workers and the ps skip exports, so two tasks never export into one directory.
    (The chief cannot tell from its TF_CONFIG whether an evaluator exists: the evaluator
    is never listed in the cluster, so the owner must be the chief.)
    """
    return not config.is_distributed or config.is_chief


def export_due(checkpoint_path: str | None, exported: Collection[str]) -> bool:
    """Whether an export of ``checkpoint_path`` is still to be written into a directory.

    Args:
        checkpoint_path: The checkpoint to export (None: the exporter picks the latest,
            which cannot be known here, so it is due).
        exported: The checkpoints already exported into that directory (by basename).

    Returns:
        False when that checkpoint was exported there before (a rerun into a finished
        model_dir), else True.
    """
    if checkpoint_path is None:
        return True
    return checkpoint_basename(checkpoint_path) not in exported


def checkpoint_basename(checkpoint_path: str) -> str:
    """The checkpoint's file prefix, e.g. ``model.ckpt-200`` (how exports are recorded)."""
    return checkpoint_path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def eval_cadence_note(
    *,
    eval_every_n_steps: int | None,
    save_checkpoints_steps: int | None,
    save_checkpoints_secs: float | None,
) -> str | None:
    """A note when ``train_and_evaluate`` cannot evaluate as often as asked, else None.

    Evaluations during training follow checkpoint saves; with saves every ``S`` steps an
    ``eval_every_n_steps`` below ``S`` evaluates every ``S`` steps; with saves by time it
    evaluates at most once per ``save_checkpoints_secs``.

    Args:
        eval_every_n_steps: The experiment's setting (None or 0: only after training; 1,
            the default: every checkpoint, so never a note).
        save_checkpoints_steps: The estimator's RunConfig save cadence in steps, or None.
        save_checkpoints_secs: Its save cadence in seconds, or None.
    """
    if not eval_every_n_steps or eval_every_n_steps == 1:
        return None  # only after training, or (the default) every checkpoint: as asked
    if save_checkpoints_steps:
        if eval_every_n_steps >= save_checkpoints_steps:
            return None
        return (
            f"eval_every_n_steps={eval_every_n_steps} is below the checkpoint cadence "
            f"(save_checkpoints_steps={save_checkpoints_steps}): evaluations follow "
            f"checkpoint saves, so they run every {save_checkpoints_steps} steps"
        )
    if save_checkpoints_secs:
        return (
            f"eval_every_n_steps={eval_every_n_steps}, but checkpoints are saved by time "
            f"(save_checkpoints_secs={save_checkpoints_secs:g}): evaluations follow checkpoint "
            f"saves, so they run at most every {save_checkpoints_secs:g}s (set "
            "estimator.run_config.save_checkpoints_steps to evaluate by steps)"
        )
    return None
