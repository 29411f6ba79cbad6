"""`Run`: the parts a schedule runs with (an Experiment's, at the time of the call)."""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from core.checkpoints import Checkpoint
from core.completion import end_reason
from core.errors import ConfigError
from core.faults import lifecycle_policy
from core.lifecycle import Done, LifecyclePolicy
from core.settings import ExperimentSettings
from core.tf_config import TFConfig
from core.workers import starts_server
from shell import disk, job, strategy
from shell import exports as ex
from shell._tf import tf
from shell.evaluating import LazyEvaluator
from shell.evaluator import make_evaluator
from shell.servers import start_server
from shell.worker import ensure_device_filters

log = logging.getLogger("tfexperiment")
_ESTIMATOR = tf.estimator.Estimator

__all__ = ["EvalListener", "Result", "Run", "ask", "predicate_arity", "task_name", "tf_config"]

EvalListener = Callable[[dict[str, Any]], None]
Result = dict[str, Any]


class _OnBegin(tf.estimator.SessionRunHook):  # type: ignore[misc]
    """Calls ``callback()`` from `begin`: the model_fn ran, training's graph is complete."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def begin(self) -> None:
        """Training's graph is built: hand that on."""
        self._callback()


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


def ask(predicate: Any, arity: int, result: Result | None, path: str | None) -> bool:
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
    predicate: Callable[..., bool] | None = None

    @property
    def model_dir(self) -> str:
        """The estimator's model directory."""
        return str(self.estimator.model_dir)

    @property
    def policy(self) -> LifecyclePolicy:
        """The job's lifecycle policy (from ``settings.chief_lost_after_secs``)."""
        return lifecycle_policy(self.settings.chief_lost_after_secs)

    def guard(self, config: TFConfig) -> job.TrainingGuard:
        """A `shell.job.TrainingGuard` for this task's training."""
        return job.TrainingGuard(
            self.model_dir,
            config,
            self.policy,
            task=task_name(config),
            train_steps=self.settings.train_steps,
            step=self.global_step,
        )

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
        guard: job.TrainingGuard | None = None,
        on_graph: Callable[[], None] | None = None,
    ) -> None:
        """``estimator.train`` via `strategy.train`, with the training hooks (and ``extra_hooks``).

        The ``guard``'s stop hook and ``on_graph`` (called once training's graph is complete:
        from the `begin` of a hook after every other) go to a real ``tf.estimator.Estimator``
        only: an object that merely has the Estimator interface gets exactly the user's hooks.
        """
        own: list[Any] = []
        if isinstance(self.estimator, _ESTIMATOR):
            own += [guard.hook] if guard is not None else []
            own += [_OnBegin(on_graph)] if on_graph is not None else []
        strategy.train(
            self.estimator,
            self.train_input_fn,
            hooks=[*self.train_hooks, *extra_hooks, *own],
            steps=steps,
            max_steps=max_steps,
            saving_listeners=list(listeners) or None,
        )

    def write_done(
        self,
        config: TFConfig,
        *,
        step: int | None = None,
        chief_finished: bool = False,
        told: str = "",
    ) -> None:
        """Write this task's completion record (and its `Done`), with the core's end reason."""
        step = self.global_step() if step is None else step
        reached = self.settings.reached(step)
        reason = end_reason(reached=reached, chief_finished=chief_finished, told=told)
        task = task_name(config)
        disk.write_done(self.model_dir, task, final_step=step, reason=reason)
        job.write_record(
            self.model_dir, Done(task=task, t=time.time(), reason=reason.value, final_step=step)
        )
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
