"""Server-start retry timings: bounded exponential backoff."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.errors import ConfigError, ConfigTypeError
from core.retry import RetryPolicy, backoff_waits, total_wait_secs, wait_before_attempt

secs = st.floats(min_value=1e-3, max_value=100.0)


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    """A valid policy whose waits grow (multiplier >= 1)."""
    return RetryPolicy(
        attempts=draw(st.integers(min_value=1, max_value=60)),
        initial_wait_secs=draw(secs),
        multiplier=draw(st.floats(min_value=1.0, max_value=10.0)),
        max_wait_secs=draw(secs),
    )


def test_default_policy_waits() -> None:
    """The default policy makes 8 attempts, waiting 0.25 s doubling up to 4 s: 15.75 s in all."""
    policy = RetryPolicy()
    assert backoff_waits(policy) == (0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0)
    assert total_wait_secs(policy) == 15.75


@given(policy=policies())
@example(policy=RetryPolicy(attempts=1))
@example(policy=RetryPolicy(attempts=2, initial_wait_secs=10.0, max_wait_secs=1.0))
def test_one_wait_between_each_pair_of_attempts(policy: RetryPolicy) -> None:
    """There are `attempts - 1` waits, one before each attempt after the first."""
    waits = backoff_waits(policy)
    assert len(waits) == policy.attempts - 1
    assert waits == tuple(wait_before_attempt(policy, n) for n in range(2, policy.attempts + 1))


@given(policy=policies())
def test_waits_never_decrease_and_never_exceed_the_cap(policy: RetryPolicy) -> None:
    """Each wait is positive, at most `max_wait_secs`, and no shorter than the one before."""
    waits = backoff_waits(policy)
    assert all(0 < wait <= policy.max_wait_secs for wait in waits)
    assert all(a <= b for a, b in pairwise(waits))


@given(policy=policies())
def test_first_wait_is_the_initial_wait_capped(policy: RetryPolicy) -> None:
    """The wait before the second attempt is `initial_wait_secs`, capped at `max_wait_secs`."""
    expected = min(policy.initial_wait_secs, policy.max_wait_secs)
    assert wait_before_attempt(policy, 2) == expected


@given(policy=policies(), attempt=st.integers(min_value=-5, max_value=1))
def test_first_attempt_does_not_wait(policy: RetryPolicy, attempt: int) -> None:
    """Attempt 1 (and anything below) waits nothing."""
    assert wait_before_attempt(policy, attempt) == 0.0


@given(policy=policies())
def test_total_wait_is_the_sum_of_the_waits(policy: RetryPolicy) -> None:
    """The give-up bound equals the sum of the waits and at most `(attempts - 1) * max`."""
    total = total_wait_secs(policy)
    assert total == sum(backoff_waits(policy))
    assert total <= (policy.attempts - 1) * policy.max_wait_secs * (1 + 1e-12)


def test_late_attempts_wait_the_cap_without_overflow() -> None:
    """A very late attempt waits exactly `max_wait_secs` rather than overflowing."""
    assert wait_before_attempt(RetryPolicy(), 1100) == 4.0
    assert total_wait_secs(RetryPolicy(attempts=2000)) <= 1999 * 4.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("attempts", 0),
        ("attempts", -3),
        ("initial_wait_secs", 0.0),
        ("initial_wait_secs", -1.0),
        ("initial_wait_secs", math.inf),
        ("multiplier", 0.0),
        ("multiplier", math.nan),
        ("max_wait_secs", 0.0),
        ("max_wait_secs", math.inf),
    ],
)
def test_invalid_policy_values_are_rejected(field: str, value: float) -> None:
    """Non-positive or non-finite knobs are a ConfigError naming the field."""
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(ConfigError) as info:
        RetryPolicy(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("field", "value"),
    [("attempts", True), ("attempts", 2.0), ("initial_wait_secs", "1"), ("multiplier", None)],
)
def test_wrong_policy_types_are_rejected(field: str, value: object) -> None:
    """Knobs of the wrong type are a ConfigTypeError naming the field."""
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(ConfigTypeError) as info:
        RetryPolicy(**kwargs)
    assert info.value.field == field
