"""Replica input pipelines under tf.distribute, built without tf.data autotune threads.

Under a strategy, in graph mode (as Estimators train and evaluate), TF 2.15 feeds the
replicas through a ``MultiDeviceIterator``: one per-device dataset per replica (a generator
over the host pipeline, then a fixed-size prefetch), built with tf.data's default options.
Each of them therefore runs an autotune thread, which has nothing to tune there.

TF 2.15 can miss waking such a thread when its iterator is destroyed (at ``Session.close``,
or when an iterator is initialised again): ``CancellationManager.StartCancel`` runs the
callback that wakes the thread *before* it marks itself cancelled, and a thread that wakes
in between sleeps again until its next scheduled optimisation. The periods double from
20 ms up to a minute, and the iterators are destroyed one after the other, so
``Estimator.train`` returned 1–9 s late in the W6 benchmark.

`no_replica_autotune` turns autotune off for the per-device datasets that the calling
thread builds while it is entered. The elements, their order, the devices and the buffer
sizes are unchanged. The user's own input pipeline keeps its options, so its autotune
thread can still be missed the same way. That part is TF's to fix, and
``tf.data.Options().autotune.enabled = False`` avoids it for a pipeline with nothing to tune.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tensorflow.python.data.ops import multi_device_iterator_ops as _mdi

from shell._tf import tf

log = logging.getLogger("tfexperiment")

__all__ = ["no_replica_autotune", "replica_autotune_is_off"]

# The TF 2.15 function that builds one replica's dataset; absent from other versions.
_TARGET = "_create_device_dataset"


class _PerDeviceDatasets:
    """Wraps TF's per-device dataset builder once; a thread-local depth says when it acts."""

    def __init__(self) -> None:
        self._original: Callable[..., Any] | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    def enter(self) -> None:
        self._install()
        self._local.depth = self.depth() + 1

    def leave(self) -> None:
        self._local.depth = self.depth() - 1

    def _install(self) -> None:
        with self._lock:
            if self._original is not None:
                return
            current = getattr(_mdi, _TARGET, None)
            if not callable(current):
                log.debug("no %s in this TensorFlow: replica inputs keep autotune", _TARGET)
                return
            self._original = current
            setattr(_mdi, _TARGET, self._build)

    def _build(self, *args: Any, **kwargs: Any) -> Any:
        assert self._original is not None
        dataset = self._original(*args, **kwargs)
        if self.depth() == 0:
            return dataset
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.with_options(options)


_PER_DEVICE = _PerDeviceDatasets()


@contextlib.contextmanager
def no_replica_autotune() -> Iterator[None]:
    """Per-device datasets built on this thread inside the block get no autotune thread.

    Re-entrant. Other threads are not affected, nor is anything built outside the block.
    """
    _PER_DEVICE.enter()
    try:
        yield
    finally:
        _PER_DEVICE.leave()


def replica_autotune_is_off() -> bool:
    """Whether per-device datasets built on this thread now get autotune off."""
    return _PER_DEVICE.depth() > 0 and getattr(_mdi, _TARGET, None) == _PER_DEVICE._build
