"""TF_CONFIG parsing: valid clusters round-trip, malformed ones name the bad field."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.errors import ScheduleError, TFConfigError
from core.schedule import Schedule, default_schedule
from core.tf_config import TaskType, TFConfig

hosts = st.builds(
    "{}{}{}".format,
    st.sampled_from(["localhost", "127.0.0.1", "w", "job-worker-0", "10.0.0."]),
    st.integers(min_value=0, max_value=255),
    st.sampled_from(["", ".ns.svc", ".ns.svc.cluster.local", ".example.com"]),
)
addresses = st.builds("{}:{}".format, hosts, st.integers(min_value=1, max_value=65535))
TRAINING_JOBS = ("chief", "master", "worker")


@st.composite
def clusters(draw: st.DrawFn) -> dict[str, list[str]]:
    """A valid cluster: at most one chief or master, some workers, some ps."""
    cluster: dict[str, list[str]] = {}
    lead = draw(st.sampled_from([None, "chief", "master"]))
    if lead is not None:
        cluster[lead] = [draw(addresses)]
    for job, most in (("worker", 4), ("ps", 3)):
        count = draw(st.integers(min_value=0, max_value=most))
        if count:
            cluster[job] = draw(st.lists(addresses, min_size=count, max_size=count))
    return cluster


@st.composite
def led_clusters(draw: st.DrawFn) -> dict[str, list[str]]:
    """A cluster TF's RunConfig accepts: empty, or with exactly one chief or master."""
    cluster = draw(clusters())
    if cluster and "chief" not in cluster and "master" not in cluster:
        cluster = {draw(st.sampled_from(["chief", "master"])): [draw(addresses)], **cluster}
    return cluster


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid TF_CONFIG document: a cluster and a task in it (or the evaluator, or none)."""
    cluster = draw(led_clusters())
    listed = [(job, i) for job, addrs in cluster.items() for i in range(len(addrs))]
    options: list[tuple[str, int] | None] = [*listed, ("evaluator", 0)]
    if len(listed) <= 1:
        options.append(None)  # no task type is fine without a multi-task cluster
    task = draw(st.sampled_from(options))
    doc: dict[str, Any] = {"cluster": cluster}
    if task is not None:
        doc["task"] = {"type": task[0], "index": task[1]}
    return doc


def parse_error(doc: Any) -> TFConfigError:
    """The TFConfigError that parsing ``doc`` (a dict, or JSON text) raises."""
    with pytest.raises(TFConfigError) as info:
        if isinstance(doc, str):
            TFConfig.from_json(doc)
        else:
            TFConfig.from_dict(doc)
    return info.value


# --- valid documents ------------------------------------------------------------------


@pytest.mark.parametrize("text", [None])
def test_no_tf_config_is_a_local_run(text: str | None) -> None:
    """A missing TF_CONFIG is a single local process that is its own chief."""
    config = TFConfig.from_json(text)
    assert config == TFConfig.local()
    assert (config.task_type, config.task_index, dict(config.cluster)) == (None, 0, {})
    assert config.is_chief
    assert not config.is_distributed
    assert config.address is None
    assert config.num_tasks == config.num_workers == 0


@settings(max_examples=150)
@given(doc=documents())
def test_documents_round_trip(doc: dict[str, Any]) -> None:
    """A valid document parses to a record whose `as_dict` is the document, via dict and via JSON."""
    config = TFConfig.from_dict(doc)
    assert config.as_dict() == doc
    assert TFConfig.from_dict(config.as_dict()) == config
    assert TFConfig.from_json(json.dumps(config.as_dict())) == config
    assert hash(TFConfig.from_json(json.dumps(doc))) == hash(config)


@given(doc=documents())
def test_parsed_fields_match_the_document(doc: dict[str, Any]) -> None:
    """Task type, index, address and task counts are read straight from the document."""
    config = TFConfig.from_dict(doc)
    cluster = doc["cluster"]
    task = doc.get("task")
    assert config.task_type == (TaskType(task["type"]) if task else None)
    assert config.task_index == (task["index"] if task else 0)
    assert config.num_tasks == sum(len(a) for a in cluster.values())
    assert config.num_workers == sum(len(cluster.get(job, [])) for job in TRAINING_JOBS)
    if task and task["type"] != "evaluator":
        assert config.address == cluster[task["type"]][task["index"]]
    else:
        assert config.address is None


@given(doc=documents())
def test_distributed_iff_more_than_one_task_or_an_evaluator_of_a_cluster(
    doc: dict[str, Any],
) -> None:
    """A config is distributed with more than one listed task, or as the evaluator of a cluster."""
    config = TFConfig.from_dict(doc)
    evaluator = config.task_type is TaskType.EVALUATOR
    assert config.is_distributed == (config.num_tasks > 1 or (evaluator and config.num_tasks > 0))


@given(cluster=clusters())
def test_exactly_one_training_task_is_chief(cluster: dict[str, list[str]]) -> None:
    """Among the training tasks exactly one is chief: the chief/master, else worker 0."""
    tasks = [(job, i) for job in TRAINING_JOBS for i in range(len(cluster.get(job, [])))]
    chiefs = [
        (job, i)
        for job, i in tasks
        if TFConfig(cluster=cluster, task_type=TaskType(job), task_index=i).is_chief
    ]
    if not tasks:
        assert chiefs == []
    elif "chief" in cluster or "master" in cluster:
        assert len(chiefs) == 1
        assert chiefs[0][0] in ("chief", "master")
    else:
        assert chiefs == [("worker", 0)]


@given(cluster=clusters(), index=st.integers(min_value=0, max_value=3))
def test_ps_and_evaluator_are_never_chief(cluster: dict[str, list[str]], index: int) -> None:
    """Neither a parameter server nor the evaluator is ever the chief."""
    assert not TFConfig(cluster=cluster, task_type=TaskType.EVALUATOR).is_chief
    if index < len(cluster.get("ps", [])):
        assert not TFConfig(cluster=cluster, task_type=TaskType.PS, task_index=index).is_chief


@given(doc=documents())
def test_record_is_immutable(doc: dict[str, Any]) -> None:
    """The parsed record and its cluster cannot be changed, nor does it alias the input."""
    config = TFConfig.from_dict(doc)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.task_index = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.cluster["worker"] = ("x:1",)  # type: ignore[index]
    doc["cluster"]["ps"] = ["mutated:1"]
    assert "mutated:1" not in config.cluster.get("ps", ())


def test_extra_keys_are_ignored() -> None:
    """Keys TF tools add (e.g. Kubeflow's `environment`, an `rpc_layer`) do not matter."""
    doc = {
        "cluster": {"chief": ["c:1"], "worker": ["a:1", "b:2"]},
        "task": {"type": "worker", "index": 1},
        "environment": "cloud",
        "rpc_layer": "grpc",
    }
    config = TFConfig.from_dict(doc)
    assert (config.task_type, config.task_index, config.address) == (TaskType.WORKER, 1, "b:2")


def test_missing_index_means_zero() -> None:
    """A task without an index is task 0 of its job."""
    config = TFConfig.from_dict({"cluster": {"chief": ["c:1"]}, "task": {"type": "chief"}})
    assert (config.task_type, config.task_index) == (TaskType.CHIEF, 0)


@pytest.mark.parametrize(
    "doc",
    [
        {"task": {"type": "evaluator", "index": 0}},
        {"cluster": {}, "task": {"type": "evaluator", "index": 0}},
        {"cluster": {"chief": ["c:1"], "worker": ["w:1"]}, "task": {"type": "evaluator"}},
    ],
    ids=["no-cluster", "emptied-cluster", "cluster-given"],
)
def test_evaluator_is_not_part_of_the_cluster(doc: dict[str, Any]) -> None:
    """The evaluator parses with or without the training cluster and has no address in it."""
    config = TFConfig.from_dict(doc)
    assert (config.task_type, config.task_index) == (TaskType.EVALUATOR, 0)
    assert config.address is None
    assert not config.is_chief


# --- malformed documents --------------------------------------------------------------

WORKERS = {"chief": ["c:2222"], "worker": ["w0:2222", "w1:2222"]}

MALFORMED: list[tuple[str, Any, str]] = [
    ("bad-json", '{"cluster": ', "TF_CONFIG"),
    ("bad-json-single-quotes", "{'task': {}}", "TF_CONFIG"),
    ("not-an-object-list", "[1, 2]", "TF_CONFIG"),
    ("not-an-object-number", "3", "TF_CONFIG"),
    ("not-an-object-string", '"worker"', "TF_CONFIG"),
    ("not-an-object-null", "null", "TF_CONFIG"),
    ("cluster-not-an-object", {"cluster": "w0:2222"}, "cluster"),
    ("task-not-an-object", {"cluster": WORKERS, "task": "worker"}, "task"),
    (
        "unknown-task-type",
        {"cluster": WORKERS, "task": {"type": "driver", "index": 0}},
        "task.type",
    ),
    ("task-type-wrong-case", {"cluster": WORKERS, "task": {"type": "Worker"}}, "task.type"),
    ("task-type-not-a-string", {"cluster": WORKERS, "task": {"type": 1}}, "task.type"),
    (
        "index-out-of-range",
        {"cluster": WORKERS, "task": {"type": "worker", "index": 2}},
        "task.index",
    ),
    (
        "chief-index-out-of-range",
        {"cluster": WORKERS, "task": {"type": "chief", "index": 1}},
        "task.index",
    ),
    ("negative-index", {"cluster": WORKERS, "task": {"type": "worker", "index": -1}}, "task.index"),
    ("bool-index", {"cluster": WORKERS, "task": {"type": "worker", "index": True}}, "task.index"),
    ("string-index", {"cluster": WORKERS, "task": {"type": "worker", "index": "1"}}, "task.index"),
    ("float-index", {"cluster": WORKERS, "task": {"type": "worker", "index": 1.0}}, "task.index"),
    (
        "empty-job",
        {"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}},
        "task.index",
    ),
    (
        "evaluator-in-cluster",
        {"cluster": {**WORKERS, "evaluator": ["e:2222"]}, "task": {"type": "evaluator"}},
        "cluster.evaluator",
    ),
    (
        "evaluator-index-negative",
        {"cluster": WORKERS, "task": {"type": "evaluator", "index": -1}},
        "task.index",
    ),
    ("missing-task", {"cluster": WORKERS}, "task.type"),
    ("missing-task-type", {"cluster": WORKERS, "task": {"index": 0}}, "task.type"),
    ("empty-task-type", {"cluster": WORKERS, "task": {"type": "", "index": 0}}, "task.type"),
    ("null-task-type", {"cluster": WORKERS, "task": {"type": None}}, "task.type"),
    (
        "task-type-without-job",
        {"cluster": WORKERS, "task": {"type": "ps", "index": 0}},
        "task.type",
    ),
    ("task-without-cluster", {"task": {"type": "worker", "index": 0}}, "task.type"),
    (
        "two-chiefs",
        {"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief"}},
        "cluster.chief",
    ),
    (
        "two-masters",
        {"cluster": {"master": ["a:1", "b:1"]}, "task": {"type": "master"}},
        "cluster.master",
    ),
    (
        "chief-and-master",
        {"cluster": {"chief": ["a:1"], "master": ["b:1"]}, "task": {"type": "chief"}},
        "cluster",
    ),
    (  # an extra job is fine (as in TF's RunConfig); the task type must still have a job
        "unknown-job",
        {"cluster": {"trainer": ["t:1"]}, "task": {"type": "worker"}},
        "task.type",
    ),
    (
        "addresses-a-string",
        {"cluster": {"worker": "w0:2222"}, "task": {"type": "worker"}},
        "cluster.worker",
    ),
    ("addresses-an-object", {"cluster": {"worker": {"0": "w0:1"}}}, "cluster.worker"),
    ("address-without-port", {"cluster": {"worker": ["w0:1", "w1"]}}, "cluster.worker[1]"),
    ("address-not-a-string", {"cluster": {"ps": [2222]}}, "cluster.ps[0]"),
    ("address-empty", {"cluster": {"chief": [""]}}, "cluster.chief[0]"),
]


@pytest.mark.parametrize(
    ("doc", "field"), [(doc, field) for _, doc, field in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_tf_config_names_the_field(doc: Any, field: str) -> None:
    """Each malformed TF_CONFIG raises a TFConfigError (a ValueError) naming the bad field and value."""
    err = parse_error(doc)
    assert isinstance(err, ValueError)
    assert err.field == field
    assert str(err).startswith(f"{field}={err.value!r}: ")


@pytest.mark.parametrize(
    ("doc", "field"),
    [(doc, field) for _, doc, field in MALFORMED if not isinstance(doc, str)],
    ids=[m[0] for m in MALFORMED if not isinstance(m[1], str)],
)
def test_malformed_json_text_fails_like_the_dict(doc: Any, field: str) -> None:
    """The JSON text of a malformed document fails on the same field as the dict itself."""
    assert parse_error(json.dumps(doc)).field == field


@pytest.mark.parametrize(
    ("doc", "field", "value"),
    [
        ({"cluster": WORKERS, "task": {"type": "worker", "index": 7}}, "task.index", 7),
        ({"cluster": WORKERS, "task": {"type": "driver"}}, "task.type", "driver"),
        ({"cluster": {"worker": ["w0:1", "w1"]}}, "cluster.worker[1]", "w1"),
    ],
)
def test_error_carries_the_bad_value(doc: Any, field: str, value: Any) -> None:
    """The error keeps the offending value and shows it in the message."""
    err = parse_error(doc)
    assert (err.field, err.value) == (field, value)
    assert repr(value) in str(err)


def test_unknown_task_type_lists_the_valid_ones() -> None:
    """The error for an unknown task type lists every valid task type."""
    message = str(parse_error({"cluster": WORKERS, "task": {"type": "driver"}}))
    for task_type in TaskType:
        assert task_type.value in message


def test_long_bad_json_is_shortened_in_the_error() -> None:
    """Bad JSON is quoted in the error, but at most 80 characters of it."""
    err = parse_error('{"cluster": {"worker": [' + '"w:1", ' * 100)
    assert err.field == "TF_CONFIG"
    assert isinstance(err.value, str)
    assert len(err.value) <= 80


@given(
    cluster=clusters(),
    job=st.sampled_from(["chief", "master", "worker", "ps"]),
    offset=st.integers(min_value=0, max_value=100),
    negative=st.booleans(),
)
def test_any_index_outside_the_job_is_rejected(
    cluster: dict[str, list[str]], job: str, offset: int, negative: bool
) -> None:
    """An index below 0 or at/after the job's size is rejected as `task.index`."""
    if job not in cluster:
        return
    index = -1 - offset if negative else len(cluster[job]) + offset
    assert parse_error({"cluster": cluster, "task": {"type": job, "index": index}}).field == (
        "task.index"
    )


@given(cluster=led_clusters(), index=st.integers(min_value=0, max_value=1000))
def test_evaluator_index_is_unbounded(cluster: dict[str, list[str]], index: int) -> None:
    """Evaluators are outside the cluster, so any index >= 0 is valid (as in TF's RunConfig)."""
    config = TFConfig.from_dict({"cluster": cluster, "task": {"type": "evaluator", "index": index}})
    assert (config.task_type, config.task_index, config.address) == (
        TaskType.EVALUATOR,
        index,
        None,
    )


@given(cluster=led_clusters())
def test_multi_task_cluster_requires_a_task_type(cluster: dict[str, list[str]]) -> None:
    """Without a task type a cluster of more than one task is rejected as `task.type`."""
    if sum(len(a) for a in cluster.values()) > 1:
        assert parse_error({"cluster": cluster}).field == "task.type"
    else:
        assert TFConfig.from_dict({"cluster": cluster}).task_type is None


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"cluster": [], "task": {"type": "evaluator"}}, "cluster"),
        ({"cluster": "", "task": {"type": "evaluator"}}, "cluster"),
        ({"cluster": {"worker": ["w:1"]}, "task": []}, "task"),
        ({"cluster": {"worker": ["w:1"]}, "task": 0}, "task"),
    ],
)
def test_falsy_non_objects_are_rejected(doc: Any, field: str) -> None:
    """A `cluster` or `task` that is not an object is rejected even when it is falsy."""
    assert parse_error(doc).field == field


@pytest.mark.parametrize("address", ["w1:", "w1:http", ":2222"])
def test_address_needs_a_numeric_port_and_a_host(address: str) -> None:
    """An address whose port is empty or not a number, or whose host is empty, is rejected."""
    doc = {"cluster": {"worker": ["w0:1", address]}, "task": {"type": "worker", "index": 0}}
    assert parse_error(doc).field == "cluster.worker[1]"


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "w:1", "w", "worker", "chief", "ps", "evaluator", "master"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
shaped_documents = st.fixed_dictionaries(
    {},
    optional={
        "cluster": st.dictionaries(
            st.sampled_from(["chief", "master", "worker", "ps", "evaluator", "x"]),
            st.lists(json_scalars, max_size=3) | json_values,
            max_size=4,
        )
        | json_values,
        "task": st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from([t.value for t in TaskType]) | json_scalars,
                "index": st.integers(min_value=-2, max_value=4) | json_scalars,
            },
        )
        | json_values,
    },
)
KNOWN_FIELDS = {"TF_CONFIG", "cluster", "task", "task.type", "task.index"}


@settings(max_examples=300)
@given(doc=shaped_documents | json_values)
@example(doc={"cluster": {"worker": [None]}})
@example(doc={"task": {"type": ["worker"]}})
def test_any_document_parses_or_raises_tf_config_error(doc: Any) -> None:
    """Any decoded JSON either parses into a round-tripping record or raises TFConfigError on a known field."""
    try:
        config = TFConfig.from_dict(doc)
    except TFConfigError as err:
        assert err.field in KNOWN_FIELDS or err.field.startswith("cluster.")
    else:
        assert TFConfig.from_dict(config.as_dict()) == config


@given(text=st.text(max_size=60))
@example(text="{")
@example(text="NaN")
def test_any_text_parses_or_raises_tf_config_error(text: str) -> None:
    """Arbitrary TF_CONFIG text either parses or raises TFConfigError, never another error."""
    try:
        TFConfig.from_json(text)
    except TFConfigError as err:
        assert err.field in KNOWN_FIELDS or err.field.startswith("cluster.")


# --- Kubeflow TFJob documents ---------------------------------------------------------


def kubeflow_tf_config(replicas: dict[str, int], task_type: str, index: int) -> str:
    """TF_CONFIG as the Kubeflow training-operator writes it for one replica of a TFJob."""
    cluster = {
        rt: [f"mnist-{rt}-{i}.kubeflow.svc:2222" for i in range(count)]
        for rt, count in replicas.items()
    }
    doc = {"cluster": cluster, "task": {"type": task_type, "index": index}, "environment": "cloud"}
    return json.dumps(doc)


def test_kubeflow_worker_document() -> None:
    """A TFJob worker's verbatim TF_CONFIG parses into a distributed, non-chief worker that trains."""
    text = (
        '{"cluster":{"chief":["job-chief-0.ns.svc:2222"],'
        '"worker":["job-worker-0.ns.svc:2222","job-worker-1.ns.svc:2222"],'
        '"ps":["job-ps-0.ns.svc:2222"]},'
        '"task":{"type":"worker","index":1},"environment":"cloud"}'
    )
    config = TFConfig.from_json(text)
    assert (config.task_type, config.task_index) == (TaskType.WORKER, 1)
    assert config.address == "job-worker-1.ns.svc:2222"
    assert config.is_distributed
    assert not config.is_chief
    assert (config.num_tasks, config.num_workers) == (4, 3)
    assert default_schedule(config) is Schedule.TRAIN


KUBEFLOW_JOB = {"chief": 1, "worker": 2, "ps": 1}


@pytest.mark.parametrize(
    ("replicas", "task_type", "index", "schedule", "is_chief"),
    [
        (KUBEFLOW_JOB, "chief", 0, Schedule.TRAIN_AND_EVALUATE, True),
        (KUBEFLOW_JOB, "worker", 0, Schedule.TRAIN, False),
        (KUBEFLOW_JOB, "worker", 1, Schedule.TRAIN, False),
        (KUBEFLOW_JOB, "ps", 0, Schedule.RUN_STD_SERVER, False),
        (KUBEFLOW_JOB, "evaluator", 0, Schedule.CONTINUOUS_EVAL, False),
        ({"master": 1, "worker": 2, "ps": 2}, "master", 0, Schedule.TRAIN_AND_EVALUATE, True),
        ({"master": 1, "worker": 2, "ps": 2}, "ps", 1, Schedule.RUN_STD_SERVER, False),
        ({"chief": 1}, "chief", 0, Schedule.TRAIN_AND_EVALUATE, True),
    ],
    ids=[
        "chief",
        "worker-0",
        "worker-1",
        "ps",
        "evaluator",
        "master",
        "master-job-ps",
        "single-chief",
    ],
)
def test_kubeflow_replicas_map_to_schedules(
    replicas: dict[str, int], task_type: str, index: int, schedule: Schedule, is_chief: bool
) -> None:
    """Every Kubeflow TFJob replica type parses and gets the design's default schedule."""
    config = TFConfig.from_json(kubeflow_tf_config(replicas, task_type, index))
    assert (config.task_type, config.task_index) == (TaskType(task_type), index)
    assert config.is_chief is is_chief
    assert default_schedule(config) is schedule
    if task_type != "evaluator":
        assert config.address == f"mnist-{task_type}-{index}.kubeflow.svc:2222"


@pytest.mark.parametrize(
    ("task_type", "schedule"),
    [
        ("chief", Schedule.TRAIN_AND_EVALUATE),
        ("worker", Schedule.TRAIN),
        ("ps", Schedule.RUN_STD_SERVER),
        ("evaluator", Schedule.CONTINUOUS_EVAL),
    ],
)
def test_kubeflow_job_with_an_evaluator_replica(task_type: str, schedule: Schedule) -> None:
    """Pods of a TFJob with an Evaluator replica (which the operator keeps out of the cluster,
    kubeflow/tf-operator#650) parse and get their default schedules."""
    config = TFConfig.from_json(kubeflow_tf_config(KUBEFLOW_JOB, task_type, 0))
    assert default_schedule(config) is schedule


# --- TF_CONFIG by the rules TF's RunConfig applies (issues 9 and 10) ------------------


@pytest.mark.parametrize("text", ["", "   ", "\n", "\t \n"])
def test_empty_tf_config_is_malformed_not_local(text: str) -> None:
    """A set but empty TF_CONFIG (which TF's json.loads rejects) is a TFConfigError naming TF_CONFIG."""
    err = parse_error(text)
    assert (err.field, err.value) == ("TF_CONFIG", text)
    assert "empty" in str(err) and "unset it for a local run" in str(err)


CHIEFLESS: list[dict[str, list[str]]] = [
    {"worker": ["w0:1", "w1:1"]},
    {"worker": ["w0:1", "w1:1", "w2:1"], "ps": ["p:1"]},
    {"worker": ["w0:1"]},
    {"ps": ["p:1"]},
    {"worker": ["w0:1"], "foo": ["f:1"]},
]


@pytest.mark.parametrize(
    "cluster", CHIEFLESS, ids=["workers", "workers-ps", "one-worker", "ps", "foo"]
)
@pytest.mark.parametrize("index", [0, None])
def test_cluster_without_chief_or_master_is_rejected(
    cluster: dict[str, list[str]], index: int | None
) -> None:
    """A cluster with no chief or master (which RunConfig refuses) is rejected as `cluster`, naming its jobs."""
    job = next(iter(cluster))
    task: dict[str, Any] = {"type": job} if index is None else {"type": job, "index": index}
    for doc in (
        {"cluster": cluster, "task": task},
        {"cluster": cluster, "task": {"type": "evaluator"}},
    ):
        err = parse_error(doc)
        assert (err.field, err.value) == ("cluster", sorted(cluster))
        assert "chief" in err.problem and "master" in err.problem
        for name in cluster:
            assert name in err.problem


@given(cluster=clusters(), task=st.sampled_from(["worker", "ps", "evaluator"]))
def test_any_chiefless_cluster_is_rejected_before_anything_runs(
    cluster: dict[str, list[str]], task: str
) -> None:
    """Every non-empty cluster without a chief or master fails to parse, whatever the task."""
    cluster.pop("chief", None)
    cluster.pop("master", None)
    if not cluster:
        return
    doc = {"cluster": cluster, "task": {"type": task, "index": 0}}
    with pytest.raises(TFConfigError):
        TFConfig.from_dict(doc)


@pytest.mark.parametrize("job", ["chief", "master"])
def test_chief_job_without_a_task_is_rejected(job: str) -> None:
    """A chief (or master) job listing no task is rejected: there must be exactly one."""
    err = parse_error({"cluster": {job: [], "worker": ["w:1"]}, "task": {"type": "worker"}})
    assert (err.field, err.problem) == (f"cluster.{job}", "must list exactly 1 task")


FOO = {"chief": ["c:1"], "worker": ["w:1"], "ps": ["p:1"], "foo": ["f0:1", "f1:1"]}


@pytest.mark.parametrize(
    ("task_type", "schedule"),
    [
        ("chief", Schedule.TRAIN_AND_EVALUATE),
        ("worker", Schedule.TRAIN),
        ("ps", Schedule.RUN_STD_SERVER),
        ("evaluator", Schedule.CONTINUOUS_EVAL),
    ],
)
def test_extra_job_is_accepted_and_known_tasks_keep_their_schedules(
    task_type: str, schedule: Schedule
) -> None:
    """A cluster with an extra job (as RunConfig accepts) parses; known task types keep their schedules."""
    config = TFConfig.from_dict({"cluster": FOO, "task": {"type": task_type, "index": 0}})
    assert config.task_type is TaskType(task_type)
    assert config.cluster["foo"] == ("f0:1", "f1:1")
    assert default_schedule(config) is schedule
    assert config.num_tasks == 5 and config.num_workers == 2
    assert TFConfig.from_dict(config.as_dict()) == config


def test_task_of_an_extra_job_parses_like_tf() -> None:
    """A task whose type is an extra job of the cluster parses (RunConfig accepts it): not chief, its own address, no default schedule."""
    config = TFConfig.from_dict({"cluster": FOO, "task": {"type": "foo", "index": 1}})
    assert (config.task_type, config.task_job, config.task_index) == (None, "foo", 1)
    assert config.address == "f1:1"
    assert config.task_name == "foo-1"
    assert not config.is_chief
    assert config.is_distributed
    assert config.as_dict() == {"cluster": FOO, "task": {"type": "foo", "index": 1}}
    assert TFConfig.from_json(json.dumps(config.as_dict())) == config
    with pytest.raises(ScheduleError):
        default_schedule(config)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"cluster": FOO, "task": {"type": "foo", "index": 2}}, "task.index"),
        ({"cluster": FOO, "task": {"type": "bar", "index": 0}}, "task.type"),
        ({"cluster": {**FOO, "": ["x:1"]}, "task": {"type": "chief"}}, "cluster"),
    ],
    ids=["foo-index-out-of-range", "not-a-job", "empty-job-name"],
)
def test_extra_job_tasks_are_still_checked(doc: dict[str, Any], field: str) -> None:
    """A task of an extra job needs an index in range; a type that is no job is rejected; a job needs a name."""
    assert parse_error(doc).field == field


def test_unknown_task_type_lists_the_extra_jobs_and_hints_the_case() -> None:
    """The error for a task type that is no job lists the cluster's extra jobs and suggests the lower-case type."""
    message = str(parse_error({"cluster": FOO, "task": {"type": "Worker"}}))
    assert "or a job of the cluster: foo" in message
    assert "did you mean 'worker'?" in message


@given(
    cluster=led_clusters(),
    job=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=8),
    count=st.integers(min_value=1, max_value=3),
)
def test_any_extra_job_round_trips(cluster: dict[str, list[str]], job: str, count: int) -> None:
    """Any extra job name (not a task type) is kept, and each of its tasks parses with its address."""
    if job in {t.value for t in TaskType} or not cluster:
        return
    cluster[job] = [f"{job}{i}:1" for i in range(count)]
    for index in range(count):
        doc = {"cluster": cluster, "task": {"type": job, "index": index}}
        config = TFConfig.from_dict(doc)
        assert config.address == f"{job}{index}:1"
        assert config.as_dict() == doc
        assert not config.is_chief


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1", "100000000000000000000"])
def test_port_out_of_range_says_so(port: str) -> None:
    """A numeric port outside 1-65535 says "port must be 1-65535", naming the address field."""
    address = f"w1:{port}"
    doc = {"cluster": {"chief": ["c:1"], "worker": ["w0:1", address]}, "task": {"type": "chief"}}
    err = parse_error(doc)
    assert (err.field, err.value, err.problem) == (
        "cluster.worker[1]",
        address,
        "port must be 1-65535",
    )


@pytest.mark.parametrize("port", [1, 2222, 65535])
def test_ports_at_the_ends_of_the_range_are_fine(port: int) -> None:
    """Ports 1 and 65535 (and any between) are valid."""
    config = TFConfig.from_dict({"cluster": {"chief": [f"c:{port}"]}, "task": {"type": "chief"}})
    assert config.address == f"c:{port}"


@given(cluster=led_clusters())
def test_task_name_is_type_dash_index(cluster: dict[str, list[str]]) -> None:
    """Each clustered task is named "<type>-<index>" (as task records name it); a local run has none."""
    for job, addrs in cluster.items():
        for index in range(len(addrs)):
            config = TFConfig.from_dict({"cluster": cluster, "task": {"type": job, "index": index}})
            assert config.task_name == f"{job}-{index}"
    assert TFConfig.local().task_name is None


def test_task_job_must_agree_with_task_type() -> None:
    """A record built directly cannot name a task type and a different job, nor a TaskType as an extra job."""
    assert TFConfig(task_type=TaskType.PS).task_job == "ps"
    with pytest.raises(TFConfigError):
        TFConfig(task_type=TaskType.PS, task_job="worker")
    with pytest.raises(TFConfigError):
        TFConfig(task_job="worker")
