"""What a task and a mission add up to: a task with what its runs really used
(:class:`TaskView`), and a mission's totals — its tasks' projections and actuals summed, and
its progress by state (:class:`Totals`). Pure: read by the commands, the dashboard, the
markdown projections and the forge's posts alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from fleet.ledger.records.tasks import (
    ENDED_STATES,
    TASK_STATES,
    Actual,
    MissionRecord,
    Pair,
    TaskRecord,
    TaskState,
)

NOTHING = Actual(0, None, 0)


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task and its actual spend so far (exact: its runs' metered usage)."""

    task: TaskRecord
    actual: Actual

    @property
    def projected_usd(self) -> float | None:
        """Its projected median in dollars, if it has one."""
        usd = self.task.projection.usd
        return None if usd is None else usd[0]

    @property
    def projected_tokens(self) -> float | None:
        """Its projected median in tokens, if it has one."""
        tokens = self.task.projection.tokens
        return None if tokens is None else tokens[0]


def views(tasks: Iterable[TaskRecord], actuals: Mapping[int, Actual]) -> list[TaskView]:
    """``tasks`` with their actuals (a task missing from ``actuals``: nothing spent)."""
    return [TaskView(task, actuals.get(task.id, NOTHING)) for task in tasks]


def _add(total: Pair | None, more: Pair | None) -> Pair | None:
    if more is None:
        return total
    if total is None:
        return more
    return (total[0] + more[0], total[1] + more[1])


@dataclass(frozen=True, slots=True)
class Totals:
    """Tasks summed: ``projected_*`` the sums of their projected medians and p90s (over the
    tasks with one in that unit, ``None`` when none has; ``unprojected`` counts the tasks
    with none in either) — a cancelled task is out of them, its work will not be done —
    ``actual_*`` of what their runs used, a cancelled task's too: it was spent
    (``actual_usd`` ``None`` when nothing was priced); ``by_state`` how many are in each
    state, every state present."""

    tasks: int
    projected_tokens: Pair | None
    projected_usd: Pair | None
    unprojected: int
    actual_tokens: int
    actual_usd: float | None
    by_state: Mapping[TaskState, int] = field(default_factory=dict)

    @property
    def ended(self) -> int:
        """How many have ended (done, failed or cancelled)."""
        return sum(n for state, n in self.by_state.items() if state in ENDED_STATES)

    @property
    def done(self) -> int:
        """How many are done."""
        return self.by_state.get("done", 0)

    @property
    def progress(self) -> str:
        """``2 of 3 done`` (cancelled tasks not counted as work to do)."""
        counted = self.tasks - self.by_state.get("cancelled", 0)
        return f"{self.done} of {counted} done"


def totals(found: Sequence[TaskView]) -> Totals:
    """``found`` summed (see :class:`Totals`)."""
    tokens: Pair | None = None
    usd: Pair | None = None
    unprojected = 0
    actual_usd: float | None = None
    by_state: dict[TaskState, int] = dict.fromkeys(TASK_STATES, 0)
    for view in found:
        projection = view.task.projection
        if view.task.state != "cancelled":  # work that will not be done: not projected
            tokens = _add(tokens, projection.tokens)
            usd = _add(usd, projection.usd)
            if projection.tokens is None and projection.usd is None:
                unprojected += 1
        if view.actual.usd is not None:
            actual_usd = (actual_usd or 0.0) + view.actual.usd
        by_state[view.task.state] += 1
    return Totals(
        tasks=len(found),
        projected_tokens=tokens,
        projected_usd=usd,
        unprojected=unprojected,
        actual_tokens=sum(view.actual.tokens for view in found),
        actual_usd=actual_usd,
        by_state=by_state,
    )


@dataclass(frozen=True, slots=True)
class MissionView:
    """A mission: its own tasks, its sub-missions (each a view), and the totals over
    all of them."""

    mission: MissionRecord
    tasks: tuple[TaskView, ...]
    subs: tuple[MissionView, ...]
    totals: Totals

    def everything(self) -> list[TaskView]:
        """Its tasks and its sub-missions', depth first."""
        found = list(self.tasks)
        for sub in self.subs:
            found.extend(sub.everything())
        return found


def mission_view(
    mission: MissionRecord,
    tree: Sequence[MissionRecord],
    found: Sequence[TaskView],
    _above: frozenset[int] = frozenset(),
) -> MissionView:
    """``mission`` over ``tree`` (it and the missions under it) and ``found`` (their
    tasks)."""
    own = tuple(view for view in found if view.task.mission == mission.id)
    above = _above | {mission.id}
    subs = tuple(
        mission_view(sub, tree, found, above)
        for sub in tree
        if sub.parent == mission.id and sub.id not in above
    )
    every = list(own)
    for sub in subs:
        every.extend(sub.everything())
    return MissionView(mission, own, subs, totals(every))
