"""Hyperparameter sweeps of an Experiment on Optuna: `tune` and ``tfexperiment tune``.

Every trial trains an Experiment into ``DIR/trial-<number>/`` (its sampled values beside
it in ``params.json``) with ``train_and_evaluate``; at each evaluation it reports the
objective to Optuna and ends training at once when the pruner says so (the checkpoint
is kept, the trial is marked pruned). A trial that raises is recorded as failed with a
one-line reason (user attribute ``fail_reason``) and the study goes on. Ctrl-C ends the
running trials (their checkpoints kept; marked ``interrupted``, which does not count
toward the study's total), so a rerun continues the study.

Processes sharing the study's storage (``n_jobs``, other terminals or machines) share
the study; ``n_trials`` is its total across all of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import tenacity

with contextlib.suppress(ModuleNotFoundError):  # no `tune` extra: `require_optuna` says so
    import optuna

from core import search as cs
from core._validate import check, non_empty_str, one_of, positive_int
from core.errors import ConfigError, ConfigTypeError, FieldError
from core.retry import RetryPolicy, wait_before_attempt
from shell.exits import JobExit
from shell.progress import export_paths
from shell.tune_storage import (
    INSTALL_HINT,
    default_storage,
    make_pruner,
    make_sampler,
    one_line,
    open_storage,
    require_optuna,
    trial_states,
)

log = logging.getLogger("tfexperiment")

#: How long a worker process gets to end its trial cleanly after Ctrl-C.
STOP_GRACE_SECS = 60.0

ExperimentFn = Callable[[Any, str], Any]


# --------------------------------------------------------------------------- one study
@attrs.frozen(kw_only=True)
class Job:
    """What each process of a sweep needs (pickled to ``n_jobs`` worker processes).

    Attributes:
        experiment_fn: ``experiment_fn(trial, output_dir) -> Experiment``.
        n_trials: The study's total number of trials.
        storage: The storage URL or journal path (None: `default_storage`).
        study_name: The study.
        metric: The evaluation metric to optimize.
        direction: ``minimize`` or ``maximize``.
        output_dir: Where trials, the default storage and the report go.
        pruner: A `core.search.Choice` or an Optuna pruner.
        sampler: A `core.search.Choice` or an Optuna sampler.
        timeout: Start no trial after this many seconds (None: no limit).
    """

    experiment_fn: ExperimentFn
    n_trials: int
    storage: str | None
    study_name: str
    metric: str
    direction: str
    output_dir: str
    pruner: Any = attrs.field(factory=lambda: cs.Choice(name="median"))
    sampler: Any = attrs.field(factory=lambda: cs.Choice(name="tpe"))
    timeout: float | None = None


def load_study(job: Job, seed_offset: tuple[int, int] = (0, 0)) -> Any:
    """Create the study or join it (``load_if_exists``), retrying a busy database.

    Two processes starting together on a new SQLite file race to create its tables;
    the loser retries (`core.retry` backoff).

    Raises:
        ConfigError: The existing study optimizes in the other direction.
    """
    policy = RetryPolicy(attempts=6)
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=lambda state: wait_before_attempt(policy, state.attempt_number + 1),
        retry=tenacity.retry_if_exception(lambda err: not isinstance(err, FieldError)),
        reraise=True,
    )
    study = retrying(_create_study, job, seed_offset)
    existing = study.direction.name.lower()
    if existing != job.direction:
        raise ConfigError(
            "objective.direction", job.direction, f"study {job.study_name!r} {existing}s"
        )
    study.set_user_attr("metric", job.metric)
    return study


def _create_study(job: Job, seed_offset: tuple[int, int]) -> Any:
    direction: Any = job.direction  # "minimize" or "maximize", checked by `tune`
    return optuna.create_study(
        storage=open_storage(job.storage, job.output_dir),
        study_name=job.study_name,
        direction=direction,
        sampler=make_sampler(job.sampler, seed_offset),
        pruner=make_pruner(job.pruner),
        load_if_exists=True,
    )


class _Reporter:
    """An Experiment evaluation listener: reports the objective, prunes, shows progress."""

    def __init__(self, trial: Any, job: Job, train_steps: int | None) -> None:
        self.trial, self.job, self.train_steps = trial, job, train_steps
        self.value: float | None = None

    def __call__(self, result: Mapping[str, Any]) -> None:
        metric = self.job.metric
        if metric not in result:
            shown = ", ".join(sorted(k for k in result if k != "global_step"))
            raise ConfigError("objective.metric", metric, f"is not an eval metric ({shown})")
        step = int(result.get("global_step", 0))
        self.value = float(result[metric])
        self.trial.report(self.value, step)
        log.info("trial #%d step %d: %s=%.4g", self.trial.number, step, metric, self.value)
        if cs.prune_now(self.trial.should_prune(), step, self.train_steps):
            self.trial.set_user_attr("pruned_at_step", step)
            raise optuna.TrialPruned(f"pruned at step {step} ({metric}={self.value:.4g})")


class Objective:
    """The Optuna objective of a sweep: one trial = one Experiment in its own directory."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, trial: Any) -> float:
        """Build and train the trial's Experiment; return the final evaluation's metric."""
        job = self.job
        trial_dir = os.path.join(job.output_dir, f"trial-{trial.number}")
        os.makedirs(trial_dir, exist_ok=True)
        trial.set_user_attr("model_dir", os.path.abspath(trial_dir))
        n = len([s for s in trial_states(trial.study) if cs.counts_toward_total(*s)])
        started = time.time()
        try:
            experiment = job.experiment_fn(trial, trial_dir)
            params = trial.user_attrs.get("config_params", trial.params)
            with open(os.path.join(trial_dir, "params.json"), "w", encoding="utf-8") as handle:
                json.dump(params, handle, indent=2, sort_keys=True)
            shown = " ".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))
            log.info("trial %d/%d (#%d) started: %s", n, job.n_trials, trial.number, shown)
            reporter = _Reporter(trial, job, getattr(experiment, "train_steps", None))
            experiment.on_evaluation(reporter)
            result, _exports = experiment.train_and_evaluate()
            if result is None or job.metric not in result:
                raise ConfigError("objective.metric", job.metric, "no evaluation reported it")
            value = float(result[job.metric])
            _set_export(trial, trial_dir, started)
        except optuna.TrialPruned as err:
            log.info("trial #%d pruned: %s", trial.number, err)
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            log.info("trial #%d interrupted (checkpoints kept in %s)", trial.number, trial_dir)
            raise
        except JobExit as err:
            if err.signal_name is None:
                raise
            # Ctrl-C or SIGTERM while training: the trial saved its step (shell/job.py).
            trial.set_user_attr("interrupted", True)
            log.info("trial #%d interrupted (checkpoints kept in %s)", trial.number, trial_dir)
            raise KeyboardInterrupt from err
        except Exception as err:
            reason = one_line(err)
            trial.set_user_attr("fail_reason", reason)
            log.info("trial #%d failed: %s", trial.number, reason)
            if isinstance(err, FieldError) and err.field == "objective.metric":
                trial.study.stop()  # every trial would fail alike
            raise
        best = _best(trial.study, value, trial.number)
        log.info(
            "trial #%d done in %.1fs: %s=%.4g; best so far #%d %s=%.4g",
            trial.number,
            time.time() - started,
            job.metric,
            value,
            best[0],
            job.metric,
            best[1],
        )
        return value


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _best(study: Any, value: float, number: int) -> tuple[int, float]:
    """The best (number, value) among the study's complete trials and this one (ties: the
    earlier trial, as ``study.best_trial``)."""
    objective = cs.Objective(direction=study.direction.name.lower())
    best: tuple[int, float] | None = None
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.value is not None and (best is None or objective.better(t.value, best[1])):
            best = (t.number, t.value)
    return (number, value) if best is None or objective.better(value, best[1]) else best


def _set_export(trial: Any, trial_dir: str, since: float) -> None:
    paths = export_paths(trial_dir, since=since)
    if paths:
        trial.set_user_attr("export", os.path.abspath(paths[0]))


class _StopAtTotal:
    """An optimize callback: stop this process once the study has its total of trials."""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def __call__(self, study: Any, _trial: Any) -> None:
        if cs.trials_left(self.n_trials, trial_states(study)) == 0:
            study.stop()


def run_trials(job: Job, worker: int = 0, trials_before: int = 0) -> None:
    """Run trials of the study in this process until it has ``job.n_trials``.

    Args:
        job: The sweep.
        worker: This process's index among the sweep's processes (sampler seed).
        trials_before: Trials the study had when the sweep started (sampler seed).
    """
    study = load_study(job, (worker, trials_before))
    left = cs.trials_left(job.n_trials, trial_states(study))
    if left:
        study.optimize(
            Objective(job),
            n_trials=left,
            timeout=job.timeout,
            catch=(Exception,),
            callbacks=[_StopAtTotal(job.n_trials)],
            gc_after_trial=True,
        )


def _worker_main(job: Job, worker: int, trials_before: int, verbose: bool) -> None:
    """Entry point of a worker process: own process group, quiet logs, run trials."""
    os.setpgrp()  # Ctrl-C reaches the parent only; it forwards one SIGINT by PID
    _quiet(verbose, prefix=f"[worker {worker}] ")
    try:
        run_trials(job, worker, trials_before)
    except KeyboardInterrupt:
        sys.exit(130)


def _quiet(verbose: bool, prefix: str | None = None) -> None:
    """Optuna's own INFO lines off unless verbose; TF quiet. With ``prefix`` (a worker
    process), also short ``HH:MM:SS <prefix>message`` lines for our logger on stderr."""
    from shell import _tf  # TensorFlow loads here, after the command line is parsed

    if prefix is not None and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {prefix}%(message)s", datefmt="%H:%M:%S")
        )
        handler.addFilter(_drop_experiment_eval_lines)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    optuna.logging.set_verbosity(logging.INFO if verbose else logging.ERROR)
    if verbose:
        _tf.verbose()
    else:
        _tf.quiet()


def _drop_experiment_eval_lines(record: logging.LogRecord) -> bool:
    """Each trial logs its evaluations itself; drop the Experiment's own line for them."""
    return not str(record.msg).startswith("evaluation at step")


def _run_processes(job: Job, n_jobs: int, trials_before: int, verbose: bool) -> None:
    """Run trials here and in ``n_jobs - 1`` worker processes (this one has TensorFlow
    loaded already); Ctrl-C ends the workers by PID, each cleanly."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that imported TF
    procs = [
        ctx.Process(target=_worker_main, args=(job, i, trials_before, verbose), daemon=False)
        for i in range(1, n_jobs)
    ]
    for proc in procs:
        proc.start()
    try:
        run_trials(job, 0, trials_before)
        while any(proc.is_alive() for proc in procs):
            for proc in procs:
                proc.join(timeout=0.5)
    except BaseException:  # Ctrl-C, or this process failed: never leave workers behind
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECS
        for proc in procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)
        raise
    failed = [proc.exitcode for proc in procs if proc.exitcode not in (0, None)]
    if failed:
        log.info("worker processes ended with exit codes %s", failed)


def tune(
    experiment_fn: ExperimentFn,
    *,
    n_trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    metric: str = "loss",
    direction: str = "minimize",
    n_jobs: int = 1,
    output_dir: str = "runs/tune",
    pruner: Any = None,
    sampler: Any = None,
    timeout: float | None = None,
    verbose: bool = False,
    baseline: Mapping[str, Any] | None = None,
) -> Any:
    """Sweep hyperparameters: run trials of ``experiment_fn`` until the study has ``n_trials``.

    Args:
        experiment_fn: ``experiment_fn(trial, output_dir) -> Experiment``; it samples
            with ``trial.suggest_*`` and builds the Experiment in ``output_dir``
            (``DIR/trial-<number>``). Must be picklable (module level) when ``n_jobs > 1``.
        n_trials: The study's total number of trials (across every process sharing it).
        storage: An Optuna storage URL or a journal file path (``.log``/``.journal``);
            default ``sqlite:///<output_dir>/study.db``.
        study_name: The study (default ``tfexperiment``); joined if it exists.
        metric: The evaluation metric the objective is.
        direction: ``minimize`` or ``maximize``.
        n_jobs: Trials at once, each in its own process.
        output_dir: The sweep's directory.
        pruner: An Optuna pruner or a `core.search.Choice` (default: median).
        sampler: An Optuna sampler or a `core.search.Choice` (default: TPE).
        timeout: Start no trial after this many seconds.
        verbose: Show Optuna's and TensorFlow's own logs.
        baseline: Parameters (as ``trial.params`` stores them) to run as the study's
            first trial, e.g. the config's own values; ignored once the study has trials.

    Returns:
        The ``optuna.Study`` (loaded from the storage, with every process's trials).

    Raises:
        ConfigError: Optuna is missing or an argument is invalid.
        KeyboardInterrupt: Ctrl-C (running trials are marked interrupted).
    """
    require_optuna()
    check(positive_int, "n_trials", n_trials)
    check(positive_int, "n_jobs", n_jobs)
    check(one_of(cs.DIRECTIONS), "direction", direction)
    check(non_empty_str, "metric", metric)
    if not callable(experiment_fn):
        raise ConfigTypeError("experiment_fn", experiment_fn, "must be callable")
    job = Job(
        experiment_fn=experiment_fn,
        n_trials=n_trials,
        storage=storage,
        study_name=study_name or "tfexperiment",
        metric=metric,
        direction=direction,
        output_dir=os.path.abspath(output_dir),
        pruner=cs.Choice(name="median") if pruner is None else pruner,
        sampler=cs.Choice(name="tpe") if sampler is None else sampler,
        timeout=timeout,
    )
    os.makedirs(job.output_dir, exist_ok=True)
    _quiet(verbose)
    study = load_study(job)  # creates the storage's tables once, before any worker
    before = len(study.get_trials(deepcopy=False))
    if baseline and not before:
        study.enqueue_trial(dict(baseline), skip_if_exists=True)
    left = cs.trials_left(n_trials, trial_states(study))
    log.info(
        "study %r: %d trials so far, %d to run (total %d) in %s",
        job.study_name,
        before,
        left,
        n_trials,
        job.output_dir,
    )
    if left and n_jobs == 1:
        run_trials(job, 0, before)
    elif left:
        _run_processes(job, min(n_jobs, left), before, verbose)
    return load_study(job)


__all__ = [
    "INSTALL_HINT",
    "Job",
    "Objective",
    "default_storage",
    "load_study",
    "open_storage",
    "require_optuna",
    "run_trials",
    "trial_states",
    "tune",
]
