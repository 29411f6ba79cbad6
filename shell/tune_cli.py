"""``tfexperiment tune``: its subcommand parser and handler (Optuna loads only when it runs).

Exit codes: 0 done (some trial completed), 1 no trial completed, 2 bad input (nothing
trained; also when Optuna is not installed), 130 Ctrl-C (rerun to continue the study).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core import search as cs
from core.errors import FieldError

__all__ = ["add_tune_parser"]

log = logging.getLogger("tfexperiment")


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
    # Imported here, not at the top: Optuna takes ~0.5 s to import, and every other
    # subcommand (and --help) would pay for it.
    from shell.sweep import require_optuna, trial_states
    from shell.tune_config import tune_config
    from shell.tune_report import summary_lines, write_plot

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
