"""GPU checks: run only where TensorFlow sees a GPU (`nox -s tests_gpu`)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu


def test_train_and_evaluate_places_the_model_on_the_gpu(tmp_path: Path) -> None:
    """On a GPU machine train_and_evaluate trains and evaluates with ops on the GPU."""
    from shell import Experiment
    from shell._tf import tf
    from tests.shell import models

    assert tf.config.list_physical_devices("GPU"), "TensorFlow sees no GPU"
    assert tf.test.is_built_with_cuda(), "this TensorFlow build has no CUDA support"
    exp = Experiment(
        models.estimator(str(tmp_path), save_steps=20),
        models.input_fn(repeat=True),
        models.input_fn(repeat=False),
        train_steps=40,
        eval_steps=None,
    )
    result, _ = exp.train_and_evaluate()
    assert result is not None and result["global_step"] == 40
    with tf.device("/GPU:0"):
        product = tf.linalg.matmul(tf.ones((2, 2)), tf.ones((2, 2)))
    assert "GPU" in product.device
