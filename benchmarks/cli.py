"""Run the workloads side by side (A B A B), print the table and write the raw figures."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.harness import BenchmarkError, Run, run_side
from benchmarks.workloads import Summary, Workload, as_json, check, format_figure, summarize
from benchmarks.workloads import workloads as all_workloads

FULL_REPEATS = 5
QUICK_REPEATS = 1
QUICK_JOBS = 2  # --quick asserts no speed, so its children may run two at a time
BUSY = 0.25  # share of the CPUs others may use before a run is flagged as noisy


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="tfexperiment vs tf.estimator, side by side, each side in a fresh process.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, 1 repeat, 2 children at a time: a CI smoke run "
        "(asserts correctness only, never speed)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs of each side (default {FULL_REPEATS}, --quick {QUICK_REPEATS})",
    )
    parser.add_argument(
        "--json",
        default="bench-results.json",
        metavar="PATH",
        help="where to write the raw figures (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        default=None,
        metavar="KEYS",
        help="comma-separated workload keys to run, e.g. W1,W3 or W5",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        metavar="SECS",
        help="before each child, wait up to SECS for other processes to leave the CPUs "
        "mostly idle (full mode only; default %(default)s)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a target is missed (default: report it only)",
    )
    return parser


def _selected(workloads: list[Workload], only: str | None) -> list[Workload]:
    if not only:
        return workloads
    keys = [k.strip().lower() for k in only.split(",") if k.strip()]
    chosen = [w for w in workloads if any(w.key.lower().startswith(k) for k in keys)]
    if not chosen:
        raise SystemExit(
            f"--only {only!r} matches no workload of {', '.join(w.key for w in workloads)}"
        )
    return chosen


def _progress(workload: Workload, run: Run, index: int, repeats: int) -> None:
    value = workload.figure([run])
    print(
        f"  {workload.key} {run.side:<18} {index + 1}/{repeats}: "
        f"{format_figure(value, workload.unit):>12}  peak RSS "
        f"{run.result['peak_rss_kb'] / 1024:6.0f} MB  (others busy {run.busy_before:4.0%}, "
        f"load {run.load_before:.1f})",
        file=sys.stderr,
        flush=True,
    )


def _run_alternating(workload: Workload, repeats: int, settle_secs: float) -> dict[str, list[Run]]:
    """A B A B ...: each repeat runs our side, then the reference, sequentially."""
    runs: dict[str, list[Run]] = {side: [] for side in workload.sides}
    for index in range(repeats):
        for side in workload.sides:
            run = run_side(side, workload.params, settle_secs=settle_secs)
            runs[side].append(run)
            _progress(workload, run, index, repeats)
    return runs


def _run_concurrently(workloads: list[Workload], repeats: int) -> dict[str, dict[str, list[Run]]]:
    """--quick: every child of every workload through a pool of `QUICK_JOBS` workers."""
    jobs = [(w, side, i) for i in range(repeats) for w in workloads for side in w.sides]
    with ThreadPoolExecutor(max_workers=QUICK_JOBS) as pool:
        futures = [(w, i, pool.submit(run_side, side, w.params)) for w, side, i in jobs]
        results: dict[str, dict[str, list[Run]]] = {
            w.key: {side: [] for side in w.sides} for w in workloads
        }
        for workload, index, future in futures:
            run = future.result()
            results[workload.key][run.side].append(run)
            _progress(workload, run, index, repeats)
    return results


def _row(workload: Workload, summary: Summary) -> list[str]:
    ratio = summary.ratio
    targets = " & ".join(summary.met) or "—"
    met = " & ".join("yes" if ok else "NO" for ok in summary.met.values()) or "—"
    reference_rss = (
        f"{summary.reference_rss_mb:.0f}" if summary.reference_rss_mb is not None else "—"
    )
    return [
        f"{workload.key} {workload.title}",
        format_figure(summary.ours, workload.unit),
        format_figure(summary.reference, workload.unit) if summary.reference is not None else "—",
        f"{ratio:.2f}" if ratio is not None else "—",
        targets,
        met,
        f"{summary.ours_rss_mb:.0f} / {reference_rss}",
    ]


def table(rows: Sequence[tuple[Workload, Summary]]) -> str:
    """The results as a Markdown table (medians; peak RSS in MB).

    Args:
        rows: Each workload with its summary.

    Returns:
        The table text.
    """
    header = [
        "workload",
        "ours (median)",
        "reference (median)",
        "ratio ours/ref",
        "target",
        "met?",
        "peak RSS MB ours / ref",
    ]
    body = [_row(w, s) for w, s in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in body)])


def _notes(rows: Sequence[tuple[Workload, Summary]]) -> str:
    """Secondary figures under the table: paired, best-of-N and CPU-time ratios, baseline."""
    paired = [f"{w.key} {s.paired_ratio:.2f}" for w, s in rows if s.paired_ratio is not None]
    best = [f"{w.key} {s.best_ratio:.2f}" for w, s in rows if s.best_ratio is not None]
    cpu = [f"{w.key} {s.cpu_ratio:.2f}" for w, s in rows if s.cpu_ratio is not None]
    lines = []
    if paired:
        lines.append(
            "paired ratio (median over repeats of ours/ref in the same repeat): "
            + ", ".join(paired)
        )
    if best:
        lines.append("best-of-N ratio (fastest ours / fastest ref): " + ", ".join(best))
    if cpu:
        lines.append(
            "CPU seconds ours/ref (medians, all threads of the process): " + ", ".join(cpu)
        )
    for workload, summary in rows:
        if summary.baseline is not None and summary.reference is not None:
            lines.append(
                f"{workload.key} baseline {workload.baseline} (median "
                f"{format_figure(summary.baseline, workload.unit)}): time over it "
                f"ours +{summary.ours - summary.baseline:.2f} s, "
                f"reference +{summary.reference - summary.baseline:.2f} s"
            )
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
    try:
        from importlib.metadata import version

        info["tensorflow"] = version("tensorflow-cpu")
    except Exception:  # informational only
        info["tensorflow"] = None
    return info


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; print the table; write the JSON.

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0; 1 when a correctness check failed, a child failed, or (``--strict``) a target
        was missed.
    """
    args = _parser().parse_args(argv)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else FULL_REPEATS)
    if repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    workloads = _selected(all_workloads(quick=args.quick), args.only)
    mode = "quick (smoke run: figures are not comparable)" if args.quick else "full"
    print(
        f"benchmarks: {mode}, {repeats} repeat(s) of each side, each in a fresh process",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    machine = _machine()
    try:
        if args.quick:
            runs = _run_concurrently(workloads, repeats)
        else:
            runs = {w.key: _run_alternating(w, repeats, args.settle) for w in workloads}
    except BenchmarkError as err:
        print(f"benchmarks: FAILED: {err}", file=sys.stderr)
        return 1

    rows: list[tuple[Workload, Summary]] = []
    failures: list[str] = []
    report: list[dict[str, Any]] = []
    for workload in workloads:
        ours = runs[workload.key][workload.ours]
        reference = runs[workload.key][workload.reference] if workload.reference else []
        baseline = runs[workload.key][workload.baseline] if workload.baseline else []
        summary = summarize(workload, ours, reference, baseline)
        problems = check(workload, ours, reference)
        failures += [f"{workload.key}: {p}" for p in problems]
        rows.append((workload, summary))
        report.append(
            {
                "key": workload.key,
                "title": workload.title,
                "unit": workload.unit.value,
                "params": workload.params,
                "ours_side": workload.ours,
                "reference_side": workload.reference,
                "ours_median": as_json(summary.ours),
                "reference_median": as_json(summary.reference),
                "ratio": summary.ratio,
                "peak_rss_mb": {"ours": summary.ours_rss_mb, "reference": summary.reference_rss_mb},
                "cpu_seconds_median": {
                    "ours": summary.ours_cpu,
                    "reference": summary.reference_cpu,
                },
                "cpu_ratio": summary.cpu_ratio,
                "paired_ratio": summary.paired_ratio,
                "best_ratio": summary.best_ratio,
                "baseline_side": workload.baseline,
                "baseline_median": summary.baseline,
                "targets": summary.met,
                "checks_failed": problems,
                "runs": {
                    "ours": [r.to_json() for r in ours],
                    "reference": [r.to_json() for r in reference],
                    "baseline": [r.to_json() for r in baseline],
                },
            }
        )
    elapsed = time.perf_counter() - started
    print(table(rows))
    print(
        f"\n{mode}; {repeats} repeat(s); {elapsed:.0f} s; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    notes = _notes(rows)
    if notes:
        print(notes)
    missed = [f"{w.key} {label}" for w, s in rows for label, ok in s.met.items() if not ok]
    every = [r for side in runs.values() for rs in side.values() for r in rs]
    busy = [r for r in every if r.busy_before > BUSY]
    if busy and not args.quick:  # --quick runs two children at once: they see each other
        print(
            f"warning: {len(busy)} of {len(every)} runs started while other processes kept "
            f"more than {BUSY:.0%} of the CPUs busy (up to "
            f"{max(r.busy_before for r in busy):.0%}): their timings are noisy"
        )
    with open(args.json, "w") as handle:
        json.dump(
            {
                "mode": "quick" if args.quick else "full",
                "repeats": repeats,
                "elapsed_secs": elapsed,
                "machine": machine,
                "workloads": report,
                "missed_targets": missed,
                "check_failures": failures,
            },
            handle,
            indent=1,
        )
    print(f"raw figures: {args.json}")
    if failures:
        print("correctness checks FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if missed and not args.quick:
        print("targets missed: " + ", ".join(missed))
        if args.strict:
            return 1
    return 0
