"""run_experiment: builder and schedule validation, default schedule from TF_CONFIG."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigTypeError, FieldError
from core.schedule import SCHEDULE_NAMES
from shell import Experiment, run_experiment
from tests.shell import models


@pytest.fixture(autouse=True)
def _no_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test as a local process; a test sets TF_CONFIG itself when it needs one."""
    monkeypatch.delenv("TF_CONFIG", raising=False)


def _spy_builder(calls: list[str]) -> Any:
    def build(output_dir: str) -> Experiment:
        calls.append(output_dir)
        return Experiment(
            models.SpyEstimator(output_dir),
            models.raising_input_fn,
            models.raising_input_fn,
            train_steps=5,
        )

    return build


def _real_builder(output_dir: str) -> Experiment:
    """A tiny real experiment: 10 training steps, evaluation at the end."""
    return Experiment(
        models.estimator(output_dir),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=10,
        eval_steps=None,
    )


def _never_called(output_dir: str) -> Experiment:
    raise AssertionError("the builder must not be called")


@pytest.mark.parametrize("output_dir", ["", None])
def test_empty_output_dir_is_a_value_error(output_dir: Any) -> None:
    """An empty output_dir raises ValueError naming output_dir, before building."""
    with pytest.raises(ValueError, match="output_dir"):
        run_experiment(_never_called, output_dir, "train")


@pytest.mark.parametrize("builder", [None, "make_experiment", 3])
def test_non_callable_builder_is_a_type_error(tmp_path: Path, builder: Any) -> None:
    """A non-callable experiment_fn raises TypeError naming experiment_fn."""
    with pytest.raises(TypeError, match="experiment_fn"):
        run_experiment(builder, str(tmp_path), "train")


@pytest.mark.parametrize(
    "returned",
    [None, "experiment", models.SpyEstimator("/tmp/x")],
    ids=["None", "str", "estimator"],
)
def test_builder_returning_a_non_experiment_is_a_type_error(tmp_path: Path, returned: Any) -> None:
    """A builder that does not return an Experiment raises TypeError saying what it returned."""
    with pytest.raises(TypeError, match=type(returned).__name__):
        run_experiment(lambda output_dir: returned, str(tmp_path), "train")


def test_builder_gets_output_dir_positionally_or_by_keyword(tmp_path: Path) -> None:
    """The builder is called with output_dir (by keyword when it names that parameter)."""
    calls: list[str] = []
    run_experiment(_spy_builder(calls), str(tmp_path), "evaluate")

    def other_name(model_dir: str) -> Experiment:
        calls.append(model_dir)
        return _spy_builder([])(model_dir)

    run_experiment(other_name, str(tmp_path), "evaluate")
    assert calls == [str(tmp_path), str(tmp_path)]


@pytest.mark.parametrize(
    "schedule",
    ["bogus", "local_run", "_train", "__init__", "reset_export_strategies", "on_evaluation"],
)
def test_unknown_schedule_is_a_value_error_listing_valid_ones(
    tmp_path: Path, schedule: str
) -> None:
    """A schedule that is no public Experiment member raises ValueError listing every schedule."""
    with pytest.raises(ValueError, match="schedule") as info:
        run_experiment(_spy_builder([]), str(tmp_path), schedule)
    for name in SCHEDULE_NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "schedule", ["estimator", "train_steps", "eval_steps", "model_dir", "poll_secs"]
)
def test_non_callable_member_is_a_type_error(tmp_path: Path, schedule: str) -> None:
    """A schedule naming a non-callable Experiment member raises TypeError."""
    with pytest.raises(TypeError, match=schedule):
        run_experiment(_spy_builder([]), str(tmp_path), schedule)


def test_non_string_schedule_is_a_type_error(tmp_path: Path) -> None:
    """A schedule that is not a string raises TypeError naming schedule."""
    with pytest.raises(TypeError, match="schedule"):
        run_experiment(_spy_builder([]), str(tmp_path), 3)  # type: ignore[arg-type]


def test_explicit_schedule_runs_and_returns_its_result(tmp_path: Path) -> None:
    """run_experiment(..., "train") runs Experiment.train and returns the estimator."""
    experiments: list[Experiment] = []

    def build(output_dir: str) -> Experiment:
        experiments.append(_real_builder(output_dir))
        return experiments[0]

    returned = run_experiment(build, str(tmp_path / "m"), "train")
    assert returned is experiments[0].estimator
    assert returned.latest_checkpoint().endswith("model.ckpt-10")


def test_default_schedule_of_a_single_task_is_train_and_evaluate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A single-task TF_CONFIG (one chief) defaults to train_and_evaluate, run for real."""
    caplog.set_level(logging.INFO, logger="tfexperiment")
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"chief": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}}),
    )
    result, exported = run_experiment(_real_builder, str(tmp_path / "m"))
    assert int(result["global_step"]) == 10 and exported == []
    assert "task chief: default schedule train_and_evaluate" in caplog.messages


def test_default_schedule_without_tf_config_is_train_and_evaluate(tmp_path: Path) -> None:
    """With no TF_CONFIG the default schedule is train_and_evaluate."""
    result, exported = run_experiment(_real_builder, str(tmp_path / "m"))
    assert int(result["global_step"]) == 10 and exported == []


@pytest.mark.parametrize(
    ("tf_config", "field"),
    [
        ("{not json", "TF_CONFIG"),
        ("[1, 2]", "TF_CONFIG"),
        (json.dumps({"cluster": {"worker": ["a:1", "b:2"]}}), "task.type"),
        (json.dumps({"cluster": {"chief": ["a:1"]}, "task": {"type": "boss"}}), "task.type"),
        (
            json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
            "task.index",
        ),
        (json.dumps({"cluster": {"worker": "a:1"}, "task": {"type": "worker"}}), "cluster.worker"),
    ],
    ids=["bad-json", "not-object", "no-type", "bad-type", "bad-index", "bad-addresses"],
)
def test_malformed_tf_config_is_a_value_error_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tf_config: str, field: str
) -> None:
    """A malformed TF_CONFIG raises ValueError naming the bad field, before building."""
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=field) as info:
        run_experiment(_never_called, str(tmp_path))
    assert isinstance(info.value, FieldError) and info.value.field == field


class _WithTask(Experiment):
    """An Experiment subclass with its own schedule, a None member and a property."""

    nothing = None

    def my_task(self) -> str:
        """A schedule the subclass defines."""
        return f"ran my_task at {self.model_dir}"

    @property
    def flavour(self) -> str:
        """A property (not callable)."""
        return "plain"


def _subclass_builder(output_dir: str) -> Experiment:
    return _WithTask(
        models.SpyEstimator(output_dir), models.raising_input_fn, models.raising_input_fn
    )


def test_a_public_method_of_a_subclass_runs_as_a_schedule(tmp_path: Path) -> None:
    """schedule="my_task" runs the method an Experiment subclass defines (learn_runner)."""
    assert run_experiment(_subclass_builder, str(tmp_path), "my_task") == (
        f"ran my_task at {tmp_path}"
    )


@pytest.mark.parametrize(
    "schedule",
    ["_setup", "_run", "extend_train_hooks", "extend_eval_hooks", "from_settings"],
)
def test_private_names_and_configuration_helpers_are_refused(tmp_path: Path, schedule: str) -> None:
    """Private names and the configuration helpers are no schedules, also on a subclass."""
    with pytest.raises(ValueError, match="schedule") as info:
        run_experiment(_subclass_builder, str(tmp_path), schedule)
    assert isinstance(info.value, FieldError) and info.value.value == schedule


@pytest.mark.parametrize("schedule", ["nothing", "flavour", "train_steps", "settings"])
def test_a_member_that_is_not_callable_is_a_type_error(tmp_path: Path, schedule: str) -> None:
    """A member holding None, or a property such as train_steps, raises TypeError."""
    with pytest.raises(TypeError, match=schedule):
        run_experiment(_subclass_builder, str(tmp_path), schedule)


@pytest.mark.parametrize("output_dir", [5, 2.5, ["d"], object()])
def test_an_output_dir_that_is_no_path_is_a_config_type_error(output_dir: Any) -> None:
    """run_experiment(fn, 5) is a ConfigTypeError naming output_dir, before building."""
    with pytest.raises(ConfigTypeError) as info:
        run_experiment(_never_called, output_dir, "train")
    assert info.value.field == "output_dir"


def test_a_path_like_output_dir_is_accepted(tmp_path: Path) -> None:
    """A pathlib.Path output_dir reaches the builder as a str."""
    calls: list[str] = []
    run_experiment(_spy_builder(calls), tmp_path, "evaluate")
    assert calls == [str(tmp_path)]
