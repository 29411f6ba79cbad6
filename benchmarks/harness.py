"""Run one measured side in a fresh child process and collect its figures and peak memory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

Params = dict[str, Any]
Result = dict[str, Any]


class BenchmarkError(RuntimeError):
    """A child process failed, timed out, or a correctness check did not hold."""


@dataclass(frozen=True)
class Run:
    """One child run of one side.

    Attributes:
        side: The child side that ran (e.g. ``w1-ours``).
        result: What the child reported (its figures and ``peak_rss_kb``).
        wall_secs: Wall time of the whole child process, from spawn to exit.
        rusage_maxrss_kb: The child's ``ru_maxrss`` from ``os.wait4`` (a cross-check of
            its own ``VmHWM`` reading; it also covers children it waited for).
        load_before: The 1-minute load average when the child was spawned.
        busy_before: Share of all CPUs busy (0..1) in the moment before the spawn, when
            none of our children ran: what other processes were using.
    """

    side: str
    result: Result
    wall_secs: float
    rusage_maxrss_kb: int
    load_before: float
    busy_before: float = 0.0

    def to_json(self) -> Result:
        """The run as a JSON-ready dict."""
        return {
            "side": self.side,
            "wall_secs": self.wall_secs,
            "rusage_maxrss_kb": self.rusage_maxrss_kb,
            "load_before": self.load_before,
            "busy_before": self.busy_before,
            **self.result,
        }


def child_env() -> dict[str, str]:
    """The environment of every child: no TF_CONFIG, TF's C++ INFO logs and oneDNN off.

    ``TF_ENABLE_ONEDNN_OPTS=0`` is what ``shell`` sets for itself; setting it for every
    child gives both sides the same kernels (and bitwise-equal results).
    """
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat ((0, 0) without it)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(sample_secs: float = 0.25) -> float:
    """Share of all CPUs (0..1) busy during the next ``sample_secs``; 0.0 without /proc."""
    busy0, total0 = _cpu_times()
    time.sleep(sample_secs)
    busy1, total1 = _cpu_times()
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


def settle(max_secs: float, *, threshold: float = 0.25) -> float:
    """Wait (at most ``max_secs``) until other processes leave the CPUs mostly idle.

    Called between children, when none of ours runs, so whatever is busy is someone
    else's. A shared machine's bursts of load then land less often inside a measurement.

    Args:
        max_secs: Longest wait; 0 only samples once.
        threshold: Busy share (0..1) of all CPUs below which the machine counts as quiet.

    Returns:
        The busy share of the last sample (recorded with the run).
    """
    deadline = time.monotonic() + max_secs
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = cpu_busy(0.5)
    return busy


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def run_side(
    side: str, params: Params, *, timeout_secs: float = 600.0, settle_secs: float = 0.0
) -> Run:
    """Run ``python -m benchmarks.child SIDE`` in a fresh process and a fresh directory.

    The child gets ``model_dir`` and ``work_dir`` inside a temporary directory (removed
    afterwards) and ``spawned_at`` (wall clock just before the spawn). It runs in its own
    process group, so a timeout also kills any process it started.

    Args:
        side: A key of ``benchmarks.child.SIDES``.
        params: The side's parameters.
        timeout_secs: Kill the child's process group after this long.
        settle_secs: First wait up to this long for the CPUs to be quiet (see `settle`).

    Returns:
        The run.

    Raises:
        BenchmarkError: The child exited non-zero, timed out or wrote no result.
    """
    work = Path(tempfile.mkdtemp(prefix="tfx-bench-"))
    try:
        out, log_path = work / "result.json", work / "child.log"
        full = {**params, "model_dir": str(work / "model"), "work_dir": str(work)}
        busy_before = settle(settle_secs)
        load_before = os.getloadavg()[0]
        with open(log_path, "w") as log:
            full["spawned_at"] = time.time()
            argv = [
                sys.executable,
                "-m",
                "benchmarks.child",
                side,
                "--params",
                json.dumps(full),
                "--out",
                str(out),
            ]
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=child_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            killed: list[bool] = []

            def kill() -> None:
                killed.append(True)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

            timer = threading.Timer(timeout_secs, kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
        if killed:
            raise BenchmarkError(f"{side} timed out after {timeout_secs:.0f}s:\n{_tail(log_path)}")
        if proc.returncode != 0 or not out.is_file():
            raise BenchmarkError(f"{side} exited with {proc.returncode}:\n{_tail(log_path)}")
        result: Result = json.loads(out.read_text())
        return Run(
            side=side,
            result=result,
            wall_secs=wall,
            rusage_maxrss_kb=int(usage.ru_maxrss),
            load_before=load_before,
            busy_before=busy_before,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
