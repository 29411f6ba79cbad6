"""The Katib Experiment example parses, runs the TFJob's CLI, and sweeps the wine tune.yaml space."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from core import search as cs
from shell.cli import build_parser
from shell.loading import load_config

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "examples" / "kubernetes" / "katib.yaml"
TUNE = ROOT / "examples" / "wine" / "tune.yaml"
CONFIG = ROOT / "examples" / "wine" / "experiment.yaml"
KEY_OF = {  # Katib parameter -> the config key its --set overrides
    "learning_rate": "estimator.params.learning_rate",
    "hidden_units": "estimator.params.hidden_units",
    "batch_size": "train_input.batch_size",
}


def _experiment() -> dict[str, Any]:
    """The Katib Experiment document of the example manifest."""
    with open(MANIFEST) as handle:
        docs = [doc for doc in yaml.safe_load_all(handle) if doc]
    (experiment,) = docs
    return experiment  # type: ignore[no-any-return]


def _containers(experiment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    specs = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["tfReplicaSpecs"]
    out = {}
    for name, spec in specs.items():
        (container,) = spec["template"]["spec"]["containers"]
        out[name] = container
    return out


def _substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{trialParameters\.(\w+)\}", lambda m: values[m.group(1)], text)


def test_manifest_is_a_katib_experiment_collecting_tensorflow_events_from_eval() -> None:
    """A kubeflow.org/v1beta1 Experiment, TensorFlowEvent collector on <model_dir>/eval."""
    experiment = _experiment()
    assert (experiment["apiVersion"], experiment["kind"]) == ("kubeflow.org/v1beta1", "Experiment")
    spec = experiment["spec"]
    assert spec["objective"]["objectiveMetricName"] == "accuracy"
    assert spec["metricsCollectorSpec"]["collector"]["kind"] == "TensorFlowEvent"
    source = spec["metricsCollectorSpec"]["source"]["fileSystemPath"]
    assert source == {"path": "/data/run/eval", "kind": "Directory"}
    trial = spec["trialTemplate"]
    assert (trial["trialSpec"]["apiVersion"], trial["trialSpec"]["kind"]) == (
        "kubeflow.org/v1",
        "TFJob",
    )
    assert trial["primaryPodLabels"] == {"training.kubeflow.org/replica-type": "chief"}
    for container in _containers(experiment).values():
        assert container["name"] == trial["primaryContainerName"]
        (mount,) = container["volumeMounts"]
        assert mount["mountPath"] == "/data/run" and "$(TRIAL_NAME)" in mount["subPathExpr"]


def test_every_trial_parameter_is_declared_and_every_reference_exists() -> None:
    """Each ${trialParameters.X} in the trial spec is declared, and refers to a parameter."""
    spec = _experiment()["spec"]
    declared = {p["name"]: p["reference"] for p in spec["trialTemplate"]["trialParameters"]}
    used = set(re.findall(r"\$\{trialParameters\.(\w+)\}", yaml.safe_dump(spec)))
    assert used == set(declared)
    names = {p["name"] for p in spec["parameters"]}
    assert {ref for ref in declared.values() if not ref.startswith("${")} == names


def test_container_command_is_the_cli_and_its_overrides_make_a_valid_config() -> None:
    """The command parses as `tfexperiment run --config ...`, and with each end of each
    feasible space substituted its --set overrides give a valid experiment config."""
    experiment = _experiment()
    spec = experiment["spec"]
    declared = {p["reference"]: p["name"] for p in spec["trialTemplate"]["trialParameters"]}
    commands = {name: c["command"] for name, c in _containers(experiment).items()}
    assert set(commands) == {"Chief", "Worker", "PS"}
    (command,) = {tuple(c) for c in commands.values()}  # the same on every replica
    assert command[0] == "tfexperiment"
    args = build_parser().parse_args(list(command[1:]))
    assert (args.command, args.config, args.output_dir) == (
        "run",
        "examples/wine/experiment.yaml",
        "/data/run",
    )
    assert args.experiment_fn is None and args.schedule is None
    for param in spec["parameters"]:
        space = param["feasibleSpace"]
        for value in space.get("list") or [space["min"], space["max"]]:
            values = {declared[p["name"]]: "x" for p in spec["parameters"]}
            for other in spec["parameters"]:
                first = other["feasibleSpace"].get("list", [other["feasibleSpace"].get("min")])
                values[declared[other["name"]]] = first[0]
            values[declared[param["name"]]] = value
            overrides = [_substitute(o, values) for o in args.overrides]
            config = load_config(CONFIG, overrides)
            assert config.train_input.batch_size > 0


def test_search_space_matches_the_wine_tune_config() -> None:
    """Katib sweeps the same keys and ranges as examples/wine/tune.yaml."""
    with open(TUNE) as handle:
        _, sweep = cs.split_search(yaml.safe_load(handle))
    assert sweep is not None
    spec = _experiment()["spec"]
    assert spec["objective"]["type"] == sweep.objective.direction
    assert spec["objective"]["objectiveMetricName"] == sweep.objective.metric
    for param in spec["parameters"]:
        searched = sweep.param(KEY_OF[param["name"]])
        space = param["feasibleSpace"]
        if searched.kind is cs.Kind.CHOICE:
            assert [yaml.safe_load(v) for v in space["list"]] == list(searched.choices)
        else:
            assert (float(space["min"]), float(space["max"])) == (searched.low, searched.high)
