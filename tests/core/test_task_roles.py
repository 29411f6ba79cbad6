"""What each task reports and writes: summary kind, export owner, export dedupe, cadence note."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.cluster_plan import cluster_tasks, tf_configs
from core.schedule import Schedule
from core.task_roles import (
    EVALUATING_SCHEDULES,
    SummaryKind,
    checkpoint_basename,
    eval_cadence_note,
    export_due,
    owns_exports,
    summary_kind,
)
from core.tf_config import TaskType, TFConfig


@st.composite
def cluster_task_configs(draw: st.DrawFn) -> list[TFConfig]:
    """Every task's TFConfig of one local cluster (as the launcher writes them)."""
    tasks = cluster_tasks(
        ps=draw(st.integers(0, 3)),
        workers=draw(st.integers(0, 4)),
        chief=draw(st.booleans()),
        evaluator=draw(st.booleans()),
    )
    clustered = [t for t in tasks if t.type != "evaluator"]
    documents = tf_configs(tasks, list(range(2000, 2000 + len(clustered))))
    return [TFConfig.from_dict(documents[t.name]) for t in tasks]


schedules = st.sampled_from(list(Schedule))


@given(configs=cluster_task_configs(), schedule=schedules)
def test_only_the_chief_prints_a_training_summary(
    configs: list[TFConfig], schedule: Schedule
) -> None:
    """In a cluster a ps prints nothing, an evaluator its evaluations, only the chief training."""
    for config in configs:
        kind = summary_kind(config, schedule)
        if config.task_type is TaskType.PS or schedule is Schedule.RUN_STD_SERVER:
            assert kind is SummaryKind.NONE
        elif config.task_type is TaskType.EVALUATOR or schedule in EVALUATING_SCHEDULES:
            assert kind is SummaryKind.EVALUATIONS
        elif config.is_chief:
            assert kind is SummaryKind.TRAINING
        else:
            assert kind is SummaryKind.WORKER
    training = [c for c in configs if summary_kind(c, schedule) is SummaryKind.TRAINING]
    assert len(training) <= 1


@given(schedule=schedules)
def test_a_local_run_prints_the_training_summary_unless_it_only_evaluates(
    schedule: Schedule,
) -> None:
    """Locally every training schedule prints the training summary."""
    kind = summary_kind(TFConfig.local(), schedule)
    if schedule is Schedule.RUN_STD_SERVER:
        assert kind is SummaryKind.NONE
    elif schedule in EVALUATING_SCHEDULES:
        assert kind is SummaryKind.EVALUATIONS
    else:
        assert kind is SummaryKind.TRAINING


@given(configs=cluster_task_configs())
def test_exactly_one_task_owns_the_exports(configs: list[TFConfig]) -> None:
    """In every cluster exactly one task (the chief or master) owns export/; locally the run."""
    owners = [c for c in configs if owns_exports(c)]
    assert len(owners) == 1
    assert owners[0].task_type in (TaskType.CHIEF, TaskType.MASTER)
    assert owns_exports(TFConfig.local())


names = st.from_regex(r"model\.ckpt-[0-9]{1,6}", fullmatch=True)


@given(
    done=st.lists(names, max_size=5),
    name=names,
    folder=st.sampled_from(["/m", "/m/", "gs://b/m", "C:\\m"]),
)
def test_an_exported_checkpoint_is_not_due_again(done: list[str], name: str, folder: str) -> None:
    """A checkpoint is due for export exactly when its basename is not recorded; None always is."""
    path = folder.rstrip("/\\") + ("\\" if "\\" in folder else "/") + name
    assert checkpoint_basename(path) == name
    assert export_due(path, done) is (name not in done)
    assert export_due(path, [*done, name]) is False
    assert export_due(None, [*done, name]) is True


@given(
    every=st.none() | st.integers(0, 10_000),
    steps=st.none() | st.integers(1, 10_000),
    secs=st.none() | st.floats(1, 10_000),
)
def test_eval_cadence_note_when_evaluations_cannot_be_as_frequent(
    every: int | None, steps: int | None, secs: float | None
) -> None:
    """A note names both numbers when eval_every_n_steps is finer than checkpoint saves."""
    note = eval_cadence_note(
        eval_every_n_steps=every, save_checkpoints_steps=steps, save_checkpoints_secs=secs
    )
    if not every or every == 1:
        assert note is None
    elif steps:
        assert (note is not None) is (every < steps)
        if note:
            assert f"eval_every_n_steps={every}" in note
            assert f"save_checkpoints_steps={steps}" in note
    elif secs:
        assert note is not None and f"eval_every_n_steps={every}" in note
        assert "save_checkpoints_secs" in note
    else:
        assert note is None
