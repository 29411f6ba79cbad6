"""The project's only validators: attrs validators that raise field-naming errors.

Compose them rather than writing variants, e.g. ``optional(positive_int)`` (attrs'
own ``attrs.validators.optional``, typed for int defaults). Outside a record, `check` runs any of them
on a plain value with a field name (``check(non_negative_secs, "delay_secs", 5)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from core.errors import ConfigError, ConfigTypeError

Validator = Callable[[Any, Any, Any], None]

#: The largest value TensorFlow's int64 global step (and step counts) can hold.
INT64_MAX = 2**63 - 1


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@attrs.frozen
class _Named:
    """Stands in for an ``attrs.Attribute`` when a validator checks a plain value."""

    name: str


def check(validator: Validator, field: str, value: Any) -> Any:
    """Run ``validator`` on ``value`` as if it were the field ``field``; return the value.

    Raises:
        ConfigError: (or ConfigTypeError) ``value`` fails the validator.
    """
    validator(None, _Named(field), value)
    return value


def optional(validator: Validator) -> Validator:
    """``attrs.validators.optional(validator)``: also accept None.

    Typed loosely so that a field with a non-None default (``default=10``) type-checks.
    """
    wrapped: Validator = attrs.validators.optional(validator)
    return wrapped


def _int_at_least(minimum: int) -> Validator:
    def validate(_inst: Any, attribute: Any, value: Any) -> None:
        if not is_int(value):
            raise ConfigTypeError(attribute.name, value, "must be an int")
        if value < minimum:
            raise ConfigError(attribute.name, value, f"must be >= {minimum}")
        if value > INT64_MAX:
            raise ConfigError(attribute.name, value, f"must be <= {INT64_MAX} (int64)")

    validate.__doc__ = f"Require an int >= {minimum} that fits in an int64."
    return validate


non_negative_int = _int_at_least(0)
positive_int = _int_at_least(1)


def non_negative_secs(_inst: Any, attribute: Any, value: Any) -> None:
    """Require a finite number of seconds >= 0."""
    if not is_number(value):
        raise ConfigTypeError(attribute.name, value, "must be a number of seconds")
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(attribute.name, value, "must be a finite number >= 0")


def positive_secs(inst: Any, attribute: Any, value: Any) -> None:
    """Require a finite number of seconds > 0."""
    non_negative_secs(inst, attribute, value)
    if value == 0:
        raise ConfigError(attribute.name, value, "must be > 0")


def finite_number(_inst: Any, attribute: Any, value: Any) -> None:
    """Require a finite int or float."""
    if not is_number(value):
        raise ConfigTypeError(attribute.name, value, "must be a number")
    if not math.isfinite(value):
        raise ConfigError(attribute.name, value, "must be finite")


def boolean(_inst: Any, attribute: Any, value: Any) -> None:
    """Require True or False (not 1, 0 or 'yes')."""
    if not isinstance(value, bool):
        raise ConfigTypeError(attribute.name, value, "must be true or false")


def non_empty_str(_inst: Any, attribute: Any, value: Any) -> None:
    """Require a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigTypeError(attribute.name, value, "must be a non-empty string")


def one_of(choices: Sequence[Any]) -> Validator:
    """Require one of ``choices`` (the message lists them)."""

    def validate(_inst: Any, attribute: Any, value: Any) -> None:
        if value not in choices:
            shown = ", ".join(str(c) for c in choices)
            raise ConfigError(attribute.name, value, f"must be one of: {shown}")

    return validate


def is_callable(_inst: Any, attribute: Any, value: Any) -> None:
    """Require a callable."""
    if not callable(value):
        raise ConfigTypeError(attribute.name, value, "must be callable")


def str_keyed_mapping(_inst: Any, attribute: Any, value: Any) -> None:
    """Require a mapping whose keys are strings."""
    if not isinstance(value, Mapping):
        raise ConfigTypeError(attribute.name, value, "must be a mapping")
    for key in value:
        if not isinstance(key, str):
            raise ConfigTypeError(f"{attribute.name}.{key}", key, "keys must be strings")


def unique_names(_inst: Any, attribute: Any, value: Any) -> None:
    """Require a tuple of distinct non-empty strings."""
    if not isinstance(value, tuple):
        raise ConfigTypeError(attribute.name, value, "must be a list of strings")
    for i, item in enumerate(value):
        non_empty_str(None, _Named(f"{attribute.name}[{i}]"), item)
    if len(set(value)) != len(value):
        raise ConfigError(attribute.name, list(value), "has duplicate names")


def instance(cls: type, what: str | None = None) -> Validator:
    """Require an instance of ``cls`` (``what`` names it in the message)."""
    shown = what or f"a {cls.__name__}"

    def validate(_inst: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, cls):
            raise ConfigTypeError(attribute.name, value, f"must be {shown}")

    return validate


def tuple_of(item: Validator, what: str = "a list") -> Validator:
    """Require a tuple whose every element passes ``item`` (named ``field[i]``)."""

    def validate(_inst: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, tuple):
            raise ConfigTypeError(attribute.name, value, f"must be {what}")
        for i, element in enumerate(value):
            item(None, _Named(f"{attribute.name}[{i}]"), element)

    return validate


def import_spec(_inst: Any, attribute: Any, value: Any) -> None:
    """Require ``module:attribute`` naming an importable object (not imported here)."""
    module, _, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not module or not name:
        raise ConfigError(
            attribute.name, value, "must be 'module:attribute', e.g. 'my_pkg.model:build'"
        )


def non_negative_number(inst: Any, attribute: Any, value: Any) -> None:
    """Require a finite number >= 0 (not a duration: e.g. a metric's ``min_delta``)."""
    finite_number(inst, attribute, value)
    if value < 0:
        raise ConfigError(attribute.name, value, "must be >= 0")
