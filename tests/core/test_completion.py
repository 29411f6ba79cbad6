"""Training-finished records: their JSON, and when ps and evaluator tasks may exit."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.completion import (
    DONE_DIR,
    EndReason,
    TaskDone,
    all_training_done,
    chief_final_step,
    done_file_name,
    end_reason,
    is_current,
    is_final_export,
    training_tasks,
)
from core.errors import ConfigError, ConfigTypeError

task_names = st.sampled_from(["chief-0", "master-0", "worker-0", "worker-1", "worker-7", "ps-0"])
records = st.builds(
    TaskDone,
    task=task_names | st.text(min_size=1, max_size=20),
    final_step=st.integers(min_value=0, max_value=10**12),
    reason=st.sampled_from(EndReason),
)
job_counts = st.fixed_dictionaries(
    {},
    optional={
        job: st.integers(min_value=0, max_value=5)
        for job in ("chief", "master", "worker", "ps", "evaluator")
    },
)


def test_done_dir() -> None:
    """Records live in `<model_dir>/tfexperiment/`."""
    assert DONE_DIR == "tfexperiment"


@given(record=records)
@example(record=TaskDone(task="chief-0", final_step=0, reason=EndReason.INPUT_EXHAUSTED))
@example(record=TaskDone(task='we"ird\n\u00e9', final_step=1, reason=EndReason.TRAIN_STEPS_REACHED))
def test_record_round_trips_through_json(record: TaskDone) -> None:
    """`from_json(to_json())` gives back the same record."""
    assert TaskDone.from_json(record.to_json()) == record


@given(record=records)
def test_record_json_is_a_plain_object(record: TaskDone) -> None:
    """The JSON holds exactly task, final_step and the reason's text."""
    assert json.loads(record.to_json()) == {
        "task": record.task,
        "final_step": record.final_step,
        "reason": record.reason.value,
    }


def test_negative_final_step_is_rejected() -> None:
    """A record with a negative final step is a ConfigError naming `final_step`."""
    with pytest.raises(ConfigError) as info:
        TaskDone(task="chief-0", final_step=-1, reason=EndReason.TRAIN_STEPS_REACHED)
    assert info.value.field == "final_step"


def test_non_int_final_step_is_rejected() -> None:
    """A record with a non-int final step is a ConfigTypeError naming `final_step`."""
    with pytest.raises(ConfigTypeError) as info:
        TaskDone(task="chief-0", final_step=1.5, reason=EndReason.TRAIN_STEPS_REACHED)  # type: ignore[arg-type]
    assert info.value.field == "final_step"


GOOD = {"task": "chief-0", "final_step": 10, "reason": "train_steps reached"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{",
        "null",
        "[]",
        '"chief-0"',
        "12",
        "{}",
        json.dumps({k: v for k, v in GOOD.items() if k != "task"}),
        json.dumps({k: v for k, v in GOOD.items() if k != "final_step"}),
        json.dumps({k: v for k, v in GOOD.items() if k != "reason"}),
        json.dumps({**GOOD, "reason": "done"}),
        json.dumps({**GOOD, "reason": None}),
        json.dumps({**GOOD, "final_step": -1}),
        json.dumps({**GOOD, "final_step": "ten"}),
        json.dumps({**GOOD, "final_step": None}),
        json.dumps({**GOOD, "final_step": [10]}),
        json.dumps({**GOOD, "reason": ["train_steps reached"]}),
        '{"task": "chief-0", "final_step": NaN, "reason": "train_steps reached"}',
    ],
)
def test_malformed_text_raises_config_error(text: str) -> None:
    """Text that is not a completion record is a ConfigError (a ValueError) naming the done record."""
    with pytest.raises(ConfigError) as info:
        TaskDone.from_json(text)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "done record"
    assert info.value.value == text[:80]


@pytest.mark.parametrize("step", ["Infinity", "-Infinity", "1e400"])
def test_infinite_final_step_raises_config_error(step: str) -> None:
    """A record whose final step is infinite is a ConfigError, not an OverflowError."""
    text = f'{{"task": "chief-0", "final_step": {step}, "reason": "train_steps reached"}}'
    with pytest.raises(ConfigError):
        TaskDone.from_json(text)


@pytest.mark.parametrize(
    "doc",
    [
        {**GOOD, "task": None},
        {**GOOD, "task": 5},
        {**GOOD, "final_step": 12.7},
        {**GOOD, "final_step": "12"},
        {**GOOD, "final_step": True},
    ],
)
def test_wrongly_typed_fields_raise_config_error(doc: dict[str, object]) -> None:
    """A record whose task is not a string or whose final step is not an int is rejected."""
    with pytest.raises(ConfigError):
        TaskDone.from_json(json.dumps(doc))


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
    st.text(max_size=10),
    st.sampled_from([r.value for r in EndReason]),
)
json_docs = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
shaped = st.fixed_dictionaries(
    {}, optional={"task": json_leaves, "final_step": json_leaves, "reason": json_leaves}
)


@given(text=st.text(max_size=80) | st.builds(json.dumps, shaped | json_docs))
@example(text="{}")
def test_any_text_gives_a_record_or_config_error(text: str) -> None:
    """Any text either parses into a valid record or raises ConfigError, never another error."""
    try:
        record = TaskDone.from_json(text)
    except ConfigError as err:
        assert err.field == "done record"
    else:
        assert record.final_step >= 0
        assert TaskDone.from_json(record.to_json()) == record


@given(task=task_names | st.text(max_size=20))
def test_done_file_name(task: str) -> None:
    """A task's record file is `<task>.done.json`."""
    assert done_file_name(task) == f"{task}.done.json"


@given(counts=job_counts)
@example(counts={})
@example(counts={"ps": 2, "evaluator": 1})
def test_training_tasks_are_chief_master_and_workers(counts: dict[str, int]) -> None:
    """The training tasks are every chief, master and worker index; never ps or evaluator."""
    tasks = training_tasks(counts)
    expected = {
        f"{job}-{i}" for job in ("chief", "master", "worker") for i in range(counts.get(job, 0))
    }
    assert tasks == expected
    assert not any(t.startswith(("ps-", "evaluator-")) for t in tasks)


@given(done=st.lists(records, max_size=8))
def test_chief_final_step(done: list[TaskDone]) -> None:
    """The chief's final step is that of the first chief-0/master-0 record, else None."""
    leads = [r.final_step for r in done if r.task in ("chief-0", "master-0")]
    assert chief_final_step(done) == (leads[0] if leads else None)


def test_chief_final_step_ignores_workers() -> None:
    """A worker's record does not tell the chief's final step."""
    worker = TaskDone(task="worker-0", final_step=50, reason=EndReason.INPUT_EXHAUSTED)
    chief = TaskDone(task="chief-0", final_step=60, reason=EndReason.TRAIN_STEPS_REACHED)
    assert chief_final_step([worker]) is None
    assert chief_final_step([worker, chief]) == 60


@given(counts=job_counts, done=st.lists(records, max_size=10))
def test_all_training_done_iff_every_training_task_has_a_record(
    counts: dict[str, int], done: list[TaskDone]
) -> None:
    """Training is done exactly when every expected task has a record."""
    expected = training_tasks(counts)
    assert all_training_done(done, expected) == (expected <= {r.task for r in done})


@given(counts=job_counts, done=st.lists(records, max_size=10), more=st.lists(records, max_size=3))
def test_more_records_never_undo_done(
    counts: dict[str, int], done: list[TaskDone], more: list[TaskDone]
) -> None:
    """Once all training is done, further records keep it done; with no training tasks it is done."""
    expected = training_tasks(counts)
    if all_training_done(done, expected):
        assert all_training_done(done + more, expected)
    assert all_training_done(done, frozenset())


@given(
    written_at=st.floats(0, 1e9),
    since=st.floats(0, 1e9),
    final_step=st.integers(0, 10**6),
    train_steps=st.none() | st.integers(0, 10**6),
)
def test_a_record_is_current_if_new_or_already_at_train_steps(
    written_at: float, since: float, final_step: int, train_steps: int | None
) -> None:
    """Records older than this task are stale unless training to train_steps would be a no-op."""
    record = TaskDone(task="chief-0", final_step=final_step, reason=EndReason.INPUT_EXHAUSTED)
    current = is_current(record, written_at=written_at, since=since, train_steps=train_steps)
    if written_at >= since:
        assert current
    else:
        assert current == (train_steps is not None and final_step >= train_steps)


@given(reached=st.booleans(), chief_finished=st.booleans())
def test_end_reason_precedence(reached: bool, chief_finished: bool) -> None:
    """train_steps reached wins over the chief finishing, which wins over the input running out."""
    reason = end_reason(reached=reached, chief_finished=chief_finished)
    if reached:
        assert reason is EndReason.TRAIN_STEPS_REACHED
    elif chief_finished:
        assert reason is EndReason.CHIEF_FINISHED
    else:
        assert reason is EndReason.INPUT_EXHAUSTED


@given(
    reached=st.booleans(),
    step=st.integers(0, 10**6),
    finished=st.none() | st.integers(0, 10**6),
    ran_out=st.booleans(),
)
def test_final_export_rule(reached: bool, step: int, finished: int | None, ran_out: bool) -> None:
    """An export is final once train_steps is reached, the chief's last step is reached, or input ran out."""
    final = is_final_export(
        reached=reached, step=step, finished_at_step=finished, input_ran_out=ran_out
    )
    assert final == (reached or ran_out or (finished is not None and step >= finished))
    assert not is_final_export(reached=False, step=step)
