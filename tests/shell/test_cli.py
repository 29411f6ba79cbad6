"""The tfexperiment command line: exit codes, one-line errors, schedules, progress display."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.schedule import Schedule
from core.task_roles import SummaryKind
from shell.cli import SCHEDULE_HELP, main
from shell.progress import Progress, RunSummary

FNS = "tfx_cli_fns"
FNS_SOURCE = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf

    from shell import Experiment

    X = np.linspace(-1, 1, 32, dtype="float32")


    def _input(repeat):
        def input_fn():
            ds = tf.data.Dataset.from_tensor_slices(({"x": X}, 2 * X)).batch(8)
            return ds.repeat() if repeat else ds
        return input_fn


    def _estimator(output_dir):
        config = tf.estimator.RunConfig(model_dir=output_dir, save_checkpoints_steps=5)
        return tf.estimator.LinearRegressor([tf.feature_column.numeric_column("x")], config=config)


    def good(output_dir):
        return Experiment(_estimator(output_dir), _input(True), _input(False), train_steps=10,
                          eval_steps=None)


    def failing(output_dir):
        def broken():
            raise RuntimeError("boom: the input pipeline broke")
        return Experiment(_estimator(output_dir), broken, broken, train_steps=10)


    def not_an_experiment(output_dir):
        return 42
""")


@pytest.fixture(scope="module")
def fns_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the experiment functions module `tfx_cli_fns`."""
    folder = tmp_path_factory.mktemp("fns")
    (folder / f"{FNS}.py").write_text(FNS_SOURCE)
    (folder / "bad.yaml").write_text(
        "estimator: {type: LinearRegressor}\n"
        "train_input: {path: missing.csv, label: y}\n"
        "eval_input: {path: missing.csv}\n"
    )
    return folder


@pytest.fixture(autouse=True)
def _importable(fns_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs import `tfx_cli_fns`, as a subprocess would from its cwd; no TF_CONFIG."""
    monkeypatch.syspath_prepend(str(fns_dir))
    monkeypatch.delenv("TF_CONFIG", raising=False)


def _stderr_lines(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[str]]:
    out, err = capsys.readouterr()
    return out, [line for line in err.splitlines() if line.strip()]


def test_schedules_lists_every_schedule_once(capsys: pytest.CaptureFixture[str]) -> None:
    """`schedules` prints one line per schedule, name first, and exits 0."""
    assert main(["schedules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [s.value for s in Schedule]
    assert set(SCHEDULE_HELP) == set(Schedule)


def test_run_module_function_exits_0_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run MODULE:FN --output-dir` trains and evaluates, then prints a summary; exit 0."""
    assert main(["run", f"{FNS}:good", "--output-dir", str(tmp_path / "m")]) == 0
    out, err = _stderr_lines(capsys)
    assert "done: train_and_evaluate" in out
    assert "final evaluation at step 10:" in out
    assert any("evaluation at step 10:" in line for line in err)
    assert all(line[:2].isdigit() and line[2] == ":" for line in err), err  # HH:MM:SS lines


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "nosuchmodule:fn", "-o", "{d}"], "cannot import module 'nosuchmodule'"),
        (["run", f"{FNS}:nofn", "-o", "{d}"], "has no attribute 'nofn'"),
        (["run", f"{FNS}:good", "-o", "{d}", "--schedule", "bogus"], "is not a schedule"),
        (["run", f"{FNS}:not_an_experiment", "-o", "{d}"], "must return an Experiment"),
        (["run", "--config", "{fns}/bad.yaml", "-o", "{d}"], "train_input.path="),
        (["run", "--config", "{fns}/none.yaml"], "no such file"),
        (["run", f"{FNS}:good"], "--output-dir DIR is required"),
        (["run"], "exactly one"),
        (["run", f"{FNS}:good", "-o", "{d}", "--set", "x=1"], "--set only applies"),
        (["frobnicate"], "invalid choice"),
        (["report", "{d}/nothing"], "no such directory"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_usage_config_or_module_exits_2_with_one_line(
    argv: list[str],
    needle: str,
    tmp_path: Path,
    fns_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad usage, config, module or schedule: exit 2 and one stderr line naming the problem."""
    argv = [a.format(d=tmp_path, fns=fns_dir) for a in argv]
    assert main(argv) == 2
    _, err = _stderr_lines(capsys)
    assert len(err) == 1, err
    assert needle in err[0]
    assert not (tmp_path / "checkpoint").exists()


def test_failing_run_exits_1_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that fails while training exits 1 with a short message and a --verbose hint."""
    assert main(["run", f"{FNS}:failing", "-o", str(tmp_path)]) == 1
    _, err = _stderr_lines(capsys)
    assert any("the run failed: RuntimeError: boom" in line for line in err)
    assert "--verbose" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_verbose_failing_run_shows_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --verbose a failing run prints the traceback before the message."""
    assert main(["run", f"{FNS}:failing", "-o", str(tmp_path), "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "boom" in err.splitlines()[-1]
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` prints usage and exits 0."""
    assert main(["run", "--help"]) == 0
    assert "MODULE:EXPERIMENT_FN" in capsys.readouterr().out


def _console(fns_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "shell", *args],
        cwd=fns_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_process_bad_config_exits_2_with_one_line_no_traceback(fns_dir: Path) -> None:
    """As a process (`python -m shell`), a bad config exits 2 with one line and no traceback."""
    done = _console(fns_dir, "run", "--config", "bad.yaml", "--output-dir", "out")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert lines == [lines[0]] and "train_input.path=" in lines[0] and "no such file" in lines[0]
    assert not (fns_dir / "out").exists()


def test_process_failing_run_exits_1(fns_dir: Path, tmp_path: Path) -> None:
    """As a process, a module from the current directory whose run fails exits 1."""
    done = _console(fns_dir, "run", f"{FNS}:failing", "--output-dir", str(tmp_path))
    assert done.returncode == 1, done.stderr
    assert "boom" in done.stderr and "--verbose" in done.stderr
    assert "Traceback" not in done.stderr


def test_progress_on_a_terminal_draws_a_bar_and_a_table() -> None:
    """On a terminal, steps move a bar and evaluations add rows under one header."""
    stream = io.StringIO()
    progress = Progress(stream=stream, tty=True)
    progress.train_steps = 20
    for step in (0, 5, 20):
        progress.at_step(step)
    progress.on_evaluation({"global_step": 10, "accuracy": 0.5, "loss": 1.25})
    progress.on_evaluation({"global_step": 20, "accuracy": 0.75, "loss": 0.5})
    progress.close()
    text = stream.getvalue()
    assert text.count("accuracy") == 1 and "0.75" in text and "20/20" in text


def test_progress_elsewhere_logs_one_line_per_evaluation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Off a terminal, each evaluation is one log line and nothing else is drawn."""
    stream = io.StringIO()
    progress = Progress(stream=stream, tty=False)
    progress.at_step(5)
    with caplog.at_level(logging.INFO, logger="tfexperiment"):
        progress.on_evaluation({"global_step": 10, "accuracy": 0.5})
    assert [r.getMessage() for r in caplog.records] == ["evaluation at step 10: accuracy=0.5"]
    assert stream.getvalue() == ""


def test_summary_lines() -> None:
    """The summary names the schedule, steps, final metrics, exports and the model_dir."""
    summary = RunSummary(
        schedule="train_and_evaluate",
        start_step=0,
        end_step=100,
        wall_secs=2.0,
        metrics={"accuracy": 0.97},
        eval_step=100,
        exports=("m/export/best/1",),
        model_dir="m",
    )
    text = "\n".join(summary.lines())
    assert "100 steps trained, 50 steps/s" in text
    assert "accuracy=0.97" in text and "export: m/export/best/1" in text


def test_eval_every_n_steps_below_the_checkpoint_cadence_is_noted_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With eval_every_n_steps=3 and checkpoints every 5 steps one INFO line names both."""
    config = tmp_path / "c.yaml"
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "".join(f"{i / 10},{i % 2}\n" for i in range(16)))
    config.write_text(
        "estimator: {type: LinearRegressor, run_config: {save_checkpoints_steps: 5}}\n"
        f"train_input: {{path: {csv}, label: y, batch_size: 4}}\n"
        f"eval_input: {{path: {csv}}}\ntrain_steps: 10\neval_every_n_steps: 3\n"
    )
    assert main(["run", "--config", str(config), "-o", str(tmp_path / "m")]) == 0
    _, err = _stderr_lines(capsys)
    notes = [line for line in err if "note: eval_every_n_steps=3" in line]
    assert len(notes) == 1 and "save_checkpoints_steps=5" in notes[0], err


def test_summary_per_task_kind() -> None:
    """A worker prints one line, an evaluator its evaluations, a ps nothing; none claims
    the chief's steps as trained or lists exports."""
    summary = RunSummary(
        schedule="continuous_eval",
        start_step=0,
        end_step=2000,
        wall_secs=2.0,
        metrics={"accuracy": 0.86},
        eval_step=2000,
        exports=("m/export/best/1",),
        model_dir="m",
        evaluations=5,
        task="evaluator-0",
    )
    assert summary.lines_for(SummaryKind.NONE) == []
    [worker] = summary.lines_for(SummaryKind.WORKER)
    evaluator = "\n".join(summary.lines_for(SummaryKind.EVALUATIONS))
    for text in (worker, evaluator):
        assert "steps trained" not in text and "export:" not in text
    assert "as evaluator-0" in evaluator and "5 evaluations" in evaluator
    assert "accuracy=0.86" in evaluator
    assert summary.lines_for(SummaryKind.TRAINING) == summary.lines()
