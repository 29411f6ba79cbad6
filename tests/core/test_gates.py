"""A worker's gates before training: the chief's model, its start delay, its start step."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from core.tf_config import TFConfig
from core.workers import (
    DELAY_SLICE_POLLS,
    DelayKind,
    GateKind,
    GateReason,
    StartDelay,
    default_device_filters,
    delay_gate,
    device_filters_to_add,
    explicit_delay,
    is_cluster_worker,
    look_due,
    records_own_completion,
    starts_server,
    step_gate,
    train_start_delay,
    worker_gate,
    worker_start_delay,
)

reasons = st.none() | st.sampled_from(GateReason)
times = st.floats(0, 1e6, allow_nan=False)


@given(
    chief_finished=st.booleans(),
    ps_reachable=st.booleans(),
    model_ready=st.booleans(),
    waited=st.floats(0, 100),
    max_wait=st.floats(0, 100),
)
def test_worker_gate(
    chief_finished: bool, ps_reachable: bool, model_ready: bool, waited: float, max_wait: float
) -> None:
    """Skip once the chief finished; train when the model is ready or the wait ran out; else poll."""
    gate = worker_gate(
        chief_finished=chief_finished,
        ps_reachable=ps_reachable,
        model_ready=model_ready,
        waited_secs=waited,
        max_wait_secs=max_wait,
        poll_secs=0.2,
    )
    if chief_finished:
        assert gate.kind is GateKind.SKIP
    elif ps_reachable and model_ready:
        assert (gate.kind, gate.reason) == (GateKind.TRAIN, GateReason.MODEL_READY)
    elif waited >= max_wait:
        assert (gate.kind, gate.reason) == (GateKind.TRAIN, GateReason.GAVE_UP_WAITING)
    else:
        assert gate.kind is GateKind.WAIT and gate.sleep_secs == 0.2
        assert gate.reason is (GateReason.NOT_READY if ps_reachable else GateReason.NO_PS)


@given(
    chief_finished=st.booleans(),
    ps_reachable=st.booleans(),
    model_ready=st.booleans(),
    last=reasons,
)
def test_worker_gate_logs_once_per_reason(
    chief_finished: bool, ps_reachable: bool, model_ready: bool, last: GateReason | None
) -> None:
    """A gate decision asks to be logged only when its reason differs from the last one logged."""
    gate = worker_gate(
        chief_finished=chief_finished,
        ps_reachable=ps_reachable,
        model_ready=model_ready,
        waited_secs=0.0,
        max_wait_secs=10.0,
        last_logged=last,
    )
    assert gate.log == (gate.reason is not last)


@given(chief_finished=st.booleans(), now=times, left=st.floats(-100, 100), poll=st.floats(0.01, 5))
def test_delay_gate_sleeps_in_slices_and_gives_way_to_the_chief(
    chief_finished: bool, now: float, left: float, poll: float
) -> None:
    """During a start delay: skip once the chief finished, train once it is over, else sleep a slice."""
    gate = delay_gate(chief_finished=chief_finished, now=now, deadline=now + left, poll_secs=poll)
    if chief_finished:
        assert (gate.kind, gate.reason) == (GateKind.SKIP, GateReason.CHIEF_FINISHED)
    elif now >= now + left:
        assert (gate.kind, gate.reason) == (GateKind.TRAIN, GateReason.DELAY_OVER)
    else:
        assert gate.kind is GateKind.WAIT
        assert 0 < gate.sleep_secs <= poll * DELAY_SLICE_POLLS
        assert gate.sleep_secs <= (now + left) - now + 1e-9


def test_delay_gate_loop_ends_at_the_deadline() -> None:
    """Applying WAIT decisions on a clock reaches TRAIN exactly at the deadline."""
    now, slept = 0.0, []
    while True:
        gate = delay_gate(chief_finished=False, now=now, deadline=2.5, poll_secs=0.2)
        if gate.kind is not GateKind.WAIT:
            break
        slept.append(gate.sleep_secs)
        now += gate.sleep_secs
    assert gate.kind is GateKind.TRAIN and abs(now - 2.5) < 1e-9 and max(slept) <= 1.0


@given(step=st.integers(0, 10**6), start=st.integers(0, 10**6), chief_finished=st.booleans())
def test_step_gate(step: int, start: int, chief_finished: bool) -> None:
    """A step-gated worker trains once the step reached its gate, skips if the chief finished first."""
    gate = step_gate(
        global_step=step, start_step=start, chief_finished=chief_finished, poll_secs=0.5
    )
    if step >= start:
        assert (gate.kind, gate.reason) == (GateKind.TRAIN, GateReason.START_STEP_REACHED)
    elif chief_finished:
        assert gate.kind is GateKind.SKIP
    else:
        assert (gate.kind, gate.sleep_secs) == (GateKind.WAIT, 0.5)


@given(now=times, last=times, every=st.floats(0, 100))
def test_look_due(now: float, last: float, every: float) -> None:
    """The chief's record is looked for again once `every_secs` passed since the last look."""
    assert look_due(now=now, last_look=last, every_secs=every) == (now - last >= every)


def _config(task_type: str, index: int, workers: int) -> TFConfig:
    cluster = {"chief": ["h:1"], "worker": [f"h:{10 + i}" for i in range(workers)]}
    return TFConfig.from_json(
        json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
    )


@given(
    delay=st.none() | st.floats(0, 1e4),
    task_type=st.sampled_from(["chief", "worker"]),
    index=st.integers(0, 5),
    by_step=st.booleans(),
)
def test_train_start_delay_precedence(
    delay: float | None, task_type: str, index: int, by_step: bool
) -> None:
    """An explicit delay wins; else a cluster worker gets its worker delay; else none."""
    config = _config(task_type, index if task_type == "worker" else 0, workers=6)
    chosen = train_start_delay(config, delay_secs=delay, by_global_step=by_step)
    if delay is not None:
        assert chosen == explicit_delay(delay)
    elif task_type == "worker":
        assert is_cluster_worker(config)
        assert chosen == worker_start_delay(index, by_global_step=by_step)
    else:
        assert not is_cluster_worker(config)
        assert chosen == StartDelay(kind=DelayKind.NONE)


def test_a_local_run_is_no_cluster_worker() -> None:
    """Without TF_CONFIG there is no worker start delay."""
    local = TFConfig.from_json(None)
    assert not is_cluster_worker(local)
    assert train_start_delay(local, delay_secs=None, by_global_step=True).kind is DelayKind.NONE


@given(task_type=st.sampled_from(["chief", "master", "worker", "ps"]), index=st.integers(0, 2))
def test_which_tasks_serve_and_record_their_completion(task_type: str, index: int) -> None:
    """Clustered tasks start a server; only the chief's train_and_evaluate writes its own record."""
    cluster: dict[str, list[str]] = {"ps": ["h:1999"]}
    if task_type not in ("chief", "master"):
        cluster["chief"] = ["h:1998"]
    count = 1 if task_type in ("chief", "master") else 3
    cluster[task_type] = [f"h:{2000 + i}" for i in range(count)]
    index = min(index, count - 1)
    doc = {"cluster": cluster, "task": {"type": task_type, "index": index}}
    config = TFConfig.from_json(json.dumps(doc))
    assert starts_server(config)
    assert records_own_completion(config) == (task_type in ("chief", "master"))
    local = TFConfig.from_json(None)
    assert not starts_server(local) and records_own_completion(local)


@given(
    task_type=st.sampled_from(["chief", "master", "worker", "ps"]),
    existing=st.none() | st.lists(st.sampled_from(["/job:ps", "/job:x"]), max_size=2),
)
def test_device_filters_are_added_only_where_none_are_set(
    task_type: str, existing: list[str] | None
) -> None:
    """A distributed task's session config without filters gets TF's defaults; set ones are kept."""
    cluster: dict[str, list[str]] = {"ps": ["h:1999"], task_type: ["h:2000"]}
    if task_type not in ("chief", "master"):
        cluster["chief"] = ["h:1998"]
    config = TFConfig.from_json(json.dumps({"cluster": cluster, "task": {"type": task_type}}))
    added = device_filters_to_add(config, existing=existing)
    if existing == []:
        assert added == default_device_filters(config) and "/job:ps" in added
    else:
        assert added == []
    local = TFConfig.from_json(None)
    assert default_device_filters(local) is None
    assert device_filters_to_add(local, existing=[]) == []
