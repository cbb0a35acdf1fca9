"""Model tasks: binary, multiclass, regression and ranking, each one module."""

from watchkeeper.tasks.base import (
    Confusion,
    Estimated,
    EstimationInputs,
    Estimator,
    Extra,
    Gap,
    Task,
)
from watchkeeper.tasks.registry import TASKS, task_of

__all__ = [
    "TASKS",
    "Confusion",
    "Estimated",
    "EstimationInputs",
    "Estimator",
    "Extra",
    "Gap",
    "Task",
    "task_of",
]
