"""Plain data to config records and back: `parse_config`, `apply_overrides`, `to_mapping`.

Pure: mappings and strings in, an `ExperimentConfig` (or a new mapping) out, or one
``ConfigError``/``ConfigTypeError`` whose ``field`` is the dotted path of the bad key
(``train_input.batch_size``, ``exports[0].type``). Reading files is the shell's job.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs
import yaml

from core.config import ExperimentConfig
from core.errors import ConfigError, ConfigTypeError, FieldError

__all__ = ["apply_overrides", "parse_config", "set_dotted", "to_mapping"]

T = TypeVar("T")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _prefixed(err: FieldError, path: str) -> FieldError:
    """The same error with its field path prefixed by ``path``."""
    return type(err)(_join(path, err.field) if path else err.field, err.value, err.problem)


def _parse(cls: type[T], data: Any, path: str, shorthand: str | None = None) -> T:
    """Convert a mapping (or shorthand string) into the attrs record ``cls``."""
    if isinstance(data, cls):
        return data
    if shorthand is not None and isinstance(data, str):
        data = {shorthand: data}
    if not isinstance(data, Mapping):
        what = f"a mapping (or a string: the {shorthand})" if shorthand else "a mapping"
        raise ConfigTypeError(path or "config", data, f"must be {what}")
    fields = {f.name: f for f in attrs.fields(cls) if f.init}  # type: ignore[arg-type]
    for key, value in data.items():
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                _join(path, str(key)),
                value,
                f"unknown key{hint} (valid: {', '.join(fields)})",
            )
    for name, field in fields.items():
        if field.default is attrs.NOTHING and name not in data:
            raise ConfigError(_join(path, name), None, "is required")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        field = fields[key]
        sub = field.metadata.get("record")
        many = field.metadata.get("records")
        here = _join(path, key)
        if sub is not None and value is not None:
            value = _parse(sub, value, here, field.metadata.get("shorthand"))
        elif many is not None and value is not None:
            if not isinstance(value, (list, tuple)):
                raise ConfigTypeError(here, value, "must be a list")
            value = tuple(
                _parse(many, item, _join(here, i), field.metadata.get("shorthand"))
                for i, item in enumerate(value)
            )
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except FieldError as err:
        raise _prefixed(err, path) from None


def parse_config(data: Mapping[str, Any] | ExperimentConfig) -> ExperimentConfig:
    """Validate a config mapping into an `ExperimentConfig`.

    Args:
        data: The mapping (as read from YAML/JSON), or a record (returned as is).

    Returns:
        The validated record.

    Raises:
        ConfigError: An unknown key, a missing required key, or a bad value; the error's
            ``field`` is the dotted path, e.g. ``train_input.batch_size``.
        ConfigTypeError: A value of the wrong type.
    """
    return _parse(ExperimentConfig, data, "")


def to_mapping(config: ExperimentConfig) -> dict[str, Any]:
    """The plain mapping `parse_config` turns back into ``config`` (lists, not tuples)."""
    plain: dict[str, Any] = attrs.asdict(config, filter=lambda field, _value: field.init)
    return plain


def _plain(value: Any) -> Any:
    """A deep copy of mappings and lists as dicts and lists (other values shared)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _value(key: str, text: str) -> Any:
    """The YAML value of one ``KEY=VALUE`` override (plain text when it is not YAML)."""
    if not text.strip():
        raise ConfigError(
            f"--set {key}", text, "has no value (write null to unset a key, '' for an empty string)"
        )
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _container_for(next_part: str) -> Any:
    """A new container for a missing key: a list when the next part indexes one."""
    return [] if next_part.isdigit() else {}


def set_dotted(result: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``result`` to ``value`` in place.

    Missing containers on the way are created (a list when the next part is a number);
    a list index may be the list's length, to append.

    Raises:
        ConfigError: The path crosses a value that is not a mapping or a list, or
            indexes past a list's end; the field is the path up to there.
    """
    parts = key.split(".")
    node: Any = result
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) > len(node):
                raise ConfigError(
                    where,
                    part,
                    f"is not an index of a {len(node)}-item list "
                    f"(0..{len(node) - 1}, or {len(node)} to append)",
                )
            index = int(part)
            if index == len(node):
                node.append(value if last else _container_for(parts[depth + 1]))
            if last:
                node[index] = value
            else:
                if node[index] is None:
                    node[index] = _container_for(parts[depth + 1])
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = _container_for(parts[depth + 1])
                node = node[part]
        else:
            parent = ".".join(parts[:depth])
            raise ConfigError(
                parent, node, f"is not a mapping or list, so {key} cannot be set in it"
            )


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides (dotted keys, YAML values) to a config mapping.

    A missing key is created (a list when the next part is a number); a list index
    may be the list's length, to append.

    Args:
        data: The config mapping (left unchanged).
        overrides: E.g. ``train_steps=50`` or ``estimator.params.hidden_units=[8, 4]``;
            a numeric segment indexes a list (``exports.0.type=best``).

    Returns:
        A new mapping.

    Raises:
        ConfigError: An override without ``=`` or without a value, or whose path crosses
            a value that is not a mapping or a list, or indexes past a list's end.
    """
    result: dict[str, Any] = _plain(data) if data else {}
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--set", override, "must be KEY=VALUE, e.g. train_steps=100")
        if any(not part for part in key.split(".")):
            raise ConfigError("--set", override, "has an empty part in its dotted key")
        set_dotted(result, key, _value(key, text))
    return result
