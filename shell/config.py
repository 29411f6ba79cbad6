"""create_experiment: build an Experiment from a config record, a dict, or a YAML/JSON file.

Parsing and validation are the core's (`core.config`, `core.config_parse`); reading files
is `shell.loading`'s and data files `shell.data`'s. This module builds the TensorFlow
objects (feature columns, RunConfig, estimator, hooks, exporters). Every problem is raised
as one ``ConfigError``/``ConfigTypeError`` naming the field path (``train_input.path``,
``exports[0].type``) before anything trains.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.canned import (
    ACTIVATION_PARAMS,
    CANNED_ESTIMATORS,
    FILLED_PARAMS,
    OPTIMIZER_PARAMS,
    OPTIMIZERS,
)
from core.config import (
    EXPORT_TYPES,
    EstimatorConfig,
    EvalInputConfig,
    ExperimentConfig,
    ExportConfig,
    FeatureConfig,
    HookConfig,
    InputConfig,
    RunConfigSpec,
)
from core.config_parse import apply_overrides, parse_config
from core.errors import ConfigError, ConfigTypeError, FieldError
from core.strategy import StrategyConfig
from shell import strategy
from shell._tf import tf
from shell.data import Data, build_inputs
from shell.early_stopping import predicate_of
from shell.experiment import Experiment
from shell.loading import import_callable, import_object, load_config
from shell.protocol import missing_members

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


# --------------------------------------------------------------------------- building
def _feature_specs(config: ExperimentConfig, data: Data | None) -> tuple[FeatureConfig, ...]:
    if config.estimator.feature_columns is not None:
        return config.estimator.feature_columns
    if data is None:
        return ()
    return tuple(
        FeatureConfig(name=name, shape=tuple(int(d) for d in values.shape[1:]))
        for name, values in data.features.items()
    )


def _feature_columns(
    config: ExperimentConfig, specs: tuple[FeatureConfig, ...], data: Data | None
) -> list[Any]:

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


def _run_config(spec: RunConfigSpec, model_dir: str, distribute: StrategyConfig | None) -> Any:

    # Passing both save_checkpoints_* as None would disable checkpoints: leave unset ones out.
    saving: dict[str, Any] = {}
    if spec.save_checkpoints_steps is not None:
        saving["save_checkpoints_steps"] = spec.save_checkpoints_steps
    if spec.save_checkpoints_secs is not None:
        saving["save_checkpoints_secs"] = spec.save_checkpoints_secs
    return strategy.run_config(
        distribute,
        model_dir=model_dir,
        **saving,
        keep_checkpoint_max=spec.keep_checkpoint_max,
        save_summary_steps=spec.save_summary_steps,
        log_step_count_steps=spec.log_step_count_steps,
        tf_random_seed=spec.tf_random_seed,
    )


def _optimizer(value: Any, learning_rate: float | None) -> Any:

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

    params = dict(estimator.params)
    learning_rate = params.pop("learning_rate", None)
    for key in params:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            choices = ", ".join(v for v in valid if v not in FILLED_PARAMS)
            raise ConfigError(
                f"estimator.params.{key}",
                params[key],
                f"is not a parameter of {estimator.type}{hint} (valid: {choices})",
            )
    for key in OPTIMIZER_PARAMS:
        if key in params:
            params[key] = _optimizer(params[key], learning_rate if key == "optimizer" else None)
    for key in ACTIVATION_PARAMS:
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

    spec = config.estimator
    run_config = _run_config(spec.run_config, model_dir, config.strategy)
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
    factory = import_callable(str(spec.factory), "estimator.factory")
    try:
        accepts_config = "config" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepts_config = False
    params = dict(spec.params)
    extra = {"config": run_config} if accepts_config else {}
    built = _call(factory, "estimator.factory", spec.factory, model_dir, params, **extra)
    missing = missing_members(built)
    if missing:
        raise ConfigTypeError(
            "estimator.factory",
            spec.factory,
            f"returned a {type(built).__name__}, which lacks the Estimator interface "
            f"(missing: {', '.join(missing)})",
        )
    return built


def _call(fn: Callable[..., Any], field: str, spec: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a config's factory; what it raises is a ConfigError on ``field`` (nothing ran yet).

    Raises:
        ConfigError: The factory raised (the original error is its ``__cause__``).
    """
    try:
        return fn(*args, **kwargs)
    except FieldError:
        raise
    except Exception as err:
        raise ConfigError(field, spec, f"raised {type(err).__name__}: {err}") from err


def _hooks(specs: tuple[HookConfig, ...], section: str) -> list[Any]:

    hooks = []
    for i, spec in enumerate(specs):
        field = f"{section}[{i}].factory"
        hook = _call(import_callable(spec.factory, field), field, spec.factory, **spec.params)
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

    exporters = []
    for i, spec in enumerate(config.exports):
        if spec.serving_input_fn is not None:
            serving = import_callable(spec.serving_input_fn, f"exports[{i}].serving_input_fn")
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
    inputs = build_inputs(config)
    specs = _feature_specs(config, inputs.train_data)
    columns = _feature_columns(config, specs, inputs.train_data)
    estimator = _estimator(config, model_dir, columns)
    return Experiment.from_settings(
        estimator,
        inputs.train_input_fn,
        inputs.eval_input_fn,
        settings=config.settings,
        train_hooks=_hooks(config.train_hooks, "train_hooks"),
        eval_hooks=_hooks(config.eval_hooks, "eval_hooks"),
        export_strategies=_exporters(config, specs),
        continuous_eval_predicate_fn=predicate_of(config.early_stopping),
    )
