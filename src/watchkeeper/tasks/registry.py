"""The model tasks by the config's names."""

from __future__ import annotations

from collections.abc import Mapping

from watchkeeper.config import ModelConfig
from watchkeeper.errors import UnknownMethodError
from watchkeeper.tasks import binary, multiclass, ranking, regression
from watchkeeper.tasks.base import Task

TASKS: Mapping[str, Task] = {
    t.key: t for t in (binary.TASK, multiclass.TASK, regression.TASK, ranking.TASK)
}


def task_of(model: ModelConfig) -> Task:
    try:
        return TASKS[model.task]
    except KeyError:
        raise UnknownMethodError("model task", model.task, TASKS) from None


__all__ = ["TASKS", "task_of"]
