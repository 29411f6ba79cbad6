"""eval_distribute (MirroredStrategy, 2 logical CPUs) stays persistent with identical metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
_TIMEOUT_SECS = 420


def test_mirrored_eval_distribute_matches_estimator(tmp_path: Path) -> None:
    """Pins that MirroredStrategy evaluation reuses one session and equals Estimator.evaluate."""
    env = dict(os.environ, PYTHONPATH=str(_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    # subprocess.run kills this child (by its PID) when the timeout expires.
    done = subprocess.run(
        [sys.executable, "-m", "tests.shell.eval_distribute_child", str(tmp_path / "model")],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["kind"] == "PersistentEvaluator" and report["reuses_session"]
    steps = [ours["global_step"] for ours, _ in report["pairs"]]
    assert [float.fromhex(s) for s in steps] == [10.0, 20.0, 10.0]
    for ours, theirs in report["pairs"]:
        assert ours == theirs
