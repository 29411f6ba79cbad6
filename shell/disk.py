"""What exists on disk: the latest checkpoint, completion records, evaluator progress."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from core.checkpoints import Checkpoint
from core.completion import DONE_DIR, EndReason, TaskDone, done_file_name, is_current
from core.errors import ConfigError
from shell._tf import tf

_VANISHED_MARKERS = (
    "not a valid checkpoint",
    "could not find",
    "no such file",
    "not found",
    "failed to find any matching files",
    "unsuccessful tensorslicereader",
)


def latest_checkpoint(model_dir: str) -> Checkpoint | None:
    """The newest complete checkpoint in ``model_dir``, or None.

    Args:
        model_dir: The estimator's model directory.

    Returns:
        Its path and global step, read from the ``checkpoint`` state file.
    """
    path = tf.train.latest_checkpoint(model_dir)
    if not path:
        return None
    found = Checkpoint.from_path(path)
    if found is not None:
        return found
    try:
        step = int(tf.train.load_variable(path, "global_step"))
    except (tf.errors.OpError, ValueError):
        return None
    return Checkpoint(path=path, step=step)


def is_vanished_error(err: BaseException) -> bool:
    """Whether ``err`` says a checkpoint disappeared between listing and restoring.

    In TF 2.15 this is a ``tf.errors.NotFoundError`` or a ``ValueError`` such as
    "... is not a valid checkpoint"; any other error is a real failure.
    """
    if isinstance(err, tf.errors.NotFoundError):
        return True
    if isinstance(err, (ValueError, tf.errors.DataLossError, tf.errors.InvalidArgumentError)):
        text = str(err).lower()
        return "checkpoint" in text and any(m in text for m in _VANISHED_MARKERS)
    return False


#: The folder of the job's records under the model directory.
STATE_DIR = DONE_DIR


def _state_dir(model_dir: str) -> str:
    return os.path.join(model_dir, DONE_DIR)


def atomic_write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_done(model_dir: str, task: str, *, final_step: int, reason: EndReason) -> str:
    """Record atomically that training task ``task`` has finished; returns the file path."""
    record = TaskDone(task=task, final_step=final_step, reason=reason)
    path = os.path.join(_state_dir(model_dir), done_file_name(task))
    atomic_write(path, record.to_json())
    return path


def clear_done(model_dir: str, task: str) -> None:
    """Remove ``task``'s completion record (a task starting training again)."""
    path = os.path.join(_state_dir(model_dir), done_file_name(task))
    if os.path.exists(path):
        os.unlink(path)


def read_done(
    model_dir: str, *, since: float | None = None, train_steps: int | None = None
) -> list[TaskDone]:
    """The completion records in ``model_dir``, ignoring any written before ``since``.

    Args:
        model_dir: The model directory.
        since: A ``time.time()`` value; older records belong to an earlier run.
        train_steps: With ``since``: an older record that reached ``train_steps`` is
            kept (the job is finished; see `core.completion.is_current`).

    Returns:
        The valid records (a half-written or foreign file is skipped).
    """
    return [
        record
        for record, written_at in read_done_with_times(model_dir)
        if since is None
        or is_current(record, written_at=written_at, since=since, train_steps=train_steps)
    ]


def read_done_with_times(model_dir: str) -> list[tuple[TaskDone, float]]:
    """Every valid completion record in ``model_dir`` with its file's modification time."""
    directory = _state_dir(model_dir)
    if not os.path.isdir(directory):
        return []
    records = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".done.json"):
            continue
        path = os.path.join(directory, name)
        try:
            written_at = os.path.getmtime(path)
            with open(path) as handle:
                record = TaskDone.from_json(handle.read())
        except (OSError, ConfigError):
            continue
        records.append((record, written_at))
    return records


def progress_path(model_dir: str, name: str | None) -> str:
    """Where a continuous evaluator named ``name`` keeps its progress."""
    return os.path.join(_state_dir(model_dir), f"evaluator-{name or 'eval'}.json")


def load_progress(model_dir: str, name: str | None) -> Checkpoint | None:
    """The checkpoint a continuous evaluator evaluated last (survives restarts)."""
    try:
        with open(progress_path(model_dir, name)) as handle:
            data: Any = json.load(handle)
        return Checkpoint(path=str(data["path"]), step=int(data["step"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_progress(model_dir: str, name: str | None, checkpoint: Checkpoint) -> None:
    """Persist the checkpoint a continuous evaluator evaluated last."""
    text = json.dumps({"path": checkpoint.path, "step": checkpoint.step})
    atomic_write(progress_path(model_dir, name), text)
