"""Clusters: a local launcher (one process per task on 127.0.0.1) and how a worker joins one."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType, MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from core.completion import GateKind, GateReason, chief_final_step, worker_gate
from core.errors import ConfigError
from core.tf_config import TaskType, TFConfig
from core.workers import DelayKind, StartDelay

if TYPE_CHECKING:
    from shell.experiment import Experiment

log = logging.getLogger("tfexperiment")

__all__ = [
    "ChiefWatch",
    "ClusterResult",
    "LocalCluster",
    "Task",
    "TaskExit",
    "add_cluster_parser",
    "cluster_tasks",
    "ensure_device_filters",
    "join_training",
    "launch_local_cluster",
    "pick_free_ports",
    "task_command",
]

HOST = "127.0.0.1"
GRACE_SECS = 5.0
POLL_SECS = 0.05
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


def pick_free_ports(count: int, host: str = HOST) -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago (bound to port 0)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


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


def task_command(
    experiment_fn_spec: str,
    output_dir: str,
    *,
    python: str | None = None,
    verbose: bool = False,
) -> list[str]:
    """The command line of a task: ``python -m shell [--verbose] run SPEC --output-dir DIR``.

    Args:
        experiment_fn_spec: ``package.module:function``.
        output_dir: The task's ``--output-dir``.
        python: The interpreter (default: this one).
        verbose: Pass ``--verbose`` (TensorFlow's own logs, tracebacks).
    """
    flags = ["--verbose"] if verbose else []
    exe = python or sys.executable
    return [exe, "-m", "shell", *flags, "run", experiment_fn_spec, "--output-dir", output_dir]


def _print_line(line: str) -> None:
    print(line, flush=True)


class _Run:
    """One process of a task, with the thread that reads its output."""

    def __init__(self, task: str, process: subprocess.Popen[str], reader: threading.Thread):
        self.task = task
        self.process = process
        self.reader = reader
        self.started = time.monotonic()
        self.exit: TaskExit | None = None

    def poll(self) -> TaskExit | None:
        """The exit once the process has ended (after its last output line), else None."""
        if self.exit is None:
            code = self.process.poll()
            if code is None:
                return None
            self.reader.join(timeout=2.0)
            self.exit = TaskExit(
                task=self.task,
                pid=self.process.pid,
                returncode=code,
                wall_secs=time.monotonic() - self.started,
            )
        return self.exit


class LocalCluster:
    """Real processes for the tasks of a cluster on 127.0.0.1; a context manager.

    Ports are picked at construction; nothing runs until `start`. Every process is
    started in its own session (Ctrl-C reaches only the launcher) and is ended by PID
    in `terminate`, which leaving the ``with`` block always calls.

    Args:
        experiment_fn_spec: ``package.module:function`` building the Experiment.
        output_dir: Passed to every task as ``--output-dir``.
        ps: Parameter servers.
        workers: Workers besides the chief.
        evaluator: Run an evaluator.
        chief: The chief's job is ``chief``; False: the legacy ``master``.
        env: Extra environment variables for every task.
        sink: Receives every output line, prefixed ``[worker-1] ``; None prints them.
        cwd: Working directory of the tasks (default: the current one).
        verbose: Run the tasks with ``--verbose``.
        command: Run this command line in every task instead of ``python -m shell run``
            (e.g. a plain TensorFlow script; each still gets its own TF_CONFIG).

    Raises:
        ConfigError: A bad spec or task count.
    """

    def __init__(
        self,
        experiment_fn_spec: str,
        output_dir: str,
        *,
        ps: int = 1,
        workers: int = 2,
        evaluator: bool = True,
        chief: bool = True,
        env: Mapping[str, str] | None = None,
        sink: Callable[[str], None] | None = None,
        cwd: str | None = None,
        verbose: bool = False,
        command: Sequence[str] | None = None,
    ) -> None:
        self.spec = check_spec(experiment_fn_spec)
        self.output_dir = str(output_dir)
        self.tasks = cluster_tasks(ps=ps, workers=workers, chief=chief, evaluator=evaluator)
        clustered = [t for t in self.tasks if t.type != "evaluator"]
        self.ports: dict[str, int] = dict(
            zip((t.name for t in clustered), pick_free_ports(len(clustered)))
        )
        self.tf_configs: dict[str, Any] = tf_configs(self.tasks, list(self.ports.values()))
        self.env = dict(env or {})
        self.cwd = cwd
        self.verbose = verbose
        self.command = list(command) if command is not None else None
        self._sink = sink or _print_line
        self._sink_lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._history: list[TaskExit] = []
        self._lines: dict[str, list[str]] = {t.name: [] for t in self.tasks}
        self._started_at: float | None = None

    # ---------------------------------------------------------------- processes
    @property
    def task_names(self) -> tuple[str, ...]:
        """The tasks' names, in launch order."""
        return tuple(t.name for t in self.tasks)

    def pid(self, task: str) -> int | None:
        """The PID of ``task``'s current process (None if it never started)."""
        run = self._runs.get(task)
        return run.process.pid if run is not None else None

    def lines(self, task: str) -> list[str]:
        """A copy of ``task``'s output lines so far (all its runs)."""
        with self._sink_lock:
            return list(self._lines[task])

    def history(self) -> list[TaskExit]:
        """Every exit so far, restarted tasks' earlier exits included, in order."""
        self.poll()
        return list(self._history)

    def task_env(self, task: str) -> dict[str, str]:
        """The environment ``task`` runs with: ours, ``env``, its TF_CONFIG, unbuffered."""
        out = {**os.environ, **self.env}
        out["TF_CONFIG"] = json.dumps(self.tf_configs[task])
        out["PYTHONUNBUFFERED"] = "1"
        return out

    def start(self, task: str | None = None) -> None:
        """Start ``task`` (None: every task, in launch order); restarts an ended task.

        Raises:
            KeyError: ``task`` is not a task of this cluster.
            RuntimeError: ``task`` is still running.
        """
        if task is None:
            for name in self.task_names:
                self.start(name)
            return
        if task not in self._lines:
            raise KeyError(task)
        current = self._runs.get(task)
        if current is not None and current.poll() is None:
            raise RuntimeError(f"{task} is still running (pid {current.process.pid})")
        if self._started_at is None:
            self._started_at = time.monotonic()
        process = subprocess.Popen(
            self.command or task_command(self.spec, self.output_dir, verbose=self.verbose),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.task_env(task),
            cwd=self.cwd,
            text=True,
            bufsize=1,
            errors="replace",
            start_new_session=True,
        )
        reader = threading.Thread(
            target=self._pump, args=(task, process), name=f"read-{task}", daemon=True
        )
        self._runs[task] = _Run(task, process, reader)
        self._say(f"started {task} (pid {process.pid})")
        reader.start()

    def _pump(self, task: str, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            with self._sink_lock:
                self._lines[task].append(line)
                self._sink(f"[{task}] {line}")
        process.stdout.close()

    def poll(self) -> dict[str, TaskExit | None]:
        """Each started task's exit, or None while it runs."""
        out: dict[str, TaskExit | None] = {}
        for name, run in self._runs.items():
            known = run.exit
            out[name] = run.poll()
            if known is None and run.exit is not None:
                self._history.append(run.exit)
        return out

    def signal(self, task: str, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` to ``task``'s process (by its PID) if it still runs."""
        run = self._runs[task]
        if run.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.process.pid, signum)

    def kill(self, task: str, timeout_secs: float = 10.0) -> TaskExit:
        """SIGKILL ``task``'s process and wait for it; returns its exit."""
        self.signal(task, signal.SIGKILL)
        run = self._runs[task]
        run.process.wait(timeout=timeout_secs)
        self.poll()
        assert run.exit is not None
        return run.exit

    def terminate(self, grace_secs: float = GRACE_SECS) -> None:
        """End every running process: SIGTERM by PID, then SIGKILL after ``grace_secs``."""
        running = [run for run in self._runs.values() if run.poll() is None]
        for run in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_secs
        for run in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            if run.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(run.process.pid, signal.SIGKILL)
                run.process.wait()
        self.poll()

    # ---------------------------------------------------------------- waiting
    def wait(self, timeout_secs: float | None = None, *, fail_fast: bool = True) -> ClusterResult:
        """Wait until every started task has exited.

        Args:
            timeout_secs: Give up (and end every process) after this long.
            fail_fast: End every other process as soon as one exits non-zero.

        Returns:
            The result; on a failure or timeout every process has been ended.
        """
        deadline = None if timeout_secs is None else time.monotonic() + timeout_secs
        failed: str | None = None
        reason = ""
        while True:
            exits = self.poll()
            if fail_fast:
                bad = [e for e in exits.values() if e is not None and e.returncode != 0]
                if bad:
                    failed, reason = bad[0].task, describe_exit(bad[0])
                    break
            if all(e is not None for e in exits.values()):
                break
            if deadline is not None and time.monotonic() > deadline:
                running = sorted(name for name, e in exits.items() if e is None)
                failed = running[0] if running else None
                reason = f"timed out after {timeout_secs:g}s ({', '.join(running)} still running)"
                break
            time.sleep(POLL_SECS)
        if failed is not None:
            self._say(f"cluster failed: {reason}; ending the other tasks")
            self.terminate()
        return self.result(failed_task=failed, reason=reason)

    def result(self, *, failed_task: str | None = None, reason: str = "") -> ClusterResult:
        """The current exits as a `ClusterResult` (tasks still running are left out)."""
        exits = self.poll()
        started = self._started_at or time.monotonic()
        with self._sink_lock:
            lines = {name: tuple(found) for name, found in self._lines.items()}
        return ClusterResult(
            exits=tuple(e for name in self.task_names if (e := exits.get(name)) is not None),
            failed_task=failed_task,
            reason=reason,
            wall_secs=time.monotonic() - started,
            lines=MappingProxyType(lines),
            tf_configs=MappingProxyType(dict(self.tf_configs)),
        )

    def _say(self, message: str) -> None:
        with self._sink_lock:
            self._sink(f"[cluster] {message}")

    def __enter__(self) -> LocalCluster:
        """Return self."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End every process that still runs."""
        self.terminate()


def describe_exit(found: TaskExit) -> str:
    """One line naming the task and how it ended, e.g. ``worker-1 exited with status 1``."""
    if found.returncode < 0:
        try:
            name = signal.Signals(-found.returncode).name
        except ValueError:
            name = f"signal {-found.returncode}"
        return f"{found.task} was killed by {name}"
    return f"{found.task} exited with status {found.returncode}"


class _Terminated(BaseException):
    """The launcher itself received SIGTERM."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into `_Terminated` (main thread only) so the tasks get ended too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def launch_local_cluster(
    experiment_fn_spec: str,
    output_dir: str,
    *,
    ps: int = 1,
    workers: int = 2,
    evaluator: bool = True,
    chief: bool = True,
    timeout_secs: float | None = None,
    env: Mapping[str, str] | None = None,
    sink: Callable[[str], None] | None = None,
    verbose: bool = False,
) -> ClusterResult:
    """Run a whole cluster on 127.0.0.1, one process per task, until every task exits.

    Each task runs ``python -m shell run MODULE:FN --output-dir DIR`` with its own
    TF_CONFIG on a free port; its output lines are streamed with a ``[worker-1]`` prefix.
    When a task fails, on a timeout, on Ctrl-C or on SIGTERM every other process is
    ended by PID (SIGTERM, then SIGKILL).

    Args:
        experiment_fn_spec: ``package.module:function`` building the Experiment.
        output_dir: Every task's ``--output-dir``.
        ps: Parameter servers.
        workers: Workers besides the chief.
        evaluator: Run an evaluator.
        chief: The chief's job is ``chief``; False: the legacy ``master``.
        timeout_secs: End everything after this long.
        env: Extra environment variables for every task.
        sink: Receives each prefixed output line (None prints it).
        verbose: Run the tasks with ``--verbose``.

    Returns:
        The result: ``ok``, the failed task and why, every task's exit and lines.

    Raises:
        ConfigError: A bad spec or task count.
    """
    cluster = LocalCluster(
        experiment_fn_spec,
        output_dir,
        ps=ps,
        workers=workers,
        evaluator=evaluator,
        chief=chief,
        env=env,
        sink=sink,
        verbose=verbose,
    )
    try:
        with _sigterm_raises():
            cluster.start()
            return cluster.wait(timeout_secs)
    except (KeyboardInterrupt, _Terminated):
        cluster._say("interrupted; ending every task")
        cluster.terminate()
        return cluster.result(reason="interrupted")
    finally:
        cluster.terminate()


def _run_cluster_command(args: argparse.Namespace) -> int:
    """The ``cluster`` subcommand: launch, stream, and turn the result into an exit code."""
    try:
        result = launch_local_cluster(
            args.experiment_fn,
            args.output_dir,
            ps=args.ps,
            workers=args.workers,
            evaluator=args.evaluator,
            chief=not args.master,
            verbose=bool(getattr(args, "verbose", False)),
            timeout_secs=args.timeout,
        )
    except ConfigError as err:
        print(f"tfexperiment cluster: error: {err}", file=sys.stderr)
        return 2
    out: TextIO = sys.stdout if result.ok else sys.stderr
    if result.ok:
        print(f"cluster finished in {result.wall_secs:.1f}s: every task exited 0", file=out)
    else:
        print(f"cluster failed: {result.reason}", file=out)
    return result.returncode


def add_cluster_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``cluster`` subcommand on an argparse ``subparsers`` object.

    The handler is set with ``set_defaults(func=...)``: called with the parsed
    namespace it returns the exit code (0 every task exited 0, 1 a task failed or the
    run timed out, 2 bad usage, 130 interrupted).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cluster",
        help="run a whole TensorFlow cluster locally, one process per task",
        description=(
            "Run one process per task (ps, chief, workers, evaluator) on 127.0.0.1 with "
            "free ports and its own TF_CONFIG; stream every task's output with a task "
            "prefix; end every process when one fails or on Ctrl-C."
        ),
    )
    parser.add_argument(
        "experiment_fn",
        metavar="MODULE:EXPERIMENT_FN",
        help="function building the Experiment, e.g. examples.x.exp:experiment_fn",
    )
    parser.add_argument("--output-dir", required=True, help="every task's output directory")
    parser.add_argument("--ps", type=int, default=1, help="parameter servers (default 1)")
    parser.add_argument(
        "--workers", type=int, default=2, help="workers besides the chief (default 2)"
    )
    parser.add_argument("--evaluator", action="store_true", help="also run an evaluator")
    parser.add_argument(
        "--master", action="store_true", help="name the chief's job 'master' (legacy TF 1)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECS",
        help="end every task after this many seconds (exit 1)",
    )
    parser.set_defaults(func=_run_cluster_command, handler=_run_cluster_command)
    return parser


# --------------------------------------------------------------------------- inside a task
def default_device_filters(config: TFConfig) -> list[str] | None:
    """The device filters TF's RunConfig gives a task: each trainer talks to the ps and itself.

    Returns:
        None for an evaluator or a local run (no filters).
    """
    task = config.task_type
    if task in (TaskType.CHIEF, TaskType.MASTER):
        return ["/job:ps", f"/job:{task.value}"]
    if task is TaskType.WORKER:
        return ["/job:ps", f"/job:worker/task:{config.task_index}"]
    if task is TaskType.PS:
        return ["/job:ps", "/job:worker", "/job:chief", "/job:master"]
    return None


def ensure_device_filters(estimator: Any, config: TFConfig) -> bool:
    """Give a distributed estimator's session config TF's device filters if it has none.

    RunConfig sets them only when the user passes no ``session_config``; without them a
    worker's session waits for every task of the cluster (a finished worker or the
    chief included) instead of only the ps tasks and itself.

    Returns:
        True when filters were added.
    """
    wanted = default_device_filters(config)
    # Estimator keeps the proto it uses in `_session_config` (`config` returns a copy).
    proto = getattr(estimator, "_session_config", None)
    if not config.is_distributed or wanted is None or proto is None:
        return False
    filters = getattr(proto, "device_filters", None)
    if filters is None or len(filters) > 0:
        return False
    filters.extend(wanted)
    log.info("session_config had no device_filters; using %s", ", ".join(wanted))
    return True


def ps_reachable(config: TFConfig, timeout_secs: float = 0.5) -> bool:
    """Whether every ps task of the cluster accepts a TCP connection now."""
    for address in config.cluster.get("ps", ()):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_secs):
                pass
        except (OSError, ValueError):
            return False
    return True


class ReadinessProbe:
    """Asks the ps whether the chief has initialised the model, as TF's SessionManager would.

    The probe builds the global step the way Estimator does (first variable, under the
    same replica device setter, so on the ps task that holds the real one) and checks
    through this task's own server whether it is initialised; the chief initialises or
    restores every variable in one run. Without a ps (or a RunConfig with a master)
    there is nothing to ask, and `ready` says True.

    Args:
        estimator: A ``tf.estimator.Estimator`` whose config comes from TF_CONFIG.
        timeout_secs: Bound on each check.
    """

    def __init__(self, estimator: Any, timeout_secs: float = 5.0) -> None:
        from shell._tf import tf

        self._tf = tf
        run_config = getattr(estimator, "config", None)
        self._target: str = str(getattr(run_config, "master", "") or "")
        self._session: Any = None
        ps_tasks = getattr(run_config, "num_ps_replicas", 0)
        self.supported = bool(self._target) and isinstance(ps_tasks, int) and ps_tasks > 0
        if not self.supported or run_config is None:
            return
        device_fn = run_config.device_fn or tf.compat.v1.train.replica_device_setter(
            ps_tasks=run_config.num_ps_replicas,
            worker_device=f"/job:{run_config.task_type}/task:{run_config.task_id}",
            merge_devices=True,
            cluster=run_config.cluster_spec,
        )
        self._graph = tf.Graph()
        with self._graph.as_default(), self._graph.device(device_fn):
            step = tf.compat.v1.train.create_global_step()
            self._report = tf.compat.v1.report_uninitialized_variables([step])
        self._config = tf.compat.v1.ConfigProto()
        if run_config.session_config is not None:
            self._config.CopyFrom(run_config.session_config)
        self._config.operation_timeout_in_ms = int(timeout_secs * 1000)

    def ready(self) -> bool:
        """Whether the model is initialised on the ps (True when there is no ps to ask)."""
        if not self.supported:
            return True
        tf = self._tf
        try:
            if self._session is None:
                self._session = tf.compat.v1.Session(
                    self._target, graph=self._graph, config=self._config
                )
            return len(self._session.run(self._report)) == 0
        except tf.errors.OpError:
            self.close()
            return False

    def close(self) -> None:
        """Close the probe's session (idempotent)."""
        if self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(Exception):
                session.close()


def chief_finished(model_dir: str, *, since: float, train_steps: int | None) -> bool:
    """Whether the chief's completion record of this run exists (see `core.completion`)."""
    from shell import checkpoints as disk

    records = disk.read_done(model_dir, since=since, train_steps=train_steps)
    return chief_final_step(records) is not None


class ChiefWatch:
    """Ends a worker's training when the chief has finished, and gates its start on a step.

    Used as a ``SessionRunHook`` (see `watch_hook`): after a step it looks at most every
    ``every_secs`` for the chief's completion record and then requests a stop; with
    ``wait_until_step`` it holds the first step until the global step gets there, unlike
    TF's GlobalStepWaiterHook also giving up when the chief finishes meanwhile.

    Attributes:
        fired: The chief's record was seen and a stop requested.
        last_step: The global step when training ended (None before it ends).
    """

    def __init__(
        self,
        model_dir: str,
        *,
        since: float,
        train_steps: int | None,
        wait_until_step: int = 0,
        every_secs: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model_dir = model_dir
        self.since = since
        self.train_steps = train_steps
        self.wait_until_step = wait_until_step
        self.every_secs = every_secs
        self.fired = False
        self.last_step: int | None = None
        self._clock = clock
        self._sleep = sleep
        self._last_look = clock()

    def look(self, *, force: bool = False) -> bool:
        """Check for the chief's record (at most every ``every_secs`` unless ``force``)."""
        now = self._clock()
        if not self.fired and (force or now - self._last_look >= self.every_secs):
            self._last_look = now
            self.fired = chief_finished(
                self.model_dir, since=self.since, train_steps=self.train_steps
            )
        return self.fired

    def hold_until_step(self, read_step: Callable[[], int], poll_secs: float = 0.5) -> bool:
        """Wait until ``read_step()`` reaches ``wait_until_step``; False if the chief finished."""
        logged = False
        while read_step() < self.wait_until_step:
            if self.look(force=True):
                return False
            if not logged:
                log.info("waiting for global step %d before training", self.wait_until_step)
                logged = True
            self._sleep(poll_secs)
        self.wait_until_step = 0
        return True


def watch_hook(watch: ChiefWatch) -> Any:
    """A ``tf.estimator.SessionRunHook`` applying ``watch`` to a training session."""
    from shell._tf import tf

    class _ChiefWatchHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
        def begin(self) -> None:
            self._step = tf.compat.v1.train.get_global_step()

        def before_run(self, run_context: Any) -> None:
            if watch.wait_until_step > 0:
                session = run_context.session
                if not watch.hold_until_step(lambda: int(session.run(self._step))):
                    run_context.request_stop()

        def after_run(self, run_context: Any, run_values: Any) -> None:
            if watch.look():
                run_context.request_stop()

        def end(self, session: Any) -> None:
            watch.last_step = int(session.run(self._step))

    return _ChiefWatchHook()


def join_training(
    experiment: Experiment,
    config: TFConfig,
    delay: StartDelay,
    *,
    poll_secs: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ChiefWatch | None:
    """Bring a worker of a cluster to the start of training, or tell it the job is over.

    Waits at the core's `worker_gate` (polling every ``poll_secs``) until every ps
    accepts connections and the chief has initialised the model, so TF's session
    manager finds it ready at once instead of sleeping 30 s; then applies the start
    ``delay`` and adds a hook that ends training once the chief has finished.

    Args:
        experiment: The worker's Experiment (its train hooks are extended).
        config: The parsed TF_CONFIG.
        delay: The core's start delay for this worker.
        poll_secs: How often to look.
        clock: Monotonic clock.
        sleep: Sleep function.

    Returns:
        The watch (``fired`` tells whether the chief's end stopped training), or None
        when the chief had already finished: the worker must not train.
    """
    estimator = experiment.estimator
    watch = ChiefWatch(
        experiment.model_dir,
        since=time.time(),
        train_steps=experiment.train_steps,
        clock=clock,
        sleep=sleep,
    )
    probe: ReadinessProbe | None = None
    started = clock()
    run_config = getattr(estimator, "config", None)
    max_wait = float(getattr(run_config, "session_creation_timeout_secs", 7200) or 7200)
    last_reason: GateReason | None = None
    try:
        while True:
            finished = watch.look(force=True)
            reachable = not finished and ps_reachable(config)
            ready = False
            if reachable:
                if probe is None:
                    probe = ReadinessProbe(estimator)
                ready = probe.ready()
            gate = worker_gate(
                chief_finished=finished,
                ps_reachable=reachable,
                model_ready=ready,
                waited_secs=clock() - started,
                max_wait_secs=max_wait,
                poll_secs=poll_secs,
            )
            if gate.kind is not GateKind.WAIT:
                break
            if gate.reason is not last_reason:
                log.info("%s", gate.reason.value)
                last_reason = gate.reason
            sleep(gate.sleep_secs)
    finally:
        if probe is not None:
            probe.close()
    if gate.kind is GateKind.SKIP:
        log.info("%s; this worker does not train", gate.reason.value)
        return None
    log.info("joining training after %.1fs: %s", clock() - started, gate.reason.value)
    if delay.kind is DelayKind.SECONDS:
        log.info("waiting %.1fs before starting", delay.secs)
        deadline = clock() + delay.secs
        while clock() < deadline:
            if watch.look(force=True):
                log.info("the chief has finished; this worker does not train")
                return None
            sleep(min(poll_secs * 5, max(0.0, deadline - clock())))
    elif delay.kind is DelayKind.GLOBAL_STEP:
        watch.wait_until_step = delay.global_step
    experiment.extend_train_hooks([watch_hook(watch)])
    return watch
