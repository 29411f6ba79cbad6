"""Tiny real estimators and in-memory data shared by the shell tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from core.settings import ExperimentSettings
from shell._tf import tf
from shell.experiment import Experiment

N_ROWS = 64


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small linear regression problem: y = 2*x0 - x1 + 0.5 + noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_ROWS, 2)).astype("float32")
    y = (2 * x[:, 0] - x[:, 1] + 0.5 + 0.01 * rng.normal(size=N_ROWS)).astype("float32")
    return x, y.reshape(-1, 1)


def input_fn(*, repeat: bool, batch: int = 16, seed: int = 0) -> Callable[[], Any]:
    """A Dataset input_fn over `data`; repeating for training, one epoch for evaluation."""
    x, y = data(seed)

    def fn() -> Any:
        ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(batch)
        return ds.repeat() if repeat else ds

    return fn


def finite_train_input_fn(epochs: int, batch: int = 16) -> Callable[[], Any]:
    """Training input that runs out after `epochs` epochs (N_ROWS/batch steps each)."""
    x, y = data()

    def fn() -> Any:
        return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(batch).repeat(epochs)

    return fn


def model_fn(features: Any, labels: Any, mode: Any, params: Any) -> Any:
    """One dense layer regressor with Adam, plus an MAE metric."""
    x = features["x"]
    layer = tf.compat.v1.layers.Dense(1, name="out")
    pred = layer(x)
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode, predictions={"y": pred})
    loss = tf.compat.v1.losses.mean_squared_error(labels, pred)
    if mode == tf.estimator.ModeKeys.EVAL:
        mae = tf.compat.v1.metrics.mean_absolute_error(labels, pred)
        return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"mae": mae})
    opt = tf.compat.v1.train.AdamOptimizer(params.get("lr", 0.05))
    train_op = opt.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def estimator(model_dir: str, *, save_steps: int = 10, keep: int = 50, **params: Any) -> Any:
    """A tiny custom-model_fn Estimator checkpointing every `save_steps` steps."""
    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        save_checkpoints_steps=save_steps,
        save_checkpoints_secs=None,
        keep_checkpoint_max=keep,
        log_step_count_steps=1_000_000,
        save_summary_steps=1_000_000,
    )
    return tf.estimator.Estimator(model_fn=model_fn, config=config, params=params)


def linear(model_dir: str, *, save_steps: int = 10) -> Any:
    """A canned LinearRegressor over the same data."""
    config = tf.estimator.RunConfig(
        model_dir=model_dir,
        save_checkpoints_steps=save_steps,
        save_checkpoints_secs=None,
        log_step_count_steps=1_000_000,
    )
    column = tf.feature_column.numeric_column("x", shape=(2,))
    return tf.estimator.LinearRegressor([column], config=config)


def serving_input_fn() -> Any:
    """A serving input receiver for exports: a float tensor `x` of shape (None, 2)."""
    x = tf.compat.v1.placeholder(tf.float32, shape=(None, 2), name="x")
    return tf.estimator.export.ServingInputReceiver({"x": x}, {"x": x})


# --- helpers for the schedule tests (test_experiment, test_schedules, test_race, ...) ---


class StepCounter(tf.estimator.SessionRunHook):  # type: ignore[misc]
    """A SessionRunHook counting `after_run` calls (evaluation or training batches)."""

    def __init__(self) -> None:
        self.runs = 0

    def after_run(self, run_context: Any, run_values: Any) -> None:
        self.runs += 1


def train_to(model_dir: str, steps: int, *, save_steps: int = 10, keep: int = 50) -> Any:
    """Train a fresh `estimator` in `model_dir` to global step `steps`; returns it."""
    est = estimator(model_dir, save_steps=save_steps, keep=keep)
    est.train(input_fn(repeat=True), max_steps=steps)
    return est


def raising_input_fn() -> Any:
    """An input_fn that fails if anything calls it (nothing may run at construction)."""
    raise AssertionError("input_fn was called")


class SpyEstimator:
    """A fake Estimator that records calls (and mutates the hook lists it receives).

    Clearer than a real Estimator where a test checks what the Experiment passes in.
    """

    def __init__(self, model_dir: str) -> None:
        self.model_dir = model_dir
        self.config = None
        self.train_calls: list[dict[str, Any]] = []
        self.eval_calls: list[dict[str, Any]] = []
        self.on_train: Callable[[], None] | None = None

    def train(
        self,
        input_fn: Any,
        hooks: Any = None,
        steps: Any = None,
        max_steps: Any = None,
        saving_listeners: Any = None,
    ) -> Any:
        """Record the call, run `on_train`, then append to `hooks` like a careless callee."""
        self.train_calls.append(
            {"hooks": list(hooks or []), "steps": steps, "max_steps": max_steps}
        )
        if self.on_train is not None:
            self.on_train()
        if hooks is not None:
            hooks.append("appended-by-estimator")
        return self

    def evaluate(
        self,
        input_fn: Any,
        steps: Any = None,
        hooks: Any = None,
        checkpoint_path: Any = None,
        name: Any = None,
    ) -> dict[str, Any]:
        """Record the call, append to `hooks`, return fixed metrics."""
        self.eval_calls.append({"hooks": list(hooks or []), "steps": steps})
        if hooks is not None:
            hooks.append("appended-by-estimator")
        return {"loss": 0.0, "global_step": 0}

    def export_saved_model(self, export_dir_base: str, serving_input_receiver_fn: Any) -> Any:
        """Not used by these tests."""
        raise AssertionError("export_saved_model was called")

    def latest_checkpoint(self) -> None:
        """There are never checkpoints."""
        return None


class RecordingExporter(tf.estimator.Exporter):  # type: ignore[misc]
    """A `tf.estimator.Exporter` recording (checkpoint basename, is_the_final_export) per call."""

    def __init__(self, name: str = "recording") -> None:
        self._name = name
        self.calls: list[tuple[str, bool]] = []

    @property
    def name(self) -> str:
        """The export directory name."""
        return self._name

    def export(
        self,
        estimator: Any,
        export_path: str,
        checkpoint_path: Any,
        eval_result: Any,
        is_the_final_export: bool,
    ) -> None:
        """Record the call; write nothing."""
        import os

        self.calls.append((os.path.basename(checkpoint_path or ""), bool(is_the_final_export)))


@contextlib.contextmanager
def training_in_background(estimator: Any, max_steps: int) -> Iterator[list[BaseException]]:
    """Train `estimator` to `max_steps` in a thread; yields the list of its errors.

    On exit the thread is joined (60 s bound); the caller asserts the list is empty.
    """
    errors: list[BaseException] = []

    def train() -> None:
        try:
            estimator.train(input_fn(repeat=True), max_steps=max_steps)
        except BaseException as err:  # reported through `errors`
            errors.append(err)

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        thread.join(timeout=60)
        if thread.is_alive():
            errors.append(TimeoutError("the background trainer did not finish within 60 s"))


SEAMS = ("clock", "sleep", "poll_secs")
PARTS = ("train_hooks", "eval_hooks", "export_strategies", "continuous_eval_predicate_fn")


def experiment(estimator: Any, train_input_fn: Any, eval_input_fn: Any, **kwargs: Any) -> Any:
    """An Experiment built with `Experiment.from_settings`: the seed's keyword arguments plus
    the test seams ``clock=``, ``sleep=`` and ``poll_secs=``."""
    extra = {k: kwargs.pop(k) for k in (*SEAMS, *PARTS) if k in kwargs}
    return Experiment.from_settings(
        estimator,
        train_input_fn,
        eval_input_fn,
        settings=ExperimentSettings(**kwargs),
        **extra,
    )
