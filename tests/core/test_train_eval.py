"""train_and_evaluate: which saved checkpoints are evaluated, and whether a final one is owed."""

from __future__ import annotations

from itertools import accumulate, pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, ConfigTypeError
from core.train_eval import (
    TrainEvalKind,
    TrainEvalPolicy,
    TrainEvalReason,
    TrainEvalState,
    after_save,
    final_evaluation_owed,
    record_final,
)

baselines = st.integers(min_value=0, max_value=10**6)
cadences = st.integers(min_value=1, max_value=500)
increments = st.lists(st.integers(min_value=1, max_value=300), max_size=40)


def run(baseline: int, n: int | None, saved: list[int]) -> tuple[list[int], TrainEvalState]:
    """Feed every saved step to `after_save`; return the evaluated steps and the final state."""
    policy = TrainEvalPolicy(eval_every_n_steps=n)
    state = TrainEvalState(baseline_step=baseline)
    evaluated: list[int] = []
    for step in saved:
        decision, new_state = after_save(state, policy, saved_step=step)
        if decision.kind is TrainEvalKind.EVALUATE:
            assert decision.reason is TrainEvalReason.DUE
            assert new_state.last_evaluated_step == step
            evaluated.append(step)
        else:
            assert decision.reason is not TrainEvalReason.DUE
            assert new_state == state, "a skip changes nothing"
        state = new_state
    return evaluated, state


def test_default_policy_evaluates_every_new_checkpoint() -> None:
    """The seed's default `eval_every_n_steps=1` evaluates every checkpoint saved after the start."""
    assert TrainEvalPolicy().eval_every_n_steps == 1
    assert run(0, 1, [0, 100, 200, 300])[0] == [100, 200, 300]


@pytest.mark.parametrize("n", [-1, -100])
def test_negative_cadence_is_rejected(n: int) -> None:
    """A negative `eval_every_n_steps` is a ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        TrainEvalPolicy(eval_every_n_steps=n)
    assert (info.value.field, info.value.value) == ("eval_every_n_steps", n)


@pytest.mark.parametrize("n", [True, 1.5, "10"])
def test_non_int_cadence_is_rejected(n: object) -> None:
    """A non-int `eval_every_n_steps` is a ConfigTypeError naming the field."""
    with pytest.raises(ConfigTypeError) as info:
        TrainEvalPolicy(eval_every_n_steps=n)  # type: ignore[arg-type]
    assert info.value.field == "eval_every_n_steps"


def test_negative_baseline_is_rejected() -> None:
    """A negative start step is a ConfigError naming `baseline_step`."""
    with pytest.raises(ConfigError) as info:
        TrainEvalState(baseline_step=-1)
    assert info.value.field == "baseline_step"


@given(n=st.sampled_from([None, 0]), baseline=baselines, saved=st.lists(baselines, max_size=20))
def test_none_or_zero_cadence_never_evaluates_during_training(
    n: int | None, baseline: int, saved: list[int]
) -> None:
    """With `eval_every_n_steps` None or 0 no saved checkpoint is evaluated during training."""
    policy = TrainEvalPolicy(eval_every_n_steps=n)
    state = TrainEvalState(baseline_step=baseline)
    for step in saved:
        decision, new_state = after_save(state, policy, saved_step=step)
        assert decision.kind is TrainEvalKind.SKIP
        assert decision.reason is TrainEvalReason.ONLY_AT_END
        assert new_state == state


@given(baseline=baselines, n=cadences)
@example(baseline=0, n=1)
def test_start_checkpoint_is_never_evaluated(baseline: int, n: int) -> None:
    """The checkpoint TF saves when the session starts (at the baseline step) is skipped."""
    decision, _ = after_save(
        TrainEvalState(baseline_step=baseline),
        TrainEvalPolicy(eval_every_n_steps=n),
        saved_step=baseline,
    )
    assert (decision.kind, decision.reason) == (
        TrainEvalKind.SKIP,
        TrainEvalReason.ALREADY_EVALUATED,
    )


@settings(max_examples=200)
@given(baseline=baselines, n=cadences, gaps=increments, start_saved=st.booleans())
@example(baseline=0, n=1, gaps=[1, 1, 1], start_saved=True)
@example(baseline=0, n=100, gaps=[100, 100, 50, 50], start_saved=True)
@example(baseline=500, n=10, gaps=[3, 3, 3, 3], start_saved=False)
def test_increasing_saves_are_evaluated_exactly_when_n_steps_have_passed(
    baseline: int, n: int, gaps: list[int], start_saved: bool
) -> None:
    """Along increasing saves a step is evaluated iff it is >= n past the last evaluated one (or the start)."""
    saved = [baseline + total for total in accumulate(gaps)]
    if start_saved:
        saved.insert(0, baseline)
    evaluated, _ = run(baseline, n, saved)
    expected: list[int] = []
    reference = baseline
    for step in saved:
        if step - reference >= n:
            expected.append(step)
            reference = step
    assert evaluated == expected


@settings(max_examples=200)
@given(baseline=baselines, n=cadences, saved=st.lists(st.integers(0, 2 * 10**6), max_size=40))
@example(baseline=10, n=1, saved=[20, 20, 15, 20, 30])
def test_never_evaluates_twice_nor_at_or_before_the_start(
    baseline: int, n: int, saved: list[int]
) -> None:
    """Whatever order saves arrive in, evaluated steps strictly increase past the start, >= n apart."""
    evaluated, state = run(baseline, n, saved)
    points = [baseline, *evaluated]
    assert all(later - earlier >= n for earlier, later in pairwise(points))
    assert state.last_evaluated_step == (evaluated[-1] if evaluated else None)


@given(
    last=st.none() | st.integers(min_value=0, max_value=1000),
    final=st.integers(min_value=0, max_value=1000),
)
@example(last=None, final=0)
@example(last=500, final=500)
def test_final_evaluation_owed_iff_final_checkpoint_not_evaluated(
    last: int | None, final: int
) -> None:
    """A final evaluation is owed exactly when the last evaluated step is not the final step."""
    state = TrainEvalState(baseline_step=0, last_evaluated_step=last)
    assert final_evaluation_owed(state, final_step=final) is (last != final)


@given(baseline=baselines, n=st.none() | st.integers(0, 500), gaps=increments)
@example(baseline=0, n=None, gaps=[100, 100])
@example(baseline=0, n=100, gaps=[100, 100])
@example(baseline=0, n=150, gaps=[100, 100])
def test_training_run_evaluates_its_final_checkpoint_exactly_once(
    baseline: int, n: int | None, gaps: list[int]
) -> None:
    """Evaluating during training, then once more if owed, covers the final step exactly once."""
    saved = [baseline, *(baseline + total for total in accumulate(gaps))]
    final = saved[-1]
    evaluated, state = run(baseline, n, saved)
    if final_evaluation_owed(state, final_step=final):
        evaluated.append(final)
        state = record_final(state, final_step=final)
    assert evaluated.count(final) == 1
    assert not final_evaluation_owed(state, final_step=final)
    if not n:
        assert evaluated == [final]


@given(last=st.none() | st.integers(0, 1000), final=st.integers(0, 1000))
def test_record_final_settles_the_debt(last: int | None, final: int) -> None:
    """After `record_final` no final evaluation is owed, and recording again changes nothing."""
    state = record_final(
        TrainEvalState(baseline_step=0, last_evaluated_step=last), final_step=final
    )
    assert state.last_evaluated_step == final
    assert not final_evaluation_owed(state, final_step=final)
    assert record_final(state, final_step=final) == state
