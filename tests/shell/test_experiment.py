"""Experiment on real tf.estimator: constructor, train, evaluate, continuous_eval, test."""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest

from core.errors import ConfigTypeError, FieldError
from core.settings import ExperimentSettings
from shell import Experiment, ExportStrategy, disk, run_experiment
from shell._tf import tf
from tests.shell import models

TRAINED_STEPS = 50
_EMPTY = inspect.Parameter.empty


def _experiment(model_dir: str, **kwargs: Any) -> Experiment:
    kwargs.setdefault("eval_steps", None)
    build = models.experiment if set(kwargs) & set(models.SEAMS) else Experiment
    return build(
        models.estimator(model_dir),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        **kwargs,
    )


def _steps(results: list[dict[str, Any]]) -> list[int]:
    return [int(r["global_step"]) for r in results]


class _Recorder:
    """An ExportStrategy export_fn that records (checkpoint_path, eval_result) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, dict[str, Any] | None]] = []

    def __call__(
        self,
        estimator: Any,
        export_path: str,
        checkpoint_path: str | None,
        eval_result: dict[str, Any] | None,
    ) -> str:
        self.calls.append((checkpoint_path, eval_result))
        return export_path


# ---------------------------------------------------------------- constructor & API

SEED_SIGNATURES = {
    Experiment.__init__: [
        ("self", _EMPTY),
        ("estimator", _EMPTY),
        ("train_input_fn", _EMPTY),
        ("eval_input_fn", _EMPTY),
        ("train_steps", None),
        ("eval_steps", 10),
        ("train_hooks", None),
        ("eval_hooks", None),
        ("eval_delay_secs", 0),
        ("continuous_eval_throttle_secs", 60),
        ("eval_every_n_steps", 1),
        ("delay_workers_by_global_step", False),
        ("export_strategies", None),
        ("train_steps_per_iteration", 100),
    ],
    Experiment.reset_export_strategies: [("self", _EMPTY), ("new_export_strategies", None)],
    Experiment.extend_train_hooks: [("self", _EMPTY), ("additional_hooks", _EMPTY)],
    Experiment.extend_eval_hooks: [("self", _EMPTY), ("additional_hooks", _EMPTY)],
    Experiment.train: [("self", _EMPTY), ("delay_secs", None)],
    Experiment.evaluate: [("self", _EMPTY), ("delay_secs", None)],
    Experiment.continuous_eval: [
        ("self", _EMPTY),
        ("delay_secs", None),
        ("throttle_delay_secs", None),
        ("evaluate_checkpoint_only_once", True),
        ("continuous_eval_predicate_fn", None),
    ],
    Experiment.continuous_eval_on_train_data: [
        ("self", _EMPTY),
        ("delay_secs", None),
        ("throttle_delay_secs", None),
        ("continuous_eval_predicate_fn", None),
    ],
    Experiment.train_and_evaluate: [("self", _EMPTY)],
    Experiment.continuous_train_and_evaluate: [
        ("self", _EMPTY),
        ("continuous_eval_predicate_fn", None),
    ],
    Experiment.run_std_server: [("self", _EMPTY)],
    Experiment.test: [("self", _EMPTY)],
    run_experiment: [("experiment_fn", _EMPTY), ("output_dir", _EMPTY), ("schedule", None)],
}


@pytest.mark.parametrize("function", list(SEED_SIGNATURES), ids=lambda f: f.__qualname__)
def test_signatures_match_the_seed(function: Any) -> None:
    """Every public callable has the seed's parameter names, order and defaults."""
    params = inspect.signature(function).parameters.values()
    assert [(p.name, p.default) for p in params] == SEED_SIGNATURES[function]


def test_nothing_runs_at_construction(tmp_path: Path) -> None:
    """Constructing an Experiment calls no input_fn, export_fn or estimator method."""

    def raising_export(*args: Any) -> None:
        raise AssertionError("export_fn was called")

    estimator = models.SpyEstimator(str(tmp_path))
    experiment = Experiment(
        estimator,
        models.raising_input_fn,
        models.raising_input_fn,
        train_steps=5,
        export_strategies=ExportStrategy("e", raising_export),
    )
    assert experiment.estimator is estimator
    assert estimator.train_calls == [] and estimator.eval_calls == []
    assert not os.path.exists(tmp_path / "tfexperiment")


def test_real_estimator_construction_runs_nothing(tmp_path: Path) -> None:
    """A real Estimator with raising input_fns constructs without training or writing."""
    model_dir = str(tmp_path / "m")
    Experiment(models.estimator(model_dir), models.raising_input_fn, models.raising_input_fn)
    assert tf.train.latest_checkpoint(model_dir) is None


class _HalfEstimator:
    model_dir = "/tmp/x"
    config = None

    def train(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.mark.parametrize(
    "estimator",
    [object(), "estimator", None, _HalfEstimator()],
    ids=["object", "str", "None", "no-evaluate"],
)
def test_non_estimator_is_a_value_error(estimator: Any) -> None:
    """An estimator lacking the Estimator interface raises ValueError naming `estimator`."""
    with pytest.raises(ValueError, match="estimator"):
        Experiment(estimator, models.raising_input_fn, models.raising_input_fn)


def test_half_estimator_names_the_missing_members() -> None:
    """The ValueError for a partial estimator lists the members it lacks."""
    with pytest.raises(ValueError, match="evaluate") as info:
        Experiment(_HalfEstimator(), models.raising_input_fn, models.raising_input_fn)
    assert "export_saved_model" in str(info.value)


@pytest.mark.parametrize(
    "strategies",
    ["export", b"export", 3, [ExportStrategy("a", print), "b"], (lambda: None,)],
    ids=["str", "bytes", "int", "list-with-str", "tuple-with-fn"],
)
def test_bad_export_strategies_are_value_errors(tmp_path: Path, strategies: Any) -> None:
    """export_strategies that is not a strategy, an iterable of them or None → ValueError."""
    with pytest.raises(ValueError, match="export_strategies"):
        Experiment(
            models.SpyEstimator(str(tmp_path)),
            models.raising_input_fn,
            models.raising_input_fn,
            export_strategies=strategies,
        )


@pytest.mark.parametrize("value", [0, -1, "x", 1.5, True])
def test_bad_train_steps_per_iteration_is_a_value_error(tmp_path: Path, value: Any) -> None:
    """train_steps_per_iteration must be None or a positive int, else ValueError."""
    with pytest.raises(ValueError, match="train_steps_per_iteration"):
        Experiment(
            models.SpyEstimator(str(tmp_path)),
            models.raising_input_fn,
            models.raising_input_fn,
            train_steps_per_iteration=value,
        )


@pytest.mark.parametrize("value", [None, 1, 30])
def test_good_train_steps_per_iteration_is_accepted(tmp_path: Path, value: Any) -> None:
    """None and positive ints are valid train_steps_per_iteration values."""
    Experiment(
        models.SpyEstimator(str(tmp_path)),
        models.raising_input_fn,
        models.raising_input_fn,
        train_steps_per_iteration=value,
    )


def test_properties(tmp_path: Path) -> None:
    """estimator, train_steps and eval_steps return what was passed in (seed defaults else)."""
    estimator = models.SpyEstimator(str(tmp_path))
    experiment = Experiment(
        estimator, models.raising_input_fn, models.raising_input_fn, train_steps=7, eval_steps=3
    )
    assert (experiment.estimator, experiment.train_steps, experiment.eval_steps) == (
        estimator,
        7,
        3,
    )
    default = Experiment(estimator, models.raising_input_fn, models.raising_input_fn)
    assert (default.train_steps, default.eval_steps) == (None, 10)


def test_reset_export_strategies_returns_the_old_tuple(tmp_path: Path) -> None:
    """reset_export_strategies installs the new strategies and returns the old ones as a tuple."""
    first = ExportStrategy("first", print)
    second = ExportStrategy("second", print)
    experiment = Experiment(
        models.SpyEstimator(str(tmp_path)),
        models.raising_input_fn,
        models.raising_input_fn,
        export_strategies=[first],
    )
    assert experiment.reset_export_strategies(second) == (first,)
    assert experiment.reset_export_strategies() == (second,)
    assert experiment.reset_export_strategies([first, second]) == ()
    assert experiment.export_strategies == (first, second)
    with pytest.raises(ValueError, match="export_strategies"):
        experiment.reset_export_strategies("nope")


def test_extend_train_hooks_never_mutates_the_callers_lists(tmp_path: Path) -> None:
    """extend_train_hooks copies: neither the constructor's nor the extension list changes."""
    h1, h2, h3 = (tf.estimator.SessionRunHook() for _ in range(3))
    given, extra = [h1], [h2]
    spy = models.SpyEstimator(str(tmp_path))
    experiment = Experiment(
        spy, models.raising_input_fn, models.raising_input_fn, train_hooks=given
    )
    experiment.extend_train_hooks(extra)
    experiment.extend_train_hooks((h3,))
    experiment.train()
    experiment.train()
    assert given == [h1] and extra == [h2]
    assert [c["hooks"] for c in spy.train_calls] == [[h1, h2, h3], [h1, h2, h3]]


def test_extend_eval_hooks_never_mutates_the_callers_lists(tmp_path: Path) -> None:
    """extend_eval_hooks copies: neither the constructor's nor the extension list changes."""
    h1, h2 = tf.estimator.SessionRunHook(), tf.estimator.SessionRunHook()
    given, extra = [h1], [h2]
    spy = models.SpyEstimator(str(tmp_path))
    experiment = Experiment(spy, models.raising_input_fn, models.raising_input_fn, eval_hooks=given)
    experiment.extend_eval_hooks(extra)
    experiment.evaluate()
    experiment.evaluate()
    assert given == [h1] and extra == [h2]
    assert [c["hooks"] for c in spy.eval_calls] == [[h1, h2], [h1, h2]]


# ---------------------------------------------------------------- train


def _done_record(model_dir: str) -> dict[str, Any]:
    with open(os.path.join(model_dir, "tfexperiment", "chief-0.done.json")) as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@pytest.mark.parametrize("make", [models.estimator, models.linear], ids=["model_fn", "canned"])
def test_train_reaches_train_steps_and_writes_the_completion_record(
    tmp_path: Path, make: Any
) -> None:
    """train() trains to train_steps, returns the estimator and writes chief-0.done.json."""
    model_dir = str(tmp_path / "m")
    estimator = make(model_dir)
    experiment = Experiment(
        estimator, models.input_fn(repeat=True), models.raising_input_fn, train_steps=12
    )
    assert experiment.train() is estimator
    assert disk.latest_checkpoint(model_dir).step == 12
    assert _done_record(model_dir) == {
        "task": "chief-0",
        "final_step": 12,
        "reason": "train_steps reached",
    }


def test_train_stopped_by_finite_input_records_input_exhausted(tmp_path: Path) -> None:
    """train() whose input runs out before train_steps records reason "training input ran out"."""
    model_dir = str(tmp_path / "m")
    experiment = Experiment(
        models.estimator(model_dir),
        models.finite_train_input_fn(1),
        models.raising_input_fn,
        train_steps=100,
    )
    experiment.train()
    assert _done_record(model_dir) == {
        "task": "chief-0",
        "final_step": 4,
        "reason": "training input ran out",
    }


def test_train_delay_secs_sleeps_via_experiment_sleep(tmp_path: Path) -> None:
    """train(delay_secs=...) waits through the experiment's `sleep` before training starts."""
    spy = models.SpyEstimator(str(tmp_path))
    events: list[Any] = []
    spy.on_train = lambda: events.append("train")
    experiment = models.experiment(
        spy, models.raising_input_fn, models.raising_input_fn, train_steps=3, sleep=events.append
    )
    experiment.train(delay_secs=2.5)
    assert events == [2.5, "train"]
    assert spy.train_calls[0]["max_steps"] == 3
    events.clear()
    experiment.train()
    assert events == ["train"]


def test_train_rejects_a_negative_delay(tmp_path: Path) -> None:
    """train(delay_secs=-1) is a ValueError naming delay_secs, before training."""
    spy = models.SpyEstimator(str(tmp_path))
    experiment = Experiment(spy, models.raising_input_fn, models.raising_input_fn)
    with pytest.raises(ValueError, match="delay_secs"):
        experiment.train(delay_secs=-1)
    assert spy.train_calls == []


# ---------------------------------------------------------------- evaluate


def test_evaluate_returns_metrics_with_global_step(trained_dir: str, tmp_path: Path) -> None:
    """evaluate() returns the metrics dict of the latest checkpoint, with global_step."""
    model_dir = str(tmp_path / "m")
    shutil.copytree(trained_dir, model_dir)
    result = _experiment(model_dir).evaluate()
    assert int(result["global_step"]) == TRAINED_STEPS
    assert {"loss", "mae"} <= set(result)


@pytest.mark.parametrize(("eval_steps", "batches"), [(None, models.N_ROWS // 16), (2, 2)])
def test_evaluate_runs_eval_steps_or_until_input_ends(
    model_dir: str, eval_steps: int | None, batches: int
) -> None:
    """eval_steps=None evaluates the whole finite input; an int evaluates that many batches."""
    counter = models.StepCounter()
    experiment = _experiment(model_dir, eval_steps=eval_steps, eval_hooks=[counter])
    experiment.evaluate()
    assert counter.runs == batches


def test_evaluate_delay_defaults_to_eval_delay_secs(tmp_path: Path) -> None:
    """evaluate() sleeps eval_delay_secs via the experiment's sleep unless delay_secs is given."""
    spy = models.SpyEstimator(str(tmp_path))
    slept: list[float] = []
    experiment = models.experiment(
        spy, models.raising_input_fn, models.raising_input_fn, eval_delay_secs=4, sleep=slept.append
    )
    experiment.evaluate()
    experiment.evaluate(delay_secs=1.5)
    experiment.evaluate(delay_secs=0)
    assert slept == [4, 1.5]
    assert len(spy.eval_calls) == 3


# ---------------------------------------------------------------- continuous_eval


class _Driven:
    """Outcome of a continuous_eval whose `sleep` trains the next checkpoint every 3rd poll."""

    def __init__(self) -> None:
        self.evaluated: list[dict[str, Any]] = []
        self.predicate_calls: list[Any] = []
        self.exports = _Recorder()
        self.polls = 0
        self.messages: list[str] = []
        self.returned: Any = None


class _ListHandler(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.INFO)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def driven(tmp_path_factory: pytest.TempPathFactory) -> _Driven:
    """continuous_eval (train_steps=30, throttle 0) while polls 3, 6, 9 train 10 steps each."""
    model_dir = str(tmp_path_factory.mktemp("driven") / "model")
    out = _Driven()
    trainer = models.estimator(model_dir)

    def sleep(secs: float) -> None:
        out.polls += 1
        if out.polls % 3 == 0:
            trainer.train(models.input_fn(repeat=True), max_steps=10 * out.polls // 3)

    def predicate(result: dict[str, Any] | None) -> bool:
        out.predicate_calls.append(result)
        return True

    experiment = _experiment(
        model_dir,
        train_steps=30,
        export_strategies=ExportStrategy("rec", out.exports),
        sleep=sleep,
    )
    experiment.on_evaluation(out.evaluated.append)
    logger = logging.getLogger("tfexperiment")
    handler = _ListHandler(out.messages)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        out.returned = experiment.continuous_eval(
            throttle_delay_secs=0, continuous_eval_predicate_fn=predicate
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return out


def test_continuous_eval_evaluates_each_new_checkpoint_once(driven: _Driven) -> None:
    """Each new checkpoint is evaluated exactly once, and the loop stops at train_steps."""
    assert _steps(driven.evaluated) == [10, 20, 30]
    assert driven.polls == 9
    assert int(driven.returned["global_step"]) == 30


def test_continuous_eval_predicate_gets_none_first_then_results(driven: _Driven) -> None:
    """The predicate is called with None before the first evaluation, then with each result."""
    assert driven.predicate_calls[0] is None
    assert driven.predicate_calls[1:] == driven.evaluated


def test_continuous_eval_exports_after_each_evaluation(driven: _Driven) -> None:
    """Every evaluation is followed by an export of that checkpoint with its result."""
    assert [os.path.basename(p or "") for p, _ in driven.exports.calls] == [
        "model.ckpt-10",
        "model.ckpt-20",
        "model.ckpt-30",
    ]
    assert [r for _, r in driven.exports.calls] == driven.evaluated


def test_continuous_eval_logs_waiting_once_per_change_of_state(driven: _Driven) -> None:
    """ "no checkpoint yet" is logged once for 3 polls, "no new checkpoint" once per wait phase."""
    assert driven.messages.count("no checkpoint yet; waiting") == 1
    assert driven.messages.count("no new checkpoint; waiting") == 2
    assert sum("evaluation at step" in m for m in driven.messages) == 3
    assert driven.messages[-1] == "continuous evaluation stops: training is finished"


def test_continuous_eval_two_arg_predicate_gets_the_checkpoint_path(model_dir: str) -> None:
    """A 2-argument predicate receives (result, checkpoint_path); (None, None) first."""
    calls: list[tuple[Any, Any]] = []

    def predicate(result: Any, checkpoint_path: Any) -> bool:
        calls.append((result, checkpoint_path))
        return True

    result = _experiment(model_dir, train_steps=TRAINED_STEPS).continuous_eval(
        throttle_delay_secs=0, continuous_eval_predicate_fn=predicate
    )
    assert calls == [(None, None), (result, os.path.join(model_dir, "model.ckpt-50"))]


def test_continuous_eval_predicate_false_stops_the_loop(model_dir: str) -> None:
    """A predicate answering False after the first result stops continuous_eval (no train_steps)."""
    experiment = _experiment(model_dir)
    seen: list[dict[str, Any]] = []
    experiment.on_evaluation(seen.append)
    experiment.continuous_eval(
        throttle_delay_secs=0, continuous_eval_predicate_fn=lambda r: r is None
    )
    assert _steps(seen) == [TRAINED_STEPS]


def test_continuous_eval_predicate_false_at_start_evaluates_nothing(model_dir: str) -> None:
    """A predicate answering False for None stops before any evaluation; returns None."""
    experiment = Experiment(
        models.estimator(model_dir), models.raising_input_fn, models.raising_input_fn
    )
    assert experiment.continuous_eval(continuous_eval_predicate_fn=lambda r: False) is None


@pytest.mark.parametrize("schedule", ["continuous_eval", "continuous_eval_on_train_data"])
@pytest.mark.parametrize("predicate", [True, "yes", 1])
def test_continuous_eval_non_callable_predicate_is_a_value_error(
    tmp_path: Path, schedule: str, predicate: Any
) -> None:
    """A predicate that is neither None nor callable raises ValueError before anything runs."""
    spy = models.SpyEstimator(str(tmp_path))
    experiment = Experiment(spy, models.raising_input_fn, models.raising_input_fn)
    with pytest.raises(ValueError, match="continuous_eval_predicate_fn"):
        getattr(experiment, schedule)(continuous_eval_predicate_fn=predicate)
    assert spy.eval_calls == []


def test_continuous_eval_stops_when_a_background_trainer_reaches_train_steps(
    tmp_path: Path,
) -> None:
    """continuous_eval returns by itself once a trainer thread's checkpoint reaches train_steps."""
    model_dir = str(tmp_path / "m")
    trainer = models.estimator(model_dir)
    experiment = _experiment(model_dir, train_steps=60)
    seen: list[dict[str, Any]] = []
    experiment.on_evaluation(seen.append)
    with models.training_in_background(trainer, 60) as errors:
        result = experiment.continuous_eval(throttle_delay_secs=0)
    assert not errors
    assert int(result["global_step"]) == 60
    steps = _steps(seen)
    assert steps == sorted(set(steps)) and steps[-1] == 60


class _FakeClock:
    """An Experiment's `clock=` that its `sleep` advances by at most `max_step` seconds."""

    def __init__(self, max_step: float = float("inf")) -> None:
        self.now = 0.0
        self.max_step = max_step
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, secs: float) -> None:
        self.sleeps.append(secs)
        self.now += min(secs, self.max_step)


def test_continuous_eval_throttle_is_a_minimum_gap_between_starts(
    model_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A new checkpoint waits out the throttle in <= 1 s slices, logged once per wait."""
    caplog.set_level(logging.INFO, logger="tfexperiment")
    clock = _FakeClock(max_step=4.0)  # wakes up early: 3 polls per throttle wait
    trainer = models.estimator(model_dir)
    starts: list[tuple[int, float]] = []

    def on_evaluation(result: dict[str, Any]) -> None:
        step = int(result["global_step"])
        starts.append((step, clock.now))
        if step < 70:  # the trainer saves the next checkpoint at once
            trainer.train(models.input_fn(repeat=True), max_steps=step + 10)

    experiment = _experiment(model_dir, train_steps=70, clock=clock, sleep=clock.sleep)
    experiment.on_evaluation(on_evaluation)
    experiment.continuous_eval(throttle_delay_secs=10)
    assert starts == [(50, 0.0), (60, 10.0), (70, 20.0)]
    assert all(0 < secs <= 1.0 for secs in clock.sleeps)  # a finish is noticed within 1 s
    assert sum(clock.sleeps) == pytest.approx(20.0)
    assert caplog.messages.count("throttled; waiting") == 2


def test_continuous_eval_waits_the_start_delay_first(model_dir: str) -> None:
    """continuous_eval(delay_secs=5) sleeps 5 s (in <= 1 s slices) before the first evaluation."""
    clock = _FakeClock()
    starts: list[float] = []
    experiment = _experiment(model_dir, train_steps=TRAINED_STEPS, clock=clock, sleep=clock.sleep)
    experiment.on_evaluation(lambda result: starts.append(clock.now))
    experiment.continuous_eval(delay_secs=5, throttle_delay_secs=0)
    assert starts == [5.0]
    assert all(0 < secs <= 1.0 for secs in clock.sleeps)
    assert sum(clock.sleeps) == pytest.approx(5.0)


def test_continuous_eval_not_only_once_re_evaluates(model_dir: str) -> None:
    """evaluate_checkpoint_only_once=False evaluates the same checkpoint again and again."""
    experiment = _experiment(model_dir)
    seen: list[dict[str, Any]] = []
    experiment.on_evaluation(seen.append)
    experiment.continuous_eval(
        throttle_delay_secs=0,
        evaluate_checkpoint_only_once=False,
        continuous_eval_predicate_fn=lambda r: len(seen) < 3,
    )
    assert _steps(seen) == [TRAINED_STEPS] * 3


def test_continuous_eval_restart_does_not_re_evaluate(model_dir: str) -> None:
    """A new Experiment on the same dir skips checkpoints evaluated before (progress file)."""
    first = _experiment(model_dir)
    first_seen: list[dict[str, Any]] = []
    first.on_evaluation(first_seen.append)
    first.continuous_eval(throttle_delay_secs=0, continuous_eval_predicate_fn=lambda r: r is None)
    assert _steps(first_seen) == [TRAINED_STEPS]

    trainer = models.estimator(model_dir)
    second = _experiment(
        model_dir, sleep=lambda secs: trainer.train(models.input_fn(repeat=True), steps=10)
    )
    second_seen: list[dict[str, Any]] = []
    second.on_evaluation(second_seen.append)
    second.continuous_eval(throttle_delay_secs=0, continuous_eval_predicate_fn=lambda r: r is None)
    assert _steps(second_seen) == [TRAINED_STEPS + 10]


def test_continuous_eval_on_train_data_writes_eval_train(model_dir: str) -> None:
    """continuous_eval_on_train_data evaluates the train input into eval_train, exporting nothing."""
    exports = _Recorder()
    experiment = Experiment(
        models.estimator(model_dir),
        models.input_fn(repeat=True),
        models.raising_input_fn,
        train_steps=TRAINED_STEPS,
        eval_steps=2,
        export_strategies=ExportStrategy("rec", exports),
    )
    result = experiment.continuous_eval_on_train_data(throttle_delay_secs=0)
    assert int(result["global_step"]) == TRAINED_STEPS
    assert any(".tfevents." in f for f in os.listdir(os.path.join(model_dir, "eval_train")))
    assert not os.path.exists(os.path.join(model_dir, "eval"))
    assert exports.calls == []


# ---------------------------------------------------------------- test()


def test_test_trains_one_step_evaluates_and_exports(tmp_path: Path) -> None:
    """test() trains 1 step, evaluates 1 batch and runs the export strategies."""
    model_dir = str(tmp_path / "m")
    exports = _Recorder()
    counter = models.StepCounter()
    experiment = Experiment(
        models.estimator(model_dir),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=1000,
        eval_hooks=[counter],
        export_strategies=ExportStrategy("rec", exports),
    )
    result = experiment.test()
    assert int(result["global_step"]) == 1
    assert counter.runs == 1
    assert exports.calls == [(os.path.join(model_dir, "model.ckpt-1"), result)]


# ---------------------------------------------------------------- settings & seams


def test_settings_are_one_frozen_record(tmp_path: Path) -> None:
    """The constructor's schedule arguments become one ExperimentSettings; properties read it."""
    spy = models.SpyEstimator(str(tmp_path))
    experiment = Experiment(
        spy, models.raising_input_fn, models.raising_input_fn, train_steps=7, eval_steps=None
    )
    assert experiment.settings == ExperimentSettings(train_steps=7, eval_steps=None)
    assert (experiment.train_steps, experiment.eval_steps) == (7, None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        experiment.settings.train_steps = 8  # type: ignore[misc]


def test_from_settings_builds_the_same_experiment(tmp_path: Path) -> None:
    """Experiment.from_settings(settings=...) runs with those settings and the seams given."""
    spy = models.SpyEstimator(str(tmp_path))
    slept: list[float] = []
    settings = ExperimentSettings(train_steps=3, eval_delay_secs=2)
    experiment = Experiment.from_settings(
        spy,
        models.raising_input_fn,
        models.raising_input_fn,
        settings=settings,
        sleep=slept.append,
    )
    experiment.evaluate()
    assert experiment.settings is settings and slept == [2]
    experiment.train()
    assert spy.train_calls[0]["max_steps"] == 3


def test_from_settings_needs_a_settings_record(tmp_path: Path) -> None:
    """from_settings with something else than an ExperimentSettings is a TypeError naming settings."""
    with pytest.raises(TypeError, match="settings"):
        Experiment.from_settings(
            models.SpyEstimator(str(tmp_path)),
            models.raising_input_fn,
            models.raising_input_fn,
            settings={"train_steps": 3},  # type: ignore[arg-type]
        )


def test_seams_are_not_public_attributes(tmp_path: Path) -> None:
    """clock and sleep are constructor arguments of from_settings, not attributes to assign."""
    experiment = Experiment(
        models.SpyEstimator(str(tmp_path)), models.raising_input_fn, models.raising_input_fn
    )
    assert not hasattr(experiment, "clock") and not hasattr(experiment, "sleep")


@pytest.mark.parametrize("field", ["train_hooks", "eval_hooks"])
@pytest.mark.parametrize("element", [5, "hook", None, object()])
def test_hook_elements_must_be_session_run_hooks(tmp_path: Path, field: str, element: Any) -> None:
    """train_hooks=[5] fails at construction with a TypeError naming train_hooks[0]."""
    spy = models.SpyEstimator(str(tmp_path))
    hooks = [tf.estimator.SessionRunHook(), element]
    with pytest.raises(ConfigTypeError) as info:
        Experiment(spy, models.raising_input_fn, models.raising_input_fn, **{field: hooks})
    assert info.value.field == f"{field}[1]"
    assert spy.train_calls == []


def test_extended_hooks_are_checked_too(tmp_path: Path) -> None:
    """extend_train_hooks([5]) is a TypeError naming additional_hooks[0]."""
    experiment = Experiment(
        models.SpyEstimator(str(tmp_path)), models.raising_input_fn, models.raising_input_fn
    )
    with pytest.raises(ConfigTypeError) as info:
        experiment.extend_train_hooks([5])
    assert info.value.field == "additional_hooks[0]"


@pytest.mark.parametrize(
    ("field", "value"),
    [("delay_workers_by_global_step", "yes"), ("train_steps", 2**70), ("eval_delay_secs", -1)],
)
def test_bad_settings_are_value_errors_naming_the_field(
    tmp_path: Path, field: str, value: Any
) -> None:
    """A bad schedule setting is a ValueError (the seed's Raises) naming the field."""
    with pytest.raises(ValueError) as info:
        Experiment(
            models.SpyEstimator(str(tmp_path)),
            models.raising_input_fn,
            models.raising_input_fn,
            **{field: value},
        )
    assert isinstance(info.value, FieldError) and info.value.field == field
