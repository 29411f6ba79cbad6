"""Build an Estimator's evaluation graph once, exactly as `Estimator.evaluate` builds it.

`build_eval_graph` makes the graph `Estimator._actual_eval` + `evaluation._evaluate_once`
make for one evaluation (same calls, in the same order, in the same distribution-strategy
scope), and finds out what each evaluation must reset: whether one session can serve every
evaluation, or whether something in it keeps state across `session.run` calls that only a
fresh session restarts (queues, legacy stateful random kernels, reshuffling datasets).
Under ``eval_distribute`` the replicas' per-device inputs get no autotune thread
(`shell.replica_input`): each evaluation initialises them again, which destroys the last ones.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf
from tensorflow.python.training import evaluation as _tf_evaluation
from tensorflow.python.training import training as _tf_training
from tensorflow_estimator.python.estimator import estimator as _estimator_lib
from tensorflow_estimator.python.estimator import util as _estimator_util

from shell.fed_input import FedInput, build_fed_input, rewind
from shell.replica_input import no_replica_autotune

__all__ = [
    "EvalGraph",
    "UnsupportedEvaluationError",
    "build_eval_graph",
    "check_estimator",
    "check_ready",
]

log = logging.getLogger("tfexperiment")

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
        "RandomDataset",
        "RandomDatasetV2",
    }
)
# Datasets that draw a new order for each iteration from a seed generator kept in the
# session: re-initialising the iterator in the same session would give another order.
_RESHUFFLING_DATASETS = frozenset(
    {
        "ShuffleDataset",
        "ShuffleDatasetV2",
        "ShuffleDatasetV3",
        "ShuffleAndRepeatDataset",
        "ShuffleAndRepeatDatasetV2",
    }
)
# Input hooks Estimator adds itself (their `begin` only builds the iterator initializer).
_INPUT_HOOK_TYPES = (
    _estimator_util._DatasetInitializerHook,
    _estimator_util.DistributedIteratorInitializerHook,
)
# Estimator members whose default behaviour the persistent path reproduces; a subclass that
# overrides one of them (e.g. TPUEstimator) evaluates differently, so it gets the fallback.
_REPRODUCED_MEMBERS = (
    "evaluate",
    "_actual_eval",
    "_convert_eval_steps_to_hooks",
    "_evaluate_build_graph",
    "_call_model_fn_eval",
    "_call_model_fn_eval_distributed",
    "_evaluate_run",
    "_get_features_and_labels_from_input_fn",
    "_get_iterator_from_input_fn",
)


class UnsupportedEvaluationError(ValueError):
    """The persistent path cannot reproduce `Estimator.evaluate` for this setup."""


@dataclass
class EvalGraph:
    """One evaluation graph and what each evaluation runs in it.

    Attributes:
        graph: The `tf.Graph` (not finalized until the first evaluation's hooks began).
        scaffold: The scaffold `_evaluate_build_graph` returned (saver, init and ready ops).
        eval_ops: `[update_op, update_eval_step]`, as `_evaluate_once` runs them per step.
        eval_step_value: The eval step after `eval_ops` (what `_StopAfterNEvalsHook` reads).
        eval_dict: The metric value tensors plus `global_step` (the final ops).
        input_hooks: Estimator's own input hooks (iterator initializers), in its order.
        evaluation_hooks: The EstimatorSpec's `evaluation_hooks`.
        strategy: The `eval_distribute` strategy, or None.
        queue_runners: Whether the graph has queue runners (the input_fn's queues).
        fresh_session_reasons: Why each evaluation needs a new session (empty: one session).
        feed_fns: The queue runners' Python feed functions with their state after the build.
        fed_input: Where the input is fed from (`shell.fed_input`), or None: the graph's own
            input runs in the evaluation session.
    """

    graph: Any
    scaffold: Any
    eval_ops: list[Any]
    eval_step_value: Any
    eval_dict: dict[str, Any]
    input_hooks: list[Any]
    evaluation_hooks: list[Any]
    strategy: Any
    queue_runners: bool
    fresh_session_reasons: list[str] = field(default_factory=list)
    feed_fns: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    fed_input: FedInput | None = None

    def rewind_feed_fns(self) -> None:
        """Puts the queue runners' Python feed functions back in their state after the build.

        `numpy_input_fn` and `pandas_input_fn` feed their queues from Python objects that
        count epochs and positions; `Estimator.evaluate` builds new ones per evaluation.
        """
        rewind(self.feed_fns)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Makes the graph the default (and enters the strategy's scope), as TF does."""
        with self.graph.as_default():
            if self.strategy is None:
                yield
            else:
                with self.strategy.scope():
                    yield


def check_estimator(estimator: Any) -> None:
    """Raises unless `estimator` evaluates like a plain `tf.estimator.Estimator`.

    Args:
        estimator: The candidate estimator.

    Raises:
        UnsupportedEvaluationError: If it is not an Estimator, overrides how it evaluates,
            or evaluates through the distribute coordinator (multi-worker).
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
    if config.eval_distribute is not None and getattr(config, "_distribute_coordinator_mode", None):
        raise UnsupportedEvaluationError(
            "evaluation through the distribute coordinator (multi-worker eval_distribute)"
        )
    strategy = estimator._eval_distribution
    if strategy is not None and getattr(strategy.extended, "steps_per_run", 1) > 1:
        raise UnsupportedEvaluationError("eval_distribute with steps_per_run > 1")


def build_eval_graph(estimator: Any, input_fn: Any) -> EvalGraph:
    """Builds the evaluation graph `Estimator.evaluate(input_fn, ...)` would build.

    Args:
        estimator: A `tf.estimator.Estimator` accepted by `check_estimator`.
        input_fn: The evaluation input_fn.

    Returns:
        The graph and its evaluation ops; hooks have not begun, the graph is not finalized.

    Raises:
        UnsupportedEvaluationError: If the graph cannot be evaluated persistently.
    """
    check_estimator(estimator)
    strategy = estimator._eval_distribution
    graph = tf.Graph()
    with graph.as_default():
        scope: Any = contextlib.nullcontext()
        if strategy is not None:
            # As `_actual_eval`: the iterations variable outside the strategy's scope.
            _tf_training.get_or_create_steps_per_run_variable()
            scope = strategy.scope()
        with scope, no_replica_autotune():
            # checkpoint_path only decides warm starting, which evaluating a checkpoint skips.
            scaffold, update_op, eval_dict, all_hooks = estimator._evaluate_build_graph(
                input_fn, hooks=[], checkpoint_path="<persistent evaluator>"
            )
            # As `evaluation._evaluate_once`: count evaluation steps in `eval_step`.
            eval_step = _tf_evaluation._get_or_create_eval_step()
            update_eval_step = tf.compat.v1.assign_add(eval_step, 1, use_locking=True)
            eval_ops = [update_op, update_eval_step]
            eval_step_value = _tf_evaluation._get_latest_eval_step_value(eval_ops)
            input_hooks, evaluation_hooks = _split_hooks(all_hooks)
            # Estimator's input hooks only build their initializer in `begin`: once per graph.
            for hook in input_hooks:
                hook.begin()
        if graph.get_collection("saved_model_initializers"):
            raise UnsupportedEvaluationError("the graph has saved_model_initializers")
        runners = graph.get_collection(tf.compat.v1.GraphKeys.QUEUE_RUNNERS)
        queue_runners = bool(runners)
        feed_fns = [f for r in runners for f in getattr(r, "_feed_fns", ()) if f is not None]
        reasons = []
        if queue_runners:
            reasons.append("the input_fn's queue runners (their queues close at the end)")
        if not input_hooks:
            reasons.append("the input_fn returned tensors, not a tf.data.Dataset")
        starts = [*eval_ops, eval_step_value, *eval_dict.values(), *_initializers(graph)]
        starts.extend(getattr(h, "_initializer", None) for h in input_hooks)
        starts = [s for s in starts if s is not None]
        found = _stateful_ops(graph, starts)
        if found:
            reasons.append(f"ops that keep state in the session {sorted(found)}")
        fed_input = None
        if reasons and strategy is None and not input_hooks:
            fed_input = _feedable(estimator, input_fn, graph, starts)
        if fed_input is not None:
            # The graph's own input never runs: MonitoredSession must not start its runners.
            graph.clear_collection(tf.compat.v1.GraphKeys.QUEUE_RUNNERS)
            reasons, feed_fns = [], []
    return EvalGraph(
        graph=graph,
        scaffold=scaffold,
        eval_ops=eval_ops,
        eval_step_value=eval_step_value,
        eval_dict=eval_dict,
        input_hooks=input_hooks,
        evaluation_hooks=evaluation_hooks,
        strategy=strategy,
        queue_runners=queue_runners,
        fresh_session_reasons=reasons,
        feed_fns=[(f, dict(vars(f))) for f in feed_fns],
        fed_input=fed_input,
    )


def _feedable(estimator: Any, input_fn: Any, graph: Any, starts: list[Any]) -> FedInput | None:
    """The input graph that can feed `graph`, if only its input keeps state in the session.

    Args:
        estimator: The Estimator (evaluating without a strategy).
        input_fn: The evaluation input_fn (it returned tensors).
        graph: The evaluation graph built from it.
        starts: What each evaluation runs in `graph`.

    Returns:
        The input graph, or None (logged at INFO) when the input cannot be fed, or when the
        model itself keeps state in the session.
    """
    fed = build_fed_input(estimator, input_fn, graph)
    if isinstance(fed, str):
        log.info("cannot feed the evaluation input from an input graph: %s", fed)
        return None
    found = _stateful_ops(graph, starts, fed=fed.targets)
    if found:
        log.info("the model keeps state in the session %s: no input graph", sorted(found))
        return None
    return fed


def _split_hooks(all_hooks: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Splits `_evaluate_build_graph`'s hooks (input hooks first) into input and spec hooks.

    Args:
        all_hooks: `input_hooks + [] + evaluation_hooks`, as built with no user hooks.

    Returns:
        `(input_hooks, evaluation_hooks)`.
    """
    count = 0
    while count < len(all_hooks) and isinstance(all_hooks[count], _INPUT_HOOK_TYPES):
        count += 1
    return list(all_hooks[:count]), list(all_hooks[count:])


def _initializers(graph: Any) -> list[Any]:
    """The ops `Scaffold.default_local_init_op` runs: local variable and table initializers.

    Args:
        graph: The evaluation graph.

    Returns:
        The initializer ops (no op is created).
    """
    local = graph.get_collection(tf.compat.v1.GraphKeys.LOCAL_VARIABLES)
    tables = graph.get_collection(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)
    return [v.initializer for v in local if hasattr(v, "initializer")] + list(tables)


def _stateful_ops(graph: Any, fetches: Iterable[Any], *, fed: Sequence[Any] = ()) -> set[str]:
    """Finds op types running `fetches` may execute whose state outlives a `session.run`.

    Conservative: when a reachable op calls a function (`If`, `While`, a dataset's `map`...),
    every function in the graph's library counts as reachable.

    Args:
        graph: The graph the fetches live in.
        fetches: Tensors and operations that each evaluation runs.
        fed: Tensors given in a `feed_dict`: what computes them does not run.

    Returns:
        The op types found (empty when there are none).
    """
    fed_names = {t.name for t in fed}
    stack = [getattr(f, "op", f) for f in fetches]
    seen: set[str] = set()
    found: set[str] = set()
    calls_functions = False
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        found.update(_stateful_type(op.type, op.node_def.attr))
        if any(value.HasField("func") or value.list.func for value in op.node_def.attr.values()):
            calls_functions = True
        stack.extend(t.op for t in op.inputs if t.name not in fed_names)
        stack.extend(op.control_inputs)
    if calls_functions:
        for function in graph.as_graph_def().library.function:
            for node in function.node_def:
                found.update(_stateful_type(node.op, node.attr))
    return found


def _stateful_type(op_type: str, attrs: Any) -> set[str]:
    """`{op_type}` if an op of this type and attributes keeps state across runs, else `{}`.

    Args:
        op_type: The op's type.
        attrs: Its attribute map (`NodeDef.attr`).

    Returns:
        A set of zero or one op type.
    """
    if op_type in _STATEFUL_RANDOM_OPS:
        return {op_type}
    reshuffles = "reshuffle_each_iteration" not in attrs or attrs["reshuffle_each_iteration"].b
    if op_type in _RESHUFFLING_DATASETS and reshuffles:
        return {op_type}
    return set()


def check_ready(session: Any, ready_op: Any, stage: str) -> None:
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
