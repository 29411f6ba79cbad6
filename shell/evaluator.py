"""Evaluate Estimator checkpoints with an evaluation graph and session built once, not per call."""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from tensorflow.python.training import evaluation as _tf_evaluation
from tensorflow_estimator.python.estimator import estimator as _estimator_lib

from shell.closing import Closing
from shell.eval_graph import (
    EvalGraph,
    UnsupportedEvaluationError,
    build_eval_graph,
    check_estimator,
    check_ready,
)
from shell.fed_input import open_input

__all__ = [
    "Evaluator",
    "FallbackEvaluator",
    "PersistentEvaluator",
    "UnsupportedEvaluationError",
    "make_evaluator",
]

log = logging.getLogger("tfexperiment")
_tf_logging = tf.compat.v1.logging


class Evaluator(Closing, abc.ABC):
    """Evaluates checkpoints of one Estimator on one input_fn; a context manager."""

    @abc.abstractmethod
    def evaluate(self, checkpoint_path: str) -> dict[str, Any]:
        """Evaluates the model stored at `checkpoint_path`.

        Args:
            checkpoint_path: Path prefix of a checkpoint (e.g. `<model_dir>/model.ckpt-200`).

        Returns:
            The metrics, as `Estimator.evaluate` returns them (with `global_step`).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Releases resources; idempotent."""


def _check_steps(steps: int | None) -> None:
    """Raises like `Estimator.evaluate` does for a non-positive `steps`.

    Args:
        steps: Number of evaluation batches, or None for "until the input ends".

    Raises:
        ValueError: If `steps <= 0`.
    """
    if steps is not None and steps <= 0:
        raise ValueError(f"Must specify steps > 0, given: steps={steps!r}")


class FallbackEvaluator(Evaluator):
    """Delegates every evaluation to `estimator.evaluate(..., checkpoint_path=...)`."""

    def __init__(
        self,
        estimator: Any,
        input_fn: Any,
        *,
        steps: int | None,
        hooks: Sequence[Any] = (),
        name: str | None = None,
    ) -> None:
        """Stores the arguments of the `estimator.evaluate` calls to make.

        Args:
            estimator: Any object with the `Estimator.evaluate` signature.
            input_fn: The evaluation input_fn.
            steps: Batches per evaluation, or None to evaluate until the input ends.
            hooks: `SessionRunHook`s passed to every evaluation.
            name: Evaluation name (metrics go to `eval_<name>`).

        Raises:
            ValueError: If `steps <= 0`.
        """
        _check_steps(steps)
        self._estimator = estimator
        self._input_fn = input_fn
        self._steps = steps
        self._hooks = list(hooks)
        self._name = name

    def evaluate(self, checkpoint_path: str) -> dict[str, Any]:
        """Evaluates `checkpoint_path` with `estimator.evaluate`.

        Args:
            checkpoint_path: Path prefix of the checkpoint to evaluate.

        Returns:
            The dict `estimator.evaluate` returns.
        """
        result: dict[str, Any] = self._estimator.evaluate(
            self._input_fn,
            steps=self._steps,
            hooks=list(self._hooks),
            checkpoint_path=checkpoint_path,
            name=self._name,
        )
        return result

    def close(self) -> None:
        """Nothing to release."""


class _KeepOpenSession(tf.compat.v1.Session):  # type: ignore[misc]
    """A session that `MonitoredSession` may "close" after each evaluation: it stays open."""

    _really_close = False

    def close(self) -> None:
        """Does nothing until `close_for_good`."""
        if self._really_close:
            super().close()

    def close_for_good(self) -> None:
        """Closes the session."""
        self._really_close = True
        super().close()


class _RestoreSessionCreator(tf.compat.v1.train.SessionCreator):  # type: ignore[misc]
    """Restores a checkpoint into the persistent session (or, without one, a new session)."""

    def __init__(self, owner: PersistentEvaluator, checkpoint_path: str) -> None:
        self._owner = owner
        self._path = checkpoint_path

    def create_session(self) -> Any:
        """Returns the persistent session with `checkpoint_path` restored, locals reset."""
        return self._owner._restore(self._path)


class _BeginOnce(tf.compat.v1.train.SessionRunHook):  # type: ignore[misc]
    """Estimator's own input hook, whose `begin` (building its initializer) already ran."""

    def __init__(self, hook: Any) -> None:
        self._hook = hook

    def after_create_session(self, session: Any, coord: Any) -> None:
        """Re-initialises the input iterator: each evaluation restarts the input."""
        self._hook.after_create_session(session, coord)


class PersistentEvaluator(Evaluator):
    """Builds the evaluation graph once; each call restores a checkpoint and evaluates it.

    It reproduces `Estimator.evaluate(input_fn, steps, hooks, checkpoint_path=..., name=...)`
    for a `tf.estimator.Estimator` (custom or canned, with or without `eval_distribute`): the
    graph is built by the Estimator's own `_evaluate_build_graph` (same variable names, graph
    seed, loss metric, scaffold, strategy scope), then each evaluation restores the scaffold's
    saver, runs its `local_init_op` (fresh metric accumulators) and re-initialises the input.
    One session serves every evaluation unless something in the graph keeps state in the
    session. An input_fn returning tensors (queue runners: `numpy_input_fn`...) is built again
    in a small input graph whose fresh session per evaluation feeds the kept one
    (`shell.fed_input`). Where the model itself keeps state in the session (legacy stateful
    random ops), or a Dataset reshuffles, each evaluation gets a new session on the same graph,
    prepared as TF's `ChiefSessionCreator` prepares Estimator's. With hooks (yours, or the EstimatorSpec's
    `evaluation_hooks`) each evaluation runs in a `MonitoredSession`, as `_evaluate_once`
    does: `begin`, `after_create_session`, `before_run`/`after_run` per step, `end`, then the
    final metric fetch. One difference is unavoidable: from the second evaluation on, `begin`
    runs on the finalized graph (the graph is kept); a hook whose `begin` adds ops each time
    makes this evaluator hand that and every later evaluation to `estimator.evaluate`.
    Summaries are written to `estimator.eval_dir(name)` with Estimator's own helpers. Calls
    are serialised by a lock and only touch this evaluator's `tf.Graph`, so they may come from
    a `CheckpointSaverListener` while `estimator.train()` runs, or from another thread.
    """

    def __init__(
        self,
        estimator: Any,
        input_fn: Any,
        *,
        steps: int | None,
        hooks: Sequence[Any] = (),
        name: str | None = None,
    ) -> None:
        """Stores the arguments; the graph is built by `build` or the first evaluation.

        Args:
            estimator: A `tf.estimator.Estimator` (or canned subclass).
            input_fn: The evaluation input_fn.
            steps: Batches per evaluation, or None to evaluate until the input ends.
            hooks: `SessionRunHook`s run in every evaluation, as `estimator.evaluate` runs them.
            name: Evaluation name (metrics go to `eval_<name>`).

        Raises:
            ValueError: If `steps <= 0`.
            TypeError: If a hook is not a `SessionRunHook`.
            UnsupportedEvaluationError: If the estimator is not supported.
        """
        _check_steps(steps)
        self._hooks = _estimator_lib._check_hooks_type(hooks)
        check_estimator(estimator)
        self._estimator = estimator
        self._input_fn = input_fn
        self._steps = steps
        self._name = name
        self._output_dir: str = estimator.eval_dir(name)
        self._lock = threading.Lock()
        self._closed = False
        self._graph: EvalGraph | None = None
        self._session: _KeepOpenSession | None = None
        self._ready_checked = False
        self._fallback: FallbackEvaluator | None = None

    @property
    def reuses_session(self) -> bool:
        """Whether one session serves every evaluation (else one per evaluation); builds."""
        with self._lock:
            return self._build().fresh_session_reasons == []

    @property
    def feeds_input(self) -> bool:
        """Whether the input is fed from an input graph of its own (`shell.fed_input`)."""
        with self._lock:
            return self._build().fed_input is not None

    def build(self) -> None:
        """Builds the graph (and the session, where one serves all evaluations) now.

        Raises:
            UnsupportedEvaluationError: If the graph cannot be evaluated persistently.
        """
        with self._lock:
            self._build()

    def evaluate(self, checkpoint_path: str) -> dict[str, Any]:
        """Restores `checkpoint_path`, runs the evaluation and writes its summaries.

        Args:
            checkpoint_path: Path prefix of the checkpoint to evaluate.

        Returns:
            Metric values as `Estimator.evaluate` returns them (numpy scalars; `global_step`
            is the restored global step, an `np.int64`).

        Raises:
            RuntimeError: If the evaluator is closed, or the restored model is not ready.
            UnsupportedEvaluationError: If the first build finds an unsupported setup.
            ValueError: If `checkpoint_path` is not a valid checkpoint (from `Saver.restore`).
            tf.errors.OpError: From restoring or running the graph.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("PersistentEvaluator is closed")
            if self._fallback is not None:
                return self._fallback.evaluate(checkpoint_path)
            graph = self._build()
            with graph.scope():
                _tf_logging.info("Starting evaluation of %s", checkpoint_path)
                start = time.time()
                try:
                    results = self._run(graph, checkpoint_path)
                except _HookNeedsNewGraph as error:
                    log.info("evaluating with estimator.evaluate from now on: %s", error)
                    self._fallback = self._make_fallback()
                else:
                    _tf_logging.info("Inference Time : %.5fs", time.time() - start)
                    self._write_summaries(results, checkpoint_path)
            if self._fallback is not None:
                return self._fallback.evaluate(checkpoint_path)
            return results

    def _write_summaries(self, results: dict[str, Any], checkpoint_path: str) -> None:
        """Writes the evaluation's event file entries, as `Estimator._evaluate_run` does."""
        step = results[tf.compat.v1.GraphKeys.GLOBAL_STEP]
        # Private Estimator helpers, used on purpose: the event files must be exactly
        # those `Estimator.evaluate` writes (TensorBoard, exporters).
        _estimator_lib._write_dict_to_summary(
            output_dir=self._output_dir, dictionary=results, current_global_step=step
        )
        _estimator_lib._write_checkpoint_path_to_summary(
            output_dir=self._output_dir,
            checkpoint_path=checkpoint_path,
            current_global_step=step,
        )

    def close(self) -> None:
        """Closes the session; later `evaluate` calls raise RuntimeError."""
        with self._lock:
            self._closed = True
            if self._graph is not None and self._graph.fed_input is not None:
                self._graph.fed_input.close()
            if self._session is not None:
                self._session.close_for_good()
                self._session = None

    def _make_fallback(self) -> FallbackEvaluator:
        return FallbackEvaluator(
            self._estimator, self._input_fn, steps=self._steps, hooks=self._hooks, name=self._name
        )

    def _build(self) -> EvalGraph:
        """Builds the graph and, where one serves all evaluations, the session (caller locks).

        Returns:
            The evaluation graph.

        Raises:
            UnsupportedEvaluationError: If the graph cannot be evaluated persistently.
        """
        if self._graph is not None:
            return self._graph
        graph = build_eval_graph(self._estimator, self._input_fn)
        if graph.fresh_session_reasons:
            log.info(
                "evaluation graph built once, a new session per evaluation because of %s",
                "; ".join(graph.fresh_session_reasons),
            )
        else:
            self._session = _KeepOpenSession(
                target=self._estimator.config.evaluation_master,
                graph=graph.graph,
                config=self._estimator._session_config,
            )
        self._graph = graph
        return graph

    def _run(self, graph: EvalGraph, checkpoint_path: str) -> dict[str, Any]:
        """Runs one evaluation: the direct loop without hooks, else a `MonitoredSession`.

        Returns:
            The fetched metric values, keyed like `Estimator.evaluate`'s result.

        Raises:
            _HookNeedsNewGraph: If a hook's `begin` needs to add ops to the finalized graph.
        """
        if self._session is not None and not self._hooks and not graph.evaluation_hooks:
            return self._run_direct(graph, checkpoint_path)
        return self._run_monitored(graph, checkpoint_path)

    def _restore(self, checkpoint_path: str) -> Any:
        """Restores into the persistent session and resets its locals, as `SessionManager`.

        Without a persistent session, a new one is made on the kept graph first, as
        `ChiefSessionCreator` makes one. Readiness is checked on the first evaluation only:
        the graph does not change, and a checkpoint lacking a variable fails to restore.

        Raises:
            RuntimeError: If the restored model is not ready (as `SessionManager` reports).
        """
        assert self._graph is not None
        scaffold = self._graph.scaffold
        scaffold.finalize()  # Also finalizes the graph (idempotent).
        session = self._session
        if session is None:
            session = tf.compat.v1.Session(
                target=self._estimator.config.evaluation_master,
                graph=self._graph.graph,
                config=self._estimator._session_config,
            )
        scaffold.saver.restore(session, checkpoint_path)
        if not self._ready_checked:
            check_ready(session, scaffold.ready_for_local_init_op, "local_init")
        session.run(scaffold.local_init_op, feed_dict=scaffold.local_init_feed_dict)
        if not self._ready_checked:
            check_ready(session, scaffold.ready_op, "evaluation")
            self._ready_checked = True
        return session

    def _run_direct(self, graph: EvalGraph, checkpoint_path: str) -> dict[str, Any]:
        """`_evaluate_once` without hooks: restore, rewind the input, run the steps, fetch."""
        session = self._restore(checkpoint_path)
        for hook in graph.input_hooks:
            hook.after_create_session(session, None)
        with open_input(graph.fed_input) as batches:
            done = 0
            try:
                while self._steps is None or done < self._steps:
                    feed = batches.next_feed()
                    if feed is None:
                        break
                    session.run(graph.eval_ops, feed_dict=feed)
                    done += 1
            except tf.errors.OutOfRangeError:
                pass
        results: dict[str, Any] = session.run(graph.eval_dict)
        return results

    def _run_monitored(self, graph: EvalGraph, checkpoint_path: str) -> dict[str, Any]:
        """`_evaluate_once` on the kept graph: the same hooks, in the same order, same calls.

        Raises:
            _HookNeedsNewGraph: If a hook's `begin` needs to add ops to the finalized graph.
        """
        # As Estimator: input hooks, your hooks, the steps hook, evaluation_hooks, final ops.
        hooks: list[Any] = [_BeginOnce(hook) for hook in graph.input_hooks]
        hooks.extend(self._hooks)
        if self._steps is not None:
            stop = _tf_evaluation._StopAfterNEvalsHook(num_evals=self._steps)
            stop._set_evals_completed_tensor(graph.eval_step_value)
            hooks.append(stop)
        hooks.extend(graph.evaluation_hooks)
        final = tf.compat.v1.train.FinalOpsHook(graph.eval_dict)
        hooks.append(final)
        creator = _RestoreSessionCreator(self, checkpoint_path)
        graph.rewind_feed_fns()
        was_finalized = graph.graph.finalized
        try:
            with open_input(graph.fed_input) as batches:
                # Last, so every other hook's before_run came first, as when the graph's own
                # input raises OutOfRangeError inside the run (which still counts the step).
                hooks.extend(batches.hooks(on_end=graph.eval_ops[1:]))
                with tf.compat.v1.train.MonitoredSession(
                    session_creator=creator, hooks=hooks
                ) as session:
                    while not session.should_stop():
                        session.run(graph.eval_ops)
        except RuntimeError as error:
            if was_finalized and "finalized" in str(error):
                raise _HookNeedsNewGraph(f"a hook adds ops in each begin: {error}") from error
            raise
        finally:
            # MonitoredSession un-finalizes a graph it found unfinalized: keep it finalized,
            # so a later hook that would grow the graph each evaluation is detected.
            graph.scaffold.finalize()
        values: dict[str, Any] = final.final_ops_values
        return values


class _HookNeedsNewGraph(RuntimeError):
    """A hook needs to add ops to the evaluation graph in each evaluation."""


def make_evaluator(
    estimator: Any,
    input_fn: Any,
    *,
    steps: int | None,
    hooks: Sequence[Any] = (),
    name: str | None = None,
) -> Evaluator:
    """Returns a `PersistentEvaluator` when it can reproduce `estimator.evaluate`, else a fallback.

    The persistent graph is built here (in its own `tf.Graph`) to find out. The fallback
    (logged once at INFO with its reason) serves objects that are not `tf.estimator.Estimator`s,
    Estimator subclasses that change how they evaluate (e.g. TPUEstimator), multi-worker
    evaluation through the distribute coordinator, and graphs with `saved_model_initializers`.

    Args:
        estimator: The Estimator (or any object with its `evaluate` signature).
        input_fn: The evaluation input_fn.
        steps: Batches per evaluation, or None to evaluate until the input ends.
        hooks: `SessionRunHook`s for every evaluation.
        name: Evaluation name (metrics go to `eval_<name>`).

    Returns:
        An `Evaluator` whose results equal `estimator.evaluate(..., checkpoint_path=...)`.

    Raises:
        ValueError: If `steps <= 0`.
    """
    _check_steps(steps)
    try:
        evaluator = PersistentEvaluator(estimator, input_fn, steps=steps, hooks=hooks, name=name)
        evaluator.build()
    except UnsupportedEvaluationError as error:
        log.info("evaluating with estimator.evaluate (a new graph per evaluation): %s", error)
        return FallbackEvaluator(estimator, input_fn, steps=steps, hooks=hooks, name=name)
    return evaluator
