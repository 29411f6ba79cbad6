"""Inside a worker of a cluster: device filters, readiness, the chief watch, joining training.

The worker code hands its results back (`JoinResult`); it never reaches into an Experiment.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from core.faults import lifecycle_policy
from core.lifecycle import LifecyclePolicy, WorkerKind, worker_decision
from core.tf_config import TFConfig
from core.workers import (
    DelayKind,
    GateDecision,
    GateKind,
    GateReason,
    StartDelay,
    delay_gate,
    device_filters_to_add,
    look_due,
    step_gate,
    worker_gate,
)
from shell import job
from shell._tf import tf

log = logging.getLogger("tfexperiment")

__all__ = [
    "ChiefWatch",
    "ChiefWatchHook",
    "JoinResult",
    "ReadinessProbe",
    "ensure_device_filters",
    "join_training",
    "ps_reachable",
    "watch_hook",
]


def ensure_device_filters(estimator: Any, config: TFConfig) -> bool:
    """Give a distributed estimator's session config TF's device filters if it has none.

    RunConfig sets them only when the user passes no ``session_config``; without them a
    worker's session waits for every task of the cluster (a finished worker or the
    chief included) instead of only the ps tasks and itself.

    Returns:
        True when filters were added.
    """
    # Estimator keeps the proto it uses in `_session_config` (`config` returns a copy).
    proto = getattr(estimator, "_session_config", None)
    filters = getattr(proto, "device_filters", None)
    existing = None if filters is None else list(filters)
    wanted = device_filters_to_add(config, existing=existing)
    if filters is None or not wanted:
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


#: The cluster a watch assumes when it is given none (a chief and one worker).
_DEFAULT_CLUSTER: Mapping[str, Sequence[str]] = {"chief": ("",), "worker": ("",)}


class ChiefWatch:
    """Ends a worker's training when the job says so, and gates its start on a step.

    Used as a ``SessionRunHook`` (see `watch_hook`): after a step it reads the job's
    records at most every ``every_secs`` and applies `core.lifecycle.worker_decision`:
    STOP (the chief finished, or the evaluator asked the job to stop) requests a stop;
    EXIT_FAILED (the chief failed or is lost) raises `shell.job.JobExit` with exit 1.
    With ``wait_until_step`` it holds the first step until the global step gets there
    (`core.workers.step_gate`), also giving up when the job stops meanwhile.

    Attributes:
        fired: The job said stop and a stop was requested.
        done_reason: The stop decision's reason for the worker's `Done` (or empty).
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
        cluster: Mapping[str, Sequence[str]] = _DEFAULT_CLUSTER,
        task: str = "worker-0",
        policy: LifecyclePolicy | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.since = since
        self.train_steps = train_steps
        self.wait_until_step = wait_until_step
        self.every_secs = every_secs
        self.cluster = cluster
        self.task = task
        self.policy = policy or lifecycle_policy()
        self.training = False
        self.fired = False
        self.done_reason = ""
        self.last_step: int | None = None
        self._clock = clock
        self._sleep = sleep
        self._last_look = clock()

    def look(self, *, force: bool = False) -> bool:
        """Check for the chief's record (at most every ``every_secs`` unless ``force``)."""
        now = self._clock()
        due = force or look_due(now=now, last_look=self._last_look, every_secs=self.every_secs)
        if due and not self.fired:
            self._last_look = now
            view = job.read_view(
                self.model_dir, self.cluster, since=self.since, train_steps=self.train_steps
            )
            decision = worker_decision(view, self.policy, training=self.training)
            job.exit_on(decision, decision.exit_code, self.task)
            self.fired = decision.kind is WorkerKind.STOP
            self.done_reason = decision.done_reason
            if self.fired:
                log.info("%s", decision.line(self.task))
        return self.fired

    def hold_until_step(self, read_step: Callable[[], int], poll_secs: float = 0.5) -> bool:
        """Wait until ``read_step()`` reaches ``wait_until_step``; False if the chief finished."""
        logged: GateReason | None = None
        while True:
            step = read_step()
            gate = step_gate(
                global_step=step,
                start_step=self.wait_until_step,
                chief_finished=step < self.wait_until_step and self.look(force=True),
                poll_secs=poll_secs,
                last_logged=logged,
            )
            if gate.kind is not GateKind.WAIT:
                break
            if gate.log:
                log.info("waiting for global step %d before training", self.wait_until_step)
                logged = gate.reason
            self._sleep(gate.sleep_secs)
        self.wait_until_step = 0
        return gate.kind is GateKind.TRAIN


class ChiefWatchHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
    """A ``SessionRunHook`` applying a `ChiefWatch` to a training session."""

    def __init__(self, watch: ChiefWatch) -> None:
        self._watch = watch
        self._step: Any = None

    def begin(self) -> None:
        """Find the global step."""
        self._step = tf.compat.v1.train.get_global_step()
        self._watch.training = True

    def before_run(self, run_context: Any) -> None:
        """Hold the first step until the start step (stop if the chief finished meanwhile)."""
        watch = self._watch
        if watch.wait_until_step > 0:
            session = run_context.session
            if not watch.hold_until_step(lambda: int(session.run(self._step))):
                run_context.request_stop()

    def after_run(self, run_context: Any, run_values: Any) -> None:
        """Stop once the chief has finished."""
        if self._watch.look():
            run_context.request_stop()

    def end(self, session: Any) -> None:
        """Remember the global step training ended at."""
        self._watch.last_step = int(session.run(self._step))


def watch_hook(watch: ChiefWatch) -> Any:
    """A ``tf.estimator.SessionRunHook`` applying ``watch`` to a training session."""
    return ChiefWatchHook(watch)


@attrs.frozen(kw_only=True)
class JoinResult:
    """What `join_training` hands back to the worker's Experiment.

    Attributes:
        watch: The chief watch of this training run (``fired`` tells whether the
            chief's end stopped it; ``last_step`` where it ended); None when the chief
            had already finished: the worker must not train.
        hooks: Training hooks to add to this training run.
    """

    watch: ChiefWatch | None
    hooks: tuple[Any, ...] = ()

    @property
    def chief_already_finished(self) -> bool:
        """The chief finished before this worker joined: do not train."""
        return self.watch is None


def join_training(
    estimator: Any,
    config: TFConfig,
    delay: StartDelay,
    *,
    model_dir: str,
    train_steps: int | None,
    poll_secs: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    policy: LifecyclePolicy | None = None,
    since: float | None = None,
) -> JoinResult:
    """Bring a worker of a cluster to the start of training, or tell it the job is over.

    Waits at the core's `worker_gate` (polling every ``poll_secs``) until every ps
    accepts connections and the chief has initialised the model, so TF's session
    manager finds it ready at once instead of sleeping 30 s; then waits out the start
    ``delay`` (`delay_gate`) and hands back a hook that ends training once the chief
    has finished.

    Args:
        estimator: The worker's estimator.
        config: The parsed TF_CONFIG.
        delay: The core's start delay for this worker.
        model_dir: Where the completion records are.
        train_steps: The job's train_steps (a stale record that reached it counts).
        poll_secs: How often to look.
        clock: Monotonic clock.
        sleep: Sleep function.
        policy: The job's lifecycle policy (`core.faults.lifecycle_policy` when None).
        since: When this task started (``time.time()``; now when None).

    Returns:
        The hooks to train with and the watch, or a result whose watch is None when
        the chief had already finished.
    """
    watch = ChiefWatch(
        model_dir,
        since=time.time() if since is None else since,
        train_steps=train_steps,
        clock=clock,
        sleep=sleep,
        cluster=config.cluster,
        task=config.task_name or "worker-0",
        policy=policy,
    )
    started = clock()
    run_config = getattr(estimator, "config", None)
    max_wait = float(getattr(run_config, "session_creation_timeout_secs", 7200) or 7200)
    gate = _wait_for_chief(estimator, config, watch, started, max_wait, poll_secs, clock, sleep)
    if gate.kind is GateKind.SKIP:
        log.info("%s; this worker does not train", gate.reason.value)
        return JoinResult(watch=None)
    log.info("joining training after %.1fs: %s", clock() - started, gate.reason.value)
    if delay.kind is DelayKind.SECONDS:
        log.info("waiting %.1fs before starting", delay.secs)
        deadline = clock() + delay.secs
        while True:
            gate = delay_gate(
                chief_finished=watch.look(force=True),
                now=clock(),
                deadline=deadline,
                poll_secs=poll_secs,
            )
            if gate.kind is GateKind.SKIP:
                log.info("the chief has finished; this worker does not train")
                return JoinResult(watch=None)
            if gate.kind is GateKind.TRAIN:
                break
            sleep(gate.sleep_secs)
    elif delay.kind is DelayKind.GLOBAL_STEP:
        watch.wait_until_step = delay.global_step
    return JoinResult(watch=watch, hooks=(watch_hook(watch),))


def _wait_for_chief(
    estimator: Any,
    config: TFConfig,
    watch: ChiefWatch,
    started: float,
    max_wait: float,
    poll_secs: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> GateDecision:
    """Poll the `worker_gate` until it says TRAIN or SKIP; returns that decision."""
    probe: ReadinessProbe | None = None
    logged: GateReason | None = None
    try:
        while True:
            finished = watch.look(force=True)
            reachable = not finished and ps_reachable(config)
            if reachable and probe is None:
                probe = ReadinessProbe(estimator)
            gate = worker_gate(
                chief_finished=finished,
                ps_reachable=reachable,
                model_ready=reachable and probe is not None and probe.ready(),
                waited_secs=clock() - started,
                max_wait_secs=max_wait,
                poll_secs=poll_secs,
                last_logged=logged,
            )
            if gate.kind is not GateKind.WAIT:
                return gate
            if gate.log:
                log.info("%s", gate.reason.value)
                logged = gate.reason
            sleep(gate.sleep_secs)
    finally:
        if probe is not None:
            probe.close()
