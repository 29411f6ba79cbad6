"""The local launcher: one real process per task of a cluster on 127.0.0.1 (no TensorFlow here)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType, MappingProxyType, TracebackType
from typing import Any

from core.cluster_plan import (
    HOST,
    ClusterKind,
    ClusterReason,
    ClusterResult,
    Task,
    TaskExit,
    check_cluster_size,
    check_spec,
    cluster_decision,
    cluster_tasks,
    tf_configs,
)

__all__ = [
    "ClusterResult",
    "LocalCluster",
    "Task",
    "TaskExit",
    "check_spec",
    "cluster_tasks",
    "describe_exit",
    "launch_local_cluster",
    "pick_free_ports",
    "task_command",
    "tf_configs",
]

INTERRUPT_GRACE_SECS = 20.0  # time for every task to save its step after a Ctrl-C
GRACE_SECS = 5.0
_SIGTERM = signal.SIGTERM  # (the class has a method named `signal`)
POLL_SECS = 0.05


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


def task_command(
    experiment_fn_spec: str | None,
    output_dir: str | None,
    *,
    python: str | None = None,
    verbose: bool = False,
    config: str | None = None,
    overrides: Sequence[str] = (),
) -> list[str]:
    """A task's command line: ``python -m shell [--verbose] run SPEC --output-dir DIR``.

    Args:
        experiment_fn_spec: ``package.module:function`` (None with ``config``).
        output_dir: The task's ``--output-dir`` (None: the config's model_dir).
        python: The interpreter (default: this one).
        verbose: Pass ``--verbose`` (TensorFlow's own logs, tracebacks).
        config: Run ``--config FILE`` instead of a function.
        overrides: ``--set KEY=VALUE`` overrides of ``config``.
    """
    flags = ["--verbose"] if verbose else []
    exe = python or sys.executable
    if config is not None:
        what = ["--config", config, *(a for o in overrides for a in ("--set", o))]
    else:
        what = [str(experiment_fn_spec)]
    out = ["--output-dir", output_dir] if output_dir else []
    return [exe, "-m", "shell", *flags, "run", *what, *out]


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
        config: Run ``python -m shell run --config FILE`` (``experiment_fn_spec`` None).
        overrides: ``--set KEY=VALUE`` overrides of ``config``.

    Raises:
        ConfigError: A bad spec, a negative task count or more tasks than
            `core.cluster_plan.max_local_tasks` allows on this machine.
    """

    def __init__(
        self,
        experiment_fn_spec: str | None,
        output_dir: str | None,
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
        config: str | None = None,
        overrides: Sequence[str] = (),
    ) -> None:
        self.config = os.path.abspath(config) if config is not None else None
        self.overrides = tuple(overrides)
        self.spec = None if self.config is not None else check_spec(str(experiment_fn_spec))
        self.output_dir = str(output_dir) if output_dir else None
        check_cluster_size(ps=ps, workers=workers, evaluator=evaluator, cores=os.cpu_count())
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
            self.command
            or task_command(
                self.spec,
                self.output_dir,
                verbose=self.verbose,
                config=self.config,
                overrides=self.overrides,
            ),
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

    def terminate(self, grace_secs: float = GRACE_SECS, signum: int = _SIGTERM) -> None:
        """End every running process: ``signum`` (SIGTERM) by PID, then SIGKILL after
        ``grace_secs``. A training task saves its step on SIGTERM or SIGINT and exits."""
        running = [run for run in self._runs.values() if run.poll() is None]
        for run in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.process.pid, signum)
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
        while True:
            exits = self.poll()
            decision = cluster_decision(
                exits, now=time.monotonic(), deadline=deadline, fail_fast=fail_fast
            )
            if decision.kind is ClusterKind.END:
                break
            time.sleep(POLL_SECS)
        reason = ""
        if decision.reason is ClusterReason.TASK_FAILED:
            found = exits[decision.task or ""]
            assert found is not None
            reason = describe_exit(found)
        elif decision.reason is ClusterReason.TIMED_OUT:
            still = ", ".join(decision.running)
            reason = f"timed out after {timeout_secs:g}s ({still} still running)"
        if decision.task is not None:
            self._say(f"cluster failed: {reason}; ending the other tasks")
            self.terminate()
        return self.result(failed_task=decision.task, reason=reason)

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
    experiment_fn_spec: str | None,
    output_dir: str | None,
    *,
    ps: int = 1,
    workers: int = 2,
    evaluator: bool = True,
    chief: bool = True,
    timeout_secs: float | None = None,
    env: Mapping[str, str] | None = None,
    sink: Callable[[str], None] | None = None,
    verbose: bool = False,
    config: str | None = None,
    overrides: Sequence[str] = (),
) -> ClusterResult:
    """Run a whole cluster on 127.0.0.1, one process per task, until every task exits.

    Each task runs ``python -m shell run MODULE:FN --output-dir DIR`` (or ``run --config
    FILE``) with its own
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
        config: Each task runs ``run --config FILE`` (``experiment_fn_spec`` None).
        overrides: ``--set KEY=VALUE`` overrides of ``config``.

    Returns:
        The result: ``ok``, the failed task and why, every task's exit and lines.

    Raises:
        ConfigError: A bad spec, task count or timeout (before anything starts).
    """
    check_cluster_size(
        ps=ps, workers=workers, evaluator=evaluator, cores=os.cpu_count(), timeout_secs=timeout_secs
    )
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
        config=config,
        overrides=overrides,
    )
    try:
        with _sigterm_raises():
            cluster.start()
            return cluster.wait(timeout_secs)
    except (KeyboardInterrupt, _Terminated) as err:
        # Forwarded as received (Ctrl-C as SIGINT): each training task saves its step.
        forwarded = signal.SIGINT if isinstance(err, KeyboardInterrupt) else signal.SIGTERM
        cluster._say(f"interrupted; ending every task ({forwarded.name} forwarded)")
        cluster.terminate(INTERRUPT_GRACE_SECS, forwarded)
        return cluster.result(reason="interrupted")
    finally:
        cluster.terminate()
