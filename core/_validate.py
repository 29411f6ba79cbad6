"""Small attrs validators that raise the project's field-naming errors."""

from __future__ import annotations

from typing import Any

import attrs

from core.errors import ConfigError, ConfigTypeError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def non_negative_int(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Require an int >= 0."""
    if not _is_int(value):
        raise ConfigTypeError(attribute.name, value, "must be an int")
    if value < 0:
        raise ConfigError(attribute.name, value, "must be >= 0")


def positive_int(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Require an int >= 1."""
    if not _is_int(value):
        raise ConfigTypeError(attribute.name, value, "must be an int")
    if value < 1:
        raise ConfigError(attribute.name, value, "must be >= 1")


def optional_non_negative_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Require None or an int >= 0."""
    if value is not None:
        non_negative_int(inst, attribute, value)


def optional_positive_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Require None or an int >= 1."""
    if value is not None:
        positive_int(inst, attribute, value)


def non_negative_secs(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Require a finite number of seconds >= 0."""
    if not _is_number(value):
        raise ConfigTypeError(attribute.name, value, "must be a number of seconds")
    if not value >= 0 or value == float("inf"):
        raise ConfigError(attribute.name, value, "must be a finite number >= 0")


def positive_secs(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Require a finite number of seconds > 0."""
    non_negative_secs(inst, attribute, value)
    if value == 0:
        raise ConfigError(attribute.name, value, "must be > 0")
