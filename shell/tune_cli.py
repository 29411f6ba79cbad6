"""``tfexperiment tune --config FILE``: a sweep of an experiment config with a ``search:`` section.

Every ``search:`` key is checked against the config before any trial runs: each end of
each range and each choice is set into a copy of the config, which must parse and build
(an unknown key path, an empty range, a bad distribution or a value the estimator refuses
is exit 2 naming ``search.<key>``). Then `shell.tune.tune` runs the trials (the first
with the config's own values, when they lie in the search space), and the end
prints the table of trials and the best one and writes ``DIR/tune.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from core import search as cs
from core._validate import check, positive_int
from core.errors import ConfigError, ConfigTypeError, FieldError
from shell.config import (
    _absolute_data_paths,
    _read_file,
    apply_overrides,
    create_experiment,
    parse_config,
)
from shell.tune import log, require_optuna, sampled_params, trial_states, tune
from shell.tune_report import summary_lines, write_plot

__all__ = ["ConfigTrial", "add_tune_parser", "check_search", "read_sweep", "tune_config"]


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
    raw = _read_file(path)
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
    return dict(_absolute_data_paths(data, path.resolve().parent)), spec


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


# --------------------------------------------------------------------------- command line
def add_tune_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tune`` to the ``tfexperiment`` subcommands (sets ``func``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "tune",
        help="sweep hyperparameters of a config with a search: section (Optuna)",
        description="Run trials of a config's search: section until the study has N. The "
        "study lives in --storage (default sqlite:///DIR/study.db); another tune on the "
        "same storage and study joins it.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show logs"
    )
    parser.add_argument("-c", "--config", required=True, metavar="FILE", help="the config")
    parser.add_argument(
        "-n", "--trials", type=int, required=True, metavar="N", help="the study's total trials"
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=1, metavar="K", help="trials at once (processes)"
    )
    parser.add_argument("--study", metavar="NAME", help="the study (default: config stem)")
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna storage URL (sqlite:///..., postgresql://..., mysql://...) or a "
        "journal file path ending in .log/.journal (default: sqlite:///DIR/study.db)",
    )
    parser.add_argument(
        "-o", "--output-dir", metavar="DIR", help="trials go to DIR/trial-<number>/"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train_steps=50 (repeatable)",
    )
    parser.set_defaults(func=_tune_command)
    return parser


def _tune_command(args: argparse.Namespace) -> int:
    """Run ``tfexperiment tune``; 0 done, 1 no trial completed, 2 bad input, 130 Ctrl-C."""
    require_optuna()
    verbose = bool(getattr(args, "verbose", False))
    try:
        study = tune_config(
            args.config,
            n_trials=args.trials,
            n_jobs=args.jobs,
            study_name=args.study,
            storage=args.storage,
            output_dir=args.output_dir,
            overrides=args.overrides,
            verbose=verbose,
        )
    except FieldError as err:
        if err.field.startswith(("--", "tune", "config")):
            raise
        raise type(err)(f"{args.config}: {err.field}", err.value, err.problem) from None
    except KeyboardInterrupt:
        log.info("interrupted: running trials ended, checkpoints kept; rerun to continue")
        raise
    out = args.output_dir or os.path.join("runs", Path(args.config).stem)
    _print(summary_lines(study))
    png = write_plot(study, os.path.join(out, "tune.png"))
    if png:
        print(f"plot: {png}", flush=True)
    return cs.study_exit_code(state for state, _ in trial_states(study))


def _print(lines: Sequence[str]) -> None:
    for line in lines:
        print(line, flush=True)
