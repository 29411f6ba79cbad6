"""What the config knows of tf.estimator's canned estimators: names, params, metrics.

Pure: the shell maps the names to TensorFlow classes; this module checks the params it
converts (optimizers, activations, hidden units, dropout, n_classes) and knows which
metrics each kind of canned evaluation reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core._validate import INT64_MAX, check, finite_number, is_int, one_of, positive_int, tuple_of
from core.errors import ConfigError, ConfigTypeError

__all__ = [
    "ACTIVATION_PARAMS",
    "CANNED_ESTIMATORS",
    "FILLED_PARAMS",
    "OPTIMIZERS",
    "OPTIMIZER_PARAMS",
    "check_params",
    "metrics",
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

#: Canned-estimator parameters filled in from the data, never taken from the config.
FILLED_PARAMS = frozenset(
    {"feature_columns", "linear_feature_columns", "dnn_feature_columns", "model_dir", "config"}
)
OPTIMIZER_PARAMS = ("optimizer", "linear_optimizer", "dnn_optimizer")
ACTIVATION_PARAMS = ("activation_fn", "dnn_activation_fn")
_HIDDEN_UNITS_PARAMS = ("hidden_units", "dnn_hidden_units")
_DROPOUT_PARAMS = ("dropout", "dnn_dropout")

REGRESSOR_METRICS = frozenset(
    {"average_loss", "global_step", "label/mean", "loss", "prediction/mean"}
)
MULTICLASS_METRICS = frozenset({"accuracy", "average_loss", "global_step", "loss"})
BINARY_METRICS = REGRESSOR_METRICS | {
    "accuracy",
    "accuracy_baseline",
    "auc",
    "auc_precision_recall",
    "precision",
    "recall",
}


def metrics(estimator_type: str, params: Mapping[str, Any]) -> frozenset[str]:
    """The metric names the canned estimator's evaluation reports (TF 2.15's heads)."""
    if not estimator_type.endswith("Classifier"):
        return REGRESSOR_METRICS
    return BINARY_METRICS if params.get("n_classes", 2) == 2 else MULTICLASS_METRICS


def check_params(params: Mapping[str, Any]) -> None:
    """Check the canned-estimator params the shell converts or knows (by type and range).

    Raises:
        ConfigError: (or ConfigTypeError) On ``params.<key>``.
    """
    for key in params:
        if key in FILLED_PARAMS:
            raise ConfigError(
                f"params.{key}",
                params[key],
                "is filled in from the data; use estimator.feature_columns / run_config",
            )
    for key in OPTIMIZER_PARAMS:
        if key in params:
            _check_optimizer(f"params.{key}", params[key])
    if "learning_rate" in params:
        rate = params["learning_rate"]
        _check_positive_number("params.learning_rate", rate)
        if not isinstance(params.get("optimizer"), str):
            raise ConfigError(
                "params.learning_rate",
                rate,
                f"needs params.optimizer set to an optimizer name ({', '.join(OPTIMIZERS)})",
            )
    for key in _HIDDEN_UNITS_PARAMS:
        if key in params:
            units = params[key]
            units = tuple(units) if isinstance(units, list) else units
            check(tuple_of(positive_int, "a list of positive ints"), f"params.{key}", units)
            if not units:
                raise ConfigTypeError(f"params.{key}", [], "must be a list of positive ints")
    for key in _DROPOUT_PARAMS:
        value = params.get(key)
        if value is not None:
            check(finite_number, f"params.{key}", value)
            if not 0 <= value < 1:
                raise ConfigError(f"params.{key}", value, "must be null or a number in [0, 1)")
    if "n_classes" in params:
        n = params["n_classes"]
        if not is_int(n) or not 2 <= n <= INT64_MAX:
            raise ConfigError("params.n_classes", n, "must be an int >= 2 (and within int64)")
    for key in ACTIVATION_PARAMS:
        if key in params and not (isinstance(params[key], str) and params[key].isidentifier()):
            raise ConfigTypeError(
                f"params.{key}", params[key], "must be the name of a tf.nn function, e.g. relu"
            )


def _check_positive_number(field: str, value: Any) -> None:
    check(finite_number, field, value)
    if value <= 0:
        raise ConfigError(field, value, "must be a number > 0")


def _check_optimizer(field: str, value: Any) -> None:
    if isinstance(value, str):
        check(one_of(OPTIMIZERS), field, value)
        return
    if not isinstance(value, Mapping):
        raise ConfigTypeError(
            field, value, "must be an optimizer name or {name: ..., learning_rate: ...}"
        )
    extra = set(value) - {"name", "learning_rate"}
    if extra:
        key = sorted(extra, key=str)[0]
        raise ConfigError(f"{field}.{key}", value[key], "unknown key (valid: name, learning_rate)")
    check(one_of(OPTIMIZERS), f"{field}.name", value.get("name"))
    rate = value.get("learning_rate")
    if rate is not None:
        _check_positive_number(f"{field}.learning_rate", rate)
