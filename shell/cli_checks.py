"""The command line's checks that need no TensorFlow, and its one-line failure message.

Shared by ``run`` and ``cluster``: which experiment was asked for, its config file read and
validated (errors naming the file), its ``MODULE:EXPERIMENT_FN`` imported; and
`failure_line`, the readable line of an error that ended a run.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from core.cluster_plan import check_spec
from core.config import ExperimentConfig
from core.errors import ConfigTypeError, FieldError
from shell.loading import import_object, load_config

PROG = "tfexperiment"

# Where the readable part of a TensorFlow error message ends.
_TF_NOISE = ("Traceback (most recent call last)", "Detected at node", "Original stack trace")
_EXCEPTION_LINE = re.compile(r"^[A-Z]\w*(Error|Exception|Interrupt|Exit)\b[^:]*:")


class UsageError(Exception):
    """Bad command-line usage (exit code 2)."""


def check_experiment_choice(args: argparse.Namespace, command: str) -> None:
    """Exactly one of MODULE:EXPERIMENT_FN and --config; --set only with --config."""
    if (args.experiment_fn is None) == (args.config is None):
        raise UsageError(
            f"{PROG} {command}: error: give MODULE:EXPERIMENT_FN or --config FILE (exactly one; "
            f"see {PROG} {command} --help)"
        )
    if args.experiment_fn is not None and args.overrides:
        raise UsageError(f"{PROG} {command}: error: --set only applies to --config")


def load_config_file(path: str, overrides: Sequence[str]) -> ExperimentConfig:
    """Read and validate a config file (no TensorFlow), errors naming the file."""
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its module:callable values, as create_experiment does
    try:
        return load_config(path, overrides)
    except FieldError as err:
        raise in_file(err, path) from None


def in_file(err: FieldError, path: str) -> FieldError:
    """``err`` with its field prefixed by the config file (unless it names the file itself)."""
    if err.field == "config" or err.field.startswith("--set"):
        return err
    return type(err)(f"{path}: {err.field}", err.value, err.problem)


def config_model_dir(config: ExperimentConfig, output_dir: str | None, command: str) -> str:
    """--output-dir, else the config's model_dir; one of them is required."""
    model_dir = output_dir or config.estimator.run_config.model_dir
    if not model_dir:
        raise UsageError(
            f"{PROG} {command}: error: give --output-dir DIR (the config sets no "
            "estimator.run_config.model_dir)"
        )
    return model_dir


def import_experiment_fn(spec: str) -> Callable[..., Any]:
    """Import MODULE:EXPERIMENT_FN; exit-2 errors name the spec when it is not callable."""
    check_spec(spec)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # MODULE:FN from the current directory, as python -m
    user_fn = import_object(spec, "experiment_fn")
    if not callable(user_fn):
        raise ConfigTypeError("experiment_fn", spec, "is not callable")
    return user_fn  # type: ignore[no-any-return]


def failure_line(err: BaseException, limit: int = 200) -> str:
    """One readable line for an error that ended a run: ``Type: message``, at most ``limit``.

    A TensorFlow ``OpError`` wraps the original error (e.g. what an input_fn raised) in a
    long message with a flattened traceback and ``[[node ...]]`` lines; only its first
    meaningful line (the original ``ValueError: ...``) is kept, followed by the
    TensorFlow error's type.
    """
    message = getattr(err, "message", None)
    from_tf = type(err).__module__.startswith("tensorflow") and isinstance(message, str)
    lines = [line.strip() for line in str(message if from_tf else err).splitlines()]
    readable: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(_TF_NOISE):
            if not readable:  # only a traceback: its last exception line is the error
                readable = [x for x in lines[i:] if _EXCEPTION_LINE.match(x)][-1:]
            break
        if line and not line.startswith("[[") and line != "Graph execution error:":
            readable.append(line)
    text = " ".join(" ".join(readable[:1] if from_tf else readable).split())
    if not text:
        text = type(err).__name__
    elif from_tf and _EXCEPTION_LINE.match(text):
        text = f"{text} ({type(err).__name__} in TensorFlow)"
    else:
        text = f"{type(err).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
