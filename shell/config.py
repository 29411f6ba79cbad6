"""create_experiment: build an Experiment from a config record, a dict, or a YAML/JSON file.

Parsing and validation (``parse_config``) need no TensorFlow; building (estimator, input
functions, hooks, exporters) imports it. Every problem is raised as one
``ConfigError``/``ConfigTypeError`` naming the field path (``train_input.path``,
``exports[0].type``) before anything trains.
"""

from __future__ import annotations

import csv
import difflib
import functools
import importlib
import inspect
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from core._validate import (
    non_negative_int,
    non_negative_secs,
    optional,
    positive_int,
)
from core.errors import ConfigError, ConfigTypeError, FieldError

if TYPE_CHECKING:
    from shell.experiment import Experiment

__all__ = [
    "CANNED_ESTIMATORS",
    "EXPORT_TYPES",
    "OPTIMIZERS",
    "EstimatorConfig",
    "EvalInputConfig",
    "ExperimentConfig",
    "ExportConfig",
    "FeatureConfig",
    "HookConfig",
    "InputConfig",
    "RunConfigSpec",
    "apply_overrides",
    "create_experiment",
    "import_object",
    "load_config",
    "parse_config",
]

# Baseline* are left out: in TF 2.15 they fail to train on a multi-feature Dataset.
CANNED_ESTIMATORS: tuple[str, ...] = (
    "LinearClassifier",
    "LinearRegressor",
    "DNNClassifier",
    "DNNRegressor",
    "DNNLinearCombinedClassifier",
    "DNNLinearCombinedRegressor",
)
OPTIMIZERS: tuple[str, ...] = ("Adagrad", "Adam", "Ftrl", "RMSProp", "SGD")
EXPORT_TYPES: tuple[str, ...] = ("latest", "best", "final")
LABEL_DTYPES: tuple[str, ...] = ("auto", "int", "float")
DATA_SUFFIXES: tuple[str, ...] = (".csv", ".npz")

# Canned-estimator parameters filled in from the data, never taken from the config.
_FILLED_PARAMS = frozenset(
    {"feature_columns", "linear_feature_columns", "dnn_feature_columns", "model_dir", "config"}
)
_OPTIMIZER_PARAMS = ("optimizer", "linear_optimizer", "dnn_optimizer")
_ACTIVATION_PARAMS = ("activation_fn", "dnn_activation_fn")
_HIDDEN_UNITS_PARAMS = ("hidden_units", "dnn_hidden_units")
_DROPOUT_PARAMS = ("dropout", "dnn_dropout")

T = TypeVar("T")


# --------------------------------------------------------------------------- validators
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigTypeError(attribute.name, value, "must be a non-empty string")


def _opt_str(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _str(inst, attribute, value)


def _bool(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigTypeError(attribute.name, value, "must be true or false")


def _opt_secs(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        non_negative_secs(inst, attribute, value)


def _one_of(choices: Sequence[str]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ConfigError(attribute.name, value, f"must be one of: {', '.join(choices)}")

    return check


def _mapping(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ConfigTypeError(attribute.name, value, "must be a mapping")
    for key in value:
        if not isinstance(key, str):
            raise ConfigTypeError(f"{attribute.name}.{key}", key, "keys must be strings")


def _str_tuple(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, tuple):
        raise ConfigTypeError(attribute.name, value, "must be a list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ConfigTypeError(f"{attribute.name}[{i}]", item, "must be a non-empty string")
    if len(set(value)) != len(value):
        raise ConfigError(attribute.name, list(value), "has duplicate names")


def _records(cls: type) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, tuple):
            raise ConfigTypeError(attribute.name, value, f"must be a list of {cls.__name__}")
        for i, item in enumerate(value):
            if not isinstance(item, cls):
                raise ConfigTypeError(f"{attribute.name}[{i}]", item, f"must be a {cls.__name__}")

    return check


def _record(cls: type) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, cls):
            raise ConfigTypeError(attribute.name, value, f"must be a mapping ({cls.__name__})")

    return check


def _to_tuple(value: Any) -> Any:
    """Lists become tuples; anything else is left for the validator to judge."""
    return tuple(value) if isinstance(value, list) else value


def _to_dict(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _check_spec(field: str, value: Any) -> None:
    """Require ``module:attribute`` (an importable object)."""
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(field, value, "must be 'module:attribute', e.g. 'my_pkg.model:build'")
    module, _, name = value.partition(":")
    if not module or not name:
        raise ConfigError(field, value, "must be 'module:attribute', e.g. 'my_pkg.model:build'")


def _spec(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _check_spec(attribute.name, value)


def _opt_spec(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _spec(inst, attribute, value)


def _records_field(cls: type, shorthand: str | None = None) -> Any:
    return attrs.field(
        factory=tuple,
        converter=_to_tuple,
        validator=_records(cls),
        metadata={"records": cls, "shorthand": shorthand},
    )


# --------------------------------------------------------------------------- records
@attrs.frozen(kw_only=True)
class FeatureConfig:
    """One numeric input feature of the model.

    Attributes:
        name: Feature key (a CSV column, an .npz array, or a key of the input_fn's features).
        shape: Shape of one example's value; ``[]`` for a scalar.
    """

    name: str = attrs.field(validator=_str)
    shape: tuple[int, ...] = attrs.field(default=(), converter=_to_tuple)

    @shape.validator
    def _check_shape(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, tuple) or not all(_is_int(d) and d > 0 for d in value):
            raise ConfigTypeError(attribute.name, value, "must be a list of positive ints")


@attrs.frozen(kw_only=True)
class RunConfigSpec:
    """The ``tf.estimator.RunConfig`` section (``TF_CONFIG`` is read by RunConfig itself).

    Attributes:
        model_dir: Where checkpoints and event files go (overridden by ``output_dir``).
        save_checkpoints_steps: Save a checkpoint every N steps (exclusive with secs).
        save_checkpoints_secs: Save a checkpoint every N seconds (TF's default: 600).
        keep_checkpoint_max: Checkpoints kept on disk.
        save_summary_steps: Write training summaries (the loss curve) every N steps.
        log_step_count_steps: Log the loss and steps/s every N steps (in --verbose).
        tf_random_seed: Graph-level random seed.
    """

    model_dir: str | None = attrs.field(default=None, validator=_opt_str)
    save_checkpoints_steps: int | None = attrs.field(default=None, validator=optional(positive_int))
    save_checkpoints_secs: float | None = attrs.field(default=None, validator=_opt_secs)
    keep_checkpoint_max: int = attrs.field(default=5, validator=positive_int)
    save_summary_steps: int = attrs.field(default=100, validator=positive_int)
    log_step_count_steps: int = attrs.field(default=100, validator=positive_int)
    tf_random_seed: int | None = attrs.field(default=None, validator=optional(non_negative_int))

    def __attrs_post_init__(self) -> None:
        if self.save_checkpoints_steps is not None and self.save_checkpoints_secs is not None:
            raise ConfigError(
                "save_checkpoints_secs",
                self.save_checkpoints_secs,
                "set save_checkpoints_steps or save_checkpoints_secs, not both",
            )


@attrs.frozen(kw_only=True)
class EstimatorConfig:
    """The estimator: a canned one by name (``type``) or a ``module:factory``.

    Attributes:
        type: A canned estimator of ``tf.estimator`` (see ``CANNED_ESTIMATORS``).
        factory: ``module:callable`` called as ``factory(model_dir, params)`` (plus
            ``config=RunConfig`` when it takes a ``config`` argument).
        params: Constructor parameters of the canned estimator, or the factory's params.
        feature_columns: Numeric features of the model; default: the training file's
            feature columns.
        standardize: Standardize each feature with the training file's mean and std,
            inside the model (so exports take raw values).
        run_config: The RunConfig section.
    """

    type: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_one_of(CANNED_ESTIMATORS))
    )
    factory: str | None = attrs.field(default=None, validator=_opt_spec)
    params: dict[str, Any] = attrs.field(factory=dict, converter=_to_dict, validator=_mapping)
    feature_columns: tuple[FeatureConfig, ...] | None = attrs.field(
        default=None,
        converter=_to_tuple,
        validator=attrs.validators.optional(_records(FeatureConfig)),
        metadata={"records": FeatureConfig, "shorthand": "name"},
    )
    standardize: bool = attrs.field(default=False, validator=_bool)
    run_config: RunConfigSpec = attrs.field(
        factory=RunConfigSpec,
        validator=_record(RunConfigSpec),
        metadata={"record": RunConfigSpec},
    )

    def __attrs_post_init__(self) -> None:
        if (self.type is None) == (self.factory is None):
            raise ConfigError(
                "type",
                self.type,
                "set exactly one of estimator.type (a canned estimator: "
                f"{', '.join(CANNED_ESTIMATORS)}) or estimator.factory ('module:callable')",
            )
        if self.type is not None:
            _check_canned_params(self.params)


@attrs.frozen(kw_only=True)
class InputConfig:
    """Training input: an in-memory CSV/.npz file, or an importable ``module:input_fn``.

    Attributes:
        path: A ``.csv`` file (header row, numeric values) or an ``.npz`` file (one array
            per feature and the label).
        input_fn: ``module:callable`` returning a Dataset or ``(features, labels)``.
        params: Keyword arguments for ``input_fn``.
        features: Feature columns/arrays; default: every column except the label.
        label: The label column/array (required with ``path``).
        label_dtype: ``auto`` (int for canned classifiers, float for canned regressors;
            with a factory, int when every label is a whole number), ``int``, ``float``.
        batch_size: Examples per batch.
        shuffle: Shuffle the examples every epoch.
        num_epochs: Passes over the data; null repeats forever.
        seed: Shuffle seed.
    """

    path: str | None = attrs.field(default=None, validator=_opt_str)
    input_fn: str | None = attrs.field(default=None, validator=_opt_spec)
    params: dict[str, Any] = attrs.field(factory=dict, converter=_to_dict, validator=_mapping)
    features: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_tuple, validator=_str_tuple
    )
    label: str | None = attrs.field(default=None, validator=_opt_str)
    label_dtype: str = attrs.field(default="auto", validator=_one_of(LABEL_DTYPES))
    batch_size: int = attrs.field(default=32, validator=positive_int)
    shuffle: bool = attrs.field(default=True, validator=_bool)
    num_epochs: int | None = attrs.field(default=None, validator=optional(positive_int))
    seed: int | None = attrs.field(default=None, validator=optional(non_negative_int))

    def __attrs_post_init__(self) -> None:
        if (self.path is None) == (self.input_fn is None):
            raise ConfigError(
                "path", self.path, "set exactly one of path (a .csv/.npz file) or input_fn"
            )
        if self.path is not None:
            if Path(self.path).suffix.lower() not in DATA_SUFFIXES:
                raise ConfigError("path", self.path, "must be a .csv or .npz file")
            if self.params:
                raise ConfigError("params", self.params, "only applies to input_fn")
        elif self.features is not None or self.label is not None:
            field = "features" if self.features is not None else "label"
            raise ConfigError(field, getattr(self, field), "only applies to path (a data file)")


@attrs.frozen(kw_only=True)
class EvalInputConfig(InputConfig):
    """Evaluation input: as `InputConfig`, but one unshuffled epoch by default.

    ``features`` and ``label`` default to the training input's.
    """

    shuffle: bool = attrs.field(default=False, validator=_bool)
    num_epochs: int | None = attrs.field(default=1, validator=optional(positive_int))


@attrs.frozen(kw_only=True)
class HookConfig:
    """A ``SessionRunHook`` made by ``factory(**params)``.

    Attributes:
        factory: ``module:callable`` returning a ``tf.estimator.SessionRunHook``.
        params: Keyword arguments for the factory.
    """

    factory: str = attrs.field(validator=_spec)
    params: dict[str, Any] = attrs.field(factory=dict, converter=_to_dict, validator=_mapping)


@attrs.frozen(kw_only=True)
class ExportConfig:
    """An export strategy, mapped to a ``tf.estimator`` exporter.

    Attributes:
        name: Directory under ``<model_dir>/export/``.
        type: ``latest`` (after every evaluation), ``best`` (when ``metric`` improves),
            ``final`` (once, at the end).
        exports_to_keep: How many exports ``latest``/``best`` keep; null keeps all.
        metric: The evaluation metric ``best`` compares.
        higher_is_better: Whether a larger ``metric`` is better (e.g. accuracy).
        serving_input_fn: ``module:callable`` returning a ``ServingInputReceiver``;
            default: one float32 input per feature column.
    """

    name: str = attrs.field(validator=_str)
    type: str = attrs.field(default="latest", validator=_one_of(EXPORT_TYPES))
    exports_to_keep: int | None = attrs.field(default=5, validator=optional(positive_int))
    metric: str = attrs.field(default="loss", validator=_str)
    higher_is_better: bool = attrs.field(default=False, validator=_bool)
    serving_input_fn: str | None = attrs.field(default=None, validator=_opt_spec)

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if "/" in value or os.sep in value or value in (".", ".."):
            raise ConfigError(attribute.name, value, "must be a plain directory name")


@attrs.frozen(kw_only=True)
class ExperimentConfig:
    """Everything `create_experiment` needs; mirrors the Experiment's arguments.

    Attributes:
        estimator: The estimator section.
        train_input: The training input.
        eval_input: The evaluation input.
        train_steps: Train to this global step; null trains until the input ends.
        eval_steps: Evaluation batches; null evaluates the whole eval input.
        eval_delay_secs: Wait before the first evaluation (continuous_eval).
        continuous_eval_throttle_secs: Minimum gap between evaluation starts.
        eval_every_n_steps: train_and_evaluate's minimum step gap between evaluations.
        delay_workers_by_global_step: Delay workers by global step instead of time.
        train_steps_per_iteration: continuous_train_and_evaluate's steps per iteration.
        train_hooks: Training hooks.
        eval_hooks: Evaluation hooks.
        exports: Export strategies.
    """

    estimator: EstimatorConfig = attrs.field(
        validator=_record(EstimatorConfig), metadata={"record": EstimatorConfig}
    )
    train_input: InputConfig = attrs.field(
        validator=_record(InputConfig), metadata={"record": InputConfig}
    )
    eval_input: EvalInputConfig = attrs.field(
        validator=_record(EvalInputConfig), metadata={"record": EvalInputConfig}
    )
    train_steps: int | None = attrs.field(default=None, validator=optional(non_negative_int))
    eval_steps: int | None = attrs.field(default=None, validator=optional(positive_int))
    eval_delay_secs: float = attrs.field(default=0, validator=non_negative_secs)
    continuous_eval_throttle_secs: float = attrs.field(default=60, validator=non_negative_secs)
    eval_every_n_steps: int | None = attrs.field(default=1, validator=optional(non_negative_int))
    delay_workers_by_global_step: bool = attrs.field(default=False, validator=_bool)
    train_steps_per_iteration: int | None = attrs.field(
        default=100, validator=optional(positive_int)
    )
    train_hooks: tuple[HookConfig, ...] = _records_field(HookConfig, shorthand="factory")
    eval_hooks: tuple[HookConfig, ...] = _records_field(HookConfig, shorthand="factory")
    exports: tuple[ExportConfig, ...] = _records_field(ExportConfig)

    def __attrs_post_init__(self) -> None:
        names = [e.name for e in self.exports]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(f"exports[{i}].name", name, "is used by another export")
        if self.eval_steps is None and self.eval_input.num_epochs is None:
            raise ConfigError(
                "eval_input.num_epochs",
                None,
                "repeats forever, so evaluation with eval_steps: null would never end; "
                "set eval_input.num_epochs or eval_steps",
            )


# --------------------------------------------------------------------------- canned params
def _check_canned_params(params: Mapping[str, Any]) -> None:
    """Type checks for the canned-estimator params this module converts or knows."""
    for key in params:
        if key in _FILLED_PARAMS:
            raise ConfigError(
                f"params.{key}",
                params[key],
                "is filled in from the data; use estimator.feature_columns / run_config",
            )
    for key in _OPTIMIZER_PARAMS:
        if key in params:
            _check_optimizer(f"params.{key}", params[key])
    if "learning_rate" in params:
        rate = params["learning_rate"]
        if not _is_number(rate) or not 0 < rate < math.inf:
            raise ConfigError("params.learning_rate", rate, "must be a number > 0")
        if not isinstance(params.get("optimizer"), str):
            raise ConfigError(
                "params.learning_rate",
                rate,
                f"needs params.optimizer set to an optimizer name ({', '.join(OPTIMIZERS)})",
            )
    for key in _HIDDEN_UNITS_PARAMS:
        if key in params:
            units = params[key]
            if (
                not isinstance(units, (list, tuple))
                or not units
                or not all(_is_int(u) and u > 0 for u in units)
            ):
                raise ConfigTypeError(f"params.{key}", units, "must be a list of positive ints")
    for key in _DROPOUT_PARAMS:
        value = params.get(key)
        if value is not None and (not _is_number(value) or not 0 <= value < 1):
            raise ConfigError(f"params.{key}", value, "must be null or a number in [0, 1)")
    if "n_classes" in params:
        n = params["n_classes"]
        if not _is_int(n) or n < 2:
            raise ConfigError("params.n_classes", n, "must be an int >= 2")
    for key in _ACTIVATION_PARAMS:
        if key in params and not (isinstance(params[key], str) and params[key].isidentifier()):
            raise ConfigTypeError(
                f"params.{key}", params[key], "must be the name of a tf.nn function, e.g. relu"
            )


def _check_optimizer(field: str, value: Any) -> None:
    if isinstance(value, str):
        if value not in OPTIMIZERS:
            raise ConfigError(field, value, f"must be one of: {', '.join(OPTIMIZERS)}")
        return
    if not isinstance(value, Mapping):
        raise ConfigTypeError(
            field, value, "must be an optimizer name or {name: ..., learning_rate: ...}"
        )
    extra = set(value) - {"name", "learning_rate"}
    if extra:
        key = sorted(extra)[0]
        raise ConfigError(f"{field}.{key}", value[key], "unknown key (valid: name, learning_rate)")
    if value.get("name") not in OPTIMIZERS:
        raise ConfigError(
            f"{field}.name", value.get("name"), f"must be one of: {', '.join(OPTIMIZERS)}"
        )
    rate = value.get("learning_rate")
    if rate is not None and (not _is_number(rate) or not 0 < rate < math.inf):
        raise ConfigError(f"{field}.learning_rate", rate, "must be a number > 0")


# --------------------------------------------------------------------------- parsing
def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _prefixed(err: FieldError, path: str) -> FieldError:
    """The same error with its field path prefixed by ``path``."""
    new = type(err)(_join(path, err.field) if path else err.field, err.value, err.problem)
    return new


def _parse(cls: type[T], data: Any, path: str, shorthand: str | None = None) -> T:
    """Convert a mapping (or shorthand string) into the attrs record ``cls``."""
    if isinstance(data, cls):
        return data
    if shorthand is not None and isinstance(data, str):
        data = {shorthand: data}
    if not isinstance(data, Mapping):
        what = f"a mapping (or a string: the {shorthand})" if shorthand else "a mapping"
        raise ConfigTypeError(path or "config", data, f"must be {what}")
    fields = {f.name: f for f in attrs.fields(cls)}  # type: ignore[arg-type]
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
            value = _parse(sub, value, here)
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
    """Validate a config mapping into an `ExperimentConfig` (no TensorFlow needed).

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


def _read_file(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError("config", str(path), "no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                "config", str(path), f"is not valid JSON: {err.msg} (line {err.lineno})"
            ) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError("config", str(path), f"is not valid YAML: {problem}{where}") from None


def _absolute_data_paths(data: Any, base: Path) -> Any:
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


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides (dotted keys, YAML values) to a config mapping.

    Args:
        data: The config mapping (left unchanged).
        overrides: E.g. ``train_steps=50`` or ``estimator.params.hidden_units=[8, 4]``;
            a numeric segment indexes a list (``exports.0.type=best``).

    Returns:
        A new mapping.

    Raises:
        ConfigError: An override without ``=``, or whose path crosses a non-container.
    """
    import yaml

    result: dict[str, Any] = json.loads(json.dumps(data, default=str)) if data else {}
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", override, "must be KEY=VALUE, e.g. train_steps=100")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        parts = key.strip().split(".")
        node: Any = result
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(where, part, f"is not an index of a {len(node)}-item list")
                index = int(part)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(where, node, "is not a mapping or list to set a key in")
    return result


def load_config(
    source: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str],
    overrides: Iterable[str] = (),
) -> ExperimentConfig:
    """Read and validate a config from a record, a mapping, or a YAML/JSON file.

    Relative data paths in a file are relative to the file's directory.

    Args:
        source: The config.
        overrides: ``KEY=VALUE`` overrides (see `apply_overrides`).

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
        data = attrs.asdict(source, retain_collection_types=False)
    elif isinstance(source, Mapping):
        data = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        data = _absolute_data_paths(_read_file(path), path.resolve().parent)
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


# --------------------------------------------------------------------------- importing
def import_object(spec: str, field: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted).

    Args:
        spec: E.g. ``my_pkg.model:build_experiment``.
        field: The config field naming it, for errors.

    Returns:
        The object.

    Raises:
        ConfigError: Malformed ``spec``, the module cannot be imported, or it lacks the
            attribute.
    """
    _check_spec(field, spec)
    module_name, _, attr_path = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(field, spec, f"cannot import module {module_name!r}: {err}") from None
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ConfigError(field, spec, f"module {module_name!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    return obj


def _import_callable(spec: str, field: str) -> Callable[..., Any]:
    obj = import_object(spec, field)
    if not callable(obj):
        raise ConfigTypeError(field, spec, f"is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- data files
@attrs.frozen(kw_only=True)
class _Data:
    """A data file loaded into memory: feature arrays and labels."""

    features: dict[str, Any]
    labels: Any
    rows: int


def _load_csv(path: str, field: str) -> tuple[list[str], Any]:
    import numpy as np

    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ConfigError(field, path, "is empty (a header row of column names is needed)")
        header = [h.strip() for h in header]
        rows: list[list[float]] = []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ConfigError(
                    field, path, f"line {lineno} has {len(row)} values, the header {len(header)}"
                )
            try:
                rows.append([float(v) for v in row])
            except ValueError:
                bad = next(v for v in row if not _is_float(v))
                raise ConfigError(
                    field,
                    path,
                    f"line {lineno}: {bad!r} is not a number (encode classes as 0..n_classes-1)",
                ) from None
    if not rows:
        raise ConfigError(field, path, "has no data rows")
    return header, np.asarray(rows, dtype=np.float64)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _labels(values: Any, dtype: str, field: str) -> Any:
    import numpy as np

    integral = bool(np.all(np.equal(np.mod(values, 1), 0)))
    if dtype == "float" or (dtype == "auto" and not integral):
        return values.astype(np.float32)
    if not integral:
        raise ConfigError(field, "label", "has non-integer values; a classifier needs int labels")
    return values.astype(np.int64)


def _load_data(
    config: InputConfig,
    section: str,
    *,
    features: tuple[str, ...] | None,
    label: str | None,
    label_dtype: str,
) -> _Data:
    """Load a CSV/.npz input file, checking every column it names."""
    import numpy as np

    assert config.path is not None
    field = f"{section}.path"
    if not os.path.isfile(config.path):
        raise ConfigError(field, config.path, "no such file")
    if label is None:
        raise ConfigError(f"{section}.label", None, "is required with a data file")
    label_field = f"{section}.label"
    features_field = f"{section}.features"
    arrays: dict[str, Any]
    if config.path.lower().endswith(".csv"):
        header, table = _load_csv(config.path, field)
        arrays = {name: table[:, i] for i, name in enumerate(header)}
        columns = header
    else:
        try:
            with np.load(config.path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError) as err:
            raise ConfigError(field, config.path, f"is not a readable .npz file: {err}") from None
        columns = list(arrays)
    if label not in arrays:
        raise ConfigError(
            label_field, label, f"no such column in {config.path} (columns: {', '.join(columns)})"
        )
    names = features if features is not None else tuple(c for c in columns if c != label)
    for i, name in enumerate(names):
        if name not in arrays:
            raise ConfigError(
                f"{features_field}[{i}]",
                name,
                f"no such column in {config.path} (columns: {', '.join(columns)})",
            )
        if name == label:
            raise ConfigError(f"{features_field}[{i}]", name, "is the label column")
    if not names:
        raise ConfigError(features_field, [], f"{config.path} has no feature columns")
    rows = len(arrays[label])
    out: dict[str, Any] = {}
    for name in names:
        values = arrays[name]
        if len(values) != rows or not np.issubdtype(values.dtype, np.number):
            raise ConfigError(features_field, name, f"must be a numeric array of {rows} rows")
        out[name] = values.astype(np.float32)
    labels = _labels(np.asarray(arrays[label]), label_dtype, label_field)
    return _Data(features=out, labels=labels, rows=rows)


def _array_input_fn(data: _Data, config: InputConfig) -> Callable[[], Any]:
    """An input_fn over in-memory arrays: shuffle per epoch, repeat, batch."""
    from shell._tf import tf

    def input_fn() -> Any:
        ds = tf.data.Dataset.from_tensor_slices((data.features, data.labels))
        if config.shuffle:
            ds = ds.shuffle(data.rows, seed=config.seed, reshuffle_each_iteration=True)
        return ds.repeat(config.num_epochs).batch(config.batch_size)

    return input_fn


# --------------------------------------------------------------------------- building
@attrs.frozen(kw_only=True)
class _Inputs:
    """Both input functions, and what the training file says about the features."""

    train_input_fn: Callable[..., Any]
    eval_input_fn: Callable[..., Any]
    train_data: _Data | None


def _label_dtype(config: InputConfig, estimator: EstimatorConfig) -> str:
    if config.label_dtype != "auto":
        return config.label_dtype
    if estimator.type is not None:
        return "int" if estimator.type.endswith("Classifier") else "float"
    return "auto"


def _input_fn(spec: InputConfig, section: str) -> Callable[..., Any]:
    fn = _import_callable(str(spec.input_fn), f"{section}.input_fn")
    return functools.partial(fn, **spec.params) if spec.params else fn


def _inputs(config: ExperimentConfig) -> _Inputs:
    train_data: _Data | None = None
    train, evaluation = config.train_input, config.eval_input
    if train.path is not None:
        train_data = _load_data(
            train,
            "train_input",
            features=train.features,
            label=train.label,
            label_dtype=_label_dtype(train, config.estimator),
        )
        train_fn = _array_input_fn(train_data, train)
    else:
        train_fn = _input_fn(train, "train_input")
    if evaluation.path is not None:
        features = evaluation.features or train.features
        if features is None and train_data is not None:
            features = tuple(train_data.features)
        eval_data = _load_data(
            evaluation,
            "eval_input",
            features=features,
            label=evaluation.label or train.label,
            label_dtype=_label_dtype(evaluation, config.estimator),
        )
        eval_fn = _array_input_fn(eval_data, evaluation)
    else:
        eval_fn = _input_fn(evaluation, "eval_input")
    return _Inputs(train_input_fn=train_fn, eval_input_fn=eval_fn, train_data=train_data)


def _check_classes(config: ExperimentConfig, data: _Data | None, section: str) -> None:
    """Canned classifiers need labels in ``0 .. n_classes-1``: check the file's labels."""
    import numpy as np

    kind, params = config.estimator.type, config.estimator.params
    if data is None or not kind or not kind.endswith("Classifier"):
        return
    if "label_vocabulary" in params or not np.issubdtype(data.labels.dtype, np.integer):
        return
    n_classes = params.get("n_classes", 2)
    low, high = int(data.labels.min()), int(data.labels.max())
    if low < 0 or high >= n_classes:
        raise ConfigError(
            "estimator.params.n_classes",
            n_classes,
            f"but {section} labels range over {low}..{high}; labels must be "
            f"0..n_classes-1 (set n_classes: {max(high + 1, 2)} or re-encode the labels)",
        )


def _feature_specs(config: ExperimentConfig, data: _Data | None) -> tuple[FeatureConfig, ...]:
    if config.estimator.feature_columns is not None:
        return config.estimator.feature_columns
    if data is None:
        return ()
    return tuple(
        FeatureConfig(name=name, shape=tuple(int(d) for d in values.shape[1:]))
        for name, values in data.features.items()
    )


def _feature_columns(
    config: ExperimentConfig, specs: tuple[FeatureConfig, ...], data: _Data | None
) -> list[Any]:
    from shell._tf import tf

    if config.estimator.standardize and data is None:
        raise ConfigError(
            "estimator.standardize",
            True,
            "needs train_input.path (a .csv/.npz file) to compute each feature's mean and std",
        )
    columns = []
    for spec in specs:
        normalizer = None
        if config.estimator.standardize:
            assert data is not None
            if spec.name not in data.features:
                raise ConfigError(
                    "estimator.feature_columns",
                    spec.name,
                    "is not a feature of train_input, so it cannot be standardized",
                )
            values = data.features[spec.name]
            mean, std = float(values.mean()), float(values.std()) or 1.0
            normalizer = functools.partial(_standardize, mean=mean, std=std)
        columns.append(
            tf.feature_column.numeric_column(
                spec.name, shape=spec.shape or (1,), normalizer_fn=normalizer
            )
        )
    return columns


def _standardize(x: Any, *, mean: float, std: float) -> Any:
    return (x - mean) / std


def _run_config(spec: RunConfigSpec, model_dir: str) -> Any:
    from shell._tf import tf

    # Passing both save_checkpoints_* as None would disable checkpoints: leave unset ones out.
    saving: dict[str, Any] = {}
    if spec.save_checkpoints_steps is not None:
        saving["save_checkpoints_steps"] = spec.save_checkpoints_steps
    if spec.save_checkpoints_secs is not None:
        saving["save_checkpoints_secs"] = spec.save_checkpoints_secs
    return tf.estimator.RunConfig(
        model_dir=model_dir,
        **saving,
        keep_checkpoint_max=spec.keep_checkpoint_max,
        save_summary_steps=spec.save_summary_steps,
        log_step_count_steps=spec.log_step_count_steps,
        tf_random_seed=spec.tf_random_seed,
    )


def _optimizer(value: Any, learning_rate: float | None) -> Any:
    from shell._tf import tf

    if isinstance(value, Mapping):
        name, learning_rate = value["name"], value.get("learning_rate")
    else:
        name = value
    if learning_rate is None:
        return name
    classes = {
        "Adagrad": "Adagrad",
        "Adam": "Adam",
        "Ftrl": "Ftrl",
        "RMSProp": "RMSprop",
        "SGD": "SGD",
    }
    cls = getattr(tf.keras.optimizers.legacy, classes[name])
    return functools.partial(cls, learning_rate=learning_rate)


def _canned_kwargs(
    estimator: EstimatorConfig, valid: Sequence[str], columns: list[Any]
) -> dict[str, Any]:
    from shell._tf import tf

    params = dict(estimator.params)
    learning_rate = params.pop("learning_rate", None)
    for key in params:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            choices = ", ".join(v for v in valid if v not in _FILLED_PARAMS)
            raise ConfigError(
                f"estimator.params.{key}",
                params[key],
                f"is not a parameter of {estimator.type}{hint} (valid: {choices})",
            )
    for key in _OPTIMIZER_PARAMS:
        if key in params:
            params[key] = _optimizer(params[key], learning_rate if key == "optimizer" else None)
    for key in _ACTIVATION_PARAMS:
        if key in params:
            fn = getattr(tf.nn, params[key], None)
            if not callable(fn):
                raise ConfigError(
                    f"estimator.params.{key}",
                    params[key],
                    "is not a tf.nn activation (e.g. relu, tanh, elu)",
                )
            params[key] = fn
    for key in ("feature_columns", "linear_feature_columns", "dnn_feature_columns"):
        if key in valid:
            params[key] = columns
    return params


def _estimator(config: ExperimentConfig, model_dir: str, columns: list[Any]) -> Any:
    from shell._tf import tf
    from shell.protocol import missing_members

    spec = config.estimator
    run_config = _run_config(spec.run_config, model_dir)
    if spec.type is not None:
        if not columns:
            raise ConfigError(
                "estimator.feature_columns",
                None,
                "is required when train_input has no data file to take the features from",
            )
        cls = getattr(tf.estimator, spec.type)
        valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        kwargs = _canned_kwargs(spec, valid, columns)
        kwargs["config"] = run_config
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError("estimator.params", dict(spec.params), str(err)) from None
    factory = _import_callable(str(spec.factory), "estimator.factory")
    try:
        accepts_config = "config" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepts_config = False
    params = dict(spec.params)
    if accepts_config:
        built = factory(model_dir, params, config=run_config)
    else:
        built = factory(model_dir, params)
    missing = missing_members(built)
    if missing:
        raise ConfigTypeError(
            "estimator.factory",
            spec.factory,
            f"returned a {type(built).__name__}, which lacks the Estimator interface "
            f"(missing: {', '.join(missing)})",
        )
    return built


def _hooks(specs: tuple[HookConfig, ...], section: str) -> list[Any]:
    from shell._tf import tf

    hooks = []
    for i, spec in enumerate(specs):
        field = f"{section}[{i}].factory"
        hook = _import_callable(spec.factory, field)(**spec.params)
        if not isinstance(hook, tf.estimator.SessionRunHook):
            raise ConfigTypeError(
                field,
                spec.factory,
                f"returned a {type(hook).__name__}, not a tf.estimator.SessionRunHook",
            )
        hooks.append(hook)
    return hooks


def _serving_input_fn(specs: tuple[FeatureConfig, ...]) -> Callable[[], Any]:
    """One float32 placeholder per feature: ``{name: [batch, *shape]}``."""
    from shell._tf import tf

    def serving_input_fn() -> Any:
        inputs = {
            spec.name: tf.compat.v1.placeholder(tf.float32, [None, *spec.shape], name=spec.name)
            for spec in specs
        }
        return tf.estimator.export.ServingInputReceiver(inputs, inputs)

    return serving_input_fn


def _compare_fn(metric: str, higher_is_better: bool, field: str) -> Callable[..., bool]:
    def compare(
        best_eval_result: Mapping[str, Any], current_eval_result: Mapping[str, Any]
    ) -> bool:
        for result in (best_eval_result, current_eval_result):
            if not result or metric not in result:
                raise ConfigError(
                    field,
                    metric,
                    "is not a metric of the evaluation "
                    f"(metrics: {', '.join(sorted(result or {}))})",
                )
        best, current = float(best_eval_result[metric]), float(current_eval_result[metric])
        return current > best if higher_is_better else current < best

    return compare


def _exporters(config: ExperimentConfig, specs: tuple[FeatureConfig, ...]) -> list[Any]:
    from shell._tf import tf

    exporters = []
    for i, spec in enumerate(config.exports):
        if spec.serving_input_fn is not None:
            serving = _import_callable(spec.serving_input_fn, f"exports[{i}].serving_input_fn")
        elif specs:
            serving = _serving_input_fn(specs)
        else:
            raise ConfigError(
                f"exports[{i}].serving_input_fn",
                None,
                "is required: without a data file or estimator.feature_columns the model's "
                "inputs are unknown",
            )
        if spec.type == "latest":
            exporters.append(
                tf.estimator.LatestExporter(
                    spec.name, serving, exports_to_keep=spec.exports_to_keep
                )
            )
        elif spec.type == "best":
            exporters.append(
                tf.estimator.BestExporter(
                    name=spec.name,
                    serving_input_receiver_fn=serving,
                    compare_fn=_compare_fn(
                        spec.metric, spec.higher_is_better, f"exports[{i}].metric"
                    ),
                    exports_to_keep=spec.exports_to_keep,
                )
            )
        else:
            exporters.append(tf.estimator.FinalExporter(spec.name, serving))
    return exporters


def create_experiment(
    experiment_config: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str],
    output_dir: str | os.PathLike[str] | None = None,
    *,
    overrides: Iterable[str] = (),
) -> Experiment:
    """Build an Experiment from a config record, a mapping, or a YAML/JSON file.

    Everything is checked and built here (files read, modules imported, the estimator,
    hooks and exporters made), so a bad config fails before anything trains.

    Args:
        experiment_config: An `ExperimentConfig`, a mapping of the same shape, or the
            path of a ``.yaml``/``.yml``/``.json`` file (its relative data paths are
            relative to the file, and its directory is importable for ``module:callable``
            values).
        output_dir: The model directory; overrides ``estimator.run_config.model_dir``.
        overrides: ``KEY=VALUE`` strings applied first (see `apply_overrides`).

    Returns:
        The Experiment; nothing has run yet.

    Raises:
        ConfigError: A missing file or column, an unknown key, a bad value, an
            unimportable module; ``err.field`` is the dotted path (``train_input.path``).
        ConfigTypeError: A value of the wrong type.
    """
    from shell.experiment import Experiment

    source = experiment_config
    if isinstance(source, (str, os.PathLike)):
        folder = str(Path(source).expanduser().resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    config = load_config(source, overrides)
    model_dir = os.fspath(output_dir) if output_dir else config.estimator.run_config.model_dir
    if not model_dir:
        raise ConfigError(
            "estimator.run_config.model_dir",
            None,
            "is required (or give an output directory, e.g. --output-dir runs/my-run)",
        )
    inputs = _inputs(config)
    _check_classes(config, inputs.train_data, "train_input")
    specs = _feature_specs(config, inputs.train_data)
    columns = _feature_columns(config, specs, inputs.train_data)
    estimator = _estimator(config, model_dir, columns)
    return Experiment(
        estimator,
        inputs.train_input_fn,
        inputs.eval_input_fn,
        train_steps=config.train_steps,
        eval_steps=config.eval_steps,
        train_hooks=_hooks(config.train_hooks, "train_hooks"),
        eval_hooks=_hooks(config.eval_hooks, "eval_hooks"),
        eval_delay_secs=config.eval_delay_secs,
        continuous_eval_throttle_secs=config.continuous_eval_throttle_secs,
        eval_every_n_steps=config.eval_every_n_steps,
        delay_workers_by_global_step=config.delay_workers_by_global_step,
        export_strategies=_exporters(config, specs),
        train_steps_per_iteration=config.train_steps_per_iteration,
    )
