"""Shared config-test helpers: a small two-class CSV problem and a valid config over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

HEADER = ["a", "b", "target"]


def write_csv(path: Path, rows: int = 48, seed: int = 0) -> Path:
    """A separable 2-class problem: target = a + b > 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = (x.sum(axis=1) > 0).astype(int)
    lines = [",".join(HEADER)] + [f"{a:.4f},{b:.4f},{t}" for (a, b), t in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def base_config(tmp_path: Path) -> dict[str, Any]:
    """A small valid LinearClassifier config over two CSV files in ``tmp_path``."""
    train = write_csv(tmp_path / "train.csv")
    evaluation = write_csv(tmp_path / "eval.csv", rows=16, seed=1)
    return {
        "estimator": {
            "type": "LinearClassifier",
            "params": {"n_classes": 2, "optimizer": "Adam", "learning_rate": 0.05},
            "run_config": {"save_checkpoints_steps": 10, "save_summary_steps": 5},
        },
        "train_input": {"path": str(train), "label": "target", "batch_size": 8},
        "eval_input": {"path": str(evaluation)},
        "train_steps": 20,
        "eval_every_n_steps": 10,
        "exports": [{"name": "latest", "type": "latest"}],
    }
