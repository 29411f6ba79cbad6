"""The typed error hierarchy: every error names the bad field and its value."""

from __future__ import annotations

from typing import Any


class TFExperimentError(Exception):
    """Base class of every error tfexperiment raises on purpose."""


class FieldError(TFExperimentError):
    """An error about one named field (a config key, an argument) and its value.

    Attributes:
        field: Dotted path of the offending field, e.g. ``task.index``.
        value: The offending value.
    """

    def __init__(self, field: str, value: Any, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments, so errors cross process boundaries."""
        return (type(self), (self.field, self.value, self.problem))


class ConfigError(FieldError, ValueError):
    """A value is invalid (also a ``ValueError``)."""


class ConfigTypeError(FieldError, TypeError):
    """A value has the wrong type (also a ``TypeError``)."""


class TFConfigError(ConfigError):
    """``TF_CONFIG`` is malformed: bad JSON, unknown task type, index out of range."""


class ScheduleError(ConfigError):
    """A schedule name is unknown, or no default schedule exists for the task."""
