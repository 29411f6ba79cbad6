"""Checkpoint records, step parsing and checkpoint novelty."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.checkpoints import Checkpoint, Novelty, novelty, step_from_path
from core.errors import ConfigError, ConfigTypeError

steps = st.integers(min_value=0, max_value=10**12)
prefixes = st.text(max_size=40)
model_dirs = st.sampled_from(["/m", "/m/run-2", "gs://bucket/model", "C:\\models\\m"])


@st.composite
def checkpoints(draw: st.DrawFn, max_step: int = 10**9) -> Checkpoint:
    """A checkpoint as TF names it: ``<dir>/model.ckpt-<step>``."""
    step = draw(st.integers(min_value=0, max_value=max_step))
    return Checkpoint(path=f"{draw(model_dirs)}/model.ckpt-{step}", step=step)


# Few distinct paths and steps, so equal paths and equal steps actually occur.
small_checkpoints = checkpoints(max_step=5)
# Path and step drawn independently (a record may even contradict its path).
any_checkpoints = st.builds(Checkpoint, path=prefixes, step=steps)


# --- step_from_path / Checkpoint.from_path --------------------------------------------


@given(prefix=prefixes, step=steps)
@example(prefix="/m/model.ckpt", step=0)
@example(prefix="model.ckpt-12", step=200)
@example(prefix="", step=7)
def test_step_from_path_reads_the_trailing_step(prefix: str, step: int) -> None:
    """The step after the last dash at the end of the prefix is the global step."""
    assert step_from_path(f"{prefix}-{step}") == step


@pytest.mark.parametrize(
    ("path", "step"),
    [("/m/model.ckpt-007", 7), ("model.ckpt-0", 0), ("/runs/a-1/model.ckpt-200", 200)],
)
def test_step_from_path_examples(path: str, step: int) -> None:
    """Leading zeros and dashes elsewhere in the path do not confuse the parser."""
    assert step_from_path(path) == step


@given(prefix=prefixes, tail=st.sampled_from(["", "-", "-x", ".index", ".meta", "_temp", "/"]))
@example(prefix="/m/model.ckpt-12", tail=".index")
@example(prefix="/m/model.ckpt", tail="")
def test_step_from_path_is_none_without_a_step_suffix(prefix: str, tail: str) -> None:
    """A path that does not end in ``-<digits>`` has no step."""
    path = prefix + tail
    if path and path[-1].isdigit():
        path += "x"
    assert step_from_path(path) is None


@given(prefix=prefixes, step=steps)
def test_from_path_builds_the_record(prefix: str, step: int) -> None:
    """Checkpoint.from_path keeps the path and parses its step."""
    path = f"{prefix}-{step}"
    assert Checkpoint.from_path(path) == Checkpoint(path=path, step=step)


@pytest.mark.parametrize("path", ["/m/model.ckpt", "", "/m/model.ckpt-5.index", "ckpt-"])
def test_from_path_is_none_without_a_step(path: str) -> None:
    """A path without a step suffix gives no record rather than an error."""
    assert Checkpoint.from_path(path) is None


def test_checkpoint_rejects_a_negative_step() -> None:
    """A negative step is a ConfigError naming the `step` field."""
    with pytest.raises(ConfigError) as info:
        Checkpoint(path="/m/model.ckpt--1", step=-1)
    assert (info.value.field, info.value.value) == ("step", -1)


@pytest.mark.parametrize("step", [True, 1.0, "1", None])
def test_checkpoint_rejects_a_non_int_step(step: object) -> None:
    """A step that is not an int is a ConfigTypeError naming the `step` field."""
    with pytest.raises(ConfigTypeError) as info:
        Checkpoint(path="/m/model.ckpt-1", step=step)  # type: ignore[arg-type]
    assert info.value.field == "step"


def test_checkpoint_is_frozen() -> None:
    """A checkpoint record cannot be changed after it is built."""
    ckpt = Checkpoint(path="/m/model.ckpt-1", step=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ckpt.step = 2  # type: ignore[misc]


# --- novelty --------------------------------------------------------------------------


@given(last=st.none() | any_checkpoints)
def test_no_latest_is_missing(last: Checkpoint | None) -> None:
    """Without any checkpoint on disk the answer is MISSING, whatever was evaluated."""
    assert novelty(None, last) is Novelty.MISSING


@given(latest=any_checkpoints)
def test_anything_is_new_before_the_first_evaluation(latest: Checkpoint) -> None:
    """Every existing checkpoint is NEW when nothing was evaluated yet."""
    assert novelty(latest, None) is Novelty.NEW


@given(latest=small_checkpoints | any_checkpoints, last=small_checkpoints | any_checkpoints)
def test_same_iff_same_path(latest: Checkpoint, last: Checkpoint) -> None:
    """The latest checkpoint is SAME exactly when its path is the last evaluated path."""
    assert (novelty(latest, last) is Novelty.SAME) == (latest.path == last.path)


@given(latest=small_checkpoints | any_checkpoints, last=small_checkpoints | any_checkpoints)
@example(
    latest=Checkpoint(path="/m/model.ckpt-5", step=5),
    last=Checkpoint(path="/m/run-2/model.ckpt-5", step=5),
)
def test_classification_by_path_then_step(latest: Checkpoint, last: Checkpoint) -> None:
    """Another path is NEW when its step is past the evaluated one, else STALE."""
    result = novelty(latest, last)
    if latest.path == last.path:
        assert result is Novelty.SAME
    elif latest.step > last.step:
        assert result is Novelty.NEW
    else:
        assert result is Novelty.STALE


@given(last=small_checkpoints, gained=st.integers(min_value=1, max_value=10**6))
@example(last=Checkpoint(path="/m/model.ckpt-0", step=0), gained=1)
def test_new_when_the_step_increases(last: Checkpoint, gained: int) -> None:
    """A checkpoint saved at a later step is NEW."""
    step = last.step + gained
    assert novelty(Checkpoint(path=f"/m/model.ckpt-{step}", step=step), last) is Novelty.NEW


@given(saved=st.lists(steps, min_size=2, max_size=8, unique=True))
def test_a_vanished_last_evaluated_checkpoint_never_blocks_a_newer_one(saved: list[int]) -> None:
    """Once the evaluated checkpoint is deleted (keep_checkpoint_max), the newer latest is NEW."""
    saved.sort()
    disk = [Checkpoint(path=f"/m/model.ckpt-{s}", step=s) for s in saved]
    last_evaluated = disk[0]
    remaining = disk[1:]  # the evaluated one vanished from disk
    assert novelty(remaining[-1], last_evaluated) is Novelty.NEW


@given(last=small_checkpoints | any_checkpoints, latest=small_checkpoints | any_checkpoints)
def test_never_new_unless_past_the_evaluated_step(last: Checkpoint, latest: Checkpoint) -> None:
    """A checkpoint at or before the evaluated step (e.g. a restarted trainer) is never NEW."""
    if latest.step <= last.step:
        assert novelty(latest, last) is not Novelty.NEW
