"""The sweep keys (search/objective/pruner/sampler) parse, fail naming the key, and decide the study."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import search as cs
from core.errors import ConfigError, ConfigTypeError

BASE: dict[str, Any] = {
    "estimator": {"type": "DNNClassifier", "params": {"hidden_units": [8], "learning_rate": 0.01}},
    "train_input": {"path": "train.csv", "batch_size": 32},
    "eval_input": {"path": "eval.csv"},
    "train_steps": 100,
}
SEARCH: dict[str, Any] = {
    "estimator.params.learning_rate": {"loguniform": [0.0005, 0.1]},
    "estimator.params.hidden_units": {"choice": [[8], [16, 8]]},
    "train_input.batch_size": {"int": [16, 64]},
    "estimator.params.dropout": {"float": [0.0, 0.5]},
}

keys = st.lists(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), min_size=1, max_size=4).map(".".join)
finite = st.floats(-1e6, 1e6, allow_nan=False)


def test_split_search_takes_the_four_keys_out() -> None:
    """split_search returns the config without search/objective/pruner/sampler and the spec."""
    data = {
        **BASE,
        "search": SEARCH,
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "pruner": {"name": "median", "n_warmup_steps": 2},
        "sampler": "random",
    }
    rest, spec = cs.split_search(data)
    assert rest == BASE
    assert spec is not None
    assert [p.key for p in spec.params] == list(SEARCH)
    assert spec.objective == cs.Objective(metric="accuracy", direction="maximize")
    assert spec.pruner == cs.Choice(name="median", options={"n_warmup_steps": 2})
    assert spec.sampler == cs.Choice(name="random")
    lr = spec.param("estimator.params.learning_rate")
    assert (lr.kind, lr.low, lr.high) == (cs.Kind.LOGUNIFORM, 0.0005, 0.1)
    assert spec.param("estimator.params.hidden_units").choices == ([8], [16, 8])
    assert "search" in data  # the input is left unchanged


def test_a_config_without_search_has_no_spec() -> None:
    """A plain experiment config splits into itself and None; defaults are loss/minimize."""
    assert cs.split_search(BASE) == (BASE, None)
    spec = cs.parse_search({"search": {"train_steps": {"int": [1, 5]}}})
    assert spec.objective == cs.Objective(metric="loss", direction="minimize")
    assert (spec.pruner.name, spec.sampler.name) == ("median", "tpe")


@pytest.mark.parametrize(
    ("entry", "field", "error"),
    [
        ({"loguniform": [0.0, 0.1]}, "search.k.loguniform", ConfigError),
        ({"loguniform": [-1, 0.1]}, "search.k.loguniform", ConfigError),
        ({"float": [0.5, 0.5]}, "search.k.float", ConfigError),
        ({"int": [64, 16]}, "search.k.int", ConfigError),
        ({"int": [1.5, 3]}, "search.k.int", ConfigTypeError),
        ({"float": [0, math.inf]}, "search.k.float", ConfigTypeError),
        ({"float": [0, 1, 2]}, "search.k.float", ConfigTypeError),
        ({"choice": []}, "search.k.choice", ConfigError),
        ({"choice": [1, 1]}, "search.k.choice", ConfigError),
        ({"uniform": [0, 1]}, "search.k.uniform", ConfigError),
        ({"choice": 3}, "search.k.choice", ConfigTypeError),
        ([0, 1], "search.k", ConfigTypeError),
        ({"int": [1, 2], "float": [1, 2]}, "search.k", ConfigTypeError),
    ],
)
def test_bad_entries_name_the_dotted_key(entry: Any, field: str, error: type) -> None:
    """Empty ranges, lo >= hi, loguniform lo <= 0 and unknown distributions name the key."""
    with pytest.raises(error) as info:
        cs.split_search({**BASE, "search": {"k": entry}})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"objective": {"metric": "accuracy", "direction": "up"}}, "objective.direction"),
        ({"objective": {"metric": ""}}, "objective.metric"),
        ({"objective": {"goal": "max"}}, "objective.goal"),
        ({"pruner": "sometimes"}, "pruner"),
        ({"pruner": {"name": "nope"}}, "pruner.name"),
        ({"sampler": {"name": "grid"}}, "sampler.name"),
        ({"sampler": 7}, "sampler"),
        ({"search": {}}, "search"),
        ({"search": [1]}, "search"),
        ({"search": {"a..b": {"int": [1, 2]}}}, "search.a..b"),
        ({"search": {"a": {"int": [1, 2]}, "a.b": {"int": [1, 2]}}}, "search.a.b"),
    ],
)
def test_bad_objective_pruner_sampler_name_the_key(extra: dict[str, Any], field: str) -> None:
    """A bad direction, metric, pruner or sampler name (or an empty search) names its key."""
    data = {**BASE, "search": {"train_steps": {"int": [1, 9]}}, **extra}
    with pytest.raises((ConfigError, ConfigTypeError)) as info:
        cs.split_search(data)
    assert info.value.field == field


def test_objective_without_search_is_refused() -> None:
    """objective/pruner/sampler without search: is an error naming search."""
    with pytest.raises(ConfigError) as info:
        cs.split_search({**BASE, "objective": {"metric": "loss"}})
    assert info.value.field == "search"


@given(low=finite, width=st.floats(1e-3, 1e6), kind=st.sampled_from(["float", "loguniform"]))
def test_any_valid_float_range_parses_and_its_corners_are_its_ends(
    low: float, width: float, kind: str
) -> None:
    """Every finite lo < hi range parses (lo > 0 for loguniform); corners are (lo, hi)."""
    if kind == "loguniform":
        low = abs(low) + 1e-9
    high = low + width
    if not high > low:
        return
    spec = cs.parse_search({"search": {"x.y": {kind: [low, high]}}})
    assert spec.params[0].corners() == (low, high)
    assert cs.corner_params(spec) == [("x.y", low), ("x.y", high)]


@given(low=st.integers(-1000, 1000), high=st.integers(-1000, 1000))
def test_int_ranges_parse_exactly_when_low_is_below_high(low: int, high: int) -> None:
    """{int: [lo, hi]} parses iff lo < hi; otherwise the error names search.<key>.int."""
    data = {"search": {"train_input.batch_size": {"int": [low, high]}}}
    if low < high:
        assert cs.parse_search(data).params[0].corners() == (low, high)
    else:
        with pytest.raises(ConfigError) as info:
            cs.parse_search(data)
        assert info.value.field == "search.train_input.batch_size.int"


choice_values = st.one_of(
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(1, 64), min_size=1, max_size=3),
    st.none(),
)


@given(choices=st.lists(choice_values, min_size=1, max_size=6, unique_by=repr))
def test_choices_round_trip_through_their_stored_labels(choices: list[Any]) -> None:
    """Each choice is stored as a primitive (lists as JSON) and decodes back to itself."""
    labels = [cs.encode_choice(c) for c in choices]
    if len(set(map(repr, labels))) != len(labels) or any(
        isinstance(a, bool) != isinstance(b, bool) and a == b for a in labels for b in labels
    ):
        return  # e.g. 1 and True: a duplicate for Optuna too
    param = cs.parse_param("estimator.params.hidden_units", {"choice": choices})
    for choice, label in zip(choices, param.labels):
        assert isinstance(label, (str, int, float, bool, type(None)))
        assert param.decode(label) == choice


@given(key=keys, value=st.one_of(st.integers(), st.text(max_size=4), st.lists(st.integers())))
def test_apply_params_sets_the_dotted_key_and_leaves_the_input(key: str, value: Any) -> None:
    """apply_params puts the value at its dotted path (making mappings) in a copy."""
    data: dict[str, Any] = {"train_steps": 5, "estimator": {"params": {"n": 1}}}
    before = repr(data)
    out = cs.apply_params(data, {key: value})
    node: Any = out
    for part in key.split("."):
        node = node[part]
    assert node == value
    assert repr(data) == before


def test_apply_params_indexes_lists_and_refuses_scalars() -> None:
    """A numeric part indexes a list; crossing a scalar names the scalar's own key."""
    data = {"exports": [{"metric": "loss"}], "train_steps": 5}
    assert cs.apply_params(data, {"exports.0.metric": "accuracy"})["exports"] == [
        {"metric": "accuracy"}
    ]
    with pytest.raises(ConfigError) as info:
        cs.apply_params(data, {"exports.3.metric": "x"})
    assert info.value.field == "exports.3"
    with pytest.raises(ConfigError) as info:
        cs.apply_params(data, {"train_steps.x": 1})
    assert info.value.field == "train_steps"


states = st.sampled_from([cs.COMPLETE, cs.PRUNED, cs.FAIL, cs.RUNNING, cs.WAITING])
trials = st.lists(st.tuples(states, st.booleans()), max_size=30)


@given(n_trials=st.integers(1, 40), study=trials)
def test_trials_left_counts_finished_and_running_but_not_interrupted(
    n_trials: int, study: list[tuple[str, bool]]
) -> None:
    """Complete, pruned, failed and running trials use up the total; interrupted ones do not."""
    used = sum(
        1
        for state, interrupted in study
        if state in (cs.COMPLETE, cs.PRUNED, cs.RUNNING) or (state == cs.FAIL and not interrupted)
    )
    assert cs.trials_left(n_trials, study) == max(0, n_trials - used)
    # Adding an interrupted trial never changes what is left; adding a complete one uses one.
    assert cs.trials_left(n_trials, [*study, (cs.FAIL, True)]) == cs.trials_left(n_trials, study)
    assert cs.trials_left(n_trials, [*study, (cs.COMPLETE, False)]) == max(
        0, cs.trials_left(n_trials, study) - 1
    )


@given(study=st.lists(states, max_size=20))
def test_a_study_fails_exactly_when_no_trial_completed(study: list[str]) -> None:
    """Exit code 0 iff some trial completed (there is a best trial), else 1."""
    assert cs.study_exit_code(study) == (0 if cs.COMPLETE in study else 1)


values = st.lists(st.one_of(st.none(), st.floats(-100, 100), st.just(math.nan)), max_size=20)


@given(vals=values, direction=st.sampled_from(cs.DIRECTIONS))
def test_best_so_far_is_the_running_best_finite_value(
    vals: list[float | None], direction: str
) -> None:
    """The line never gets worse, and each point is the best finite value seen so far."""
    line = cs.best_so_far(vals, direction)
    assert len(line) == len(vals)
    pick = max if direction == "maximize" else min
    for i, point in enumerate(line):
        seen = [v for v in vals[: i + 1] if v is not None and math.isfinite(v)]
        assert point == (pick(seen) if seen else None)


@given(seed=st.one_of(st.none(), st.integers(0, 2**31)), a=st.integers(0, 8), b=st.integers(0, 8))
def test_worker_seeds_differ_between_processes_and_keep_the_first(
    seed: int | None, a: int, b: int
) -> None:
    """Worker 0 of a fresh study keeps the seed; distinct workers get distinct seeds."""
    assert cs.worker_seed(seed, 0, 0) == seed
    if seed is not None and a != b:
        assert cs.worker_seed(seed, a, 3) != cs.worker_seed(seed, b, 3)


@given(
    prune=st.booleans(),
    step=st.one_of(st.none(), st.integers(0, 1000)),
    train_steps=st.one_of(st.none(), st.integers(0, 1000)),
)
def test_prune_only_when_asked_and_training_is_not_over(
    prune: bool, step: int | None, train_steps: int | None
) -> None:
    """A trial is ended only when the pruner says so and its last step is not reached."""
    over = step is not None and train_steps is not None and step >= train_steps
    assert cs.prune_now(prune, step, train_steps) == (prune and not over)


@pytest.mark.parametrize(
    ("storage", "kind"),
    [
        ("sqlite:///runs/study.db", "rdb"),
        ("postgresql://u:p@db/optuna", "rdb"),
        ("/shared/study.log", "journal"),
        ("study.journal", "journal"),
    ],
)
def test_storage_kind_tells_urls_from_journal_files(storage: str, kind: str) -> None:
    """A dialect:// URL is an RDB; a path ending in .log/.journal is a journal file."""
    assert cs.storage_kind(storage) == kind


def test_storage_kind_refuses_anything_else() -> None:
    """A plain path with another ending names --storage."""
    with pytest.raises(ConfigError) as info:
        cs.storage_kind("study.db")
    assert info.value.field == "--storage"


def test_baseline_is_the_configs_own_values_when_they_lie_in_the_space() -> None:
    """The config's values of the searched keys run first; any key outside: no baseline."""
    spec = cs.parse_search(
        {
            "search": {
                "estimator.params.learning_rate": {"loguniform": [0.001, 0.1]},
                "estimator.params.hidden_units": {"choice": [[4], [8]]},
                "train_input.batch_size": {"int": [16, 64]},
            }
        }
    )
    assert cs.baseline_params(BASE, spec) == {
        "estimator.params.learning_rate": 0.01,
        "estimator.params.hidden_units": "[8]",
        "train_input.batch_size": 32,
    }
    outside = cs.apply_params(BASE, {"train_input.batch_size": 128})
    assert cs.baseline_params(outside, spec) is None
    missing = cs.parse_search({"search": {"eval_steps": {"int": [1, 5]}}})
    assert cs.baseline_params(BASE, missing) is None


@given(low=st.integers(-50, 50), width=st.integers(1, 50), value=st.integers(-120, 120))
def test_a_value_is_in_an_int_space_exactly_within_its_bounds(
    low: int, width: int, value: int
) -> None:
    """in_space accepts exactly the ints in [low, high] (and get_dotted finds them)."""
    param = cs.parse_param("a.b", {"int": [low, low + width]})
    assert cs.in_space(param, value) == (low <= value <= low + width)
    assert not cs.in_space(param, float(low))
    assert cs.get_dotted({"a": {"b": value}}, "a.b") == value
    assert cs.get_dotted({"a": {"b": value}}, "a.c", "none") == "none"
