"""tfexperiment's imperative shell: runs Estimator experiments by applying core decisions.

Public names load on first use, so ``tfexperiment schedules`` and ``--verbose`` can act
before TensorFlow is imported (TF reads its C++ log level once, at import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shell._tf import quiet, verbose
    from shell.config import create_experiment
    from shell.early_stopping import stop_when_no_improvement
    from shell.experiment import Experiment
    from shell.exports import ExportStrategy
    from shell.launcher import ClusterResult, LocalCluster, launch_local_cluster
    from shell.runner import run_experiment
    from shell.sweep import tune

__all__ = [
    "ClusterResult",
    "Experiment",
    "ExportStrategy",
    "LocalCluster",
    "create_experiment",
    "launch_local_cluster",
    "quiet",
    "run_experiment",
    "stop_when_no_improvement",
    "tune",
    "verbose",
]

_HOMES = {
    "ClusterResult": "shell.launcher",
    "LocalCluster": "shell.launcher",
    "launch_local_cluster": "shell.launcher",
    "ExportStrategy": "shell.exports",
    "Experiment": "shell.experiment",
    "create_experiment": "shell.config",
    "quiet": "shell._tf",
    "run_experiment": "shell.runner",
    "stop_when_no_improvement": "shell.early_stopping",
    "tune": "shell.sweep",
    "verbose": "shell._tf",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shell' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, for completion."""
    return sorted(__all__)
