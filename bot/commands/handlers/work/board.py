"""The commands that read the work register's tasks: ``task T`` (a task's story: its runs,
spend projected against actual, line and pull request, the commit its review approved) and
``tasks`` (the list, open ones first), for every role."""

from __future__ import annotations

from bot.commands.family import Family, command
from bot.commands.handlers.work.refs import mission_of, task_of
from bot.commands.handlers.work.specs import TASK, TASKS
from bot.commands.routing.request import Reply, Request
from bot.render import machine
from bot.render.work import tasks as render
from bot.render.work.tasks import RUNS_SHOWN, Story
from fleet.errors import FleetError
from fleet.ledger.records.tasks import ENDED_STATES, OPEN_STATES, TaskRecord
from fleet.ledger.stores.peers.reviews import ReviewsStore
from fleet.ledger.stores.running.runs import RunReport, RunsStore
from fleet.ledger.stores.work.missions import MissionsStore
from fleet.tasks.register import Register
from fleet.timing.clock import Clock


class TaskBoard(Family):
    """``task T`` and ``tasks`` over the register, the missions and the runs."""

    def __init__(
        self,
        *,
        register: Register,
        missions: MissionsStore,
        runs: RunsStore,
        clock: Clock,
        reviews: ReviewsStore | None = None,
    ) -> None:
        """``reviews``: a review agent's rounds, for which commit it approved (``None``:
        not said)."""
        self._register = register
        self._missions = missions
        self._runs = runs
        self._clock = clock
        self._reviews = reviews

    @command(TASK)
    async def task(self, req: Request) -> Reply:
        register = self._register
        task = await task_of(register, req.arg("TASK"))
        after = [found for i in task.after if (found := await self._task(i)) is not None]
        reports: list[RunReport] = []
        for run_id in task.runs[-RUNS_SHOWN:]:
            report = await self._runs.run_report(run_id)
            if report is not None:
                reports.append(report)
        mission = None if task.mission is None else await self._missions.mission(task.mission)
        rounds = [] if self._reviews is None else await self._reviews.of_task(task.id)
        view = await register.view(task)
        told = Story(view, after, reports, mission, rounds)
        names = {} if mission is None else {mission.id: mission.name}
        return Reply(render.story(told, self._clock.now()), data=machine.task(view, names))

    async def _task(self, task_id: int) -> TaskRecord | None:
        try:
            return await self._register.find(str(task_id))
        except FleetError:  # gone
            return None

    @command(TASKS)
    async def tasks(self, req: Request) -> Reply:
        typed = req.command
        mission_ref, state = typed.str_flag("mission"), typed.str_flag("state")
        register = self._register
        mission = None if mission_ref is None else await mission_of(register, mission_ref)
        states: list[str] | None = None
        if state == "open":
            states = sorted(OPEN_STATES)
        elif state == "ended":
            states = sorted(ENDED_STATES)
        elif state is not None:
            states = [state]
        heading = "Tasks"
        if mission is not None:
            heading += f" of mission {mission.name}"
        if state is not None:
            heading += f" ({state})"
        views = await register.board(mission=mission, states=states)
        names = {m.id: m.name for m in await self._missions.missions()}
        return Reply(render.board(views, heading), data=machine.tasks(views, names))
