"""Export strategies: ExportStrategy records and tf.estimator.Exporters, real SavedModels."""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shell import Experiment, ExportStrategy
from shell import exports as ex
from shell._tf import tf
from tests.shell import models

TRAINED_STEPS = 20


@pytest.fixture(scope="module")
def exporters_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """train_and_evaluate (20 steps, final evaluation only) with Latest, Best and Final exporters."""
    model_dir = str(tmp_path_factory.mktemp("exporters") / "model")
    exporters = [
        tf.estimator.LatestExporter("latest", models.serving_input_fn),
        tf.estimator.BestExporter("best", models.serving_input_fn),
        tf.estimator.FinalExporter("final", models.serving_input_fn),
    ]
    experiment = Experiment(
        models.estimator(model_dir),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=TRAINED_STEPS,
        eval_steps=None,
        eval_every_n_steps=None,
        export_strategies=exporters,
    )
    result, exported = experiment.train_and_evaluate()
    return {"model_dir": model_dir, "result": result, "exported": exported}


def _timestamp_dirs(model_dir: str, name: str) -> list[str]:
    return sorted(glob.glob(os.path.join(model_dir, "export", name, "*")))


# ---------------------------------------------------------------- ExportStrategy


def test_export_strategy_is_positional_like_the_namedtuple() -> None:
    """ExportStrategy("best", fn) sets name and export_fn positionally."""
    strategy = ExportStrategy("best", print)
    assert (strategy.name, strategy.export_fn) == ("best", print)


@pytest.mark.parametrize("name", ["", "a/b", ".", "..", 3, None])
def test_export_strategy_rejects_a_bad_name(name: Any) -> None:
    """An export name that is not a plain non-empty directory name is a ValueError."""
    with pytest.raises(ValueError, match=r"ExportStrategy\.name"):
        ExportStrategy(name, print)


def test_export_strategy_rejects_a_non_callable_fn() -> None:
    """A non-callable export_fn is a TypeError naming export_fn."""
    with pytest.raises(TypeError, match="export_fn"):
        ExportStrategy("x", "not callable")


def test_export_fns_get_as_many_arguments_as_they_take(model_dir: str) -> None:
    """export_fns of 1..4 parameters get that prefix of (estimator, path, checkpoint, result)."""
    calls: dict[str, tuple[Any, ...]] = {}

    def one(estimator: Any) -> str:
        calls["one"] = (estimator,)
        return "1"

    def two(estimator: Any, export_path: str) -> str:
        calls["two"] = (estimator, export_path)
        return "2"

    def three(estimator: Any, export_path: str, checkpoint_path: str) -> str:
        calls["three"] = (estimator, export_path, checkpoint_path)
        return "3"

    def four(estimator: Any, export_path: str, checkpoint_path: str, eval_result: Any) -> str:
        calls["four"] = (estimator, export_path, checkpoint_path, eval_result)
        return "4"

    def star(*args: Any) -> str:
        calls["star"] = args
        return "*"

    estimator = models.estimator(model_dir)
    strategies = [ExportStrategy(f.__name__, f) for f in (one, two, three, four, star)]
    experiment = Experiment(
        estimator,
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        eval_steps=None,
        export_strategies=strategies,
    )
    result = experiment.test()  # trains 1 step, evaluates, exports once
    checkpoint = os.path.join(model_dir, f"model.ckpt-{TRAINED_STEPS + 1}")
    base = os.path.join(model_dir, "export")
    assert calls == {
        "one": (estimator,),
        "two": (estimator, os.path.join(base, "two")),
        "three": (estimator, os.path.join(base, "three"), checkpoint),
        "four": (estimator, os.path.join(base, "four"), checkpoint, result),
        "star": (estimator, os.path.join(base, "star"), checkpoint, result),
    }


def test_export_strategy_returns_are_the_export_results(model_dir: str) -> None:
    """train_and_evaluate returns what each strategy returned; bytes paths become str."""
    strategies = [
        ExportStrategy("a", lambda estimator: b"/exported/a"),
        ExportStrategy("b", lambda estimator: None),
    ]
    experiment = Experiment(
        models.estimator(model_dir),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=TRAINED_STEPS,
        eval_steps=None,
        export_strategies=strategies,
    )
    _, exported = experiment.train_and_evaluate()
    assert exported == ["/exported/a", None]


def test_export_strategy_writes_a_saved_model_that_loads_and_predicts(model_dir: str) -> None:
    """An ExportStrategy calling export_saved_model lands in export/<name>/<timestamp>/ and serves."""

    def export(estimator: Any, export_path: str) -> Any:
        return estimator.export_saved_model(export_path, models.serving_input_fn)

    experiment = Experiment(
        models.estimator(model_dir),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=TRAINED_STEPS,
        eval_steps=None,
        export_strategies=ExportStrategy("serving", export),
    )
    _, exported = experiment.train_and_evaluate()
    [path] = _timestamp_dirs(model_dir, "serving")
    assert exported == [path]
    assert os.path.basename(path).isdigit()
    _assert_serves(path, os.path.join(model_dir, f"model.ckpt-{TRAINED_STEPS}"))


def _assert_serves(saved_model: str, checkpoint: str) -> None:
    """Load `saved_model` and check its serving signature computes x @ kernel + bias."""
    loaded = tf.saved_model.load(saved_model)
    serve = loaded.signatures["serving_default"]
    x = np.array([[1.0, 2.0], [-0.5, 0.25]], dtype=np.float32)
    out = serve(x=tf.constant(x))
    kernel = tf.train.load_variable(checkpoint, "out/kernel")
    bias = tf.train.load_variable(checkpoint, "out/bias")
    np.testing.assert_allclose(out["y"].numpy(), x @ kernel + bias, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- tf.estimator.Exporter


def test_estimator_exporters_are_accepted(tmp_path: Path) -> None:
    """LatestExporter, BestExporter and FinalExporter are valid export_strategies."""
    exporters = [
        tf.estimator.LatestExporter("latest", models.serving_input_fn),
        tf.estimator.BestExporter("best", models.serving_input_fn),
        tf.estimator.FinalExporter("final", models.serving_input_fn),
    ]
    experiment = Experiment(
        models.SpyEstimator(str(tmp_path)),
        models.raising_input_fn,
        models.raising_input_fn,
        export_strategies=exporters,
    )
    assert experiment.export_strategies == tuple(exporters)
    single = Experiment(
        models.SpyEstimator(str(tmp_path)),
        models.raising_input_fn,
        models.raising_input_fn,
        export_strategies=exporters[0],
    )
    assert single.export_strategies == (exporters[0],)


@pytest.mark.parametrize("name", ["latest", "best", "final"])
def test_exporters_land_in_export_name_timestamp(exporters_run: dict[str, Any], name: str) -> None:
    """Each exporter writes one SavedModel to <model_dir>/export/<name>/<timestamp>/."""
    model_dir = exporters_run["model_dir"]
    [path] = _timestamp_dirs(model_dir, name)
    assert os.path.basename(path).isdigit()
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    assert path in exporters_run["exported"]


def test_exporter_saved_model_loads_and_predicts(exporters_run: dict[str, Any]) -> None:
    """A FinalExporter's SavedModel loads with tf.saved_model.load and predicts via its signature."""
    model_dir = exporters_run["model_dir"]
    [path] = _timestamp_dirs(model_dir, "final")
    _assert_serves(path, os.path.join(model_dir, f"model.ckpt-{TRAINED_STEPS}"))


# ---------------------------------------------------------------- reruns and ownership


def _exporters_experiment(model_dir: str) -> Experiment:
    return Experiment(
        models.estimator(model_dir),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=TRAINED_STEPS,
        eval_steps=None,
        eval_every_n_steps=None,
        export_strategies=[
            tf.estimator.LatestExporter("latest", models.serving_input_fn),
            tf.estimator.FinalExporter("final", models.serving_input_fn),
        ],
    )


def test_a_rerun_into_a_finished_model_dir_exports_nothing_new(tmp_path: Path) -> None:
    """Running train_and_evaluate again on a finished model_dir writes no second export of the
    same checkpoint; the export directory records the checkpoint it exported."""
    model_dir = str(tmp_path / "model")
    _exporters_experiment(model_dir).train_and_evaluate()
    first = {name: _timestamp_dirs(model_dir, name) for name in ("latest", "final")}
    _, exported = _exporters_experiment(model_dir).train_and_evaluate()
    assert exported == [None, None]
    for name in ("latest", "final"):
        assert len(first[name]) == 1
        assert _timestamp_dirs(model_dir, name) == first[name]
        recorded = ex.exported_checkpoints(os.path.join(model_dir, "export", name))
        assert recorded == (f"model.ckpt-{TRAINED_STEPS}",)


def test_only_the_chief_exports_in_a_cluster(
    trained_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an evaluator's TF_CONFIG run_exports writes nothing; with the chief's it exports."""
    estimator = models.estimator(trained_dir)
    latest = tf.train.latest_checkpoint(trained_dir)
    strategies = (tf.estimator.LatestExporter("latest", models.serving_input_fn),)
    cluster = {"chief": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]}
    evaluator = {"cluster": cluster, "task": {"type": "evaluator", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(evaluator))
    kwargs: dict[str, Any] = {"checkpoint_path": latest, "eval_result": None, "is_final": True}
    assert ex.run_exports(strategies, estimator, **kwargs) == []
    assert not os.path.exists(os.path.join(trained_dir, "export", "latest"))
    monkeypatch.setenv("TF_CONFIG", json.dumps({**evaluator, "task": {"type": "chief"}}))
    [path] = ex.run_exports(strategies, estimator, **kwargs)
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    shutil.rmtree(os.path.join(trained_dir, "export"))


def test_a_best_export_of_a_missing_metric_raises_before_any_export(model_dir: str) -> None:
    """A BestExporter whose metric the result lacks raises ExportMetricError naming it, and
    the exporters listed before it have not exported."""
    estimator = models.estimator(model_dir)
    strategies = (
        tf.estimator.LatestExporter("latest", models.serving_input_fn),
        tf.estimator.BestExporter("best", models.serving_input_fn),  # compares 'loss'
    )
    result = {"global_step": 40, "average_loss": 0.5}
    with pytest.raises(ex.ExportMetricError, match=r"export_strategies\[1\].*'best'.*average_loss"):
        ex.run_exports(
            strategies,
            estimator,
            checkpoint_path=tf.train.latest_checkpoint(model_dir),
            eval_result=result,
            is_final=True,
        )
    assert not os.path.exists(os.path.join(model_dir, "export"))


def _corrupt_event_file(eval_dir: str) -> str:
    """An event file whose only record fails its CRC check, as one caught mid-write."""
    path = os.path.join(eval_dir, "events.out.tfevents.1.being-written")
    with open(path, "wb") as handle:
        handle.write((40).to_bytes(8, "little") + b"\0\0\0\0" + b"x" * 20)
    return path


class _CountingBestExporter(tf.estimator.BestExporter):  # type: ignore[misc]
    """A BestExporter that counts how often it reads the evaluation event files."""

    reads = 0

    def _get_best_eval_result(self, event_files: str) -> Any:
        self.reads += 1
        return super()._get_best_eval_result(event_files)


def test_a_best_export_reads_again_while_another_task_writes_an_event_file(
    exporters_run: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Pins that a BestExporter meeting a half-written event file reads again and goes on."""
    model_dir = exporters_run["model_dir"]
    exporter = _CountingBestExporter("best_again", models.serving_input_fn)
    path = _corrupt_event_file(os.path.join(model_dir, "eval"))
    fixed = threading.Timer(0.3, os.remove, args=(path,))
    fixed.start()
    try:
        with caplog.at_level(logging.INFO, logger="tfexperiment"):
            exported = ex.run_exports(
                (exporter,),
                models.estimator(model_dir),
                checkpoint_path=tf.train.latest_checkpoint(model_dir),
                eval_result=exporters_run["result"],
                is_final=False,
            )
    finally:
        fixed.join()
    assert "was being written" in caplog.text
    assert exporter.reads >= 2  # the event files were read again, not skipped
    assert exported[0] is not None and os.path.isdir(exported[0])


def test_an_event_file_that_stays_corrupt_fails_the_export(exporters_run: dict[str, Any]) -> None:
    """Pins that a corrupt event file still raises DataLossError after the bounded retries."""
    model_dir = exporters_run["model_dir"]
    path = _corrupt_event_file(os.path.join(model_dir, "eval"))
    waits: list[float] = []
    try:
        with pytest.raises(tf.errors.DataLossError):
            ex._export_reading_events(
                tf.estimator.BestExporter("best_corrupt", models.serving_input_fn),
                models.estimator(model_dir),
                os.path.join(model_dir, "export", "best_corrupt"),
                tf.train.latest_checkpoint(model_dir),
                exporters_run["result"],
                False,
                sleep=waits.append,
            )
    finally:
        os.remove(path)
    assert len(waits) == ex.READ_RETRY.attempts - 1
