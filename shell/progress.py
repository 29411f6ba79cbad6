"""Progress of a run: a step bar and metrics table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import attrs

from core.task_roles import SummaryKind

log = logging.getLogger("tfexperiment")

__all__ = ["Progress", "RunSummary", "export_paths", "scalar_metrics"]


def scalar_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The scalar numeric metrics of an evaluation result, without ``global_step``.

    Args:
        result: What ``Estimator.evaluate`` returned.

    Returns:
        ``{name: value}`` sorted by name.
    """
    metrics: dict[str, float] = {}
    for name in sorted(result):
        value = result[name]
        if name == "global_step" or getattr(value, "ndim", 0) != 0:
            continue
        try:
            metrics[name] = float(value)
        except (TypeError, ValueError):
            continue
    return metrics


def format_metrics(metrics: Mapping[str, float], sep: str = "  ") -> str:
    """``name=value`` pairs with 4 significant digits."""
    return sep.join(f"{name}={value:.4g}" for name, value in metrics.items())


def export_paths(model_dir: str, since: float = 0.0) -> list[str]:
    """The newest SavedModel of each ``<model_dir>/export/<name>/`` written after ``since``.

    Args:
        model_dir: The model directory.
        since: A ``time.time()`` value; older exports are left out.

    Returns:
        Paths, sorted by export name.
    """
    root = os.path.join(model_dir, "export")
    if not os.path.isdir(root):
        return []
    found = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        exports = [
            os.path.join(folder, child)
            for child in os.listdir(folder)
            if os.path.isfile(os.path.join(folder, child, "saved_model.pb"))
        ]
        fresh = [path for path in exports if os.path.getmtime(path) >= since - 1]
        if fresh:
            found.append(max(fresh, key=os.path.getmtime))
    return found


@attrs.frozen(kw_only=True)
class RunSummary:
    """What a run did, for the closing lines.

    Attributes:
        schedule: The schedule that ran.
        start_step: Global step before the run.
        end_step: Global step after it.
        wall_secs: Wall time of the run.
        metrics: The last evaluation's scalar metrics (empty if none ran).
        eval_step: Global step of that evaluation.
        exports: SavedModel directories written by the run.
        model_dir: The model directory.
        evaluations: How many evaluations the run made.
        task: The task's name in a cluster (e.g. ``worker-1``), None locally.
    """

    schedule: str
    start_step: int
    end_step: int
    wall_secs: float
    metrics: dict[str, float]
    eval_step: int | None
    exports: tuple[str, ...]
    model_dir: str
    evaluations: int = 0
    task: str | None = None

    def lines_for(self, kind: SummaryKind) -> list[str]:
        """The summary a task of ``kind`` prints (`core.task_roles.summary_kind`).

        TRAINING: `lines`. WORKER: one line (it trained a share of the cluster's steps).
        EVALUATIONS: how many evaluations ran and the last one. NONE: nothing.
        """
        who = f" as {self.task}" if self.task else ""
        if kind is SummaryKind.NONE:
            return []
        if kind is SummaryKind.WORKER:
            return [
                f"done: {self.schedule}{who} in {self.wall_secs:.1f}s; the cluster's global "
                f"step is {self.end_step} (the chief's summary has its evaluation and exports)"
            ]
        if kind is SummaryKind.EVALUATIONS:
            plural = "" if self.evaluations == 1 else "s"
            out = [
                f"done: {self.schedule}{who} in {self.wall_secs:.1f}s; "
                f"{self.evaluations} evaluation{plural}"
            ]
            if self.metrics:
                out.append(
                    f"last evaluation at step {self.eval_step}: {format_metrics(self.metrics)}"
                )
            return out
        return self.lines()

    def lines(self) -> list[str]:
        """The summary as short lines of text."""
        trained = self.end_step - self.start_step
        rate = f", {trained / self.wall_secs:.0f} steps/s" if trained and self.wall_secs else ""
        out = [
            f"done: {self.schedule} in {self.wall_secs:.1f}s; global step {self.end_step}"
            f" ({trained} steps trained{rate})"
        ]
        if self.start_step and not trained:
            out.append(
                f"note: {self.model_dir} already held a checkpoint at step {self.start_step}, "
                "so nothing was left to train; use a new --output-dir to start over"
            )
        if self.metrics:
            out.append(f"final evaluation at step {self.eval_step}: {format_metrics(self.metrics)}")
        else:
            out.append("no evaluation ran")
        out.extend(f"export: {path}" for path in self.exports)
        out.append(
            f"model_dir: {self.model_dir}  (plot: tfexperiment report {self.model_dir}; "
            f"tensorboard --logdir {self.model_dir})"
        )
        return out


class Progress:
    """Shows a run's progress; attach it to an Experiment before running a schedule.

    On a terminal: a tqdm bar of global step / ``train_steps`` with steps/s, and a row
    of a metrics table after each evaluation. Elsewhere: one log line per evaluation.

    Args:
        stream: Where the bar and table go (default: stderr).
        tty: Force terminal mode on/off (default: ``stream.isatty()``).
    """

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(self.stream.isatty()) if tty is None else tty
        self.train_steps: int | None = None
        self.last_eval: dict[str, Any] | None = None
        self.evaluations = 0
        self._bar: Any = None
        self._columns: tuple[str, ...] | None = None

    def attach(self, experiment: Any) -> None:
        """Add the step hook (terminal only) and the evaluation listener to ``experiment``."""
        self.train_steps = experiment.train_steps
        if self.tty:
            experiment.extend_train_hooks([step_hook(self.at_step)])
        experiment.on_evaluation(self.on_evaluation)

    def write(self, line: str) -> None:
        """Print a line above the bar (or plainly when there is none)."""
        if self.tty:
            from tqdm import tqdm

            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def at_step(self, step: int) -> None:
        """Move the bar to global step ``step``."""
        if not self.tty:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.train_steps,
                initial=step,
                unit="step",
                desc="training",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )
        elif step > self._bar.n:
            self._bar.update(step - self._bar.n)

    def on_evaluation(self, result: Mapping[str, Any]) -> None:
        """Show one evaluation: a table row on a terminal, else one log line."""
        self.last_eval = dict(result)
        self.evaluations += 1
        metrics = scalar_metrics(result)
        step = result.get("global_step")
        if not self.tty:
            log.info(
                "evaluation at step %s: %s",
                step,
                format_metrics(metrics),
                extra={"tfx_progress": True},
            )
            return
        columns = tuple(metrics)
        widths = [max(8, len(name)) for name in ("step", *columns)]
        if columns != self._columns:
            self._columns = columns
            header = ("step", *columns)
            self.write("  ".join(name.rjust(w) for name, w in zip(header, widths)))
        cells = [str(step), *(f"{metrics[name]:.4g}" for name in columns)]
        self.write("  ".join(cell.rjust(w) for cell, w in zip(cells, widths)))

    def close(self) -> None:
        """Close the bar, leaving its last state on screen."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def step_hook(callback: Any) -> Any:
    """A ``SessionRunHook`` calling ``callback(global_step)`` after every training step.

    Args:
        callback: Called with the global step (an int).

    Returns:
        The hook.
    """
    from shell._tf import tf

    class _StepHook(tf.estimator.SessionRunHook):  # type: ignore[misc]
        """Reports the global step after session creation, each step, and at the end."""

        def begin(self) -> None:
            self._global_step = tf.compat.v1.train.get_global_step()

        def after_create_session(self, session: Any, coord: Any) -> None:
            callback(int(session.run(self._global_step)))

        def before_run(self, run_context: Any) -> Any:
            return tf.estimator.SessionRunArgs(self._global_step)

        def after_run(self, run_context: Any, run_values: Any) -> None:
            callback(int(run_values.results) + 1)

        def end(self, session: Any) -> None:
            callback(int(session.run(self._global_step)))

    return _StepHook()


def summarize(
    *,
    schedule: str,
    model_dir: str,
    start_step: int,
    end_step: int,
    started_wall: float,
    started: float,
    progress: Progress,
    task: str | None = None,
) -> RunSummary:
    """Collect the run's `RunSummary` (exports found on disk since ``started_wall``)."""
    last = progress.last_eval or {}
    eval_step = last.get("global_step")
    return RunSummary(
        schedule=schedule,
        start_step=start_step,
        end_step=end_step,
        wall_secs=time.monotonic() - started,
        metrics=scalar_metrics(last),
        eval_step=int(eval_step) if eval_step is not None else None,
        exports=tuple(export_paths(model_dir, since=started_wall)),
        model_dir=model_dir,
        evaluations=progress.evaluations,
        task=task,
    )
