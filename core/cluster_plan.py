"""A local cluster's plan: its tasks, their TF_CONFIG documents, when and how its run ends."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from core._validate import check, non_negative_int, optional, positive_secs
from core.errors import ConfigError

HOST = "127.0.0.1"
INTERRUPTED = 130
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: A local cluster runs at most this many tasks per CPU core, and never more than MAX_TASKS.
TASKS_PER_CORE = 4
MAX_TASKS = 32
#: ... but always at least this many (the default cluster has 5 tasks).
MIN_TASK_CAP = 8


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


class ClusterKind(enum.Enum):
    """What the launcher does next while its tasks run."""

    WAIT = "wait"
    END = "end"


class ClusterReason(enum.Enum):
    """Why the launcher waits or ends the run."""

    RUNNING = "tasks are still running"
    ALL_EXITED = "every task exited"
    TASK_FAILED = "a task exited with a non-zero status"
    TIMED_OUT = "the run timed out"


@attrs.frozen(kw_only=True)
class ClusterDecision:
    """One decision of the launcher's wait.

    Attributes:
        kind: WAIT (poll again) or END (stop waiting).
        reason: Why.
        task: The failed task (TASK_FAILED), or the first task still running (TIMED_OUT).
        running: The tasks still running (TIMED_OUT).
    """

    kind: ClusterKind
    reason: ClusterReason
    task: str | None = None
    running: tuple[str, ...] = ()


def cluster_decision(
    exits: Mapping[str, TaskExit | None],
    *,
    now: float,
    deadline: float | None,
    fail_fast: bool = True,
) -> ClusterDecision:
    """Decide whether a local cluster run goes on, and why it ends.

    Args:
        exits: Each started task's exit, or None while it runs (in launch order).
        now: The current time.
        deadline: When to give up (same clock), or None.
        fail_fast: A non-zero exit ends the run at once.

    Returns:
        END with TASK_FAILED (the first failed task, when ``fail_fast``), ALL_EXITED,
        or TIMED_OUT (past the deadline); else WAIT.
    """
    if fail_fast:
        bad = [e for e in exits.values() if e is not None and e.returncode != 0]
        if bad:
            return ClusterDecision(
                kind=ClusterKind.END, reason=ClusterReason.TASK_FAILED, task=bad[0].task
            )
    running = tuple(sorted(name for name, e in exits.items() if e is None))
    if not running:
        return ClusterDecision(kind=ClusterKind.END, reason=ClusterReason.ALL_EXITED)
    if deadline is not None and now > deadline:
        return ClusterDecision(
            kind=ClusterKind.END, reason=ClusterReason.TIMED_OUT, task=running[0], running=running
        )
    return ClusterDecision(kind=ClusterKind.WAIT, reason=ClusterReason.RUNNING)


def max_local_tasks(cores: int | None) -> int:
    """How many tasks a local cluster may run on a machine with ``cores`` CPU cores.

    ``TASKS_PER_CORE`` per core, at least ``MIN_TASK_CAP`` and at most ``MAX_TASKS``
    (every task is a whole TensorFlow process; hundreds of them only thrash the machine).
    """
    per_core = TASKS_PER_CORE * (cores or 1)
    return max(MIN_TASK_CAP, min(MAX_TASKS, per_core))


def check_cluster_size(
    *,
    ps: int,
    workers: int,
    evaluator: bool,
    cores: int | None,
    timeout_secs: float | None = None,
    prefix: str = "",
) -> int:
    """Check a local cluster's task counts (and timeout) before anything starts.

    Args:
        ps: Parameter servers (>= 0).
        workers: Workers besides the chief (>= 0).
        evaluator: Whether an evaluator runs.
        cores: The machine's CPU cores (None: unknown, counted as 1).
        timeout_secs: The run's timeout (None, or > 0).
        prefix: Prepended to the field names in errors (``"--"`` for the command line).

    Returns:
        The number of tasks.

    Raises:
        ConfigError: A negative count, a timeout <= 0, or more tasks than
            `max_local_tasks` allows (naming ``workers``, or ``ps`` when it is the larger).
    """
    check(non_negative_int, f"{prefix}ps", ps)
    check(non_negative_int, f"{prefix}workers", workers)
    check(optional(positive_secs), f"{prefix}timeout", timeout_secs)
    total = ps + 1 + workers + int(bool(evaluator))
    cap = max_local_tasks(cores)
    if total > cap:
        field, value = ("ps", ps) if ps > workers else ("workers", workers)
        raise ConfigError(
            f"{prefix}{field}",
            value,
            f"the cluster would run {total} tasks; a local cluster runs at most {cap} on this "
            f"machine ({TASKS_PER_CORE} per CPU core, between {MIN_TASK_CAP} and {MAX_TASKS})",
        )
    return total
