"""The Experiment: runs an Estimator's schedules by applying the core's decisions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from core._validate import check, instance, non_negative_secs
from core.errors import ConfigError, ConfigTypeError
from core.settings import ExperimentSettings
from shell import exports as ex
from shell import schedules
from shell.protocol import check_hooks, missing_members
from shell.schedules import EvalListener


def _check_parts(estimator: Any, train_input_fn: Any, eval_input_fn: Any) -> None:
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

    The seven schedule settings are held in one frozen `ExperimentSettings` record
    (`settings`); `from_settings` builds an Experiment from such a record.

    Raises:
        ValueError: ``estimator`` lacks the Estimator interface, ``export_strategies``
            has the wrong type, or a step/delay argument is out of range.
        TypeError: A hook list or one of its elements is not a SessionRunHook.
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
        _check_parts(estimator, train_input_fn, eval_input_fn)
        try:
            settings = ExperimentSettings(
                train_steps=train_steps,
                eval_steps=eval_steps,
                eval_delay_secs=eval_delay_secs,
                continuous_eval_throttle_secs=continuous_eval_throttle_secs,
                eval_every_n_steps=eval_every_n_steps,
                delay_workers_by_global_step=delay_workers_by_global_step,
                train_steps_per_iteration=train_steps_per_iteration,
            )
        except ConfigTypeError as err:  # the seed documents ValueError for a bad setting
            raise ConfigError(err.field, err.value, err.problem) from None
        self._setup(
            estimator,
            train_input_fn,
            eval_input_fn,
            settings=settings,
            train_hooks=train_hooks,
            eval_hooks=eval_hooks,
            export_strategies=export_strategies,
        )

    @classmethod
    def from_settings(
        cls,
        estimator: Any,
        train_input_fn: Callable[..., Any],
        eval_input_fn: Callable[..., Any],
        *,
        settings: ExperimentSettings,
        train_hooks: Sequence[Any] | None = None,
        eval_hooks: Sequence[Any] | None = None,
        export_strategies: Any = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_secs: float = 0.05,
        continuous_eval_predicate_fn: Callable[..., bool] | None = None,
        eval_in_background: bool | None = None,
    ) -> Experiment:
        """An Experiment whose schedule settings are ``settings``.

        Args:
            estimator: Object implementing the Estimator interface.
            train_input_fn: The training input_fn.
            eval_input_fn: The evaluation input_fn.
            settings: The schedule settings (already checked by the record).
            train_hooks: ``SessionRunHook``s for training.
            eval_hooks: ``SessionRunHook``s for evaluation.
            export_strategies: An ExportStrategy or Exporter, an iterable of them, or None.
            clock: Monotonic clock of the schedules (a test seam).
            sleep: Sleep function of the schedules (a test seam).
            poll_secs: How often continuous_eval looks for a new checkpoint.
            continuous_eval_predicate_fn: The default predicate of continuous_eval,
                continuous_eval_on_train_data and continuous_train_and_evaluate (when
                their own is None), also asked by train_and_evaluate after each
                evaluation (False stops training early; see
                `set_continuous_eval_predicate_fn`).
            eval_in_background: Overrides ``settings.eval_in_background`` (None keeps
                it): train_and_evaluate evaluates each due checkpoint in a background
                thread while training goes on (see `shell.train_eval_bg`).

        Raises:
            ValueError: As the constructor; TypeError: ``settings`` is no
                ExperimentSettings, or ``eval_in_background`` is no bool.
        """
        check(instance(ExperimentSettings, "an ExperimentSettings"), "settings", settings)
        if eval_in_background is not None:
            settings = attrs.evolve(settings, eval_in_background=eval_in_background)
        check(non_negative_secs, "poll_secs", poll_secs)
        _check_parts(estimator, train_input_fn, eval_input_fn)
        experiment = cls.__new__(cls)
        experiment._setup(
            estimator,
            train_input_fn,
            eval_input_fn,
            settings=settings,
            train_hooks=train_hooks,
            eval_hooks=eval_hooks,
            export_strategies=export_strategies,
            clock=clock,
            sleep=sleep,
            poll_secs=poll_secs,
        )
        experiment.set_continuous_eval_predicate_fn(continuous_eval_predicate_fn)
        return experiment

    def _setup(
        self,
        estimator: Any,
        train_input_fn: Callable[..., Any],
        eval_input_fn: Callable[..., Any],
        *,
        settings: ExperimentSettings,
        train_hooks: Sequence[Any] | None,
        eval_hooks: Sequence[Any] | None,
        export_strategies: Any,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_secs: float = 0.05,
    ) -> None:
        self._estimator = estimator
        self._train_input_fn = train_input_fn
        self._eval_input_fn = eval_input_fn
        self._settings = settings
        self._train_hooks = check_hooks("train_hooks", train_hooks)
        self._eval_hooks = check_hooks("eval_hooks", eval_hooks)
        self._export_strategies = ex.normalize(export_strategies)
        self._eval_listeners: list[EvalListener] = []
        self._servers: list[Any] = []  # the std server, once started: lives with us
        self._clock = clock
        self._sleep = sleep
        self._poll_secs = poll_secs
        self._predicate: Callable[..., bool] | None = None

    # ----------------------------------------------------------------- properties
    @property
    def settings(self) -> ExperimentSettings:
        """The schedule settings (a frozen record)."""
        return self._settings

    @property
    def estimator(self) -> Any:
        """The estimator."""
        return self._estimator

    @property
    def train_steps(self) -> int | None:
        """Global step training stops at (None: forever)."""
        return self._settings.train_steps

    @property
    def eval_steps(self) -> int | None:
        """Evaluation batches (None: until the input is exhausted)."""
        return self._settings.eval_steps

    @property
    def poll_secs(self) -> float:
        """How often continuous_eval looks for a new checkpoint."""
        return self._poll_secs

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
        self._train_hooks = [*self._train_hooks, *check_hooks("additional_hooks", additional_hooks)]

    def extend_eval_hooks(self, additional_hooks: Iterable[Any]) -> None:
        """Add evaluation hooks (the caller's list is never mutated)."""
        self._eval_hooks = [*self._eval_hooks, *check_hooks("additional_hooks", additional_hooks)]

    def set_continuous_eval_predicate_fn(self, predicate_fn: Callable[..., bool] | None) -> None:
        """Set the job's default continue-predicate (None: none), e.g.
        `shell.stop_when_no_improvement`.

        It is the default of continuous_eval, continuous_eval_on_train_data and
        continuous_train_and_evaluate when their own argument is None (same 1- or
        2-argument forms); train_and_evaluate asks it after each evaluation and stops
        training early on False; in a cluster the evaluator's False stops the whole job.

        Raises:
            ValueError: ``predicate_fn`` is neither None nor callable.
        """
        schedules.predicate_arity(predicate_fn)
        self._predicate = predicate_fn

    @property
    def continuous_eval_predicate_fn(self) -> Callable[..., bool] | None:
        """The job's default continue-predicate (None: none)."""
        return self._predicate

    def on_evaluation(self, listener: EvalListener) -> None:
        """Call ``listener(eval_result)`` after every evaluation (progress displays)."""
        self._eval_listeners.append(listener)

    # ----------------------------------------------------------------- helpers
    def _run(self) -> schedules.Run:
        """The parts a schedule runs with, as they are now."""
        return schedules.Run(
            estimator=self._estimator,
            train_input_fn=self._train_input_fn,
            eval_input_fn=self._eval_input_fn,
            settings=self._settings,
            train_hooks=tuple(self._train_hooks),
            eval_hooks=tuple(self._eval_hooks),
            export_strategies=self._export_strategies,
            listeners=tuple(self._eval_listeners),
            servers=self._servers,
            clock=self._clock,
            sleep=self._sleep,
            poll_secs=self._poll_secs,
            predicate=self._predicate,
        )

    # ----------------------------------------------------------------- schedules
    def train(self, delay_secs: float | None = None) -> Any:
        """Fit the estimator on the training data, to ``train_steps`` (None: forever).

        Workers wait first: ``delay_secs`` if given, else the core's start delay
        (``min(60, index * 5)`` s, or the global-step gate). In a distributed config
        the task's std server is started first; a cluster worker then waits until the
        chief has initialised the model, skips training if the chief has already
        finished, and stops when the chief finishes (`shell.worker.join_training`).

        Args:
            delay_secs: Start training after this many seconds.

        Returns:
            The trained estimator.
        """
        return schedules.train(self._run(), delay_secs)

    def evaluate(self, delay_secs: float | None = None) -> dict[str, Any]:
        """Evaluate the latest checkpoint on the evaluation data.

        Args:
            delay_secs: Start after this many seconds (None: ``eval_delay_secs``).

        Returns:
            The metrics of ``Estimator.evaluate`` (with ``global_step``).
        """
        return schedules.evaluate(self._run(), delay_secs)

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
        return schedules.continuous_eval(
            self._run(),
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
        return schedules.continuous_eval(
            self._run(),
            self._train_input_fn,
            name="train",
            delay_secs=delay_secs,
            throttle_delay_secs=throttle_delay_secs,
            only_once=True,
            predicate=continuous_eval_predicate_fn,
            export=False,
        )

    def train_and_evaluate(self) -> tuple[dict[str, Any] | None, list[Any]]:
        """Train to ``train_steps``, evaluating new checkpoints during training.

        A checkpoint saved at least ``eval_every_n_steps`` steps after the last
        evaluated one (or after the step training started at) is evaluated in this
        process as soon as it is saved; then the final checkpoint is evaluated unless it
        already was, and every export strategy runs. With ``eval_in_background`` the
        evaluations run in a worker thread while training goes on, and their results
        (listeners, predicate, exports) are handled in checkpoint order at the next saves
        and after training (`shell.train_eval_bg`).

        Returns:
            ``(eval_result, export_results)``.
        """
        return schedules.train_and_evaluate(self._run())

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
        return schedules.continuous_train_and_evaluate(self._run(), continuous_eval_predicate_fn)

    def run_std_server(self) -> None:
        """Start this task's TensorFlow server and serve until training is finished.

        Unlike ``server.join()``, which blocks forever, it returns once every training
        task (chief/master and workers) has written its completion record.

        Raises:
            ValueError: TF_CONFIG has no cluster task for this process to serve.
        """
        schedules.run_std_server(self._run())

    def test(self) -> dict[str, Any]:
        """Train 1 step, evaluate 1 step and export: a smoke test of the whole pipeline.

        Returns:
            The evaluation result.
        """
        return schedules.smoke_test(self._run())
