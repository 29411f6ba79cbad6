"""Evaluate Estimator checkpoints with an evaluation graph and session built once, not per call."""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import tensorflow as tf
from tensorflow.python.training import evaluation as _tf_evaluation
from tensorflow_estimator.python.estimator import estimator as _estimator_lib
from tensorflow_estimator.python.estimator import util as _estimator_util

__all__ = [
    "Evaluator",
    "FallbackEvaluator",
    "PersistentEvaluator",
    "UnsupportedEvaluationError",
    "make_evaluator",
]

_logging = tf.compat.v1.logging

# Legacy stateful random kernels keep their RNG state in the session: a persistent session
# would continue the sequence where a fresh `Estimator.evaluate` session restarts it.
# (`Stateful*` ops of `tf.random.Generator` keep state in a variable, which is restored.)
_STATEFUL_RANDOM_OPS = frozenset(
    {
        "Multinomial",
        "NonDeterministicInts",
        "ParameterizedTruncatedNormal",
        "RandomCrop",
        "RandomGamma",
        "RandomPoisson",
        "RandomPoissonV2",
        "RandomShuffle",
        "RandomShuffleQueue",
        "RandomShuffleQueueV2",
        "RandomStandardNormal",
        "RandomUniform",
        "RandomUniformInt",
        "TruncatedNormal",
    }
)

# Estimator members whose default behaviour the persistent path reproduces; a subclass that
# overrides one of them (e.g. TPUEstimator) evaluates differently, so it gets the fallback.
_REPRODUCED_MEMBERS = (
    "evaluate",
    "_actual_eval",
    "_evaluate_build_graph",
    "_call_model_fn_eval",
    "_evaluate_run",
    "_get_features_and_labels_from_input_fn",
)


class UnsupportedEvaluationError(ValueError):
    """The persistent path cannot reproduce `Estimator.evaluate` for this setup."""


class Evaluator(abc.ABC):
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

    def __enter__(self) -> Evaluator:
        """Returns self."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Closes the evaluator."""
        self.close()


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


class PersistentEvaluator(Evaluator):
    """Builds the evaluation graph and session once; each call restores a checkpoint into them.

    It reproduces `Estimator.evaluate(input_fn, steps, checkpoint_path=..., name=...)` for a
    plain single-device `tf.estimator.Estimator` (custom or canned) whose input_fn returns a
    `tf.data.Dataset`: same graph (built by the Estimator's own `_evaluate_build_graph`, so the
    same variable names, graph seed, loss metric and scaffold), same restore (the scaffold's
    saver), fresh metric accumulators (the scaffold's `local_init_op`) and input (the
    Dataset's initializable iterator re-initialised) per call, and the same summaries written
    to `estimator.eval_dir(name)` with the Estimator's private `_write_dict_to_summary` and
    `_write_checkpoint_path_to_summary`. Calls are serialised by a lock and only ever touch
    this evaluator's own `tf.Graph`, so they may come from a `CheckpointSaverListener` while
    `estimator.train()` runs. Prefer `make_evaluator`, which falls back to
    `estimator.evaluate` whenever this class raises `UnsupportedEvaluationError`.
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
        """Stores the arguments; the graph and session are built on the first evaluation.

        Args:
            estimator: A `tf.estimator.Estimator` (or canned subclass) without distribution.
            input_fn: The evaluation input_fn; it must return a `tf.data.Dataset`.
            steps: Batches per evaluation, or None to evaluate until the Dataset ends.
            hooks: Must be empty: hooks are only supported by `FallbackEvaluator`.
            name: Evaluation name (metrics go to `eval_<name>`).

        Raises:
            ValueError: If `steps <= 0`.
            UnsupportedEvaluationError: If hooks are given or the estimator is not supported.
        """
        _check_steps(steps)
        if hooks:
            raise UnsupportedEvaluationError(
                f"hooks={list(hooks)!r}: evaluation hooks are only supported by "
                "FallbackEvaluator (their begin/end contract is per evaluation graph)"
            )
        _check_estimator(estimator)
        self._estimator = estimator
        self._input_fn = input_fn
        self._steps = steps
        self._name = name
        self._output_dir: str = estimator.eval_dir(name)
        self._lock = threading.Lock()
        self._closed = False
        self._graph: Any = None
        self._session: Any = None
        self._scaffold: Any = None
        self._input_hook: Any = None
        self._eval_ops: list[Any] = []
        self._eval_dict: dict[str, Any] = {}
        self._ready_checked = False

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
            self._build()
            with self._graph.as_default():
                results = self._run(checkpoint_path)
                step = results[tf.compat.v1.GraphKeys.GLOBAL_STEP]
                # Private Estimator helpers, used on purpose: the event files must be
                # exactly those `Estimator.evaluate` writes (TensorBoard, exporters).
                _estimator_lib._write_dict_to_summary(
                    output_dir=self._output_dir, dictionary=results, current_global_step=step
                )
                _estimator_lib._write_checkpoint_path_to_summary(
                    output_dir=self._output_dir,
                    checkpoint_path=checkpoint_path,
                    current_global_step=step,
                )
            return results

    def close(self) -> None:
        """Closes the session; later `evaluate` calls raise RuntimeError."""
        with self._lock:
            self._closed = True
            if self._session is not None:
                self._session.close()
                self._session = None

    def _build(self) -> None:
        """Builds the graph, its scaffold and the session once (caller holds the lock).

        Raises:
            UnsupportedEvaluationError: If the graph cannot be evaluated persistently.
        """
        if self._session is not None:
            return
        graph = tf.Graph()
        with graph.as_default():
            # Same graph as `Estimator._actual_eval` builds: seed, global step, input_fn,
            # model_fn via `_call_model_fn`, loss metric, scaffold local_init_op.
            scaffold, update_op, eval_dict, all_hooks = self._estimator._evaluate_build_graph(
                self._input_fn, hooks=[], checkpoint_path="<persistent evaluator>"
            )
            self._input_hook = _dataset_hook(all_hooks)
            if graph.get_collection(tf.compat.v1.GraphKeys.QUEUE_RUNNERS):
                raise UnsupportedEvaluationError("the evaluation graph has queue runners")
            if graph.get_collection("saved_model_initializers"):
                raise UnsupportedEvaluationError("the graph has saved_model_initializers")
            # As `evaluation._evaluate_once`: count evaluation steps in `eval_step`.
            eval_step = _tf_evaluation._get_or_create_eval_step()
            update_eval_step = tf.compat.v1.assign_add(eval_step, 1, use_locking=True)
            eval_ops = [update_op, update_eval_step]
            random_ops = _stateful_random_ops(graph, [*eval_ops, *eval_dict.values()])
            if random_ops:
                raise UnsupportedEvaluationError(
                    f"evaluation runs stateful random ops {sorted(random_ops)}: their state "
                    "would carry over between evaluations"
                )
            self._input_hook.begin()
            scaffold.finalize()  # Also finalizes the graph: nothing is added after this.
            session = tf.compat.v1.Session(
                target=self._estimator.config.evaluation_master,
                graph=graph,
                config=self._estimator._session_config,
            )
        self._graph = graph
        self._scaffold = scaffold
        self._eval_ops = eval_ops
        self._eval_dict = eval_dict
        self._session = session

    def _run(self, checkpoint_path: str) -> dict[str, Any]:
        """Restores, resets metrics and input, runs the steps and reads the metrics.

        Args:
            checkpoint_path: Path prefix of the checkpoint to restore.

        Returns:
            The fetched metric values, keyed like `Estimator.evaluate`'s result.

        Raises:
            RuntimeError: If the restored model is not ready (as `SessionManager` reports).
        """
        session, scaffold = self._session, self._scaffold
        _logging.info("Starting evaluation of %s", checkpoint_path)
        start = time.time()
        scaffold.saver.restore(session, checkpoint_path)
        if not self._ready_checked:
            _check_ready(session, scaffold.ready_for_local_init_op, "local_init")
        session.run(scaffold.local_init_op)
        if not self._ready_checked:
            _check_ready(session, scaffold.ready_op, "evaluation")
            self._ready_checked = True
        self._input_hook.after_create_session(session, None)
        done = 0
        try:
            while self._steps is None or done < self._steps:
                session.run(self._eval_ops)
                done += 1
        except tf.errors.OutOfRangeError:
            pass
        results: dict[str, Any] = session.run(self._eval_dict)
        _logging.info("Evaluation of %d steps took %.5fs", done, time.time() - start)
        return results


def make_evaluator(
    estimator: Any,
    input_fn: Any,
    *,
    steps: int | None,
    hooks: Sequence[Any] = (),
    name: str | None = None,
) -> Evaluator:
    """Returns a `PersistentEvaluator` when it can reproduce `estimator.evaluate`, else a fallback.

    The persistent graph is built here (in its own `tf.Graph`) to find out; the fallback is
    used for hooks, distribution strategies, Estimator subclasses that change evaluation,
    objects that are not `tf.estimator.Estimator`s, input_fns that do not return a
    `tf.data.Dataset`, `evaluation_hooks` in the EstimatorSpec, queue runners and
    stateful random ops in the evaluation graph.

    Args:
        estimator: The Estimator (or any object with its `evaluate` signature).
        input_fn: The evaluation input_fn.
        steps: Batches per evaluation, or None to evaluate until the input ends.
        hooks: `SessionRunHook`s for every evaluation (they force the fallback).
        name: Evaluation name (metrics go to `eval_<name>`).

    Returns:
        An `Evaluator` whose results equal `estimator.evaluate(..., checkpoint_path=...)`.

    Raises:
        ValueError: If `steps <= 0`.
    """
    _check_steps(steps)
    try:
        evaluator = PersistentEvaluator(estimator, input_fn, steps=steps, hooks=hooks, name=name)
        with evaluator._lock:
            evaluator._build()
    except UnsupportedEvaluationError as error:
        _logging.info("Evaluating with estimator.evaluate: %s", error)
        return FallbackEvaluator(estimator, input_fn, steps=steps, hooks=hooks, name=name)
    return evaluator


def _check_estimator(estimator: Any) -> None:
    """Raises unless `estimator` evaluates exactly like a plain single-device Estimator.

    Args:
        estimator: The candidate estimator.

    Raises:
        UnsupportedEvaluationError: If it is not supported by the persistent path.
    """
    if not isinstance(estimator, _estimator_lib.Estimator):
        raise UnsupportedEvaluationError(f"{type(estimator).__name__} is not an Estimator")
    overridden = [
        member
        for member in _REPRODUCED_MEMBERS
        if getattr(type(estimator), member, None) is not getattr(_estimator_lib.Estimator, member)
    ]
    if overridden:
        raise UnsupportedEvaluationError(
            f"{type(estimator).__name__} overrides Estimator members {overridden}"
        )
    config = estimator.config
    if config.eval_distribute is not None or getattr(config, "_distribute_coordinator_mode", None):
        raise UnsupportedEvaluationError("evaluation with a distribution strategy")


def _dataset_hook(hooks: Sequence[Any]) -> Any:
    """Returns the Dataset-initializer hook, the only hook the persistent path supports.

    Args:
        hooks: All hooks `_evaluate_build_graph` returned (input and evaluation hooks).

    Returns:
        The `_DatasetInitializerHook` of the input_fn's Dataset.

    Raises:
        UnsupportedEvaluationError: If input_fn gave no Dataset or there are other hooks.
    """
    dataset_hooks = [h for h in hooks if isinstance(h, _estimator_util._DatasetInitializerHook)]
    if len(dataset_hooks) != 1:
        raise UnsupportedEvaluationError(
            "input_fn did not return a tf.data.Dataset, so its input cannot be rewound"
        )
    others = [h for h in hooks if h is not dataset_hooks[0]]
    if others:
        raise UnsupportedEvaluationError(f"the EstimatorSpec has evaluation_hooks {others!r}")
    return dataset_hooks[0]


def _stateful_random_ops(graph: Any, fetches: Iterable[Any]) -> set[str]:
    """Finds legacy stateful random op types that running `fetches` may execute.

    Conservative: when a reachable op calls a function (`If`, `While`, `PartitionedCall`...),
    every function in the graph's library counts as reachable.

    Args:
        graph: The graph the fetches live in.
        fetches: Tensors and operations that each evaluation runs.

    Returns:
        The stateful random op types found (empty when there are none).
    """
    stack = [getattr(f, "op", f) for f in fetches]
    seen: set[str] = set()
    found: set[str] = set()
    calls_functions = False
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type in _STATEFUL_RANDOM_OPS:
            found.add(op.type)
        if any(value.HasField("func") or value.list.func for value in op.node_def.attr.values()):
            calls_functions = True
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    if calls_functions:
        for function in graph.as_graph_def().library.function:
            found.update(n.op for n in function.node_def if n.op in _STATEFUL_RANDOM_OPS)
    return found


def _check_ready(session: Any, ready_op: Any, stage: str) -> None:
    """Raises like `SessionManager` when `ready_op` reports uninitialized variables.

    Args:
        session: The evaluation session.
        ready_op: A string tensor listing what is not initialized, or None.
        stage: What the model should be ready for (for the message).

    Raises:
        RuntimeError: If `ready_op` reports anything.
    """
    if ready_op is None:
        return
    not_ready = session.run(ready_op)
    if not_ready.size:
        names = ", ".join(n.decode() if isinstance(n, bytes) else str(n) for n in not_ready)
        raise RuntimeError(f"Model not ready for {stage} after restore; uninitialized: {names}")
