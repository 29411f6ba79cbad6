"""Bounded exponential backoff for starting a server (applied by the shell via tenacity)."""

from __future__ import annotations

from typing import Any

import attrs

from core._validate import positive_int, positive_secs
from core.errors import ConfigError, ConfigTypeError


def _at_least_one(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigTypeError(attribute.name, value, "must be a number")
    if not 1 <= value < float("inf"):
        raise ConfigError(attribute.name, value, "must be a finite number >= 1")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    Attributes:
        attempts: Total attempts, the first included.
        initial_wait_secs: Wait after the first failure.
        multiplier: Each later wait is this many times the previous one.
        max_wait_secs: No single wait is longer than this.
    """

    attempts: int = attrs.field(default=8, validator=positive_int)
    initial_wait_secs: float = attrs.field(default=0.25, validator=positive_secs)
    multiplier: float = attrs.field(default=2.0, validator=_at_least_one)
    max_wait_secs: float = attrs.field(default=4.0, validator=positive_secs)


def wait_before_attempt(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait before attempt number ``attempt`` (1-based; attempt 1 waits 0)."""
    if attempt <= 1:
        return 0.0
    wait = min(policy.max_wait_secs, policy.initial_wait_secs)
    for _ in range(attempt - 2):
        if wait >= policy.max_wait_secs:
            break
        wait = min(policy.max_wait_secs, wait * policy.multiplier)
    return wait


def backoff_waits(policy: RetryPolicy) -> tuple[float, ...]:
    """All waits between the attempts, in order (``attempts - 1`` of them)."""
    return tuple(wait_before_attempt(policy, n) for n in range(2, policy.attempts + 1))


def total_wait_secs(policy: RetryPolicy) -> float:
    """The longest the retries can wait in all: the bound on giving up."""
    return sum(backoff_waits(policy))
