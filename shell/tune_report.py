"""The end of a sweep: a table of its trials, the best trial, and a PNG of the objective."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from core import search as cs

__all__ = ["TrialRow", "rows", "summary_lines", "table_lines", "write_plot"]


@attrs.frozen(kw_only=True)
class TrialRow:
    """One trial, as the table shows it.

    Attributes:
        number: The trial number (its directory is ``trial-<number>``).
        state: ``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING`` or ``WAITING``.
        params: The config values sampled for it.
        value: Its objective (a pruned trial: the last reported one), or None.
        duration_secs: How long it ran, or None.
        note: The reason of a failure, where a pruned trial stopped, or "interrupted".
        model_dir: Its directory.
        export: Its newest export, or None.
    """

    number: int
    state: str
    params: Mapping[str, Any]
    value: float | None
    duration_secs: float | None
    note: str = ""
    model_dir: str | None = None
    export: str | None = None


def _note(trial: Any) -> str:
    attrs_ = trial.user_attrs
    if attrs_.get("interrupted"):
        return "interrupted"
    if "fail_reason" in attrs_:
        return str(attrs_["fail_reason"])
    if "pruned_at_step" in attrs_:
        return f"pruned at step {attrs_['pruned_at_step']}"
    return ""


def rows(study: Any) -> list[TrialRow]:
    """The study's trials in number order."""
    out = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        value = trial.value
        if value is None and trial.intermediate_values:
            value = trial.intermediate_values[max(trial.intermediate_values)]
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        out.append(
            TrialRow(
                number=trial.number,
                state=trial.state.name,
                params=trial.user_attrs.get("config_params", trial.params),
                value=value,
                duration_secs=duration,
                note=_note(trial),
                model_dir=trial.user_attrs.get("model_dir"),
                export=trial.user_attrs.get("export"),
            )
        )
    return out


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def table_lines(trial_rows: Sequence[TrialRow], metric: str) -> list[str]:
    """The trials as an aligned text table (number, state, params, objective, duration)."""
    keys = sorted({k for row in trial_rows for k in row.params})
    short = {k: k.rsplit(".", 1)[-1] for k in keys}
    header = ["#", "state", *(short[k] for k in keys), metric, "secs", "note"]
    body = [
        [
            str(row.number),
            row.state.lower(),
            *(_cell(row.params.get(k, "")) for k in keys),
            "" if row.value is None else _cell(float(row.value)),
            "" if row.duration_secs is None else f"{row.duration_secs:.1f}",
            row.note[:60],
        ]
        for row in trial_rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *body]
    ]


def summary_lines(study: Any) -> list[str]:
    """The table of trials, the counts by state, and the best trial (params, dir, export)."""
    metric = str(study.user_attrs.get("metric", "objective"))
    trial_rows = rows(study)
    lines = table_lines(trial_rows, metric)
    counts: dict[str, int] = {}
    for row in trial_rows:
        counts[row.state.lower()] = counts.get(row.state.lower(), 0) + 1
    lines.append(
        f"study {study.study_name!r}: {len(trial_rows)} trials ("
        + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        + ")"
    )
    complete = [r for r in trial_rows if r.state == cs.COMPLETE and r.value is not None]
    if not complete:
        lines.append("no trial completed: no best trial")
        return lines
    best = study.best_trial
    row = next(r for r in complete if r.number == best.number)
    lines.append(f"best trial #{row.number}: {metric}={row.value:.4g}")
    lines.extend(f"  {key} = {_cell(value)}" for key, value in sorted(row.params.items()))
    lines.append(f"  model_dir: {row.model_dir}")
    lines.append(f"  export: {row.export or '(none)'}")
    return lines


def write_plot(study: Any, path: str) -> str | None:
    """Write the objective of each trial with the best-so-far line (and, for each numeric
    searched key, objective vs value) to ``path``; None when matplotlib is missing or no
    trial has a value.
    """
    trial_rows = rows(study)
    if not any(r.value is not None and math.isfinite(r.value) for r in trial_rows):
        return None
    try:  # the `report` extra; imported only when there is something to plot
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    metric = str(study.user_attrs.get("metric", "objective"))
    direction = study.direction.name.lower()
    numeric = sorted(
        {
            k
            for r in trial_rows
            for k, v in r.params.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    )
    fig, axes = plt.subplots(
        1, 1 + len(numeric), figsize=(6 + 3.5 * len(numeric), 4), squeeze=False
    )
    ax = axes[0][0]
    styles = {"COMPLETE": ("o", "tab:blue"), "PRUNED": ("x", "tab:orange")}
    for state, (marker, color) in styles.items():
        pts = [(r.number, r.value) for r in trial_rows if r.state == state and r.value is not None]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, color=color, label=state.lower())
    complete = [r.value if r.state == cs.COMPLETE else None for r in trial_rows]
    best = cs.best_so_far(complete, direction)
    line = [(r.number, b) for r, b in zip(trial_rows, best) if b is not None]
    if line:
        ax.step(*zip(*line), where="post", color="tab:green", label="best so far")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title(f"study {study.study_name} ({direction})")
    ax.legend(loc="best")
    for i, key in enumerate(numeric, start=1):
        pax = axes[0][i]
        pts = [
            (r.params[key], r.value)
            for r in trial_rows
            if r.state == cs.COMPLETE and r.value is not None and key in r.params
        ]
        if pts:
            pax.scatter(*zip(*pts), color="tab:blue")
        xs = [x for x, _ in pts]
        if xs and min(xs) > 0 and max(xs) / min(xs) > 10:
            pax.set_xscale("log")
        pax.set_xlabel(key)
        pax.set_ylabel(metric)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
