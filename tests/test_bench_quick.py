"""The benchmark harness without TensorFlow: child runs, latency accounting, summaries, table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import child
from benchmarks.harness import BenchmarkError, Run, run_side
from benchmarks.workloads import (
    Check,
    Goal,
    Target,
    Unit,
    Workload,
    check,
    median_of,
    same_evaluations,
    summarize,
)


def _run(side: str, **result: object) -> Run:
    return Run(
        side=side,
        result={"peak_rss_kb": 1024, **result},
        wall_secs=1.0,
        rusage_maxrss_kb=1024,
        load_before=0.0,
    )


def test_w4_child_runs_in_a_fresh_process_and_reports_peak_rss() -> None:
    run = run_side("w4-ours", {"decisions": 2000, "checkpoint_every": 10}, timeout_secs=60)
    assert run.result["decisions"] == 2000
    assert run.result["per_second"] > 0
    assert run.result["kinds"]["wait"] and run.result["kinds"]["evaluate"]
    assert run.result["peak_rss_kb"] > 0 and run.rusage_maxrss_kb > 0


def test_import_core_child_sees_no_tensorflow() -> None:
    run = run_side("w5-import-core", {}, timeout_secs=60)
    assert run.result["tensorflow_imported"] is False
    assert run.result["seconds"] < 5


def test_a_failing_child_raises_with_its_output() -> None:
    with pytest.raises(BenchmarkError, match="exited with 2"):
        run_side("no-such-side", {}, timeout_secs=60)


def test_latency_counts_only_checkpoints_published_after_the_throttle(tmp_path: Path) -> None:
    published = tmp_path / "published.jsonl"
    saves = [(0, 99.0), (100, 101.0), (200, 101.2), (300, 103.0)]
    published.write_text("".join(json.dumps({"step": s, "mtime": t}) + "\n" for s, t in saves))
    starts = [
        ("/m/model.ckpt-0", 100.5),  # first evaluation: warm-up, and published before the loop
        ("/m/model.ckpt-100", 101.05),  # counted: 0.05 s
        ("/m/model.ckpt-200", 101.3),  # published 0.15 s after the previous start: throttled
        ("/m/model.ckpt-300", 103.2),  # counted: 0.2 s
    ]
    latencies, raw = child._latencies(starts, str(published), loop_start=100.0, throttle=0.5)
    assert latencies == pytest.approx([0.05, 0.2])
    assert [r["counted"] for r in raw] == [False, True, False, True]


def test_summary_ratio_targets_and_rss() -> None:
    workload = Workload(
        "W9",
        "demo",
        "a",
        "b",
        {},
        median_of("seconds"),
        Unit.SECONDS,
        (Target(Goal.RATIO_MAX, 0.8), Target(Goal.RSS_RATIO_MAX, 1.1)),
    )
    ours = [_run("a", seconds=s, cpu_seconds=s) for s in (1.0, 3.0, 2.0)]
    reference = [_run("b", seconds=s, cpu_seconds=s) for s in (4.0, 5.0, 4.0)]
    summary = summarize(workload, ours, reference)
    assert summary.ours == 2.0 and summary.reference == 4.0
    assert summary.ratio == 0.5 and summary.cpu_ratio == 0.5
    assert summary.met == {"≤0.80×": True, "RSS ≤1.10×": True}


def test_same_evaluations_reports_a_step_or_metric_mismatch() -> None:
    good = {"eval_steps": [200, 400], "final": {"loss": 1.0}}
    ok = [_run("a", **good), _run("b", **good)]
    assert check(_workload_with(same_evaluations([200, 400])), ok, []) == []
    bad = [_run("a", **good), _run("b", eval_steps=[400], final={"loss": 2.0})]
    failures = same_evaluations([200, 400])(bad, [])
    assert any("evaluated steps [400]" in f for f in failures)
    assert any("final metrics differ" in f for f in failures)


def _workload_with(fn: Check) -> Workload:
    return Workload("W9", "demo", "a", None, {}, median_of("seconds"), Unit.SECONDS, (), (fn,))
