"""The Experiment: runs an Estimator's schedules by applying the core's decisions."""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from core import continuous_eval as ce
from core import iteration, train_eval
from core.checkpoints import Checkpoint
from core.completion import EndReason, chief_final_step
from core.errors import ConfigError, ConfigTypeError
from core.tf_config import TaskType, TFConfig
from core.workers import DelayKind, StartDelay, explicit_delay, worker_start_delay
from shell import checkpoints as disk
from shell import exports as ex
from shell._tf import tf
from shell.evaluator import Evaluator, make_evaluator
from shell.protocol import missing_members
from shell.servers import start_server

log = logging.getLogger("tfexperiment")

EvalListener = Callable[[dict[str, Any]], None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_optional_int(field: str, value: Any, minimum: int) -> None:
    if value is None:
        return
    if not _is_int(value) or value < minimum:
        raise ConfigError(field, value, f"must be None or an int >= {minimum}")


def _check_secs(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigTypeError(field, value, "must be a number of seconds")
    if not 0 <= value < float("inf"):
        raise ConfigError(field, value, "must be a finite number >= 0")


def _check_hooks(field: str, hooks: Any) -> list[Any]:
    if hooks is None:
        return []
    if isinstance(hooks, (str, bytes)) or not isinstance(hooks, Iterable):
        raise ConfigTypeError(field, hooks, "must be a list of SessionRunHooks or None")
    return list(hooks)


def _predicate_arity(predicate: Any) -> int:
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


def _ask(predicate: Any, arity: int, result: dict[str, Any] | None, path: str | None) -> bool:
    if predicate is None:
        return True
    return bool(predicate(result, path) if arity == 2 else predicate(result))


class Experiment:
    """Runs training and evaluation of an Estimator in a sensible fashion, locally or on a
    cluster. Nothing passed in runs at construction.

    Args:
        estimator: Object implementing the Estimator interface.
        train_input_fn: Returns features and labels (or a Dataset) for training.
        eval_input_fn: Returns features and labels (or a Dataset) for evaluation; finite
            when ``eval_steps`` is None.
        train_steps: Train to this global step; None trains forever.
        eval_steps: Evaluation batches; None runs until the input is exhausted.
        train_hooks: ``SessionRunHook``s for training.
        eval_hooks: ``SessionRunHook``s for evaluation.
        eval_delay_secs: Wait this long before the first evaluation.
        continuous_eval_throttle_secs: Minimum gap between evaluation starts in
            continuous_eval.
        eval_every_n_steps: train_and_evaluate's minimum global-step gap between
            evaluations; None or 0 evaluates after training only.
        delay_workers_by_global_step: Delay workers by global step instead of time.
        export_strategies: An ExportStrategy or tf.estimator.Exporter, an iterable of
            them, or None.
        train_steps_per_iteration: continuous_train_and_evaluate's steps per iteration
            (None: ``train_steps // 10``, else 1000).

    Raises:
        ValueError: ``estimator`` lacks the Estimator interface, ``export_strategies``
            has the wrong type, or a step/delay argument is out of range.
    """

    def __init__(
        self,
        estimator: Any,
        train_input_fn: Callable[..., Any],
        eval_input_fn: Callable[..., Any],
        train_steps: int | None = None,
        eval_steps: int | None = 10,
        train_hooks: Sequence[Any] | None = None,
        eval_hooks: Sequence[Any] | None = None,
        eval_delay_secs: float = 0,
        continuous_eval_throttle_secs: float = 60,
        eval_every_n_steps: int | None = 1,
        delay_workers_by_global_step: bool = False,
        export_strategies: Any = None,
        train_steps_per_iteration: int | None = 100,
    ) -> None:
        missing = missing_members(estimator)
        if missing:
            raise ConfigError(
                "estimator",
                estimator,
                f"does not implement the Estimator interface (missing: {', '.join(missing)})",
            )
        for field, fn in (("train_input_fn", train_input_fn), ("eval_input_fn", eval_input_fn)):
            if not callable(fn):
                raise ConfigTypeError(field, fn, "must be a callable input_fn")
        _check_optional_int("train_steps", train_steps, 0)
        _check_optional_int("eval_steps", eval_steps, 1)
        _check_optional_int("eval_every_n_steps", eval_every_n_steps, 0)
        _check_optional_int("train_steps_per_iteration", train_steps_per_iteration, 1)
        _check_secs("eval_delay_secs", eval_delay_secs)
        _check_secs("continuous_eval_throttle_secs", continuous_eval_throttle_secs)
        self._estimator = estimator
        self._train_input_fn = train_input_fn
        self._eval_input_fn = eval_input_fn
        self._train_steps = train_steps
        self._eval_steps = eval_steps
        self._train_hooks = _check_hooks("train_hooks", train_hooks)
        self._eval_hooks = _check_hooks("eval_hooks", eval_hooks)
        self._eval_delay_secs = eval_delay_secs
        self._throttle_secs = continuous_eval_throttle_secs
        self._eval_every_n_steps = eval_every_n_steps
        self._delay_by_global_step = bool(delay_workers_by_global_step)
        self._export_strategies = ex.normalize(export_strategies)
        self._train_steps_per_iteration = train_steps_per_iteration
        self._eval_listeners: list[EvalListener] = []
        self._server: Any = None
        self.poll_secs = 0.05
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], None] = time.sleep

    # ----------------------------------------------------------------- properties
    @property
    def estimator(self) -> Any:
        """The estimator."""
        return self._estimator

    @property
    def train_steps(self) -> int | None:
        """Global step training stops at (None: forever)."""
        return self._train_steps

    @property
    def eval_steps(self) -> int | None:
        """Evaluation batches (None: until the input is exhausted)."""
        return self._eval_steps

    @property
    def export_strategies(self) -> tuple[Any, ...]:
        """The export strategies, as a tuple."""
        return self._export_strategies

    @property
    def model_dir(self) -> str:
        """The estimator's model directory."""
        return str(self._estimator.model_dir)

    # ----------------------------------------------------------------- mutators
    def reset_export_strategies(self, new_export_strategies: Any = None) -> tuple[Any, ...]:
        """Replace the export strategies.

        Args:
            new_export_strategies: An ExportStrategy or Exporter, an iterable of them, or None.

        Returns:
            The old export strategies.

        Raises:
            ValueError: ``new_export_strategies`` has the wrong type.
        """
        old = self._export_strategies
        self._export_strategies = ex.normalize(new_export_strategies)
        return old

    def extend_train_hooks(self, additional_hooks: Iterable[Any]) -> None:
        """Add training hooks (the caller's list is never mutated)."""
        self._train_hooks = [
            *self._train_hooks,
            *_check_hooks("additional_hooks", additional_hooks),
        ]

    def extend_eval_hooks(self, additional_hooks: Iterable[Any]) -> None:
        """Add evaluation hooks (the caller's list is never mutated)."""
        self._eval_hooks = [*self._eval_hooks, *_check_hooks("additional_hooks", additional_hooks)]

    def on_evaluation(self, listener: EvalListener) -> None:
        """Call ``listener(eval_result)`` after every evaluation (progress displays)."""
        self._eval_listeners.append(listener)

    # ----------------------------------------------------------------- helpers
    def _tf_config(self) -> TFConfig:
        return TFConfig.from_json(os.environ.get("TF_CONFIG"))

    def _task_name(self, config: TFConfig) -> str:
        if config.task_type is None:
            return "chief-0"
        return f"{config.task_type.value}-{config.task_index}"

    def _latest(self) -> Checkpoint | None:
        return disk.latest_checkpoint(self.model_dir)

    def _global_step(self) -> int:
        latest = self._latest()
        return latest.step if latest is not None else 0

    def _evaluator(self, input_fn: Callable[..., Any], name: str | None) -> Evaluator:
        return make_evaluator(
            self._estimator, input_fn, steps=self._eval_steps, hooks=self._eval_hooks, name=name
        )

    def _evaluated(self, result: dict[str, Any]) -> dict[str, Any]:
        shown = ", ".join(
            f"{k}={float(v):.4g}"
            for k, v in sorted(result.items())
            if k != "global_step" and getattr(v, "ndim", 0) == 0
        )
        log.info("evaluation at step %s: %s", result.get("global_step"), shown)
        for listener in self._eval_listeners:
            listener(result)
        return result

    def _maybe_start_server(self, config: TFConfig) -> None:
        if config.is_distributed and config.address and self._server is None:
            self._server = start_server(config)
            from shell.cluster import ensure_device_filters

            ensure_device_filters(self._estimator, config)

    def _apply_start_delay(self, delay: StartDelay) -> None:
        if delay.kind is DelayKind.SECONDS:
            log.info("waiting %.1fs before starting", delay.secs)
            self.sleep(delay.secs)
        elif delay.kind is DelayKind.GLOBAL_STEP:
            log.info("waiting for global step %d before training", delay.global_step)
            self._train_hooks = [
                *self._train_hooks,
                tf.compat.v1.train.GlobalStepWaiterHook(delay.global_step),
            ]

    def _train(
        self,
        *,
        max_steps: int | None = None,
        steps: int | None = None,
        listeners: Sequence[Any] = (),
    ) -> None:
        self._estimator.train(
            self._train_input_fn,
            hooks=list(self._train_hooks),
            steps=steps,
            max_steps=max_steps,
            saving_listeners=list(listeners) or None,
        )

    def _write_done(
        self, config: TFConfig, why: EndReason | None = None, step: int | None = None
    ) -> None:
        step = self._global_step() if step is None else step
        reached = self._train_steps is not None and step >= self._train_steps
        reason = EndReason.TRAIN_STEPS_REACHED if reached else EndReason.INPUT_EXHAUSTED
        reason = why if why is not None and not reached else reason
        disk.write_done(self.model_dir, self._task_name(config), final_step=step, reason=reason)
        log.info("training finished at step %d (%s)", step, reason.value)

    # ----------------------------------------------------------------- schedules
    def train(self, delay_secs: float | None = None) -> Any:
        """Fit the estimator on the training data, to ``train_steps`` (None: forever).

        Workers wait first: ``delay_secs`` if given, else the core's start delay
        (``min(60, index * 5)`` s, or the global-step gate). In a distributed config
        the task's std server is started first; a cluster worker then waits until the
        chief has initialised the model, skips training if the chief has already
        finished, and stops when the chief finishes (`shell.cluster.join_training`).

        Args:
            delay_secs: Start training after this many seconds.

        Returns:
            The trained estimator.
        """
        config = self._tf_config()
        if delay_secs is not None:
            delay = explicit_delay(delay_secs)
        elif config.task_type is TaskType.WORKER and config.is_distributed:
            delay = worker_start_delay(config.task_index, by_global_step=self._delay_by_global_step)
        else:
            delay = StartDelay(kind=DelayKind.NONE)
        self._maybe_start_server(config)
        disk.clear_done(self.model_dir, self._task_name(config))
        watch: Any = None
        if config.task_type is TaskType.WORKER and config.is_distributed:
            from shell.cluster import join_training  # waits for the chief; see its docstring

            watch = join_training(self, config, delay)
            if watch is None:
                self._write_done(config, EndReason.CHIEF_FINISHED)
                return self._estimator
        else:
            self._apply_start_delay(delay)
        self._train(max_steps=self._train_steps)
        if watch is None:
            self._write_done(config)
        else:  # a worker: the global step lives on the ps, not in its checkpoints
            why = EndReason.CHIEF_FINISHED if watch.fired else None
            self._write_done(config, why, step=watch.last_step)
        return self._estimator

    def evaluate(self, delay_secs: float | None = None) -> dict[str, Any]:
        """Evaluate the latest checkpoint on the evaluation data.

        Args:
            delay_secs: Start after this many seconds (None: ``eval_delay_secs``).

        Returns:
            The metrics of ``Estimator.evaluate`` (with ``global_step``).
        """
        wait = self._eval_delay_secs if delay_secs is None else delay_secs
        _check_secs("delay_secs", wait)
        if wait:
            self.sleep(wait)
        result = self._estimator.evaluate(
            self._eval_input_fn, steps=self._eval_steps, hooks=list(self._eval_hooks)
        )
        return self._evaluated(dict(result))

    def continuous_eval(
        self,
        delay_secs: float | None = None,
        throttle_delay_secs: float | None = None,
        evaluate_checkpoint_only_once: bool = True,
        continuous_eval_predicate_fn: Callable[..., bool] | None = None,
    ) -> dict[str, Any] | None:
        """Evaluate each new checkpoint on the evaluation data until training ends.

        Args:
            delay_secs: Wait before the first evaluation (None: ``eval_delay_secs``).
            throttle_delay_secs: Minimum gap between evaluation starts (None: the
                constructor's ``continuous_eval_throttle_secs``).
            evaluate_checkpoint_only_once: Never evaluate a checkpoint twice.
            continuous_eval_predicate_fn: Called with the last result (None before the
                first) and optionally the checkpoint path; False stops the loop.

        Returns:
            The last evaluation result (None if nothing was evaluated).

        Raises:
            ValueError: ``continuous_eval_predicate_fn`` is neither None nor callable.
        """
        return self._continuous_eval(
            self._eval_input_fn,
            name=None,
            delay_secs=delay_secs,
            throttle_delay_secs=throttle_delay_secs,
            only_once=evaluate_checkpoint_only_once,
            predicate=continuous_eval_predicate_fn,
            export=True,
        )

    def continuous_eval_on_train_data(
        self,
        delay_secs: float | None = None,
        throttle_delay_secs: float | None = None,
        continuous_eval_predicate_fn: Callable[..., bool] | None = None,
    ) -> dict[str, Any] | None:
        """Like `continuous_eval` on the training data (results under ``eval_train``).

        Raises:
            ValueError: ``continuous_eval_predicate_fn`` is neither None nor callable.
        """
        return self._continuous_eval(
            self._train_input_fn,
            name="train",
            delay_secs=delay_secs,
            throttle_delay_secs=throttle_delay_secs,
            only_once=True,
            predicate=continuous_eval_predicate_fn,
            export=False,
        )

    def _continuous_eval(
        self,
        input_fn: Callable[..., Any],
        *,
        name: str | None,
        delay_secs: float | None,
        throttle_delay_secs: float | None,
        only_once: bool,
        predicate: Callable[..., bool] | None,
        export: bool,
    ) -> dict[str, Any] | None:
        arity = _predicate_arity(predicate)
        delay = self._eval_delay_secs if delay_secs is None else delay_secs
        throttle = self._throttle_secs if throttle_delay_secs is None else throttle_delay_secs
        _check_secs("delay_secs", delay)
        _check_secs("throttle_delay_secs", throttle)
        policy = ce.EvalPolicy(
            eval_delay_secs=delay,
            throttle_secs=throttle,
            evaluate_checkpoint_only_once=only_once,
            train_steps=self._train_steps,
            poll_secs=self.poll_secs,
        )
        started_wall = time.time()
        done_before = disk.load_progress(self.model_dir, name) if only_once else None
        state = ce.EvalState(
            started_at=self.clock(),
            last_evaluated=done_before,
            last_result_step=done_before.step if done_before else None,
        )
        if done_before is not None:
            log.info("resuming: %s was evaluated before this start", done_before.path)
        state = ce.record_predicate(state, keep_going=_ask(predicate, arity, None, None))
        result: dict[str, Any] | None = None
        evaluator: Evaluator | None = None
        try:
            while True:
                finished = chief_final_step(disk.read_done(self.model_dir, since=started_wall))
                decision, new_state = ce.decide(
                    state,
                    policy,
                    now=self.clock(),
                    latest=self._latest(),
                    finished_at_step=finished,
                )
                if decision.kind is ce.Kind.WAIT:
                    if decision.log:
                        log.info("%s; waiting", decision.reason.value)
                    state = new_state
                    self.sleep(decision.sleep_secs)
                    continue
                if decision.kind is ce.Kind.STOP:
                    log.info("continuous evaluation stops: %s", decision.reason.value)
                    return result
                checkpoint = decision.checkpoint
                assert checkpoint is not None
                if evaluator is None:
                    evaluator = self._evaluator(input_fn, name)
                try:
                    outcome = evaluator.evaluate(checkpoint.path)
                except Exception as err:
                    if not disk.is_vanished_error(err):
                        raise
                    log.warning(
                        "checkpoint %s vanished before evaluation; skipped", checkpoint.path
                    )
                    state = ce.record_vanished(new_state, before=state)
                    continue
                result = self._evaluated(dict(outcome))
                step = int(result.get("global_step", checkpoint.step))
                if only_once:
                    disk.save_progress(self.model_dir, name, checkpoint)
                if export:
                    final = (finished is not None and step >= finished) or (
                        self._train_steps is not None and step >= self._train_steps
                    )
                    ex.run_exports(
                        self._export_strategies,
                        self._estimator,
                        checkpoint_path=checkpoint.path,
                        eval_result=result,
                        is_final=final,
                    )
                state = ce.record_result(
                    new_state,
                    global_step=step,
                    keep_going=_ask(predicate, arity, result, checkpoint.path),
                )
        finally:
            if evaluator is not None:
                evaluator.close()

    def train_and_evaluate(self) -> tuple[dict[str, Any] | None, list[Any]]:
        """Train to ``train_steps``, evaluating new checkpoints during training.

        A checkpoint saved at least ``eval_every_n_steps`` steps after the last
        evaluated one (or after the step training started at) is evaluated in this
        process as soon as it is saved; then the final checkpoint is evaluated unless it
        already was, and every export strategy runs.

        Returns:
            ``(eval_result, export_results)``.
        """
        config = self._tf_config()
        self._maybe_start_server(config)
        disk.clear_done(self.model_dir, self._task_name(config))
        policy = train_eval.TrainEvalPolicy(eval_every_n_steps=self._eval_every_n_steps)
        evaluator: Evaluator | None = None
        box: dict[str, Any] = {
            "state": train_eval.TrainEvalState(baseline_step=self._global_step()),
            "result": None,
        }
        experiment = self

        def evaluate(path: str) -> dict[str, Any]:
            nonlocal evaluator
            if evaluator is None:
                evaluator = experiment._evaluator(experiment._eval_input_fn, None)
            return experiment._evaluated(dict(evaluator.evaluate(path)))

        class _Listener(tf.estimator.CheckpointSaverListener):  # type: ignore[misc]
            def after_save(self, session: Any, global_step_value: int) -> None:
                decision, box["state"] = train_eval.after_save(
                    box["state"], policy, saved_step=int(global_step_value)
                )
                if decision.action is not train_eval.Action.EVALUATE:
                    return
                latest = experiment._latest()
                if latest is None or latest.step != int(global_step_value):
                    return
                box["result"] = evaluate(latest.path)
                train_steps = experiment._train_steps
                if train_steps is not None and latest.step >= train_steps:
                    return  # the last save: the final export (is_final=True) follows
                ex.run_exports(
                    experiment._export_strategies,
                    experiment._estimator,
                    checkpoint_path=latest.path,
                    eval_result=box["result"],
                    is_final=False,
                    only_exporters=True,
                )

        try:
            self._train(max_steps=self._train_steps, listeners=[_Listener()])
            final = self._latest()
            if final is not None and train_eval.final_evaluation_owed(
                box["state"], final_step=final.step
            ):
                box["result"] = evaluate(final.path)
                box["state"] = train_eval.record_final(box["state"], final_step=final.step)
        finally:
            if evaluator is not None:
                evaluator.close()
        if config.is_chief or not config.is_distributed:
            self._write_done(config)
        exported = ex.run_exports(
            self._export_strategies,
            self._estimator,
            checkpoint_path=final.path if final else None,
            eval_result=box["result"],
            is_final=True,
        )
        return box["result"], exported

    def continuous_train_and_evaluate(
        self, continuous_eval_predicate_fn: Callable[..., bool] | None = None
    ) -> tuple[dict[str, Any] | None, list[Any]]:
        """Alternate training iterations and evaluations until training ends.

        Each iteration trains ``train_steps_per_iteration`` steps (never past
        ``train_steps``), releases training, evaluates, exports and asks the predicate.

        Args:
            continuous_eval_predicate_fn: Called with the last result (None before the
                first); False stops.

        Returns:
            ``(eval_result, export_results)`` of the last iteration.

        Raises:
            ValueError: ``continuous_eval_predicate_fn`` is neither None nor callable.
        """
        arity = _predicate_arity(continuous_eval_predicate_fn)
        keep_going = _ask(continuous_eval_predicate_fn, arity, None, None)
        result: dict[str, Any] | None = None
        exported: list[Any] = []
        trained: int | None = None
        requested: int | None = None
        evaluator: Evaluator | None = None
        step = self._global_step()
        try:
            while True:
                decision = iteration.next_iteration(
                    train_steps_per_iteration=self._train_steps_per_iteration,
                    train_steps=self._train_steps,
                    global_step=step,
                    keep_going=keep_going,
                    last_trained_steps=trained,
                    last_requested_steps=requested,
                )
                if decision.step is iteration.Step.STOP:
                    log.info("continuous_train_and_evaluate stops: %s", decision.reason.value)
                    break
                requested = decision.steps
                self._train(steps=requested)
                latest = self._latest()
                new_step = latest.step if latest else step
                trained, step = new_step - step, new_step
                ran_out = iteration.input_ran_out(requested=requested, trained=trained)
                if latest is None or trained == 0:
                    continue
                if evaluator is None:
                    evaluator = self._evaluator(self._eval_input_fn, None)
                result = self._evaluated(dict(evaluator.evaluate(latest.path)))
                final = ran_out or (self._train_steps is not None and step >= self._train_steps)
                exported = ex.run_exports(
                    self._export_strategies,
                    self._estimator,
                    checkpoint_path=latest.path,
                    eval_result=result,
                    is_final=final,
                )
                keep_going = _ask(continuous_eval_predicate_fn, arity, result, latest.path)
                if ran_out:
                    log.info("training input ran out after %d of %d steps", trained, requested)
        finally:
            if evaluator is not None:
                evaluator.close()
        return result, exported

    def run_std_server(self) -> None:
        """Start this task's TensorFlow server and serve until training is finished.

        Unlike ``server.join()``, which blocks forever, it returns once every training
        task (chief/master and workers) has written its completion record.

        Raises:
            ValueError: TF_CONFIG has no cluster task for this process to serve.
        """
        from core.completion import all_training_done, training_tasks

        config = self._tf_config()
        started_wall = time.time()
        self._server = start_server(config)
        expected = training_tasks({job: len(a) for job, a in config.cluster.items()})
        logged = False
        while not all_training_done(
            disk.read_done(self.model_dir, since=started_wall, train_steps=self._train_steps),
            expected,
        ):
            if not logged:
                log.info("serving until %d training tasks finish", len(expected))
                logged = True
            self.sleep(0.5)
        log.info("all training tasks finished; server exits")

    def test(self) -> dict[str, Any]:
        """Train 1 step, evaluate 1 step and export: a smoke test of the whole pipeline.

        Returns:
            The evaluation result.
        """
        self._estimator.train(self._train_input_fn, hooks=list(self._train_hooks), steps=1)
        result = self._estimator.evaluate(
            self._eval_input_fn, steps=1, hooks=list(self._eval_hooks)
        )
        result = self._evaluated(dict(result))
        latest = self._latest()
        ex.run_exports(
            self._export_strategies,
            self._estimator,
            checkpoint_path=latest.path if latest else None,
            eval_result=result,
            is_final=True,
        )
        return result
