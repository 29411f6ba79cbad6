"""Feed the evaluation graph from its input_fn rebuilt in a small graph of its own.

An input_fn that returns tensors (`numpy_input_fn`, `pandas_input_fn`, queues, one-shot
iterators) keeps its state in the session: a queue, once closed at the end of the data,
cannot be reopened, so the evaluation graph would need a new session (its executors built
again) for every evaluation. Instead the input_fn is built a second time, the way
`Estimator._evaluate_build_graph` builds it (graph seed, global step, then the input_fn,
so every op has the same name and the same seed), in an *input graph*. Each evaluation
opens a fresh session on that small graph only (its queues, runners and iterators start
from the beginning, as in `Estimator.evaluate`'s new graph) and feeds each batch it yields
into the same tensors of the evaluation graph, whose session is kept: the model sees the
very same values, so its metrics are the same, bit for bit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from tensorflow_estimator.python.estimator.mode_keys import ModeKeys

__all__ = ["FedInput", "InputSession", "build_fed_input", "fed_tensors", "open_input", "rewind"]

from shell.closing import Closing

log = logging.getLogger("tfexperiment")

# Seconds the input graph's runner threads get to end after the evaluation asked them to.
_STOP_GRACE_SECS = 10.0


class _NotRead:
    """No batch was read ahead."""


_NOT_READ = _NotRead()


class FedInput:
    """The input graph of one evaluation graph, and which of its tensors feed which.

    While training goes on between evaluations, the next evaluation's input session is
    already opened (in a helper thread, right after the last one was closed), so its
    queues fill off the evaluation's path. Sessions are opened and closed one after
    another, never two at once: the queue runners' Python feed functions are shared.

    Attributes:
        graph: The input graph.
        fetches: Its tensors that the input_fn returned (features, then labels).
        targets: The evaluation graph's tensors of the same names, fed with them.
    """

    def __init__(
        self,
        *,
        graph: Any,
        fetches: list[Any],
        targets: list[Any],
        init_op: Any,
        feed_fns: list[tuple[Any, dict[str, Any]]],
        target: str,
        config: Any,
    ) -> None:
        """Stores the built input graph (see `build_fed_input`)."""
        self.graph = graph
        self.fetches = fetches
        self.targets = targets
        self._init_op = init_op
        self._feed_fns = feed_fns
        self._target = target
        self._config = config
        self._preparing: threading.Thread | None = None
        self._ready: InputSession | None = None

    def open(self) -> InputSession:
        """A fresh session on the input graph: its input starts from the beginning.

        Returns:
            The session's batches; close it (or use it as a context manager) when done.

        Raises:
            tf.errors.OpError: From initialising the input graph.
        """
        ready = self._take_ready()
        return ready if ready is not None else self._open_now()

    def close(self) -> None:
        """Closes the session opened ahead, if any (the input graph stays usable)."""
        ready = self._take_ready()
        if ready is not None:
            ready._stop()

    def _take_ready(self) -> InputSession | None:
        if self._preparing is not None:
            self._preparing.join()
            self._preparing = None
        ready, self._ready = self._ready, None
        return ready

    def _open_now(self) -> InputSession:
        rewind(self._feed_fns)
        session = tf.compat.v1.Session(target=self._target, graph=self.graph, config=self._config)
        try:
            session.run(self._init_op)
            coord = tf.train.Coordinator()
            with self.graph.as_default():
                threads = tf.compat.v1.train.start_queue_runners(
                    sess=session, coord=coord, daemon=True, start=True
                )
        except BaseException:
            session.close()
            raise
        return InputSession(self, session, coord, threads)

    def _retire(self, used: InputSession) -> None:
        """Stops `used` and opens the next session, in a helper thread (see the class)."""
        self._preparing = threading.Thread(
            target=self._replace, args=(used,), name="tfexperiment-eval-input", daemon=True
        )
        self._preparing.start()

    def _replace(self, used: InputSession) -> None:
        try:
            used._stop()
            ready = self._open_now()
        except Exception as error:  # The next `open` opens (and fails) in its caller.
            log.debug("opening the next evaluation input ahead failed: %s", error)
            return
        try:
            ready._fetch_first()
        except Exception as error:
            log.debug("reading the next evaluation's first batch ahead failed: %s", error)
            ready._stop()
            return
        self._ready = ready


class InputSession(Closing):
    """One evaluation's pass over the input: `next_feed` per step, then `close`."""

    def __init__(self, fed: FedInput, session: Any, coord: Any, threads: Sequence[Any]) -> None:
        """Wraps an opened input session (made by `FedInput.open`)."""
        self._fed = fed
        self._session = session
        self._coord = coord
        self._threads = list(threads)
        self._first: dict[Any, Any] | _NotRead | None = _NOT_READ

    def next_feed(self) -> dict[Any, Any] | None:
        """The next batch as a `feed_dict` for the evaluation graph; None once input ended.

        Raises:
            tf.errors.OpError: Other than the end of the input, from the input graph.
        """
        if not isinstance(self._first, _NotRead):
            feed, self._first = self._first, _NOT_READ
            return feed
        try:
            values = self._session.run(self._fed.fetches)
        except tf.errors.OutOfRangeError:
            return None
        return dict(zip(self._fed.targets, values, strict=True))

    def hooks(self, on_end: Sequence[Any]) -> list[Any]:
        """For a `MonitoredSession`: a hook feeding each run, ending the input as TF's would.

        Args:
            on_end: Ops of the run that do not read the input: the run in which the graph's
                own input ends still runs them (the evaluation step count), so they are run
                before the end is raised.

        Returns:
            The hook, to go last in the session's hooks.
        """
        return [_FeedHook(self, on_end)]

    def _fetch_first(self) -> None:
        """Reads the first batch now (ahead of the evaluation); `next_feed` hands it out."""
        self._first = self.next_feed()

    def close(self) -> None:
        """Ends this pass; the session is stopped, and the next one opened, off this thread."""
        self._fed._retire(self)

    def _stop(self) -> None:
        """Stops the input's runner threads (as `MonitoredSession` does) and the session."""
        self._coord.request_stop()
        try:
            self._coord.join(
                self._threads, stop_grace_period_secs=_STOP_GRACE_SECS, ignore_live_threads=True
            )
        finally:
            self._session.close()


class _FeedHook(tf.compat.v1.train.SessionRunHook):  # type: ignore[misc]
    """Feeds each `MonitoredSession` run the next batch; at the end raises OutOfRangeError.

    The error comes from `before_run`, after the hooks before this one: `MonitoredSession`
    then ends as when the graph's own input runs out inside the run (hooks' `end` is called,
    the error is swallowed by its `with` block).
    """

    def __init__(self, batches: InputSession, on_end: Sequence[Any]) -> None:
        self._batches = batches
        self._on_end = list(on_end)

    def before_run(self, run_context: Any) -> Any:
        """The next batch as the run's feed, or OutOfRangeError once the input ended."""
        feed = self._batches.next_feed()
        if feed is None:
            if self._on_end:
                run_context.session.run(self._on_end)
            raise tf.errors.OutOfRangeError(None, None, "End of the evaluation input")
        return tf.compat.v1.train.SessionRunArgs(None, feed_dict=feed)


class _OwnInput(Closing):
    """The graph reads its own input: every step runs with an empty `feed_dict`."""

    def hooks(self, on_end: Sequence[Any]) -> list[Any]:
        """No hooks: the graph's own input ends inside its run."""
        return []

    def next_feed(self) -> dict[Any, Any] | None:
        """An empty `feed_dict` (the input's end shows as `OutOfRangeError` in the graph)."""
        return {}


def open_input(fed: FedInput | None) -> InputSession | _OwnInput:
    """One evaluation's input: batches from `fed`, or (None) the graph's own input.

    Args:
        fed: The input graph feeding the evaluation graph, or None.

    Returns:
        A context manager whose `next_feed()` gives each step's `feed_dict`, None at the end.
    """
    return _OwnInput() if fed is None else fed.open()


def fed_tensors(features: Any, labels: Any) -> list[Any] | None:
    """The tensors an input_fn returned, in a fixed order; None if some are not tensors.

    Args:
        features: The features (a tensor, a dict of them, or composite tensors).
        labels: The labels, or None.

    Returns:
        Every component tensor (composites such as `SparseTensor` expanded), or None.
    """
    flat = tf.nest.flatten((features, labels), expand_composites=True)
    tensors = [t for t in flat if t is not None]
    if not tensors or not all(isinstance(t, tf.Tensor) for t in tensors):
        return None
    return tensors


def build_fed_input(estimator: Any, input_fn: Any, eval_graph: Any) -> FedInput | str:
    """Builds `input_fn` in an input graph that can feed `eval_graph`, or says why not.

    Args:
        estimator: The Estimator whose evaluation graph `eval_graph` is (no strategy).
        input_fn: The evaluation input_fn, already built once into `eval_graph`.
        eval_graph: The evaluation graph.

    Returns:
        The input graph with its fetches and the evaluation graph's matching targets, or a
        reason (a string) why the input cannot be fed.
    """
    graph = tf.Graph()
    with graph.as_default():
        # As `Estimator._evaluate_build_graph`, up to and including the input_fn call.
        tf.compat.v1.random.set_random_seed(estimator.config.tf_random_seed)
        estimator._create_and_assert_global_step(graph)
        features, labels, input_hooks = estimator._get_features_and_labels_from_input_fn(
            input_fn, ModeKeys.EVAL
        )
        if input_hooks:
            return "the input_fn returned a tf.data.Dataset the second time"
        fetches = fed_tensors(features, labels)
        if fetches is None:
            return "the input_fn returned something other than tensors"
        extra = [
            v.op.name
            for v in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
            if v.op.name != "global_step"
        ]
        if extra:
            return f"the input_fn makes global variables {extra} (restored from checkpoints)"
        init_op = tf.group(
            tf.compat.v1.local_variables_initializer(), tf.compat.v1.tables_initializer()
        )
    targets = []
    for tensor in fetches:
        try:
            target = eval_graph.get_tensor_by_name(tensor.name)
        except (KeyError, ValueError):
            return f"the input_fn built {tensor.name} only the second time"
        if target.dtype != tensor.dtype or not target.shape.is_compatible_with(tensor.shape):
            return f"the input_fn built {tensor.name} differently the second time"
        targets.append(target)
    graph.finalize()
    runners = graph.get_collection(tf.compat.v1.GraphKeys.QUEUE_RUNNERS)
    feed_fns = [f for r in runners for f in getattr(r, "_feed_fns", ()) if f is not None]
    return FedInput(
        graph=graph,
        fetches=fetches,
        targets=targets,
        init_op=init_op,
        feed_fns=[(f, dict(vars(f))) for f in feed_fns],
        target=estimator.config.evaluation_master,
        config=estimator._session_config,
    )


def rewind(feed_fns: Sequence[tuple[Any, dict[str, Any]]]) -> None:
    """Puts queue runners' Python feed functions back in their state after the build.

    `numpy_input_fn` and `pandas_input_fn` feed their queues from Python objects that
    count epochs and positions; `Estimator.evaluate` builds new ones per evaluation.

    Args:
        feed_fns: `(feed_fn, vars(feed_fn) copied right after the build)` pairs.
    """
    for feed_fn, state in feed_fns:
        vars(feed_fn).clear()
        vars(feed_fn).update(state)
        generator = state.get("_generator_function")
        if generator is not None:  # _GeneratorFeedFn: a fresh generator, as when built
            feed_fn._iterator = generator()
