"""Data files to input functions: CSV/.npz -> checked arrays -> ``tf.data`` input_fns.

Every problem with a file (missing, not UTF-8, a missing column, a non-number, nan/inf,
labels a classifier cannot take, a batch larger than the data) is one ``ConfigError``
naming the config key and the file, raised before anything trains.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from core.config import ExperimentConfig, InputConfig, check_batch_size, label_dtype
from core.errors import ConfigError
from shell._tf import tf
from shell.loading import import_callable

__all__ = ["Data", "Inputs", "build_inputs", "load_data"]


@attrs.frozen(kw_only=True)
class Data:
    """A data file loaded into memory: feature arrays and labels."""

    features: dict[str, Any]
    labels: Any
    rows: int


@attrs.frozen(kw_only=True)
class Inputs:
    """Both input functions, and what the training file says about the features."""

    train_input_fn: Callable[..., Any]
    eval_input_fn: Callable[..., Any]
    train_data: Data | None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(path: str, field: str) -> tuple[list[str], Any]:
    """The header and the values of a numeric CSV file (a UTF-8 byte-order mark is skipped)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return _read_csv(csv.reader(handle), path, field)
    except UnicodeDecodeError as err:
        raise ConfigError(
            field, path, f"is not UTF-8 text (byte {err.start}: {err.reason})"
        ) from None


def _read_csv(reader: Any, path: str, field: str) -> tuple[list[str], Any]:
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
            values = [float(v) for v in row]
        except ValueError:
            bad = next(v for v in row if not _is_float(v))
            raise ConfigError(
                field,
                path,
                f"line {lineno}: {bad!r} is not a number (encode classes as 0..n_classes-1)",
            ) from None
        for column, value in zip(header, values):
            if not np.isfinite(value):
                raise ConfigError(
                    field, path, f"line {lineno}, column {column!r}: {value} is not finite"
                )
        rows.append(values)
    if not rows:
        raise ConfigError(field, path, "has no data rows")
    return header, np.asarray(rows, dtype=np.float64)


def _labels(values: Any, dtype: str, field: str, column: str) -> Any:
    integral = bool(np.all(np.equal(np.mod(values, 1), 0)))
    if dtype == "float" or (dtype == "auto" and not integral):
        return values.astype(np.float32)
    if not integral:
        raise ConfigError(field, column, "has non-integer values; a classifier needs int labels")
    return values.astype(np.int64)


def _check_finite(values: Any, field: str, path: str, column: str) -> None:
    """Refuse nan/inf in an .npz array (a CSV is checked row by row as it is read)."""
    finite = np.isfinite(values)
    if not np.all(finite):
        row = int(np.argwhere(~finite)[0][0])
        bad = values[~finite].flat[0]
        raise ConfigError(field, path, f"array {column!r}, row {row}: {bad} is not finite")


def load_data(
    config: InputConfig,
    section: str,
    *,
    features: tuple[str, ...] | None,
    label: str | None,
    label_dtype: str,
) -> Data:
    """Load a CSV/.npz input file, checking every column it names.

    Raises:
        ConfigError: On ``<section>.path``, ``.label`` or ``.features``: the problem,
            naming the file (and line, column or row where there is one).
    """
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
        _check_finite(values, field, config.path, name)
        out[name] = values.astype(np.float32)
    label_values = np.asarray(arrays[label])
    if np.issubdtype(label_values.dtype, np.number):
        _check_finite(label_values, field, config.path, label)
    labels = _labels(label_values, label_dtype, label_field, label)
    return Data(features=out, labels=labels, rows=rows)


def _array_input_fn(data: Data, config: InputConfig) -> Callable[[], Any]:
    """An input_fn over in-memory arrays: shuffle per epoch, repeat, batch."""

    def input_fn() -> Any:
        ds = tf.data.Dataset.from_tensor_slices((data.features, data.labels))
        if config.shuffle:
            ds = ds.shuffle(data.rows, seed=config.seed, reshuffle_each_iteration=True)
        return ds.repeat(config.num_epochs).batch(config.batch_size)

    return input_fn


def _file_input_fn(
    config: ExperimentConfig,
    spec: InputConfig,
    section: str,
    *,
    features: tuple[str, ...] | None,
    label: str | None,
) -> tuple[Callable[[], Any], Data]:
    data = load_data(
        spec,
        section,
        features=features,
        label=label,
        label_dtype=label_dtype(spec, config.estimator),
    )
    check_batch_size(spec, section, data.rows)
    return _array_input_fn(data, spec), data


def _module_input_fn(spec: InputConfig, section: str) -> Callable[..., Any]:
    fn = import_callable(str(spec.input_fn), f"{section}.input_fn")
    return functools.partial(fn, **spec.params) if spec.params else fn


def build_inputs(config: ExperimentConfig) -> Inputs:
    """Both input functions of ``config``: over its data files, or its ``input_fn``s.

    The eval file's ``features`` and ``label`` default to the training input's.

    Raises:
        ConfigError: A problem with a data file or an ``input_fn`` (see `load_data`).
    """
    train_data: Data | None = None
    train, evaluation = config.train_input, config.eval_input
    if train.path is not None:
        train_fn, train_data = _file_input_fn(
            config, train, "train_input", features=train.features, label=train.label
        )
    else:
        train_fn = _module_input_fn(train, "train_input")
    if evaluation.path is not None:
        features = evaluation.features or train.features
        if features is None and train_data is not None:
            features = tuple(train_data.features)
        eval_fn, _ = _file_input_fn(
            config,
            evaluation,
            "eval_input",
            features=features,
            label=evaluation.label or train.label,
        )
    else:
        eval_fn = _module_input_fn(evaluation, "eval_input")
    _check_classes(config, train_data, "train_input")
    return Inputs(train_input_fn=train_fn, eval_input_fn=eval_fn, train_data=train_data)


def _check_classes(config: ExperimentConfig, data: Data | None, section: str) -> None:
    """Canned classifiers need labels in ``0 .. n_classes-1``: check the file's labels."""
    params = config.estimator.params
    if data is None or not config.estimator.is_classifier:
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
