"""Helpers of the cluster tests: bounded waits and reading a model_dir without TensorFlow."""

from __future__ import annotations

import collections
import contextlib
import glob
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any

SPEC = "tests.cluster.experiments:experiment_fn"
FAILING_SPEC = "tests.cluster.experiments:failing_experiment_fn"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CKPT = re.compile(r'^model_checkpoint_path: "(?:.*-)?(\d+)"', re.MULTILINE)
_EVAL_LINE = re.compile(r"(?<!final )evaluation at step (\d+)")
_PID_LINE = re.compile(r"\[cluster\] started (\S+) \(pid (\d+)\)")


def wait_for(predicate: Callable[[], bool], timeout_secs: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms; fail the test naming ``what`` after ``timeout_secs``."""
    deadline = time.monotonic() + timeout_secs
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_secs:g}s waiting for {what}")
        time.sleep(0.05)


def latest_step(model_dir: str) -> int | None:
    """The step of the newest checkpoint named in ``model_dir/checkpoint``, or None."""
    try:
        with open(os.path.join(model_dir, "checkpoint")) as handle:
            found = _CKPT.search(handle.read())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def checkpoint_steps(model_dir: str, *, written_after: float = 0.0) -> list[int]:
    """Steps of the checkpoints in ``model_dir`` whose index file is newer than ``written_after``."""
    steps = []
    for path in glob.glob(os.path.join(model_dir, "model.ckpt-*.index")):
        if os.path.getmtime(path) > written_after:
            steps.append(int(path.rsplit("-", 1)[1].split(".")[0]))
    return sorted(steps)


def progress_step(model_dir: str) -> int | None:
    """The step the continuous evaluator recorded as evaluated last, or None."""
    try:
        with open(os.path.join(model_dir, "tfexperiment", "evaluator-eval.json")) as handle:
            return int(json.load(handle)["step"])
    except (OSError, ValueError, KeyError):
        return None


def done_records(model_dir: str) -> dict[str, dict[str, Any]]:
    """The completion records written in ``model_dir``, by task name."""
    out = {}
    for path in glob.glob(os.path.join(model_dir, "tfexperiment", "*.done.json")):
        with open(path) as handle:
            record = json.load(handle)
        out[record["task"]] = record
    return out


def logged_eval_steps(lines: Iterable[str]) -> list[int]:
    """Global steps of the evaluations a task logged, in order (not the final summary)."""
    return [int(m.group(1)) for line in lines for m in _EVAL_LINE.finditer(line)]


def event_eval_paths(model_dir: str) -> collections.Counter[str]:
    """How often each checkpoint was evaluated, from the ``checkpoint_path`` summaries that
    every evaluation writes to the event files in ``model_dir/eval``."""
    from shell._tf import tf

    counts: collections.Counter[str] = collections.Counter()
    for path in glob.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*")):
        try:
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.tag == "checkpoint_path":
                        counts[value.tensor.string_val[0].decode()] += 1
        except tf.errors.DataLossError:
            continue  # the torn tail of a file whose writer was SIGKILLed
    return counts


def started_pids(lines: Iterable[str]) -> dict[str, list[int]]:
    """The PIDs the launcher reported starting, by task."""
    out: dict[str, list[int]] = {}
    for line in lines:
        for m in _PID_LINE.finditer(line):
            out.setdefault(m.group(1), []).append(int(m.group(2)))
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL every PID in ``pids`` that still runs (test clean-up)."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def task_env(**knobs: Any) -> dict[str, str]:
    """Environment for the test experiment: its TFX_* knobs, quiet TensorFlow."""
    env = {f"TFX_{name.upper()}": str(value) for name, value in knobs.items()}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    return env
