"""`JobExit`: a task of a job ends now with a given exit code (no TensorFlow import)."""

from __future__ import annotations

from core.errors import TFExperimentError

__all__ = ["JobExit"]


class JobExit(TFExperimentError):
    """This task ends now: the CLI prints ``line`` and exits with ``exit_code``.

    Attributes:
        line: One line saying why (e.g. ``"ps-0: chief-0 failed: ..."``).
        exit_code: 1 (the job failed), 130 (SIGINT) or 143 (SIGTERM).
        signal_name: The signal that ended it, if any.
    """

    def __init__(self, line: str, exit_code: int, signal_name: str | None = None) -> None:
        super().__init__(line)
        self.line = line
        self.exit_code = exit_code
        self.signal_name = signal_name
