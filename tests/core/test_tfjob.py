"""The TF_CONFIG documents a Kubeflow TFJob operator gives each replica map to the right schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from core.errors import TFConfigError
from core.schedule import Schedule, default_schedule
from core.tf_config import TaskType, TFConfig

MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "kubernetes" / "tfjob.yaml"
COMMAND = [
    "tfexperiment",
    "run",
    "examples.kubernetes.experiment:experiment_fn",
    "--output-dir",
    "/data/run",
]
SCHEDULE_OF = {
    "chief": Schedule.TRAIN_AND_EVALUATE,
    "master": Schedule.TRAIN_AND_EVALUATE,
    "worker": Schedule.TRAIN,
    "ps": Schedule.RUN_STD_SERVER,
    "evaluator": Schedule.CONTINUOUS_EVAL,
}


def operator_tf_config(
    job: str,
    replicas: dict[str, int],
    replica_type: str,
    index: int,
    *,
    namespace: str = "default",
    port: int = 2222,
    cluster_domain: str | None = None,
) -> str:
    """TF_CONFIG as the training operator writes it (genTFConfigJSONStr / genClusterSpec).

    Replica types are the TFJob's (``Chief``, ``Worker``, ``PS``, ``Evaluator``,
    ``Master``); the cluster lists every type but the evaluator, each address being the
    pod's headless service ``<job>-<type>-<i>.<namespace>.svc[.<domain>]:<port>``.
    """
    cluster: dict[str, list[str]] = {}
    for rtype, count in replicas.items():
        if rtype == "Evaluator":
            continue
        rt = rtype.lower()
        suffix = f".{cluster_domain}" if cluster_domain else ""
        cluster[rt] = [f"{job}-{rt}-{i}.{namespace}.svc{suffix}:{port}" for i in range(count)]
    doc = {
        "cluster": cluster,
        "task": {"type": replica_type.lower(), "index": index},
        "environment": "cloud",
    }
    return json.dumps(doc)


def _tfjob() -> dict[str, Any]:
    """The TFJob document of the example manifest."""
    with open(MANIFEST) as handle:
        docs = [doc for doc in yaml.safe_load_all(handle) if doc]
    (tfjob,) = [doc for doc in docs if doc.get("kind") == "TFJob"]
    return tfjob  # type: ignore[no-any-return]


def test_manifest_runs_the_experiment_with_default_schedules_on_every_replica() -> None:
    """Chief, Worker, PS and Evaluator all run the same command with no --schedule."""
    specs = _tfjob()["spec"]["tfReplicaSpecs"]
    assert set(specs) == {"Chief", "Worker", "PS", "Evaluator"}
    for name, spec in specs.items():
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == "tensorflow", name
        assert container["command"] == COMMAND, name
        assert {"name": "tfjob-port", "containerPort": 2222} in container["ports"], name
        assert any(m["mountPath"] == "/data" for m in container["volumeMounts"]), name


def test_manifest_lets_ps_and_evaluator_end_by_themselves() -> None:
    """The operator must not delete the still-running ps and evaluator when the chief ends."""
    assert _tfjob()["spec"]["runPolicy"]["cleanPodPolicy"] == "None"


def test_each_replica_of_the_manifest_gets_its_schedule() -> None:
    """Every pod of the example TFJob parses its TF_CONFIG and gets its default schedule."""
    tfjob = _tfjob()
    name = tfjob["metadata"]["name"]
    replicas = {rt: spec["replicas"] for rt, spec in tfjob["spec"]["tfReplicaSpecs"].items()}
    for rtype, count in replicas.items():
        for index in range(count):
            config = TFConfig.from_json(operator_tf_config(name, replicas, rtype, index))
            assert default_schedule(config) is SCHEDULE_OF[rtype.lower()], (rtype, index)


def test_operator_documents_parse_for_each_replica_type() -> None:
    """Chief, worker, ps and evaluator documents give the task, address and chief flag."""
    replicas = {"Chief": 1, "Worker": 2, "PS": 2, "Evaluator": 1}
    chief = TFConfig.from_json(operator_tf_config("job", replicas, "Chief", 0))
    assert chief.task_type is TaskType.CHIEF and chief.is_chief
    assert chief.address == "job-chief-0.default.svc:2222"
    assert chief.num_workers == 3 and chief.num_tasks == 5
    worker = TFConfig.from_json(operator_tf_config("job", replicas, "Worker", 1))
    assert worker.task_type is TaskType.WORKER and not worker.is_chief
    assert worker.address == "job-worker-1.default.svc:2222"
    ps = TFConfig.from_json(operator_tf_config("job", replicas, "PS", 1))
    assert ps.task_type is TaskType.PS and ps.address == "job-ps-1.default.svc:2222"
    evaluator = TFConfig.from_json(operator_tf_config("job", replicas, "Evaluator", 0))
    assert evaluator.task_type is TaskType.EVALUATOR and evaluator.address is None
    assert "evaluator" not in evaluator.cluster and evaluator.is_distributed


def test_legacy_master_replica_trains_and_evaluates() -> None:
    """A TFJob with a Master replica (TF 1 style) gives the master train_and_evaluate."""
    replicas = {"Master": 1, "Worker": 1, "PS": 1}
    master = TFConfig.from_json(operator_tf_config("old", replicas, "Master", 0))
    assert master.is_chief and default_schedule(master) is Schedule.TRAIN_AND_EVALUATE


def test_custom_cluster_domain_addresses_parse() -> None:
    """CUSTOM_CLUSTER_DOMAIN adds a suffix to every address; parsing is unaffected."""
    replicas = {"Chief": 1, "PS": 1}
    text = operator_tf_config("j", replicas, "PS", 0, cluster_domain="cluster.local")
    config = TFConfig.from_json(text)
    assert config.address == "j-ps-0.default.svc.cluster.local:2222"
    assert default_schedule(config) is Schedule.RUN_STD_SERVER


def test_dynamic_worker_sparse_config_is_refused_clearly() -> None:
    """enableDynamicWorker's sparseCluster document is not a cluster Estimator can use."""
    text = json.dumps(
        {
            "sparseCluster": {"worker": {"1": "j-worker-1.default.svc:2222"}, "ps": []},
            "task": {"type": "worker", "index": 1},
        }
    )
    with pytest.raises(TFConfigError, match=r"task\.type='worker': has no job in the cluster"):
        TFConfig.from_json(text)


@given(
    chief_type=st.sampled_from(["Chief", "Master"]),
    workers=st.integers(0, 4),
    ps=st.integers(0, 3),
    evaluator=st.booleans(),
    port=st.integers(1, 65535),
)
def test_every_replica_of_any_tfjob_gets_its_schedule(
    chief_type: str, workers: int, ps: int, evaluator: bool, port: int
) -> None:
    """For any replica counts, each replica's document maps to its type's default schedule."""
    replicas = {chief_type: 1, "Worker": workers, "PS": ps, "Evaluator": int(evaluator)}
    replicas = {rtype: n for rtype, n in replicas.items() if n}
    for rtype, count in replicas.items():
        for index in range(count):
            config = TFConfig.from_json(operator_tf_config("j", replicas, rtype, index, port=port))
            if config.is_distributed or rtype == "Evaluator":
                assert default_schedule(config) is SCHEDULE_OF[rtype.lower()]
            else:  # a lone chief is a single machine
                assert default_schedule(config) is Schedule.TRAIN_AND_EVALUATE
            assert config.is_chief == (rtype == chief_type)
