"""A sweep of an experiment config file with a ``search:`` section (``tfexperiment tune``).

Every ``search:`` key is checked against the config before any trial runs: each end of
each range and each choice is set into a copy of the config, which must parse and build
(an unknown key path, an empty range, a bad distribution or a value the estimator refuses
is exit 2 naming ``search.<key>``). Then `shell.sweep.tune` runs the trials (the first
with the config's own values, when they lie in the search space), and the end
prints the table of trials and the best one and writes ``DIR/tune.png``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from core import search as cs
from core._validate import check, positive_int
from core.config_parse import apply_overrides, parse_config
from core.errors import ConfigError, ConfigTypeError, FieldError
from shell.config import create_experiment
from shell.loading import absolute_data_paths, read_config_file
from shell.sweep import require_optuna, tune

__all__ = [
    "ConfigTrial",
    "check_search",
    "read_sweep",
    "sampled_params",
    "suggest",
    "tune_config",
]


def suggest(trial: Any, param: cs.Param) -> Any:
    """Sample one searched config key with ``trial.suggest_*``; the config value."""
    if param.kind is cs.Kind.CHOICE:
        return param.decode(trial.suggest_categorical(param.key, list(param.labels)))
    if param.kind is cs.Kind.INT:
        return trial.suggest_int(param.key, param.low, param.high)
    log_scale = param.kind is cs.Kind.LOGUNIFORM
    return trial.suggest_float(param.key, param.low, param.high, log=log_scale)


def sampled_params(trial: Any, spec: cs.SearchSpec) -> dict[str, Any]:
    """Every searched key of ``spec`` sampled by ``trial``: ``{dotted_key: config value}``."""
    return {param.key: suggest(trial, param) for param in spec.params}


@attrs.frozen(kw_only=True)
class ConfigTrial:
    """``experiment_fn(trial, output_dir)`` of a config sweep (picklable for worker processes).

    Attributes:
        config_dir: The config file's directory (importable, as for ``run --config``).
        data: The experiment part of the config (data paths absolute, ``--set`` applied).
        spec: The sweep.
    """

    config_dir: str
    data: Mapping[str, Any]
    spec: cs.SearchSpec

    def __call__(self, trial: Any, output_dir: str) -> Any:
        """Sample every searched key, set it into the config and build the Experiment."""
        params = sampled_params(trial, self.spec)
        trial.set_user_attr("config_params", params)
        if self.config_dir not in sys.path:
            sys.path.insert(0, self.config_dir)
        return create_experiment(cs.apply_params(self.data, params), output_dir)


def read_sweep(
    config_path: str | os.PathLike[str], overrides: Iterable[str] = ()
) -> tuple[dict[str, Any], cs.SearchSpec]:
    """Read a config file and split it into the experiment part and the sweep.

    Returns:
        ``(experiment_data, spec)``; relative data paths made absolute.

    Raises:
        ConfigError: The file is missing or unreadable, has no ``search:``, or a sweep
            key is bad.
    """
    path = Path(config_path).expanduser()
    raw = read_config_file(path)
    if raw is None:
        raise ConfigError("config", str(path), "is empty")
    if not isinstance(raw, Mapping):
        raise ConfigTypeError("config", raw, "must be a mapping at the top level")
    overrides = list(overrides)
    if overrides:
        raw = apply_overrides(raw, overrides)
    data, spec = cs.split_search(raw)
    if spec is None:
        raise ConfigError("search", None, "is required by tune (see docs/readme/sweeps.md)")
    return dict(absolute_data_paths(data, path.resolve().parent)), spec


def check_search(data: Mapping[str, Any], spec: cs.SearchSpec, *, build: bool = True) -> None:
    """Check each searched key against the config at every end of its range / choice.

    Args:
        data: The experiment part of the config.
        spec: The sweep.
        build: Also build each Experiment (estimator, inputs; imports TensorFlow),
            catching keyword arguments the estimator does not take.

    Raises:
        ConfigError: A value set at a key does not parse or build; the field is
            ``search.<key>``.
    """
    with tempfile.TemporaryDirectory(prefix="tfx-tune-check-") as scratch:
        for key, value in cs.corner_params(spec):
            candidate = cs.apply_params(data, {key: value})
            try:
                parse_config(candidate)
                if build:
                    create_experiment(candidate, os.path.join(scratch, "model"))
            except FieldError as err:
                raise ConfigError(
                    f"search.{key}", value, f"gives {err.field}={err.value!r}: {err.problem}"
                ) from None


def tune_config(
    config_path: str | os.PathLike[str],
    *,
    n_trials: int,
    n_jobs: int = 1,
    study_name: str | None = None,
    storage: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    verbose: bool = False,
) -> Any:
    """Sweep a YAML/JSON experiment config that has a ``search:`` section.

    Args:
        config_path: The config file.
        n_trials: The study's total number of trials.
        n_jobs: Trials at once, each in its own process.
        study_name: The study (default: the config file's stem).
        storage: An Optuna storage URL or a journal file path (default
            ``sqlite:///DIR/study.db``).
        output_dir: The sweep's directory DIR (default ``runs/<config stem>``).
        overrides: ``KEY=VALUE`` strings applied to the config first.
        verbose: Show Optuna's and TensorFlow's own logs.

    Returns:
        The ``optuna.Study``.

    Raises:
        ConfigError: A bad config, sweep key, storage or argument (nothing trained).
    """
    require_optuna()
    check(positive_int, "--trials", n_trials)
    check(positive_int, "--jobs", n_jobs)
    if storage is not None:
        cs.storage_kind(storage)
    data, spec = read_sweep(config_path, overrides)
    check_search(data, spec, build=False)  # TF-free: every bad key path fails fast
    check_search(data, spec, build=True)
    stem = Path(config_path).stem
    out = os.fspath(output_dir) if output_dir else os.path.join("runs", stem)
    experiment_fn = ConfigTrial(
        config_dir=str(Path(config_path).expanduser().resolve().parent), data=data, spec=spec
    )
    return tune(
        experiment_fn,
        n_trials=n_trials,
        storage=storage,
        study_name=study_name or stem,
        metric=spec.objective.metric,
        direction=spec.objective.direction,
        n_jobs=n_jobs,
        output_dir=out,
        pruner=spec.pruner,
        sampler=spec.sampler,
        verbose=verbose,
        baseline=cs.baseline_params(data, spec),
    )
