"""Suite-wide pytest setup: quiet TensorFlow, and gate `gpu`-marked tests on a visible GPU."""

from __future__ import annotations

import os

# Before anything can import TensorFlow (also inherited by spawned cluster processes).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import importlib.util

import pytest

NO_GPU = "needs a visible GPU; none found"
_MUST_FAIL = pytest.StashKey[bool]()


def _gpu_visible() -> bool:
    """Whether TensorFlow is installed and sees a GPU (imports TF: call only when needed)."""
    if importlib.util.find_spec("tensorflow") is None:
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu` tests without a GPU; under TFX_REQUIRE_GPU=1 fail them instead."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items or _gpu_visible():
        return
    if os.environ.get("TFX_REQUIRE_GPU") == "1":
        for item in gpu_items:
            item.stash[_MUST_FAIL] = True
        return
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=NO_GPU))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a `gpu` test that has no GPU when TFX_REQUIRE_GPU=1 demands one."""
    if item.stash.get(_MUST_FAIL, False):
        pytest.fail(f"TFX_REQUIRE_GPU=1 but TensorFlow sees no GPU: {item.nodeid} {NO_GPU}")
