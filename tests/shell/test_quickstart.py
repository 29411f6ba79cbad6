"""The README's worked example runs as written."""

from __future__ import annotations

from pathlib import Path

from shell import run_experiment


def test_worked_example_trains_evaluates_and_exports(tmp_path: Path) -> None:
    """examples/quickstart.py evaluates at 400..2000, beats chance by far, and exports."""
    from examples import quickstart

    steps: list[int] = []

    def build(output_dir: str):  # type: ignore[no-untyped-def]
        experiment = quickstart.experiment_fn(output_dir)
        experiment.on_evaluation(lambda result: steps.append(int(result["global_step"])))
        return experiment

    result, exports = run_experiment(build, str(tmp_path / "run"))
    assert steps == [400, 800, 1200, 1600, 2000]
    assert result is not None and result["accuracy"] > 0.8
    assert exports and list((tmp_path / "run" / "export" / "best").iterdir())
