"""Fixtures shared by the shell tests: a local process, and a model trained once per module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.shell import models

DEFAULT_TRAINED_STEPS = 40


@pytest.fixture(scope="module", autouse=True)
def _no_tf_config() -> Iterator[None]:
    """Run every shell test as a local process (no TF_CONFIG); a test may set its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TF_CONFIG", raising=False)
        yield


@pytest.fixture(scope="module")
def trained_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model dir trained once per module to its TRAINED_STEPS (checkpoints every 10 steps)."""
    steps = getattr(request.module, "TRAINED_STEPS", DEFAULT_TRAINED_STEPS)
    model_dir = str(tmp_path_factory.mktemp("trained") / "model")
    models.train_to(model_dir, steps)
    return model_dir


@pytest.fixture
def model_dir(trained_dir: str, tmp_path: Path) -> str:
    """A private copy of `trained_dir` this test may train further or evaluate into."""
    copy = str(tmp_path / "model")
    shutil.copytree(trained_dir, copy)
    return copy
