"""The config records: an experiment as plain, validated data (no TensorFlow, no files).

Each record checks its own fields on construction with the validators of `core._validate`
and raises one ``ConfigError``/``ConfigTypeError`` naming the field; `core.config_parse`
builds the records from a mapping and prefixes the field with its dotted path
(``train_input.path``, ``exports[0].type``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from core import canned
from core._validate import (
    boolean,
    import_spec,
    instance,
    non_empty_str,
    non_negative_int,
    non_negative_secs,
    one_of,
    optional,
    positive_int,
    str_keyed_mapping,
    tuple_of,
    unique_names,
)
from core.canned import CANNED_ESTIMATORS
from core.errors import ConfigError
from core.faults import EarlyStopping
from core.settings import ExperimentSettings
from core.strategy import StrategyConfig

__all__ = [
    "CANNED_ESTIMATORS",
    "DATA_SUFFIXES",
    "EXPORT_TYPES",
    "LABEL_DTYPES",
    "SETTINGS_KEYS",
    "EstimatorConfig",
    "EvalInputConfig",
    "ExperimentConfig",
    "ExportConfig",
    "FeatureConfig",
    "HookConfig",
    "InputConfig",
    "RunConfigSpec",
    "check_batch_size",
    "label_dtype",
]

EXPORT_TYPES: tuple[str, ...] = ("latest", "best", "final")
LABEL_DTYPES: tuple[str, ...] = ("auto", "int", "float")
DATA_SUFFIXES: tuple[str, ...] = (".csv", ".npz")
DEFAULT_BATCH_SIZE = 32
#: The top-level config keys that `ExperimentSettings` owns (the Experiment's schedule).
SETTINGS_KEYS: tuple[str, ...] = tuple(a.name for a in attrs.fields(ExperimentSettings))

_optional_str = optional(non_empty_str)
_optional_spec = optional(import_spec)


def _to_tuple(value: Any) -> Any:
    """Lists become tuples; anything else is left for the validator to judge."""
    return tuple(value) if isinstance(value, list) else value


def _to_dict(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _records_field(cls: type, shorthand: str | None = None) -> Any:
    return attrs.field(
        factory=tuple,
        converter=_to_tuple,
        validator=tuple_of(instance(cls), f"a list of {cls.__name__}"),
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

    name: str = attrs.field(validator=non_empty_str)
    shape: tuple[int, ...] = attrs.field(
        default=(), converter=_to_tuple, validator=tuple_of(positive_int, "a list of positive ints")
    )


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

    model_dir: str | None = attrs.field(default=None, validator=_optional_str)
    save_checkpoints_steps: int | None = attrs.field(default=None, validator=optional(positive_int))
    save_checkpoints_secs: float | None = attrs.field(
        default=None, validator=optional(non_negative_secs)
    )
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

    type: str | None = attrs.field(default=None, validator=optional(one_of(CANNED_ESTIMATORS)))
    factory: str | None = attrs.field(default=None, validator=_optional_spec)
    params: dict[str, Any] = attrs.field(
        factory=dict, converter=_to_dict, validator=str_keyed_mapping
    )
    feature_columns: tuple[FeatureConfig, ...] | None = attrs.field(
        default=None,
        converter=_to_tuple,
        validator=optional(tuple_of(instance(FeatureConfig), "a list of FeatureConfig")),
        metadata={"records": FeatureConfig, "shorthand": "name"},
    )
    standardize: bool = attrs.field(default=False, validator=boolean)
    run_config: RunConfigSpec = attrs.field(
        factory=RunConfigSpec,
        validator=instance(RunConfigSpec, "a mapping (RunConfigSpec)"),
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
            canned.check_params(self.params)

    @property
    def is_classifier(self) -> bool:
        """Whether this is a canned classifier (int labels in ``0 .. n_classes-1``)."""
        return self.type is not None and self.type.endswith("Classifier")


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

    path: str | None = attrs.field(default=None, validator=_optional_str)
    input_fn: str | None = attrs.field(default=None, validator=_optional_spec)
    params: dict[str, Any] = attrs.field(
        factory=dict, converter=_to_dict, validator=str_keyed_mapping
    )
    features: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_tuple, validator=optional(unique_names)
    )
    label: str | None = attrs.field(default=None, validator=_optional_str)
    label_dtype: str = attrs.field(default="auto", validator=one_of(LABEL_DTYPES))
    batch_size: int = attrs.field(default=DEFAULT_BATCH_SIZE, validator=positive_int)
    shuffle: bool = attrs.field(default=True, validator=boolean)
    num_epochs: int | None = attrs.field(default=None, validator=optional(positive_int))
    seed: int | None = attrs.field(default=None, validator=optional(non_negative_int))

    def __attrs_post_init__(self) -> None:
        if (self.path is None) == (self.input_fn is None):
            raise ConfigError(
                "path", self.path, "set exactly one of path (a .csv/.npz file) or input_fn"
            )
        if self.path is not None:
            if not self.path.lower().endswith(DATA_SUFFIXES):
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

    shuffle: bool = attrs.field(default=False, validator=boolean)
    num_epochs: int | None = attrs.field(default=1, validator=optional(positive_int))


@attrs.frozen(kw_only=True)
class HookConfig:
    """A ``SessionRunHook`` made by ``factory(**params)``.

    Attributes:
        factory: ``module:callable`` returning a ``tf.estimator.SessionRunHook``.
        params: Keyword arguments for the factory.
    """

    factory: str = attrs.field(validator=import_spec)
    params: dict[str, Any] = attrs.field(
        factory=dict, converter=_to_dict, validator=str_keyed_mapping
    )


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

    name: str = attrs.field(validator=non_empty_str)
    type: str = attrs.field(default="latest", validator=one_of(EXPORT_TYPES))
    exports_to_keep: int | None = attrs.field(default=5, validator=optional(positive_int))
    metric: str = attrs.field(default="loss", validator=non_empty_str)
    higher_is_better: bool = attrs.field(default=False, validator=boolean)
    serving_input_fn: str | None = attrs.field(default=None, validator=_optional_spec)

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if "/" in value or "\\" in value or value in (".", ".."):
            raise ConfigError(attribute.name, value, "must be a plain directory name")


@attrs.frozen(kw_only=True)
class ExperimentConfig:
    """Everything `create_experiment` needs; mirrors the Experiment's arguments.

    The schedule keys (``train_steps`` ... ``train_steps_per_iteration``) stay at the top
    level, as in the file; they are checked once, by `ExperimentSettings`, and available
    together as `settings`. Unlike the Experiment's, the file's ``eval_steps`` defaults
    to null (evaluate the whole eval input).

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
        chief_lost_after_secs: In a cluster, a chief silent this long is lost (the job
            fails).
        eval_in_background: train_and_evaluate evaluates checkpoints in a background
            thread while training goes on (default false: inline).
        early_stopping: Stop the whole job when a metric stops improving (None: never).
        train_hooks: Training hooks.
        eval_hooks: Evaluation hooks.
        exports: Export strategies.
        strategy: The tf.distribute strategy (`core.strategy.StrategyConfig`; a type
            name is shorthand for ``{type: NAME}``); null trains without one.
        settings: The schedule keys as one `ExperimentSettings` (derived, not given).
    """

    estimator: EstimatorConfig = attrs.field(
        validator=instance(EstimatorConfig, "a mapping (EstimatorConfig)"),
        metadata={"record": EstimatorConfig},
    )
    train_input: InputConfig = attrs.field(
        validator=instance(InputConfig, "a mapping (InputConfig)"), metadata={"record": InputConfig}
    )
    eval_input: EvalInputConfig = attrs.field(
        validator=instance(EvalInputConfig, "a mapping (EvalInputConfig)"),
        metadata={"record": EvalInputConfig},
    )
    # Checked by ExperimentSettings (in __attrs_post_init__), which owns them.
    train_steps: int | None = None
    eval_steps: int | None = None
    eval_delay_secs: float = 0
    continuous_eval_throttle_secs: float = 60
    eval_every_n_steps: int | None = 1
    delay_workers_by_global_step: bool = False
    train_steps_per_iteration: int | None = 100
    chief_lost_after_secs: float = 600.0
    eval_in_background: bool = False
    early_stopping: EarlyStopping | None = attrs.field(
        default=None,
        validator=optional(instance(EarlyStopping, "a mapping (EarlyStopping)")),
        metadata={"record": EarlyStopping},
    )
    train_hooks: tuple[HookConfig, ...] = _records_field(HookConfig, shorthand="factory")
    eval_hooks: tuple[HookConfig, ...] = _records_field(HookConfig, shorthand="factory")
    exports: tuple[ExportConfig, ...] = _records_field(ExportConfig)
    strategy: StrategyConfig | None = attrs.field(
        default=None,
        validator=optional(instance(StrategyConfig, "a mapping (StrategyConfig)")),
        metadata={"record": StrategyConfig, "shorthand": "type"},
    )
    settings: ExperimentSettings = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        settings = ExperimentSettings(**{key: getattr(self, key) for key in SETTINGS_KEYS})
        object.__setattr__(self, "settings", settings)
        names = [e.name for e in self.exports]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(f"exports[{i}].name", name, "is used by another export")
        kind = self.estimator.type
        known = canned.metrics(kind, self.estimator.params) if kind is not None else None
        for i, export in enumerate(self.exports):
            if known is not None and export.type == "best" and export.metric not in known:
                raise ConfigError(
                    f"exports[{i}].metric",
                    export.metric,
                    f"is not a metric of the {self.estimator.type} evaluation "
                    f"(metrics: {', '.join(sorted(known))})",
                )
        if self.eval_steps is None and self.eval_input.num_epochs is None:
            raise ConfigError(
                "eval_input.num_epochs",
                None,
                "repeats forever, so evaluation with eval_steps: null would never end; "
                "set eval_input.num_epochs or eval_steps",
            )


# --------------------------------------------------------------------------- decisions
def label_dtype(config: InputConfig, estimator: EstimatorConfig) -> str:
    """The label dtype an input's file is read with: ``int``, ``float`` or ``auto``.

    ``auto`` resolves to int for a canned classifier and float for a canned regressor;
    with a factory it stays ``auto`` (int when every label is a whole number).
    """
    if config.label_dtype != "auto":
        return config.label_dtype
    if estimator.type is not None:
        return "int" if estimator.is_classifier else "float"
    return "auto"


def check_batch_size(config: InputConfig, section: str, rows: int) -> None:
    """Refuse a batch larger than the data (and the default 32) when the input repeats.

    ``repeat().batch(n)`` with ``n`` beyond the data fills each batch with copies of it
    (without end, in memory, for a huge ``n``). Up to the default batch size a small data
    set is allowed, so the default works on any file.

    Raises:
        ConfigError: On ``<section>.batch_size``, naming the data size.
    """
    limit = max(rows, DEFAULT_BATCH_SIZE)
    if config.num_epochs is None and config.batch_size > limit:
        raise ConfigError(
            f"{section}.batch_size",
            config.batch_size,
            f"is larger than the {rows} examples of {section}.path, which repeats "
            f"forever (num_epochs: null); use a batch_size of at most {limit}",
        )
