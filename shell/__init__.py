"""tfexperiment's imperative shell: runs Estimator experiments by applying core decisions."""

from shell._tf import quiet, verbose
from shell.experiment import Experiment
from shell.exports import ExportStrategy
from shell.runner import run_experiment

__all__ = [
    "ExportStrategy",
    "Experiment",
    "create_experiment",
    "quiet",
    "run_experiment",
    "verbose",
]


def __getattr__(name: str) -> object:
    """Load `create_experiment` lazily (its config parsing pulls in YAML)."""
    if name == "create_experiment":
        from shell.config import create_experiment

        return create_experiment
    raise AttributeError(name)
