"""Config records, parse_config and apply_overrides: plain data in, records or one named error out."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core._validate import INT64_MAX
from core.config import (
    SETTINGS_KEYS,
    EstimatorConfig,
    EvalInputConfig,
    InputConfig,
    check_batch_size,
    label_dtype,
)
from core.config_parse import apply_overrides, parse_config, to_mapping
from core.errors import ConfigError, ConfigTypeError, FieldError
from core.settings import ExperimentSettings


def base_config() -> dict[str, Any]:
    """A small valid LinearClassifier config (its data files need not exist to parse)."""
    return {
        "estimator": {
            "type": "LinearClassifier",
            "params": {"n_classes": 2, "optimizer": "Adam", "learning_rate": 0.05},
            "run_config": {"save_checkpoints_steps": 10, "save_summary_steps": 5},
        },
        "train_input": {"path": "train.csv", "label": "target", "batch_size": 8},
        "eval_input": {"path": "eval.csv"},
        "train_steps": 20,
        "eval_every_n_steps": 10,
        "exports": [{"name": "latest", "type": "latest"}],
    }


def _case(change: str) -> dict[str, Any]:
    config = base_config()
    return apply_overrides(config, [change]) if "=" in change else config


# ----------------------------------------------------------------- moved from tests/shell
def test_records_validate_when_built_directly() -> None:
    """Records reject bad values themselves, naming the field."""
    with pytest.raises(ConfigTypeError) as info:
        InputConfig(path="x.csv", batch_size="32")
    assert info.value.field == "batch_size"
    with pytest.raises(ConfigError) as info2:
        InputConfig(path="x.csv", input_fn="m:f")
    assert info2.value.field == "path"


def test_unknown_key_suggests_the_near_one() -> None:
    """An unknown key's error lists the valid keys and suggests the closest one."""
    with pytest.raises(ConfigError, match="did you mean 'train_steps'"):
        parse_config(_case("train_step=10"))


def test_bad_override_syntax() -> None:
    """An override without '=' is a ConfigError naming --set."""
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, ["train_steps"])
    assert info.value.field == "--set"


# ----------------------------------------------------------------- parse_config
PURE_BAD = [
    # (override, error class, field path): caught by parse_config alone.
    ("train_step=10", ConfigError, "train_step"),
    ("train_input.pth=x.csv", ConfigError, "train_input.pth"),
    ("train_steps='100'", ConfigTypeError, "train_steps"),
    ("train_steps=-1", ConfigError, "train_steps"),
    ("train_steps=99999999999999999999999", ConfigError, "train_steps"),
    ("eval_delay_secs=.inf", ConfigError, "eval_delay_secs"),
    ("delay_workers_by_global_step='yes'", ConfigTypeError, "delay_workers_by_global_step"),
    ("train_input.batch_size=[32]", ConfigTypeError, "train_input.batch_size"),
    ("train_input.batch_size=0", ConfigError, "train_input.batch_size"),
    ("train_input.path=data.txt", ConfigError, "train_input.path"),
    ("estimator.type=Bogus", ConfigError, "estimator.type"),
    ("estimator.params.hidden_units=big", ConfigTypeError, "estimator.params.hidden_units"),
    ("estimator.params.optimizer=Adamm", ConfigError, "estimator.params.optimizer"),
    ("estimator.params.n_classes=1", ConfigError, "estimator.params.n_classes"),
    ("estimator.params.learning_rate=0", ConfigError, "estimator.params.learning_rate"),
    ("estimator.params.feature_columns=[a]", ConfigError, "estimator.params.feature_columns"),
    ("estimator.feature_columns=[{name: a, shape: [0]}]", ConfigError, "shape[0]"),
    ("estimator.factory=nosuchmodule:make", ConfigError, "estimator.type"),
    (
        "estimator.run_config.save_checkpoints_secs=5",
        ConfigError,
        "estimator.run_config.save_checkpoints_secs",
    ),
    ("exports.0.type=sometimes", ConfigError, "exports[0].type"),
    ("exports.0.name=a/b", ConfigError, "exports[0].name"),
    ("exports.1.type=best", ConfigError, "exports[1].name"),
    ("exports=[{name: a}, {name: a}]", ConfigError, "exports[1].name"),
    ("exports=latest", ConfigTypeError, "exports"),
    ("train_hooks=['nocolon']", ConfigError, "train_hooks[0].factory"),
    ("eval_input.num_epochs=null", ConfigError, "eval_input.num_epochs"),
    ("eval_input=null", ConfigTypeError, "eval_input"),
    ("settings=1", ConfigError, "settings"),
]


@pytest.mark.parametrize(("change", "error", "field"), PURE_BAD, ids=[b[0] for b in PURE_BAD])
def test_bad_config_is_one_error_naming_the_dotted_key(
    change: str, error: type[FieldError], field: str
) -> None:
    """Each bad value parse_config can judge raises one error whose field ends with the key."""
    with pytest.raises(error) as info:
        parse_config(_case(change))
    assert info.value.field.endswith(field), str(info.value)
    assert info.value.field in str(info.value)


def test_schedule_keys_become_one_experiment_settings() -> None:
    """The top-level schedule keys are held as ExperimentSettings; eval_steps defaults to null."""
    config = parse_config(base_config())
    assert config.settings == ExperimentSettings(
        train_steps=20, eval_steps=None, eval_every_n_steps=10
    )
    assert config.eval_steps is None
    assert attrs.asdict(config.settings) == {key: getattr(config, key) for key in SETTINGS_KEYS}


def test_a_record_passes_through_parse_config_unchanged() -> None:
    """parse_config returns an ExperimentConfig it is given as is."""
    record = parse_config(base_config())
    assert parse_config(record) is record


@pytest.mark.parametrize(
    ("estimator", "metric", "ok"),
    [
        ({"type": "LinearClassifier"}, "auc", True),
        ({"type": "DNNClassifier", "params": {"n_classes": 3, "hidden_units": [4]}}, "auc", False),
        (
            {"type": "DNNClassifier", "params": {"n_classes": 3, "hidden_units": [4]}},
            "accuracy",
            True,
        ),
        ({"type": "LinearRegressor"}, "accuracy", False),
        ({"type": "LinearRegressor"}, "average_loss", True),
        ({"factory": "m:build"}, "anything", True),
    ],
)
def test_a_best_export_on_a_metric_the_canned_evaluation_lacks_is_refused(
    estimator: dict[str, Any], metric: str, ok: bool
) -> None:
    """A best export's metric must be one the canned estimator reports (a factory's is unknown)."""
    raw = base_config() | {
        "estimator": estimator,
        "exports": [{"name": "latest"}, {"name": "b", "type": "best", "metric": metric}],
    }
    if ok:
        assert parse_config(raw).exports[1].metric == metric
        return
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.field == "exports[1].metric"
    assert "loss" in str(info.value)


def test_label_dtype_follows_the_estimator_kind() -> None:
    """auto labels are int for canned classifiers, float for regressors, auto for factories."""
    spec = InputConfig(path="x.csv")
    assert label_dtype(spec, EstimatorConfig(type="DNNClassifier")) == "int"
    assert label_dtype(spec, EstimatorConfig(type="LinearRegressor")) == "float"
    assert label_dtype(spec, EstimatorConfig(factory="m:f")) == "auto"
    assert (
        label_dtype(
            InputConfig(path="x.csv", label_dtype="float"), EstimatorConfig(type="DNNClassifier")
        )
        == "float"
    )


@given(
    rows=st.integers(1, 10**6),
    batch=st.integers(1, INT64_MAX),
    epochs=st.none() | st.integers(1, 9),
)
def test_batch_size_is_refused_only_beyond_the_data_when_repeating(
    rows: int, batch: int, epochs: int | None
) -> None:
    """A repeating input refuses a batch above max(rows, 32), naming the key and the data size."""
    spec = EvalInputConfig(path="x.csv", batch_size=batch, num_epochs=epochs)
    if epochs is None and batch > max(rows, 32):
        with pytest.raises(ConfigError) as info:
            check_batch_size(spec, "eval_input", rows)
        assert info.value.field == "eval_input.batch_size"
        assert f"{rows} examples" in str(info.value)
    else:
        check_batch_size(spec, "eval_input", rows)


# ----------------------------------------------------------------- properties
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
_JUNK = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.from_regex(r"[a-z_]{1,5}", fullmatch=True), inner, max_size=3)
    ),
    max_leaves=6,
)


def _leaf_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a nested mapping/list (containers included)."""
    paths = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            paths += _leaf_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            paths += _leaf_paths(value, (*prefix, i))
    return paths


def _replace(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _parent_resolves(data: Any, field: str) -> bool:
    """Whether every part of ``field`` but the last names a container in ``data``."""
    parts: list[Any] = []
    for chunk in field.replace("[", ".[").split("."):
        if chunk.startswith("["):
            parts.append(int(chunk[1:-1]))
        elif chunk:
            parts.append(chunk)
    node = data
    for part in parts[:-1]:
        if isinstance(node, str):  # a shorthand (a hook's factory string)
            return True
        found = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        )
        if not found:
            return False
        node = node[part]
    return isinstance(node, (dict, list, str))


@given(data=st.data(), junk=_JUNK)
def test_every_error_names_a_dotted_key_of_the_input(data: st.DataObject, junk: Any) -> None:
    """Replacing any value with junk either parses or names a key whose parent is in the input."""
    config = base_config()
    path = data.draw(st.sampled_from(_leaf_paths(config)))
    bad = _replace(config, path, junk)
    try:
        parse_config(bad)
    except FieldError as err:
        assert _parent_resolves(bad, err.field), (err.field, path)
        assert str(err).startswith(f"{err.field}=")


@given(
    train_steps=st.none() | st.integers(0, INT64_MAX),
    eval_steps=st.integers(1, 10**9),
    throttle=st.floats(0, 1e6),
    batch=st.integers(1, 10**6),
    exports=st.lists(st.sampled_from(["latest", "best", "final"]), max_size=3),
)
def test_to_mapping_round_trips(
    train_steps: int | None, eval_steps: int, throttle: float, batch: int, exports: list[str]
) -> None:
    """parse_config(to_mapping(c)) == c for every valid config."""
    raw = base_config()
    raw.update(
        train_steps=train_steps,
        eval_steps=eval_steps,
        continuous_eval_throttle_secs=throttle,
        exports=[{"name": f"e{i}", "type": kind} for i, kind in enumerate(exports)],
    )
    raw["train_input"]["batch_size"] = batch
    config = parse_config(raw)
    again = parse_config(to_mapping(config))
    assert again == config
    assert again.settings == config.settings


_KEYS = st.lists(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), min_size=1, max_size=4)
_VALUES = (
    st.integers(-(10**6), 10**6) | st.booleans() | st.from_regex(r"[a-z]{1,6}", fullmatch=True)
)


@given(keys=_KEYS, value=_VALUES)
def test_an_override_sets_its_dotted_key_and_leaves_the_input_alone(
    keys: list[str], value: Any
) -> None:
    """After `a.b.c=V` on a fresh path, result['a']['b']['c'] == V and the input is unchanged."""
    data = base_config()
    before = copy.deepcopy(data)
    key = ".".join(["fresh", *keys])
    result = apply_overrides(data, [f"{key}={value}"])
    node: Any = result
    for part in key.split("."):
        node = node[part]
    assert node == value
    assert data == before


@given(items=st.integers(0, 4), index=st.integers(0, 6))
def test_a_list_index_replaces_appends_or_names_the_list(items: int, index: int) -> None:
    """An index < len replaces, == len appends, > len is an error naming the key."""
    data = {"exports": [{"name": f"e{i}"} for i in range(items)]}
    override = f"exports.{index}.name=new"
    if index > items:
        with pytest.raises(ConfigError) as info:
            apply_overrides(data, [override])
        assert info.value.field == f"exports.{index}"
        return
    result = apply_overrides(data, [override])
    assert result["exports"][index] == {"name": "new"}
    assert len(result["exports"]) == max(items, index + 1)


def test_an_index_on_a_missing_list_creates_it() -> None:
    """`exports.0.type=final` on a config without exports makes a one-item list."""
    assert apply_overrides({}, ["exports.0.type=final"]) == {"exports": [{"type": "final"}]}
    with pytest.raises(ConfigError) as info:
        parse_config(apply_overrides(base_config() | {"exports": []}, ["exports.0.type=final"]))
    assert info.value.field == "exports[0].name"


def test_an_empty_override_value_is_an_error_naming_the_key() -> None:
    """`train_steps=` is refused (it would otherwise mean null: train forever)."""
    with pytest.raises(ConfigError) as info:
        apply_overrides(base_config(), ["train_steps="])
    assert info.value.field == "--set train_steps"
    assert apply_overrides({}, ["train_steps=null"]) == {"train_steps": None}


def test_an_override_through_a_scalar_names_the_scalar_and_its_value() -> None:
    """`train_steps.b.c=1` names train_steps and its value, not a made-up key."""
    with pytest.raises(ConfigError) as info:
        apply_overrides(base_config(), ["train_steps.b.c=1"])
    assert info.value.field == "train_steps"
    assert info.value.value == 20
    assert "train_steps.b.c" in str(info.value)


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False)])
def test_eval_in_background_is_a_schedule_key(value: bool, expected: bool) -> None:
    """The top-level key eval_in_background becomes the settings' field (default false)."""
    assert parse_config(base_config()).settings.eval_in_background is False
    config = parse_config({**base_config(), "eval_in_background": value})
    assert config.settings.eval_in_background is expected
    assert to_mapping(config)["eval_in_background"] is expected


@pytest.mark.parametrize("value", ["maybe", 1, None])
def test_a_bad_eval_in_background_names_the_key(value: object) -> None:
    """A non-bool eval_in_background is a ConfigTypeError naming the key."""
    with pytest.raises(ConfigTypeError) as info:
        parse_config({**base_config(), "eval_in_background": value})
    assert info.value.field == "eval_in_background"
