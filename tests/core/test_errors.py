"""The typed error hierarchy and the attrs validators that raise it."""

from __future__ import annotations

import math
import pickle
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core import _validate
from core.errors import (
    ConfigError,
    ConfigTypeError,
    FieldError,
    ScheduleError,
    TFConfigError,
    TFExperimentError,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (FieldError, (TFExperimentError,)),
        (ConfigError, (FieldError, ValueError)),
        (ConfigTypeError, (FieldError, TypeError)),
        (TFConfigError, (ConfigError, ValueError)),
        (ScheduleError, (ConfigError, ValueError)),
    ],
)
def test_hierarchy(cls: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    """Each error derives from the project base and from the builtin the seed documents."""
    for base in bases:
        assert issubclass(cls, base)
    assert issubclass(cls, TFExperimentError)


@pytest.mark.parametrize("cls", [ConfigError, TFConfigError, ScheduleError])
def test_value_errors_are_not_type_errors(cls: type[FieldError]) -> None:
    """Value errors are caught by `except ValueError` and not by `except TypeError`."""
    with pytest.raises(ValueError) as info:
        raise cls("f", 1, "bad")
    assert not isinstance(info.value, TypeError)


def test_type_error_is_not_value_error() -> None:
    """ConfigTypeError is caught by `except TypeError` and not by `except ValueError`."""
    with pytest.raises(TypeError) as info:
        raise ConfigTypeError("f", "x", "must be an int")
    assert not isinstance(info.value, ValueError)


@given(
    cls=st.sampled_from([FieldError, ConfigError, ConfigTypeError, TFConfigError, ScheduleError]),
    field=st.text(min_size=1, max_size=30),
    value=scalars,
    problem=st.text(max_size=40),
)
@example(cls=TFConfigError, field="task.index", value=7, problem="is out of range")
def test_message_names_field_and_value(
    cls: type[FieldError], field: str, value: Any, problem: str
) -> None:
    """The message is `field=repr(value): problem` and the parts stay available as attributes."""
    err = cls(field, value, problem)
    assert str(err) == f"{field}={value!r}: {problem}"
    assert (err.field, err.value, err.problem) == (field, value, problem)


@pytest.mark.parametrize("cls", [ConfigError, ConfigTypeError, TFConfigError, ScheduleError])
def test_errors_survive_pickling(cls: type[FieldError]) -> None:
    """An error pickles and unpickles with its field, value and message intact."""
    err = cls("task.index", 3, "is out of range")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert (back.field, back.value, str(back)) == (err.field, err.value, str(err))


# --- the attrs validators ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Knobs:
    count: int = attrs.field(default=0, validator=_validate.non_negative_int)
    attempts: int = attrs.field(default=1, validator=_validate.positive_int)
    maybe_count: int | None = attrs.field(
        default=None, validator=_validate.optional(_validate.non_negative_int)
    )
    maybe_attempts: int | None = attrs.field(
        default=None, validator=_validate.optional(_validate.positive_int)
    )
    delay_secs: float = attrs.field(default=0.0, validator=_validate.non_negative_secs)
    period_secs: float = attrs.field(default=1.0, validator=_validate.positive_secs)


def knobs(field: str, value: Any) -> _Knobs:
    """A `_Knobs` with one field set (kwargs typed loosely on purpose)."""
    kwargs: dict[str, Any] = {field: value}
    return _Knobs(**kwargs)


_INT_FIELDS = ["count", "attempts", "maybe_count", "maybe_attempts"]
_SECS_FIELDS = ["delay_secs", "period_secs"]
_MINIMUM = {"count": 0, "attempts": 1, "maybe_count": 0, "maybe_attempts": 1}


@given(field=st.sampled_from(_INT_FIELDS), value=st.integers(min_value=-(10**6), max_value=10**6))
@example(field="count", value=0)
@example(field="attempts", value=0)
@example(field="maybe_attempts", value=1)
def test_int_validators_accept_exactly_the_allowed_range(field: str, value: int) -> None:
    """Int fields accept ints at or above their minimum and raise ConfigError naming the field below it."""
    if value >= _MINIMUM[field]:
        assert getattr(knobs(field, value), field) == value
    else:
        with pytest.raises(ConfigError) as info:
            knobs(field, value)
        assert info.value.field == field
        assert info.value.value == value


@given(
    field=st.sampled_from(_INT_FIELDS),
    value=st.one_of(st.booleans(), st.floats(), st.text(max_size=5), st.just([1])),
)
@example(field="count", value=True)
@example(field="attempts", value=2.0)
def test_int_validators_reject_wrong_types(field: str, value: Any) -> None:
    """Bools, floats and strings in int fields raise ConfigTypeError naming the field."""
    with pytest.raises(ConfigTypeError) as info:
        knobs(field, value)
    assert info.value.field == field
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("field", ["maybe_count", "maybe_attempts"])
def test_optional_int_validators_accept_none(field: str) -> None:
    """Optional int fields accept None."""
    assert getattr(knobs(field, None), field) is None


@given(
    field=st.sampled_from(_SECS_FIELDS),
    value=st.one_of(st.floats(), st.integers(min_value=-(10**6), max_value=10**6)),
)
@example(field="delay_secs", value=0.0)
@example(field="period_secs", value=0.0)
@example(field="delay_secs", value=math.inf)
@example(field="delay_secs", value=math.nan)
@example(field="period_secs", value=-1e-9)
def test_secs_validators_accept_only_finite_non_negative(field: str, value: float) -> None:
    """Seconds fields accept finite values >= 0 (> 0 for positive ones), else ConfigError naming the field."""
    ok = math.isfinite(value) and (value > 0 if field == "period_secs" else value >= 0)
    if ok:
        assert getattr(knobs(field, value), field) == value
    else:
        with pytest.raises(ConfigError) as info:
            knobs(field, value)
        assert info.value.field == field


@pytest.mark.parametrize("field", _SECS_FIELDS)
@pytest.mark.parametrize("value", [True, "1", None, [1.0]])
def test_secs_validators_reject_wrong_types(field: str, value: Any) -> None:
    """Bools, strings and None in seconds fields raise ConfigTypeError naming the field."""
    with pytest.raises(ConfigTypeError) as info:
        knobs(field, value)
    assert info.value.field == field
