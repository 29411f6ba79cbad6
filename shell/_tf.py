"""Imports TensorFlow quietly: C++ INFO lines and deprecation noise hidden unless verbose."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import tensorflow as tf

__all__ = ["quiet", "tf", "verbose"]


def quiet() -> None:
    """Hide TensorFlow's deprecation warnings and INFO logs (the default)."""
    tf.get_logger().setLevel(logging.ERROR)
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"tensorflow.*")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"tensorflow.*")
    try:
        from tensorflow.python.util import deprecation

        deprecation._PRINT_DEPRECATION_WARNINGS = False
    except ImportError:  # pragma: no cover - private module moved
        pass


def verbose() -> None:
    """Show TensorFlow's own INFO logs (``--verbose``)."""
    tf.get_logger().setLevel(logging.INFO)
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)


def estimator_module() -> Any:
    """``tf.estimator`` (typed as Any: TensorFlow ships no type information)."""
    return tf.estimator


quiet()
