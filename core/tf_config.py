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
_CLUSTER_JOBS = ", ".join(t.value for t in TaskType if t is not TaskType.EVALUATOR)


def _freeze_cluster(jobs: Mapping[str, Any]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({name: tuple(addresses) for name, addresses in jobs.items()})


@attrs.frozen(kw_only=True)
class TFConfig:
    """A parsed TF_CONFIG: the cluster's jobs and this task.

    Attributes:
        cluster: Job name → task addresses (``host:port``); empty when not distributed.
        task_type: This task's type, or None when TF_CONFIG names none.
        task_index: This task's index in its job.
    """

    cluster: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict, converter=_freeze_cluster, hash=False
    )
    task_type: TaskType | None = None
    task_index: int = 0

    @classmethod
    def local(cls) -> TFConfig:
        """The config of a single local process (no TF_CONFIG)."""
        return cls()

    @classmethod
    def from_json(cls, text: str | None) -> TFConfig:
        """Parse the TF_CONFIG environment variable's text.

        Args:
            text: The JSON text, or None / blank for a local run.

        Returns:
            The parsed record.

        Raises:
            TFConfigError: Malformed JSON or any problem `from_dict` reports.
        """
        if text is None or not text.strip():
            return cls.local()
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
            TFConfigError: Naming the field and value: not an object, an unknown task
                type or job, an evaluator inside the cluster, a missing task type in a
                multi-task cluster, an index out of range, a bad address list.
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
            return cls(cluster=cluster)
        try:
            task_type = TaskType(raw_type)
        except ValueError:
            raise TFConfigError(
                "task.type", raw_type, f"is not a task type (valid: {_VALID_TYPES})"
            ) from None
        index = task.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise TFConfigError("task.index", index, "must be an int")
        if task_type is TaskType.EVALUATOR:
            if index < 0:
                raise TFConfigError("task.index", index, "must be >= 0")
        else:
            if task_type.value not in cluster:
                jobs = ", ".join(cluster) or "none"
                raise TFConfigError(
                    "task.type", raw_type, f"has no job in the cluster (jobs: {jobs})"
                )
            size = len(cluster[task_type.value])
            if not 0 <= index < size:
                raise TFConfigError(
                    "task.index", index, f"is out of range for job {raw_type!r} of {size} tasks"
                )
        return cls(cluster=cluster, task_type=task_type, task_index=index)

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
        """The chief (or master); else worker 0 when there is no chief or master."""
        if self.task_type is None:
            return True
        if self.task_type in (TaskType.CHIEF, TaskType.MASTER):
            return True
        has_chief = "chief" in self.cluster or "master" in self.cluster
        return self.task_type is TaskType.WORKER and self.task_index == 0 and not has_chief

    @property
    def address(self) -> str | None:
        """This task's ``host:port`` in the cluster (None for the evaluator or local)."""
        if self.task_type is None or self.task_type.value not in self.cluster:
            return None
        return self.cluster[self.task_type.value][self.task_index]

    @property
    def num_workers(self) -> int:
        """Tasks that train: chief/master plus workers."""
        return sum(len(self.cluster.get(job, ())) for job in ("chief", "master", "worker"))

    def as_dict(self) -> dict[str, Any]:
        """The TF_CONFIG document (json.dumps-able) for this record."""
        out: dict[str, Any] = {"cluster": {k: list(v) for k, v in self.cluster.items()}}
        if self.task_type is not None:
            out["task"] = {"type": self.task_type.value, "index": self.task_index}
        return out


def _is_address(address: Any) -> bool:
    if not isinstance(address, str):
        return False
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


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
        if job not in {t.value for t in TaskType}:
            raise TFConfigError(
                f"cluster.{job}", addresses, f"unknown job (valid: {_CLUSTER_JOBS})"
            )
        if isinstance(addresses, str) or not isinstance(addresses, (list, tuple)):
            raise TFConfigError(f"cluster.{job}", addresses, "must be a list of 'host:port'")
        for i, address in enumerate(addresses):
            if not _is_address(address):
                raise TFConfigError(f"cluster.{job}[{i}]", address, "must be 'host:port'")
        cluster[job] = tuple(addresses)
    for job in ("chief", "master"):
        if len(cluster.get(job, ())) > 1:
            raise TFConfigError(f"cluster.{job}", list(cluster[job]), "must list exactly 1 task")
    if "chief" in cluster and "master" in cluster:
        raise TFConfigError("cluster", sorted(cluster), "has both 'chief' and 'master'")
    return cluster
