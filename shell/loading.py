"""Reading configs: YAML/JSON files (and ``--set`` overrides) into records; `import_object`.

Parsing and validation are the core's (`core.config_parse`); this module reads the file
(naming the file and line in its errors), makes the inputs' data paths absolute, and
imports ``module:attribute`` values. No TensorFlow.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from core._validate import check, import_spec
from core.config import ExperimentConfig
from core.config_parse import apply_overrides, parse_config, to_mapping
from core.errors import ConfigError, ConfigTypeError

__all__ = [
    "absolute_data_paths",
    "import_callable",
    "import_object",
    "load_config",
    "read_config_file",
]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML safe loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key given twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def read_config_file(path: Path) -> Any:
    """The plain data in a YAML or JSON file (``.json`` is JSON, anything else YAML).

    Raises:
        ConfigError: On the field ``config``: the file is missing, a directory, not
            UTF-8, not valid YAML/JSON, or has a key twice (with its line).
    """
    if path.is_dir():
        raise ConfigError("config", str(path), "is a directory, not a YAML/JSON file")
    if not path.is_file():
        raise ConfigError("config", str(path), "no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            "config", str(path), f"is not UTF-8 text (byte {err.start}: {err.reason})"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as err:
            raise ConfigError(
                "config", str(path), f"is not valid JSON: {err.msg} (line {err.lineno})"
            ) from None
        except ValueError as err:
            raise ConfigError("config", str(path), f"is not valid JSON: {err}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError("config", str(path), f"is not valid YAML: {problem}{where}") from None


def absolute_data_paths(data: Any, base: Path) -> Any:
    """Make relative ``path`` values of the input sections relative to ``base``."""
    if not isinstance(data, Mapping):
        return data
    data = dict(data)
    for section in ("train_input", "eval_input"):
        value = data.get(section)
        if isinstance(value, Mapping) and isinstance(value.get("path"), str):
            path = os.path.expanduser(value["path"])
            data[section] = {**value, "path": str(base / path) if path else path}
    return data


def load_config(
    source: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str],
    overrides: Iterable[str] = (),
) -> ExperimentConfig:
    """Read and validate a config from a record, a mapping, or a YAML/JSON file.

    Relative data paths in a file are relative to the file's directory.

    Args:
        source: The config.
        overrides: ``KEY=VALUE`` overrides (see `core.config_parse.apply_overrides`).

    Returns:
        The validated record.

    Raises:
        ConfigError: The file is missing or unparsable, or a value is invalid.
        ConfigTypeError: A value has the wrong type.
    """
    overrides = list(overrides)
    data: Any
    if isinstance(source, ExperimentConfig):
        if not overrides:
            return source
        data = to_mapping(source)
    elif isinstance(source, Mapping):
        data = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        data = absolute_data_paths(read_config_file(path), path.resolve().parent)
    else:
        raise ConfigTypeError(
            "experiment_config",
            source,
            "must be an ExperimentConfig, a mapping, or a path to a YAML/JSON file",
        )
    if data is None:
        raise ConfigError("config", source, "is empty")
    if not isinstance(data, Mapping):
        raise ConfigTypeError("config", data, "must be a mapping at the top level")
    if overrides:
        data = apply_overrides(data, overrides)
    return parse_config(data)


def import_object(spec: str, field: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted).

    Args:
        spec: E.g. ``my_pkg.model:build_experiment``.
        field: The config field naming it, for errors.

    Returns:
        The object.

    Raises:
        ConfigError: Malformed ``spec``, the module cannot be imported (or raises while
            importing, e.g. a SyntaxError), or it lacks the attribute.
    """
    check(import_spec, field, spec)
    module_name, _, attr_path = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(field, spec, f"cannot import module {module_name!r}: {err}") from None
    except Exception as err:  # a SyntaxError or any error the module raised while importing
        raise ConfigError(
            field, spec, f"importing module {module_name!r} raised {type(err).__name__}: {err}"
        ) from err
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ConfigError(field, spec, f"module {module_name!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    return obj


def import_callable(spec: str, field: str) -> Callable[..., Any]:
    """`import_object`, requiring a callable.

    Raises:
        ConfigError: As `import_object`.
        ConfigTypeError: The object is not callable.
    """
    obj = import_object(spec, field)
    if not callable(obj):
        raise ConfigTypeError(field, spec, f"is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]
