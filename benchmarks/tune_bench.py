"""W7: a 4-trial sweep (``tfexperiment tune``) vs the same 4 runs one after another.

Sides, each a fresh command-line process (wall time from spawn to exit):

- ``tune-j1``: ``tfexperiment tune --trials 4 --jobs 1`` of a small wine sweep;
- ``run-x4``: ``tfexperiment run`` four times in a row with the very values the sweep's
  trials drew (read back from its study), i.e. what a hand-written loop would do;
- ``tune-j2``: the same sweep with ``--jobs 2`` (two worker processes).

Targets: ``tune-j1 / run-x4 <= 1.05`` and ``tune-j2 / tune-j1`` reported (on 2 cores
shared with other work, two TensorFlow processes mostly contend). Run:
``python -m benchmarks.tune_bench [--repeats 3] [--steps 200] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
TRIALS = 4
TIMEOUT_SECS = 1800


def _config(steps: int) -> dict[str, Any]:
    """A small wine experiment plus a 4-value search (no pruning: every trial runs fully)."""
    return {
        "estimator": {
            "type": "DNNClassifier",
            "params": {"hidden_units": [16, 8], "n_classes": 3, "optimizer": "Adam"},
            "standardize": True,
            "run_config": {"save_checkpoints_steps": max(1, steps // 2), "tf_random_seed": 1},
        },
        "train_input": {"path": str(DATA / "wine_train.csv"), "label": "target"},
        "eval_input": {"path": str(DATA / "wine_eval.csv")},
        "train_steps": steps,
        "eval_every_n_steps": max(1, steps // 2),
        "search": {"estimator.params.learning_rate": {"loguniform": [0.001, 0.03]}},
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "pruner": "nop",
        "sampler": {"name": "random", "seed": 0},
    }


def _timed(cmd: list[str], cwd: Path) -> float:
    """Run ``cmd`` (killed by PID after TIMEOUT_SECS); its wall time in seconds."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=TIMEOUT_SECS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"timed out: {' '.join(cmd)}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err.decode()[-2000:]}")
    return time.monotonic() - started


def _trial_params(db: Path) -> list[dict[str, float]]:
    """The learning rates the sweep's trials drew, read from its SQLite study."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT t.number, p.param_name, p.param_value FROM trials t "
            "JOIN trial_params p ON p.trial_id = t.trial_id ORDER BY t.number"
        ).fetchall()
    by_number: dict[int, dict[str, float]] = {}
    for number, name, value in rows:
        by_number.setdefault(number, {})[name] = value
    return [by_number[n] for n in sorted(by_number)]


def _tfx() -> list[str]:
    return [sys.executable, "-m", "shell"]


def measure(steps: int, work: Path) -> dict[str, float]:
    """One round of the three sides; wall seconds of each."""
    sweep = work / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(_config(steps)))
    plain = dict(_config(steps))
    for key in ("search", "objective", "pruner", "sampler"):
        plain.pop(key)
    base = work / "plain.yaml"
    base.write_text(yaml.safe_dump(plain))
    out: dict[str, float] = {}
    for jobs in (1, 2):
        target = work / f"tune-j{jobs}"
        shutil.rmtree(target, ignore_errors=True)
        cmd = [*_tfx(), "tune", "--config", str(sweep), "--trials", str(TRIALS)]
        out[f"tune-j{jobs}"] = _timed([*cmd, "--jobs", str(jobs), "-o", str(target)], work)
    params = _trial_params(work / "tune-j1" / "study.db")
    assert len(params) == TRIALS, params
    total = 0.0
    for i, values in enumerate(params):
        target = work / f"run-{i}"
        shutil.rmtree(target, ignore_errors=True)
        sets = [arg for k, v in values.items() for arg in ("--set", f"{k}={v!r}")]
        total += _timed([*_tfx(), "run", "--config", str(base), "-o", str(target), *sets], work)
    out["run-x4"] = total
    return out


def main(argv: list[str] | None = None) -> int:
    """Run W7 and print the figures (median of the repeats) and the ratios."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tune_bench")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200, help="train_steps of each trial")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    rounds: list[dict[str, float]] = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tfx-w7-") as tmp:
        for r in range(args.repeats):
            rounds.append(measure(args.steps, Path(tmp)))
            print(f"round {r + 1}: " + "  ".join(f"{k}={v:.1f}s" for k, v in rounds[-1].items()))
    median = {k: sorted(r[k] for r in rounds)[len(rounds) // 2] for k in rounds[0]}
    ratios = {
        "tune-j1/run-x4": median["tune-j1"] / median["run-x4"],
        "tune-j2/tune-j1": median["tune-j2"] / median["tune-j1"],
    }
    print(
        f"W7 ({TRIALS} trials x {args.steps} steps, load before {load:.1f} on {os.cpu_count()} CPUs)"
    )
    for key, value in median.items():
        print(f"  {key:8s} {value:7.1f} s")
    target = "ok" if ratios["tune-j1/run-x4"] <= 1.05 else "MISSED (target <= 1.05)"
    print(f"  tune-j1 / run-x4  = {ratios['tune-j1/run-x4']:.2f}  {target}")
    print(f"  tune-j2 / tune-j1 = {ratios['tune-j2/tune-j1']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": median, "ratios": ratios, "load": load}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
