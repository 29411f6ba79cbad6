"""One MirroredStrategy case in a fresh process with 2 logical CPU devices.

``python -m tests.shell.strategy_cases CASE WORK_DIR`` runs one schedule of ours and the
same work with plain ``tf.estimator`` under the same strategy, and prints one line
``RESULT {json}`` with both sides' figures. A fresh process per case: logical devices
must be configured before TensorFlow initialises its devices.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.pop("TF_CONFIG", None)

import tensorflow as tf

DEVICES = ["/cpu:0", "/cpu:1"]
STEPS = 40
SAVE_STEPS = 20


def configure_devices(count: int = 2) -> None:
    """Split the one physical CPU into ``count`` logical devices (before TF initialises)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


configure_devices()

from core.settings import ExperimentSettings  # noqa: E402
from core.strategy import StrategyConfig, parse_strategy  # noqa: E402
from core.train_eval import evaluation_mode  # noqa: E402
from shell import Experiment, strategy  # noqa: E402
from shell.runner import run_experiment  # noqa: E402
from tests.shell import models  # noqa: E402

SPEC = parse_strategy({"type": "mirrored", "devices": DEVICES})
TRAIN = models.input_fn(repeat=True)
EVAL = models.input_fn(repeat=False)


def model_fn(features: Any, labels: Any, mode: Any) -> Any:
    """`tests.shell.models.model_fn` with a seeded kernel (Keras' unseeded initialisers
    ignore RunConfig's tf_random_seed), so both sides start from the same weights."""
    init = tf.compat.v1.glorot_uniform_initializer(seed=3)
    pred = tf.compat.v1.layers.Dense(1, kernel_initializer=init, name="out")(features["x"])
    loss = tf.compat.v1.losses.mean_squared_error(labels, pred)
    if mode == tf.estimator.ModeKeys.EVAL:
        mae = tf.compat.v1.metrics.mean_absolute_error(labels, pred)
        return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"mae": mae})
    opt = tf.compat.v1.train.AdamOptimizer(0.05)
    train_op = opt.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
    return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def estimator(model_dir: str, spec: StrategyConfig | None = SPEC, **run: Any) -> Any:
    """The shell tests' model under ``spec``, seeded, checkpointing every SAVE_STEPS."""
    config = strategy.run_config(
        spec,
        model_dir=model_dir,
        save_checkpoints_steps=SAVE_STEPS,
        save_checkpoints_secs=None,
        keep_checkpoint_max=50,
        log_step_count_steps=None,
        save_summary_steps=1_000_000,
        tf_random_seed=7,
        **run,
    )
    return tf.estimator.Estimator(model_fn=model_fn, config=config)


def scalars(result: dict[str, Any] | None) -> dict[str, float]:
    """An evaluation result's scalars as floats."""
    return {k: float(v) for k, v in (result or {}).items() if getattr(v, "ndim", 0) == 0}


def eval_steps(model_dir: str) -> list[int]:
    """The global steps of the evaluations written to ``model_dir/eval``, in order."""
    steps = []
    for path in sorted(glob.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            if any(v.tag == "loss" for v in event.summary.value):
                steps.append(int(event.step))
    return steps


def weights(est: Any) -> dict[str, list[float]]:
    """The model's trained variables."""
    return {
        name: [float(x) for x in est.get_variable_value(name).ravel()]
        for name in ("out/kernel", "out/bias", "global_step")
    }


def _experiment(est: Any, **kwargs: Any) -> Experiment:
    kwargs.setdefault("train_steps", STEPS)
    kwargs.setdefault("eval_steps", None)
    return Experiment(est, TRAIN, EVAL, continuous_eval_throttle_secs=0, **kwargs)


def case_train(work: str) -> dict[str, Any]:
    """train: same trained weights as Estimator.train(max_steps)."""
    ours = estimator(f"{work}/ours")
    _experiment(ours).train()
    ref = estimator(f"{work}/ref")
    ref.train(TRAIN, max_steps=STEPS)
    return {"ours": weights(ours), "ref": weights(ref)}


def case_evaluate(work: str) -> dict[str, Any]:
    """evaluate: the same result as Estimator.evaluate on the latest checkpoint."""
    est = estimator(f"{work}/model")
    est.train(TRAIN, max_steps=STEPS)
    ours = _experiment(est).evaluate()
    ref = est.evaluate(EVAL, steps=None)
    return {"ours": scalars(ours), "ref": scalars(ref)}


def case_continuous_eval(work: str) -> dict[str, Any]:
    """continuous_eval: every checkpoint evaluated as Estimator.evaluate evaluates it."""
    est = estimator(f"{work}/model")
    est.train(TRAIN, max_steps=STEPS)
    seen: list[dict[str, float]] = []
    exp = _experiment(est)
    exp.on_evaluation(lambda result: seen.append(scalars(result)))
    exp.continuous_eval()
    ref = [
        scalars(est.evaluate(EVAL, steps=None, checkpoint_path=f"{work}/model/model.ckpt-{s}"))
        for s in sorted(int(r["global_step"]) for r in seen)
    ]
    return {"ours": sorted(seen, key=lambda r: r["global_step"]), "ref": ref}


def _versus_tf_train_and_evaluate(final: Any, ours_dir: str, ref_dir: str) -> dict[str, Any]:
    """Run tf.estimator.train_and_evaluate in ``ref_dir``; both sides' results and steps."""
    train_spec = tf.estimator.TrainSpec(TRAIN, max_steps=STEPS)
    eval_spec = tf.estimator.EvalSpec(EVAL, steps=None, start_delay_secs=0, throttle_secs=0)
    ref, _ = tf.estimator.train_and_evaluate(estimator(ref_dir), train_spec, eval_spec)
    return {
        "ours": scalars(final),
        "ref": scalars(ref),
        "ours_steps": eval_steps(ours_dir),
        "ref_steps": eval_steps(ref_dir),
    }


def case_train_and_evaluate(work: str) -> dict[str, Any]:
    """train_and_evaluate: the evaluated steps and results of tf.estimator.train_and_evaluate."""
    ours_dir, ref_dir = f"{work}/ours", f"{work}/ref"
    final, _ = _experiment(estimator(ours_dir), eval_every_n_steps=SAVE_STEPS).train_and_evaluate()
    return {
        **_versus_tf_train_and_evaluate(final, ours_dir, ref_dir),
    }


def case_train_and_evaluate_in_background(work: str) -> dict[str, Any]:
    """train_and_evaluate with eval_in_background: tf.estimator's evaluated steps and results,
    every evaluation on the background worker's own graph under eval_distribute."""
    ours_dir, ref_dir = f"{work}/ours", f"{work}/ref"
    settings = ExperimentSettings(train_steps=STEPS, eval_steps=None, eval_every_n_steps=SAVE_STEPS)
    ours_est = estimator(ours_dir)
    mode = evaluation_mode(
        requested=True,
        eval_every_n_steps=SAVE_STEPS,
        keep_checkpoint_max=ours_est.config.keep_checkpoint_max,
        save_checkpoints_steps=ours_est.config.save_checkpoints_steps,
    )
    seen: list[dict[str, float]] = []
    exp = Experiment.from_settings(
        ours_est, TRAIN, EVAL, settings=settings, eval_in_background=True
    )
    exp.on_evaluation(lambda result: seen.append(scalars(result)))
    final, _ = exp.train_and_evaluate()
    return {
        **_versus_tf_train_and_evaluate(final, ours_dir, ref_dir),
        "seen_steps": [int(r["global_step"]) for r in seen],
        "mode": mode.mode.value,
    }


def case_continuous_train_and_evaluate(work: str) -> dict[str, Any]:
    """continuous_train_and_evaluate: train/evaluate iterations as tf.estimator runs them."""
    ours_dir, ref_dir = f"{work}/ours", f"{work}/ref"
    exp = _experiment(estimator(ours_dir), train_steps_per_iteration=SAVE_STEPS)
    final, _ = exp.continuous_train_and_evaluate()
    ref_est = estimator(ref_dir)
    ref: dict[str, Any] = {}
    for _ in range(STEPS // SAVE_STEPS):
        ref_est.train(TRAIN, steps=SAVE_STEPS)
        ref = ref_est.evaluate(EVAL, steps=None)
    return {
        "ours": scalars(final),
        "ref": scalars(ref),
        "ours_steps": eval_steps(ours_dir),
        "ref_steps": eval_steps(ref_dir),
    }


def case_test(work: str) -> dict[str, Any]:
    """test: one training step and one evaluation step, as tf.estimator gives them."""
    ours = _experiment(estimator(f"{work}/ours")).test()
    ref_est = estimator(f"{work}/ref")
    ref_est.train(TRAIN, steps=1)
    ref = ref_est.evaluate(EVAL, steps=1)
    return {"ours": scalars(ours), "ref": scalars(ref)}


def case_refuse_default_ops(work: str) -> dict[str, Any]:
    """A user-built MirroredStrategy with TF's default ops over 2 CPUs is refused, untrained."""
    model_dir = f"{work}/model"

    def experiment_fn(output_dir: str) -> Experiment:
        mirrored = tf.distribute.MirroredStrategy(DEVICES)
        config = tf.estimator.RunConfig(
            model_dir=output_dir, train_distribute=mirrored, eval_distribute=mirrored
        )
        est = tf.estimator.Estimator(model_fn=model_fn, config=config)
        return _experiment(est)

    try:
        run_experiment(experiment_fn, model_dir, schedule="train_and_evaluate")
    except Exception as err:  # the refusal, reported to the parent
        return {
            "error": type(err).__name__,
            "message": str(err),
            "checkpoints": glob.glob(f"{model_dir}/model.ckpt-*"),
        }
    return {"error": None, "message": "", "checkpoints": glob.glob(f"{model_dir}/model.ckpt-*")}


def replica_autotune_off(graph: Any) -> list[str]:
    """The devices of ``graph``'s datasets whose tf.data options turn autotune off."""
    from tensorflow.core.framework import dataset_options_pb2

    devices = []
    for op in graph.get_operations():
        if op.type != "OptionsDataset":
            continue
        options = dataset_options_pb2.Options.FromString(op.get_attr("serialized_options"))
        tuning = options.autotune_options
        if tuning.WhichOneof("optional_enabled") == "enabled" and not tuning.enabled:
            devices.append(tf.DeviceSpec.from_string(op.device).to_string())
    return sorted(devices)


class _GraphSeen(tf.estimator.SessionRunHook):
    """Records, in `begin`, the replica-autotune devices of the graph being run."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def begin(self) -> None:
        self.seen.append(replica_autotune_off(tf.compat.v1.get_default_graph()))


def _replica_iterator_graph(mirrored: Any) -> Any:
    """A graph with the strategy's replica input iterator for TRAIN (as Estimator builds it)."""
    graph = tf.Graph()
    with graph.as_default(), mirrored.scope():
        mirrored.make_input_fn_iterator(lambda context: TRAIN())
    return graph


def case_replica_autotune(work: str) -> dict[str, Any]:
    """Where replica inputs get autotune off: inside `no_replica_autotune` on its own thread,
    in our training and evaluation graphs, never in tf.estimator's or another thread's."""
    import threading

    from shell.replica_input import no_replica_autotune, replica_autotune_is_off

    mirrored = strategy.build_strategy(SPEC)
    outside = replica_autotune_off(_replica_iterator_graph(mirrored))
    other: list[list[str]] = []
    with no_replica_autotune():
        inside = replica_autotune_off(_replica_iterator_graph(mirrored))
        on = replica_autotune_is_off()
        thread = threading.Thread(
            target=lambda: other.append(replica_autotune_off(_replica_iterator_graph(mirrored)))
        )
        thread.start()
        thread.join()
    after = replica_autotune_off(_replica_iterator_graph(mirrored))
    ours_train, ours_eval, ref_train = _GraphSeen(), _GraphSeen(), _GraphSeen()
    ours_dir, ref_dir = f"{work}/ours", f"{work}/ref"
    exp = Experiment(
        estimator(ours_dir),
        TRAIN,
        EVAL,
        train_steps=STEPS,
        eval_steps=None,
        eval_every_n_steps=SAVE_STEPS,
        train_hooks=[ours_train],
        eval_hooks=[ours_eval],
    )
    final, _ = exp.train_and_evaluate()
    estimator(ref_dir).train(TRAIN, max_steps=STEPS, hooks=[ref_train])
    return {
        "outside": outside,
        "inside": inside,
        "on": on,
        "other_thread": other,
        "after": after,
        "on_after": replica_autotune_is_off(),
        "ours_train": ours_train.seen,
        "ours_eval": ours_eval.seen,
        "ref_train": ref_train.seen,
        "ours_steps": eval_steps(ours_dir),
        "ours_weights": weights(estimator(ours_dir)),
        "ref_weights": weights(estimator(ref_dir)),
        "final_step": int(final["global_step"]) if final else None,
    }


CASES: dict[str, Callable[[str], dict[str, Any]]] = {
    "train": case_train,
    "evaluate": case_evaluate,
    "continuous_eval": case_continuous_eval,
    "train_and_evaluate": case_train_and_evaluate,
    "train_and_evaluate_in_background": case_train_and_evaluate_in_background,
    "continuous_train_and_evaluate": case_continuous_train_and_evaluate,
    "test": case_test,
    "refuse_default_ops": case_refuse_default_ops,
    "replica_autotune": case_replica_autotune,
}


def main(argv: list[str]) -> int:
    """Run case ``argv[0]`` in work directory ``argv[1]``; print ``RESULT {json}``."""
    name, work = argv
    result = CASES[name](work)
    result["devices"] = [d.name for d in tf.config.list_logical_devices("CPU")]
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
