"""A local cluster's plan: its tasks, their TF_CONFIG documents, and how its run ended."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from core.errors import ConfigError

HOST = "127.0.0.1"
INTERRUPTED = 130
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@attrs.frozen(kw_only=True)
class Task:
    """One task of a cluster.

    Attributes:
        type: ``ps``, ``chief`` (or ``master``), ``worker`` or ``evaluator``.
        index: The task's index in its job.
    """

    type: str
    index: int = 0

    @property
    def name(self) -> str:
        """``<type>-<index>``, e.g. ``worker-1`` (also the log prefix)."""
        return f"{self.type}-{self.index}"


@attrs.frozen(kw_only=True)
class TaskExit:
    """How one run of a task's process ended.

    Attributes:
        task: The task's name, e.g. ``worker-1``.
        pid: The process id it ran as.
        returncode: Its exit status (negative: killed by that signal).
        wall_secs: Seconds from its start to its exit.
    """

    task: str
    pid: int
    returncode: int
    wall_secs: float


@attrs.frozen(kw_only=True)
class ClusterResult:
    """What a local cluster run ended with.

    Attributes:
        exits: The last exit of every task, in launch order.
        failed_task: The task whose failure ended the run, or None.
        reason: Why the run failed (empty when every task exited 0).
        wall_secs: Seconds from the first start to the last exit.
        lines: Each task's output lines (all its runs), without the prefix.
        tf_configs: The TF_CONFIG document each task was given.
    """

    exits: tuple[TaskExit, ...]
    failed_task: str | None = None
    reason: str = ""
    wall_secs: float = 0.0
    lines: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, hash=False)
    tf_configs: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        """Whether every task exited with status 0."""
        return not self.reason and all(e.returncode == 0 for e in self.exits)

    @property
    def returncode(self) -> int:
        """0 when ok, 130 when interrupted, else 1."""
        if self.ok:
            return 0
        return INTERRUPTED if self.reason == "interrupted" else 1

    def exit_of(self, task: str) -> TaskExit:
        """The last exit of ``task`` (e.g. ``"chief-0"``).

        Raises:
            KeyError: No such task ran.
        """
        for found in self.exits:
            if found.task == task:
                return found
        raise KeyError(task)


def cluster_tasks(
    *, ps: int = 1, workers: int = 2, chief: bool = True, evaluator: bool = True
) -> tuple[Task, ...]:
    """The tasks of a cluster, in launch order: ps, chief, workers, evaluator.

    Args:
        ps: Parameter servers.
        workers: Workers (besides the chief).
        chief: Name the chief's job ``chief``; False names it ``master``, the legacy
            name (TF's Estimator requires one of the two in every cluster).
        evaluator: Include an ``evaluator`` (never listed in the cluster spec).

    Raises:
        ConfigError: A negative count.
    """
    for field, count in (("ps", ps), ("workers", workers)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(field, count, "must be an int >= 0")
    tasks = [Task(type="ps", index=i) for i in range(ps)]
    tasks.append(Task(type="chief" if chief else "master"))
    tasks += [Task(type="worker", index=i) for i in range(workers)]
    if evaluator:
        tasks.append(Task(type="evaluator"))
    return tuple(tasks)


def tf_configs(tasks: Sequence[Task], ports: Sequence[int], host: str = HOST) -> dict[str, Any]:
    """Each task's TF_CONFIG document (the evaluator gets the cluster without itself).

    Args:
        tasks: The tasks; those other than the evaluator get one port each, in order.
        ports: One port per clustered task.
        host: The address every task binds.
    """
    clustered = [t for t in tasks if t.type != "evaluator"]
    if len(ports) != len(clustered):
        raise ConfigError("ports", list(ports), f"must have {len(clustered)} entries")
    cluster: dict[str, list[str]] = {}
    for task, port in zip(clustered, ports):
        cluster.setdefault(task.type, []).append(f"{host}:{port}")
    return {
        t.name: {
            "cluster": cluster,
            "task": {"type": t.type, "index": t.index},
            "environment": "cloud",
        }
        for t in tasks
    }


def check_spec(experiment_fn_spec: str) -> str:
    """Return ``experiment_fn_spec`` if it looks like ``package.module:function``.

    Raises:
        ConfigError: It does not.
    """
    if not isinstance(experiment_fn_spec, str) or not _SPEC.match(experiment_fn_spec):
        raise ConfigError("experiment_fn", experiment_fn_spec, "must be 'package.module:function'")
    return experiment_fn_spec
