"""Wall time of a 5-task cluster (ps, chief, 2 workers, evaluator): tfexperiment vs tf.estimator.

Both sides run the same estimator, input functions and checkpoint interval
(`examples.kubernetes.experiment`) on the same layout, one real process per task on
127.0.0.1 with its own TF_CONFIG:

- ``tfexperiment``: every task runs ``python -m shell run ...:experiment_fn`` (default
  schedules); the run ends when every task has exited by itself.
- ``tf.estimator``: every task runs ``tf.estimator.train_and_evaluate`` with the same
  ``max_steps`` and an evaluator throttle of 2 s. Its ps blocks in ``server.join()``
  forever, so its time is taken when the chief, the workers and the evaluator have exited;
  the ps is then checked to still be running ``--hang-secs`` later and killed by hand.

Usage: ``python -m benchmarks.cluster_compare --steps 3000 --repeats 2 [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

from shell.launcher import LocalCluster

SPEC = "examples.kubernetes.experiment:experiment_fn"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tf_task(output_dir: str) -> None:
    """One task of the tf.estimator side (runs in a child process with its TF_CONFIG)."""
    from examples.kubernetes import experiment as ex
    from shell._tf import tf

    estimator = ex.make_estimator(output_dir)
    max_steps = int(os.environ.get("TFX_TRAIN_STEPS", 2000))
    tf.estimator.train_and_evaluate(
        estimator,
        tf.estimator.TrainSpec(ex.train_input_fn, max_steps=max_steps),
        tf.estimator.EvalSpec(ex.eval_input_fn, steps=None, start_delay_secs=0, throttle_secs=2),
    )


def _sink(echo: bool) -> Any:
    def sink(line: str) -> None:
        if echo:
            print(line, flush=True)

    return sink


def _env(steps: int, autotune: bool) -> dict[str, str]:
    """The example's knobs: ``steps``, every checkpoint kept, tf.data autotune on or off."""
    return {
        "TFX_TRAIN_STEPS": str(steps),
        "TFX_KEEP_CHECKPOINTS": "0",
        "TFX_DATA_AUTOTUNE": "1" if autotune else "0",
        "PYTHONPATH": ROOT,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def run_ours(
    steps: int, output_dir: str, *, echo: bool, timeout_secs: float, autotune: bool = True
) -> dict[str, Any]:
    """Run the tfexperiment side; returns its wall time and every task's exit."""
    env = _env(steps, autotune)
    with LocalCluster(
        SPEC, output_dir, ps=1, workers=2, evaluator=True, env=env, sink=_sink(echo), cwd=ROOT
    ) as cluster:
        started = time.monotonic()
        cluster.start()
        result = cluster.wait(timeout_secs)
        wall = time.monotonic() - started
    return {
        "wall_secs": round(wall, 2),
        "ok": result.ok,
        "exits": {e.task: [e.returncode, round(e.wall_secs, 2)] for e in result.exits},
        "hung": [],
    }


def run_tf(
    steps: int,
    output_dir: str,
    *,
    echo: bool,
    timeout_secs: float,
    hang_secs: float,
    autotune: bool = True,
) -> dict[str, Any]:
    """Run the tf.estimator side; its ps never exits and is killed after ``hang_secs``."""
    env = _env(steps, autotune)
    command = [sys.executable, "-m", "benchmarks.cluster_compare", "--tf-task", output_dir]
    with LocalCluster(
        SPEC,
        output_dir,
        ps=1,
        workers=2,
        evaluator=True,
        env=env,
        sink=_sink(echo),
        cwd=ROOT,
        command=command,
    ) as cluster:
        started = time.monotonic()
        cluster.start()
        finishers = [n for n in cluster.task_names if not n.startswith("ps-")]
        deadline = started + timeout_secs
        while time.monotonic() < deadline:
            exits = cluster.poll()
            if all(exits.get(n) is not None for n in finishers):
                break
            time.sleep(0.05)
        wall = time.monotonic() - started
        time.sleep(hang_secs)
        exits = cluster.poll()
        hung = sorted(name for name, found in exits.items() if found is None)
        cluster.terminate()
        final = cluster.result()
    return {
        "wall_secs": round(wall, 2),
        "ok": all(e.returncode == 0 for e in final.exits if e.task not in hung),
        "exits": {e.task: [e.returncode, round(e.wall_secs, 2)] for e in final.exits},
        "hung": hung,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both sides ``--repeats`` times, alternating, and print a table of wall times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="train_steps / max_steps")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side")
    parser.add_argument(
        "--hang-secs",
        type=float,
        default=10.0,
        help="how long to watch tf.estimator's ps after the others exited",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on each run")
    parser.add_argument("--echo", action="store_true", help="print every task's output")
    parser.add_argument(
        "--no-autotune",
        action="store_true",
        help="turn tf.data autotuning off on both sides (TF 2.15 otherwise delays a "
        "trainer's session close by 0-60 s, at random)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures here")
    parser.add_argument("--tf-task", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tf_task:
        _tf_task(args.tf_task)
        return 0
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cluster-compare-") as tmp:
        for i in range(args.repeats):
            for side in ("tfexperiment", "tf.estimator"):
                out = os.path.join(tmp, f"{side}-{i}")
                if side == "tfexperiment":
                    found = run_ours(
                        args.steps,
                        out,
                        echo=args.echo,
                        timeout_secs=args.timeout,
                        autotune=not args.no_autotune,
                    )
                else:
                    found = run_tf(
                        args.steps,
                        out,
                        echo=args.echo,
                        timeout_secs=args.timeout,
                        hang_secs=args.hang_secs,
                        autotune=not args.no_autotune,
                    )
                found.update(side=side, repeat=i, steps=args.steps, autotune=not args.no_autotune)
                runs.append(found)
                hung = f"  still running after +{args.hang_secs:g}s: {', '.join(found['hung'])}"
                print(
                    f"{side:13s} run {i}: {found['wall_secs']:6.1f}s  ok={found['ok']}"
                    + (hung if found["hung"] else ""),
                    flush=True,
                )
    for side in ("tfexperiment", "tf.estimator"):
        walls = sorted(r["wall_secs"] for r in runs if r["side"] == side)
        print(f"{side:13s} median {walls[len(walls) // 2]:.1f}s over {len(walls)} run(s): {walls}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(runs, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
