"""The six workloads: which child sides they run, their figure, targets and checks."""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harness import Params, Run

# Full-run sizes from the issue; --quick shrinks them to a smoke run.
TRAIN_STEPS = 2000
SAVE_STEPS = 200
EVAL_STEPS = 10
QUICK_TRAIN_STEPS = 400
# W6 (MirroredStrategy over 2 logical CPUs): the 400 steps, evaluated every 100.
W6_STEPS, W6_QUICK_STEPS, W6_SAVE_STEPS = 400, 200, 100


class Unit(enum.Enum):
    """How a workload's figure reads."""

    SECONDS = "s"
    PER_SECOND = "/s"


class Goal(enum.Enum):
    """What a target bounds."""

    RATIO_MAX = "ours/ref <="
    MAX = "ours <="
    MIN = "ours >="
    RSS_RATIO_MAX = "RSS ours/ref <="
    BASELINE_RATIO_MAX = "ours/baseline <="


@dataclass(frozen=True)
class Target:
    """One target of a workload, e.g. ratio ≤ 0.80."""

    goal: Goal
    value: float

    def label(self, unit: Unit) -> str:
        """Short text for the table, e.g. ``≤0.80×`` or ``≥100,000/s``."""
        if self.goal is Goal.RATIO_MAX:
            return f"≤{self.value:.2f}×"
        if self.goal is Goal.RSS_RATIO_MAX:
            return f"RSS ≤{self.value:.2f}×"
        if self.goal is Goal.BASELINE_RATIO_MAX:
            return f"≤{self.value:.2f}× train alone"
        sign = "≤" if self.goal is Goal.MAX else "≥"
        return f"{sign}{format_figure(self.value, unit)}"


@dataclass
class Summary:
    """The medians of one workload and whether its targets are met."""

    ours: float
    reference: float | None
    ours_rss_mb: float
    reference_rss_mb: float | None
    ours_cpu: float | None = None
    reference_cpu: float | None = None
    paired_ratio: float | None = None
    best_ratio: float | None = None
    baseline: float | None = None
    met: dict[str, bool] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """ours / reference, or None without a reference."""
        if self.reference is None or self.reference == 0 or math.isnan(self.reference):
            return None
        return self.ours / self.reference

    @property
    def cpu_ratio(self) -> float | None:
        """CPU seconds ours / reference (medians), where both sides report them."""
        if self.ours_cpu is None or not self.reference_cpu:
            return None
        return self.ours_cpu / self.reference_cpu

    @property
    def rss_ratio(self) -> float | None:
        """Peak RSS ours / reference, or None without a reference."""
        if not self.reference_rss_mb:
            return None
        return self.ours_rss_mb / self.reference_rss_mb


def format_figure(value: float, unit: Unit) -> str:
    """``2.18 s``, ``0.031 s`` or ``254,486/s``."""
    if math.isnan(value):
        return "n/a"
    if unit is Unit.PER_SECOND:
        return f"{value:,.0f}/s"
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def median_of(key: str) -> Callable[[Sequence[Run]], float]:
    """The figure: the median of ``result[key]`` over the runs."""

    def figure(runs: Sequence[Run]) -> float:
        return statistics.median(float(run.result[key]) for run in runs)

    return figure


def pooled_median(key: str) -> Callable[[Sequence[Run]], float]:
    """The figure: the median of all values of the lists ``result[key]``, pooled."""

    def figure(runs: Sequence[Run]) -> float:
        values = [float(v) for run in runs for v in run.result[key]]
        return statistics.median(values) if values else math.nan

    return figure


Check = Callable[[Sequence[Run], Sequence[Run]], list[str]]


@dataclass(frozen=True)
class Workload:
    """One benchmark: our side, the reference side, the figure and the targets.

    Attributes:
        key: ``W1``... ``W6``.
        title: What is measured.
        ours: The child side measuring tfexperiment.
        reference: The child side measuring the reference, or None.
        params: The parameters of both sides.
        figure: Reduces one side's runs to its figure (a median).
        unit: The figure's unit.
        targets: What the figures must meet.
        checks: Correctness checks (asserted in every mode): each returns its failures.
        baseline: A third side run in the same alternation to explain the figures (W1:
            training alone), or None.
    """

    key: str
    title: str
    ours: str
    reference: str | None
    params: Params
    figure: Callable[[Sequence[Run]], float]
    unit: Unit
    targets: tuple[Target, ...] = ()
    checks: tuple[Check, ...] = ()
    baseline: str | None = None

    @property
    def sides(self) -> list[str]:
        """The child sides of one repeat, in the order they run: ours, reference, baseline."""
        return [side for side in (self.ours, self.reference, self.baseline) if side]


def paired_ratio(workload: Workload, ours: Sequence[Run], reference: Sequence[Run]) -> float | None:
    """The median over repeats of ours/reference within each repeat.

    The two runs of a repeat are adjacent in time, so a change in the load the machine
    carries from other processes affects both; this ratio is steadier than the ratio of
    medians when that load varies.
    """
    ratios = []
    for mine, theirs in zip(ours, reference):
        a, b = workload.figure([mine]), workload.figure([theirs])
        if b and not (math.isnan(a) or math.isnan(b)):
            ratios.append(a / b)
    return statistics.median(ratios) if ratios else None


def best_ratio(ours: Sequence[Run], reference: Sequence[Run]) -> float | None:
    """Fastest ours / fastest reference (``seconds``; ``timeit``'s best-of-N): the runs
    least disturbed by other processes. None without ``seconds`` on both sides."""
    if not ours or not reference:
        return None
    if any("seconds" not in run.result for run in [*ours, *reference]):
        return None
    best_reference = min(float(run.result["seconds"]) for run in reference)
    if not best_reference:
        return None
    return min(float(run.result["seconds"]) for run in ours) / best_reference


def summarize(
    workload: Workload,
    ours: Sequence[Run],
    reference: Sequence[Run],
    baseline: Sequence[Run] = (),
) -> Summary:
    """Medians, peak RSS and whether each target is met.

    Args:
        workload: The workload.
        ours: Its runs of our side.
        reference: Its runs of the reference side (empty without one).
        baseline: Its runs of the baseline side (empty without one).

    Returns:
        The summary.
    """

    def rss_mb(runs: Sequence[Run]) -> float:
        return statistics.median(float(run.result["peak_rss_kb"]) for run in runs) / 1024

    def cpu(runs: Sequence[Run]) -> float | None:
        if not runs or any("cpu_seconds" not in run.result for run in runs):
            return None
        return statistics.median(float(run.result["cpu_seconds"]) for run in runs)

    summary = Summary(
        ours=workload.figure(ours),
        reference=workload.figure(reference) if reference else None,
        ours_rss_mb=rss_mb(ours),
        reference_rss_mb=rss_mb(reference) if reference else None,
        ours_cpu=cpu(ours),
        reference_cpu=cpu(reference),
        paired_ratio=paired_ratio(workload, ours, reference),
        best_ratio=best_ratio(ours, reference),
        baseline=workload.figure(baseline) if baseline else None,
    )
    for target in workload.targets:
        label = target.label(workload.unit)
        if target.goal is Goal.RATIO_MAX:
            ratio = summary.ratio
            summary.met[label] = ratio is not None and ratio <= target.value
        elif target.goal is Goal.BASELINE_RATIO_MAX:
            base = summary.baseline
            # Without the baseline side (--quick) there is nothing to compare: not judged.
            if base:
                summary.met[label] = summary.ours <= target.value * base
        elif target.goal is Goal.RSS_RATIO_MAX:
            rss_ratio = summary.rss_ratio
            summary.met[label] = rss_ratio is not None and rss_ratio <= target.value
        elif target.goal is Goal.MAX:
            summary.met[label] = summary.ours <= target.value
        else:
            summary.met[label] = summary.ours >= target.value
    return summary


# ------------------------------------------------------------------------------ checks
def _close(a: dict[str, float], b: dict[str, float]) -> bool:
    import numpy as np

    keys = sorted(a)
    return keys == sorted(b) and bool(np.allclose([a[k] for k in keys], [b[k] for k in keys]))


def _same_metrics(a: dict[str, float], b: dict[str, float]) -> bool:
    """The metrics both evaluations report (``loss`` among them) agree; ``global_step`` aside."""
    keep = (set(a) & set(b)) - {"global_step"}
    return "loss" in keep and _close({k: a[k] for k in keep}, {k: b[k] for k in keep})


def same_evaluations(expected_steps: list[int]) -> Check:
    """Every run of both sides evaluated exactly ``expected_steps`` and got the same metrics.

    Our side's steps come from ``Experiment.on_evaluation``; the reference's from its
    evaluation event files. Our event files must list the same steps as our listener.
    Metrics (every evaluation's loss and MAE, and the final result) must agree with
    ``numpy.allclose`` across all runs of both sides.
    """

    def check(ours: Sequence[Run], reference: Sequence[Run]) -> list[str]:
        failures: list[str] = []
        runs = [*ours, *reference]
        for run in runs:
            steps = run.result["eval_steps"]
            if steps != expected_steps:
                failures.append(f"{run.side} evaluated steps {steps}, expected {expected_steps}")
            events = run.result.get("event_steps")
            if events is not None and events != steps:
                failures.append(f"{run.side}: event files list steps {events} != {steps}")
        first = runs[0]
        for run in runs[1:]:
            if not _close(first.result["final"], run.result["final"]):
                failures.append(
                    f"final metrics differ: {first.side} {first.result['final']} "
                    f"vs {run.side} {run.result['final']}"
                )
            mine, theirs = first.result.get("evaluations"), run.result.get("evaluations")
            if mine is not None and theirs is not None:
                pairs = list(zip(mine, theirs))
                if len(mine) != len(theirs) or not all(_same_metrics(a, b) for a, b in pairs):
                    failures.append(f"per-evaluation metrics differ: {first.side} vs {run.side}")
        return failures

    return check


def evaluated_something(ours: Sequence[Run], reference: Sequence[Run]) -> list[str]:
    """W3: each run evaluated at least one checkpoint after the first (warm-up) one."""
    return [
        f"{run.side} evaluated {len(run.result['evaluations'])} checkpoints (< 2)"
        for run in [*ours, *reference]
        if len(run.result["evaluations"]) < 2
    ]


def no_tensorflow(ours: Sequence[Run], reference: Sequence[Run]) -> list[str]:
    """W5a: ``import core`` imported no TensorFlow module."""
    del reference
    return [
        f"{run.side}: import core imported TensorFlow"
        for run in ours
        if run.result["tensorflow_imported"]
    ]


def all_kinds(ours: Sequence[Run], reference: Sequence[Run]) -> list[str]:
    """W4: the simulated loop met waits and evaluations."""
    del reference
    return [
        f"{run.side}: decisions {run.result['kinds']} lack a wait or an evaluate"
        for run in ours
        if not (run.result["kinds"]["wait"] and run.result["kinds"]["evaluate"])
    ]


# --------------------------------------------------------------------------- workloads
def workloads(*, quick: bool) -> list[Workload]:
    """The workloads, full size or (``quick``) shrunk to a smoke run.

    Args:
        quick: Small sizes for CI: each workload runs, speed is not asserted.

    Returns:
        W1 (per set-up, and W1-bg), W2, W3, W4, W5a, W5b, W5c, W6.
    """
    steps = QUICK_TRAIN_STEPS if quick else TRAIN_STEPS
    expected = list(range(SAVE_STEPS, steps + 1, SAVE_STEPS))
    train_eval: Params = {"train_steps": steps, "save_steps": SAVE_STEPS, "eval_steps": EVAL_STEPS}
    iterations: Params = {
        "iterations": steps // SAVE_STEPS,
        "steps_per_iteration": SAVE_STEPS,
        "eval_steps": EVAL_STEPS,
    }
    # A checkpoint every 1.3 s: not a multiple of either side's polling period (0.05 s,
    # 1 s), so publication times sweep the polling phase instead of locking onto it.
    latency: Params = {
        "interval_secs": 0.9 if quick else 1.3,
        "saves": 4 if quick else 10,
        "throttle_secs": 0.5,
        "eval_steps": EVAL_STEPS,
    }
    decisions: Params = {"decisions": 20_000 if quick else 300_000, "checkpoint_every": 10}
    w6_steps = W6_QUICK_STEPS if quick else W6_STEPS
    mirrored: Params = {"steps": w6_steps, "save_steps": W6_SAVE_STEPS, "eval_steps": EVAL_STEPS}
    return [
        *w1_workloads(quick=quick, steps=steps, params=train_eval),
        Workload(
            "W2",
            f"continuous_train_and_evaluate, {steps // SAVE_STEPS} iterations",
            "w2-ours",
            "w2-reference",
            iterations,
            median_of("seconds"),
            Unit.SECONDS,
            (Target(Goal.RATIO_MAX, 1.05),),
            (same_evaluations(expected),),
        ),
        Workload(
            "W3",
            "continuous_eval latency: checkpoint published → evaluation starts",
            "w3-ours",
            "w3-reference",
            latency,
            pooled_median("latencies"),
            Unit.SECONDS,
            (Target(Goal.MAX, 0.25),),
            (evaluated_something,),
        ),
        Workload(
            "W4",
            "core: continuous-eval decisions per second",
            "w4-ours",
            None,
            decisions,
            median_of("per_second"),
            Unit.PER_SECOND,
            (Target(Goal.MIN, 100_000),),
            (all_kinds,),
        ),
        Workload(
            "W5a",
            "import core (no TensorFlow)",
            "w5-import-core",
            None,
            {},
            median_of("seconds"),
            Unit.SECONDS,
            (Target(Goal.MAX, 0.05),),
            (no_tensorflow,),
        ),
        Workload(
            "W5b",
            "import shell + Experiment vs import tensorflow + tf.estimator",
            "w5-import-shell",
            "w5-import-tf",
            {},
            median_of("seconds"),
            Unit.SECONDS,
        ),
        Workload(
            "W5c",
            "spawn → first training step: run_experiment vs Estimator.train",
            "w5-first-step",
            "w5-first-step-tf",
            {},
            median_of("seconds"),
            Unit.SECONDS,
        ),
        Workload(
            "W6",
            f"train_and_evaluate under MirroredStrategy (2 logical CPUs), {w6_steps} steps, "
            f"eval every {W6_SAVE_STEPS}",
            "w6-ours",
            "w6-reference",
            mirrored,
            median_of("seconds"),
            Unit.SECONDS,
            (Target(Goal.RATIO_MAX, 0.70),),
            (same_evaluations(list(range(W6_SAVE_STEPS, w6_steps + 1, W6_SAVE_STEPS))),),
        ),
    ]


# W1's set-ups: key suffix, title, params["setup"].
W1_SETUPS = (
    ("", "plain model_fn, Dataset input", "plain"),
    ("-canned", "canned DNNRegressor", "canned"),
    ("-hook", "an evaluation SessionRunHook", "hook"),
    ("-numpy", "numpy_input_fn (queue runners)", "numpy"),
)


def w1_workloads(*, quick: bool, steps: int, params: Params) -> list[Workload]:
    """W1 for each set-up against tf.estimator, and W1-bg: ``eval_in_background=True``.

    Args:
        quick: The smoke run (no baseline sides).
        steps: Training steps.
        params: The train-and-evaluate parameters (steps, checkpoints, eval steps).

    Returns:
        W1, W1-canned, W1-hook, W1-numpy, W1-bg.
    """
    expected = list(range(SAVE_STEPS, steps + 1, SAVE_STEPS))
    title = f"train_and_evaluate, {steps} steps, eval every {SAVE_STEPS}"
    found = []
    for suffix, label, setup in W1_SETUPS:
        targets = [Target(Goal.RATIO_MAX, 0.70), Target(Goal.RSS_RATIO_MAX, 1.20)]
        if setup == "plain":
            targets.append(Target(Goal.BASELINE_RATIO_MAX, 1.15))
        found.append(
            Workload(
                f"W1{suffix}",
                f"{title}, {label}",
                "w1-ours",
                "w1-reference",
                {**params, "setup": setup},
                median_of("seconds"),
                Unit.SECONDS,
                tuple(targets),
                (same_evaluations(expected),),
                baseline=None if quick else "w1-train-only",
            )
        )
    found.append(
        Workload(
            "W1-bg",
            f"{title}, plain, eval_in_background (baseline: the same Experiment inline)",
            "w1-background",
            "w1-reference",
            {**params, "setup": "plain"},
            median_of("seconds"),
            Unit.SECONDS,
            (Target(Goal.RATIO_MAX, 0.70),),
            (same_evaluations(expected),),
            baseline=None if quick else "w1-inline",
        )
    )
    return found


def check(workload: Workload, ours: Sequence[Run], reference: Sequence[Run]) -> list[str]:
    """Run the workload's correctness checks.

    Returns:
        The failures (empty when every check holds).
    """
    return [failure for fn in workload.checks for failure in fn(ours, reference)]


def as_json(value: Any) -> Any:
    """A float that JSON can hold (NaN → None), other values unchanged."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
