"""The schedules' loops: each gathers inputs (clock, disk, TF_CONFIG), asks the core, applies.

`shell.experiment.Experiment` is the public front door; each of its schedule methods runs
one of these functions on a `Run`, the Experiment's parts at the time of the call.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from core import continuous_eval as ce
from core import iteration, train_eval
from core._validate import check, non_negative_secs
from core.checkpoints import Checkpoint
from core.completion import (
    ServeKind,
    ServeReason,
    chief_final_step,
    end_reason,
    is_final_export,
    serve_decision,
    training_tasks,
)
from core.errors import ConfigError
from core.settings import ExperimentSettings
from core.tf_config import TFConfig
from core.workers import (
    DelayKind,
    StartDelay,
    is_cluster_worker,
    records_own_completion,
    starts_server,
    train_start_delay,
)
from shell import disk, strategy
from shell import exports as ex
from shell._tf import tf
from shell.evaluating import LazyEvaluator
from shell.evaluator import make_evaluator
from shell.servers import start_server
from shell.worker import ensure_device_filters, join_training

log = logging.getLogger("tfexperiment")

EvalListener = Callable[[dict[str, Any]], None]
Result = dict[str, Any]
#: How often run_std_server asks whether training is finished.
SERVE_POLL_SECS = 0.5


def predicate_arity(predicate: Any) -> int:
    """How many arguments a continue-predicate takes (0 for None): 1 (result) or 2 (+ path).

    Raises:
        ConfigError: ``predicate`` is neither None nor callable.
    """
    if predicate is None:
        return 0
    if not callable(predicate):
        raise ConfigError("continuous_eval_predicate_fn", predicate, "must be None or a callable")
    try:
        params = list(inspect.signature(predicate).parameters.values())
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return 2 if len(positional) >= 2 else 1


def _ask(predicate: Any, arity: int, result: Result | None, path: str | None) -> bool:
    if predicate is None:
        return True
    return bool(predicate(result, path) if arity == 2 else predicate(result))


@attrs.frozen(kw_only=True)
class Run:
    """The parts a schedule runs with: an Experiment's, at the time of the call.

    Attributes:
        servers: The task's std server once started (a holder shared with the
            Experiment, so the server lives as long as it does and starts once).
    """

    estimator: Any
    train_input_fn: Callable[..., Any]
    eval_input_fn: Callable[..., Any]
    settings: ExperimentSettings
    train_hooks: tuple[Any, ...]
    eval_hooks: tuple[Any, ...]
    export_strategies: tuple[Any, ...]
    listeners: tuple[EvalListener, ...]
    servers: list[Any] = attrs.field(eq=False)
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    poll_secs: float

    @property
    def model_dir(self) -> str:
        """The estimator's model directory."""
        return str(self.estimator.model_dir)

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint on disk."""
        return disk.latest_checkpoint(self.model_dir)

    def global_step(self) -> int:
        """The newest checkpoint's step (0 without one)."""
        latest = self.latest()
        return latest.step if latest is not None else 0

    def lazy_evaluator(self, input_fn: Callable[..., Any], name: str | None) -> LazyEvaluator:
        """An evaluator of ``input_fn`` built on first use (see `LazyEvaluator`)."""
        return LazyEvaluator(
            lambda: make_evaluator(
                self.estimator,
                input_fn,
                steps=self.settings.eval_steps,
                hooks=self.eval_hooks,
                name=name,
            )
        )

    def evaluated(self, result: Result) -> Result:
        """Log an evaluation result and hand it to the listeners."""
        shown = ", ".join(
            f"{k}={float(v):.4g}"
            for k, v in sorted(result.items())
            if k != "global_step" and getattr(v, "ndim", 0) == 0
        )
        log.info("evaluation at step %s: %s", result.get("global_step"), shown)
        for listener in self.listeners:
            listener(result)
        return result

    def start_server(self, config: TFConfig) -> None:
        """Start this task's std server in a distributed config (once)."""
        serves = strategy.strategy_owns_server(self.estimator, config)
        if starts_server(config, strategy_serves=serves) and not self.servers:
            self.servers.append(start_server(config))
            ensure_device_filters(self.estimator, config)

    def train(
        self,
        *,
        max_steps: int | None = None,
        steps: int | None = None,
        listeners: Sequence[Any] = (),
        extra_hooks: Sequence[Any] = (),
    ) -> None:
        """``estimator.train`` with the training hooks (and ``extra_hooks``), via `strategy.train`."""
        strategy.train(
            self.estimator,
            self.train_input_fn,
            hooks=[*self.train_hooks, *extra_hooks],
            steps=steps,
            max_steps=max_steps,
            saving_listeners=list(listeners) or None,
        )

    def write_done(
        self, config: TFConfig, *, step: int | None = None, chief_finished: bool = False
    ) -> None:
        """Write this task's completion record, with the core's end reason."""
        step = self.global_step() if step is None else step
        reason = end_reason(reached=self.settings.reached(step), chief_finished=chief_finished)
        disk.write_done(self.model_dir, task_name(config), final_step=step, reason=reason)
        log.info("training finished at step %d (%s)", step, reason.value)

    def export(self, latest: Checkpoint | None, result: Result | None, **how: bool) -> list[Any]:
        """Run the export strategies on ``latest`` (``how``: is_final, only_exporters)."""
        return ex.run_exports(
            self.export_strategies,
            self.estimator,
            checkpoint_path=latest.path if latest else None,
            eval_result=result,
            **how,
        )


def tf_config() -> TFConfig:
    """This process's parsed TF_CONFIG."""
    return TFConfig.from_json(os.environ.get("TF_CONFIG"))


def task_name(config: TFConfig) -> str:
    """``<job>-<index>`` of this task (``chief-0`` when local)."""
    return config.task_name or "chief-0"


def _start_delay_hooks(run: Run, delay: StartDelay) -> list[Any]:
    """Apply a local start delay: sleep it, or hand back a global-step waiter hook."""
    if delay.kind is DelayKind.SECONDS:
        log.info("waiting %.1fs before starting", delay.secs)
        run.sleep(delay.secs)
    elif delay.kind is DelayKind.GLOBAL_STEP:
        log.info("waiting for global step %d before training", delay.global_step)
        return [tf.compat.v1.train.GlobalStepWaiterHook(delay.global_step)]
    return []


def train(run: Run, delay_secs: float | None) -> Any:
    """`Experiment.train`: wait the start delay (or join the cluster), train, record the end."""
    config = tf_config()
    by_step = run.settings.delay_workers_by_global_step
    waits = strategy.workers_wait_for_chief(run.estimator)
    delay = train_start_delay(
        config, delay_secs=delay_secs, by_global_step=by_step, waits_for_chief=waits
    )
    run.start_server(config)
    disk.clear_done(run.model_dir, task_name(config))
    if not is_cluster_worker(config, waits_for_chief=waits):
        run.train(max_steps=run.settings.train_steps, extra_hooks=_start_delay_hooks(run, delay))
        run.write_done(config)
        return run.estimator
    joined = join_training(
        run.estimator,
        config,
        delay,
        model_dir=run.model_dir,
        train_steps=run.settings.train_steps,
        clock=run.clock,
        sleep=run.sleep,
    )
    if joined.watch is None:  # the chief had already finished
        run.write_done(config, chief_finished=True)
        return run.estimator
    run.train(max_steps=run.settings.train_steps, extra_hooks=joined.hooks)
    # a worker: the global step lives on the ps, not in its checkpoints
    run.write_done(config, step=joined.watch.last_step, chief_finished=joined.watch.fired)
    return run.estimator


def evaluate(run: Run, delay_secs: float | None) -> Result:
    """`Experiment.evaluate`: wait, then evaluate the latest checkpoint."""
    wait = run.settings.eval_delay_secs if delay_secs is None else delay_secs
    check(non_negative_secs, "delay_secs", wait)
    if wait:
        run.sleep(wait)
    result = run.estimator.evaluate(
        run.eval_input_fn, steps=run.settings.eval_steps, hooks=list(run.eval_hooks)
    )
    return run.evaluated(dict(result))


def continuous_eval(
    run: Run,
    input_fn: Callable[..., Any],
    *,
    name: str | None,
    delay_secs: float | None,
    throttle_delay_secs: float | None,
    only_once: bool,
    predicate: Callable[..., bool] | None,
    export: bool,
) -> Result | None:
    """`Experiment.continuous_eval` (and on the training data): apply `core.continuous_eval`."""
    arity = predicate_arity(predicate)
    settings = run.settings
    delay = settings.eval_delay_secs if delay_secs is None else delay_secs
    throttle = settings.continuous_eval_throttle_secs
    throttle = throttle if throttle_delay_secs is None else throttle_delay_secs
    policy = ce.EvalPolicy(
        eval_delay_secs=check(non_negative_secs, "delay_secs", delay),
        throttle_secs=check(non_negative_secs, "throttle_delay_secs", throttle),
        evaluate_checkpoint_only_once=only_once,
        train_steps=settings.train_steps,
        poll_secs=run.poll_secs,
    )
    started_wall = time.time()
    done_before = disk.load_progress(run.model_dir, name) if only_once else None
    state = ce.EvalState(
        started_at=run.clock(),
        last_evaluated=done_before,
        last_result_step=done_before.step if done_before else None,
    )
    if done_before is not None:
        log.info("resuming: %s was evaluated before this start", done_before.path)
    state = ce.record_predicate(state, keep_going=_ask(predicate, arity, None, None))
    result: Result | None = None
    with run.lazy_evaluator(input_fn, name) as evaluator:
        while True:
            finished = chief_final_step(disk.read_done(run.model_dir, since=started_wall))
            decision, new_state = ce.decide(
                state, policy, now=run.clock(), latest=run.latest(), finished_at_step=finished
            )
            if decision.kind is ce.EvalKind.WAIT:
                if decision.log:
                    log.info("%s; waiting", decision.reason.value)
                state = new_state
                run.sleep(decision.sleep_secs)
                continue
            if decision.kind is ce.EvalKind.STOP:
                log.info("continuous evaluation stops: %s", decision.reason.value)
                return result
            checkpoint = decision.checkpoint
            assert checkpoint is not None
            try:
                outcome = evaluator.evaluate(checkpoint.path)
            except Exception as err:
                if not disk.is_vanished_error(err):
                    raise
                log.warning("checkpoint %s vanished before evaluation; skipped", checkpoint.path)
                state = ce.record_vanished(new_state, before=state)
                continue
            result = run.evaluated(outcome)
            step = int(result.get("global_step", checkpoint.step))
            if only_once:
                disk.save_progress(run.model_dir, name, checkpoint)
            if export:
                reached = settings.reached(step)
                final = is_final_export(reached=reached, step=step, finished_at_step=finished)
                run.export(checkpoint, result, is_final=final)
            keep_going = _ask(predicate, arity, result, checkpoint.path)
            state = ce.record_result(new_state, global_step=step, keep_going=keep_going)


class _TrainEvalProgress:
    """What one train_and_evaluate run carries from one checkpoint save to the next."""

    def __init__(self, state: train_eval.TrainEvalState, evaluator: LazyEvaluator) -> None:
        self.state = state
        self.evaluator = evaluator
        self.result: Result | None = None


class _SaveListener(tf.estimator.CheckpointSaverListener):  # type: ignore[misc]
    """Calls ``on_save(global_step)`` after every checkpoint training saves."""

    def __init__(self, on_save: Callable[[int], None]) -> None:
        self._on_save = on_save

    def after_save(self, session: Any, global_step_value: int) -> None:
        """Hand the saved step on."""
        self._on_save(int(global_step_value))


def _after_save(
    run: Run,
    progress: _TrainEvalProgress,
    policy: train_eval.TrainEvalPolicy,
    saved_step: int,
) -> None:
    """train_and_evaluate, after training saved a checkpoint: evaluate (and export) it if due."""
    decision, progress.state = train_eval.after_save(progress.state, policy, saved_step=saved_step)
    if decision.kind is not train_eval.TrainEvalKind.EVALUATE:
        return
    latest = run.latest()
    if latest is None or latest.step != saved_step:  # not readable on disk: nothing to evaluate
        return
    progress.result = run.evaluated(progress.evaluator.evaluate(latest.path))
    if is_final_export(reached=run.settings.reached(latest.step), step=latest.step):
        return  # the last save: the final export (is_final=True) follows training
    run.export(latest, progress.result, is_final=False, only_exporters=True)


def train_and_evaluate(run: Run) -> tuple[Result | None, list[Any]]:
    """`Experiment.train_and_evaluate`: train, evaluating saved checkpoints per `core.train_eval`."""
    config = tf_config()
    run.start_server(config)
    disk.clear_done(run.model_dir, task_name(config))
    policy = train_eval.TrainEvalPolicy(eval_every_n_steps=run.settings.eval_every_n_steps)
    with run.lazy_evaluator(run.eval_input_fn, None) as evaluator:
        state = train_eval.TrainEvalState(baseline_step=run.global_step())
        progress = _TrainEvalProgress(state, evaluator)
        listener = _SaveListener(lambda step: _after_save(run, progress, policy, step))
        run.train(max_steps=run.settings.train_steps, listeners=[listener])
        final = run.latest()
        if final is not None and train_eval.final_evaluation_owed(
            progress.state, final_step=final.step
        ):
            progress.result = run.evaluated(evaluator.evaluate(final.path))
            progress.state = train_eval.record_final(progress.state, final_step=final.step)
    if records_own_completion(config):
        run.write_done(config)
    return progress.result, run.export(final, progress.result, is_final=True)


def continuous_train_and_evaluate(
    run: Run, predicate: Callable[..., bool] | None
) -> tuple[Result | None, list[Any]]:
    """`Experiment.continuous_train_and_evaluate`: iterations per `core.iteration`."""
    arity = predicate_arity(predicate)
    keep_going = _ask(predicate, arity, None, None)
    settings = run.settings
    result: Result | None = None
    exported: list[Any] = []
    trained: int | None = None
    requested: int | None = None
    step = run.global_step()
    with run.lazy_evaluator(run.eval_input_fn, None) as evaluator:
        while True:
            decision = iteration.next_iteration(
                train_steps_per_iteration=settings.train_steps_per_iteration,
                train_steps=settings.train_steps,
                global_step=step,
                keep_going=keep_going,
                last_trained_steps=trained,
                last_requested_steps=requested,
            )
            if decision.kind is iteration.IterationKind.STOP:
                log.info("continuous_train_and_evaluate stops: %s", decision.reason.value)
                return result, exported
            requested = decision.steps
            run.train(steps=requested)
            latest = run.latest()
            new_step = latest.step if latest else step
            trained, step = new_step - step, new_step
            outcome = iteration.after_iteration(
                requested=requested,
                trained=trained,
                has_checkpoint=latest is not None,
                reached=settings.reached(step),
                step=step,
            )
            if not outcome.evaluate or latest is None:
                continue
            result = run.evaluated(evaluator.evaluate(latest.path))
            exported = run.export(latest, result, is_final=outcome.final)
            keep_going = _ask(predicate, arity, result, latest.path)
            if outcome.ran_out:
                log.info("training input ran out after %d of %d steps", trained, requested)


def run_std_server(run: Run) -> None:
    """`Experiment.run_std_server`: serve until `core.completion.serve_decision` says exit."""
    config = tf_config()
    started_wall = time.time()
    run.servers.append(start_server(config))
    expected = training_tasks({job: len(a) for job, a in config.cluster.items()})
    logged: ServeReason | None = None
    while True:
        records = disk.read_done(
            run.model_dir, since=started_wall, train_steps=run.settings.train_steps
        )
        decision = serve_decision(records, expected, last_logged=logged, poll_secs=SERVE_POLL_SECS)
        if decision.log:
            log.info("%s (%d training tasks)", decision.reason.value, len(expected))
            logged = decision.reason
        if decision.kind is ServeKind.EXIT:
            return
        run.sleep(decision.sleep_secs)


def smoke_test(run: Run) -> Result:
    """`Experiment.test`: train 1 step, evaluate 1 step, export."""
    run.train(steps=1)
    result = run.estimator.evaluate(run.eval_input_fn, steps=1, hooks=list(run.eval_hooks))
    result = run.evaluated(dict(result))
    run.export(run.latest(), result, is_final=True)
    return result
