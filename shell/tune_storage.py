"""The Optuna objects of a sweep: its storage (RDB URL or journal file), pruner and sampler.

Optuna is optional (the ``tune`` extra): without it this module still imports, and
`require_optuna` raises a ConfigError saying what to install.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from core import search as cs
from core.errors import ConfigError

try:
    import optuna
    from optuna.storages.journal import JournalFileBackend
except ModuleNotFoundError:  # the `tune` extra is not installed; `require_optuna` says so
    HAVE_OPTUNA = False
else:
    HAVE_OPTUNA = True

__all__ = [
    "HAVE_OPTUNA",
    "INSTALL_HINT",
    "default_storage",
    "make_pruner",
    "make_sampler",
    "one_line",
    "open_storage",
    "require_optuna",
    "trial_states",
]

INSTALL_HINT = "pip install 'tfexperiment[tune]'"
#: SQLite: how long a process waits for another's write lock before failing.
SQLITE_TIMEOUT_SECS = 120
#: RDB heartbeat: a trial whose process stopped beating this long ago is marked failed.
HEARTBEAT_SECS, GRACE_SECS = 30, 120


def require_optuna() -> None:
    """Raise ConfigError (exit 2) naming the extra to install when Optuna is missing."""
    if not HAVE_OPTUNA:
        raise ConfigError("tune", "optuna", f"needs Optuna: {INSTALL_HINT}")


def one_line(err: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, at most ``limit`` characters."""
    text = " ".join(str(err).split())
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def default_storage(output_dir: str) -> str:
    """``sqlite:///<output_dir>/study.db`` (absolute)."""
    return f"sqlite:///{os.path.abspath(os.path.join(output_dir, 'study.db'))}"


def open_storage(storage: str | None, output_dir: str) -> Any:
    """The Optuna storage of a URL or a journal file path (default: `default_storage`).

    Raises:
        ConfigError: ``storage`` is neither (field ``--storage``).
    """
    require_optuna()
    url = storage or default_storage(output_dir)
    if cs.storage_kind(url) == "journal":
        folder = os.path.dirname(os.path.abspath(url))
        os.makedirs(folder, exist_ok=True)
        backend = JournalFileBackend(os.path.abspath(url))
        return optuna.storages.JournalStorage(backend)
    engine: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(url[len("sqlite:///") :]) or ".", exist_ok=True)
        engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECS}}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 4-5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=HEARTBEAT_SECS,
                grace_period=GRACE_SECS,
            )
    except (ImportError, ValueError) as err:  # an unknown dialect or a missing DB driver
        raise ConfigError("--storage", url, one_line(err)) from None


def make_pruner(pruner: Any) -> Any:
    """An Optuna pruner from a `core.search.Choice` (or an Optuna pruner, returned as is)."""
    if not isinstance(pruner, cs.Choice):
        return pruner
    cls = getattr(optuna.pruners, cs.PRUNERS[pruner.name])
    try:
        return cls(**pruner.options)
    except (TypeError, ValueError, ImportError) as err:
        raise ConfigError("pruner", dict(pruner.options), one_line(err)) from None


def make_sampler(sampler: Any, seed_offset: tuple[int, int] = (0, 0)) -> Any:
    """An Optuna sampler from a `core.search.Choice` (seed per `core.search.worker_seed`)."""
    if not isinstance(sampler, cs.Choice):
        return sampler
    options = dict(sampler.options)
    if "seed" in options:
        options["seed"] = cs.worker_seed(options["seed"], *seed_offset)
    cls = getattr(optuna.samplers, cs.SAMPLERS[sampler.name])
    try:
        return cls(**options)
    except (TypeError, ValueError, ImportError) as err:
        raise ConfigError("sampler", dict(sampler.options), one_line(err)) from None


def trial_states(study: Any) -> list[tuple[str, bool]]:
    """``(state name, interrupted)`` of every trial of ``study``."""
    return [
        (t.state.name, bool(t.user_attrs.get("interrupted")))
        for t in study.get_trials(deepcopy=False)
    ]
