"""The schedules' loops: each gathers inputs (clock, disk, TF_CONFIG), asks the core, applies.

`shell.experiment.Experiment` is the public front door; each of its schedule methods runs
one of these functions on a `Run` (`shell.run`), the Experiment's parts at the time of
the call.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from core import continuous_eval as ce
from core import iteration, train_eval
from core._validate import check, non_negative_secs
from core.checkpoints import Checkpoint
from core.completion import EndReason, chief_final_step, is_final_export
from core.faults import line_changed, watches_job
from core.lifecycle import (
    EvaluatorDecision,
    evaluator_decision,
    ps_decision,
)
from core.tf_config import TFConfig
from core.workers import (
    DelayKind,
    StartDelay,
    is_cluster_worker,
    records_own_completion,
    train_start_delay,
)
from shell import disk, job, strategy
from shell._tf import tf
from shell.evaluating import LazyEvaluator
from shell.run import EvalListener, Result, Run, ask, predicate_arity, task_name, tf_config
from shell.servers import start_server
from shell.train_eval_bg import BackgroundCheckpoints, evaluation_mode, open_background
from shell.worker import join_training

log = logging.getLogger("tfexperiment")

__all__ = [
    "EvalListener",
    "Result",
    "Run",
    "continuous_eval",
    "continuous_train_and_evaluate",
    "evaluate",
    "predicate_arity",
    "run_std_server",
    "smoke_test",
    "task_name",
    "tf_config",
    "train",
    "train_and_evaluate",
]


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
        with run.guard(config) as guard:
            hooks = _start_delay_hooks(run, delay)
            run.train(max_steps=run.settings.train_steps, extra_hooks=hooks, guard=guard)
            guard.after_training()
        run.write_done(config, told=guard.told)
        return run.estimator
    with run.guard(config) as guard:
        joined = join_training(
            run.estimator,
            config,
            delay,
            model_dir=run.model_dir,
            train_steps=run.settings.train_steps,
            clock=run.clock,
            sleep=run.sleep,
            policy=run.policy,
        )
        watch = joined.watch
        if watch is None:  # the chief had already finished
            guard.after_training(0)
        else:
            run.train(max_steps=run.settings.train_steps, extra_hooks=joined.hooks, guard=guard)
            guard.after_training(watch.last_step or 0)
    if watch is None:
        run.write_done(config, chief_finished=True)
        return run.estimator
    # a worker: the global step lives on the ps, not in its checkpoints
    run.write_done(config, step=watch.last_step, chief_finished=watch.fired, told=watch.done_reason)
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


class _JobWatch:
    """The evaluator's view of the job (`core.lifecycle.evaluator_decision`), in a cluster."""

    def __init__(self, run: Run, config: TFConfig, *, since: float) -> None:
        self.run = run
        self.config = config
        self.since = since
        self.task = task_name(config)
        self.watching = watches_job(config.cluster)

    def decision(self, evaluated_step: int | None) -> EvaluatorDecision:
        """The job-level decision now."""
        run = self.run
        view = job.read_view(
            run.model_dir,
            self.config.cluster,
            since=self.since,
            train_steps=run.settings.train_steps,
        )
        latest = run.latest()
        return evaluator_decision(
            view,
            run.policy,
            evaluated_step=evaluated_step,
            latest_checkpoint_step=latest.step if latest else None,
        )

    def exit_if_failed(self, evaluated_step: int | None, latest: Checkpoint | None) -> None:
        """Exit 1 (raise `JobExit`) once the chief failed or is lost (in a cluster)."""
        if self.watching:
            decision = self.decision(evaluated_step)
            job.exit_on(decision, decision.exit_code, self.task)

    def stop_the_job(self, predicate: Any, evaluated_step: int | None) -> None:
        """Write the job's stop request, then wait until the chief has finished."""
        reason = getattr(predicate, "stop_reason", None) or "continuous_eval_predicate_fn said stop"
        job.write_stop(self.run.model_dir, self.task, str(reason))
        log.info("%s: asked the job to stop: %s", self.task, reason)
        while True:
            decision = self.decision(evaluated_step)
            job.exit_on(decision, decision.exit_code, self.task)
            if decision.exit_code is not None:
                log.info("%s", decision.line(self.task))
                return
            self.run.sleep(decision.sleep_secs)


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
    """`Experiment.continuous_eval` (and on the training data): apply `core.continuous_eval`.

    In a cluster it also exits 1 once the chief failed or is lost, and when the predicate
    says stop it asks the whole job to stop (a `StopRequested` record) and waits for the
    chief to finish. SIGTERM/SIGINT end it at once (its progress is kept).
    """
    predicate = run.predicate if predicate is None else predicate
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
    state = ce.record_predicate(state, keep_going=ask(predicate, arity, None, None))
    result: Result | None = None
    config = tf_config()
    watch = _JobWatch(run, config, since=started_wall)
    with run.lazy_evaluator(input_fn, name) as evaluator, job.Signals(task_name(config)):
        while True:
            finished = chief_final_step(disk.read_done(run.model_dir, since=started_wall))
            latest = run.latest()
            watch.exit_if_failed(state.last_result_step, latest)
            decision, new_state = ce.decide(
                state, policy, now=run.clock(), latest=latest, finished_at_step=finished
            )
            if decision.kind is ce.EvalKind.WAIT:
                if decision.log:
                    log.info("%s; waiting", decision.reason.value)
                state = new_state
                run.sleep(decision.sleep_secs)
                continue
            if decision.kind is ce.EvalKind.STOP:
                log.info("continuous evaluation stops: %s", decision.reason.value)
                if decision.reason is ce.EvalReason.PREDICATE and watch.watching:
                    watch.stop_the_job(predicate, state.last_result_step)
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
            keep_going = ask(predicate, arity, result, checkpoint.path)
            state = ce.record_result(new_state, global_step=step, keep_going=keep_going)


class _TrainEvalProgress:
    """What one train_and_evaluate run carries from one checkpoint save to the next."""

    def __init__(
        self,
        state: train_eval.TrainEvalState,
        evaluator: LazyEvaluator,
        guard: job.TrainingGuard,
        predicate: Callable[..., bool] | None,
        background: BackgroundCheckpoints | None,
    ) -> None:
        self.state = state
        self.evaluator = evaluator
        self.guard = guard
        self.predicate = predicate
        self.arity = predicate_arity(predicate)
        self.background = background
        self.result: Result | None = None


class _SaveListener(tf.estimator.CheckpointSaverListener):  # type: ignore[misc]
    """Calls ``on_save(global_step)`` after every checkpoint training saves."""

    def __init__(self, on_save: Callable[[int], None]) -> None:
        self._on_save = on_save

    def after_save(self, session: Any, global_step_value: int) -> None:
        """Hand the saved step on."""
        self._on_save(int(global_step_value))


def _evaluated(
    run: Run, progress: _TrainEvalProgress, checkpoint: Checkpoint, outcome: Result
) -> None:
    """train_and_evaluate, one in-training evaluation done: listeners, predicate, export."""
    progress.result = run.evaluated(outcome)
    if not ask(progress.predicate, progress.arity, progress.result, checkpoint.path):
        log.info("continuous_eval_predicate_fn said stop: training stops at the next step")
        progress.guard.stop_now = True
        progress.guard.told = EndReason.STOPPED_BY_EVALUATOR.value
    if is_final_export(reached=run.settings.reached(checkpoint.step), step=checkpoint.step):
        return  # the last save: the final export (is_final=True) follows training
    run.export(checkpoint, progress.result, is_final=False, only_exporters=True)


def _after_save(
    run: Run,
    progress: _TrainEvalProgress,
    policy: train_eval.TrainEvalPolicy,
    saved_step: int,
) -> None:
    """train_and_evaluate, after training saved a checkpoint: evaluate (and export) it if due.

    In the background it is queued instead, and the evaluations finished since the last
    save are acted on, in checkpoint order.
    """
    decision, progress.state = train_eval.after_save(progress.state, policy, saved_step=saved_step)
    latest = run.latest() if decision.kind is train_eval.TrainEvalKind.EVALUATE else None
    if latest is not None and latest.step != saved_step:
        latest = None  # not readable on disk: nothing to evaluate
    background = progress.background
    if background is not None:
        if latest is not None:
            background.submit(latest)
        for checkpoint, outcome in background.collect():
            _evaluated(run, progress, checkpoint, outcome)
    elif latest is not None:
        _evaluated(run, progress, latest, progress.evaluator.evaluate(latest.path))


def _build_ahead(evaluator: LazyEvaluator, mode: train_eval.EvalMode) -> Callable[[], None] | None:
    """What to call once training's graph is complete: the evaluator's build ahead, where
    `core.train_eval.EVALUATOR_BUILD` says so for ``mode``."""
    if train_eval.EVALUATOR_BUILD[mode] is train_eval.EvaluatorBuild.AHEAD:
        return evaluator.build_ahead
    return None


def train_and_evaluate(run: Run) -> tuple[Result | None, list[Any]]:
    """`Experiment.train_and_evaluate`: train, evaluating saved checkpoints per `core.train_eval`.

    With ``eval_in_background`` (where `core.train_eval.evaluation_mode` allows it) the
    evaluations run in a worker thread (`shell.train_eval_bg`); their results are acted on
    here, in checkpoint order, as the inline ones are.
    """
    config = tf_config()
    run.start_server(config)
    disk.clear_done(run.model_dir, task_name(config))
    policy = train_eval.TrainEvalPolicy(eval_every_n_steps=run.settings.eval_every_n_steps)
    with contextlib.ExitStack() as stack:
        evaluator = stack.enter_context(run.lazy_evaluator(run.eval_input_fn, None))
        decision = evaluation_mode(run)
        background = open_background(run, decision)
        if background is not None:
            stack.enter_context(background)
        guard = stack.enter_context(run.guard(config))
        state = train_eval.TrainEvalState(baseline_step=run.global_step())
        progress = _TrainEvalProgress(state, evaluator, guard, run.predicate, background)
        listener = _SaveListener(lambda step: _after_save(run, progress, policy, step))
        run.train(
            max_steps=run.settings.train_steps,
            listeners=[listener],
            guard=guard,
            on_graph=_build_ahead(evaluator, decision.mode),
        )
        guard.after_training()
        for checkpoint, outcome in background.drain() if background is not None else ():
            _evaluated(run, progress, checkpoint, outcome)
        final = run.latest()
        if final is not None and train_eval.final_evaluation_owed(
            progress.state, final_step=final.step
        ):
            if background is not None:
                outcome = background.evaluate_now(final)
            else:
                outcome = evaluator.evaluate(final.path)
            progress.result = run.evaluated(outcome)
            progress.state = train_eval.record_final(progress.state, final_step=final.step)
    if records_own_completion(config):
        run.write_done(config, told=guard.told)
    return progress.result, run.export(final, progress.result, is_final=True)


def continuous_train_and_evaluate(
    run: Run, predicate: Callable[..., bool] | None
) -> tuple[Result | None, list[Any]]:
    """`Experiment.continuous_train_and_evaluate`: iterations per `core.iteration`."""
    predicate = run.predicate if predicate is None else predicate
    arity = predicate_arity(predicate)
    keep_going = ask(predicate, arity, None, None)
    settings = run.settings
    result: Result | None = None
    exported: list[Any] = []
    trained: int | None = None
    requested: int | None = None
    step = run.global_step()
    config = tf_config()
    with run.lazy_evaluator(run.eval_input_fn, None) as evaluator, run.guard(config) as guard:
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
            run.train(
                steps=requested,
                guard=guard,
                on_graph=_build_ahead(evaluator, train_eval.EvalMode.INLINE),
            )
            guard.after_training()
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
            keep_going = ask(predicate, arity, result, latest.path)
            if outcome.ran_out:
                log.info("training input ran out after %d of %d steps", trained, requested)


def run_std_server(run: Run) -> None:
    """`Experiment.run_std_server`: serve until `core.lifecycle.ps_decision` says exit.

    Raises:
        JobExit: Exit 1 (the chief failed or is lost), 143/130 (a signal).
    """
    config = tf_config()
    started_wall = time.time()
    run.servers.append(start_server(config))
    task = task_name(config)
    logged: str | None = None
    with job.Signals(task):
        while True:
            view = job.read_view(
                run.model_dir,
                config.cluster,
                since=started_wall,
                train_steps=run.settings.train_steps,
            )
            decision = ps_decision(view, run.policy)
            line = decision.line(task)
            if line_changed(logged, line):
                log.info("%s", line)
                logged = line
            job.exit_on(decision, decision.exit_code, task)
            if decision.exit_code is not None:
                log.info("%s: all training tasks finished; server exits", task)
                return
            run.sleep(decision.sleep_secs)


def smoke_test(run: Run) -> Result:
    """`Experiment.test`: train 1 step, evaluate 1 step, export."""
    run.train(steps=1)
    result = run.estimator.evaluate(run.eval_input_fn, steps=1, hooks=list(run.eval_hooks))
    result = run.evaluated(dict(result))
    run.export(run.latest(), result, is_final=True)
    return result
