"""Properties and a stateful model of the continuous-evaluation decision."""

from __future__ import annotations

import itertools

import attrs
import hypothesis.strategies as st
from hypothesis import example, given, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from core.checkpoints import Checkpoint
from core.continuous_eval import (
    EvalKind,
    EvalPolicy,
    EvalReason,
    EvalState,
    decide,
    record_predicate,
    record_result,
    record_vanished,
)


def ckpt(step: int) -> Checkpoint:
    return Checkpoint(path=f"/m/model.ckpt-{step}", step=step)


def test_waits_for_a_first_checkpoint_and_logs_it_once() -> None:
    """With no checkpoint the loop polls, and says so only on the first poll."""
    policy = EvalPolicy(throttle_secs=10)
    state = EvalState(started_at=0.0)
    first, state = decide(state, policy, now=0.0, latest=None)
    second, state = decide(state, policy, now=0.05, latest=None)
    assert (first.kind, first.reason, first.log) == (EvalKind.WAIT, EvalReason.NO_CHECKPOINT, True)
    assert (second.kind, second.log) == (EvalKind.WAIT, False)
    assert second.sleep_secs == policy.poll_secs


def test_new_checkpoint_is_evaluated_promptly_once_throttle_elapsed() -> None:
    """After the throttle, a checkpoint appearing later is evaluated at the next poll."""
    policy = EvalPolicy(throttle_secs=5)
    state = EvalState(started_at=0.0)
    d, state = decide(state, policy, now=0.0, latest=ckpt(1))
    assert d.kind is EvalKind.EVALUATE
    state = record_result(state, global_step=1)
    d, state = decide(state, policy, now=100.0, latest=ckpt(1))
    assert (d.kind, d.reason, d.sleep_secs) == (EvalKind.WAIT, EvalReason.NO_NEW_CHECKPOINT, 0.05)
    d, state = decide(state, policy, now=100.05, latest=ckpt(2))
    assert d.kind is EvalKind.EVALUATE and d.checkpoint == ckpt(2)


def test_throttle_is_a_gap_between_starts() -> None:
    """A new checkpoint within the throttle waits exactly the rest of the throttle."""
    policy = EvalPolicy(throttle_secs=10, max_sleep_secs=100)
    _, state = decide(EvalState(started_at=0.0), policy, now=0.0, latest=ckpt(1))
    state = record_result(state, global_step=1)
    d, _ = decide(state, policy, now=4.0, latest=ckpt(2))
    assert (d.kind, d.reason, d.sleep_secs) == (EvalKind.WAIT, EvalReason.THROTTLED, 6.0)


@given(throttle=st.floats(0, 10_000), cap=st.floats(0.01, 5), now=st.floats(0, 10_000))
def test_no_wait_is_longer_than_max_sleep(throttle: float, cap: float, now: float) -> None:
    """A long throttle is waited out in slices of max_sleep_secs, so a finish is seen promptly."""
    policy = EvalPolicy(throttle_secs=throttle, max_sleep_secs=cap)
    _, state = decide(EvalState(started_at=0.0), policy, now=0.0, latest=ckpt(1))
    d, _ = decide(state, policy, now=now, latest=ckpt(2))
    if d.kind is EvalKind.WAIT:
        assert d.sleep_secs <= max(cap, policy.poll_secs)


def test_start_delay_waits_the_remaining_time() -> None:
    """The first evaluation waits until eval_delay_secs after the loop started."""
    policy = EvalPolicy(eval_delay_secs=30, max_sleep_secs=100)
    d, _ = decide(EvalState(started_at=100.0), policy, now=110.0, latest=ckpt(1))
    assert (d.kind, d.reason, d.sleep_secs) == (EvalKind.WAIT, EvalReason.START_DELAY, 20.0)


def test_predicate_false_stops() -> None:
    """A continue-predicate answering False stops the loop."""
    state = record_predicate(EvalState(started_at=0.0), keep_going=False)
    d, _ = decide(state, EvalPolicy(), now=0.0, latest=ckpt(3))
    assert (d.kind, d.reason) == (EvalKind.STOP, EvalReason.PREDICATE)


@given(train_steps=st.integers(0, 10_000), step=st.integers(0, 20_000))
def test_stops_once_result_reaches_train_steps(train_steps: int, step: int) -> None:
    """The loop stops exactly when an evaluated global step reaches train_steps."""
    policy = EvalPolicy(train_steps=train_steps, throttle_secs=0)
    state = record_result(EvalState(started_at=0.0), global_step=step)
    d, _ = decide(state, policy, now=1.0, latest=ckpt(step + 1))
    assert (d.kind is EvalKind.STOP) == (step >= train_steps)


def test_finished_training_evaluates_final_checkpoint_despite_throttle_then_stops() -> None:
    """Once training is finished the final checkpoint is evaluated at once, then the loop ends."""
    policy = EvalPolicy(throttle_secs=600)
    _, state = decide(EvalState(started_at=0.0), policy, now=0.0, latest=ckpt(1))
    state = record_result(state, global_step=1)
    d, state = decide(state, policy, now=1.0, latest=ckpt(9), finished_at_step=9)
    assert d.kind is EvalKind.EVALUATE and d.checkpoint == ckpt(9)
    state = record_result(state, global_step=9)
    d, _ = decide(state, policy, now=2.0, latest=ckpt(9), finished_at_step=9)
    assert (d.kind, d.reason) == (EvalKind.STOP, EvalReason.TRAINING_FINISHED)


def test_finished_training_without_new_checkpoint_stops() -> None:
    """Finished training whose last checkpoint was evaluated (or vanished) never hangs."""
    _, state = decide(EvalState(started_at=0.0), EvalPolicy(), now=0.0, latest=ckpt(5))
    d, _ = decide(state, EvalPolicy(), now=1.0, latest=ckpt(5), finished_at_step=7)
    assert d.kind is EvalKind.STOP
    d, _ = decide(EvalState(started_at=0.0), EvalPolicy(), now=1.0, latest=None, finished_at_step=0)
    assert d.kind is EvalKind.STOP


def test_vanished_checkpoint_does_not_charge_the_throttle() -> None:
    """A checkpoint that vanished before restore is skipped and a newer one goes promptly."""
    policy = EvalPolicy(throttle_secs=60)
    before = EvalState(started_at=0.0)
    d, after = decide(before, policy, now=0.0, latest=ckpt(1))
    state = record_vanished(after, before=before)
    d, state = decide(state, policy, now=0.1, latest=ckpt(1))
    assert d.kind is EvalKind.WAIT and d.reason is EvalReason.NO_NEW_CHECKPOINT
    d, _ = decide(state, policy, now=0.2, latest=ckpt(2))
    assert d.kind is EvalKind.EVALUATE and d.checkpoint == ckpt(2)


def test_not_only_once_reevaluates_after_throttle() -> None:
    """With evaluate_checkpoint_only_once=False the same checkpoint is re-evaluated per throttle."""
    policy = EvalPolicy(throttle_secs=10, evaluate_checkpoint_only_once=False, max_sleep_secs=60)
    _, state = decide(EvalState(started_at=0.0), policy, now=0.0, latest=ckpt(1))
    d, state = decide(state, policy, now=5.0, latest=ckpt(1))
    assert (d.kind, d.sleep_secs) == (EvalKind.WAIT, 5.0)
    d, _ = decide(state, policy, now=10.0, latest=ckpt(1))
    assert d.kind is EvalKind.EVALUATE


@given(
    throttle=st.floats(0, 1000),
    delay=st.floats(0, 1000),
    now=st.floats(0, 10_000),
    last_start=st.none() | st.floats(0, 10_000),
    latest_step=st.none() | st.integers(0, 100),
    last_step=st.none() | st.integers(0, 100),
    only_once=st.booleans(),
)
def test_wait_is_positive_and_evaluate_only_latest(
    throttle: float,
    delay: float,
    now: float,
    last_start: float | None,
    latest_step: int | None,
    last_step: int | None,
    only_once: bool,
) -> None:
    """Every WAIT sleeps a positive finite time and every EVALUATE names the latest checkpoint."""
    policy = EvalPolicy(
        throttle_secs=throttle, eval_delay_secs=delay, evaluate_checkpoint_only_once=only_once
    )
    state = EvalState(
        started_at=0.0,
        last_evaluated=None if last_step is None else ckpt(last_step),
        last_eval_start=last_start if last_step is not None else None,
    )
    latest = None if latest_step is None else ckpt(latest_step)
    d, new = decide(state, policy, now=now, latest=latest)
    if d.kind is EvalKind.WAIT:
        assert 0 < d.sleep_secs < float("inf")
    if d.kind is EvalKind.EVALUATE:
        assert d.checkpoint == latest
        assert new.last_eval_start == now


@attrs.frozen
class _Eval:
    checkpoint: Checkpoint
    start: float
    final: bool


class ContinuousEvalMachine(RuleBasedStateMachine):
    """A float clock, a trainer that saves and deletes checkpoints, and the loop deciding."""

    @initialize(
        throttle=st.sampled_from([0.0, 0.5, 3.0, 60.0]),
        delay=st.sampled_from([0.0, 2.0]),
        only_once=st.booleans(),
        train_steps=st.none() | st.integers(1, 30),
    )
    def setup(
        self, throttle: float, delay: float, only_once: bool, train_steps: int | None
    ) -> None:
        self.policy = EvalPolicy(
            throttle_secs=throttle,
            eval_delay_secs=delay,
            evaluate_checkpoint_only_once=only_once,
            train_steps=train_steps,
        )
        self.now = 0.0
        self.state = EvalState(started_at=0.0)
        self.on_disk: list[Checkpoint] = []
        self.next_step = 1
        self.saved_at: dict[int, float] = {}
        self.pending: Checkpoint | None = None
        self.evals: list[_Eval] = []
        self.stopped: EvalReason | None = None
        self.finished_at: int | None = None
        self.last_wait_until: float | None = None

    def latest(self) -> Checkpoint | None:
        return self.on_disk[-1] if self.on_disk else None

    @rule(steps=st.integers(1, 5))
    def save_checkpoint(self, steps: int) -> None:
        """The trainer saves a checkpoint some steps later."""
        if self.finished_at is not None:
            return
        self.next_step += steps - 1
        c = ckpt(self.next_step)
        self.next_step += 1
        self.on_disk.append(c)
        self.saved_at[c.step] = self.now

    @rule(dt=st.floats(0.01, 20.0))
    def advance(self, dt: float) -> None:
        """Time passes."""
        self.now += dt

    @precondition(lambda self: len(self.on_disk) > 1)
    @rule(data=st.data())
    def delete_old_checkpoint(self, data: st.DataObject) -> None:
        """keep_checkpoint_max deletes an older checkpoint."""
        i = data.draw(st.integers(0, len(self.on_disk) - 2))
        del self.on_disk[i]

    @precondition(lambda self: self.on_disk and self.finished_at is None)
    @rule()
    def finish_training(self) -> None:
        """Training ends and its completion record appears."""
        latest = self.latest()
        assert latest is not None
        self.finished_at = latest.step

    @precondition(lambda self: self.pending is None and self.stopped is None)
    @rule()
    def decide_step(self) -> None:
        """The loop asks the core what to do."""
        d, self.state = decide(
            self.state,
            self.policy,
            now=self.now,
            latest=self.latest(),
            finished_at_step=self.finished_at,
        )
        if d.kind is EvalKind.EVALUATE:
            assert d.checkpoint is not None
            assert d.checkpoint == self.latest(), "only the latest existing checkpoint"
            self.evals.append(_Eval(d.checkpoint, self.now, final=self.finished_at is not None))
            self.pending = d.checkpoint
        elif d.kind is EvalKind.WAIT:
            assert d.sleep_secs > 0
            self.check_wait_not_past_due(d.sleep_secs)
            self.now += d.sleep_secs
        else:
            self.stopped = d.reason

    def check_wait_not_past_due(self, sleep_secs: float) -> None:
        """A WAIT never sleeps past the moment the latest new checkpoint becomes due."""
        latest = self.latest()
        last = self.state.last_evaluated
        if latest is None or (last is not None and latest.step <= last.step):
            assert (
                sleep_secs
                <= max(
                    self.policy.poll_secs,
                    self.policy.eval_delay_secs,
                    self.policy.throttle_secs,
                )
                + 1e-9
            )
            return
        due = self.policy.eval_delay_secs
        if self.state.last_eval_start is not None:
            due = max(due, self.state.last_eval_start + self.policy.throttle_secs)
        assert self.now + sleep_secs <= max(due, self.now + self.policy.poll_secs) + 1e-6

    @precondition(lambda self: self.pending is not None)
    @rule(keep_going=st.booleans())
    def evaluation_finished(self, keep_going: bool) -> None:
        """The evaluation finishes with the checkpoint's global step."""
        assert self.pending is not None
        self.now += 0.3
        self.state = record_result(self.state, global_step=self.pending.step, keep_going=keep_going)
        self.pending = None

    @invariant()
    def never_same_checkpoint_twice(self) -> None:
        """With only-once, no checkpoint path is evaluated twice."""
        if hasattr(self, "policy") and self.policy.evaluate_checkpoint_only_once:
            paths = [e.checkpoint.path for e in self.evals]
            assert len(paths) == len(set(paths))

    @invariant()
    def starts_respect_throttle(self) -> None:
        """No two evaluation starts are closer than the throttle (the final one excepted)."""
        if not hasattr(self, "policy"):
            return
        starts = [e.start for e in self.evals if not e.final]
        for a, b in itertools.pairwise(starts):
            assert b - a >= self.policy.throttle_secs - 1e-9

    @invariant()
    def stops_at_train_steps(self) -> None:
        """Once an evaluated step reached train_steps the next decision is STOP."""
        if not hasattr(self, "policy") or self.policy.train_steps is None:
            return
        done = self.state.last_result_step
        if done is not None and done >= self.policy.train_steps and self.pending is None:
            d, _ = decide(self.state, self.policy, now=self.now, latest=self.latest())
            assert d.kind is EvalKind.STOP

    @invariant()
    def never_evaluates_past_the_start_delay(self) -> None:
        """No evaluation starts before eval_delay_secs (unless training already finished)."""
        if hasattr(self, "policy"):
            for e in self.evals:
                assert e.final or e.start >= self.policy.eval_delay_secs - 1e-9


TestContinuousEvalMachine = ContinuousEvalMachine.TestCase
TestContinuousEvalMachine.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)


@given(st.integers(1, 50))
@example(1)
def test_log_flag_once_per_reason_change(polls: int) -> None:
    """Repeated identical waits report log=True only for the first one."""
    state = EvalState(started_at=0.0)
    logs = []
    for i in range(polls):
        d, state = decide(state, EvalPolicy(), now=float(i), latest=None)
        logs.append(d.log)
    assert logs == [True] + [False] * (polls - 1)
