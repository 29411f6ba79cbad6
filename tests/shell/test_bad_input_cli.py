"""The command line on bad input and failed runs: exit 2 before anything starts, or exit 1 in
one readable line (the original error, not TensorFlow's flattened traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from shell.cli_checks import failure_line
from tests.shell.configs import base_config

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tfx_bad_cli_fns"
SOURCE = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf

    from shell import Experiment


    def _estimator(output_dir, steps=5):
        config = tf.estimator.RunConfig(model_dir=output_dir, save_checkpoints_steps=steps)
        return tf.estimator.LinearRegressor([tf.feature_column.numeric_column("x", [2])],
                                            config=config)


    def _eval():
        x = np.ones((8, 2), "float32")
        return tf.data.Dataset.from_tensor_slices(({"x": x}, np.zeros(8, "float32"))).batch(4)


    def _rows():
        for i in range(10**6):
            if i == 60:
                raise ValueError("row 60 of my data is broken: 'abc' is not a number")
            yield {"x": np.ones(2, "float32")}, np.float32(i % 2)


    def raising_midway(output_dir):
        def input_fn():
            spec = ({"x": tf.TensorSpec([2], tf.float32)}, tf.TensorSpec([], tf.float32))
            return tf.data.Dataset.from_generator(_rows, output_signature=spec).batch(4)
        return Experiment(_estimator(output_dir), input_fn, _eval, train_steps=100,
                          eval_every_n_steps=5)


    def nan_loss(output_dir):
        def input_fn():
            x = np.full((8, 2), 1e30, "float32")
            ds = tf.data.Dataset.from_tensor_slices(({"x": x}, np.zeros(8, "float32")))
            return ds.repeat().batch(4).map(lambda f, y: ({"x": f["x"] * f["x"]}, y))
        return Experiment(_estimator(output_dir), input_fn, _eval, train_steps=50)


    def model_fn(features, labels, mode):
        logits = tf.compat.v1.layers.Dense(2)(tf.stack([features["a"], features["b"]], 1))
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
        if mode == tf.estimator.ModeKeys.EVAL:
            accuracy = tf.compat.v1.metrics.accuracy(labels, tf.argmax(logits, 1))
            return tf.estimator.EstimatorSpec(mode, loss=loss,
                                              eval_metric_ops={"accuracy": accuracy})
        train_op = tf.compat.v1.train.AdamOptimizer(0.05).minimize(
            loss, global_step=tf.compat.v1.train.get_global_step())
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


    def custom(model_dir, params):
        config = tf.estimator.RunConfig(model_dir=model_dir, save_checkpoints_steps=10)
        return tf.estimator.Estimator(model_fn, config=config)
""")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A working directory holding the experiment module and the base config's CSVs."""
    (tmp_path / f"{MODULE}.py").write_text(SOURCE)
    return tmp_path


def _console(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(cwd), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "shell", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _failure(done: subprocess.CompletedProcess[str]) -> str:
    """The run's 'the run failed' line (asserting exit 1, no traceback, a --verbose hint)."""
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    [line] = [x for x in _lines(done.stderr) if "the run failed" in x]
    assert "--verbose" in _lines(done.stderr)[-1]
    return line


# ----------------------------------------------------------------- exit 1, one readable line
def test_best_export_of_a_missing_metric_fails_at_the_first_evaluation(folder: Path) -> None:
    """A best export on 'auc' of a custom model_fn exits 1 at the first evaluation naming
    exports[0].metric and the metrics there are; nothing is exported, checkpoints are kept."""
    config = base_config(folder)
    config["estimator"] = {"factory": f"{MODULE}:custom", "feature_columns": ["a", "b"]}
    config["train_steps"] = 40
    config["exports"] = [{"name": "best", "type": "best", "metric": "auc"}]
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    done = _console(folder, "run", "--config", str(path), "-o", str(folder / "m"))
    line = _failure(done)
    assert "exports[0].metric='auc'" in line and "step 10" in line, line
    assert "metrics: accuracy, loss" in line, line
    assert not (folder / "m" / "export" / "best").exists() or not list(
        (folder / "m" / "export" / "best").iterdir()
    )
    assert (folder / "m" / "model.ckpt-10.index").exists()
    assert not (folder / "m" / "model.ckpt-40.index").exists()


def test_an_input_fn_raising_midway_prints_its_own_message(folder: Path) -> None:
    """An input_fn raising mid-run exits 1 with its ValueError's message in one short line;
    --verbose adds the traceback; the checkpoints already written stay."""
    done = _console(folder, "run", f"{MODULE}:raising_midway", "-o", str(folder / "m"))
    line = _failure(done)
    assert "ValueError: row 60 of my data is broken: 'abc' is not a number" in line, line
    assert "[[" not in line and "File " not in line and len(line) < 260, line
    assert (folder / "m" / "model.ckpt-10.index").exists()
    verbose = _console(folder, "run", f"{MODULE}:raising_midway", "-o", str(folder / "v"), "-v")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_nan_loss_prints_one_line(folder: Path) -> None:
    """inf reaching the loss exits 1 with NanLossDuringTrainingError's own message."""
    done = _console(folder, "run", f"{MODULE}:nan_loss", "-o", str(folder / "m"))
    line = _failure(done)
    assert "NanLossDuringTrainingError: NaN loss during training." in line, line


def test_failure_line_keeps_the_original_error_of_a_tensorflow_error() -> None:
    """A TF OpError's message is cut to its first meaningful line, the original error's."""
    from shell._tf import tf

    message = (
        "Graph execution error:\n\nValueError: bad row 3\nTraceback (most recent call last):\n\n"
        '  File "x.py", line 1, in gen\n    raise ValueError("bad row 3")\n\n'
        "ValueError: bad row 3\n\n\n\t [[{{node PyFunc}}]]\n\t [[IteratorGetNext]]"
    )
    err = tf.errors.InvalidArgumentError(None, None, message)
    assert failure_line(err) == "ValueError: bad row 3 (InvalidArgumentError in TensorFlow)"
    only_trace = tf.errors.UnknownError(
        None,
        None,
        "Traceback (most recent call last):\n  File \"x\"\nKeyError: 'x'\n\t [[{{node A}}]]",
    )
    assert failure_line(only_trace) == "KeyError: 'x' (UnknownError in TensorFlow)"
    assert failure_line(RuntimeError("boom\n  more")) == "RuntimeError: boom more"
    assert len(failure_line(RuntimeError("x" * 999))) == 200


# ----------------------------------------------------------------- exit 2 before anything
def _assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = _lines(done.stdout + done.stderr)
    assert done.returncode == 2, lines
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines
    assert "started" not in lines[0] and "Traceback" not in done.stderr


def test_report_out_that_is_not_a_png_exits_2(folder: Path) -> None:
    """`report --out x.txt` exits 2 naming --out (nothing is read or written)."""
    (folder / "m").mkdir()
    done = _console(folder, "report", str(folder / "m"), "--out", "x.txt")
    _assert_refused(done, "--out='x.txt'", ".png")
    assert not (folder / "x.txt").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--timeout", "-1"), ("--timeout=-1.0", "must be")),
        (("--timeout", "0"), ("--timeout=0.0",)),
        (("--workers", "500"), ("--workers=500", "at most", "per CPU core")),
        (("--workers", "-1"), ("--workers=-1", ">= 0")),
        (("--ps", "-2"), ("--ps=-2", ">= 0")),
    ],
    ids=["timeout-negative", "timeout-zero", "workers-500", "workers-negative", "ps-negative"],
)
def test_bad_cluster_counts_exit_2_before_starting(
    folder: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    """A bad --timeout, --workers or --ps exits 2 in one line; no task starts."""
    done = _console(folder, "cluster", f"{MODULE}:nan_loss", "-o", str(folder / "m"), *args)
    _assert_refused(done, *words)
    assert not (folder / "m").exists()


@pytest.mark.parametrize(
    ("spec", "source", "words"),
    [
        ("tfx_no_such_module:f", None, ("cannot import module 'tfx_no_such_module'",)),
        ("tfx_cluster_syntax:f", "def f(:\n", ("SyntaxError",)),
        ("tfx_cluster_raises:f", "raise RuntimeError('no GPU')\n", ("RuntimeError", "no GPU")),
        ("tfx_cluster_nofn:f", "x = 1\n", ("has no attribute 'f'",)),
        ("tfx_cluster_notfn:f", "f = 5\n", ("is not callable",)),
    ],
    ids=["missing", "syntax-error", "raises", "no-function", "not-callable"],
)
def test_a_bad_module_exits_2_once_before_any_task_starts(
    folder: Path, spec: str, source: str | None, words: tuple[str, ...]
) -> None:
    """`cluster` imports MODULE:FN first: a bad module is one line (exit 2), not one per task."""
    if source is not None:
        (folder / f"{spec.split(':')[0]}.py").write_text(source)
    done = _console(folder, "cluster", spec, "-o", str(folder / "m"))
    _assert_refused(done, f"experiment_fn='{spec}'", *words)


def test_cluster_with_a_bad_config_exits_2_before_starting(folder: Path) -> None:
    """`cluster --config` validates the file (and --set) first, naming the file and key."""
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(base_config(folder)))
    done = _console(folder, "cluster", "--config", str(path), "--set", "train_steps=-3")
    _assert_refused(done, f"{path}: train_steps=-3", ">= ")
    both = _console(folder, "cluster", f"{MODULE}:nan_loss", "--config", str(path))
    _assert_refused(both, "exactly one")


def test_a_bad_config_is_refused_before_tensorflow_is_imported(folder: Path) -> None:
    """`run --config` validates the file without importing TensorFlow (exit 2 in seconds)."""
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump({**base_config(folder), "train_steps": "many"}))
    code = (
        "import sys\nfrom shell.cli import main\n"
        f"code = main(['run', '--config', {str(path)!r}, '-o', 'm'])\n"
        "print('tensorflow' in sys.modules)\nsys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TF_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == "False"
    assert "train_steps='many'" in done.stderr
