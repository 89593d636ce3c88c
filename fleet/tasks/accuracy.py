"""How far projections were off: over the tasks that ended with an error kept (actual /
projected median, :meth:`~fleet.ledger.stores.work.tasks.TasksStore.errors_since`), the
median error, the lowest and highest, and the task furthest off either way (×0.25 is as
far off as ×4). Pure: what the pacing report says of the week, and what a command may
show."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from fleet.ledger.records.tasks import TaskRecord

ERROR_SPAN: Final = timedelta(days=7)
"""The span the report's projection line looks back over: a week."""


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Projections' errors over ``ended`` tasks: their ``median``, ``low`` and ``high``,
    and the task furthest off (``worst``) with its error."""

    ended: int
    median: float
    low: float
    high: float
    worst: TaskRecord
    worst_error: float
    units: tuple[str, ...]
    """The units the errors were reckoned in (``tokens``, ``usd``), each once."""


def _distance(error: float) -> float:
    """How far ``error`` is from a projection met exactly, the same over as under."""
    if error <= 0:
        return math.inf  # nothing spent where something was projected: as far as it gets
    return abs(math.log(error))


def accuracy(tasks: Sequence[TaskRecord]) -> Accuracy | None:
    """The errors of ``tasks`` summed up; ``None`` when none of them has one."""
    kept = [(task, task.error) for task in tasks if task.error is not None]
    if not kept:
        return None
    errors = [error for _, error in kept]
    worst, worst_error = max(kept, key=lambda pair: (_distance(pair[1]), pair[0].id))
    units = tuple(dict.fromkeys(task.error_unit for task, _ in kept if task.error_unit))
    return Accuracy(
        ended=len(kept),
        median=float(statistics.median(errors)),
        low=min(errors),
        high=max(errors),
        worst=worst,
        worst_error=worst_error,
        units=units,
    )
