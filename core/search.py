"""Hyperparameter sweeps, pure: the ``search:`` / ``objective:`` / ``pruner:`` / ``sampler:`` keys.

A config for ``tfexperiment tune`` is an experiment config plus these four top-level keys::

    search:                                   # dotted config key -> distribution
      estimator.params.learning_rate: {loguniform: [0.0005, 0.1]}
      estimator.params.hidden_units: {choice: [[8], [16, 8]]}
      train_input.batch_size: {int: [16, 64]}  # also {float: [low, high]}
    objective: {metric: accuracy, direction: maximize}
    pruner: median                            # or {name: median, n_warmup_steps: 2}
    sampler: {name: tpe, seed: 42}

`split_search` takes them out of a raw config mapping; `apply_params` puts sampled values
back at their dotted keys. The decisions of a study (which trials count toward its total,
how many are left, its exit code, the best-so-far line) are plain functions here; the
shell (`shell.sweep`) applies them with Optuna, which this module never imports.
"""

from __future__ import annotations

import copy
import enum
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from core._validate import (
    check,
    instance,
    is_int,
    is_number,
    non_empty_str,
    one_of,
    str_keyed_mapping,
    tuple_of,
)
from core.config_parse import set_dotted
from core.errors import ConfigError, ConfigTypeError

#: The top-level keys `split_search` removes from an experiment config.
SEARCH_KEYS = ("search", "objective", "pruner", "sampler")

#: Pruner names -> the class in ``optuna.pruners``.
PRUNERS: Mapping[str, str] = {
    "median": "MedianPruner",
    "nop": "NopPruner",
    "none": "NopPruner",
    "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
    "threshold": "ThresholdPruner",
}

#: Sampler names -> the class in ``optuna.samplers``.
SAMPLERS: Mapping[str, str] = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    "nsgaii": "NSGAIISampler",
}

DIRECTIONS = ("minimize", "maximize")

#: Optuna trial states, by name (``optuna.trial.TrialState(...).name``).
COMPLETE, PRUNED, FAIL, RUNNING, WAITING = "COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"


class Kind(str, enum.Enum):
    """A distribution of a searched key."""

    LOGUNIFORM = "loguniform"
    FLOAT = "float"
    INT = "int"
    CHOICE = "choice"


_PRIMITIVE = (str, int, float, bool, type(None))


def _is_primitive(value: Any) -> bool:
    return isinstance(value, _PRIMITIVE)


def encode_choice(value: Any) -> Any:
    """The value Optuna stores for one choice: itself if primitive, else canonical JSON."""
    return value if _is_primitive(value) else json.dumps(value, sort_keys=True)


@attrs.frozen(kw_only=True)
class Param:
    """One searched config key and its distribution.

    Attributes:
        key: The dotted config key, e.g. ``estimator.params.learning_rate``.
        kind: The distribution.
        low: The lower bound (loguniform, float, int), inclusive.
        high: The upper bound, inclusive (> low).
        choices: The values of a ``choice`` (lists and mappings allowed).
    """

    key: str = attrs.field(validator=non_empty_str)
    kind: Kind = attrs.field(validator=instance(Kind, "a distribution"))
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def __attrs_post_init__(self) -> None:
        field = f"search.{self.key}.{self.kind.value}"
        if self.kind is Kind.CHOICE:
            if not self.choices:
                raise ConfigError(field, [], "is an empty list of choices")
            labels = [encode_choice(c) for c in self.choices]
            if len(set(map(json.dumps, labels))) != len(labels):
                raise ConfigError(field, list(self.choices), "has duplicate choices")
            return
        bounds = [self.low, self.high]
        number = is_int if self.kind is Kind.INT else is_number
        if not all(number(b) and math.isfinite(b) for b in bounds):  # type: ignore[arg-type]
            what = "ints" if self.kind is Kind.INT else "finite numbers"
            raise ConfigTypeError(field, bounds, f"must be [low, high], two {what}")
        assert self.low is not None and self.high is not None
        if self.low >= self.high:
            raise ConfigError(field, bounds, "is an empty range: low must be < high")
        if self.kind is Kind.LOGUNIFORM and self.low <= 0:
            raise ConfigError(field, bounds, "must have low > 0 (a log scale)")

    @property
    def labels(self) -> tuple[Any, ...]:
        """The choices as Optuna stores them (see `encode_choice`)."""
        return tuple(encode_choice(c) for c in self.choices)

    def decode(self, stored: Any) -> Any:
        """The config value of a value Optuna stored for this key."""
        if self.kind is Kind.CHOICE:
            return self.choices[self.labels.index(stored)]
        return stored

    def corners(self) -> tuple[Any, ...]:
        """Config values that bound the search: both ends of a range, or every choice."""
        if self.kind is Kind.CHOICE:
            return self.choices
        return (self.low, self.high)


@attrs.frozen(kw_only=True)
class Objective:
    """What a trial returns: an evaluation metric, minimized or maximized.

    Attributes:
        metric: A key of the evaluation result, e.g. ``accuracy`` or ``loss``.
        direction: ``minimize`` or ``maximize``.
    """

    metric: str = attrs.field(default="loss", validator=non_empty_str)
    direction: str = attrs.field(default="minimize", validator=one_of(DIRECTIONS))

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` beats ``b``."""
        return a > b if self.direction == "maximize" else a < b


@attrs.frozen(kw_only=True)
class Choice:
    """A pruner or a sampler: an Optuna class by name and its keyword arguments.

    Attributes:
        name: A key of `PRUNERS` or `SAMPLERS` (checked by the parser).
        options: Keyword arguments for the class, e.g. ``{"seed": 42}``.
    """

    name: str = attrs.field(validator=non_empty_str)
    options: Mapping[str, Any] = attrs.field(factory=dict, validator=str_keyed_mapping)


@attrs.frozen(kw_only=True)
class SearchSpec:
    """A sweep: the searched keys, the objective, the pruner and the sampler.

    Attributes:
        params: The searched keys (at least one, distinct).
        objective: The metric and its direction.
        pruner: The pruner (default ``median``).
        sampler: The sampler (default ``tpe``).
    """

    params: tuple[Param, ...] = attrs.field(validator=tuple_of(instance(Param)))
    objective: Objective = attrs.field(factory=Objective, validator=instance(Objective))
    pruner: Choice = attrs.field(
        factory=lambda: Choice(name="median"), validator=instance(Choice, "a pruner")
    )
    sampler: Choice = attrs.field(
        factory=lambda: Choice(name="tpe"), validator=instance(Choice, "a sampler")
    )

    def __attrs_post_init__(self) -> None:
        if not self.params:
            raise ConfigError("search", {}, "must name at least one config key to search")
        keys = [p.key for p in self.params]
        for i, key in enumerate(keys):
            for other in keys[:i]:
                if key.startswith(other + ".") or other.startswith(key + "."):
                    raise ConfigError(f"search.{key}", key, f"overlaps search.{other}")
        check(one_of(list(PRUNERS)), "pruner.name", self.pruner.name)
        check(one_of(list(SAMPLERS)), "sampler.name", self.sampler.name)

    def param(self, key: str) -> Param:
        """The searched key ``key``."""
        for param in self.params:
            if param.key == key:
                return param
        raise KeyError(key)


# --------------------------------------------------------------------------- parsing
def parse_param(key: Any, value: Any) -> Param:
    """Parse one ``search:`` entry, e.g. ``("train_input.batch_size", {"int": [16, 64]})``.

    Raises:
        ConfigError: An unknown distribution, an empty range, ``low >= high``, or a
            loguniform ``low <= 0``; the field is ``search.<key>[.<distribution>]``.
        ConfigTypeError: The entry is not a one-key mapping of a list.
    """
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ConfigTypeError(f"search.{key}", key, "must be a dotted config key")
    field = f"search.{key}"
    kinds = ", ".join(k.value for k in Kind)
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ConfigTypeError(field, value, f"must be one of {{{kinds}}}: [...]")
    ((name, args),) = value.items()
    try:
        kind = Kind(name)
    except ValueError:
        raise ConfigError(
            f"{field}.{name}", args, f"unknown distribution (valid: {kinds})"
        ) from None
    here = f"{field}.{kind.value}"
    if not isinstance(args, (list, tuple)):
        raise ConfigTypeError(here, args, "must be a list")
    if kind is Kind.CHOICE:
        return Param(key=key, kind=kind, choices=tuple(args))
    if len(args) != 2:
        raise ConfigTypeError(here, list(args), "must be [low, high]")
    return Param(key=key, kind=kind, low=args[0], high=args[1])


def parse_choice(field: str, value: Any, names: Mapping[str, str], default: str) -> Choice:
    """Parse ``pruner:`` or ``sampler:``: a name, or ``{name: ..., <option>: ...}``.

    Raises:
        ConfigError: An unknown name (the field is ``<field>`` or ``<field>.name``).
        ConfigTypeError: Neither a string nor a mapping.
    """
    if value is None:
        return Choice(name=default)
    if isinstance(value, str):
        check(one_of(list(names)), field, value)
        return Choice(name=value)
    if not isinstance(value, Mapping):
        raise ConfigTypeError(field, value, "must be a name or {name: ..., <option>: ...}")
    check(str_keyed_mapping, field, value)
    options = {k: v for k, v in value.items() if k != "name"}
    name = value.get("name", default)
    check(one_of(list(names)), f"{field}.name", name)
    return Choice(name=name, options=options)


def parse_objective(value: Any) -> Objective:
    """Parse ``objective: {metric: ..., direction: ...}`` (defaults: loss, minimize).

    Raises:
        ConfigError: An unknown key or a direction other than minimize/maximize.
    """
    if value is None:
        return Objective()
    if not isinstance(value, Mapping):
        raise ConfigTypeError("objective", value, "must be {metric: ..., direction: ...}")
    for key in value:
        if key not in ("metric", "direction"):
            raise ConfigError(
                f"objective.{key}", value[key], "unknown key (valid: metric, direction)"
            )
    metric = value.get("metric", "loss")
    direction = value.get("direction", "minimize")
    check(non_empty_str, "objective.metric", metric)
    check(one_of(DIRECTIONS), "objective.direction", direction)
    return Objective(metric=metric, direction=direction)


def parse_search(data: Mapping[str, Any]) -> SearchSpec:
    """Parse the four sweep keys of a config mapping (``search:`` required).

    Raises:
        ConfigError: A bad entry; the field is its dotted key.
        ConfigTypeError: A value of the wrong type.
    """
    search = data.get("search")
    if not isinstance(search, Mapping):
        raise ConfigTypeError("search", search, "must map dotted config keys to distributions")
    params = tuple(parse_param(key, value) for key, value in search.items())
    return SearchSpec(
        params=params,
        objective=parse_objective(data.get("objective")),
        pruner=parse_choice("pruner", data.get("pruner"), PRUNERS, "median"),
        sampler=parse_choice("sampler", data.get("sampler"), SAMPLERS, "tpe"),
    )


def split_search(data: Mapping[str, Any]) -> tuple[dict[str, Any], SearchSpec | None]:
    """Separate a raw config mapping into the experiment's part and the sweep.

    Args:
        data: A config mapping as read from YAML/JSON (left unchanged).

    Returns:
        ``(experiment_data, spec)``: the mapping without `SEARCH_KEYS`, and the parsed
        sweep, or None if none of the four keys is present.

    Raises:
        ConfigError: A bad sweep entry, or ``objective``/``pruner``/``sampler``
            without ``search``.
    """
    rest = {k: v for k, v in data.items() if k not in SEARCH_KEYS}
    present = [k for k in SEARCH_KEYS if k in data]
    if not present:
        return rest, None
    if "search" not in data:
        raise ConfigError("search", None, f"is required with {', '.join(present)}")
    return rest, parse_search(data)


# --------------------------------------------------------------------------- params
def apply_params(data: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the config mapping ``data`` with each ``{dotted_key: value}`` set.

    Raises:
        ConfigError: A key's path crosses a non-container (see
            `core.config_parse.set_dotted`).
    """
    result = copy.deepcopy(dict(data))
    for key, value in params.items():
        set_dotted(result, key, value)
    return result


_MISSING = object()


def get_dotted(data: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at the dotted ``key`` of ``data`` (a numeric part indexes a list), or
    ``default`` when the path does not exist."""
    node: Any = data
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def in_space(param: Param, value: Any) -> bool:
    """Whether the config value ``value`` is a point of ``param``'s distribution."""
    if param.kind is Kind.CHOICE:
        return encode_choice(value) in param.labels and param.decode(encode_choice(value)) == value
    if param.kind is Kind.INT and not is_int(value):
        return False
    if not is_number(value):
        return False
    assert param.low is not None and param.high is not None
    return bool(param.low <= value <= param.high)


def baseline_params(data: Mapping[str, Any], spec: SearchSpec) -> dict[str, Any] | None:
    """The config's own values of the searched keys, as Optuna stores them, to run first.

    A sweep whose first trial is the plain config never reports a worse best than a
    plain run. None when some searched key has no value in the config, or one outside
    its distribution (the sampler then starts on its own).
    """
    stored: dict[str, Any] = {}
    for param in spec.params:
        value = get_dotted(data, param.key, _MISSING)
        if value is _MISSING or not in_space(param, value):
            return None
        stored[param.key] = encode_choice(value) if param.kind is Kind.CHOICE else value
    return stored


def corner_params(spec: SearchSpec) -> list[tuple[str, Any]]:
    """``(key, value)`` pairs to check against the config before any trial runs.

    Every end of every range and every choice, one key at a time.
    """
    return [(p.key, value) for p in spec.params for value in p.corners()]


# --------------------------------------------------------------------------- study
def counts_toward_total(state: str, interrupted: bool = False) -> bool:
    """Whether a trial in ``state`` uses up one of the study's trials.

    Finished trials (complete, pruned, failed) and running ones (another process's) count;
    a trial interrupted by Ctrl-C does not, so a rerun runs it again.
    """
    if state == FAIL:
        return not interrupted
    return state in (COMPLETE, PRUNED, RUNNING)


def trials_left(n_trials: int, trials: Iterable[tuple[str, bool]]) -> int:
    """How many more trials to start for a study total of ``n_trials``.

    Args:
        n_trials: The study's total.
        trials: ``(state, interrupted)`` of every trial in the study.
    """
    used = sum(1 for state, interrupted in trials if counts_toward_total(state, interrupted))
    return max(0, n_trials - used)


def study_exit_code(states: Iterable[str]) -> int:
    """0 when the study has a complete trial (a best one), else 1."""
    return 0 if COMPLETE in set(states) else 1


def best_so_far(values: Sequence[float | None], direction: str) -> list[float | None]:
    """The running best objective after each trial (None before the first value).

    Args:
        values: Each trial's objective in trial order (None: no value, e.g. failed).
        direction: ``minimize`` or ``maximize``.
    """
    check(one_of(DIRECTIONS), "direction", direction)
    objective = Objective(direction=direction)
    best: float | None = None
    line: list[float | None] = []
    for value in values:
        finite = value is not None and math.isfinite(value)
        if finite and (best is None or objective.better(value, best)):  # type: ignore[arg-type]
            best = value
        line.append(best)
    return line


def storage_kind(storage: str) -> str:
    """``journal`` for a journal file path (``.log``/``.journal``), else ``rdb`` (a URL).

    Raises:
        ConfigError: Neither a ``dialect://`` URL nor a journal file path.
    """
    check(non_empty_str, "--storage", storage)
    if "://" in storage:
        return "rdb"
    if storage.endswith((".log", ".journal")):
        return "journal"
    raise ConfigError(
        "--storage",
        storage,
        "must be an Optuna storage URL (sqlite:///study.db, postgresql://...) "
        "or a journal file path ending in .log or .journal",
    )


def worker_seed(seed: Any, worker: int, trials_before: int) -> Any:
    """The sampler seed of one process of a study, so processes do not draw alike.

    The first process of a fresh study keeps ``seed`` (a one-process sweep is
    reproducible); the others, and a process joining a study that already has
    trials, are offset. None (no seed) stays None.
    """
    if seed is None or not is_int(seed):
        return seed
    return seed + worker + 1000 * trials_before


def prune_now(should_prune: bool, step: int | None, train_steps: int | None) -> bool:
    """Whether to end a trial at this evaluation: the pruner says so and training is
    not already over (pruning at the final step saves nothing)."""
    if not should_prune:
        return False
    return train_steps is None or step is None or step < train_steps
