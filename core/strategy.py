"""tf.distribute strategies: the ``strategy`` config record and the rules for using one.

The record is what the config file's top-level ``strategy`` key holds; the rules say
which cross-device ops work on which devices, which strategy each task builds, which
schedules a strategy supports on which task, and whether the strategy (rather than the
shell) starts the task's TensorFlow server. No TensorFlow here: the shell builds the
objects and asks these functions.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from core._validate import check, one_of, unique_names
from core.errors import ConfigError, ConfigTypeError, FieldError
from core.schedule import Schedule
from core.tf_config import TaskType, TFConfig

ALL_GPUS = "all_gpus"


class StrategyKind(enum.Enum):
    """The strategies a config can select (the value is the ``strategy.type``)."""

    MIRRORED = "mirrored"
    MULTI_WORKER_MIRRORED = "multi_worker_mirrored"


class CrossDeviceOps(enum.Enum):
    """How MirroredStrategy reduces across devices (``strategy.cross_device_ops``)."""

    AUTO = "auto"
    REDUCTION_TO_ONE_DEVICE = "reduction_to_one_device"
    NCCL = "nccl"
    HIERARCHICAL_COPY = "hierarchical_copy"
    #: TF's own default (collective all-reduce); never a config value, only a choice
    #: made for GPU-only devices, or found on a strategy built by user code.
    COLLECTIVE = "collective"


class Communication(enum.Enum):
    """MultiWorkerMirroredStrategy's collective implementation (``strategy.communication``)."""

    AUTO = "auto"
    RING = "ring"
    NCCL = "nccl"


class DeviceKind(enum.Enum):
    """The kind of a device named in ``strategy.devices``."""

    CPU = "CPU"
    GPU = "GPU"
    OTHER = "OTHER"


class StrategyError(ConfigError):
    """A strategy cannot run this set-up (refused before anything trains; exit code 2)."""


_KINDS = tuple(k.value for k in StrategyKind)
_OPS = tuple(o.value for o in CrossDeviceOps if o is not CrossDeviceOps.COLLECTIVE)
_COMMUNICATION = tuple(c.value for c in Communication)
_DEVICE = re.compile(r"(?:^|/)(?:device:)?([A-Za-z_]+):\d+$")


def _devices_to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@attrs.frozen(kw_only=True)
class StrategyConfig:
    """The top-level ``strategy`` key: which tf.distribute strategy trains the estimator.

    Attributes:
        type: ``mirrored`` (one machine, many devices) or ``multi_worker_mirrored``
            (synchronous all-reduce across the chief and workers of TF_CONFIG).
        devices: mirrored only: device names (``[/cpu:0, /cpu:1]``), ``all_gpus``, or
            None for TF's default (every visible GPU, else the CPU).
        cross_device_ops: mirrored only: ``auto`` (ReductionToOneDevice when a device is
            not a GPU, TF's default on GPUs), ``reduction_to_one_device``, ``nccl`` or
            ``hierarchical_copy``.
        communication: multi_worker_mirrored only: ``auto``, ``ring`` or ``nccl``.
    """

    type: str = attrs.field(validator=one_of(_KINDS))
    devices: tuple[str, ...] | str | None = attrs.field(default=None, converter=_devices_to_tuple)
    cross_device_ops: str = attrs.field(default="auto", validator=one_of(_OPS))
    communication: str = attrs.field(default="auto", validator=one_of(_COMMUNICATION))

    @devices.validator
    def _check_devices(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, str):
            check(one_of((ALL_GPUS,)), attribute.name, value)
            return
        if not isinstance(value, tuple):
            raise ConfigTypeError(
                attribute.name, value, f"must be a list of device names or {ALL_GPUS!r}"
            )
        check(unique_names, attribute.name, value)
        if not value:
            raise ConfigError(attribute.name, [], "must name at least one device")
        for i, name in enumerate(value):
            if device_kind(name) is DeviceKind.OTHER:
                raise ConfigError(
                    f"{attribute.name}[{i}]", name, "must name a device like /cpu:0 or /gpu:1"
                )

    def __attrs_post_init__(self) -> None:
        if self.kind is StrategyKind.MULTI_WORKER_MIRRORED:
            if self.devices is not None:
                raise ConfigError("devices", _shown(self.devices), "applies to type mirrored only")
            if self.cross_device_ops != CrossDeviceOps.AUTO.value:
                raise ConfigError(
                    "cross_device_ops", self.cross_device_ops, "applies to type mirrored only"
                )
        elif self.communication != Communication.AUTO.value:
            raise ConfigError(
                "communication", self.communication, "applies to type multi_worker_mirrored only"
            )
        if isinstance(self.devices, tuple):
            cross_device_ops(self.ops, tuple(device_kind(d) for d in self.devices))

    @property
    def kind(self) -> StrategyKind:
        """The strategy type as an enum."""
        return StrategyKind(self.type)

    @property
    def ops(self) -> CrossDeviceOps:
        """``cross_device_ops`` as an enum."""
        return CrossDeviceOps(self.cross_device_ops)


def _shown(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def parse_strategy(data: Any, path: str = "strategy") -> StrategyConfig | None:
    """Validate the config file's ``strategy`` value into a record.

    Args:
        data: None (no strategy), a type name (``mirrored``), a mapping of the
            record's keys, or a record (returned as is).
        path: The key's dotted path, prefixed to every error's field.

    Returns:
        The record, or None when ``data`` is None.

    Raises:
        ConfigError: An unknown key, a bad value or a combination that cannot run;
            ``field`` is the dotted key (``strategy.devices[1]``).
        ConfigTypeError: A value of the wrong type.
    """
    if data is None or isinstance(data, StrategyConfig):
        return data
    if isinstance(data, str):
        data = {"type": data}
    if not isinstance(data, Mapping):
        raise ConfigTypeError(path, data, "must be a mapping with a 'type' (or a type name)")
    names = [f.name for f in attrs.fields(StrategyConfig)]
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{path}.{key}", value, f"unknown key (valid: {', '.join(names)})")
    if "type" not in data:
        raise ConfigError(f"{path}.type", None, f"is required (valid: {', '.join(_KINDS)})")
    try:
        return StrategyConfig(**dict(data))
    except FieldError as err:
        raise type(err)(f"{path}.{err.field}", err.value, err.problem) from None


def device_kind(name: str) -> DeviceKind:
    """The kind of a device name (``/cpu:0``, ``/device:GPU:1``, ``/job:w/task:0/gpu:0``)."""
    found = _DEVICE.search(name.strip()) if isinstance(name, str) else None
    if found is None:
        return DeviceKind.OTHER
    kind = found.group(1).upper()
    return DeviceKind(kind) if kind in ("CPU", "GPU") else DeviceKind.OTHER


def cross_device_ops(
    choice: CrossDeviceOps, devices: Sequence[DeviceKind], *, field: str = "cross_device_ops"
) -> CrossDeviceOps:
    """The cross-device ops MirroredStrategy uses over ``devices``.

    ``auto`` picks ReductionToOneDevice unless every device is a GPU: TF 2.15's default
    (collective all-reduce, chosen when the strategy is built eagerly) hangs inside the
    Estimator's graph session when the devices are CPUs. On GPUs only, ``auto`` keeps
    TF's default (COLLECTIVE). NCCL and hierarchical copy need GPUs only.

    Args:
        choice: The configured value (COLLECTIVE: a strategy built by user code with
            TF's default).
        devices: The kinds of the strategy's devices.
        field: The key named in the error.

    Returns:
        The ops to build.

    Raises:
        StrategyError: NCCL, hierarchical copy or the collective default with a device
            that is not a GPU, over more than one device.
    """
    gpus_only = bool(devices) and all(d is DeviceKind.GPU for d in devices)
    if choice is CrossDeviceOps.AUTO:
        return CrossDeviceOps.COLLECTIVE if gpus_only else CrossDeviceOps.REDUCTION_TO_ONE_DEVICE
    if choice is CrossDeviceOps.REDUCTION_TO_ONE_DEVICE or gpus_only or len(devices) <= 1:
        return choice
    shown = ", ".join(d.value for d in devices)
    if choice is CrossDeviceOps.COLLECTIVE:
        raise StrategyError(
            field,
            "TF's default (collective all-reduce)",
            f"hangs in an Estimator's session over non-GPU devices ({shown}); build "
            "MirroredStrategy with cross_device_ops=tf.distribute.ReductionToOneDevice()",
        )
    raise StrategyError(field, choice.value, f"needs GPU devices only (devices: {shown}); use auto")


@attrs.frozen(kw_only=True)
class TaskStrategies:
    """Which strategy a task's RunConfig gets for training and for evaluation.

    Attributes:
        train: ``train_distribute`` (None: no strategy).
        eval: ``eval_distribute`` (None: no strategy).
    """

    train: StrategyKind | None
    eval: StrategyKind | None


def task_strategies(kind: StrategyKind | None, task_type: TaskType | None) -> TaskStrategies:
    """The strategies a task builds its RunConfig with.

    An evaluator never trains; under multi_worker_mirrored it gets no strategy at all,
    as TF requires (its Estimator.evaluate refuses a multi-worker eval_distribute
    outside STANDALONE_CLIENT mode, and an evaluator is not a collective member). The
    chief and workers of multi_worker_mirrored evaluate without a strategy for the same
    reason. Mirrored evaluates over the same devices it trains on.
    """
    if kind is None:
        return TaskStrategies(train=None, eval=None)
    if kind is StrategyKind.MULTI_WORKER_MIRRORED:
        if task_type is TaskType.EVALUATOR:
            return TaskStrategies(train=None, eval=None)
        return TaskStrategies(train=kind, eval=None)
    if task_type is TaskType.EVALUATOR:
        return TaskStrategies(train=None, eval=kind)
    return TaskStrategies(train=kind, eval=kind)


#: The schedules a chief or worker of a multi_worker_mirrored cluster may run: every
#: training task must train (an all-reduce waits for all of them), to the same steps.
MULTI_WORKER_TRAINER_SCHEDULES = frozenset(
    {Schedule.TRAIN, Schedule.TRAIN_AND_EVALUATE, Schedule.EVALUATE}
)


def _trains_in_cluster(config: TFConfig) -> bool:
    return config.is_distributed and config.task_type in (
        TaskType.CHIEF,
        TaskType.MASTER,
        TaskType.WORKER,
    )


def check_setup(kind: StrategyKind | None, schedule: Schedule | None, config: TFConfig) -> None:
    """Refuse, before training, a strategy with a schedule or cluster it cannot run.

    Args:
        kind: The strategy the task trains with (None: none; nothing is refused).
        schedule: The schedule about to run (None: a method an Experiment subclass
            defines; only the cluster rules apply, what it runs is its author's call).
        config: The task's TF_CONFIG.

    Raises:
        StrategyError: One line saying what cannot run and why:
            mirrored on a chief/worker/ps of a cluster (it is one machine's strategy);
            multi_worker_mirrored with a ps job (all-reduce has no ps), with a
            ``master`` job (TF's Estimator uses its distribute coordinator only with
            ``chief``), on a ps task, or on a chief/worker with a schedule other than
            train, train_and_evaluate or evaluate (the others stop training early,
            train in pieces or not at all, and the other tasks' all-reduce would wait
            forever).
    """
    if kind is None or config.task_type is TaskType.EVALUATOR:
        return
    if kind is StrategyKind.MIRRORED:
        if config.is_distributed:
            raise StrategyError(
                "strategy.type",
                kind.value,
                f"trains on one machine, but TF_CONFIG names a cluster of {config.num_tasks} "
                "tasks; use multi_worker_mirrored (chief + workers) or drop the cluster",
            )
        return
    if not config.is_distributed:
        return
    if "ps" in config.cluster:
        raise StrategyError(
            "strategy.type",
            kind.value,
            "is all-reduce between the chief and workers: TF_CONFIG must not have a ps job",
        )
    if "master" in config.cluster:
        raise StrategyError(
            "strategy.type",
            kind.value,
            "needs the chief's job named 'chief', not 'master': TF's Estimator does not "
            "coordinate a cluster with a 'master' job",
        )
    if schedule is None or not _trains_in_cluster(config):
        return
    if schedule not in MULTI_WORKER_TRAINER_SCHEDULES:
        allowed = ", ".join(sorted(s.value for s in MULTI_WORKER_TRAINER_SCHEDULES))
        raise StrategyError(
            "schedule",
            schedule.value,
            f"cannot run on a {config.task_type.value if config.task_type else 'task'} "
            f"under multi_worker_mirrored: every chief and worker must train to the same "
            f"step together (allowed: {allowed}; continuous evaluation runs on the evaluator)",
        )


def strategy_owns_server(kind: StrategyKind | None, config: TFConfig) -> bool:
    """Whether the strategy, not the shell, starts this task's TensorFlow server.

    MultiWorkerMirroredStrategy starts the task's server when it is built (TF 2.15,
    eagerly, from TF_CONFIG); a second server on the same port cannot bind.
    """
    return kind is StrategyKind.MULTI_WORKER_MIRRORED and _trains_in_cluster(config)


def workers_wait_for_chief(kind: StrategyKind | None) -> bool:
    """Whether a worker waits for the chief's model (and its start delay) before training.

    Not under multi_worker_mirrored: there is no ps holding the model, every worker
    initialises its own copy, and the chief's first all-reduce waits for every worker,
    so a worker that waited for the chief would wait forever.
    """
    return kind is not StrategyKind.MULTI_WORKER_MIRRORED


def supports_saving_listeners(kind: StrategyKind | None, config: TFConfig) -> bool:
    """Whether ``Estimator.train`` accepts saving listeners under this strategy here.

    TF 2.15's Estimator refuses them under MultiWorkerMirroredStrategy in a cluster
    ("Saving listenor is not supported"): a chief's train_and_evaluate then evaluates
    after training only, and evaluations during training are the evaluator's.
    """
    return not (kind is StrategyKind.MULTI_WORKER_MIRRORED and _trains_in_cluster(config))
