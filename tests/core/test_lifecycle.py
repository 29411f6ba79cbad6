"""The job's lifecycle: what every task said → what each role does next (pure, no TF)."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from core.errors import ConfigError, ConfigTypeError, FieldError
from core.lifecycle import (
    SIGNAL_EXIT_CODES,
    STOPPED_BY_EVALUATOR,
    ChiefKind,
    Done,
    EvaluatorKind,
    Failed,
    Heartbeat,
    JobReason,
    JobView,
    Joined,
    LifecyclePolicy,
    Preempted,
    PsKind,
    RecordKind,
    StopRequested,
    TaskRecord,
    TaskState,
    WorkerKind,
    chief_decision,
    chief_state,
    evaluator_decision,
    heartbeat_due,
    holding_workers,
    ps_decision,
    signal_exit_code,
    task_state,
    training_tasks,
    worker_decision,
)

CLUSTER = {"chief": ["c:1"], "worker": ["w0:1", "w1:1"], "ps": ["p:1"]}
POLICY = LifecyclePolicy(
    chief_lost_after_secs=10.0, worker_lost_after_secs=5.0, heartbeat_secs=1.0, poll_secs=0.5
)


def view(*records: TaskRecord, now: float, since: float = 0.0) -> JobView:
    """The view of ``records`` in the test cluster at ``now``."""
    return JobView.of(records, cluster=CLUSTER, now=now, since=since)


def ps(v: JobView) -> PsKind:
    """The ps's decision kind for ``v``."""
    return ps_decision(v, POLICY).kind


def evaluator(v: JobView, evaluated: int | None = None, latest: int | None = None) -> EvaluatorKind:
    """The evaluator's decision kind for ``v``."""
    return evaluator_decision(
        v, POLICY, evaluated_step=evaluated, latest_checkpoint_step=latest
    ).kind


def worker(v: JobView, training: bool = True) -> WorkerKind:
    """A worker's decision kind for ``v``."""
    return worker_decision(v, POLICY, training=training).kind


JOINED = Joined(task="chief-0", t=0.0)
DONE = Done(task="chief-0", t=3.0, reason="train_steps reached", final_step=100)
FAILED = Failed(task="chief-0", t=3.0, reason="ValueError: bad batch")
STOP = StopRequested(task="evaluator-0", t=2.0, reason="no improvement of loss in 3 evaluations")


# --- records and their dict form --------------------------------------------------------

names = st.sampled_from(["chief-0", "master-0", "worker-0", "worker-1", "ps-0", "evaluator-0"])
times = st.floats(min_value=-1e9, max_value=1e12, allow_nan=False, allow_infinity=False)
texts = st.text(min_size=1, max_size=30)
steps = st.integers(min_value=0, max_value=2**63 - 1)
records = st.one_of(
    st.builds(Joined, task=names, t=times),
    st.builds(Heartbeat, task=names, t=times),
    st.builds(Done, task=names, t=times, reason=texts, final_step=steps),
    st.builds(Failed, task=names, t=times, reason=texts),
    st.builds(Preempted, task=names, t=times, step=steps),
    st.builds(StopRequested, task=names, t=times, reason=texts),
)


@given(record=records)
def test_records_round_trip_through_plain_dicts(record: TaskRecord) -> None:
    """Every record's dict names its kind and parses back to an equal record."""
    data = record.to_dict()
    assert data["kind"] == record.KIND.value
    assert TaskRecord.from_dict(data) == record
    assert type(record).from_dict(data) == record


def test_every_record_kind_has_a_record_type() -> None:
    """Each RecordKind is written by exactly one record type."""
    kinds = [cls.KIND for cls in (Joined, Heartbeat, Done, Failed, Preempted, StopRequested)]
    assert sorted(k.value for k in kinds) == sorted(k.value for k in RecordKind)


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ([1], "record", ConfigTypeError),
        ({"task": "chief-0", "t": 1}, "record.kind", ConfigError),
        ({"kind": "finished", "task": "chief-0", "t": 1}, "record.kind", ConfigError),
        ({"kind": ["joined"], "task": "chief-0", "t": 1}, "record.kind", ConfigError),
        ({"kind": "joined", "t": 1}, "record.task", ConfigError),
        ({"kind": "joined", "task": "", "t": 1}, "record.task", ConfigTypeError),
        ({"kind": "joined", "task": "chief-0", "t": "1"}, "record.t", ConfigTypeError),
        ({"kind": "joined", "task": "chief-0", "t": math.nan}, "record.t", ConfigError),
        ({"kind": "joined", "task": "chief-0", "t": True}, "record.t", ConfigTypeError),
        (
            {"kind": "done", "task": "chief-0", "t": 1, "reason": "x", "final_step": -1},
            "record.final_step",
            ConfigError,
        ),
        (
            {"kind": "done", "task": "chief-0", "t": 1, "reason": "x", "final_step": 1.0},
            "record.final_step",
            ConfigTypeError,
        ),
        ({"kind": "done", "task": "chief-0", "t": 1, "reason": "x"}, "record.final_step", None),
        ({"kind": "failed", "task": "chief-0", "t": 1, "reason": ""}, "record.reason", None),
        ({"kind": "preempted", "task": "chief-0", "t": 1, "step": None}, "record.step", None),
    ],
)
def test_foreign_record_errors_name_the_field(
    data: Any, field: str, error: type[Exception] | None
) -> None:
    """A dict that is not a valid record raises a ConfigError naming `record.<field>`."""
    with pytest.raises(FieldError if error is None else error) as info:
        TaskRecord.from_dict(data)
    assert info.value.field == field  # type: ignore[attr-defined]


def test_record_type_checks_the_kind() -> None:
    """`Done.from_dict` refuses the dict of another kind of record."""
    with pytest.raises(ConfigError, match=r"record\.kind='joined': must be 'done'"):
        Done.from_dict(JOINED.to_dict())


def test_extra_keys_in_a_record_are_ignored() -> None:
    """A record written by a newer version (an extra key) still parses."""
    assert TaskRecord.from_dict({**JOINED.to_dict(), "host": "pod-1"}) == JOINED


def test_records_are_immutable() -> None:
    """A record cannot be changed once made."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        DONE.final_step = 5  # type: ignore[misc]


# --- the policy and the view --------------------------------------------------------------


def test_default_policy_is_sized_for_pod_restarts() -> None:
    """The chief is declared lost only after 10 minutes of silence by default."""
    policy = LifecyclePolicy()
    assert policy.chief_lost_after_secs == 600
    assert policy.heartbeat_secs < policy.worker_lost_after_secs <= policy.chief_lost_after_secs


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chief_lost_after_secs": 0}, "chief_lost_after_secs"),
        ({"worker_lost_after_secs": -1}, "worker_lost_after_secs"),
        ({"poll_secs": math.inf}, "poll_secs"),
        ({"heartbeat_secs": "10"}, "heartbeat_secs"),
        ({"heartbeat_secs": 600}, "heartbeat_secs"),
        ({"worker_lost_after_secs": 5, "heartbeat_secs": 5}, "heartbeat_secs"),
    ],
)
def test_bad_policy_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    """A non-positive deadline or a heartbeat not below both deadlines is rejected by name."""
    with pytest.raises(FieldError) as info:
        LifecyclePolicy(**kwargs)
    assert info.value.field == field


def test_view_keeps_the_latest_record_of_each_task() -> None:
    """Per task the latest record wins (a tie goes to the later one read); stops are kept apart."""
    beat = Heartbeat(task="chief-0", t=5.0)
    again = Joined(task="chief-0", t=5.0)
    v = view(beat, JOINED, STOP, again, Joined(task="worker-1", t=1.0), now=6.0)
    assert v.records == {"chief-0": again, "worker-1": Joined(task="worker-1", t=1.0)}
    assert v.stop == STOP
    later_stop = attrs.evolve(STOP, t=9.0)
    assert view(later_stop, STOP, now=10.0).stop == later_stop


def test_view_names_the_training_tasks_of_the_cluster() -> None:
    """The chief (or master) and the workers come from the TF_CONFIG cluster."""
    assert training_tasks(CLUSTER) == ("chief-0", ("worker-0", "worker-1"))
    assert training_tasks({"master": ["m:1"], "ps": ["p:1"]}) == ("master-0", ())
    with pytest.raises(ConfigError) as info:
        training_tasks({"worker": ["w:1"]})
    assert info.value.field == "cluster"


def test_view_checks_its_records() -> None:
    """A view refuses a record filed under another task's name, a stop among records, a non-record."""
    with pytest.raises(ConfigError, match=r"records\.worker-0"):
        JobView(now=1, since=0, records={"worker-0": JOINED})
    with pytest.raises(ConfigError, match=r"records\.evaluator-0"):
        JobView(now=1, since=0, records={"evaluator-0": STOP})
    with pytest.raises(ConfigTypeError, match=r"records\.chief-0"):
        JobView(now=1, since=0, records={"chief-0": {"kind": "joined"}})  # type: ignore[dict-item]
    with pytest.raises(ConfigTypeError, match="stop"):
        JobView(now=1, since=0, stop=JOINED)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workers"):
        JobView(now=1, since=0, workers=("worker-0", "worker-0"))


# --- the chief's state -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chief", "now", "state"),
    [
        (None, 10.0, TaskState.NOT_JOINED),
        (None, 10.5, TaskState.LOST),
        (JOINED, 10.0, TaskState.RUNNING),
        (JOINED, 10.01, TaskState.LOST),
        (Heartbeat(task="chief-0", t=100.0), 105.0, TaskState.RUNNING),
        (Preempted(task="chief-0", t=1.0, step=40), 11.0, TaskState.PREEMPTED),
        (Preempted(task="chief-0", t=1.0, step=40), 11.5, TaskState.LOST),
        (DONE, 1e9, TaskState.DONE),
        (FAILED, 1e9, TaskState.FAILED),
    ],
)
def test_chief_state_by_latest_record_and_silence(
    chief: TaskRecord | None, now: float, state: TaskState
) -> None:
    """The chief's state follows its latest record; past the deadline without one it is lost."""
    v = view(*([] if chief is None else [chief]), now=now)
    assert chief_state(v, POLICY) is state


def test_restarted_chief_continues_the_job() -> None:
    """A chief that joins again after being preempted (or failing) is running again."""
    for gone in (Preempted(task="chief-0", t=1.0, step=40), FAILED):
        v = view(JOINED, gone, Joined(task="chief-0", t=8.0), now=9.0)
        assert chief_state(v, POLICY) is TaskState.RUNNING
        assert ps(v) is PsKind.SERVE
        assert worker(v) is WorkerKind.TRAIN


# --- ps -----------------------------------------------------------------------------------


def test_ps_exits_1_naming_the_failed_chief() -> None:
    """A chief that failed for good ends the ps with exit 1 and one line naming it and its reason."""
    d = ps_decision(view(JOINED, FAILED, now=3.5), POLICY)
    assert (d.kind, d.reason, d.culprit, d.exit_code) == (
        PsKind.EXIT_FAILED,
        JobReason.CHIEF_FAILED,
        "chief-0",
        1,
    )
    assert d.line("ps-0") == "ps-0: chief-0 failed: ValueError: bad batch"


def test_ps_exits_1_once_the_chief_is_silent_past_the_deadline() -> None:
    """A chief killed without a word (SIGKILL, OOM) is lost after `chief_lost_after_secs`."""
    beat = Heartbeat(task="chief-0", t=20.0)
    assert ps(view(JOINED, beat, now=30.0)) is PsKind.SERVE
    d = ps_decision(view(JOINED, beat, now=30.5), POLICY)
    assert (d.kind, d.reason, d.exit_code) == (PsKind.EXIT_FAILED, JobReason.CHIEF_LOST, 1)
    assert d.line("ps-0") == "ps-0: chief-0 is lost: no word for 10 s (chief_lost_after_secs=10)"


def test_ps_exits_1_when_the_chief_never_joins() -> None:
    """A chief that never comes is lost after the deadline counted from the ps's start."""
    assert ps(view(now=109.0, since=100.0)) is PsKind.SERVE
    d = ps_decision(view(now=111.0, since=100.0), POLICY)
    assert d.kind is PsKind.EXIT_FAILED
    assert "not joined after 11 s" in d.line("ps-0")


def test_ps_exits_0_when_the_chief_finished_and_no_worker_joined() -> None:
    """A worker that never joins does not hold the ps once the chief has finished."""
    d = ps_decision(view(JOINED, DONE, now=3.0), POLICY)
    assert (d.kind, d.reason, d.exit_code) == (PsKind.EXIT_OK, JobReason.CHIEF_FINISHED, 0)
    assert d.line("ps-0") == "ps-0: chief-0 finished: train_steps reached"


def test_ps_waits_for_a_joined_worker_until_its_done_record() -> None:
    """After the chief finished, the ps serves a worker that joined until it is done."""
    w0 = Joined(task="worker-0", t=1.0)
    d = ps_decision(view(JOINED, w0, DONE, now=3.0), POLICY)
    assert (d.kind, d.reason, d.culprit) == (PsKind.SERVE, JobReason.WORKERS_RUNNING, "worker-0")
    assert d.sleep_secs == POLICY.poll_secs and d.exit_code is None
    w0_done = Done(task="worker-0", t=3.2, reason="the chief finished", final_step=100)
    assert ps(view(JOINED, w0, DONE, w0_done, now=3.3)) is PsKind.EXIT_OK


def test_ps_stops_waiting_for_a_silent_worker_after_its_deadline() -> None:
    """A worker that joined and then died is waited for only `worker_lost_after_secs`."""
    w1 = Heartbeat(task="worker-1", t=2.0)
    assert ps(view(JOINED, w1, DONE, now=7.0)) is PsKind.SERVE
    assert ps(view(JOINED, w1, DONE, now=7.5)) is PsKind.EXIT_OK


def test_ps_does_not_wait_for_a_preempted_or_failed_worker() -> None:
    """A worker that was preempted or failed holds nothing after the chief finished."""
    for gone in (
        Preempted(task="worker-0", t=2.0, step=9),
        Failed(task="worker-0", t=2, reason="x"),
    ):
        assert holding_workers(view(JOINED, gone, DONE, now=3.0), POLICY) == ()


def test_ps_keeps_serving_a_preempted_chief_within_the_deadline() -> None:
    """A preempted chief (SIGTERM) is neither done nor failed: the ps waits for its restart."""
    gone = Preempted(task="chief-0", t=5.0, step=40)
    d = ps_decision(view(JOINED, gone, now=15.0), POLICY)
    assert (d.kind, d.reason) == (PsKind.SERVE, JobReason.CHIEF_PREEMPTED)
    assert d.line("ps-0") == "ps-0: chief-0 was preempted at step 40; waiting for it"
    assert ps(view(JOINED, gone, now=15.5)) is PsKind.EXIT_FAILED


def test_ps_exits_0_after_a_stop_request_and_the_chiefs_done() -> None:
    """An early stop ends the ps with 0 once the chief wrote its done record."""
    assert ps(view(JOINED, STOP, now=2.5)) is PsKind.SERVE
    stopped = Done(task="chief-0", t=3.0, reason=STOPPED_BY_EVALUATOR, final_step=60)
    assert ps(view(JOINED, STOP, stopped, now=3.0)) is PsKind.EXIT_OK


def test_master_cluster_watches_master_0() -> None:
    """With a master job the master is the chief whose records end the job."""
    cluster = {"master": ["m:1"], "worker": ["w:1"], "ps": ["p:1"]}
    done = attrs.evolve(DONE, task="master-0")
    v = JobView.of([done], cluster=cluster, now=5.0, since=0.0)
    assert ps_decision(v, POLICY).kind is PsKind.EXIT_OK
    assert ps_decision(JobView.of([DONE], cluster=cluster, now=5.0, since=0.0), POLICY).kind is (
        PsKind.SERVE
    )


# --- evaluator ------------------------------------------------------------------------------


def test_evaluator_exits_1_naming_the_failed_or_lost_chief() -> None:
    """The evaluator exits 1 once the chief failed or is lost, naming it."""
    d = evaluator_decision(
        view(JOINED, FAILED, now=4.0), POLICY, evaluated_step=10, latest_checkpoint_step=20
    )
    assert (d.kind, d.exit_code) == (EvaluatorKind.EXIT_FAILED, 1)
    assert d.line("evaluator-0") == "evaluator-0: chief-0 failed: ValueError: bad batch"
    assert evaluator(view(JOINED, now=10.5), 10, 20) is EvaluatorKind.EXIT_FAILED


def test_evaluator_evaluates_the_final_checkpoint_then_exits_0() -> None:
    """After the chief finished the evaluator evaluates a remaining newer checkpoint, then exits 0."""
    v = view(JOINED, DONE, now=4.0)
    d = evaluator_decision(v, POLICY, evaluated_step=90, latest_checkpoint_step=100)
    assert (d.kind, d.reason) == (EvaluatorKind.EVALUATE, JobReason.FINAL_CHECKPOINT_NOT_EVALUATED)
    d = evaluator_decision(v, POLICY, evaluated_step=100, latest_checkpoint_step=100)
    assert (d.kind, d.reason, d.exit_code) == (
        EvaluatorKind.EXIT_OK,
        JobReason.FINAL_STEP_EVALUATED,
        0,
    )


@pytest.mark.parametrize(("evaluated", "latest"), [(90, 90), (None, None), (90, None)])
def test_evaluator_exits_0_when_no_newer_checkpoint_remains(
    evaluated: int | None, latest: int | None
) -> None:
    """With no checkpoint newer than its last evaluation the evaluator never waits for one forever."""
    assert evaluator(view(JOINED, DONE, now=4.0), evaluated, latest) is EvaluatorKind.EXIT_OK


def test_evaluator_waits_for_the_chief_after_its_stop_request() -> None:
    """After asking the job to stop the evaluator waits for the chief's done, then exits 0."""
    d = evaluator_decision(
        view(JOINED, STOP, now=2.5), POLICY, evaluated_step=50, latest_checkpoint_step=60
    )
    assert (d.kind, d.reason, d.culprit) == (
        EvaluatorKind.WAIT,
        JobReason.STOP_REQUESTED,
        "evaluator-0",
    )
    stopped = Done(task="chief-0", t=3.0, reason=STOPPED_BY_EVALUATOR, final_step=61)
    assert evaluator(view(JOINED, STOP, stopped, now=3.0), 50, 61) is EvaluatorKind.EXIT_OK


def test_evaluator_evaluates_while_the_chief_trains_or_is_restarted() -> None:
    """While the chief has not joined, runs or is preempted, the evaluator keeps evaluating."""
    for records in ([], [JOINED], [JOINED, Preempted(task="chief-0", t=1.0, step=5)]):
        assert evaluator(view(*records, now=2.0)) is EvaluatorKind.EVALUATE


# --- worker and chief -------------------------------------------------------------------------


def test_worker_skips_training_when_the_chief_already_finished() -> None:
    """A worker arriving after the chief finished does not train: it writes done and exits 0."""
    d = worker_decision(view(JOINED, DONE, now=5.0), POLICY, training=False)
    assert (d.kind, d.reason, d.done_reason, d.exit_code) == (
        WorkerKind.STOP,
        JobReason.CHIEF_FINISHED,
        "the chief finished",
        0,
    )


def test_worker_stops_on_a_stop_request() -> None:
    """A stop request stops a training worker at its next step with the evaluator's reason."""
    d = worker_decision(view(JOINED, STOP, now=2.5), POLICY, training=True)
    assert (d.kind, d.done_reason, d.culprit) == (
        WorkerKind.STOP,
        STOPPED_BY_EVALUATOR,
        "evaluator-0",
    )
    assert d.line("worker-1") == (
        "worker-1: evaluator-0 asked the job to stop: no improvement of loss in 3 evaluations"
    )


def test_worker_exits_1_when_the_chief_failed_or_is_lost() -> None:
    """A worker exits 1 once the chief failed for good or is lost."""
    assert worker(view(JOINED, FAILED, now=4.0)) is WorkerKind.EXIT_FAILED
    assert worker(view(JOINED, now=10.5), training=False) is WorkerKind.EXIT_FAILED


def test_worker_joins_then_trains_while_the_chief_lives() -> None:
    """Before training a worker joins; while training it trains on."""
    v = view(JOINED, now=2.0)
    assert (worker(v, training=False), worker(v, training=True)) == (
        WorkerKind.JOIN,
        WorkerKind.TRAIN,
    )


def test_chief_stops_at_the_evaluators_request() -> None:
    """The chief stops at its next step and writes done 'stopped by the evaluator'."""
    d = chief_decision(view(JOINED, STOP, now=2.5))
    assert (d.kind, d.done_reason, d.culprit) == (
        ChiefKind.STOP,
        STOPPED_BY_EVALUATOR,
        "evaluator-0",
    )
    assert chief_decision(view(JOINED, now=2.5)).kind is ChiefKind.TRAIN


def test_heartbeat_due_and_signal_exit_codes() -> None:
    """A heartbeat is due first and then every `heartbeat_secs`; SIGTERM exits 143, SIGINT 130."""
    assert heartbeat_due(None, now=0.0, policy=POLICY)
    assert not heartbeat_due(5.0, now=5.9, policy=POLICY)
    assert heartbeat_due(5.0, now=6.0, policy=POLICY)
    assert (signal_exit_code("SIGTERM"), signal_exit_code("SIGINT")) == (143, 130)
    assert dict(SIGNAL_EXIT_CODES) == {"SIGINT": 130, "SIGTERM": 143}
    with pytest.raises(ConfigError):
        signal_exit_code("SIGHUP")


# --- properties over any view ---------------------------------------------------------------

job_names = st.sampled_from(["chief-0", "worker-0", "worker-1", "evaluator-0", "ps-0"])
job_records = st.one_of(
    st.builds(Joined, task=job_names, t=st.floats(0, 30)),
    st.builds(Heartbeat, task=job_names, t=st.floats(0, 30)),
    st.builds(
        Done, task=job_names, t=st.floats(0, 30), reason=texts, final_step=st.integers(0, 200)
    ),
    st.builds(Failed, task=job_names, t=st.floats(0, 30), reason=texts),
    st.builds(Preempted, task=job_names, t=st.floats(0, 30), step=st.integers(0, 200)),
    st.builds(StopRequested, task=st.just("evaluator-0"), t=st.floats(0, 30), reason=texts),
)
views = st.builds(
    lambda rs, now: view(*rs, now=now),
    st.lists(job_records, max_size=8),
    st.floats(0, 60),
)
maybe_steps = st.none() | st.integers(0, 200)


def chief_silence_past_deadline(v: JobView) -> bool:
    """Whether the chief has said nothing for longer than the deadline."""
    return v.silence(v.chief) > POLICY.chief_lost_after_secs


@settings(max_examples=300)
@given(v=views, evaluated=maybe_steps, latest=maybe_steps, training=st.booleans())
@example(v=view(JOINED, now=10.0), evaluated=None, latest=None, training=True)
def test_exits_follow_only_from_the_chief(
    v: JobView, evaluated: int | None, latest: int | None, training: bool
) -> None:
    """Exit 0 only after the chief's done; exit 1 only after its failure or silence past the deadline."""
    chief = v.records.get(v.chief)
    failed_or_lost = isinstance(chief, Failed) or (
        not isinstance(chief, Done) and chief_silence_past_deadline(v)
    )
    decisions: list[Any] = [
        ps_decision(v, POLICY),
        evaluator_decision(v, POLICY, evaluated_step=evaluated, latest_checkpoint_step=latest),
        worker_decision(v, POLICY, training=training),
    ]
    for d in decisions:
        if d.exit_code == 1:
            assert failed_or_lost
            assert d.culprit == v.chief
        if d.exit_code == 0 and d.kind is not WorkerKind.STOP:
            assert isinstance(chief, Done)
    if not failed_or_lost and not isinstance(chief, Done):
        assert decisions[0].kind is PsKind.SERVE
        assert decisions[1].exit_code is None
        assert decisions[2].kind is not WorkerKind.EXIT_FAILED
        assert (decisions[2].kind is WorkerKind.STOP) == (v.stop is not None)


@given(v=views, later=st.floats(0, 100))
@example(  # a worker stopped by a stop request exits 0; a later lost chief makes it 1
    v=view(StopRequested(task="evaluator-0", t=0.0, reason="0"), now=0.0), later=11.0
)
def test_an_exit_stays_an_exit_as_time_passes(v: JobView, later: float) -> None:
    """With the same records, a ps or evaluator that exits at `now` exits later with the same
    code, and a worker that is told to exit or stop still is."""
    after = attrs.evolve(v, now=v.now + later)

    def ps_code(x: JobView) -> int | None:
        return ps_decision(x, POLICY).exit_code

    def evaluator_code(x: JobView) -> int | None:
        return evaluator_decision(
            x, POLICY, evaluated_step=None, latest_checkpoint_step=None
        ).exit_code

    for decide in (ps_code, evaluator_code):
        if decide(v) is not None:
            assert decide(after) == decide(v)
    for training in (False, True):
        if worker_decision(v, POLICY, training=training).exit_code is not None:
            assert worker_decision(after, POLICY, training=training).exit_code is not None


@given(v=views, training=st.booleans())
def test_nobody_trains_after_the_chief_finished(v: JobView, training: bool) -> None:
    """Once the chief's latest record is done, no worker joins or trains."""
    if isinstance(v.records.get(v.chief), Done):
        assert worker(v, training) is WorkerKind.STOP


@given(v=views, evaluated=maybe_steps, latest=maybe_steps, training=st.booleans())
def test_every_decision_has_a_one_line_message_naming_its_culprit(
    v: JobView, evaluated: int | None, latest: int | None, training: bool
) -> None:
    """Every decision renders as one line starting with the task's name and naming its culprit."""
    for task, d in [
        ("ps-0", ps_decision(v, POLICY)),
        (
            "evaluator-0",
            evaluator_decision(v, POLICY, evaluated_step=evaluated, latest_checkpoint_step=latest),
        ),
        ("worker-1", worker_decision(v, POLICY, training=training)),
        ("chief-0", chief_decision(v)),
    ]:
        line = d.line(task)
        assert line.startswith(f"{task}: ") and "\n" not in line
        if d.culprit is not None and d.reason is not JobReason.NO_STOP_REQUESTED:
            assert d.culprit in line
        assert d.sleep_secs >= 0


@given(v=views, task=job_names)
def test_task_state_is_lost_only_after_the_deadline(v: JobView, task: str) -> None:
    """A task is LOST exactly when it is not done/failed and silent past the deadline."""
    state = task_state(v, task, lost_after_secs=7.0)
    record = v.records.get(task)
    final = isinstance(record, (Done, Failed))
    assert (state is TaskState.LOST) == (not final and v.silence(task) > 7.0)


# --- the state machine: random orders of events on a float clock ------------------------------


class Job(RuleBasedStateMachine):
    """A chief, two workers, a ps and an evaluator writing records as real tasks would."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.records: list[TaskRecord] = []
        self.chief_up = False
        self.chief_ended = False  # wrote done or failed
        self.step = 0
        self.checkpoint: int | None = None
        self.evaluated: int | None = None
        self.workers_up: dict[str, bool] = {"worker-0": False, "worker-1": False}
        self.workers_training: dict[str, bool] = {"worker-0": False, "worker-1": False}
        self.workers_ended: dict[str, bool] = {"worker-0": False, "worker-1": False}

    # -- helpers --
    def view(self, now: float | None = None) -> JobView:
        """What a reader sees now (or at a later time with no new records)."""
        return JobView.of(
            self.records, cluster=CLUSTER, now=self.now if now is None else now, since=0.0
        )

    def write(self, record: TaskRecord) -> None:
        """A task writes a record at the current time."""
        self.records.append(record)

    def chief_state(self) -> TaskState:
        """The chief's state for a reader now."""
        return chief_state(self.view(), POLICY)

    # -- time --
    @rule(dt=st.floats(min_value=0.0, max_value=12.0), healthy=st.booleans())
    def time_passes(self, dt: float, healthy: bool) -> None:
        """Time advances; healthy running tasks heartbeat (and the chief trains and saves)."""
        self.now += dt
        if not healthy:
            return
        if self.chief_up:
            self.step += 1
            self.checkpoint = self.step
            self.write(Heartbeat(task="chief-0", t=self.now))
        for w, up in self.workers_up.items():
            if up:
                self.write(Heartbeat(task=w, t=self.now))

    # -- chief --
    @precondition(lambda self: not self.chief_up and not self.chief_ended)
    @rule()
    def chief_joins(self) -> None:
        """The chief starts or is restarted: it writes joined (replacing a preempted record)."""
        self.chief_up = True
        self.write(Joined(task="chief-0", t=self.now))

    @precondition(lambda self: self.chief_up)
    @rule()
    def chief_finishes(self) -> None:
        """The chief reaches train_steps: saves, writes done."""
        self.chief_up, self.chief_ended = False, True
        self.checkpoint = self.step
        self.write(
            Done(task="chief-0", t=self.now, reason="train_steps reached", final_step=self.step)
        )

    @precondition(lambda self: self.chief_up)
    @rule()
    def chief_fails(self) -> None:
        """The chief's training raises: it writes failed before exiting 1."""
        self.chief_up, self.chief_ended = False, True
        self.write(Failed(task="chief-0", t=self.now, reason="ValueError: boom"))

    @precondition(lambda self: self.chief_up)
    @rule()
    def chief_dies_silently(self) -> None:
        """SIGKILL / OOM: the chief stops without a word."""
        self.chief_up = False

    @precondition(lambda self: self.chief_up)
    @rule()
    def chief_is_preempted(self) -> None:
        """SIGTERM: the chief saves at its step and writes preempted (it may be restarted)."""
        self.chief_up = False
        self.checkpoint = self.step
        self.write(Preempted(task="chief-0", t=self.now, step=self.step))

    @precondition(lambda self: self.chief_up)
    @rule()
    def chief_obeys(self) -> None:
        """The chief applies its decision: on a stop request, save and write done."""
        d = chief_decision(self.view())
        if d.kind is ChiefKind.STOP:
            self.chief_up, self.chief_ended = False, True
            self.checkpoint = self.step
            self.write(Done(task="chief-0", t=self.now, reason=d.done_reason, final_step=self.step))

    # -- workers --
    @rule(w=st.sampled_from(["worker-0", "worker-1"]))
    def worker_joins(self, w: str) -> None:
        """A worker (re)starts: it joins unless its decision says the job is over."""
        if self.workers_up[w] or self.workers_ended[w]:
            return
        d = worker_decision(self.view(), POLICY, training=False)
        if d.kind is WorkerKind.JOIN:
            self.workers_up[w] = True
            self.workers_training[w] = True
            self.write(Joined(task=w, t=self.now))
        elif d.kind is WorkerKind.STOP:
            self.workers_ended[w] = True
            self.write(Done(task=w, t=self.now, reason=d.done_reason, final_step=self.step))
        else:
            self.workers_ended[w] = True  # exits 1

    @rule(w=st.sampled_from(["worker-0", "worker-1"]))
    def worker_obeys(self, w: str) -> None:
        """A training worker applies its decision at its next step."""
        if not self.workers_up[w]:
            return
        d = worker_decision(self.view(), POLICY, training=True)
        assert d.kind in (WorkerKind.TRAIN, WorkerKind.STOP, WorkerKind.EXIT_FAILED)
        if d.kind is WorkerKind.STOP:
            self.workers_up[w] = self.workers_training[w] = False
            self.workers_ended[w] = True
            self.write(Done(task=w, t=self.now, reason=d.done_reason, final_step=self.step))
        elif d.kind is WorkerKind.EXIT_FAILED:
            self.workers_up[w] = self.workers_training[w] = False
            self.workers_ended[w] = True

    @rule(w=st.sampled_from(["worker-0", "worker-1"]), preempted=st.booleans())
    def worker_dies(self, w: str, preempted: bool) -> None:
        """A worker is killed (silently) or preempted (it writes preempted); it may come back."""
        if not self.workers_up[w]:
            return
        self.workers_up[w] = self.workers_training[w] = False
        if preempted:
            self.write(Preempted(task=w, t=self.now, step=self.step))

    # -- evaluator --
    @rule()
    def evaluator_evaluates(self) -> None:
        """The evaluator evaluates the newest checkpoint when its decision says so."""
        d = evaluator_decision(
            self.view(),
            POLICY,
            evaluated_step=self.evaluated,
            latest_checkpoint_step=self.checkpoint,
        )
        if d.kind is EvaluatorKind.EVALUATE:
            self.evaluated = self.checkpoint

    @precondition(lambda self: not any(isinstance(r, StopRequested) for r in self.records))
    @rule()
    def evaluator_requests_stop(self) -> None:
        """The evaluator's predicate says stop: it writes a stop request for the job."""
        self.write(StopRequested(task="evaluator-0", t=self.now, reason="no improvement"))

    # -- invariants --
    @invariant()
    def nothing_exits_while_a_live_chief_needs_it(self) -> None:
        """While the chief is not done, failed or silent past the deadline, ps/evaluator/workers go on."""
        v = self.view()
        if self.chief_state() in (TaskState.DONE, TaskState.FAILED, TaskState.LOST):
            return
        assert ps_decision(v, POLICY).kind is PsKind.SERVE
        d = evaluator_decision(
            v, POLICY, evaluated_step=self.evaluated, latest_checkpoint_step=self.checkpoint
        )
        assert d.exit_code is None
        for training in (False, True):
            kind = worker_decision(v, POLICY, training=training).kind
            assert kind is not WorkerKind.EXIT_FAILED
            assert (kind is WorkerKind.STOP) == (v.stop is not None)

    @invariant()
    def ps_exits_0_only_if_the_chief_finished(self) -> None:
        """The ps exits 0 only after the chief's done record."""
        if ps_decision(self.view(), POLICY).kind is PsKind.EXIT_OK:
            assert self.chief_state() is TaskState.DONE
            assert isinstance(self.view().records["chief-0"], Done)

    @invariant()
    def nobody_trains_after_the_chief_finished(self) -> None:
        """Once the chief finished, every worker's decision is to stop (never join or train)."""
        if self.chief_state() is TaskState.DONE:
            for training in (False, True):
                assert (
                    worker_decision(self.view(), POLICY, training=training).kind is WorkerKind.STOP
                )

    @invariant()
    def every_role_exits_once_the_chief_is_over(self) -> None:
        """Once the chief finished, failed or went silent, every role exits after the deadlines pass."""
        silent_chief = not self.chief_up and not self.chief_ended
        if not (self.chief_ended or silent_chief):
            return
        # Nothing more is written: the running workers die or obey; the deadlines pass.
        later = self.now + max(POLICY.chief_lost_after_secs, POLICY.worker_lost_after_secs) + 1
        v = self.view(now=later)
        state = chief_state(v, POLICY)
        assert state in (TaskState.DONE, TaskState.FAILED, TaskState.LOST)
        ps_code = ps_decision(v, POLICY).exit_code
        assert ps_code == (0 if state is TaskState.DONE else 1)
        final = evaluator_decision(
            v, POLICY, evaluated_step=self.checkpoint, latest_checkpoint_step=self.checkpoint
        )
        assert final.exit_code == ps_code
        for training in (False, True):
            assert worker_decision(v, POLICY, training=training).exit_code == ps_code
        # A finished chief whose workers all obeyed frees the ps at once (no deadline).
        if state is TaskState.DONE and not any(self.workers_up.values()):
            still = [w for w in holding_workers(self.view(), POLICY) if self.workers_up.get(w)]
            assert still == []

    @invariant()
    def a_finished_chief_frees_the_ps_once_the_joined_workers_are_done(self) -> None:
        """After the chief's done, the ps waits only for workers that joined and are still alive."""
        v = self.view()
        if chief_state(v, POLICY) is not TaskState.DONE:
            return
        holding = set(holding_workers(v, POLICY))
        for w in holding:
            assert isinstance(v.records.get(w), (Joined, Heartbeat))
        if not holding:
            assert ps_decision(v, POLICY).kind is PsKind.EXIT_OK


Job.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestJob = Job.TestCase


# --- the README's Faults table, row by row ------------------------------------------------------

W0 = Joined(task="worker-0", t=0.5)
W0_DONE = Done(task="worker-0", t=3.5, reason="the chief finished", final_step=100)
FAULTS: list[tuple[str, list[TaskRecord], float, int | None, int | None, int | None]] = [
    # scenario, records, now, ps exit code, worker exit code, evaluator exit code
    ("chief fails for good", [JOINED, W0, FAILED], 3.5, 1, 1, 1),
    (
        "chief killed silently, within the deadline",
        [JOINED, W0, Heartbeat(task="chief-0", t=2.0)],
        12.0,
        None,
        None,
        None,
    ),
    (
        "chief killed silently, past the deadline",
        [JOINED, W0, Heartbeat(task="chief-0", t=2.0)],
        12.5,
        1,
        1,
        1,
    ),
    (
        "chief restarted within the deadline",
        [JOINED, W0, Preempted(task="chief-0", t=2.0, step=40), Joined(task="chief-0", t=11.0)],
        20.0,
        None,
        None,
        None,
    ),
    ("worker 1 never joins, chief and worker 0 done", [JOINED, W0, DONE, W0_DONE], 3.5, 0, 0, 0),
    (
        "SIGTERM on the chief, waiting for its restart",
        [JOINED, W0, Preempted(task="chief-0", t=2.0, step=40)],
        11.0,
        None,
        None,
        None,
    ),
    (
        "SIGTERM on worker 0 after the chief finished",
        [JOINED, W0, Preempted(task="worker-0", t=2.0, step=40), DONE],
        3.5,
        0,
        0,
        0,
    ),
    (
        "evaluator stops the job: chief and worker 0 done",
        [
            JOINED,
            W0,
            STOP,
            attrs.evolve(DONE, reason=STOPPED_BY_EVALUATOR),
            attrs.evolve(W0_DONE, reason=STOPPED_BY_EVALUATOR),
        ],
        3.5,
        0,
        0,
        0,
    ),
]


@pytest.mark.parametrize(
    ("records", "now", "ps_code", "worker_code", "evaluator_code"),
    [f[1:] for f in FAULTS],
    ids=[f[0] for f in FAULTS],
)
def test_faults_table(
    records: list[TaskRecord],
    now: float,
    ps_code: int | None,
    worker_code: int | None,
    evaluator_code: int | None,
) -> None:
    """Each scenario of the README's Faults table gives each role the exit code it lists (None: goes on)."""
    v = view(*records, now=now)
    assert ps_decision(v, POLICY).exit_code == ps_code
    assert worker_decision(v, POLICY, training=True).exit_code == worker_code
    d = evaluator_decision(v, POLICY, evaluated_step=100, latest_checkpoint_step=100)
    assert d.exit_code == evaluator_code
