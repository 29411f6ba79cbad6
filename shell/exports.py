"""Export strategies: ExportStrategy records and tf.estimator.Exporter instances alike."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from core.errors import ConfigError, ConfigTypeError
from shell._tf import tf

EXPORT_ARGS = ("estimator", "export_path", "checkpoint_path", "eval_result")


def _check_name(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value or os.sep in value or value in (".", ".."):
        raise ConfigError("ExportStrategy.name", value, "must be a non-empty directory name")


def _check_fn(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    if not callable(value):
        raise ConfigTypeError("ExportStrategy.export_fn", value, "must be callable")


@attrs.frozen
class ExportStrategy:
    """A named export function, positional like the old namedtuple.

    ``export_fn`` is called with as many of ``(estimator, export_path,
    checkpoint_path, eval_result)`` as its signature takes, in that order, where
    ``export_path`` is ``<model_dir>/export/<name>``. Its return value (usually the
    export directory) is collected in the export results.

    Attributes:
        name: Directory name under ``<model_dir>/export/``.
        export_fn: The function that writes the export.
    """

    name: str = attrs.field(validator=_check_name)
    export_fn: Callable[..., Any] = attrs.field(validator=_check_fn)

    def export(
        self,
        estimator: Any,
        export_path: str,
        checkpoint_path: str | None,
        eval_result: dict[str, Any] | None,
    ) -> Any:
        """Call ``export_fn`` with the arguments its signature takes."""
        args = (estimator, export_path, checkpoint_path, eval_result)
        return self.export_fn(*args[: _arity(self.export_fn)])


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return len(EXPORT_ARGS)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return len(EXPORT_ARGS)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return min(len(EXPORT_ARGS), len(positional))


def is_exporter(value: object) -> bool:
    """Whether ``value`` is a ``tf.estimator.Exporter``."""
    return isinstance(value, tf.estimator.Exporter)


def normalize(strategies: Any) -> tuple[Any, ...]:
    """Validate export strategies: one, an iterable of them, or None → a tuple.

    Raises:
        ConfigError: Anything else (also a ValueError, as the seed documents).
    """
    if strategies is None:
        return ()
    if isinstance(strategies, ExportStrategy) or is_exporter(strategies):
        return (strategies,)
    if isinstance(strategies, (str, bytes)) or not isinstance(strategies, Iterable):
        raise ConfigError(
            "export_strategies",
            strategies,
            "must be an ExportStrategy, a tf.estimator.Exporter, an iterable of them, or None",
        )
    items = tuple(strategies)
    for i, item in enumerate(items):
        if not (isinstance(item, ExportStrategy) or is_exporter(item)):
            raise ConfigError(
                f"export_strategies[{i}]",
                item,
                "must be an ExportStrategy or a tf.estimator.Exporter",
            )
    return items


def strategy_name(strategy: Any) -> str:
    """The export directory name of a strategy or exporter."""
    return str(strategy.name)


def run_exports(
    strategies: tuple[Any, ...],
    estimator: Any,
    *,
    checkpoint_path: str | None,
    eval_result: dict[str, Any] | None,
    is_final: bool,
    only_exporters: bool = False,
) -> list[Any]:
    """Run every strategy into ``<model_dir>/export/<name>/``.

    Args:
        strategies: From `normalize`.
        estimator: The estimator to export.
        checkpoint_path: The checkpoint to export.
        eval_result: The evaluation result of that checkpoint.
        is_final: Whether this is the last export of the run (FinalExporter needs it).
        only_exporters: Skip ExportStrategy records (for exports during training).

    Returns:
        What each export returned (export paths; None where an exporter skipped).
    """
    results = []
    for strategy in strategies:
        export_path = os.path.join(estimator.model_dir, "export", strategy_name(strategy))
        if is_exporter(strategy):
            result = strategy.export(estimator, export_path, checkpoint_path, eval_result, is_final)
        elif only_exporters:
            continue
        else:
            result = strategy.export(estimator, export_path, checkpoint_path, eval_result)
        if isinstance(result, bytes):
            result = result.decode()
        results.append(result)
    return results
