"""The task an agent's run is for, and whether a task another agent handed on may go on:
:class:`HandedTasks`, read by the hand-off (:mod:`fleet.peers.handoff`) and by the
admission's hand-off stage (:mod:`fleet.supervisor.admission.stages.handoff`), which asks it
before a watchdog restart goes on with its agent's task. Made from the ledger's runs and
tasks and the peers' rules (:class:`~fleet.peers.rules.Rules`), so the admission has it from
the start, before any postbox."""

from __future__ import annotations

from fleet.ledger.records.tasks import TaskRecord
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.peers.rules import Rules
from fleet.tasks.register import shown

BY_AGENT = "agent "
"""A task's ``asked_by`` when an agent handed it on: followed by the agent's name."""


class HandedTasks:
    """Which task an agent's run is for, and who handed it on."""

    def __init__(self, *, runs: RunsStore, tasks: TasksStore, rules: Rules) -> None:
        self._runs = runs
        self._tasks = tasks
        self._rules = rules

    async def current_task(self, agent: str, *, ended: bool = False) -> TaskRecord | None:
        """The task ``agent``'s live run (``ended``: or its last run) is bound to, if any."""
        run = await self._runs.last_run(agent)
        if run is None or (run.ended_at is not None and not ended):
            return None
        task_id = await self._tasks.task_of_run(run.id)
        return None if task_id is None else await self._tasks.task(task_id)

    async def restart_refused(self, agent: str) -> str | None:
        """Why a restart of ``agent`` (the watchdog's) may not continue its run's task now,
        or ``None``: a task handed on by another agent continues only while that agent may
        still reach ``agent`` (:meth:`fleet.peers.rules.Rules.reach`, the roster now)."""
        task = await self.current_task(agent, ended=True)
        if task is None or not task.asked_by.startswith(BY_AGENT):
            return None
        sender = task.asked_by.removeprefix(BY_AGENT)
        lost = await self._rules.reach(sender, agent, later=True)
        if lost is None:
            return None
        return f"task {shown(task)} was handed on by {sender}, and {lost}"
