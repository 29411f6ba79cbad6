"""The wine demo: a quick run as a process leaves a checkpoint, an evaluation and an export."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shell import create_experiment

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "wine" / "experiment.yaml"
QUICK = [
    "--set",
    "train_steps=40",
    "--set",
    "eval_every_n_steps=20",
    "--set",
    "estimator.run_config.save_checkpoints_steps=20",
]


def _command() -> list[str]:
    script = Path(sys.executable).with_name("tfexperiment")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "shell"]


def test_quick_demo_run_as_a_process(tmp_path: Path) -> None:
    """`tfexperiment run --config examples/wine/experiment.yaml` in quick mode exits 0 with results."""
    out = tmp_path / "wine"
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    done = subprocess.run(
        [*_command(), "run", "--config", str(CONFIG), "--output-dir", str(out), *QUICK],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "checkpoint").is_file()
    assert glob.glob(str(out / "model.ckpt-40.index"))
    assert glob.glob(str(out / "eval" / "events.out.tfevents.*"))
    assert glob.glob(str(out / "export" / "best" / "*" / "saved_model.pb"))
    assert "final evaluation at step 40: accuracy=" in done.stdout
    assert "export: " in done.stdout


def test_full_demo_config_reaches_90_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo config as committed reaches more than 0.9 eval accuracy."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result, _ = create_experiment(CONFIG, tmp_path / "wine").train_and_evaluate()
    assert result is not None and result["accuracy"] > 0.9
    assert result["global_step"] == 600
