"""Export strategies: ExportStrategy records and tf.estimator.Exporter instances alike."""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import tenacity

from core.errors import ConfigError, ConfigTypeError, FieldError, TFExperimentError
from core.retry import RetryPolicy, wait_before_attempt
from core.task_roles import checkpoint_basename, export_due, owns_exports
from core.tf_config import TFConfig
from shell._tf import tf

log = logging.getLogger("tfexperiment")

#: The file in ``<model_dir>/export/<name>/`` recording which checkpoints were exported there.
EXPORTED_FILE = ".tfexperiment-exported.json"

EXPORT_ARGS = ("estimator", "export_path", "checkpoint_path", "eval_result")

#: Retries of an exporter that read a half-written event file: a BestExporter reads every
#: evaluation event file of the model_dir, and another task (a cluster's evaluator) may be
#: appending to one of them at that moment (`DataLossError: corrupted record`).
READ_RETRY = RetryPolicy(attempts=6, initial_wait_secs=0.1, max_wait_secs=1.0)


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


class ExportMetricError(TFExperimentError):
    """A ``best`` export compares a metric the evaluation does not report (found at run time).

    Not a `FieldError`: something has trained by the time it is known, so the run failed
    (exit 1) rather than being refused.
    """


def check_best_metrics(strategies: tuple[Any, ...], eval_result: Mapping[str, Any]) -> None:
    """Check that every BestExporter can compare ``eval_result`` before anything exports.

    Each BestExporter's compare function is asked to compare the result with itself,
    which fails exactly when the metric it compares is missing.

    Raises:
        ExportMetricError: Naming the export's metric key (``exports[0].metric``) and the
            metrics the evaluation reports.
    """
    available = ", ".join(sorted(k for k in eval_result if k != "global_step"))
    step = eval_result.get("global_step")
    for i, strategy in enumerate(strategies):
        compare = getattr(strategy, "_compare_fn", None)
        if not isinstance(strategy, tf.estimator.BestExporter) or not callable(compare):
            continue
        try:
            compare(best_eval_result=dict(eval_result), current_eval_result=dict(eval_result))
        except FieldError as err:
            raise ExportMetricError(
                f"{err.field}={err.value!r}: is not a metric of the evaluation at step {step} "
                f"(metrics: {available}); nothing was exported"
            ) from None
        except (KeyError, ValueError, TypeError) as err:
            raise ExportMetricError(
                f"export_strategies[{i}] (BestExporter {strategy.name!r}) cannot compare the "
                f"evaluation at step {step} (metrics: {available}): {err}; nothing was exported"
            ) from None


def exported_checkpoints(export_path: str) -> tuple[str, ...]:
    """The checkpoints recorded as exported into ``export_path`` (basenames, in order)."""
    try:
        with open(os.path.join(export_path, EXPORTED_FILE), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return ()
    found = data.get("checkpoints") if isinstance(data, dict) else None
    return tuple(str(c) for c in found) if isinstance(found, list) else ()


def record_exported(export_path: str, checkpoint_path: str) -> None:
    """Add ``checkpoint_path`` to the checkpoints recorded in ``export_path`` (atomically)."""
    known = list(exported_checkpoints(export_path))
    name = checkpoint_basename(checkpoint_path)
    if name in known:
        return
    os.makedirs(export_path, exist_ok=True)
    target = os.path.join(export_path, EXPORTED_FILE)
    temporary = f"{target}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump({"checkpoints": [*known, name]}, handle)
    os.replace(temporary, target)


_said_not_owner: set[str] = set()


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

    Only the task that owns the exports does (`core.task_roles.owns_exports`: locally
    the one process, in a cluster the chief; TF_CONFIG says which); others return ``[]``. Before anything is
    exported, every BestExporter's metric is checked against ``eval_result``. A
    ``tf.estimator.Exporter`` skips a checkpoint it already exported into its directory
    (a rerun into a finished model_dir), recorded in ``export/<name>/`` (`EXPORTED_FILE`).

    Args:
        strategies: From `normalize`.
        estimator: The estimator to export.
        checkpoint_path: The checkpoint to export.
        eval_result: The evaluation result of that checkpoint.
        is_final: Whether this is the last export of the run (FinalExporter needs it).
        only_exporters: Skip ExportStrategy records (for exports during training).

    Returns:
        What each export returned (export paths; None where an exporter skipped).

    Raises:
        ExportMetricError: A BestExporter's metric is not in ``eval_result``.
    """
    if not strategies:
        return []
    config = TFConfig.from_json(os.environ.get("TF_CONFIG"))
    if not owns_exports(config):
        name = config.task_name or "this task"
        if name not in _said_not_owner:
            _said_not_owner.add(name)
            log.info("exports are the chief's in a cluster: %s does not export", name)
        return []
    if eval_result:
        check_best_metrics(strategies, eval_result)
    results: list[Any] = []
    for strategy in strategies:
        export_path = os.path.join(estimator.model_dir, "export", strategy_name(strategy))
        if is_exporter(strategy):
            if not export_due(checkpoint_path, exported_checkpoints(export_path)):
                log.info(
                    "export/%s already holds %s: not exported again",
                    strategy.name,
                    checkpoint_basename(str(checkpoint_path)),
                )
                results.append(None)
                continue
            result = _export_reading_events(
                strategy, estimator, export_path, checkpoint_path, eval_result, is_final
            )
            if result is not None and checkpoint_path is not None:
                record_exported(export_path, checkpoint_path)
        elif only_exporters:
            continue
        else:
            result = strategy.export(estimator, export_path, checkpoint_path, eval_result)
        if isinstance(result, bytes):
            result = result.decode()
        results.append(result)
    return results


def _export_reading_events(
    exporter: Any, *args: Any, retry: RetryPolicy = READ_RETRY, sleep: Any = None
) -> Any:
    """``exporter.export(*args)``, again after a `READ_RETRY` wait on a half-written event file.

    Raises:
        tf.errors.DataLossError: If the event files stay unreadable past the retry bound.
    """

    def _log_retry(state: tenacity.RetryCallState) -> None:
        # BestExporter notes the model_dir as loaded before reading its event files: forget
        # it, so the next attempt reads them again instead of exporting without a best.
        if getattr(exporter, "_model_dir", None) is not None:
            exporter._model_dir = None
        log.info(
            "export/%s: an evaluation event file was being written (attempt %d/%d); reading again",
            exporter.name,
            state.attempt_number,
            retry.attempts,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retry.attempts),
        wait=lambda state: wait_before_attempt(retry, state.attempt_number + 1),
        retry=tenacity.retry_if_exception_type(tf.errors.DataLossError),
        before_sleep=_log_retry,
        sleep=sleep or tenacity.nap.sleep,
        reraise=True,
    )
    return retrying(exporter.export, *args)
