"""train_and_evaluate: which saved checkpoints are evaluated, and whether a final one is owed."""

from __future__ import annotations

from itertools import accumulate, pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, ConfigTypeError
from core.settings import ExperimentSettings
from core.train_eval import (
    EvalMode,
    EvalModeReason,
    TrainEvalKind,
    TrainEvalPolicy,
    TrainEvalReason,
    TrainEvalState,
    after_save,
    evaluation_mode,
    final_evaluation_owed,
    record_final,
    saves_per_evaluation,
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


# ---------------------------------------------------------------- eval_in_background
keeps = st.none() | st.integers(min_value=0, max_value=40)
save_cadences = st.none() | st.integers(min_value=1, max_value=30)
eval_cadences = st.none() | st.integers(min_value=0, max_value=100)
pendings = st.integers(min_value=1, max_value=4)


def _saves(baseline: int, save_steps: int | None, gaps: list[int], train_steps: int) -> list[int]:
    """The steps training saves at: the start, every ``save_steps`` (or the ``gaps`` when
    saving by time), and the final step."""
    steps = [baseline]
    if save_steps is not None:
        steps += list(range(baseline + save_steps, train_steps, save_steps))
    else:
        steps += [s for s in (baseline + t for t in accumulate(gaps)) if s < train_steps]
    if steps[-1] != train_steps:
        steps.append(train_steps)
    return steps


def _lost_checkpoints(
    saves: list[int], every: int, keep: int | None, max_pending: int
) -> list[int]:
    """Simulate background evaluation at its slowest: each evaluation ends only when the
    trainer must wait for it (a full queue at a due save) or at the drain after training,
    and is acted on (exported) right then. Returns the evaluated checkpoints that the
    saver's retention (the newest ``keep``; None or 0 keeps all) had deleted by then."""
    policy = TrainEvalPolicy(eval_every_n_steps=every)
    state = TrainEvalState(baseline_step=saves[0])
    on_disk: list[int] = []
    pending: list[int] = []
    lost: list[int] = []

    def act_on(step: int) -> None:
        if step not in on_disk:
            lost.append(step)

    for step in saves:
        on_disk.append(step)
        if keep:
            on_disk = on_disk[-keep:]
        decision, state = after_save(state, policy, saved_step=step)
        if decision.kind is TrainEvalKind.EVALUATE:
            if len(pending) == max_pending:
                act_on(pending.pop(0))
            pending.append(step)
    for step in pending:
        act_on(step)
    return lost


def test_background_is_opt_in() -> None:
    """The setting defaults to off, and off is always inline (reason OFF)."""
    assert ExperimentSettings().eval_in_background is False
    decision = evaluation_mode(
        requested=False, eval_every_n_steps=1, keep_checkpoint_max=None, save_checkpoints_steps=1
    )
    assert (decision.mode, decision.reason) == (EvalMode.INLINE, EvalModeReason.OFF)


@pytest.mark.parametrize("value", [1, "yes", None])
def test_a_non_bool_eval_in_background_names_the_field(value: object) -> None:
    """eval_in_background is true or false only: a ConfigTypeError naming the field."""
    with pytest.raises(ConfigTypeError) as info:
        ExperimentSettings(eval_in_background=value)  # type: ignore[arg-type]
    assert info.value.field == "eval_in_background"


@given(
    requested=st.booleans(),
    every=eval_cadences,
    keep=keeps,
    save_steps=save_cadences,
    max_pending=pendings,
    known=st.booleans(),
)
def test_background_only_when_requested_and_evaluating_during_training(
    requested: bool,
    every: int | None,
    keep: int | None,
    save_steps: int | None,
    max_pending: int,
    known: bool,
) -> None:
    """BACKGROUND needs the setting on, a cadence, and a known retention; else INLINE."""
    decision = evaluation_mode(
        requested=requested,
        eval_every_n_steps=every,
        keep_checkpoint_max=keep,
        save_checkpoints_steps=save_steps,
        max_pending=max_pending,
        retention_known=known,
    )
    if decision.mode is EvalMode.BACKGROUND:
        assert requested and every and known
        assert decision.reason in (EvalModeReason.KEEPS_ALL, EvalModeReason.KEEPS_ENOUGH)
    elif not requested:
        assert decision.reason is EvalModeReason.OFF
    elif not every:
        assert decision.reason is EvalModeReason.ONLY_AT_END


@settings(max_examples=300)
@given(
    every=st.integers(min_value=1, max_value=60),
    keep=keeps,
    save_steps=save_cadences,
    max_pending=pendings,
    baseline=st.integers(min_value=0, max_value=1000),
    length=st.integers(min_value=1, max_value=400),
    gaps=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
)
@example(every=1, keep=3, save_steps=10, max_pending=1, baseline=0, length=100, gaps=[1])
@example(every=300, keep=5, save_steps=100, max_pending=1, baseline=0, length=2000, gaps=[1])
@example(every=2, keep=5, save_steps=None, max_pending=1, baseline=0, length=50, gaps=[1])
def test_background_never_evaluates_a_deleted_checkpoint(
    every: int,
    keep: int | None,
    save_steps: int | None,
    max_pending: int,
    baseline: int,
    length: int,
    gaps: list[int],
) -> None:
    """Whenever BACKGROUND is chosen, even the slowest evaluations act on checkpoints the
    saver still keeps; and a keep_checkpoint_max <= max_pending + 1 is always refused."""
    decision = evaluation_mode(
        requested=True,
        eval_every_n_steps=every,
        keep_checkpoint_max=keep,
        save_checkpoints_steps=save_steps,
        max_pending=max_pending,
    )
    saves = _saves(baseline, save_steps, gaps, baseline + length)
    if decision.mode is EvalMode.BACKGROUND:
        assert _lost_checkpoints(saves, every, keep, max_pending) == []
    if keep and keep <= max_pending + 1:
        assert decision.mode is EvalMode.INLINE
        assert decision.reason in (EvalModeReason.KEEPS_TOO_FEW, EvalModeReason.UNKNOWN_CADENCE)
    if decision.reason is EvalModeReason.KEEPS_TOO_FEW:
        assert f"keep_checkpoint_max >= {decision.needed_keep}" in decision.line()


@given(
    every=st.integers(min_value=1, max_value=100),
    keep=st.integers(min_value=1, max_value=40),
    save_steps=save_cadences,
    max_pending=pendings,
)
def test_keeping_more_checkpoints_never_turns_background_off(
    every: int, keep: int, save_steps: int | None, max_pending: int
) -> None:
    """If background is allowed with keep_checkpoint_max=k, it is with k+1 and with 0 (all)."""

    def mode(k: int) -> EvalMode:
        return evaluation_mode(
            requested=True,
            eval_every_n_steps=every,
            keep_checkpoint_max=k,
            save_checkpoints_steps=save_steps,
            max_pending=max_pending,
        ).mode

    if mode(keep) is EvalMode.BACKGROUND:
        assert mode(keep + 1) is EvalMode.BACKGROUND
    assert mode(0) is EvalMode.BACKGROUND


def test_saving_by_time_with_a_sparse_cadence_stays_inline() -> None:
    """Without save_checkpoints_steps and eval_every_n_steps > 1 the saves between two
    evaluations are unbounded: inline, unless every checkpoint is kept."""
    common = {"requested": True, "eval_every_n_steps": 100, "save_checkpoints_steps": None}
    decision = evaluation_mode(keep_checkpoint_max=50, **common)  # type: ignore[arg-type]
    assert decision.reason is EvalModeReason.UNKNOWN_CADENCE
    assert evaluation_mode(keep_checkpoint_max=0, **common).mode is EvalMode.BACKGROUND  # type: ignore[arg-type]
    assert saves_per_evaluation(eval_every_n_steps=1, save_checkpoints_steps=None) == 1
    assert saves_per_evaluation(eval_every_n_steps=250, save_checkpoints_steps=100) == 3


def test_max_pending_must_be_positive() -> None:
    """A max_pending below 1 is a ConfigError naming max_pending."""
    with pytest.raises(ConfigError) as info:
        evaluation_mode(
            requested=True,
            eval_every_n_steps=1,
            keep_checkpoint_max=5,
            save_checkpoints_steps=1,
            max_pending=0,
        )
    assert info.value.field == "max_pending"


def test_the_defaults_allow_background() -> None:
    """RunConfig's keep_checkpoint_max=5 with eval_every_n_steps=1 allows background."""
    decision = evaluation_mode(
        requested=True, eval_every_n_steps=1, keep_checkpoint_max=5, save_checkpoints_steps=None
    )
    assert (decision.mode, decision.needed_keep) == (EvalMode.BACKGROUND, 3)
    assert "background" in decision.line()
