"""Worker start delays: seconds by index, a global-step gate, or an explicit delay."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.errors import ConfigError, ConfigTypeError
from core.workers import (
    MAX_DELAY_SECS,
    DelayKind,
    StartDelay,
    explicit_delay,
    worker_start_delay,
)

indexes = st.integers(min_value=0, max_value=10**6)


@pytest.mark.parametrize("by_global_step", [False, True])
def test_worker_zero_is_never_delayed(by_global_step: bool) -> None:
    """Worker 0 starts at once in both modes."""
    assert worker_start_delay(0, by_global_step=by_global_step) == StartDelay(kind=DelayKind.NONE)


@given(index=indexes)
@example(index=1)
@example(index=11)
@example(index=12)
@example(index=13)
def test_seconds_delay_is_five_per_index_capped_at_sixty(index: int) -> None:
    """Worker i sleeps `min(60, 5 * i)` seconds."""
    delay = worker_start_delay(index)
    if index == 0:
        assert delay.kind is DelayKind.NONE
        return
    assert delay.kind is DelayKind.SECONDS
    assert delay.secs == min(60.0, 5.0 * index)
    assert 0 < delay.secs <= MAX_DELAY_SECS == 60.0


@given(a=indexes, b=indexes)
def test_seconds_delay_is_monotone_in_the_index(a: int, b: int) -> None:
    """A higher index never sleeps less than a lower one."""
    low, high = sorted((a, b))
    assert worker_start_delay(low).secs <= worker_start_delay(high).secs


@given(index=indexes)
@example(index=1)
@example(index=2)
def test_global_step_gate_is_8000_ln_of_index_plus_one(index: int) -> None:
    """With `by_global_step`, worker i waits for global step `int(8000 * ln(i + 1))`."""
    delay = worker_start_delay(index, by_global_step=True)
    if index == 0:
        assert delay.kind is DelayKind.NONE
        return
    assert delay.kind is DelayKind.GLOBAL_STEP
    assert delay.global_step == int(8000 * math.log(index + 1))
    assert delay.secs == 0.0


def test_global_step_gate_examples() -> None:
    """The first gates are the seed's values: 5545, 8788, 11090 for workers 1, 2, 3."""
    gates = [worker_start_delay(i, by_global_step=True).global_step for i in (1, 2, 3)]
    assert gates == [5545, 8788, 11090]


@given(a=indexes, b=indexes)
def test_global_step_gate_is_monotone_in_the_index(a: int, b: int) -> None:
    """A higher index never has a lower global-step gate."""
    low, high = sorted((a, b))
    gate_low = worker_start_delay(low, by_global_step=True).global_step
    assert gate_low <= worker_start_delay(high, by_global_step=True).global_step


@given(index=st.integers(max_value=-1))
def test_negative_index_is_rejected(index: int) -> None:
    """A negative task index is a ConfigError naming `task_index`."""
    with pytest.raises(ConfigError) as info:
        worker_start_delay(index)
    assert (info.value.field, info.value.value) == ("task_index", index)


@pytest.mark.parametrize("index", [True, False, 1.0, "1", None])
def test_non_int_index_is_rejected(index: object) -> None:
    """A task index that is not an int (bools included) is a ConfigTypeError."""
    with pytest.raises(ConfigTypeError) as info:
        worker_start_delay(index)  # type: ignore[arg-type]
    assert info.value.field == "task_index"


@given(secs=st.floats(min_value=0, allow_infinity=False) | st.integers(0, 10**6))
@example(secs=0)
@example(secs=0.0)
@example(secs=5e-324)
def test_explicit_delay_sleeps_the_given_seconds(secs: float) -> None:
    """An explicit delay sleeps exactly that long; zero means no delay."""
    delay = explicit_delay(secs)
    if secs == 0:
        assert delay == StartDelay(kind=DelayKind.NONE)
    else:
        assert delay.kind is DelayKind.SECONDS
        assert delay.secs == secs
        assert isinstance(delay.secs, float)


@pytest.mark.parametrize("secs", [-1, -1e-9, math.inf, -math.inf, math.nan])
def test_explicit_delay_rejects_negative_or_non_finite(secs: float) -> None:
    """A negative or non-finite explicit delay is a ConfigError naming `delay_secs`."""
    with pytest.raises(ConfigError) as info:
        explicit_delay(secs)
    assert info.value.field == "delay_secs"


@pytest.mark.parametrize("secs", [True, "5", None])
def test_explicit_delay_rejects_non_numbers(secs: object) -> None:
    """An explicit delay that is not a number is a ConfigTypeError naming `delay_secs`."""
    with pytest.raises(ConfigTypeError) as info:
        explicit_delay(secs)  # type: ignore[arg-type]
    assert info.value.field == "delay_secs"
