"""continuous_train_and_evaluate: the iteration size and the next iteration."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.completion import is_final_export
from core.errors import ConfigError, ConfigTypeError
from core.iteration import (
    DEFAULT_ITERATION_STEPS,
    IterationDecision,
    IterationKind,
    IterationReason,
    after_iteration,
    input_ran_out,
    iteration_size,
    next_iteration,
)

user_sizes = st.integers(min_value=1, max_value=10**6)
train_steps = st.integers(min_value=0, max_value=10**7)


@given(size=user_sizes, total=st.none() | train_steps)
@example(size=1, total=0)
@example(size=5000, total=100)
def test_user_value_wins(size: int, total: int | None) -> None:
    """The user's `train_steps_per_iteration` is used as is, whatever `train_steps` is."""
    assert iteration_size(size, total) == size


@given(total=train_steps)
@example(total=0)
@example(total=9)
@example(total=10)
@example(total=19)
def test_tenth_of_train_steps_but_at_least_one(total: int) -> None:
    """Without a user value the size is `train_steps // 10`, never below 1."""
    size = iteration_size(None, total)
    assert size == max(1, total // 10)
    assert size >= 1


def test_default_without_train_steps() -> None:
    """Without a user value or `train_steps` the size is 1000."""
    assert iteration_size(None, None) == DEFAULT_ITERATION_STEPS == 1000


@pytest.mark.parametrize("size", [0, -1, -1000])
def test_non_positive_user_value_is_rejected(size: int) -> None:
    """A user size below 1 is a ConfigError naming `train_steps_per_iteration`."""
    with pytest.raises(ConfigError) as info:
        iteration_size(size, 100)
    assert (info.value.field, info.value.value) == ("train_steps_per_iteration", size)


@pytest.mark.parametrize("size", [True, 2.0, "10"])
def test_non_int_user_value_is_rejected(size: object) -> None:
    """A non-int user size is a ConfigTypeError (a TypeError) naming the field."""
    with pytest.raises(ConfigTypeError) as info:
        iteration_size(size, 100)  # type: ignore[arg-type]
    assert info.value.field == "train_steps_per_iteration"
    assert isinstance(info.value, TypeError)


def test_negative_train_steps_is_rejected() -> None:
    """Negative `train_steps` is a ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        iteration_size(None, -1)
    assert (info.value.field, info.value.value) == ("train_steps", -1)


@pytest.mark.parametrize("total", [True, 10.0, "10"])
def test_non_int_train_steps_is_a_type_error(total: object) -> None:
    """`train_steps` of the wrong type is a ConfigTypeError naming the field."""
    with pytest.raises(ConfigTypeError) as info:
        iteration_size(None, total)  # type: ignore[arg-type]
    assert info.value.field == "train_steps"


@given(
    size=st.none() | user_sizes,
    total=st.none() | train_steps,
    global_step=st.integers(0, 10**7),
)
def test_predicate_stop_comes_first(size: int | None, total: int | None, global_step: int) -> None:
    """When the continue predicate says stop, the answer is STOP(PREDICATE) whatever the steps."""
    decision = next_iteration(
        train_steps_per_iteration=size,
        train_steps=total,
        global_step=global_step,
        keep_going=False,
    )
    assert decision == IterationDecision(kind=IterationKind.STOP, reason=IterationReason.PREDICATE)


@given(size=st.none() | user_sizes, global_step=st.integers(0, 10**9))
def test_without_train_steps_training_never_finishes(size: int | None, global_step: int) -> None:
    """Without `train_steps` every iteration trains a full iteration size."""
    decision = next_iteration(
        train_steps_per_iteration=size, train_steps=None, global_step=global_step, keep_going=True
    )
    assert decision.kind is IterationKind.TRAIN
    assert decision.steps == iteration_size(size, None)


@given(
    size=st.none() | user_sizes,
    total=train_steps,
    past=st.integers(min_value=0, max_value=10**6),
)
@example(size=None, total=0, past=0)
@example(size=10, total=100, past=0)
def test_stops_once_train_steps_is_reached(size: int | None, total: int, past: int) -> None:
    """At or past `train_steps` the answer is STOP(TRAINING_FINISHED)."""
    decision = next_iteration(
        train_steps_per_iteration=size, train_steps=total, global_step=total + past, keep_going=True
    )
    assert decision == IterationDecision(
        kind=IterationKind.STOP, reason=IterationReason.TRAINING_FINISHED
    )


@settings(max_examples=200)
@given(
    size=st.none() | st.integers(min_value=1, max_value=400),
    total=st.integers(min_value=0, max_value=3000),
    start=st.integers(min_value=0, max_value=3000),
)
@example(size=None, total=5, start=0)
@example(size=300, total=1000, start=0)
@example(size=7, total=1000, start=999)
@example(size=1, total=3, start=0)
def test_iterations_stop_exactly_at_train_steps(size: int | None, total: int, start: int) -> None:
    """Iterating from any start never trains past `train_steps` and stops exactly there."""
    full = iteration_size(size, total)
    global_step = start
    iterations = 0
    while True:
        decision = next_iteration(
            train_steps_per_iteration=size,
            train_steps=total,
            global_step=global_step,
            keep_going=True,
        )
        if decision.kind is IterationKind.STOP:
            assert decision.reason is IterationReason.TRAINING_FINISHED
            break
        assert 1 <= decision.steps <= full
        assert global_step + decision.steps <= total
        global_step += decision.steps
        iterations += 1
    assert global_step == max(start, total)
    left = max(0, total - start)
    assert iterations == -(-left // full)  # ceil: only the last iteration may be short


@given(requested=st.integers(1, 10_000), trained=st.integers(0, 10_000))
def test_an_iteration_cut_short_means_the_input_ran_out(requested: int, trained: int) -> None:
    """Training fewer steps than requested (or none) ends continuous_train_and_evaluate."""
    ran_out = input_ran_out(requested=requested, trained=trained)
    assert ran_out == (trained < requested)
    decision = next_iteration(
        train_steps_per_iteration=requested,
        train_steps=None,
        global_step=trained,
        keep_going=True,
        last_trained_steps=trained,
        last_requested_steps=requested,
    )
    assert (decision.kind is IterationKind.STOP) == ran_out
    if ran_out:
        assert decision.reason is IterationReason.INPUT_EXHAUSTED


@given(
    requested=st.none() | st.integers(1, 10_000),
    trained=st.integers(0, 10_000),
    has_checkpoint=st.booleans(),
    reached=st.booleans(),
)
def test_after_an_iteration(
    requested: int | None, trained: int, has_checkpoint: bool, reached: bool
) -> None:
    """An iteration that trained nothing (or left no checkpoint) is not evaluated; the final rule is shared."""
    outcome = after_iteration(
        requested=requested,
        trained=trained,
        has_checkpoint=has_checkpoint,
        reached=reached,
        step=trained,
    )
    assert outcome.evaluate == (has_checkpoint and trained > 0)
    assert outcome.ran_out == input_ran_out(requested=requested, trained=trained)
    assert outcome.final == is_final_export(
        reached=reached, step=trained, input_ran_out=outcome.ran_out
    )
