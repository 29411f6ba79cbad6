"""The job's lifecycle: what every task has said → what each role does next.

Every task of a job writes small records (`Joined`, `Heartbeat`, `Done`, `Failed`,
`Preempted`; the evaluator also `StopRequested`). A reader builds a `JobView` (the
latest record of each task at ``now``) and asks one decision function for its role:
`ps_decision`, `evaluator_decision`, `worker_decision` or `chief_decision`. Every
rule is here, most of them as tables; the caller owns the IO (reading and writing the
records, the clock, sleeping, exiting) and drops records of an earlier run of the job
(see `completion.is_current`) before building the view.

The chief's state (`chief_state`) drives everything:

======================  =================================================  ===============
chief's latest record   state                                              the others
======================  =================================================  ===============
none yet                NOT_JOINED (LOST once silent past the deadline)    keep going
joined / heartbeat      RUNNING (LOST once silent past the deadline)       keep going
preempted               PREEMPTED (it will be restarted; LOST likewise)    keep going
done                    DONE                                               finish, exit 0
failed                  FAILED (for good: the chief said so)               exit 1
======================  =================================================  ===============

A restarted chief writes `Joined` again, which replaces its `Preempted` (or `Failed`)
record as its latest one: the job goes on.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from core._validate import (
    check,
    finite_number,
    instance,
    non_empty_str,
    non_negative_int,
    optional,
    positive_secs,
    unique_names,
)
from core.completion import EndReason
from core.errors import ConfigError, ConfigTypeError, FieldError

#: The reason a chief or worker writes in its `Done` record after the evaluator's stop.
STOPPED_BY_EVALUATOR = "stopped by the evaluator"

#: The exit code of a task interrupted by a signal (128 + the signal's number).
SIGNAL_EXIT_CODES: Mapping[str, int] = MappingProxyType({"SIGINT": 130, "SIGTERM": 143})


# --- records ----------------------------------------------------------------------------


class RecordKind(enum.Enum):
    """The kinds of record a task writes (the ``kind`` of its dict form)."""

    JOINED = "joined"
    HEARTBEAT = "heartbeat"
    DONE = "done"
    FAILED = "failed"
    PREEMPTED = "preempted"
    STOP_REQUESTED = "stop_requested"


@attrs.frozen(kw_only=True)
class TaskRecord:
    """What one task said at time ``t`` (the base of every record).

    Attributes:
        task: ``"<type>-<index>"``, e.g. ``chief-0``, ``worker-1``, ``evaluator-0``.
        t: When it was said (seconds on the job's shared clock, e.g. the epoch).
    """

    KIND: ClassVar[RecordKind]

    task: str = attrs.field(validator=non_empty_str)
    t: float = attrs.field(validator=finite_number)

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain (JSON-able) dict with its ``kind``."""
        return {"kind": self.KIND.value, **attrs.asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> TaskRecord:
        """The record a dict written by `to_dict` describes (foreign data: validated).

        Called on a subclass, the dict must be of that kind.

        Raises:
            ConfigError: (ConfigTypeError for a wrong type) naming ``record.<field>``:
                not a dict, an unknown or unexpected ``kind``, a missing or bad field.
        """
        if not isinstance(data, Mapping):
            raise ConfigTypeError("record", data, "must be an object with a 'kind'")
        raw_kind = data.get("kind")
        kinds = [kind.value for kind in _RECORD_TYPES]
        try:
            kind = RecordKind(raw_kind)
        except ValueError:
            raise ConfigError(
                "record.kind", raw_kind, f"must be one of: {', '.join(kinds)}"
            ) from None
        record_type = _RECORD_TYPES[kind]
        if not issubclass(record_type, cls):
            raise ConfigError("record.kind", raw_kind, f"must be {cls.KIND.value!r}")
        values: dict[str, Any] = {}
        for field in attrs.fields(record_type):
            if field.name not in data:
                raise ConfigError(f"record.{field.name}", None, "is missing")
            values[field.name] = data[field.name]
        try:
            return record_type(**values)
        except FieldError as err:
            raise type(err)(f"record.{err.field}", err.value, err.problem) from None


@attrs.frozen(kw_only=True)
class Joined(TaskRecord):
    """The task started (or restarted) and takes part in the job."""

    KIND: ClassVar[RecordKind] = RecordKind.JOINED


@attrs.frozen(kw_only=True)
class Heartbeat(TaskRecord):
    """The task is alive (written every ``LifecyclePolicy.heartbeat_secs``)."""

    KIND: ClassVar[RecordKind] = RecordKind.HEARTBEAT


@attrs.frozen(kw_only=True)
class Done(TaskRecord):
    """The task finished its part of the job.

    Attributes:
        reason: Why, e.g. ``"train_steps reached"`` or `STOPPED_BY_EVALUATOR`.
        final_step: The global step when it ended.
    """

    KIND: ClassVar[RecordKind] = RecordKind.DONE

    reason: str = attrs.field(validator=non_empty_str)
    final_step: int = attrs.field(validator=non_negative_int)


@attrs.frozen(kw_only=True)
class Failed(TaskRecord):
    """The task failed for good (it will not be restarted); the job ends with exit 1.

    Attributes:
        reason: The error's one-line message.
    """

    KIND: ClassVar[RecordKind] = RecordKind.FAILED

    reason: str = attrs.field(validator=non_empty_str)


@attrs.frozen(kw_only=True)
class Preempted(TaskRecord):
    """The task was stopped by a signal after saving at ``step``; it may be restarted.

    Attributes:
        step: The global step of the checkpoint it saved.
    """

    KIND: ClassVar[RecordKind] = RecordKind.PREEMPTED

    step: int = attrs.field(validator=non_negative_int)


@attrs.frozen(kw_only=True)
class StopRequested(TaskRecord):
    """The evaluator asks the whole job to stop (early stopping).

    Attributes:
        reason: Why, e.g. ``"no improvement of loss in 3 evaluations"``.
    """

    KIND: ClassVar[RecordKind] = RecordKind.STOP_REQUESTED

    reason: str = attrs.field(validator=non_empty_str)


_RECORD_TYPES: Mapping[RecordKind, type[TaskRecord]] = MappingProxyType(
    {cls.KIND: cls for cls in (Joined, Heartbeat, Done, Failed, Preempted, StopRequested)}
)


# --- the policy and the view ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LifecyclePolicy:
    """How long silence may last, and how often tasks write and look.

    Attributes:
        chief_lost_after_secs: A chief silent this long (no record at all) is lost and
            the job fails: sized for a pod restart (a restarted chief within it
            continues the job).
        worker_lost_after_secs: After the chief finished, the ps stops waiting for a
            worker that joined but has been silent this long.
        heartbeat_secs: How often a running task writes a `Heartbeat`.
        poll_secs: How often a waiting task reads the records again.

    Raises:
        ConfigError: A value is not a positive number of seconds, or ``heartbeat_secs``
            is not below both deadlines (a live task would look lost).
    """

    chief_lost_after_secs: float = attrs.field(default=600.0, validator=positive_secs)
    worker_lost_after_secs: float = attrs.field(default=120.0, validator=positive_secs)
    heartbeat_secs: float = attrs.field(default=10.0, validator=positive_secs)
    poll_secs: float = attrs.field(default=1.0, validator=positive_secs)

    def __attrs_post_init__(self) -> None:
        """Check that a task heartbeating on time never looks lost."""
        deadline = min(self.chief_lost_after_secs, self.worker_lost_after_secs)
        if self.heartbeat_secs >= deadline:
            raise ConfigError(
                "heartbeat_secs",
                self.heartbeat_secs,
                f"must be < chief_lost_after_secs and worker_lost_after_secs ({deadline:g})",
            )


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


_a_record = instance(TaskRecord, "a task record")


def _freeze_records(records: Mapping[str, TaskRecord]) -> Mapping[str, TaskRecord]:
    return MappingProxyType(dict(records))


def _latest_records(
    _inst: Any, attribute: attrs.Attribute[Any], value: Mapping[str, TaskRecord]
) -> None:
    for name, record in value.items():
        check(_a_record, f"{attribute.name}.{name}", record)
        if isinstance(record, StopRequested):
            raise ConfigError(f"{attribute.name}.{name}", record, "belongs in 'stop'")
        if record.task != name:
            raise ConfigError(f"{attribute.name}.{name}", record.task, "must be the record's task")


@attrs.frozen(kw_only=True)
class JobView:
    """What a reader sees on disk at ``now``.

    Attributes:
        now: The reader's current time (same clock as the records' ``t``).
        since: When the reader started watching: a task with no record yet counts as
            silent since then.
        chief: The chief's name (``chief-0``, or ``master-0`` for a master cluster).
        workers: The names of the cluster's other training tasks (``worker-<i>``).
        records: Task name → its latest record (never a `StopRequested`).
        stop: The evaluator's stop request, if any.
    """

    now: float = attrs.field(validator=finite_number)
    since: float = attrs.field(validator=finite_number)
    chief: str = attrs.field(default="chief-0", validator=non_empty_str)
    workers: tuple[str, ...] = attrs.field(default=(), converter=_names, validator=unique_names)
    records: Mapping[str, TaskRecord] = attrs.field(
        factory=dict, converter=_freeze_records, validator=_latest_records, hash=False
    )
    stop: StopRequested | None = attrs.field(
        default=None, validator=optional(instance(StopRequested, "a StopRequested record"))
    )

    @classmethod
    def of(
        cls,
        records: Iterable[TaskRecord],
        *,
        cluster: Mapping[str, Sequence[str]],
        now: float,
        since: float,
    ) -> JobView:
        """The view of every record read so far, for a TF_CONFIG cluster.

        Args:
            records: Every record read (in any order); per task the latest ``t`` wins,
                a tie going to the later one in ``records``. The latest stop request
                of any task becomes ``stop``.
            cluster: Job name → addresses (e.g. ``TFConfig.cluster``): its chief or
                master is the chief, its workers the workers.
            now: The reader's current time.
            since: When the reader started watching.

        Raises:
            ConfigError: The cluster has no chief or master job.
        """
        chief, workers = training_tasks(cluster)
        latest: dict[str, TaskRecord] = {}
        stop: StopRequested | None = None
        for record in records:
            if isinstance(record, StopRequested):
                if stop is None or record.t >= stop.t:
                    stop = record
                continue
            seen = latest.get(record.task)
            if seen is None or record.t >= seen.t:
                latest[record.task] = record
        return cls(now=now, since=since, chief=chief, workers=workers, records=latest, stop=stop)

    def silence(self, task: str) -> float:
        """Seconds since ``task``'s latest record (since ``since`` when it has none)."""
        record = self.records.get(task)
        return self.now - (self.since if record is None else record.t)


def training_tasks(cluster: Mapping[str, Sequence[str]]) -> tuple[str, tuple[str, ...]]:
    """The chief's name and the workers' names of a TF_CONFIG cluster.

    Raises:
        ConfigError: The cluster has no chief or master job.
    """
    lead = "chief" if "chief" in cluster else "master" if "master" in cluster else None
    if lead is None:
        raise ConfigError("cluster", sorted(cluster), "has no 'chief' (or 'master') job")
    workers = tuple(f"worker-{i}" for i in range(len(cluster.get("worker", ()))))
    return f"{lead}-0", workers


# --- what a task's records say about it ---------------------------------------------------


class TaskState(enum.Enum):
    """What a task's latest record (and its silence) says about it."""

    NOT_JOINED = "has not joined yet"
    RUNNING = "is running"
    PREEMPTED = "was preempted and may be restarted"
    DONE = "finished"
    FAILED = "failed"
    LOST = "is lost"


# Latest record kind → state, unless silent past the deadline (DONE/FAILED are final).
_STATE_OF: Mapping[RecordKind | None, TaskState] = MappingProxyType(
    {
        None: TaskState.NOT_JOINED,
        RecordKind.JOINED: TaskState.RUNNING,
        RecordKind.HEARTBEAT: TaskState.RUNNING,
        RecordKind.PREEMPTED: TaskState.PREEMPTED,
        RecordKind.DONE: TaskState.DONE,
        RecordKind.FAILED: TaskState.FAILED,
    }
)
_FINAL_STATES = frozenset({TaskState.DONE, TaskState.FAILED})


def task_state(view: JobView, task: str, *, lost_after_secs: float) -> TaskState:
    """The state of ``task``: by its latest record, LOST once silent past the deadline.

    A task is silent past the deadline when ``view.silence(task) > lost_after_secs``;
    a DONE or FAILED task is never lost.
    """
    record = view.records.get(task)
    state = _STATE_OF[None if record is None else record.KIND]
    if state not in _FINAL_STATES and view.silence(task) > lost_after_secs:
        return TaskState.LOST
    return state


def chief_state(view: JobView, policy: LifecyclePolicy) -> TaskState:
    """The chief's state (LOST after ``policy.chief_lost_after_secs`` of silence)."""
    return task_state(view, view.chief, lost_after_secs=policy.chief_lost_after_secs)


def worker_state(view: JobView, task: str, policy: LifecyclePolicy) -> TaskState:
    """A worker's state (LOST after ``policy.worker_lost_after_secs`` of silence)."""
    return task_state(view, task, lost_after_secs=policy.worker_lost_after_secs)


def holding_workers(view: JobView, policy: LifecyclePolicy) -> tuple[str, ...]:
    """The workers the ps still waits for: joined, not finished, not preempted, not lost.

    A worker that never joined does not hold the ps; nor does one that was preempted
    (it saved and left; restarted after the chief finished, it skips training).
    """
    return tuple(w for w in view.workers if worker_state(view, w, policy) is TaskState.RUNNING)


# --- decisions --------------------------------------------------------------------------


class JobReason(enum.Enum):
    """Why a role does what it does (one scheme for every role's decision)."""

    CHIEF_NOT_JOINED = "the chief has not joined yet"
    CHIEF_RUNNING = "the chief is training"
    CHIEF_PREEMPTED = "the chief was preempted; waiting for its restart"
    CHIEF_FINISHED = "the chief finished"
    CHIEF_FAILED = "the chief failed"
    CHIEF_LOST = "the chief is lost"
    WORKERS_RUNNING = "a worker that joined has not finished yet"
    STOP_REQUESTED = "the evaluator asked the job to stop"
    NO_STOP_REQUESTED = "no stop was requested"
    FINAL_CHECKPOINT_NOT_EVALUATED = "the final checkpoint is not evaluated yet"
    FINAL_STEP_EVALUATED = "the final checkpoint has been evaluated"


# The one-line message of each reason ({culprit}: the task it names; {detail}: its text).
_LINES: Mapping[JobReason, str] = MappingProxyType(
    {
        JobReason.CHIEF_NOT_JOINED: "waiting for {culprit} to join",
        JobReason.CHIEF_RUNNING: "{culprit} is training",
        JobReason.CHIEF_PREEMPTED: "{culprit} was preempted at step {detail}; waiting for it",
        JobReason.CHIEF_FINISHED: "{culprit} finished: {detail}",
        JobReason.CHIEF_FAILED: "{culprit} failed: {detail}",
        JobReason.CHIEF_LOST: "{culprit} is lost: {detail}",
        JobReason.WORKERS_RUNNING: "waiting for {culprit} to finish",
        JobReason.STOP_REQUESTED: "{culprit} asked the job to stop: {detail}",
        JobReason.NO_STOP_REQUESTED: "training",
        JobReason.FINAL_CHECKPOINT_NOT_EVALUATED: "{culprit} finished; evaluating its last checkpoint",
        JobReason.FINAL_STEP_EVALUATED: "{culprit} finished and its final step is evaluated",
    }
)

# The chief's state → the reason every role gives for it.
_REASON_OF: Mapping[TaskState, JobReason] = MappingProxyType(
    {
        TaskState.NOT_JOINED: JobReason.CHIEF_NOT_JOINED,
        TaskState.RUNNING: JobReason.CHIEF_RUNNING,
        TaskState.PREEMPTED: JobReason.CHIEF_PREEMPTED,
        TaskState.DONE: JobReason.CHIEF_FINISHED,
        TaskState.FAILED: JobReason.CHIEF_FAILED,
        TaskState.LOST: JobReason.CHIEF_LOST,
    }
)


@attrs.frozen(kw_only=True)
class RoleDecision:
    """What every role's decision carries besides its ``kind``.

    Attributes:
        reason: Why.
        culprit: The task the reason is about (e.g. ``chief-0``), if any.
        detail: That task's own text (its failure or stop reason, its silence).
        sleep_secs: How long to sleep before asking again (kinds that wait or serve).
    """

    reason: JobReason
    culprit: str | None = None
    detail: str = ""
    sleep_secs: float = 0.0

    def line(self, task: str) -> str:
        """The one-line message, e.g. ``"ps-0: chief-0 failed: <reason>"`` (the detail's
        line breaks become spaces)."""
        detail = " ".join(self.detail.split())
        text = _LINES[self.reason].format(culprit=self.culprit or "", detail=detail)
        return f"{task}: {text}"


class PsKind(enum.Enum):
    """What a parameter server does next."""

    SERVE = "serve"
    EXIT_OK = "exit 0"
    EXIT_FAILED = "exit 1"


@attrs.frozen(kw_only=True)
class PsDecision(RoleDecision):
    """A parameter server's decision."""

    kind: PsKind

    @property
    def exit_code(self) -> int | None:
        """The exit code to exit with now, or None to keep serving."""
        return _EXIT_CODES.get(self.kind)


class EvaluatorKind(enum.Enum):
    """What the evaluator does next, at the level of the job."""

    EVALUATE = "evaluate"
    WAIT = "wait"
    EXIT_OK = "exit 0"
    EXIT_FAILED = "exit 1"


@attrs.frozen(kw_only=True)
class EvaluatorDecision(RoleDecision):
    """The evaluator's job-level decision (per checkpoint, `continuous_eval` decides)."""

    kind: EvaluatorKind

    @property
    def exit_code(self) -> int | None:
        """The exit code to exit with now, or None to go on."""
        return _EXIT_CODES.get(self.kind)


class WorkerKind(enum.Enum):
    """What a (non-chief) worker does next."""

    JOIN = "join"
    TRAIN = "train"
    STOP = "stop"
    EXIT_FAILED = "exit 1"


@attrs.frozen(kw_only=True)
class WorkerDecision(RoleDecision):
    """A worker's decision. STOP: stop at the next step (or do not start), save, write
    `Done` with ``done_reason``, exit 0."""

    kind: WorkerKind
    done_reason: str = ""

    @property
    def exit_code(self) -> int | None:
        """The exit code once the decision is applied (STOP: 0), or None to go on."""
        return _EXIT_CODES.get(self.kind)


class ChiefKind(enum.Enum):
    """What the chief does next."""

    TRAIN = "train"
    STOP = "stop"


@attrs.frozen(kw_only=True)
class ChiefDecision(RoleDecision):
    """The chief's decision. STOP: stop at the next step, save, write `Done` with
    ``done_reason``, exit 0."""

    kind: ChiefKind
    done_reason: str = ""


# The exit code of each kind that ends the task (a worker's STOP ends it with 0).
_EXIT_CODES: Mapping[enum.Enum, int] = MappingProxyType(
    {
        PsKind.EXIT_OK: 0,
        PsKind.EXIT_FAILED: 1,
        EvaluatorKind.EXIT_OK: 0,
        EvaluatorKind.EXIT_FAILED: 1,
        WorkerKind.STOP: 0,
        WorkerKind.EXIT_FAILED: 1,
    }
)


def _chief_detail(view: JobView, state: TaskState, policy: LifecyclePolicy) -> str:
    """The chief's own text for ``state``: its reason, its step, or its silence."""
    record = view.records.get(view.chief)
    if isinstance(record, (Done, Failed)):
        return record.reason
    if isinstance(record, Preempted):
        return str(record.step)
    if state is TaskState.LOST:
        silence = f"{view.silence(view.chief):.0f} s"
        heard = f"not joined after {silence}" if record is None else f"no word for {silence}"
        return f"{heard} (chief_lost_after_secs={policy.chief_lost_after_secs:g})"
    return ""


# The ps's rule: the chief's state → what it does (DONE: once no worker holds it).
_PS_KIND: Mapping[TaskState, PsKind] = MappingProxyType(
    {
        TaskState.NOT_JOINED: PsKind.SERVE,
        TaskState.RUNNING: PsKind.SERVE,
        TaskState.PREEMPTED: PsKind.SERVE,
        TaskState.DONE: PsKind.EXIT_OK,
        TaskState.FAILED: PsKind.EXIT_FAILED,
        TaskState.LOST: PsKind.EXIT_FAILED,
    }
)


def ps_decision(view: JobView, policy: LifecyclePolicy) -> PsDecision:
    """What a parameter server does next.

    Rules: exit 1 once the chief failed for good or is lost (silent past
    ``chief_lost_after_secs``); once the chief finished (also after a stop request),
    serve while a worker that joined still runs (until its `Done` or its
    ``worker_lost_after_secs``), then exit 0; else serve.
    """
    state = chief_state(view, policy)
    kind = _PS_KIND[state]
    if kind is PsKind.EXIT_OK:
        holding = holding_workers(view, policy)
        if holding:
            return PsDecision(
                kind=PsKind.SERVE,
                reason=JobReason.WORKERS_RUNNING,
                culprit=holding[0],
                sleep_secs=policy.poll_secs,
            )
    return PsDecision(
        kind=kind,
        reason=_REASON_OF[state],
        culprit=view.chief,
        detail=_chief_detail(view, state, policy),
        sleep_secs=policy.poll_secs if kind is PsKind.SERVE else 0.0,
    )


_Cause = tuple[JobReason, str | None, str]


def _chief_cause(view: JobView, state: TaskState, policy: LifecyclePolicy) -> _Cause:
    return _REASON_OF[state], view.chief, _chief_detail(view, state, policy)


def _stop_cause(view: JobView) -> _Cause:
    assert view.stop is not None
    return JobReason.STOP_REQUESTED, view.stop.task, view.stop.reason


def evaluator_decision(
    view: JobView,
    policy: LifecyclePolicy,
    *,
    evaluated_step: int | None,
    latest_checkpoint_step: int | None,
) -> EvaluatorDecision:
    """What the evaluator does next, at the level of the job.

    Rules: exit 1 once the chief failed for good or is lost; once the chief finished,
    evaluate while a checkpoint newer than the last evaluation exists and the final
    step is not evaluated, then exit 0 (at once after a stop request: the predicate
    already said stop); after its stop request, wait for the chief to finish; else
    evaluate (`continuous_eval` decides per checkpoint).

    Args:
        view: The job.
        policy: The deadlines.
        evaluated_step: The global step of the last finished evaluation, or None.
        latest_checkpoint_step: The newest checkpoint's global step on disk, or None.
    """
    state = chief_state(view, policy)
    reason, culprit, detail = _chief_cause(view, state, policy)
    if state in (TaskState.FAILED, TaskState.LOST):
        return EvaluatorDecision(
            kind=EvaluatorKind.EXIT_FAILED, reason=reason, culprit=culprit, detail=detail
        )
    if state is TaskState.DONE:
        record = view.records[view.chief]
        assert isinstance(record, Done)
        evaluated = -1 if evaluated_step is None else evaluated_step
        newer = latest_checkpoint_step is not None and latest_checkpoint_step > evaluated
        if view.stop is None and evaluated < record.final_step and newer:
            return EvaluatorDecision(
                kind=EvaluatorKind.EVALUATE,
                reason=JobReason.FINAL_CHECKPOINT_NOT_EVALUATED,
                culprit=culprit,
            )
        if view.stop is None and evaluated >= record.final_step:
            reason, detail = JobReason.FINAL_STEP_EVALUATED, ""
        return EvaluatorDecision(
            kind=EvaluatorKind.EXIT_OK, reason=reason, culprit=culprit, detail=detail
        )
    if view.stop is not None:
        reason, culprit, detail = _stop_cause(view)
        return EvaluatorDecision(
            kind=EvaluatorKind.WAIT,
            reason=reason,
            culprit=culprit,
            detail=detail,
            sleep_secs=policy.poll_secs,
        )
    return EvaluatorDecision(
        kind=EvaluatorKind.EVALUATE,
        reason=reason,
        culprit=culprit,
        detail=detail,
        sleep_secs=policy.poll_secs,
    )


def worker_decision(view: JobView, policy: LifecyclePolicy, *, training: bool) -> WorkerDecision:
    """What a non-chief worker does next.

    Rules: exit 1 once the chief failed for good or is lost; stop (or, before
    training, skip it) once the chief finished or a stop was requested; else train,
    or join when not training yet (the join gate, `completion.worker_gate`, waits for
    the chief's model).

    Args:
        view: The job.
        policy: The deadlines.
        training: Whether this worker is training already.
    """
    state = chief_state(view, policy)
    reason, culprit, detail = _chief_cause(view, state, policy)
    kind = WorkerKind.TRAIN if training else WorkerKind.JOIN
    done_reason = ""
    if state in (TaskState.FAILED, TaskState.LOST):
        kind = WorkerKind.EXIT_FAILED
    elif state is TaskState.DONE:
        kind, done_reason = WorkerKind.STOP, EndReason.CHIEF_FINISHED.value
    elif view.stop is not None:
        kind, done_reason = WorkerKind.STOP, STOPPED_BY_EVALUATOR
        reason, culprit, detail = _stop_cause(view)
    return WorkerDecision(
        kind=kind,
        reason=reason,
        culprit=culprit,
        detail=detail,
        done_reason=done_reason,
        sleep_secs=policy.poll_secs if kind in (WorkerKind.JOIN, WorkerKind.TRAIN) else 0.0,
    )


def chief_decision(view: JobView) -> ChiefDecision:
    """What the chief does next: stop at the next step once the evaluator asked the job
    to stop (save, write `Done` with `STOPPED_BY_EVALUATOR`, exit 0); else train."""
    if view.stop is not None:
        reason, culprit, detail = _stop_cause(view)
        return ChiefDecision(
            kind=ChiefKind.STOP,
            reason=reason,
            culprit=culprit,
            detail=detail,
            done_reason=STOPPED_BY_EVALUATOR,
        )
    return ChiefDecision(kind=ChiefKind.TRAIN, reason=JobReason.NO_STOP_REQUESTED)


# --- small rules the shell applies --------------------------------------------------------


def heartbeat_due(last_written: float | None, *, now: float, policy: LifecyclePolicy) -> bool:
    """Whether a running task writes a `Heartbeat` now (none yet, or one is due)."""
    return last_written is None or now - last_written >= policy.heartbeat_secs


def signal_exit_code(signal_name: str) -> int:
    """The exit code of a task stopped by ``signal_name`` (SIGTERM 143, SIGINT 130).

    Raises:
        ConfigError: Not a signal a task handles.
    """
    check(non_empty_str, "signal", signal_name)
    if signal_name not in SIGNAL_EXIT_CODES:
        raise ConfigError("signal", signal_name, f"must be one of: {', '.join(SIGNAL_EXIT_CODES)}")
    return SIGNAL_EXIT_CODES[signal_name]
