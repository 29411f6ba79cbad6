"""`tfexperiment report`: a PNG of training loss and eval metrics from a real run's events."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from shell import create_experiment
from shell.cli import main
from shell.report import Series, is_fraction, read_series, report_figure, report_title, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_csv(path: Path, rows: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    lines = ["a,b,target"] + [f"{a:.4f},{b:.4f},{int(a + b > 0)}" for a, b in x]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model_dir of a real 30-step LinearClassifier run evaluated every 10 steps."""
    root = tmp_path_factory.mktemp("report")
    config = {
        "estimator": {
            "type": "LinearClassifier",
            "params": {"n_classes": 2},
            "run_config": {"save_checkpoints_steps": 10, "save_summary_steps": 5},
        },
        "train_input": {"path": _write_csv(root / "t.csv", 48, 0), "label": "target"},
        "eval_input": {"path": _write_csv(root / "e.csv", 16, 1)},
        "train_steps": 30,
        "eval_every_n_steps": 10,
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TF_CONFIG", raising=False)
        create_experiment(config, str(root / "model")).train_and_evaluate()
    return root / "model"


def test_series_hold_training_loss_and_each_eval_metric(model_dir: Path) -> None:
    """Training loss comes from model_dir's events, eval metrics from eval/, by global step."""
    series = {(s.source, s.tag): s for s in read_series(str(model_dir))}
    assert series[("train", "loss")].steps[0] <= 5
    assert series[("eval", "accuracy")].steps == (10, 20, 30)
    assert ("eval", "loss") in series and ("eval", "auc") in series
    assert not any(tag.startswith("global_step") for _, tag in series)


def test_report_writes_a_valid_png(model_dir: Path, tmp_path: Path) -> None:
    """write_report produces a real PNG of non-trivial size where asked."""
    path = write_report(str(model_dir), str(tmp_path / "plots" / "r.png"))
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 20_000


def test_cli_report_prints_the_path(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tfexperiment report DIR` writes DIR/report.png and prints its path; exit 0."""
    assert main(["report", str(model_dir)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(model_dir / "report.png")
    assert Path(printed).read_bytes()[:8] == PNG_MAGIC


def test_a_truncated_event_file_tail_is_tolerated(model_dir: Path, tmp_path: Path) -> None:
    """An event file still being written (a cut-off last record) is read up to the cut."""
    copy = tmp_path / "model"
    copy.mkdir()
    [events] = glob.glob(str(model_dir / "events.out.tfevents.*"))
    (copy / Path(events).name).write_bytes(Path(events).read_bytes() + b"\x10\x00\x00")
    assert [s.tag for s in read_series(str(copy))] == ["loss"]


def test_a_directory_without_events_is_a_config_error(tmp_path: Path) -> None:
    """A directory no run wrote to is one ConfigError naming it."""
    with pytest.raises(ConfigError, match="no event files"):
        read_series(str(tmp_path))


def test_report_panels_have_y_labels_a_short_title_and_fraction_axes() -> None:
    """Each panel names its metric on the y axis; the title is the run's directory name;
    accuracy-like metrics span 0..1 so a 0.96 -> 0.97 step is no cliff; others get a margin."""
    series = [
        Series(source="train", tag="loss", steps=(1, 10), values=(0.9, 0.4)),
        Series(source="eval", tag="accuracy", steps=(10, 20), values=(0.96, 0.97)),
        Series(source="eval", tag="average_loss", steps=(10, 20), values=(0.5, 0.5)),
    ]
    fig = report_figure(series, report_title("/tmp/some/where/runs/wine/"))
    try:
        assert fig._suptitle.get_text() == "wine"
        axes = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
        assert {t: ax.get_ylabel() for t, ax in axes.items()} == {
            "loss": "loss",
            "accuracy": "accuracy",
            "average_loss": "average_loss",
        }
        low, high = axes["accuracy"].get_ylim()
        assert low <= 0.0 and high >= 1.0
        low, high = axes["average_loss"].get_ylim()
        assert low < 0.5 < high
    finally:
        fig.clf()
    assert is_fraction("auc", (0.2, 1.0)) and not is_fraction("accuracy", (1.5,))
    assert not is_fraction("loss", (0.5,))


def test_cli_report_out_not_a_png_exits_2(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report --out x.txt` exits 2 naming --out; write_report refuses it naming out."""
    assert main(["report", str(model_dir), "--out", "x.txt"]) == 2
    assert "--out='x.txt'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"out='x\.txt'"):
        write_report(str(model_dir), "x.txt")
