"""Each run bound to the task it is done for, and the task moved as its runs start and end.

The admission says, before it launches, which task an agent's next run is for
(:meth:`TaskRuns.launching`); the run's start (a fleet event, heard while the launch is
still under way) binds it to that task and the task is ``working``. A run nobody launched
through the admission — a ``restart``, the watchdog's — continues the agent's task when that
task's last run was the agent's run just before it. A live session's turn over (the agent
waits for what to do next) puts its task up for ``review``. When a run ends, its task
(working, or up for review after the run's last turn) moves by how it went: finished with a
change on a branch → ``review``; finished without one → ``done``; failed, cut off, timed
out or lost → ``failed``; stopped by an operator → back to ``todo`` (``task start`` runs it
again); stalled and restarted → still ``working``. A forge task is moved by its forge run
instead (its pull request is the review). A task that ends is handed to
:attr:`TaskRuns.ended` (the register starts the tasks that waited for it)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.tasks import TaskRecord, TaskState
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.runs import RunReport, RunsStore
from fleet.ledger.stores.work.actuals import ActualsStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.repos.facts import change_from_json
from fleet.supervisor.admission.request import Admitted, Queued, Refused, Started
from fleet.tasks.projection import error_of
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)

BEFORE_START: frozenset[str] = frozenset({"todo", "queued"})
CONTINUED: frozenset[str] = frozenset({"todo", "working", "review", "failed"})
"""The states a task's work may go on from, when its agent runs again."""

Ended = Callable[[TaskRecord], Awaitable[None]]


def start_words(task: TaskRecord) -> str:
    """``task start 12``: how an operator starts ``task`` again."""
    return f"`task start {task.id}`"


class TaskRuns:
    """The binding of runs to tasks (the admission's :class:`TaskBinding`) and a fleet
    event listener."""

    def __init__(
        self,
        *,
        tasks: TasksStore,
        actuals: ActualsStore,
        runs: RunsStore,
        lines: LinesStore,
    ) -> None:
        self._tasks = tasks
        self._actuals = actuals
        self._runs = runs
        self._lines = lines
        self._expected: dict[str, int | None] = {}
        self.ended: Ended | None = None
        """Told of each task that ended by its runs (``None``: nobody)."""

    def launching(self, agent: str, task: int | None) -> None:
        """``agent``'s next run is the admission's launch, for ``task`` (``None``: none)."""
        self._expected[agent] = task

    def landed(self, agent: str) -> None:
        """The admission's launch of ``agent`` returned."""
        self._expected.pop(agent, None)

    async def told(self, task: int, agent: str, admitted: Admitted) -> None:
        """How the admission took a launch for ``task``: waiting, refused, or not launched
        because ``agent`` already ran."""
        if isinstance(admitted, Queued):
            await self._tasks.move(task, "queued", admitted.why, came_from=BEFORE_START)
        elif isinstance(admitted, Refused):
            why = f"not started: {admitted.why}"
            await self._tasks.move(task, "todo", why, came_from=BEFORE_START)
        elif isinstance(admitted, Started) and not admitted.outcome.started:
            why = f"not started: {agent} was already running; `stop {agent}` first"
            await self._tasks.move(task, "todo", why, came_from=BEFORE_START)

    async def hear(self, event: FleetEvent) -> None:
        """A fleet event: a run that started is bound, one that ended moves its task."""
        if event.run_id is None:
            return
        try:
            if event.kind is EventKind.STARTED:
                await self._started(event.agent, event.run_id)
            elif event.kind in (EventKind.ENDED, EventKind.GAVE_UP):
                await self.run_ended(event.run_id)
        except Exception:  # the run's own record is kept; the task catches up at the sweep
            log.exception("could not move the task of run %s of %s", event.run_id, event.agent)

    async def turn_over(self, agent: str, run_id: int) -> None:
        """A live session's turn ended (the agent waits for what to do next): its task,
        when it was working, is for someone to review — done, or told to go on."""
        try:
            task_id = await self._tasks.task_of_run(run_id)
            task = None if task_id is None else await self._tasks.task(task_id)
            if task is None or task.source == "forge":
                return
            why = (
                f"{agent}'s turn is over: `task done {task.id}` if the work is done, "
                f"`send {agent} TEXT` to go on"
            )
            await self._tasks.move(task.id, "review", why, came_from=("working",))
        except Exception:
            log.exception("could not move the task of run %s of %s", run_id, agent)

    async def live_run(self, task: TaskRecord) -> int | None:
        """The run of ``task`` its agent still runs, if any."""
        if not task.runs or task.agent is None:
            return None
        run = await self._runs.last_run(task.agent)
        if run is None or run.ended_at is not None or run.id != task.runs[-1]:
            return None
        return run.id

    async def sweep(self) -> int:
        """Move the tasks working (or up for review) whose runs ended while nobody heard
        (Fleetwarden was away); how many moved."""
        moved = 0
        for task in await self._tasks.tasks(states=("working", "review")):
            if not task.runs:
                continue
            report = await self._runs.run_report(task.runs[-1])
            if report is not None and report.run.ended_at is not None:
                moved += await self.run_ended(task.runs[-1])
        return moved

    async def _started(self, agent: str, run_id: int) -> None:
        if agent in self._expected:
            task_id = self._expected[agent]
        else:
            task_id = await self._continued(agent, run_id)
        if task_id is None:
            return
        await self._tasks.add_run(task_id, run_id)
        await self._tasks.move(
            task_id, "working", f"run {run_id} of {agent} going", came_from=CONTINUED | {"queued"}
        )

    async def _continued(self, agent: str, run_id: int) -> int | None:
        """The task a run nobody admitted goes on with: ``agent``'s latest task, when its
        last run was the agent's run just before this one."""
        latest = await self._tasks.tasks(agent=agent, limit=1)
        if not latest or latest[0].state not in CONTINUED or not latest[0].runs:
            return None
        before = [r for r in await self._runs.run_reports(agent, limit=3) if r.run.id < run_id]
        if not before or before[0].run.id != latest[0].runs[-1]:
            return None
        return latest[0].id

    async def run_ended(self, run_id: int) -> int:
        """Move the task run ``run_id`` was done for, as the run went; 1 if it moved. A
        task up for review after its session's last turn ends with the run too (done, or
        failed); one an operator stopped while it was up for review stays there."""
        task_id = await self._tasks.task_of_run(run_id)
        task = None if task_id is None else await self._tasks.task(task_id)
        if task is None or task.state not in ("working", "review") or task.source == "forge":
            return 0
        if task.runs and task.runs[-1] != run_id:
            return 0  # a later run goes on with it
        report = await self._runs.run_report(run_id)
        if report is None or report.run.ended_at is None:
            return 0
        state, why = await self._verdict(task, report)
        came_from = (task.state,)
        if state == "working" or (state == "todo" and task.state == "review"):
            return 0
        if state in ("todo", "review"):
            return int(await self._tasks.move(task.id, state, why, came_from=came_from))
        actual = await self._actuals.actual(task.id)
        if not await self._tasks.finish(
            task.id, state, why, actual, error_of(task, actual), came_from=came_from
        ):
            return 0
        ended = await self._tasks.task(task.id)
        if ended is not None and self.ended is not None:
            await self.ended(ended)
        return 1

    async def _verdict(self, task: TaskRecord, report: RunReport) -> tuple[TaskState, str]:
        """Where ``task`` goes now that its run of ``report`` ended, and why."""
        run = report.run
        outcome = report.end.outcome if report.end is not None else None
        said = f"run {run.id} {outcome or run.reason or 'ended'}"
        if outcome == Outcome.RESTARTED:
            return "working", said
        if outcome == Outcome.STOPPED:
            return "todo", f"{said}: {start_words(task)} runs it again"
        finished = outcome == Outcome.FINISHED or (outcome is None and run.exit_code == 0)
        if not finished:
            return "failed", f"{said}: {start_words(task)} runs it again"
        branch = await self._branch(task, run.id)
        if branch is None:
            return "done", said
        return "review", f"{said}; its change is on {branch}: `task done {task.id}` when merged"

    async def _branch(self, task: TaskRecord, run_id: int) -> str | None:
        """The branch run ``run_id`` left a change on, kept as the task's line (``None``:
        it changed nothing)."""
        change = change_from_json(await self._lines.run_change(run_id))
        if change is None or not (change.commits or change.more_commits) or change.merged:
            return None
        if task.branch != change.branch:
            await self._tasks.set_fields(task.id, branch=change.branch)
        return change.branch
