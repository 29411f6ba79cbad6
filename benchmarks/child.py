"""One measured side of one workload, run in a fresh process: ``python -m benchmarks.child``.

Usage: ``python -m benchmarks.child SIDE --params JSON --out FILE``. The side's figures, plus
the peak resident set size of this process (``VmHWM``), are written to FILE as JSON. Nothing
heavy is imported at module level, so the import-time sides (W5) measure from a clean start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

Params = dict[str, Any]
Result = dict[str, Any]

CHILD_STARTED = time.time()  # Wall clock when this module began (before heavy imports).


def peak_rss_kb() -> int:
    """Peak resident set size of this process (``VmHWM`` in /proc/self/status), in KiB.

    Returns:
        The figure, or -1 where /proc is not available.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def eval_events(eval_dir: str) -> dict[int, dict[str, float]]:
    """The scalar summaries of the evaluation event files in ``eval_dir``, by global step.

    Both ``Estimator.evaluate`` and our persistent evaluator write one event per
    evaluation (``loss``, metrics, ``global_step``), so this lists the steps evaluated.

    Args:
        eval_dir: ``<model_dir>/eval`` (or ``eval_<name>``).

    Returns:
        ``{global_step: {tag: value}}`` of the events that carry a ``loss`` value.
    """
    import glob

    from benchmarks.model import tf

    found: dict[int, dict[str, float]] = {}
    for path in sorted(glob.glob(os.path.join(eval_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            values = {
                v.tag: float(v.simple_value)
                for v in event.summary.value
                if v.WhichOneof("value") == "simple_value"
            }
            if "loss" in values:
                found[int(event.step)] = values
    return found


def _scalars(result: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics of an evaluation result as plain floats."""
    return {k: float(v) for k, v in result.items() if getattr(v, "ndim", 0) == 0}


class _Timer:
    """Times one block: wall clock (``perf_counter``) and this process's CPU time.

    CPU time (all threads, user + system) is a secondary figure: it is less disturbed
    than wall time when other processes share the CPUs.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._start = 0.0
        self._cpu_start = 0.0

    def __enter__(self) -> _Timer:
        self._cpu_start = time.process_time()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.cpu_seconds = time.process_time() - self._cpu_start


# ----------------------------------------------------------------------- W1 train_and_evaluate
def _setup(params: Params) -> tuple[Any, Any, Any, list[Any]]:
    """The W1 set-up ``params["setup"]``: (estimator, train input, eval input, eval hooks).

    ``plain``: the custom model_fn with a Dataset input; ``canned``: a ``DNNRegressor``;
    ``hook``: plain plus an evaluation ``SessionRunHook``; ``numpy``: plain with a
    ``numpy_input_fn`` (queue-runner) evaluation input.
    """
    from benchmarks import model

    setup = params.get("setup", "plain")
    save_steps = params["save_steps"]
    if setup == "canned":
        estimator = model.canned_estimator(params["model_dir"], save_steps=save_steps)
    else:
        estimator = model.estimator(params["model_dir"], save_steps=save_steps)
    eval_input_fn = model.numpy_eval_input_fn if setup == "numpy" else model.eval_input_fn
    hooks = [model.CountingHook()] if setup == "hook" else []
    return estimator, model.train_input_fn, eval_input_fn, hooks


def _w1_result(timer: _Timer, model_dir: str, seen: list[dict[str, float]], final: Any) -> Result:
    events = eval_events(os.path.join(model_dir, "eval"))
    return {
        "seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "eval_steps": [int(r["global_step"]) for r in seen],
        "event_steps": sorted(events),
        "evaluations": seen,
        "final": _scalars(final or {}),
    }


def w1_ours(params: Params) -> Result:
    """`Experiment.train_and_evaluate`, evaluations collected with ``on_evaluation``."""
    from shell import Experiment

    estimator, train_input_fn, eval_input_fn, hooks = _setup(params)
    experiment = Experiment(
        estimator,
        train_input_fn,
        eval_input_fn,
        train_steps=params["train_steps"],
        eval_steps=params["eval_steps"],
        eval_hooks=hooks,
    )
    seen: list[dict[str, float]] = []
    experiment.on_evaluation(lambda result: seen.append(_scalars(result)))
    with _Timer() as timer:
        final, _ = experiment.train_and_evaluate()
    return _w1_result(timer, params["model_dir"], seen, final)


def w1_background(params: Params) -> Result:
    """`Experiment.train_and_evaluate` with ``eval_in_background=True``: the wired path.

    Each due checkpoint is evaluated in the worker thread of a ``BackgroundEvaluator``
    while training goes on (``shell.train_eval_bg``); ``params["inline"]`` runs the same
    Experiment with ``eval_in_background=False`` (for comparison). Evaluations are
    collected with ``on_evaluation``, as in ``w1_ours``.

    Raises:
        RuntimeError: The background side would fall back to inline evaluation
            (``core.train_eval.evaluation_mode``), so it would not measure the thread.
    """
    from core.settings import ExperimentSettings
    from core.train_eval import EvalMode, evaluation_mode
    from shell import Experiment

    estimator, train_input_fn, eval_input_fn, hooks = _setup(params)
    background = not params.get("inline")
    settings = ExperimentSettings(
        train_steps=params["train_steps"], eval_steps=params["eval_steps"]
    )
    mode = evaluation_mode(
        requested=background,
        eval_every_n_steps=settings.eval_every_n_steps,
        keep_checkpoint_max=estimator.config.keep_checkpoint_max,
        save_checkpoints_steps=estimator.config.save_checkpoints_steps,
    )
    if background and mode.mode is not EvalMode.BACKGROUND:
        raise RuntimeError(f"W1-bg would not evaluate in the background: {mode.line()}")
    experiment = Experiment.from_settings(
        estimator,
        train_input_fn,
        eval_input_fn,
        settings=settings,
        eval_hooks=hooks,
        eval_in_background=background,
    )
    seen: list[dict[str, float]] = []
    experiment.on_evaluation(lambda result: seen.append(_scalars(result)))
    with _Timer() as timer:
        final, _ = experiment.train_and_evaluate()
    return {**_w1_result(timer, params["model_dir"], seen, final), "eval_mode": mode.mode.value}


def w1_reference(params: Params) -> Result:
    """``tf.estimator.train_and_evaluate`` (throttle_secs=0); evaluations from event files."""
    from benchmarks import model

    tf: Any = model.tf
    model_dir = params["model_dir"]
    estimator, train_input_fn, eval_input_fn, hooks = _setup(params)
    train_spec = tf.estimator.TrainSpec(train_input_fn, max_steps=params["train_steps"])
    eval_spec = tf.estimator.EvalSpec(
        eval_input_fn,
        steps=params["eval_steps"],
        hooks=hooks,
        start_delay_secs=0,
        throttle_secs=0,
    )
    with _Timer() as timer:
        final, _ = tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)
    events = eval_events(os.path.join(model_dir, "eval"))
    return {
        "seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "eval_steps": sorted(events),
        "event_steps": sorted(events),
        "evaluations": [events[step] for step in sorted(events)],
        "final": _scalars(final or {}),
    }


def w1_train_only(params: Params) -> Result:
    """The baseline: ``estimator.train`` alone, same steps and checkpoints, no evaluation."""
    estimator, train_input_fn, _, _ = _setup(params)
    with _Timer() as timer:
        estimator.train(train_input_fn, max_steps=params["train_steps"])
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds}


# ----------------------------------------------------------- W2 continuous_train_and_evaluate
def w2_ours(params: Params) -> Result:
    """`Experiment.continuous_train_and_evaluate` over ``iterations`` iterations."""
    from benchmarks import model
    from shell import Experiment

    per_iteration = params["steps_per_iteration"]
    estimator = model.estimator(params["model_dir"], save_steps=per_iteration)
    experiment = Experiment(
        estimator,
        model.train_input_fn,
        model.eval_input_fn,
        train_steps=per_iteration * params["iterations"],
        eval_steps=params["eval_steps"],
        train_steps_per_iteration=per_iteration,
    )
    seen: list[dict[str, float]] = []
    experiment.on_evaluation(lambda result: seen.append(_scalars(result)))
    with _Timer() as timer:
        final, _ = experiment.continuous_train_and_evaluate()
    return {
        "seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "eval_steps": [int(r["global_step"]) for r in seen],
        "final": _scalars(final or {}),
    }


def w2_reference(params: Params) -> Result:
    """A plain loop of ``train(steps=N)`` + ``evaluate(steps=10)``."""
    from benchmarks import model

    per_iteration = params["steps_per_iteration"]
    estimator = model.estimator(params["model_dir"], save_steps=per_iteration)
    seen: list[dict[str, float]] = []
    with _Timer() as timer:
        for _ in range(params["iterations"]):
            estimator.train(model.train_input_fn, steps=per_iteration)
            seen.append(
                _scalars(estimator.evaluate(model.eval_input_fn, steps=params["eval_steps"]))
            )
    return {
        "seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "eval_steps": [int(r["global_step"]) for r in seen],
        "final": seen[-1],
    }


# ------------------------------------------------------------- W3 continuous_eval latency
def w3_trainer(params: Params) -> Result:
    """Train, checkpointing every ``interval_secs``; log when each checkpoint is published.

    Waits for the evaluator's ``go`` file before training, appends one JSON line per
    save (global step and the ``checkpoint`` state file's mtime) to ``published``, stops
    after ``saves`` saves and then writes the chief's completion record.
    """
    from benchmarks import model
    from core.completion import EndReason
    from shell import disk

    tf: Any = model.tf
    model_dir, published = params["model_dir"], params["published"]
    estimator = model.estimator(model_dir, save_steps=None, save_secs=params["interval_secs"])
    state_file = os.path.join(model_dir, "checkpoint")

    class Publisher(tf.estimator.CheckpointSaverListener):  # type: ignore[misc]
        """Logs each save; asks training to stop after the last one."""

        saves = 0

        def after_save(self, session: Any, global_step_value: int) -> bool:
            mtime = os.stat(state_file).st_mtime_ns / 1e9
            with open(published, "a") as handle:
                handle.write(
                    json.dumps(
                        {"step": int(global_step_value), "mtime": mtime, "after_save": time.time()}
                    )
                    + "\n"
                )
            self.saves += 1
            return bool(self.saves >= params["saves"])

    while not os.path.exists(params["go"]):
        time.sleep(0.01)
    estimator.train(model.train_input_fn, saving_listeners=[Publisher()])
    final = disk.latest_checkpoint(model_dir)
    disk.write_done(
        model_dir,
        "chief-0",
        final_step=final.step if final else 0,
        reason=EndReason.TRAIN_STEPS_REACHED,
    )
    return {"seconds": 0.0}


def _start_trainer(params: Params) -> Any:
    """Start the W3 trainer process (it waits for the ``go`` file)."""
    import subprocess

    child = dict(
        params,
        published=os.path.join(params["work_dir"], "published.jsonl"),
        go=os.path.join(params["work_dir"], "go"),
    )
    out = os.path.join(params["work_dir"], "trainer.json")
    log = open(os.path.join(params["work_dir"], "trainer.log"), "w")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.child",
            "w3-trainer",
            "--params",
            json.dumps(child),
            "--out",
            out,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    ), child


def _latencies(
    starts: list[tuple[str, float]], published: str, *, loop_start: float, throttle: float
) -> tuple[list[float], list[Result]]:
    """Publication-to-evaluation-start latencies of the checkpoints that count.

    A checkpoint counts when it was published after the evaluation loop started, after
    the throttle had elapsed since the previous evaluation start, and it is not the
    first evaluation (whose start includes building the evaluation graph: warm-up).

    Args:
        starts: ``(checkpoint_path, wall-clock start)`` of each evaluation, in order.
        published: The trainer's JSON-lines log of saves.
        loop_start: Wall clock when the evaluation loop started.
        throttle: The throttle in seconds.

    Returns:
        The latencies in seconds, and a raw record for every evaluation.
    """
    from core.checkpoints import step_from_path

    with open(published) as handle:
        saves = {rec["step"]: rec for rec in map(json.loads, handle)}
    latencies: list[float] = []
    raw: list[Result] = []
    previous: float | None = None
    for index, (path, start) in enumerate(starts):
        step = step_from_path(path)
        save = saves.get(step) if step is not None else None
        record: Result = {"step": step, "start": start, "published": None, "counted": False}
        if save is not None:
            record["published"] = save["mtime"]
            record["latency"] = start - save["mtime"]
            counts = (
                index > 0
                and save["mtime"] >= loop_start
                and (previous is None or save["mtime"] >= previous + throttle)
            )
            if counts:
                record["counted"] = True
                latencies.append(start - save["mtime"])
        raw.append(record)
        previous = start
    return latencies, raw


def _finish_trainer(proc: Any) -> None:
    """Wait for the trainer (bounded) and fail loudly if it failed."""
    try:
        code = proc.wait(timeout=120)
    except Exception:
        proc.kill()
        raise
    if code != 0:
        raise RuntimeError(f"W3 trainer exited with {code}")


def w3_ours(params: Params) -> Result:
    """`Experiment.continuous_eval` next to a trainer; evaluation starts timed by a wrapper
    around the evaluator ``shell.run.make_evaluator`` returns."""
    from benchmarks import model
    from shell import Experiment
    from shell import run as shell_run
    from shell.evaluator import Evaluator

    proc, trainer = _start_trainer(params)
    starts: list[tuple[str, float]] = []
    patched = "make_evaluator"  # the name shell.run calls: wrap what it returns
    real_make_evaluator = getattr(shell_run, patched)

    class Timed(Evaluator):
        """Records when each evaluation starts, then delegates."""

        def __init__(self, inner: Evaluator) -> None:
            self._inner = inner

        def evaluate(self, checkpoint_path: str) -> dict[str, Any]:
            starts.append((checkpoint_path, time.time()))
            return self._inner.evaluate(checkpoint_path)

        def close(self) -> None:
            self._inner.close()

    def make_timed(*args: Any, **kwargs: Any) -> Evaluator:
        inner: Evaluator = real_make_evaluator(*args, **kwargs)
        return Timed(inner)

    setattr(shell_run, patched, make_timed)
    try:
        estimator = model.estimator(params["model_dir"])
        experiment = Experiment(
            estimator,
            model.train_input_fn,
            model.eval_input_fn,
            eval_steps=params["eval_steps"],
            continuous_eval_throttle_secs=params["throttle_secs"],
        )
        loop_start = time.time()
        open(trainer["go"], "w").close()
        experiment.continuous_eval()
    finally:
        setattr(shell_run, patched, real_make_evaluator)
        _finish_trainer(proc)
    latencies, raw = _latencies(
        starts, trainer["published"], loop_start=loop_start, throttle=params["throttle_secs"]
    )
    return {"latencies": latencies, "evaluations": raw}


def w3_reference(params: Params) -> Result:
    """``tf.train.checkpoints_iterator(min_interval_secs=throttle)`` + ``estimator.evaluate``."""
    from benchmarks import model

    tf: Any = model.tf
    proc, trainer = _start_trainer(params)
    done = os.path.join(params["model_dir"], "tfexperiment", "chief-0.done.json")
    starts: list[tuple[str, float]] = []
    try:
        estimator = model.estimator(params["model_dir"])
        loop_start = time.time()
        open(trainer["go"], "w").close()
        for path in tf.train.checkpoints_iterator(
            params["model_dir"],
            min_interval_secs=params["throttle_secs"],
            timeout=2.0,
            timeout_fn=lambda: os.path.exists(done),
        ):
            starts.append((path, time.time()))
            estimator.evaluate(
                model.eval_input_fn, steps=params["eval_steps"], checkpoint_path=path
            )
    finally:
        _finish_trainer(proc)
    latencies, raw = _latencies(
        starts, trainer["published"], loop_start=loop_start, throttle=params["throttle_secs"]
    )
    return {"latencies": latencies, "evaluations": raw}


# -------------------------------------------------------------------------- W4 core decisions
def w4_ours(params: Params) -> Result:
    """Decisions per second of `core.continuous_eval.decide` in a simulated polling loop.

    The clock advances by the poll period per decision and a new checkpoint appears
    every ``checkpoint_every`` decisions, so the loop meets every kind of decision
    (no checkpoint, no new checkpoint, throttled, evaluate) as a real one does.
    """
    from core import continuous_eval as ce
    from core.checkpoints import Checkpoint

    decisions = int(params["decisions"])
    every = int(params["checkpoint_every"])
    policy = ce.EvalPolicy(throttle_secs=0.3, poll_secs=0.05)
    checkpoints = [
        None,
        *(
            Checkpoint(path=f"/m/model.ckpt-{i * 100}", step=i * 100)
            for i in range(1, decisions // every + 2)
        ),
    ]
    state = ce.EvalState(started_at=0.0)
    counts = {kind.value: 0 for kind in ce.EvalKind}
    decide, evaluate, record = ce.decide, ce.EvalKind.EVALUATE, ce.record_result
    with _Timer() as timer:
        for i in range(decisions):
            decision, state = decide(state, policy, now=i * 0.05, latest=checkpoints[i // every])
            counts[decision.kind.value] += 1
            if decision.kind is evaluate:
                state = record(state, global_step=(i // every) * 100)
    return {
        "seconds": timer.seconds,
        "decisions": decisions,
        "per_second": decisions / timer.seconds,
        "kinds": counts,
    }


# ---------------------------------------------------------------------- W5 import / start-up
def w5_import_core(params: Params) -> Result:
    """Time ``import core``; report whether it imported TensorFlow."""
    del params
    start = time.perf_counter()
    import core

    seconds = time.perf_counter() - start
    del core
    heavy = sorted(
        m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_estimator")
    )
    return {"seconds": seconds, "tensorflow_imported": bool(heavy)}


def w5_import_shell(params: Params) -> Result:
    """Time ``import shell`` and then loading ``Experiment`` and ``run_experiment`` from it.

    ``shell`` loads its public names on first use, so the bare import is cheap and
    TensorFlow arrives with ``Experiment``; ``seconds`` is the total until both are usable.
    """
    del params
    start = time.perf_counter()
    import shell

    bare = time.perf_counter() - start
    tf_after_bare = "tensorflow" in sys.modules
    shell.Experiment  # noqa: B018 - loads the name (and TensorFlow)
    shell.run_experiment  # noqa: B018
    return {
        "seconds": time.perf_counter() - start,
        "bare_import_seconds": bare,
        "tensorflow_after_bare_import": tf_after_bare,
    }


def w5_import_tf(params: Params) -> Result:
    """Time ``import tensorflow`` plus loading ``tf.estimator.Estimator`` (the reference)."""
    del params
    start = time.perf_counter()
    import tensorflow as tf

    tf.estimator.Estimator  # noqa: B018 - tf.estimator is loaded lazily: load it
    return {"seconds": time.perf_counter() - start}


def _first_step_hook(tf: Any) -> Any:
    """A ``SessionRunHook`` whose ``at`` is the wall clock of the first ``after_run``."""

    class FirstStep(tf.estimator.SessionRunHook):  # type: ignore[misc]
        """Records when the first training step ended."""

        at: float | None = None

        def after_run(self, run_context: Any, run_values: Any) -> None:
            """Record the first step's end."""
            if self.at is None:
                self.at = time.time()

    return FirstStep()


def w5_first_step(params: Params) -> Result:
    """Process spawn → first training step of ``run_experiment`` (default schedule)."""
    from benchmarks import model
    from shell import Experiment, run_experiment
    from shell._tf import tf

    first = _first_step_hook(tf)

    def experiment_fn(output_dir: str) -> Experiment:
        return Experiment(
            model.estimator(output_dir),
            model.train_input_fn,
            model.eval_input_fn,
            train_steps=1,
            train_hooks=[first],
        )

    run_experiment(experiment_fn, params["model_dir"])
    assert first.at is not None
    return {
        "seconds": first.at - params["spawned_at"],
        "from_child_start": first.at - CHILD_STARTED,
    }


def w5_first_step_tf(params: Params) -> Result:
    """Process spawn → first training step of a plain ``Estimator.train`` (the reference)."""
    from benchmarks import model

    tf: Any = model.tf
    first = _first_step_hook(tf)
    model.estimator(params["model_dir"]).train(model.train_input_fn, max_steps=1, hooks=[first])
    assert first.at is not None
    return {
        "seconds": first.at - params["spawned_at"],
        "from_child_start": first.at - CHILD_STARTED,
    }


def _w6(side: str) -> Callable[[Params], Result]:
    """W6 side ``ours`` or ``reference`` of `benchmarks.strategy_bench`, as a harness side."""

    def run(params: Params) -> Result:
        from benchmarks import strategy_bench

        measured = strategy_bench.measure(side, params)
        evaluations = [measured["evaluations"][step] for step in measured["steps"]]
        return {
            "seconds": measured["seconds"],
            "cpu_seconds": measured["cpu_seconds"],
            "close_seconds": measured["close_seconds"],
            "eval_steps": measured["steps"],
            "evaluations": evaluations,
            "final": evaluations[-1] if evaluations else {},
        }

    return run


SIDES: dict[str, Callable[[Params], Result]] = {
    "w1-ours": w1_ours,
    "w1-reference": w1_reference,
    "w1-train-only": w1_train_only,
    "w1-background": w1_background,
    "w1-inline": lambda params: w1_background({**params, "inline": True}),
    "w2-ours": w2_ours,
    "w2-reference": w2_reference,
    "w3-trainer": w3_trainer,
    "w3-ours": w3_ours,
    "w3-reference": w3_reference,
    "w4-ours": w4_ours,
    "w5-import-core": w5_import_core,
    "w5-import-shell": w5_import_shell,
    "w5-import-tf": w5_import_tf,
    "w5-first-step": w5_first_step,
    "w5-first-step-tf": w5_first_step_tf,
    "w6-ours": _w6("ours"),
    "w6-reference": _w6("reference"),
}


def main(argv: list[str] | None = None) -> int:
    """Run one side and write its figures (and ``peak_rss_kb``) to ``--out`` as JSON.

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child")
    parser.add_argument("side", choices=sorted(SIDES))
    parser.add_argument("--params", default="{}", help="JSON object of the side's parameters")
    parser.add_argument("--out", required=True, help="where to write the result JSON")
    args = parser.parse_args(argv)
    result = SIDES[args.side](json.loads(args.params))
    result["peak_rss_kb"] = peak_rss_kb()
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
