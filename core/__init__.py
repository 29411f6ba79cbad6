"""tfexperiment's pure core: immutable records and the decisions made from them."""

from core.checkpoints import Checkpoint, Novelty, novelty, step_from_path
from core.errors import (
    ConfigError,
    ConfigTypeError,
    FieldError,
    ScheduleError,
    TFConfigError,
    TFExperimentError,
)
from core.schedule import SCHEDULE_NAMES, Schedule, default_schedule, parse_schedule
from core.tf_config import TaskType, TFConfig

__all__ = [
    "SCHEDULE_NAMES",
    "Checkpoint",
    "ConfigError",
    "ConfigTypeError",
    "FieldError",
    "Novelty",
    "Schedule",
    "ScheduleError",
    "TFConfig",
    "TFConfigError",
    "TFExperimentError",
    "TaskType",
    "default_schedule",
    "novelty",
    "parse_schedule",
    "step_from_path",
]
