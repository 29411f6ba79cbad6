"""The `tfexperiment` command line: run, schedules, report and cluster.

Exit codes: 0 done; 2 bad usage, config, module or TF_CONFIG (one line on stderr); 1 the
run failed (a short message; ``--verbose`` adds the traceback). TensorFlow is imported
only after the arguments are parsed, so ``--verbose`` can still turn its C++ logs on.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from core.cluster_plan import check_cluster_size
from core.errors import ConfigError, ConfigTypeError, FieldError
from core.schedule import Schedule, check_schedule_name, default_schedule, parse_schedule
from core.task_roles import eval_cadence_note, summary_kind
from core.tf_config import TFConfig
from shell.cli_checks import (
    PROG,
    UsageError,
    check_experiment_choice,
    config_model_dir,
    failure_line,
    import_experiment_fn,
    in_file,
    load_config_file,
)
from shell.exits import JobExit
from shell.launcher import launch_local_cluster
from shell.tune_cli import add_tune_parser

log = logging.getLogger("tfexperiment")

SCHEDULE_HELP: dict[Schedule, str] = {
    Schedule.TRAIN: "train to train_steps (workers wait their start delay); default on a worker",
    Schedule.EVALUATE: "evaluate the latest checkpoint once",
    Schedule.CONTINUOUS_EVAL: "evaluate each new checkpoint until training ends; "
    "default on an evaluator",
    Schedule.CONTINUOUS_EVAL_ON_TRAIN_DATA: "continuous_eval on the training data "
    "(results in eval_train/)",
    Schedule.TRAIN_AND_EVALUATE: "train, evaluating new checkpoints every eval_every_n_steps, "
    "then export; default locally and on chief/master",
    Schedule.CONTINUOUS_TRAIN_AND_EVALUATE: "alternate train_steps_per_iteration steps of "
    "training with an evaluation and export",
    Schedule.RUN_STD_SERVER: "start this task's TensorFlow server and serve until training "
    "ends; default on a ps",
    Schedule.TEST: "smoke test: train 1 step, evaluate 1 step, export",
}

# An ArgumentParser.error() raises this instead of exiting, so main() can return 2.
_HANDLER_MARK = "_tfexperiment_cli"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and do not exit the process."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _add_verbose(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="show TensorFlow's own logs, and tracebacks on failure",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tfexperiment``."""
    parser = _Parser(
        prog=PROG,
        description="Run TensorFlow Estimator experiments locally and on a cluster.",
    )
    _add_verbose(parser, False)
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run an experiment (MODULE:EXPERIMENT_FN or --config FILE)",
        description="Build an Experiment and run a schedule of it. Without --schedule the "
        "task's default is used (TF_CONFIG decides on a cluster).",
    )
    _add_verbose(run, argparse.SUPPRESS)
    run.add_argument(
        "experiment_fn",
        nargs="?",
        metavar="MODULE:EXPERIMENT_FN",
        help="a function taking output_dir and returning an Experiment (learn_runner style)",
    )
    run.add_argument("-c", "--config", metavar="FILE", help="a YAML/JSON experiment config")
    run.add_argument(
        "-o",
        "--output-dir",
        metavar="DIR",
        help="the model directory (required with MODULE:EXPERIMENT_FN; overrides the "
        "config's estimator.run_config.model_dir)",
    )
    run.add_argument("-s", "--schedule", help="the schedule to run (see: tfexperiment schedules)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train_steps=50 (repeatable; with --config)",
    )
    run.set_defaults(handler=_run)

    schedules = sub.add_parser("schedules", help="list the schedules, one line each")
    _add_verbose(schedules, argparse.SUPPRESS)
    schedules.set_defaults(handler=_schedules)

    report = sub.add_parser(
        "report",
        help="plot training loss and evaluation metrics of a model_dir into a PNG",
        description="Read the event files of DIR (training) and DIR/eval*/ (evaluations) and "
        "plot every scalar against global step.",
    )
    _add_verbose(report, argparse.SUPPRESS)
    report.add_argument("model_dir", metavar="DIR", help="the model directory of a run")
    report.add_argument("--out", metavar="FILE", help="the PNG to write (default: DIR/report.png)")
    report.set_defaults(handler=_report)

    add_cluster_parser(sub)
    add_tune_parser(sub)
    return parser


def _run_cluster_command(args: argparse.Namespace) -> int:
    """The ``cluster`` subcommand: check, launch, stream, and turn the result into an exit code.

    Everything that can be checked before a process starts is: the task counts, the
    timeout, and the experiment (the module imports and defines the function, or the
    config file is valid), so bad input exits 2 once instead of in every task.
    """
    check_cluster_size(
        ps=args.ps,
        workers=args.workers,
        evaluator=args.evaluator,
        cores=os.cpu_count(),
        timeout_secs=args.timeout,
        prefix="--",
    )
    check_experiment_choice(args, "cluster")
    output_dir = args.output_dir
    if args.config is not None:
        config = load_config_file(args.config, args.overrides)
        output_dir = config_model_dir(config, output_dir, "cluster")
    else:
        if not output_dir:
            raise UsageError(
                f"{PROG} cluster: error: --output-dir DIR is required with MODULE:EXPERIMENT_FN"
            )
        # the module most likely imports TensorFlow: keep its C++ logs quiet, as a task does
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import_experiment_fn(args.experiment_fn)
    try:
        result = launch_local_cluster(
            args.experiment_fn,
            output_dir,
            ps=args.ps,
            workers=args.workers,
            evaluator=args.evaluator,
            chief=not args.master,
            verbose=bool(getattr(args, "verbose", False)),
            timeout_secs=args.timeout,
            config=args.config,
            overrides=args.overrides,
        )
    except ConfigError as err:
        print(f"tfexperiment cluster: error: {err}", file=sys.stderr)
        return 2
    out: TextIO = sys.stdout if result.ok else sys.stderr
    if result.ok:
        print(f"cluster finished in {result.wall_secs:.1f}s: every task exited 0", file=out)
    else:
        print(f"cluster failed: {result.reason}", file=out)
    return result.returncode


def add_cluster_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``cluster`` subcommand on an argparse ``subparsers`` object.

    The handler is set with ``set_defaults(func=...)``: called with the parsed
    namespace it returns the exit code (0 every task exited 0, 1 a task failed or the
    run timed out, 2 bad usage, 130 interrupted).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cluster",
        help="run a whole TensorFlow cluster locally, one process per task",
        description=(
            "Run one process per task (ps, chief, workers, evaluator) on 127.0.0.1 with "
            "free ports and its own TF_CONFIG; stream every task's output with a task "
            "prefix; end every process when one fails or on Ctrl-C."
        ),
    )
    parser.add_argument(
        "experiment_fn",
        nargs="?",
        metavar="MODULE:EXPERIMENT_FN",
        help="function building the Experiment, e.g. examples.quickstart:experiment_fn",
    )
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="a YAML/JSON experiment config (instead)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key in every task (repeatable; with --config)",
    )
    parser.add_argument(
        "-o",
        "--output-dir",
        help="every task's output directory (with --config: default its model_dir)",
    )
    parser.add_argument("--ps", type=int, default=1, help="parameter servers (default 1)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="workers besides the chief (default 2; at most 4 tasks per CPU core in all, "
        "between 8 and 32)",
    )
    parser.add_argument("--evaluator", action="store_true", help="also run an evaluator")
    parser.add_argument(
        "--master", action="store_true", help="name the chief's job 'master' (legacy TF 1)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECS",
        help="end every task after this many seconds (> 0; exit 1)",
    )
    parser.set_defaults(func=_run_cluster_command, handler=_run_cluster_command)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tfexperiment")
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- logging
class _Handler(logging.Handler):
    """Writes log records through tqdm (so a progress bar is not torn) or plainly."""

    def __init__(self, stream: Any, tty: bool) -> None:
        super().__init__()
        self.stream = stream
        self.tty = tty

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            if self.tty:
                from tqdm import tqdm

                tqdm.write(line, file=self.stream)
            else:
                print(line, file=self.stream, flush=True)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _drop_experiment_eval_lines(record: logging.LogRecord) -> bool:
    """Progress shows every evaluation itself; drop the Experiment's own line for it."""
    if getattr(record, "tfx_progress", False):
        return True
    return not str(record.msg).startswith("evaluation at step")


def _setup_logging(verbose: bool, stream: Any, tty: bool) -> _Handler:
    """Short ``HH:MM:SS message`` lines for our logger; TF's own logs per ``verbose``."""
    for old in [h for h in log.handlers if getattr(h, _HANDLER_MARK, False)]:
        log.removeHandler(old)
    handler = _Handler(stream, tty)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    handler.addFilter(_drop_experiment_eval_lines)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    if verbose:
        if "tensorflow" not in sys.modules:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        for module in (r"tensorflow.*", r"tensorflow_estimator.*", r"keras.*", r"absl.*"):
            warnings.filterwarnings("ignore", module=module)
        logging.getLogger("absl").setLevel(logging.ERROR)
    return handler


def _tf_logging(verbose: bool) -> None:
    """Import TensorFlow (quietly) and set its Python log level."""
    from shell import _tf

    if verbose:
        _tf.verbose()
    else:
        _tf.quiet()


# --------------------------------------------------------------------------- commands
def _schedules(args: argparse.Namespace) -> int:
    width = max(len(s.value) for s in Schedule)
    for schedule in Schedule:
        print(f"{schedule.value.ljust(width)}  {SCHEDULE_HELP[schedule]}")
    return 0


def _report(args: argparse.Namespace) -> int:
    if args.out is not None and not args.out.lower().endswith(".png"):
        raise ConfigError("--out", args.out, "must name a .png file (the report is a PNG image)")
    from shell.report import write_report

    print(write_report(args.model_dir, args.out))
    return 0


def _call_experiment_fn(fn: Callable[..., Any], output_dir: str) -> Any:
    """Call a learn_runner-style builder as `run_experiment` would."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(output_dir)
    return fn(output_dir=output_dir) if "output_dir" in params else fn(output_dir)


def _run(args: argparse.Namespace) -> int:
    check_experiment_choice(args, "run")
    if args.experiment_fn is not None and not args.output_dir:
        raise UsageError(
            f"{PROG} run: error: --output-dir DIR is required with MODULE:EXPERIMENT_FN"
        )
    if args.schedule is not None:
        check_schedule_name(args.schedule)
    # TF_CONFIG and a config file are checked before TensorFlow is imported (seconds) and
    # before the experiment is built: TF's RunConfig would fail on a bad TF_CONFIG inside
    # experiment_fn with a traceback instead of one line naming the field.
    tf_config = TFConfig.from_json(os.environ.get("TF_CONFIG"))
    schedule = parse_schedule(args.schedule) if args.schedule else default_schedule(tf_config)
    record = load_config_file(args.config, args.overrides) if args.config is not None else None
    if record is not None:
        config_model_dir(record, args.output_dir, "run")
    verbose = bool(getattr(args, "verbose", False))
    _tf_logging(verbose)

    from shell import disk
    from shell.config import create_experiment
    from shell.experiment import Experiment
    from shell.progress import Progress, summarize
    from shell.runner import run_experiment

    experiment: Any
    if record is not None:
        try:
            experiment = create_experiment(record, args.output_dir)
        except FieldError as err:
            raise in_file(err, args.config) from None
    else:
        user_fn = import_experiment_fn(args.experiment_fn)
        experiment = _call_experiment_fn(user_fn, args.output_dir)
        if not isinstance(experiment, Experiment):
            raise ConfigTypeError(
                "experiment_fn",
                args.experiment_fn,
                f"must return an Experiment, returned {type(experiment).__name__}",
            )
    if schedule is Schedule.TRAIN_AND_EVALUATE:
        run_config = experiment.estimator.config
        note = eval_cadence_note(
            eval_every_n_steps=experiment.settings.eval_every_n_steps,
            save_checkpoints_steps=run_config.save_checkpoints_steps,
            save_checkpoints_secs=run_config.save_checkpoints_secs,
        )
        if note:
            log.info("note: %s", note)
    progress = Progress(stream=sys.stderr)
    progress.attach(experiment)
    model_dir = experiment.model_dir
    started, started_wall = time.monotonic(), time.time()
    latest = disk.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
    start_step = latest.step if latest else 0
    try:
        run_experiment(lambda _dir: experiment, args.output_dir or model_dir, args.schedule)
    finally:
        progress.close()
    model_dir = experiment.model_dir
    end = disk.latest_checkpoint(model_dir)
    summary = summarize(
        schedule=schedule.value,
        model_dir=model_dir,
        start_step=start_step,
        end_step=end.step if end else start_step,
        started_wall=started_wall,
        started=started,
        progress=progress,
        task=tf_config.task_name,
    )
    for line in summary.lines_for(summary_kind(tf_config, schedule)):
        print(line, flush=True)
    return 0


# --------------------------------------------------------------------------- main
def _one_line(err: BaseException, limit: int = 400) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tfexperiment`` command line.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 done, 1 the run failed, 2 bad usage or configuration.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    verbose = bool(getattr(args, "verbose", False))
    propagate = log.propagate
    handler = _setup_logging(verbose, sys.stderr, sys.stderr.isatty())
    try:
        handler_fn = getattr(args, "handler", None) or args.func
        return int(handler_fn(args))
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return 2
    except FieldError as err:
        if verbose:
            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except JobExit as err:  # the job failed, or a signal ended this task after saving
        print(f"{PROG}: {err.line}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if verbose:
            traceback.print_exc()
            print(f"{PROG}: the run failed: {failure_line(err)}", file=sys.stderr)
        else:
            print(
                f"{PROG}: the run failed: {failure_line(err)}\n"
                f"{PROG}: run again with --verbose for the traceback and TensorFlow's logs",
                file=sys.stderr,
            )
        return 1
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
        sys.stdout.flush()
