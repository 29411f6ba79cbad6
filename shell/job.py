"""The shell side of `core.lifecycle`: the job's records on disk, heartbeats and signals.

On disk (under ``<model_dir>/tfexperiment/``) each task keeps one atomically replaced
file with its latest record, ``<task>.state.json``; the evaluator's stop request is
``stop.json``. The completion files of `shell.disk` (``<task>.done.json``) are read as
`Done` records too (their time is the file's modification time), so a job keeps ending
for readers of either. Which records count and what each role does next are the core's
(`core.faults.is_current_record`, the decisions of `core.lifecycle`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType, TracebackType
from typing import Any

from core.errors import ConfigError
from core.faults import is_current_record, watches_stop_requests
from core.lifecycle import (
    ChiefKind,
    Done,
    Failed,
    Heartbeat,
    JobView,
    Joined,
    LifecyclePolicy,
    Preempted,
    RoleDecision,
    StopRequested,
    TaskRecord,
    chief_decision,
    heartbeat_due,
    signal_exit_code,
)
from core.tf_config import TFConfig
from core.workers import look_due
from shell import disk
from shell._tf import tf
from shell.exits import JobExit

log = logging.getLogger("tfexperiment")

__all__ = [
    "Heartbeats",
    "JobExit",
    "Signals",
    "StopHook",
    "TrainingGuard",
    "exit_on",
    "read_records",
    "read_view",
    "write_record",
]

STATE_SUFFIX = ".state.json"
STOP_FILE = "stop.json"
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_on(decision: RoleDecision, exit_code: int | None, task: str) -> None:
    """Apply a role's exit: nothing for None, return for 0, else raise `JobExit`.

    Raises:
        JobExit: ``exit_code`` is not None or 0.
    """
    if exit_code:
        line = decision.line(task)
        log.error("%s", line)
        raise JobExit(line, exit_code)


# --- records on disk --------------------------------------------------------------------


def record_path(model_dir: str, record: TaskRecord) -> str:
    """Where ``record`` is kept: its task's state file, or the stop file."""
    name = STOP_FILE if isinstance(record, StopRequested) else f"{record.task}{STATE_SUFFIX}"
    return os.path.join(model_dir, disk.STATE_DIR, name)


def write_record(model_dir: str, record: TaskRecord) -> None:
    """Replace the task's latest record (atomically: readers see the old or the new)."""
    disk.atomic_write(record_path(model_dir, record), json.dumps(record.to_dict()))


def _read(path: str) -> TaskRecord | None:
    try:
        with open(path) as handle:
            return TaskRecord.from_dict(json.load(handle))
    except (OSError, ValueError, ConfigError):
        return None


def read_records(model_dir: str) -> list[TaskRecord]:
    """Every record in ``model_dir``: state files, the stop file, completion files."""
    directory = os.path.join(model_dir, disk.STATE_DIR)
    if not os.path.isdir(directory):
        return []
    names = sorted(os.listdir(directory))
    found = [
        _read(os.path.join(directory, n))
        for n in names
        if n.endswith(STATE_SUFFIX) or n == STOP_FILE
    ]
    records: list[TaskRecord] = [r for r in found if r is not None]
    for done, written_at in disk.read_done_with_times(model_dir):
        records.append(
            Done(task=done.task, t=written_at, reason=done.reason.value, final_step=done.final_step)
        )
    return records


def read_view(
    model_dir: str,
    cluster: Mapping[str, Sequence[str]],
    *,
    since: float,
    train_steps: int | None,
    now: float | None = None,
) -> JobView:
    """The job as a reader that started at ``since`` sees it now (records of an earlier
    run dropped by `core.faults.is_current_record`)."""
    records = [
        r
        for r in read_records(model_dir)
        if is_current_record(r, since=since, train_steps=train_steps)
    ]
    return JobView.of(
        records, cluster=cluster, now=time.time() if now is None else now, since=since
    )


# --- heartbeats ---------------------------------------------------------------------------


class Heartbeats:
    """A context manager: writes ``Joined`` at once, then a ``Heartbeat`` whenever
    `core.lifecycle.heartbeat_due` says so, from a background thread, until exit."""

    def __init__(self, model_dir: str, task: str, policy: LifecyclePolicy) -> None:
        self.model_dir = model_dir
        self.task = task
        self.policy = policy
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeats:
        """Write ``Joined`` and start beating."""
        now = time.time()
        write_record(self.model_dir, Joined(task=self.task, t=now))
        self._thread = threading.Thread(
            target=self._beat, args=(now,), name=f"heartbeat-{self.task}", daemon=True
        )
        self._thread.start()
        return self

    def _beat(self, last: float) -> None:
        while not self._stop.wait(self.policy.poll_secs):
            now = time.time()
            if heartbeat_due(last, now=now, policy=self.policy):
                with contextlib.suppress(OSError):
                    write_record(self.model_dir, Heartbeat(task=self.task, t=now))
                last = now

    def __exit__(self, *exc: object) -> None:
        """Stop beating (before the task writes its final record)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# --- signals ------------------------------------------------------------------------------


def interrupted_line(task: str, signal_name: str, step: int | None = None) -> str:
    """The one line of a task ended by ``signal_name``."""
    code = signal_exit_code(signal_name)
    saved = "" if step is None else f"; saved a checkpoint at step {step}"
    return f"{task}: interrupted by {signal_name}{saved}; exiting {code}"


class Signals:
    """A context manager turning SIGTERM and SIGINT into a `JobExit` (143, 130).

    With ``defer`` the first signal only sets ``pending`` (a training task stops at its
    next step and saves first); a second one, or any without ``defer``, raises at once.
    Handlers are installed only in the main thread and restored on exit.
    """

    def __init__(self, task: str, *, defer: bool = False) -> None:
        self.task = task
        self.defer = defer
        self.pending: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        """Install the handlers (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            for number in _SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.defer and self.pending is None:
            self.pending = name
            log.warning("%s: %s received; stopping at the next step", self.task, name)
            return
        raise JobExit(interrupted_line(self.task, name), signal_exit_code(name), name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Restore the previous handlers."""
        for number, previous in self._previous.items():
            signal.signal(number, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()


def failure_reason(err: BaseException) -> str:
    """The one-line reason of a `Failed` record for ``err``."""
    return " ".join(f"{type(err).__name__}: {err}".split())[:500]


def write_failed(model_dir: str, task: str, err: BaseException) -> None:
    """Write ``task``'s `Failed` record for ``err``."""
    write_record(model_dir, Failed(task=task, t=time.time(), reason=failure_reason(err)))


def write_preempted(model_dir: str, task: str, step: int) -> None:
    """Write ``task``'s `Preempted` record at ``step``."""
    write_record(model_dir, Preempted(task=task, t=time.time(), step=step))


def write_stop(model_dir: str, task: str, reason: str) -> None:
    """Write the evaluator's stop request."""
    write_record(model_dir, StopRequested(task=task, t=time.time(), reason=reason))


# --- a training task's guard ------------------------------------------------------------


class StopHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
    """Requests a stop after a step once ``should_stop()`` says so (the step's checkpoint
    is then saved by Estimator's CheckpointSaverHook.end)."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self._should_stop = should_stop

    def after_run(self, run_context: Any, run_values: Any) -> None:
        """Stop training when asked."""
        if self._should_stop():
            run_context.request_stop()


class TrainingGuard:
    """A context manager around one training task's training.

    It writes ``Joined`` and heartbeats (`Heartbeats`), defers SIGTERM/SIGINT to the
    next step (`Signals`), and, on a cluster's chief, stops at the next step once the
    evaluator asked the job to stop (`core.lifecycle.chief_decision`, read at most every
    ``policy.poll_secs``). Before the first step (joining, waiting, restoring) a signal
    ends the task at once, with a `Preempted` record at the latest checkpoint's step. A
    training error becomes a `Failed` record. Give `hook` to the training run and call
    `after_training` when it returns.

    Attributes:
        told: The ``done_reason`` of the decision that stopped training (or empty).
        stop_now: Set True to stop at the next step (e.g. a local early stop).
    """

    def __init__(
        self,
        model_dir: str,
        config: TFConfig,
        policy: LifecyclePolicy,
        *,
        task: str,
        train_steps: int | None,
        step: Callable[[], int],
    ) -> None:
        self.model_dir = model_dir
        self.config = config
        self.policy = policy
        self.task = task
        self.train_steps = train_steps
        self.told = ""
        self.stop_now = False
        self.signals = Signals(task)
        self.hook = StopHook(self.should_stop)
        self._step = step
        self._heartbeats = Heartbeats(model_dir, task, policy)
        self._since = time.time()
        self._watch_stop = watches_stop_requests(config)
        self._last_look = time.monotonic()

    def should_stop(self) -> bool:
        """Whether training stops at this step (a signal, `stop_now`, a stop request).

        Called after each step: from the first step on, a signal is deferred to the next
        step (before it, while joining or restoring, a signal ends the task at once).
        """
        self.signals.defer = True
        return self.signals.pending is not None or self.stop_now or self._stop_requested()

    def _stop_requested(self) -> bool:
        now = time.monotonic()
        if not self._watch_stop or not look_due(
            now=now, last_look=self._last_look, every_secs=self.policy.poll_secs
        ):
            return False
        self._last_look = now
        view = read_view(
            self.model_dir, self.config.cluster, since=self._since, train_steps=self.train_steps
        )
        decision = chief_decision(view)
        if decision.kind is ChiefKind.STOP:
            log.info("%s", decision.line(self.task))
            self.told = decision.done_reason
        return decision.kind is ChiefKind.STOP

    def after_training(self, step: int | None = None) -> None:
        """After a training run returned: if a signal stopped it, write `Preempted` at the
        step saved and raise.

        Raises:
            JobExit: With 143 (SIGTERM) or 130 (SIGINT).
        """
        name = self.signals.pending
        if name is None:
            return
        saved = self._step() if step is None else step
        self._heartbeats.__exit__()  # no heartbeat may follow (and hide) the record
        write_preempted(self.model_dir, self.task, saved)
        line = interrupted_line(self.task, name, saved)
        log.warning("%s", line)
        raise JobExit(line, signal_exit_code(name), name)

    def __enter__(self) -> TrainingGuard:
        """Install the signal handlers, write ``Joined``, start the heartbeats."""
        self.signals.__enter__()
        self._heartbeats.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the heartbeats; record a failure or an interruption; restore the handlers."""
        self._heartbeats.__exit__()
        self.signals.__exit__(exc_type, exc, tb)
        if isinstance(exc, JobExit) and exc.signal_name is not None:
            with contextlib.suppress(Exception):
                write_preempted(self.model_dir, self.task, self._step())
        elif isinstance(exc, Exception):
            write_failed(self.model_dir, self.task, exc)
