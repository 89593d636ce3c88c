"""A task's spend in one line, as its artifacts show it — the forge issue's status comment,
its pull request's footer, a run's summary in chat: the projection stored when the task was
made beside what its runs really used (``Task #12: projected $0.40 (p90 $0.90) from 5 past
tasks (agent coder · repository app) · actual so far $0.31 (41,200 tokens)``).

The line is plain words: each surface escapes it as it escapes any text (it names no title,
only numbers and the projection's basis)."""

from __future__ import annotations

from fleet.budgets.quoting.words import usd
from fleet.ledger.records.tasks import Actual, Projection, TaskRecord
from fleet.ledger.stores.work.actuals import ActualsStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.metering import units

NONE_YET = "no projection: no finished task of its kind yet"


def projected_words(projection: Projection) -> str:
    """``projected $0.40 (p90 $0.90) from 5 past tasks (agent coder · repository app)``, in
    tokens when its past tasks were not priced, or that there is none."""
    if projection.usd is not None:
        median, p90 = projection.usd
        amount = f"{usd(median)} (p90 {usd(p90)})"
    elif projection.tokens is not None:
        median, p90 = projection.tokens
        amount = f"{units.tokens_words(median)} (p90 {units.tokens(p90)})"
    else:
        return NONE_YET
    n = projection.count
    return f"projected {amount} from {n} past task{'s' if n != 1 else ''} ({projection.basis})"


def actual_words(actual: Actual, *, ended: bool) -> str:
    """``actual so far $0.31 (41,200 tokens)``; ``actual`` alone once the task ended."""
    said = "actual" if ended else "actual so far"
    if actual.usd is None:
        return f"{said} {units.tokens_words(actual.tokens)} (not priced)"
    return f"{said} {usd(actual.usd)} ({units.tokens_words(actual.tokens)})"


def spend_line(task: TaskRecord, actual: Actual) -> str:
    """``task``'s stored projection beside ``actual``, what its runs used (the module's
    example)."""
    return (
        f"Task #{task.id}: {projected_words(task.projection)} · "
        f"{actual_words(actual, ended=not task.open)}"
    )


class TaskSpend:
    """The spend line of the task a run or a forge run is done for, read from the ledger."""

    def __init__(self, *, tasks: TasksStore, actuals: ActualsStore) -> None:
        self._tasks = tasks
        self._actuals = actuals

    async def line(self, task: TaskRecord) -> str:
        """``task``'s line, its actual as metered now."""
        return spend_line(task, await self._actuals.actual(task.id))

    async def of_run(self, run_id: int) -> str | None:
        """The line of the task run ``run_id`` is bound to (``None``: it is bound to none)."""
        task_id = await self._tasks.task_of_run(run_id)
        task = None if task_id is None else await self._tasks.task(task_id)
        return None if task is None else await self.line(task)

    async def of_forge_run(self, key: int) -> str | None:
        """The line of the task forge run ``key`` is (``None``: none was made for it)."""
        task = await self._tasks.task_of_forge_run(key)
        return None if task is None else await self.line(task)
