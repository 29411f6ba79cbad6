"""TF_CONFIG (JSON text or dict) parsed into a typed cluster and task record."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from core.errors import TFConfigError


class TaskType(enum.Enum):
    """The task types of a TensorFlow cluster."""

    CHIEF = "chief"
    MASTER = "master"
    WORKER = "worker"
    PS = "ps"
    EVALUATOR = "evaluator"


_VALID_TYPES = ", ".join(t.value for t in TaskType)
_KNOWN_TYPES = frozenset(t.value for t in TaskType)


def _freeze_cluster(jobs: Mapping[str, Any]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({name: tuple(addresses) for name, addresses in jobs.items()})


def _default_task_job(config: TFConfig) -> str | None:
    return None if config.task_type is None else config.task_type.value


@attrs.frozen(kw_only=True)
class TFConfig:
    """A parsed TF_CONFIG: the cluster's jobs and this task.

    Attributes:
        cluster: Job name → task addresses (``host:port``); empty when not distributed.
        task_type: This task's type, or None when TF_CONFIG names none or names a job
            that is not one of the `TaskType` values (see ``task_job``).
        task_index: This task's index in its job.
        task_job: This task's type as TF_CONFIG spells it: ``task_type.value``, or the
            name of an extra job of the cluster (e.g. ``"foo"``), which TF's RunConfig
            accepts as a task type; None when TF_CONFIG names no task type.
    """

    cluster: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict, converter=_freeze_cluster, hash=False
    )
    task_type: TaskType | None = None
    task_index: int = 0
    task_job: str | None = attrs.field(default=attrs.Factory(_default_task_job, takes_self=True))

    @task_job.validator
    def _check_task_job(self, _attribute: attrs.Attribute[Any], value: str | None) -> None:
        if self.task_type is not None and value != self.task_type.value:
            raise TFConfigError("task.type", value, f"must be {self.task_type.value!r}")
        if self.task_type is None and value in _KNOWN_TYPES:
            raise TFConfigError("task.type", value, "is a TaskType: give it as task_type")

    @classmethod
    def local(cls) -> TFConfig:
        """The config of a single local process (no TF_CONFIG)."""
        return cls()

    @classmethod
    def from_json(cls, text: str | None) -> TFConfig:
        """Parse the TF_CONFIG environment variable's text.

        Args:
            text: The JSON text, or None (the variable is unset) for a local run.

        Returns:
            The parsed record.

        Raises:
            TFConfigError: Empty or blank text (TF's ``json.loads`` fails on it, so it is
                not "unset"), malformed JSON, or any problem `from_dict` reports.
        """
        if text is None:
            return cls.local()
        if not text.strip():
            raise TFConfigError(
                "TF_CONFIG",
                text,
                "is set but empty, which TensorFlow cannot parse: unset it for a local run, "
                "or give a JSON object",
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise TFConfigError("TF_CONFIG", shown, f"is not valid JSON ({err.msg})") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> TFConfig:
        """Validate a decoded TF_CONFIG.

        Raises:
            TFConfigError: Naming the field and value: not an object, a task type that
                is neither a `TaskType` nor a job of the cluster, an evaluator inside the
                cluster, a missing task type in a multi-task cluster, an index out of
                range, a bad address list or port, a cluster without exactly one chief
                or master (TF's RunConfig refuses one: "it must have one chief node").
        """
        if not isinstance(data, Mapping):
            raise TFConfigError("TF_CONFIG", data, "must be a JSON object")
        raw_cluster = data.get("cluster")
        cluster = _parse_cluster({} if raw_cluster is None else raw_cluster)
        task = data.get("task")
        task = {} if task is None else task
        if not isinstance(task, Mapping):
            raise TFConfigError("task", task, "must be an object with 'type' and 'index'")
        n_tasks = sum(len(a) for a in cluster.values())
        raw_type = task.get("type")
        if raw_type in (None, ""):
            if n_tasks > 1:
                raise TFConfigError(
                    "task.type", raw_type, f"is required in a cluster of {n_tasks} tasks"
                )
            _require_chief(cluster)
            return cls(cluster=cluster)
        if not isinstance(raw_type, str) or (
            raw_type not in _KNOWN_TYPES and raw_type not in cluster
        ):
            jobs = [job for job in cluster if job not in _KNOWN_TYPES]
            also = f"; or a job of the cluster: {', '.join(jobs)}" if jobs else ""
            hint = ""
            if isinstance(raw_type, str) and raw_type.lower() in _KNOWN_TYPES:
                hint = f"; did you mean {raw_type.lower()!r}?"
            raise TFConfigError(
                "task.type", raw_type, f"is not a task type (valid: {_VALID_TYPES}{also}){hint}"
            )
        # A job of the cluster that is not a TaskType (e.g. "foo") is a task type for TF's
        # RunConfig too: it has an address but no default schedule.
        task_type = TaskType(raw_type) if raw_type in _KNOWN_TYPES else None
        index = task.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise TFConfigError("task.index", index, "must be an int")
        if task_type is TaskType.EVALUATOR:
            if index < 0:
                raise TFConfigError("task.index", index, "must be >= 0")
        else:
            if raw_type not in cluster:
                listed = ", ".join(cluster) or "none"
                raise TFConfigError(
                    "task.type", raw_type, f"has no job in the cluster (jobs: {listed})"
                )
            size = len(cluster[raw_type])
            if not 0 <= index < size:
                raise TFConfigError(
                    "task.index", index, f"is out of range for job {raw_type!r} of {size} tasks"
                )
        _require_chief(cluster)
        return cls(cluster=cluster, task_type=task_type, task_index=index, task_job=raw_type)

    @property
    def num_tasks(self) -> int:
        """Tasks listed in the cluster (the evaluator is never listed)."""
        return sum(len(addresses) for addresses in self.cluster.values())

    @property
    def is_distributed(self) -> bool:
        """More than one task in the cluster, or this task is an evaluator of one."""
        return self.num_tasks > 1 or (self.task_type is TaskType.EVALUATOR and self.num_tasks > 0)

    @property
    def is_chief(self) -> bool:
        """The chief (or master); else worker 0 when there is no chief or master.

        A local run (no task type) is its own chief; a task of an extra job is not.
        """
        if self.task_type is None:
            return self.task_job is None
        if self.task_type in (TaskType.CHIEF, TaskType.MASTER):
            return True
        has_chief = "chief" in self.cluster or "master" in self.cluster
        return self.task_type is TaskType.WORKER and self.task_index == 0 and not has_chief

    @property
    def address(self) -> str | None:
        """This task's ``host:port`` in the cluster (None for the evaluator or local)."""
        if self.task_job is None or self.task_job not in self.cluster:
            return None
        return self.cluster[self.task_job][self.task_index]

    @property
    def task_name(self) -> str | None:
        """``"<type>-<index>"`` (e.g. ``chief-0``, ``worker-1``), the name task records use;
        None for a local run."""
        return None if self.task_job is None else f"{self.task_job}-{self.task_index}"

    @property
    def num_workers(self) -> int:
        """Tasks that train: chief/master plus workers."""
        return sum(len(self.cluster.get(job, ())) for job in ("chief", "master", "worker"))

    def as_dict(self) -> dict[str, Any]:
        """The TF_CONFIG document (json.dumps-able) for this record."""
        out: dict[str, Any] = {"cluster": {k: list(v) for k, v in self.cluster.items()}}
        if self.task_job is not None:
            out["task"] = {"type": self.task_job, "index": self.task_index}
        return out


_PORT_RANGE = "port must be 1-65535"


def _address_problem(address: Any) -> str | None:
    """What is wrong with a cluster address, or None for a good ``host:port``."""
    if not isinstance(address, str):
        return "must be 'host:port'"
    host, _, port = address.rpartition(":")
    digits = port.removeprefix("-")
    if not host or not (digits.isascii() and digits.isdigit()):
        return "must be 'host:port'"
    if not 0 < int(port) < 65536:
        return _PORT_RANGE
    return None


def _parse_cluster(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise TFConfigError("cluster", raw, "must be an object of job name -> addresses")
    cluster: dict[str, tuple[str, ...]] = {}
    for job, addresses in raw.items():
        if job == TaskType.EVALUATOR.value:
            raise TFConfigError(
                "cluster.evaluator",
                addresses,
                "the evaluator must not be listed in the cluster; give it only in 'task'",
            )
        if not isinstance(job, str) or not job:
            raise TFConfigError("cluster", job, "job names must be non-empty strings")
        if isinstance(addresses, str) or not isinstance(addresses, (list, tuple)):
            raise TFConfigError(f"cluster.{job}", addresses, "must be a list of 'host:port'")
        for i, address in enumerate(addresses):
            problem = _address_problem(address)
            if problem is not None:
                raise TFConfigError(f"cluster.{job}[{i}]", address, problem)
        cluster[job] = tuple(addresses)
    for job in ("chief", "master"):
        if job in cluster and len(cluster[job]) != 1:
            raise TFConfigError(f"cluster.{job}", list(cluster[job]), "must list exactly 1 task")
    if "chief" in cluster and "master" in cluster:
        raise TFConfigError("cluster", sorted(cluster), "has both 'chief' and 'master'")
    return cluster


def _require_chief(cluster: Mapping[str, tuple[str, ...]]) -> None:
    """TF's RunConfig refuses a cluster without a chief (or master): so do we, first."""
    if cluster and "chief" not in cluster and "master" not in cluster:
        raise TFConfigError(
            "cluster",
            sorted(cluster),
            f"has no 'chief' (or 'master') job, which tf.estimator's RunConfig needs "
            f"(jobs: {', '.join(cluster)}): list one task under 'chief'",
        )
