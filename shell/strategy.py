"""tf.distribute strategies for Estimators: build them, put them in a RunConfig, train under them.

`core.strategy` decides (which ops, which task gets which strategy, what may run);
this module builds the TensorFlow objects and applies the decisions:

- `run_config` builds the ``RunConfig(train_distribute=..., eval_distribute=...)`` of a
  ``strategy`` config record for this task (an evaluator gets none under
  multi_worker_mirrored, as TF requires);
- `check_setup` refuses a strategy/schedule/cluster combination before training;
- `strategy_owns_server` tells the Experiment not to start a second server on the port
  MultiWorkerMirroredStrategy already serves;
- `train` runs ``Estimator.train`` inside TF's distribute coordinator when the RunConfig
  is in its INDEPENDENT_WORKER mode (where a bare ``Estimator.train`` refuses to run),
  with the replicas' per-device inputs built without autotune (`shell.replica_input`).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from tensorflow.python.distribute import distribute_coordinator as _dc
from tensorflow.python.distribute import distribute_coordinator_context as _dc_context
from tensorflow.python.distribute import estimator_training as _dc_training

from core import strategy as rules
from core.schedule import Schedule
from core.strategy import (
    ALL_GPUS,
    Communication,
    CrossDeviceOps,
    StrategyConfig,
    StrategyError,
    StrategyKind,
)
from core.tf_config import TFConfig
from shell._tf import tf
from shell.replica_input import no_replica_autotune

log = logging.getLogger("tfexperiment")

__all__ = [
    "build_strategy",
    "check_setup",
    "run_config",
    "strategy_kind",
    "strategy_owns_server",
    "train",
    "workers_wait_for_chief",
]


def _tf_config() -> TFConfig:
    return TFConfig.from_json(os.environ.get("TF_CONFIG"))


def _devices(spec: StrategyConfig) -> list[str] | None:
    if spec.devices is None:
        return None
    if spec.devices == ALL_GPUS:
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not gpus:
            raise StrategyError("strategy.devices", ALL_GPUS, "no GPU is visible to TensorFlow")
        return gpus
    return list(spec.devices)


def _default_devices() -> list[str]:
    """The devices MirroredStrategy picks when given none: every GPU, else the CPU."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    return gpus or ["/cpu:0"]


def _ops_object(ops: CrossDeviceOps) -> Any:
    if ops is CrossDeviceOps.REDUCTION_TO_ONE_DEVICE:
        return tf.distribute.ReductionToOneDevice()
    if ops is CrossDeviceOps.NCCL:
        return tf.distribute.NcclAllReduce()
    if ops is CrossDeviceOps.HIERARCHICAL_COPY:
        return tf.distribute.HierarchicalCopyAllReduce()
    return None  # COLLECTIVE: TF's default


def build_strategy(spec: StrategyConfig) -> Any:
    """The tf.distribute strategy object of a ``strategy`` record.

    Raises:
        StrategyError: ``all_gpus`` with no GPU visible, or cross-device ops that do
            not work on the devices (see `core.strategy.cross_device_ops`).
    """
    if spec.kind is StrategyKind.MULTI_WORKER_MIRRORED:
        implementation = {
            Communication.AUTO: tf.distribute.experimental.CommunicationImplementation.AUTO,
            Communication.RING: tf.distribute.experimental.CommunicationImplementation.RING,
            Communication.NCCL: tf.distribute.experimental.CommunicationImplementation.NCCL,
        }[Communication(spec.communication)]
        options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    devices = _devices(spec)
    names = devices if devices is not None else _default_devices()
    ops = rules.cross_device_ops(
        spec.ops,
        [rules.device_kind(d) for d in names],
        field="strategy.cross_device_ops",
    )
    log.info("MirroredStrategy over %s with %s", ", ".join(names), ops.value)
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=_ops_object(ops))


def run_config(spec: StrategyConfig | None, **kwargs: Any) -> Any:
    """A ``tf.estimator.RunConfig(**kwargs)`` with this task's strategies.

    The task comes from TF_CONFIG: an evaluator gets no strategy under
    multi_worker_mirrored; mirrored trains and evaluates over the same devices. A
    strategy that cannot run in this cluster is refused before any is built (building
    MultiWorkerMirroredStrategy starts the task's server).

    Args:
        spec: The ``strategy`` record (None: a RunConfig without strategies).
        **kwargs: Any other RunConfig argument (model_dir, save_checkpoints_steps, ...).

    Raises:
        StrategyError: The cluster rules of `core.strategy.check_setup` (mirrored in a
            cluster; multi_worker_mirrored with a ps or master job); see `build_strategy`.
    """
    task = _tf_config()
    kind = spec.kind if spec else None
    rules.check_setup(kind, None, task)
    wanted = rules.task_strategies(kind, task.task_type)
    train_distribute = build_strategy(spec) if spec and wanted.train else None
    eval_distribute = None
    if spec is not None and wanted.eval is not None:
        eval_distribute = train_distribute or build_strategy(spec)
    return tf.estimator.RunConfig(
        train_distribute=train_distribute, eval_distribute=eval_distribute, **kwargs
    )


def _config_of(estimator: Any) -> Any:
    return getattr(estimator, "config", None)


def _kind_of(strategy: Any) -> StrategyKind | None:
    if strategy is None:
        return None
    extended = getattr(strategy, "extended", None)
    names = {cls.__name__ for cls in type(extended).__mro__}
    if "CollectiveAllReduceExtended" in names:
        return StrategyKind.MULTI_WORKER_MIRRORED
    if "MirroredExtended" in names:
        return StrategyKind.MIRRORED
    return None


def strategy_kind(estimator: Any) -> StrategyKind | None:
    """The kind of the estimator's ``train_distribute`` (else ``eval_distribute``), if any."""
    config = _config_of(estimator)
    train = getattr(config, "train_distribute", None)
    return _kind_of(train) or _kind_of(getattr(config, "eval_distribute", None))


def _train_kind(estimator: Any) -> StrategyKind | None:
    return _kind_of(getattr(_config_of(estimator), "train_distribute", None))


def _check_mirrored_ops(strategy: Any, field: str) -> None:
    """Refuse a MirroredStrategy built by user code whose ops hang on its devices."""
    if _kind_of(strategy) is not StrategyKind.MIRRORED:
        return
    extended = strategy.extended
    ops = getattr(extended, "_cross_device_ops", None)
    found = {
        "ReductionToOneDevice": CrossDeviceOps.REDUCTION_TO_ONE_DEVICE,
        "NcclAllReduce": CrossDeviceOps.NCCL,
        "HierarchicalCopyAllReduce": CrossDeviceOps.HIERARCHICAL_COPY,
    }.get(type(ops).__name__, CrossDeviceOps.COLLECTIVE)
    devices: Sequence[str] = tuple(getattr(extended, "worker_devices", ()))
    rules.cross_device_ops(found, [rules.device_kind(d) for d in devices], field=field)


def check_setup(estimator: Any, schedule: Schedule | None, config: TFConfig | None = None) -> None:
    """Refuse, before training, a strategy that cannot run this schedule on this task.

    Args:
        estimator: The Experiment's estimator.
        schedule: The schedule about to run (None: an Experiment subclass's own method).
        config: The task's TF_CONFIG (None: read the environment).

    Raises:
        StrategyError: One line naming the key and why (see `core.strategy.check_setup`
            and `core.strategy.cross_device_ops`).
    """
    run = _config_of(estimator)
    _check_mirrored_ops(getattr(run, "train_distribute", None), "train_distribute")
    _check_mirrored_ops(getattr(run, "eval_distribute", None), "eval_distribute")
    rules.check_setup(_train_kind(estimator), schedule, config or _tf_config())


def strategy_owns_server(estimator: Any, config: TFConfig) -> bool:
    """Whether the estimator's strategy has started (or will start) this task's server.

    TF 2.15's MultiWorkerMirroredStrategy starts the std server of a chief or worker
    when it is built from TF_CONFIG (``extended._std_server_started``); the shell must
    not start a second one on the same port.
    """
    strategy = getattr(_config_of(estimator), "train_distribute", None)
    if strategy is None:
        return False
    started = bool(getattr(strategy.extended, "_std_server_started", False))
    return started or rules.strategy_owns_server(_kind_of(strategy), config)


def workers_wait_for_chief(estimator: Any) -> bool:
    """Whether a worker waits for the chief's model and its start delay before training."""
    return rules.workers_wait_for_chief(_train_kind(estimator))


def _in_coordinator_mode(estimator: Any) -> bool:
    return bool(getattr(_config_of(estimator), "_distribute_coordinator_mode", None))


def _train_without_replica_autotune(
    estimator: Any,
    input_fn: Callable[..., Any],
    hooks: Sequence[Any],
    steps: int | None,
    max_steps: int | None,
    listeners: list[Any] | None,
) -> None:
    """``estimator.train(...)`` with the replicas' inputs built without autotune."""
    with no_replica_autotune():
        estimator.train(
            input_fn,
            hooks=list(hooks),
            steps=steps,
            max_steps=max_steps,
            saving_listeners=listeners,
        )


def train(
    estimator: Any,
    input_fn: Callable[..., Any],
    *,
    hooks: Sequence[Any] = (),
    steps: int | None = None,
    max_steps: int | None = None,
    saving_listeners: Sequence[Any] | None = None,
) -> Any:
    """``estimator.train(...)``, inside TF's distribute coordinator when its RunConfig needs it.

    In INDEPENDENT_WORKER mode (a chief/worker with a train_distribute in a TF_CONFIG
    cluster) ``Estimator.train`` refuses to run on its own. This does what
    ``tf.estimator.train_and_evaluate`` does there: runs a worker function under the
    coordinator, which trains a copy of the estimator whose RunConfig is set from the
    worker context (its master target, ``is_chief``, the worker count) with the
    coordinator mode cleared. Elsewhere it calls ``estimator.train`` directly.

    Returns:
        The estimator.
    """
    listeners = list(saving_listeners) if saving_listeners else None
    if not _in_coordinator_mode(estimator):
        _train_without_replica_autotune(estimator, input_fn, hooks, steps, max_steps, listeners)
        return estimator
    config = estimator.config
    task = _tf_config()
    if listeners and not rules.supports_saving_listeners(_train_kind(estimator), task):
        log.info(
            "TF's Estimator takes no saving listeners under MultiWorkerMirroredStrategy: "
            "this task evaluates after training only (the evaluator evaluates during it)"
        )
        listeners = None

    def worker_fn(strategy: Any) -> None:
        local = copy.deepcopy(estimator)
        local._config._train_distribute = strategy
        _dc_training._init_run_config_from_worker_context(
            local._config, _dc_context.get_current_worker_context()
        )
        local._train_distribution = strategy
        local._config._distribute_coordinator_mode = None
        _train_without_replica_autotune(local, input_fn, hooks, steps, max_steps, listeners)

    log.info("training under the distribute coordinator (%s)", config._distribute_coordinator_mode)
    _dc.run_distribute_coordinator(
        worker_fn,
        config.train_distribute,
        mode=config._distribute_coordinator_mode,
        session_config=config.session_config,
    )
    return estimator
