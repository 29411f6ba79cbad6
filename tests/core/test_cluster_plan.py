"""When a local cluster run ends, and why (the launcher's wait, without processes)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.cluster_plan import (
    MAX_TASKS,
    MIN_TASK_CAP,
    ClusterKind,
    ClusterReason,
    TaskExit,
    check_cluster_size,
    cluster_decision,
    max_local_tasks,
)
from core.errors import ConfigError

names = st.sampled_from(["ps-0", "chief-0", "worker-0", "worker-1", "evaluator-0"])
codes = st.none() | st.integers(-15, 3)


@given(
    states=st.dictionaries(names, codes, max_size=5),
    now=st.floats(0, 100),
    deadline=st.none() | st.floats(0, 100),
    fail_fast=st.booleans(),
)
def test_cluster_decision(
    states: dict[str, int | None], now: float, deadline: float | None, fail_fast: bool
) -> None:
    """A failure ends the run first (fail_fast), then all exited, then the deadline; else wait."""
    exits = {
        name: None if code is None else TaskExit(task=name, pid=1, returncode=code, wall_secs=1.0)
        for name, code in states.items()
    }
    decision = cluster_decision(exits, now=now, deadline=deadline, fail_fast=fail_fast)
    failed = [n for n, c in states.items() if c is not None and c != 0]
    running = sorted(n for n, c in states.items() if c is None)
    if fail_fast and failed:
        assert (decision.kind, decision.reason) == (ClusterKind.END, ClusterReason.TASK_FAILED)
        assert decision.task == failed[0]
    elif not running:
        assert (decision.kind, decision.reason, decision.task) == (
            ClusterKind.END,
            ClusterReason.ALL_EXITED,
            None,
        )
    elif deadline is not None and now > deadline:
        assert decision.reason is ClusterReason.TIMED_OUT
        assert decision.task == running[0] and list(decision.running) == running
    else:
        assert (decision.kind, decision.reason) == (ClusterKind.WAIT, ClusterReason.RUNNING)


@given(
    ps=st.integers(-2, 40),
    workers=st.integers(-2, 600),
    evaluator=st.booleans(),
    cores=st.none() | st.integers(1, 64),
    timeout=st.none() | st.floats(-5, 100),
)
def test_cluster_size_is_checked_before_anything_starts(
    ps: int, workers: int, evaluator: bool, cores: int | None, timeout: float | None
) -> None:
    """Negative counts, a timeout <= 0 and more tasks than the cap are refused, naming the flag."""
    cap = max_local_tasks(cores)
    assert MIN_TASK_CAP <= cap <= MAX_TASKS
    total = ps + 1 + workers + int(evaluator)
    bad = ps < 0 or workers < 0 or (timeout is not None and timeout <= 0) or total > cap
    try:
        got = check_cluster_size(
            ps=ps,
            workers=workers,
            evaluator=evaluator,
            cores=cores,
            timeout_secs=timeout,
            prefix="--",
        )
    except ConfigError as err:
        assert bad
        assert err.field in ("--ps", "--workers", "--timeout")
        assert str(err.value) in str(err)
    else:
        assert not bad and got == total
