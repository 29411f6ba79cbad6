"""Schedule names and the default schedule of a cluster task (the DESIGN.md table)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.errors import ConfigTypeError, ScheduleError
from core.schedule import (
    CONFIGURATION_HELPERS,
    SCHEDULE_NAMES,
    Schedule,
    check_schedule_member,
    check_schedule_name,
    default_schedule,
    known_schedule,
    parse_schedule,
)
from core.tf_config import TaskType, TFConfig

# The Experiment methods a schedule may name (the seed's API).
EXPERIMENT_METHODS = {
    "train",
    "evaluate",
    "continuous_eval",
    "continuous_eval_on_train_data",
    "train_and_evaluate",
    "continuous_train_and_evaluate",
    "run_std_server",
    "test",
}


def test_schedule_names_are_the_experiment_methods() -> None:
    """The schedule names are exactly the Experiment's schedulable method names."""
    assert set(SCHEDULE_NAMES) == EXPERIMENT_METHODS
    assert tuple(s.value for s in Schedule) == SCHEDULE_NAMES


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_parse_schedule_finds_every_name(name: str) -> None:
    """Every valid name parses to the schedule of that name."""
    assert parse_schedule(name).value == name


@given(name=st.text(max_size=30))
@example(name="")
@example(name="Train")
@example(name="train_and_eval")
@example(name=" train")
def test_unknown_schedule_lists_the_valid_names(name: str) -> None:
    """An unknown name is a ScheduleError (a ValueError) naming `schedule` and listing every valid name."""
    if name in SCHEDULE_NAMES:
        return
    with pytest.raises(ScheduleError) as info:
        parse_schedule(name)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.field, err.value) == ("schedule", name)
    for valid in SCHEDULE_NAMES:
        assert valid in str(err)


CLUSTER = {"chief": ["c:1"], "worker": ["w0:1", "w1:1"], "ps": ["p0:1"]}

TABLE: list[tuple[str, dict[str, Any] | None, Schedule]] = [
    ("no-tf-config", None, Schedule.TRAIN_AND_EVALUATE),
    ("empty-cluster", {"cluster": {}}, Schedule.TRAIN_AND_EVALUATE),
    # A cluster without a chief or master is refused by TF_CONFIG parsing (as by TF's RunConfig).
    ("single-task-no-type", {"cluster": {"chief": ["c:1"]}}, Schedule.TRAIN_AND_EVALUATE),
    (
        "single-task-chief",
        {"cluster": {"chief": ["c:1"]}, "task": {"type": "chief", "index": 0}},
        Schedule.TRAIN_AND_EVALUATE,
    ),
    ("chief", {"cluster": CLUSTER, "task": {"type": "chief"}}, Schedule.TRAIN_AND_EVALUATE),
    (
        "master",
        {"cluster": {"master": ["m:1"], "worker": ["w:1"]}, "task": {"type": "master"}},
        Schedule.TRAIN_AND_EVALUATE,
    ),
    ("worker-0", {"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}, Schedule.TRAIN),
    ("worker-1", {"cluster": CLUSTER, "task": {"type": "worker", "index": 1}}, Schedule.TRAIN),
    ("ps", {"cluster": CLUSTER, "task": {"type": "ps", "index": 0}}, Schedule.RUN_STD_SERVER),
    (
        "evaluator-cluster-given",
        {"cluster": CLUSTER, "task": {"type": "evaluator", "index": 0}},
        Schedule.CONTINUOUS_EVAL,
    ),
    (
        "evaluator-emptied-cluster",
        {"cluster": {}, "task": {"type": "evaluator", "index": 0}},
        Schedule.CONTINUOUS_EVAL,
    ),
    ("evaluator-no-cluster", {"task": {"type": "evaluator"}}, Schedule.CONTINUOUS_EVAL),
]


@pytest.mark.parametrize(("doc", "schedule"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_default_schedule_table(doc: dict[str, Any] | None, schedule: Schedule) -> None:
    """Each row of the DESIGN.md default-schedule table gives its schedule."""
    config = TFConfig.local() if doc is None else TFConfig.from_dict(doc)
    assert default_schedule(config) is schedule


def test_missing_task_type_in_a_multi_task_cluster_has_no_default() -> None:
    """A multi-task cluster without a task type is a ScheduleError (a ValueError) naming `task.type`."""
    config = TFConfig(cluster=CLUSTER)  # built directly: from_dict would refuse it first
    with pytest.raises(ScheduleError) as info:
        default_schedule(config)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "task.type"


@st.composite
def configs(draw: st.DrawFn) -> TFConfig:
    """Any parseable config: a cluster of up to 1 chief/master, 3 workers, 2 ps, and a task."""
    cluster: dict[str, list[str]] = {}
    lead = draw(st.sampled_from([None, "chief", "master"]))
    if lead:
        cluster[lead] = [f"{lead}:1"]
    for job, most in (("worker", 3), ("ps", 2)):
        count = draw(st.integers(min_value=0, max_value=most))
        if count:
            cluster[job] = [f"{job}{i}:1" for i in range(count)]
    if cluster and not lead:  # TF_CONFIG parsing (like RunConfig) needs a chief or master
        cluster = {"chief": ["chief:1"], **cluster}
    listed = [(job, i) for job, addrs in cluster.items() for i in range(len(addrs))]
    options: list[tuple[str, int] | None] = [*listed, ("evaluator", 0)]
    if len(listed) <= 1:
        options.append(None)
    task = draw(st.sampled_from(options))
    doc: dict[str, Any] = {"cluster": cluster}
    if task is not None:
        doc["task"] = {"type": task[0], "index": task[1]}
    return TFConfig.from_dict(doc)


@given(config=configs())
def test_default_schedule_is_decided_by_task_type_first(config: TFConfig) -> None:
    """evaluator → continuous_eval, ps → run_std_server, multi-task worker → train, else train_and_evaluate."""
    task = config.task_type
    if task is TaskType.EVALUATOR:
        expected = Schedule.CONTINUOUS_EVAL
    elif task is TaskType.PS:
        expected = Schedule.RUN_STD_SERVER
    elif task is TaskType.WORKER and config.num_tasks > 1:
        expected = Schedule.TRAIN
    else:
        expected = Schedule.TRAIN_AND_EVALUATE
    assert default_schedule(config) is expected


@given(config=configs())
def test_evaluator_schedule_ignores_its_cluster(config: TFConfig) -> None:
    """The evaluator continuously evaluates whether its cluster spec is given or emptied (as RunConfig does)."""
    evaluator = TFConfig(cluster=config.cluster, task_type=TaskType.EVALUATOR)
    emptied = TFConfig(task_type=TaskType.EVALUATOR)
    assert default_schedule(evaluator) is default_schedule(emptied) is Schedule.CONTINUOUS_EVAL


@given(config=configs())
def test_exactly_the_training_tasks_train(config: TFConfig) -> None:
    """Only chief, master and worker tasks get a schedule that trains."""
    training = {Schedule.TRAIN, Schedule.TRAIN_AND_EVALUATE}
    trains = default_schedule(config) in training
    assert trains == (config.task_type not in (TaskType.PS, TaskType.EVALUATOR))


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@given(
    name=names | st.sampled_from(sorted(CONFIGURATION_HELPERS)),
    exists=st.booleans(),
    is_callable=st.booleans(),
)
def test_any_public_callable_member_but_a_helper_runs(
    name: str, exists: bool, is_callable: bool
) -> None:
    """A public callable member runs (learn_runner); private names, helpers and missing members are ValueErrors; non-callables TypeErrors."""
    refused = name.startswith("_") or name in CONFIGURATION_HELPERS
    if refused or not exists:
        with pytest.raises(ScheduleError) as info:
            check_schedule_member(name, exists=exists, is_callable=is_callable)
        assert all(s in str(info.value) for s in SCHEDULE_NAMES)
    elif not is_callable:
        with pytest.raises(ConfigTypeError, match="not callable"):
            check_schedule_member(name, exists=exists, is_callable=is_callable)
    else:
        assert check_schedule_member(name, exists=exists, is_callable=is_callable) == name


@pytest.mark.parametrize("name", [3, None, b"train"])
def test_a_schedule_name_must_be_a_string(name: Any) -> None:
    """A schedule that is not a str is a ConfigTypeError naming schedule."""
    with pytest.raises(ConfigTypeError) as info:
        check_schedule_name(name)
    assert info.value.field == "schedule"


def test_a_task_of_an_extra_job_has_no_default_schedule() -> None:
    """A task of a job TF accepts but we know no schedule for is told to give --schedule."""
    config = TFConfig.from_json(
        '{"cluster": {"chief": ["c:1"], "foo": ["f:2"]}, "task": {"type": "foo", "index": 0}}'
    )
    with pytest.raises(ScheduleError, match="give --schedule"):
        default_schedule(config)


@given(name=st.sampled_from(SCHEDULE_NAMES) | st.text(max_size=30))
def test_known_schedule_is_the_schedule_of_a_name_else_none(name: str) -> None:
    """known_schedule gives the schedule of a schedule name and None for any other method name."""
    found = known_schedule(name)
    if name in SCHEDULE_NAMES:
        assert found is parse_schedule(name)
    else:
        assert found is None
