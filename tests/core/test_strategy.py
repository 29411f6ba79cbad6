"""The strategy record and its rules: validation naming the dotted key, ops per device, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config_parse import parse_config, to_mapping
from core.errors import ConfigError, ConfigTypeError
from core.schedule import Schedule
from core.strategy import (
    ALL_GPUS,
    MULTI_WORKER_TRAINER_SCHEDULES,
    CrossDeviceOps,
    DeviceKind,
    StrategyConfig,
    StrategyError,
    StrategyKind,
    check_setup,
    cross_device_ops,
    device_kind,
    parse_strategy,
    strategy_owns_server,
    supports_saving_listeners,
    task_strategies,
    workers_wait_for_chief,
)
from core.tf_config import TaskType, TFConfig
from core.workers import (
    DelayKind,
    StartDelay,
    explicit_delay,
    is_cluster_worker,
    starts_server,
    train_start_delay,
    worker_start_delay,
)

kinds = st.sampled_from([None, *StrategyKind])
device_kinds = st.lists(st.sampled_from([DeviceKind.CPU, DeviceKind.GPU]), max_size=8)
task_types = st.sampled_from([None, *(t for t in TaskType if t is not TaskType.MASTER)])
schedules = st.sampled_from(list(Schedule))


def _config(
    task: TaskType | None, *, ps: int = 0, master: bool = False, workers: int = 1
) -> TFConfig:
    """A TF_CONFIG of a chief (or master), ``workers`` workers and ``ps`` ps (at least one
    when ``task`` is ps), as task ``task`` (None: a local process)."""
    cluster: dict[str, list[str]] = {"master" if master else "chief": ["127.0.0.1:1"]}
    if workers:
        cluster["worker"] = [f"127.0.0.1:{10 + i}" for i in range(workers)]
    if task is TaskType.PS:
        ps = max(ps, 1)
    if ps:
        cluster["ps"] = [f"127.0.0.1:{20 + i}" for i in range(ps)]
    if task is None:
        return TFConfig.local()
    if task is TaskType.CHIEF and master:
        task = TaskType.MASTER
    return TFConfig.from_dict({"cluster": cluster, "task": {"type": task.value, "index": 0}})


# --------------------------------------------------------------------------- the record
def test_type_name_shorthand_and_defaults() -> None:
    """``strategy: mirrored`` is the record with every other key at its default."""
    spec = parse_strategy("mirrored")
    assert spec == StrategyConfig(type="mirrored")
    assert spec is not None and spec.kind is StrategyKind.MIRRORED
    assert spec.devices is None and spec.ops is CrossDeviceOps.AUTO


def test_no_strategy_is_none() -> None:
    """A missing (null) strategy key parses to None: no strategy."""
    assert parse_strategy(None) is None


def test_device_list_becomes_a_tuple() -> None:
    """A YAML list of devices is stored as a tuple (the record is frozen and hashable)."""
    spec = parse_strategy({"type": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})
    assert spec is not None and spec.devices == ("/cpu:0", "/cpu:1")
    hash(spec)


BAD_VALUES: list[tuple[Any, str, type[Exception]]] = [
    ({"type": "mirroredd"}, "strategy.type", ConfigError),
    ({"devices": ["/cpu:0"]}, "strategy.type", ConfigError),
    ({"type": "mirrored", "device": ["/cpu:0"]}, "strategy.device", ConfigError),
    ({"type": "mirrored", "devices": "gpus"}, "strategy.devices", ConfigError),
    ({"type": "mirrored", "devices": 3}, "strategy.devices", ConfigTypeError),
    ({"type": "mirrored", "devices": []}, "strategy.devices", ConfigError),
    ({"type": "mirrored", "devices": ["/cpu:0", "/cpu:0"]}, "strategy.devices", ConfigError),
    ({"type": "mirrored", "devices": ["/cpu:0", "tpu"]}, "strategy.devices[1]", ConfigError),
    ({"type": "mirrored", "devices": ["/cpu:0", ""]}, "strategy.devices[1]", ConfigTypeError),
    (
        {"type": "mirrored", "cross_device_ops": "ring"},
        "strategy.cross_device_ops",
        ConfigError,
    ),
    ({"type": "mirrored", "communication": "ring"}, "strategy.communication", ConfigError),
    ({"type": "multi_worker_mirrored", "devices": ALL_GPUS}, "strategy.devices", ConfigError),
    (
        {"type": "multi_worker_mirrored", "cross_device_ops": "nccl"},
        "strategy.cross_device_ops",
        ConfigError,
    ),
    (
        {"type": "multi_worker_mirrored", "communication": "mpi"},
        "strategy.communication",
        ConfigError,
    ),
    (
        {"type": "mirrored", "devices": ["/cpu:0", "/cpu:1"], "cross_device_ops": "nccl"},
        "strategy.cross_device_ops",
        StrategyError,
    ),
    (["mirrored"], "strategy", ConfigTypeError),
]
#: A valid config file apart from its ``strategy`` key (its data files need not exist).
_BASE_CONFIG: dict[str, Any] = {
    "estimator": {"factory": "m:f"},
    "train_input": {"path": "train.csv"},
    "eval_input": {"path": "eval.csv"},
}


def _error_of(data: Any) -> Exception:
    """The error parse_strategy raises for ``data``."""
    try:
        parse_strategy(data)
    except Exception as err:
        return err
    raise AssertionError(f"{data!r} parsed")


@pytest.mark.parametrize(("data", "field", "error"), BAD_VALUES)
def test_bad_values_name_the_dotted_key(data: Any, field: str, error: type[Exception]) -> None:
    """Every bad value fails with the dotted key and the value (a ConfigError, exit code 2)."""
    with pytest.raises(error) as caught:
        parse_strategy(data)
    assert getattr(caught.value, "field", None) == field
    assert field in str(caught.value)


@pytest.mark.parametrize(("data", "field", "error"), BAD_VALUES)
def test_the_config_file_key_fails_as_parse_strategy_does(
    data: Any, field: str, error: type[Exception]
) -> None:
    """A bad ``strategy`` key of a config file fails with parse_strategy's error class and key."""
    with pytest.raises(error) as caught:
        parse_config({**_BASE_CONFIG, "strategy": data})
    assert type(caught.value) is type(_error_of(data))
    assert getattr(caught.value, "field", None) == field


@given(
    data=st.sampled_from(["mirrored", "multi_worker_mirrored", None])
    | st.fixed_dictionaries(
        {"type": st.just("mirrored")},
        optional={
            "devices": st.sampled_from([ALL_GPUS, ["/cpu:0"], ["/cpu:0", "/cpu:1"], ["/gpu:0"]]),
            "cross_device_ops": st.sampled_from(["auto", "reduction_to_one_device"]),
        },
    )
    | st.fixed_dictionaries(
        {"type": st.just("multi_worker_mirrored")},
        optional={"communication": st.sampled_from(["auto", "ring", "nccl"])},
    )
)
def test_the_config_file_key_is_the_parse_strategy_record_and_round_trips(data: Any) -> None:
    """A config file's ``strategy`` parses to parse_strategy's record; to_mapping gives it back."""
    config = parse_config({**_BASE_CONFIG, "strategy": data})
    assert config.strategy == parse_strategy(data)
    assert parse_config(to_mapping(config)) == config


@given(
    devices=st.lists(
        st.sampled_from(["/cpu:0", "/cpu:1", "/gpu:0", "/gpu:1", "/GPU:2"]), min_size=1, unique=True
    ),
    ops=st.sampled_from(["auto", "reduction_to_one_device", "nccl", "hierarchical_copy"]),
)
def test_record_accepts_exactly_the_ops_that_work_on_its_devices(
    devices: list[str], ops: str
) -> None:
    """A mirrored record with explicit devices is valid iff `cross_device_ops` accepts them."""
    kinds_ = [device_kind(d) for d in devices]
    try:
        cross_device_ops(CrossDeviceOps(ops), kinds_)
        works = True
    except StrategyError:
        works = False
    data = {"type": "mirrored", "devices": devices, "cross_device_ops": ops}
    if works:
        assert parse_strategy(data) is not None
    else:
        with pytest.raises(StrategyError):
            parse_strategy(data)


# --------------------------------------------------------------------------- devices and ops
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("/cpu:0", DeviceKind.CPU),
        ("/GPU:1", DeviceKind.GPU),
        ("/device:GPU:0", DeviceKind.GPU),
        ("/job:localhost/replica:0/task:0/device:CPU:1", DeviceKind.CPU),
        ("/job:worker/task:0/gpu:3", DeviceKind.GPU),
        ("/TPU:0", DeviceKind.OTHER),
        ("cpu", DeviceKind.OTHER),
        ("", DeviceKind.OTHER),
    ],
)
def test_device_kind(name: str, kind: DeviceKind) -> None:
    """Device names of every TF spelling are read as CPU or GPU; anything else is OTHER."""
    assert device_kind(name) is kind


@given(devices=device_kinds)
def test_auto_never_picks_the_hanging_default_off_gpus(devices: list[DeviceKind]) -> None:
    """auto picks ReductionToOneDevice unless every device is a GPU (then TF's default)."""
    picked = cross_device_ops(CrossDeviceOps.AUTO, devices)
    gpus_only = bool(devices) and all(d is DeviceKind.GPU for d in devices)
    assert picked is (
        CrossDeviceOps.COLLECTIVE if gpus_only else CrossDeviceOps.REDUCTION_TO_ONE_DEVICE
    )


@given(devices=device_kinds, choice=st.sampled_from(list(CrossDeviceOps)))
def test_gpu_only_ops_are_refused_over_cpus(
    devices: list[DeviceKind], choice: CrossDeviceOps
) -> None:
    """NCCL, hierarchical copy and the collective default over >1 device with a CPU are refused."""
    gpu_only_ops = {
        CrossDeviceOps.NCCL,
        CrossDeviceOps.HIERARCHICAL_COPY,
        CrossDeviceOps.COLLECTIVE,
    }
    refused = (
        choice in gpu_only_ops
        and len(devices) > 1
        and any(d is not DeviceKind.GPU for d in devices)
    )
    if refused:
        with pytest.raises(StrategyError) as caught:
            cross_device_ops(choice, devices)
        assert "\n" not in str(caught.value)
    else:
        picked = cross_device_ops(choice, devices)
        assert picked is choice or choice is CrossDeviceOps.AUTO


# --------------------------------------------------------------------------- tasks
@given(kind=kinds, task=task_types)
def test_evaluator_never_trains_and_multi_worker_never_evaluates_distributed(
    kind: StrategyKind | None, task: TaskType | None
) -> None:
    """No task but a trainer gets a train strategy; no multi-worker eval_distribute ever."""
    got = task_strategies(kind, task)
    if task is TaskType.EVALUATOR:
        assert got.train is None
    else:
        assert got.train is kind
    assert got.eval is (None if kind is StrategyKind.MULTI_WORKER_MIRRORED else kind)


@given(kind=kinds, task=task_types, schedule=schedules, ps=st.integers(0, 2), master=st.booleans())
def test_check_setup_refuses_only_what_cannot_run(
    kind: StrategyKind | None, task: TaskType | None, schedule: Schedule, ps: int, master: bool
) -> None:
    """check_setup refuses exactly the combinations the strategy cannot run, with one line."""
    config = _config(task, ps=ps, master=master)
    trainer = task in (TaskType.CHIEF, TaskType.WORKER)
    if kind is StrategyKind.MIRRORED:
        refused = task not in (None, TaskType.EVALUATOR)
    elif kind is StrategyKind.MULTI_WORKER_MIRRORED:
        refused = (
            task is not None
            and task is not TaskType.EVALUATOR
            and (
                "ps" in config.cluster
                or master
                or (trainer and schedule not in MULTI_WORKER_TRAINER_SCHEDULES)
            )
        )
    else:
        refused = False
    if refused:
        with pytest.raises(StrategyError) as caught:
            check_setup(kind, schedule, config)
        assert "\n" not in str(caught.value)
    else:
        check_setup(kind, schedule, config)


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule.CONTINUOUS_TRAIN_AND_EVALUATE,
        Schedule.TEST,
        Schedule.CONTINUOUS_EVAL,
        Schedule.RUN_STD_SERVER,
    ],
)
def test_multi_worker_chief_refuses_schedules_that_do_not_train_in_step(schedule: Schedule) -> None:
    """A chief under multi_worker_mirrored refuses schedules the workers' all-reduce would wait on."""
    with pytest.raises(StrategyError, match="every chief and worker must train") as caught:
        check_setup(StrategyKind.MULTI_WORKER_MIRRORED, schedule, _config(TaskType.CHIEF))
    assert caught.value.field == "schedule"


def test_default_schedules_run_under_multi_worker() -> None:
    """The default schedules of chief, worker and evaluator all pass under multi_worker_mirrored."""
    for task, schedule in (
        (TaskType.CHIEF, Schedule.TRAIN_AND_EVALUATE),
        (TaskType.WORKER, Schedule.TRAIN),
        (TaskType.EVALUATOR, Schedule.CONTINUOUS_EVAL),
    ):
        check_setup(StrategyKind.MULTI_WORKER_MIRRORED, schedule, _config(task))


@given(kind=kinds, task=task_types, ps=st.integers(0, 1))
def test_the_strategy_owns_the_server_only_of_a_multi_worker_trainer(
    kind: StrategyKind | None, task: TaskType | None, ps: int
) -> None:
    """Only a chief/worker of a multi_worker_mirrored cluster has its server started by TF."""
    config = _config(task, ps=ps)
    owns = strategy_owns_server(kind, config)
    expected = kind is StrategyKind.MULTI_WORKER_MIRRORED and task in (
        TaskType.CHIEF,
        TaskType.WORKER,
    )
    assert owns is expected
    assert supports_saving_listeners(kind, config) is not expected


@given(kind=kinds)
def test_workers_wait_for_the_chief_unless_all_reduce(kind: StrategyKind | None) -> None:
    """Workers wait for the chief's model except under multi_worker_mirrored (no ps to hold it)."""
    assert workers_wait_for_chief(kind) is (kind is not StrategyKind.MULTI_WORKER_MIRRORED)


def test_a_local_process_runs_any_schedule_under_any_strategy() -> None:
    """Without TF_CONFIG every schedule runs under either strategy (one machine)."""
    for kind in StrategyKind:
        for schedule in Schedule:
            check_setup(kind, schedule, TFConfig.local())


@given(
    kind=kinds,
    task=task_types,
    index=st.integers(0, 3),
    delay=st.none() | st.floats(0, 100),
    by_step=st.booleans(),
)
def test_worker_decisions_take_the_strategy_rule_as_input(
    kind: StrategyKind | None, task: TaskType | None, index: int, delay: float | None, by_step: bool
) -> None:
    """Under all-reduce a worker neither joins the chief nor waits its start delay (an explicit
    delay still applies), and a task whose strategy serves its port starts no server of its own."""
    config = _config(task, workers=4)
    if task is TaskType.WORKER:
        config = TFConfig.from_dict(
            {"cluster": dict(config.cluster), "task": {"type": "worker", "index": index}}
        )
    waits = workers_wait_for_chief(kind)
    joins = is_cluster_worker(config, waits_for_chief=waits)
    assert joins == (is_cluster_worker(config) and kind is not StrategyKind.MULTI_WORKER_MIRRORED)
    chosen = train_start_delay(
        config, delay_secs=delay, by_global_step=by_step, waits_for_chief=waits
    )
    if delay is not None:
        assert chosen == explicit_delay(delay)
    elif joins:
        assert chosen == worker_start_delay(config.task_index, by_global_step=by_step)
    else:
        assert chosen == StartDelay(kind=DelayKind.NONE)
    serves = strategy_owns_server(kind, config)
    assert starts_server(config, strategy_serves=serves) == (starts_server(config) and not serves)
