"""The shell's small lifecycle rules and early stopping (pure, no TF)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.completion import EndReason, end_reason
from core.config_parse import parse_config
from core.errors import ConfigError, ConfigTypeError
from core.faults import (
    EarlyStopping,
    Improvement,
    is_current_record,
    keep_going,
    lifecycle_policy,
    line_changed,
    observe,
    watches_job,
    watches_stop_requests,
)
from core.lifecycle import STOPPED_BY_EVALUATOR, Done, Failed, Heartbeat, Joined
from core.settings import ExperimentSettings
from core.tf_config import TaskType, TFConfig

_secs = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
_times = st.floats(min_value=0, max_value=1e9, allow_nan=False)
_values = st.floats(allow_nan=True, allow_infinity=False, width=32)


@given(_secs)
def test_every_positive_deadline_gives_a_valid_policy(deadline: float) -> None:
    """Any positive chief deadline makes a policy whose heartbeats beat both deadlines."""
    policy = lifecycle_policy(deadline)
    assert policy.chief_lost_after_secs == deadline
    assert policy.heartbeat_secs < min(policy.chief_lost_after_secs, policy.worker_lost_after_secs)
    assert policy.poll_secs <= policy.heartbeat_secs
    assert policy.worker_lost_after_secs <= 120


def test_the_default_policy_is_sized_for_pod_restarts() -> None:
    """The default: 600 s for the chief, 120 s for a worker, heartbeats every 10 s."""
    policy = lifecycle_policy()
    assert (policy.chief_lost_after_secs, policy.worker_lost_after_secs) == (600, 120)
    assert policy.heartbeat_secs == 10


@pytest.mark.parametrize("bad", [0, -1, math.inf, "5"])
def test_a_bad_deadline_is_a_config_error_naming_it(bad: object) -> None:
    """A deadline that is not a positive number of seconds names chief_lost_after_secs."""
    with pytest.raises((ConfigError, ConfigTypeError)) as err:
        lifecycle_policy(bad)  # type: ignore[arg-type]
    assert err.value.field == "chief_lost_after_secs"


@given(
    t=_times, since=_times, step=st.integers(0, 1000), train_steps=st.none() | st.integers(0, 1000)
)
def test_records_older_than_the_reader_count_only_as_a_finished_job(
    t: float, since: float, step: int, train_steps: int | None
) -> None:
    """A record said before the reader started counts only if it is a Done at train_steps."""
    for record in (Joined(task="chief-0", t=t), Failed(task="chief-0", t=t, reason="x")):
        assert is_current_record(record, since=since, train_steps=train_steps) == (t >= since)
    done = Done(task="chief-0", t=t, reason="r", final_step=step)
    reached = train_steps is not None and step >= train_steps
    assert is_current_record(done, since=since, train_steps=train_steps) == (t >= since or reached)


@given(jobs=st.sets(st.sampled_from(["chief", "master", "worker", "ps", "evaluator"])))
def test_a_task_watches_the_job_when_the_cluster_has_a_chief_or_master(jobs: set[str]) -> None:
    """Only a cluster with a chief or master job has records to follow."""
    cluster = {job: ("h:1",) for job in jobs}
    assert watches_job(cluster) == bool(jobs & {"chief", "master"})


@pytest.mark.parametrize("task_type", list(TaskType))
def test_only_the_chief_or_master_looks_for_the_stop_request_itself(task_type: TaskType) -> None:
    """The chief or master of a cluster reads the stop request; nobody else does it so."""
    lead = "master" if task_type is TaskType.MASTER else "chief"
    cluster = {lead: ("h:1",), "worker": ("h:2",), "ps": ("h:3",), "evaluator": ("h:4",)}
    config = TFConfig(cluster=cluster, task_type=task_type, task_index=0)
    assert watches_stop_requests(config) == (task_type in (TaskType.CHIEF, TaskType.MASTER))
    assert not watches_stop_requests(TFConfig())


@given(st.none() | st.text(max_size=5), st.text(max_size=5))
def test_a_line_is_logged_once_per_change(last: str | None, line: str) -> None:
    """A waiting task logs a line only when it differs from the last one logged."""
    assert line_changed(last, line) == (last != line)


@given(
    patience=st.integers(1, 5),
    higher=st.booleans(),
    delta=st.floats(0, 10, allow_nan=False),
    values=st.lists(_values, min_size=1, max_size=30),
)
def test_early_stopping_stops_after_patience_evaluations_without_improvement(
    patience: int, higher: bool, delta: float, values: list[float]
) -> None:
    """keep_going is False exactly when the last `patience` values never beat the best
    value before them by more than min_delta (NaN never improves; the first real one does)."""
    rule = EarlyStopping(metric="m", patience=patience, higher_is_better=higher, min_delta=delta)
    state = Improvement()
    best: float | None = None
    since_best = 0
    for value in values:
        state = observe(state, rule, value)
        better = not math.isnan(value) and (
            best is None or (value > best + delta if higher else value < best - delta)
        )
        best, since_best = (value, 0) if better else (best, since_best + 1)
        assert state == Improvement(best=best, since_best=since_best)
        assert keep_going(state, rule) == (since_best < patience)


def test_an_improvement_resets_the_count() -> None:
    """After an improvement the count of evaluations without one starts again."""
    rule = EarlyStopping(patience=2)
    state = Improvement()
    for value in (5.0, 6.0, 4.0, 4.5):
        state = observe(state, rule, value)
    assert state == Improvement(best=4.0, since_best=1) and keep_going(state, rule)
    assert not keep_going(observe(state, rule, 4.0), rule)
    assert rule.reason == "no improvement of loss in 2 evaluations"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("metric", "", ConfigTypeError),
        ("patience", 0, ConfigError),
        ("patience", 1.5, ConfigTypeError),
        ("higher_is_better", "yes", ConfigTypeError),
        ("min_delta", -0.1, ConfigError),
        ("min_delta", math.nan, ConfigError),
    ],
)
def test_bad_early_stopping_values_name_their_field(
    field: str, value: object, error: type[Exception]
) -> None:
    """Each early-stopping field is validated and a bad value names it."""
    with pytest.raises(error) as err:
        EarlyStopping(**{field: value})  # type: ignore[arg-type]
    assert err.value.field == field  # type: ignore[attr-defined]


_CONFIG = {
    "estimator": {"type": "LinearRegressor", "feature_columns": ["x"]},
    "train_input": {"path": "train.csv", "label": "y"},
    "eval_input": {"path": "eval.csv", "label": "y", "num_epochs": 1},
}


def test_the_config_keys_early_stopping_and_chief_lost_after_secs_parse() -> None:
    """early_stopping becomes an EarlyStopping record; chief_lost_after_secs a setting."""
    config = parse_config(
        {
            **_CONFIG,
            "chief_lost_after_secs": 30,
            "early_stopping": {"metric": "average_loss", "patience": 2, "min_delta": 0.01},
        }
    )
    assert config.early_stopping == EarlyStopping(metric="average_loss", patience=2, min_delta=0.01)
    assert config.settings.chief_lost_after_secs == 30
    assert parse_config(_CONFIG).early_stopping is None
    assert parse_config(_CONFIG).settings == ExperimentSettings(eval_steps=None)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("early_stopping", {"patience": 0}, "early_stopping.patience"),
        ("early_stopping", {"metrik": "loss"}, "early_stopping.metrik"),
        ("early_stopping", "loss", "early_stopping"),
        ("chief_lost_after_secs", 0, "chief_lost_after_secs"),
    ],
)
def test_bad_fault_keys_are_config_errors_naming_the_dotted_field(
    key: str, value: object, field: str
) -> None:
    """A bad early_stopping or chief_lost_after_secs value names its dotted key."""
    with pytest.raises((ConfigError, ConfigTypeError)) as err:
        parse_config({**_CONFIG, key: value})
    assert err.value.field == field


@given(reached=st.booleans(), chief_finished=st.booleans())
def test_the_reason_a_task_was_told_comes_right_after_train_steps(
    reached: bool, chief_finished: bool
) -> None:
    """A task told to stop by the evaluator says so, unless it reached train_steps."""
    reason = end_reason(reached=reached, chief_finished=chief_finished, told=STOPPED_BY_EVALUATOR)
    assert reason is (EndReason.TRAIN_STEPS_REACHED if reached else EndReason.STOPPED_BY_EVALUATOR)
    assert Heartbeat(task="chief-0", t=0.0).KIND.value == "heartbeat"
