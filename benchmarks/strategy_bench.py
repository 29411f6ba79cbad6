"""W6: train_and_evaluate under MirroredStrategy (2 logical CPUs), ours vs tf.estimator.

``python -m benchmarks.strategy_bench [--repeats 3] [--steps 400] [--save-steps 100]``
runs each side in a fresh process (logical devices are configured before TensorFlow
initialises them), alternating ours and the reference, and prints the medians, the
ratio ours/reference (target ≤ 0.70×) and whether both sides evaluated the same steps
with the same results. Both sides use the benchmark model under
``MirroredStrategy(["/cpu:0", "/cpu:1"], cross_device_ops=ReductionToOneDevice())`` for
training and evaluation, evaluating every checkpoint (``throttle_secs=0`` for TF).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import child_env

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.70
SIDES = ("ours", "reference")


# ----------------------------------------------------------------------- inside the child
def _estimator(model_dir: str, save_steps: int) -> Any:
    """The benchmark model under MirroredStrategy over 2 logical CPUs (our config path)."""
    from benchmarks import model
    from core.strategy import parse_strategy
    from shell import strategy

    spec = parse_strategy({"type": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})
    config = strategy.run_config(
        spec,
        model_dir=model_dir,
        tf_random_seed=model.SEED,
        save_checkpoints_steps=save_steps,
        save_checkpoints_secs=None,
        keep_checkpoint_max=50,
    )
    return model.tf.estimator.Estimator(model_fn=model.model_fn, config=config)


def _eval_events(model_dir: str) -> dict[int, dict[str, float]]:
    from benchmarks.model import tf

    found: dict[int, dict[str, float]] = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            values = {
                v.tag: float(v.simple_value)
                for v in event.summary.value
                if v.WhichOneof("value") == "simple_value"
            }
            if "loss" in values:
                found[int(event.step)] = values
    return found


def _time_session_closes(tf: Any) -> list[float]:
    """Make every `tf.compat.v1.Session.close` add its wall seconds to the returned list.

    TF 2.15 can block for up to a tf.data autotune period inside ``TF_CloseSession``
    (it can miss waking an iterator's `tf_data_model` thread, then joins it at the end of
    its timed wait, idle; see `shell.replica_input`); the time is reported apart so that
    wait can be told from work.
    """
    closes: list[float] = []
    close = tf.compat.v1.Session.close

    def timed(session: Any) -> None:
        started = time.perf_counter()
        try:
            close(session)
        finally:
            closes.append(time.perf_counter() - started)

    tf.compat.v1.Session.close = timed
    return closes


def measure(side: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one side in this (fresh) process; return its seconds, evaluated steps and results.

    Configures 2 logical CPU devices first, so TensorFlow must not have initialised its
    devices yet. ``params``: ``model_dir``, ``steps``, ``save_steps``, ``eval_steps``.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from benchmarks import model
    from shell import Experiment

    model_dir, steps = params["model_dir"], params["steps"]
    estimator = _estimator(model_dir, params["save_steps"])
    closes = _time_session_closes(tf)
    started, cpu_started = time.perf_counter(), time.process_time()
    if side == "ours":
        Experiment(
            estimator,
            model.train_input_fn,
            model.eval_input_fn,
            train_steps=steps,
            eval_steps=params["eval_steps"],
        ).train_and_evaluate()
    else:
        train_spec = tf.estimator.TrainSpec(model.train_input_fn, max_steps=steps)
        eval_spec = tf.estimator.EvalSpec(
            model.eval_input_fn, steps=params["eval_steps"], start_delay_secs=0, throttle_secs=0
        )
        tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    events = _eval_events(model_dir)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "close_seconds": sum(closes),
        "steps": sorted(events),
        "evaluations": events,
    }


# ----------------------------------------------------------------------- the parent
def run_side(side: str, params: dict[str, Any], timeout_secs: float) -> dict[str, Any]:
    """Run one side in a fresh process group (killed by PID group on a timeout)."""
    work = Path(tempfile.mkdtemp(prefix="tfx-w6-"))
    try:
        out = work / "result.json"
        full = {**params, "model_dir": str(work / "model")}
        argv = [sys.executable, "-m", "benchmarks.strategy_bench", "--child", side]
        argv += ["--params", json.dumps(full), "--out", str(out)]
        with open(work / "child.log", "w") as log:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=child_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=timeout_secs)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise SystemExit(f"W6 {side} timed out after {timeout_secs:.0f}s") from None
        if proc.returncode != 0 or not out.is_file():
            tail = (work / "child.log").read_text()[-3000:]
            raise SystemExit(f"W6 {side} exited with {proc.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if sorted(a) != sorted(b):
        return False
    for step in a:
        for tag in set(a[step]) | set(b[step]):
            x, y = a[step].get(tag), b[step].get(tag)
            if x is None or y is None or abs(x - y) > 1e-5 * max(1.0, abs(y)):
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Run W6 and print its table row; exit 1 when the two sides evaluated differently."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.strategy_bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--save-steps", type=int, default=100)
    parser.add_argument("--eval-steps", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", help="also write the runs to this file")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = measure(args.child, json.loads(args.params))
        Path(args.out).write_text(json.dumps(result))
        return 0
    params = {"steps": args.steps, "save_steps": args.save_steps, "eval_steps": args.eval_steps}
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for i in range(args.repeats):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            run = run_side(side, params, args.timeout)
            runs[side].append(run)
            print(
                f"W6 {side:9s} run {i + 1}: {run['seconds']:.2f} s "
                f"(CPU {run['cpu_seconds']:.2f} s, in TF's session close "
                f"{run['close_seconds']:.2f} s), evaluated steps {run['steps']}",
                flush=True,
            )
    ours = statistics.median(r["seconds"] for r in runs["ours"])
    ref = statistics.median(r["seconds"] for r in runs["reference"])
    same = all(
        _same(o["evaluations"], r["evaluations"]) for o, r in zip(runs["ours"], runs["reference"])
    )
    ratio = ours / ref
    paired = statistics.median(
        o["seconds"] / r["seconds"] for o, r in zip(runs["ours"], runs["reference"])
    )
    cpu = statistics.median(
        o["cpu_seconds"] / r["cpu_seconds"] for o, r in zip(runs["ours"], runs["reference"])
    )
    working = statistics.median(
        (o["seconds"] - o["close_seconds"]) / (r["seconds"] - r["close_seconds"])
        for o, r in zip(runs["ours"], runs["reference"])
    )
    met = "yes" if ratio <= TARGET else "no"
    print("| workload | ours (median) | reference (median) | ratio ours/ref | target | met? |")
    print("|---|---|---|---|---|---|")
    print(
        f"| W6 `train_and_evaluate` under MirroredStrategy (2 logical CPUs), {args.steps} steps, "
        f"eval every {args.save_steps} | {ours:.2f} s | {ref:.2f} s | {ratio:.2f} | "
        f"≤{TARGET:.2f}× | {met} |"
    )
    print(
        f"median of the per-repeat ratios: wall {paired:.2f}, CPU time {cpu:.2f}, "
        f"wall outside TF's session close {working:.2f}"
    )
    print(f"same evaluated steps and results: {'yes' if same else 'NO'}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "runs": runs,
                    "ratio": ratio,
                    "paired": paired,
                    "cpu": cpu,
                    "outside_close": working,
                    "same": same,
                }
            )
        )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
