"""What a stage's gate judges: the line its task's work is on, that line's tip (the commit
its door repo holds — what ``merge`` would land), and whether a run of its agent is still
writing it. A gate is taken on a commit (:mod:`.flow`); a check only once no run writes
the checkout it runs in. A stage whose line holds no commit of its own (a review reads
another stage's change and adds none) is asked about the change it read: the line of the
nearest stage before it that made commits, at that line's tip — what ``merge`` lands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fleet.ledger.records.lines import LineRecord
from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.work.tasks import TasksStore

Tip = Callable[[int], Awaitable[str | None]]
"""The tip of line ``id``'s branch in its door repo (``None``: none, or the line is gone)."""


async def no_tip(line_id: int) -> str | None:
    """No repositories: no line has a tip."""
    return None


@dataclass(frozen=True, slots=True)
class Judged:
    """A stage's line and its tip, read from the ledger and the line's door repo."""

    tasks: TasksStore
    lines: LinesStore
    runs: RunsStore
    tip: Tip

    async def line_of(self, task_id: int) -> LineRecord | None:
        """The line a stage's task worked on, on this machine: its branch's, else the
        line its last run worked on."""
        task = await self.tasks.task(task_id)
        if task is None or task.agent is None:
            return None
        found = await self.lines.lines()
        lines = [x for x in found if (x.agent, x.host) == (task.agent, "local")]
        for line in reversed(lines):
            if task.branch is not None and line.branch == task.branch:
                return line
        runs = set(task.runs)
        for line in reversed(lines):
            if line.line in runs or line.last_run in runs:
                return line
        return None

    async def at(self, task_id: int) -> tuple[LineRecord, str] | None:
        """A stage's line and its tip now (``None``: no line, or no commit on it)."""
        line = await self.line_of(task_id)
        if line is None:
            return None
        tip = await self.tip(line.id)
        return None if tip is None else (line, tip)

    async def read(self, task_id: int, before: Sequence[int]) -> tuple[LineRecord, str] | None:
        """What an ``approve`` gate of stage task ``task_id`` asks about: its own line and
        tip (:meth:`at`) when it holds commits of its own; else the change it read — the
        line of the nearest of ``before`` (the tasks of the stages before it, nearest
        first) whose tip is past the commit it forked from; else its own, as :meth:`at`."""
        own = await self.at(task_id)
        if own is not None and own[1] != own[0].fork_sha:
            return own
        for earlier in before:
            found = await self.at(earlier)
            if found is not None and found[1] != found[0].fork_sha:
                return found
        return own

    async def writing(self, task: TaskRecord) -> int | None:
        """The run of ``task``'s agent still going (a live session between turns, a
        restart), which may write its checkout; ``None``: none."""
        if task.agent is None:
            return None
        run = await self.runs.last_run(task.agent)
        return None if run is None or run.ended_at is not None else run.id
