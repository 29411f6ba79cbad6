"""`tfexperiment report`: plot training loss and evaluation metrics from a model_dir's events.

Event files are read directly (TFRecord framing + TensorBoard's Event protos), so a report
needs neither TensorFlow nor a running TensorBoard; TensorBoard still reads the same files.
"""

from __future__ import annotations

import glob
import os
import struct
from collections.abc import Iterator
from typing import Any

import attrs

from core.errors import ConfigError

__all__ = ["Series", "is_fraction", "read_scalars", "read_series", "report_figure", "write_report"]

TRAIN_TAGS = ("loss",)
#: Metrics that are fractions: drawn on a 0..1 axis, so one sample is not a cliff.
FRACTION_PREFIXES = ("accuracy", "auc", "precision", "recall", "f1", "fraction")
SKIPPED_TAGS = frozenset({"global_step", "global_step/sec", "checkpoint_path"})


@attrs.frozen(kw_only=True)
class Series:
    """One scalar curve.

    Attributes:
        source: ``train`` for training summaries, else the eval directory's name
            (``eval``, ``eval_train``...).
        tag: The summary tag, e.g. ``loss`` or ``accuracy``.
        steps: Global steps, ascending.
        values: The values at those steps.
    """

    source: str
    tag: str
    steps: tuple[int, ...]
    values: tuple[float, ...]


def _records(path: str) -> Iterator[bytes]:
    """The records of a TFRecord file; stops quietly at a truncated tail (being written)."""
    with open(path, "rb") as handle:
        while True:
            header = handle.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = handle.read(length)
            if len(data) < length or len(handle.read(4)) < 4:
                return
            yield data


def _scalar(value: Any) -> float | None:
    """A summary value's float, from ``simple_value`` or a scalar tensor."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor":
        from tensorboard.util import tensor_util  # type: ignore[import-untyped,import-not-found,unused-ignore]

        array = tensor_util.make_ndarray(value.tensor)
        if array.ndim == 0 and array.dtype.kind in "fiu":
            return float(array)
    return None


def read_scalars(path: str) -> dict[str, dict[int, float]]:
    """Scalar summaries of one event file: ``{tag: {step: value}}`` (last write wins).

    Args:
        path: An ``events.out.tfevents.*`` file.

    Returns:
        The scalars by tag and step.
    """
    from tensorboard.compat.proto import event_pb2  # type: ignore[import-untyped,import-not-found,unused-ignore]

    scalars: dict[str, dict[int, float]] = {}
    for record in _records(path):
        event = event_pb2.Event.FromString(record)
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            if value.tag in SKIPPED_TAGS:
                continue
            number = _scalar(value)
            if number is not None:
                scalars.setdefault(value.tag, {})[int(event.step)] = number
    return scalars


def _merge(paths: list[str]) -> dict[str, dict[int, float]]:
    merged: dict[str, dict[int, float]] = {}
    for path in sorted(paths, key=os.path.getmtime):
        for tag, points in read_scalars(path).items():
            merged.setdefault(tag, {}).update(points)
    return merged


def _series(source: str, scalars: dict[str, dict[int, float]]) -> list[Series]:
    return [
        Series(
            source=source,
            tag=tag,
            steps=tuple(sorted(points)),
            values=tuple(points[s] for s in sorted(points)),
        )
        for tag, points in sorted(scalars.items())
        if points
    ]


def read_series(model_dir: str) -> list[Series]:
    """Training loss (events in ``model_dir``) and every eval metric (``model_dir/eval*/``).

    Args:
        model_dir: The estimator's model directory.

    Returns:
        The curves: training ones first, then each eval directory's.

    Raises:
        ConfigError: ``model_dir`` is not a directory, or holds no event files.
    """
    if not os.path.isdir(model_dir):
        raise ConfigError("DIR", model_dir, "no such directory")
    train_files = glob.glob(os.path.join(model_dir, "events.out.tfevents.*"))
    eval_dirs = sorted(d for d in glob.glob(os.path.join(model_dir, "eval*")) if os.path.isdir(d))
    eval_files = {d: glob.glob(os.path.join(d, "events.out.tfevents.*")) for d in eval_dirs}
    if not train_files and not any(eval_files.values()):
        raise ConfigError(
            "DIR", model_dir, "has no event files (is it a model_dir a run has written to?)"
        )
    train = {tag: pts for tag, pts in _merge(train_files).items() if tag in TRAIN_TAGS}
    series = _series("train", train)
    for folder, files in eval_files.items():
        series.extend(_series(os.path.basename(folder), _merge(files)))
    return series


def is_fraction(tag: str, values: tuple[float, ...]) -> bool:
    """Whether ``tag`` is an accuracy-like metric (all its values in [0, 1])."""
    name = tag.rsplit("/", 1)[-1].lower()
    return name.startswith(FRACTION_PREFIXES) and all(0.0 <= v <= 1.0 for v in values)


def report_title(model_dir: str) -> str:
    """The plot's title: the run directory's name (e.g. ``wine``), not its absolute path."""
    return os.path.basename(os.path.normpath(os.path.abspath(model_dir))) or model_dir


def report_figure(series: list[Series], title: str) -> Any:
    """The report's matplotlib Figure: one panel per tag (loss curves share the first).

    Each panel has its tag on the y axis; accuracy-like metrics (`is_fraction`) get a
    0..1 axis, others a margin around their values.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[Series]] = {"loss": []}
    for s in series:
        panels.setdefault(s.tag, []).append(s)
    if not panels["loss"]:
        del panels["loss"]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False, layout="constrained"
    )
    for ax, (tag, curves) in zip(axes.flat, panels.items()):
        for s in curves:
            label = "training" if s.source == "train" else s.source
            marker = "" if s.source == "train" and len(s.steps) > 20 else "o"
            ax.plot(s.steps, s.values, marker=marker, markersize=3, label=label)
        ax.set_title(tag)
        ax.set_xlabel("global step")
        ax.set_ylabel(tag)
        if all(is_fraction(tag, s.values) for s in curves):
            ax.set_ylim(-0.02, 1.02)
        else:
            ax.margins(y=0.15)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize="large")
    return fig


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def write_report(model_dir: str, out: str | None = None) -> str:
    """Plot training loss and each evaluation metric against global step into a PNG.

    Loss curves (training and evaluation) share the first panel; every other metric gets
    its own panel, with its name on the y axis; accuracy-like metrics (`is_fraction`) on
    a 0..1 axis, others with a margin. The title is the run directory's name.

    Args:
        model_dir: The model directory of a run.
        out: The PNG path (default: ``<model_dir>/report.png``).

    Returns:
        The path written.

    Raises:
        ConfigError: ``out`` is not a ``.png``, no event files, or no scalar curves in them.
    """
    if out is not None and not str(out).lower().endswith(".png"):
        raise ConfigError("out", out, "must name a .png file (the report is a PNG image)")
    series = read_series(model_dir)
    if not series:
        raise ConfigError("DIR", model_dir, "has event files but no scalar summaries to plot")
    fig = report_figure(series, report_title(model_dir))
    path = out or os.path.join(model_dir, "report.png")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=100)
    _close(fig)
    return path
