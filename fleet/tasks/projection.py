"""A new task's projection: the median and p90 of what the finished tasks of its kind
really cost — from the narrowest kind with :data:`ENOUGH` of them (the same agent,
runtime and repository; else the agent and runtime, the agent, the repository, every
task), else the narrowest with one — kept on the task when it is made and never reckoned
again. Each finished task's actual joins the history the next projection of its kind is
made from, so the estimates follow what the work really costs; each keeps its error
(actual / projected median) so the report can say how far they were off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from fleet.budgets.runs.estimate import percentiles
from fleet.ledger.records.tasks import NO_PROJECTION, Actual, Projection, TaskRecord

BASIS_TASKS: Final = 50
"""The most finished tasks a projection is reckoned from, newest first."""
ENOUGH: Final = 2
"""How many finished tasks make a kind worth reckoning from before a broader one: two of
the task's own kind say more of it than any number of every task."""


class FinishedTasks(Protocol):
    """The ledger's finished tasks (:class:`fleet.ledger.stores.work.tasks.TasksStore`)."""

    async def finished_tasks(
        self,
        *,
        agent: str | None = None,
        runtime: str | None = None,
        repo: str | None = None,
        limit: int = 50,
        before: datetime | None = None,
    ) -> list[tuple[int, Actual]]: ...


@dataclass(frozen=True, slots=True)
class Kind:
    """Which finished tasks are like a new one: those of ``agent``, ``runtime`` and
    ``repo`` where each is set."""

    agent: str | None = None
    runtime: str | None = None
    repo: str | None = None

    @property
    def words(self) -> str:
        """``agent coder · runtime claude · repository app``, or ``every task``."""
        parts = [
            f"{label} {value}"
            for label, value in (
                ("agent", self.agent),
                ("runtime", self.runtime),
                ("repository", self.repo),
            )
            if value
        ]
        return " · ".join(parts) if parts else "every task"


def kinds(agent: str | None, runtime: str | None, repo: str | None) -> list[Kind]:
    """The kinds a task of ``agent`` on ``runtime`` in ``repo`` is of, narrowest first."""
    found: list[Kind] = []
    if agent:
        if repo:
            found.append(Kind(agent, runtime, repo))
        if runtime:
            found.append(Kind(agent, runtime))
        found.append(Kind(agent))
    if repo:
        found.append(Kind(repo=repo))
    found.append(Kind())
    return list(dict.fromkeys(found))


def projected(kind: Kind, past: Sequence[tuple[int, Actual]]) -> Projection:
    """The projection from ``past`` (finished tasks of ``kind``, newest first)."""
    if not past:
        return NO_PROJECTION
    tokens = percentiles([float(actual.tokens) for _, actual in past])
    dollars = [actual.usd for _, actual in past if actual.usd is not None]
    return Projection(
        basis=kind.words,
        tasks=tuple(task_id for task_id, _ in past),
        tokens=tokens,
        usd=percentiles(dollars) if dollars else None,
    )


async def project(
    finished: FinishedTasks,
    *,
    agent: str | None,
    runtime: str | None,
    repo: str | None,
    before: datetime | None = None,
) -> Projection:
    """A new task's projection: from the narrowest kind with :data:`ENOUGH` finished
    tasks, else the narrowest with any, else none."""
    first: tuple[Kind, list[tuple[int, Actual]]] | None = None
    for kind in kinds(agent, runtime, repo):
        past = await finished.finished_tasks(
            agent=kind.agent,
            runtime=kind.runtime,
            repo=kind.repo,
            limit=BASIS_TASKS,
            before=before,
        )
        if len(past) >= ENOUGH:
            return projected(kind, past)
        if past and first is None:
            first = (kind, past)
    return NO_PROJECTION if first is None else projected(*first)


def error_of(task: TaskRecord, actual: Actual) -> tuple[float, str] | None:
    """How far ``task``'s projection was off: ``actual`` / its projected median, in dollars
    where both have them, else in tokens (``None``: no projection, or a zero median)."""
    usd, tokens = task.projection.usd, task.projection.tokens
    if usd is not None and actual.usd is not None and usd[0] > 0:
        return actual.usd / usd[0], "usd"
    if tokens is not None and tokens[0] > 0:
        return actual.tokens / tokens[0], "tokens"
    return None
