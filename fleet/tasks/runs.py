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
instead (its pull request is the review). A run of another agent bound to a task — a
review agent's (:mod:`fleet.peers.review`) — counts its spend on the task but never moves
it: its start, its turns and its end leave the task where it is, and the task's own
agent's runs go on being the ones that move it. A task that ends is told to those who
listen (:meth:`TaskRuns.listen_ended`: the register starts the tasks that waited for it),
and so is a task put up for review (:meth:`TaskRuns.listen_for_review`: the review stage)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Final

from fleet.errors import FleetError
from fleet.events import EventKind, FleetEvent
from fleet.ledger import QueuedSpawn
from fleet.ledger.records.lines import LineRecord
from fleet.ledger.records.tasks import TaskRecord, TaskState
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.runs import RunReport, RunsStore
from fleet.ledger.stores.running.spawn_queue import SpawnQueueStore
from fleet.ledger.stores.work.actuals import ActualsStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.repos.facts import change_from_json
from fleet.supervisor.admission.held import request_of
from fleet.supervisor.admission.request import Admitted, Queued, Refused, Started
from fleet.tasks.projection import error_of
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)

LINE_TASKS: Final = 200
"""The latest tasks of an agent looked through for those whose work is on a line."""
BEFORE_START: frozenset[str] = frozenset({"todo", "queued"})
CONTINUED: frozenset[str] = frozenset({"todo", "working", "review", "failed"})
"""The states a task's work may go on from, when its agent runs again."""

Ended = Callable[[TaskRecord], Awaitable[None]]
UpForReview = Callable[[TaskRecord, int], Awaitable[None]]
"""Told of a task its run ``run_id`` just put up for review (its end, or its turn over)."""


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
        spawn_queue: SpawnQueueStore,
    ) -> None:
        self._tasks = tasks
        self._actuals = actuals
        self._runs = runs
        self._lines = lines
        self._spawn_queue = spawn_queue
        self._expected: dict[str, int | None] = {}
        self._launches: dict[str, asyncio.Lock] = {}
        self._ended: list[Ended] = []
        self._up_for_review: list[UpForReview] = []

    def listen_ended(self, listener: Ended) -> None:
        """Tell ``listener`` of each task that ended by its runs, from now on."""
        self._ended.append(listener)

    def listen_for_review(self, listener: UpForReview) -> None:
        """Tell ``listener`` of each task a run's end (with its change on a branch) or a live
        session's turn over puts up for review, from now on (a review agent's round is
        asked: :mod:`fleet.peers.review.chat`)."""
        self._up_for_review.append(listener)

    async def closed(self, task: int) -> str | None:
        """Why a launch for ``task`` must not be made (it ended meanwhile), or ``None``."""
        found = await self._tasks.task(task)
        if found is None or found.open:
            return None
        return f"task #{found.id} {found.name} is {found.state}: `task {found.id}` shows it"

    @contextlib.asynccontextmanager
    async def launching(self, agent: str, task: int | None) -> AsyncIterator[None]:
        """While the admission launches ``agent`` for ``task`` (``None``: none): the agent's
        next run is that launch's. One launch of an agent at a time, so a second one —
        already running, then — can never take the first one's run."""
        lock = self._launches.setdefault(agent, asyncio.Lock())
        async with lock:
            self._expected[agent] = task
            try:
                yield
            finally:
                self._expected.pop(agent, None)

    async def launched(self, agent: str) -> None:
        """Once ``agent``'s launch under way, if there is one, is over: its run's start is
        heard within it, so the run is bound to its task by then. An agent answers as soon
        as it starts — a review agent's verdict may come before its start is heard."""
        lock = self._launches.get(agent)
        if lock is not None and lock.locked():
            async with lock:
                pass

    async def told(self, task: int, agent: str, admitted: Admitted) -> None:
        """How the admission took a launch for ``task``: waiting, refused, or not launched
        because ``agent`` already ran (or already waits in the spawn queue)."""
        if isinstance(admitted, Queued) and admitted.already:
            why = f"not started: {agent} already waits in the spawn queue"
            if admitted.entry is not None:
                why += f" (#{admitted.entry.id}: `cancel {admitted.entry.id}` drops it)"
            await self._tasks.move(task, "todo", why, came_from=BEFORE_START)
        elif isinstance(admitted, Queued):
            await self._tasks.move(task, "queued", admitted.why, came_from=BEFORE_START)
        elif isinstance(admitted, Refused):
            why = f"not started: {admitted.why}"
            await self._tasks.move(task, "todo", why, came_from=BEFORE_START)
        elif isinstance(admitted, Started) and not admitted.outcome.started:
            why = f"not started: {agent} was already running; `stop {agent}` first"
            await self._tasks.move(task, "todo", why, came_from=BEFORE_START)

    async def hear(self, event: FleetEvent) -> None:
        """A fleet event: a run that started is bound, one that ended moves its task, a
        live session's turn that ended is its task's for review (:meth:`turn_over`)."""
        if event.run_id is None:
            return
        try:
            if event.kind is EventKind.STARTED:
                await self._started(event.agent, event.run_id)
            elif event.kind is EventKind.ENDED:
                await self.run_ended(event.run_id)
            elif event.kind is EventKind.TURN_OVER:
                await self.turn_over(event.agent, event.run_id)
        except Exception:  # the run's own record is kept; the task catches up at the sweep
            log.exception("could not move the task of run %s of %s", event.run_id, event.agent)

    async def turn_over(self, agent: str, run_id: int) -> None:
        """A live session's turn ended (the agent waits for what to do next): its task,
        when it was working, is for someone to review — done, or told to go on."""
        try:
            task_id = await self._tasks.task_of_run(run_id)
            task = None if task_id is None else await self._tasks.task(task_id)
            if task is None or task.source == "forge" or not _own(task, agent):
                return
            why = (
                f"{agent}'s turn is over: `task done {task.id}` if the work is done, "
                f"`send {agent} TEXT` to go on"
            )
            moved = await self._tasks.move(task.id, "review", why, came_from=("working",))
            # up for review already (a `send` went on after a round): its new commits are
            # up too — the next round, or the line marked changed since its approval
            if moved or task.state == "review":
                await self._reviewed(task, run_id)
        except Exception:
            log.exception("could not move the task of run %s of %s", run_id, agent)

    async def live_run(self, task: TaskRecord) -> int | None:
        """The run of ``task`` its agent still runs, if any."""
        if not task.runs or task.agent is None:
            return None
        run = await self._runs.last_run(task.agent)
        if run is None or run.ended_at is not None or run.id != await self.own_last(task):
            return None
        return run.id

    async def sweep(self) -> int:
        """Move the tasks working (or up for review) whose runs ended while nobody heard
        (Fleetwarden was away), and settle those held ``queued`` whose place in the spawn
        queue is gone; how many moved."""
        moved = 0
        for task in await self._tasks.tasks(states=("working", "review")):
            last = await self.own_last(task)
            if last is None:
                continue
            report = await self._runs.run_report(last)
            if report is not None and report.run.ended_at is not None:
                moved += await self.run_ended(last)
        return moved + await self.settle_queued()

    async def settle_queued(self) -> int:
        """The tasks held ``queued`` for the spawn queue whose entry is gone — cancelled,
        or refused as it started — back to ``todo``, saying so; how many. A task held for
        the tasks it waits for stays."""
        held = {t.id: t for t in await self._tasks.tasks(states=("queued",))}
        if not held:
            return 0
        for entry in await self._queued_for(held):
            request = request_of(entry)
            if request is not None and request.task is not None:
                held.pop(request.task, None)
        moved = 0
        for task in held.values():
            if any(t.state != "done" for t in await self.after(task)):
                continue
            why = f"its place in the spawn queue is gone: `task start {task.id}` starts it"
            moved += await self._tasks.move(task.id, "todo", why, came_from=("queued",))
        return moved

    async def drop_queued(self, task_id: int) -> list[int]:
        """Take ``task_id``'s launches waiting in the spawn queue out of it (the task
        ended); the entries' ids."""
        dropped = []
        for entry in await self._queued_for({task_id}):
            if await self._spawn_queue.cancel_spawn(entry.id) is not None:
                dropped.append(entry.id)
        return dropped

    async def _queued_for(self, task_ids: Collection[int]) -> list[QueuedSpawn]:
        """The spawn queue's entries that launch for one of ``task_ids``."""
        found = []
        for entry in await self._spawn_queue.queued_spawns():
            try:
                request = request_of(entry)
            except FleetError:  # an entry it cannot read is not a task's
                continue
            if request is not None and request.task in task_ids:
                found.append(entry)
        return found

    async def after(self, task: TaskRecord) -> list[TaskRecord]:
        """The tasks ``task`` waits for, as they are now."""
        found = [await self._tasks.task(i) for i in task.after]
        return [t for t in found if t is not None]

    async def _started(self, agent: str, run_id: int) -> None:
        if agent in self._expected:
            task_id = self._expected[agent]
        else:
            task_id = await self._continued(agent, run_id)
        task = None if task_id is None else await self._tasks.task(task_id)
        if task is None or not task.open:  # ended meanwhile: the run is nobody's
            return
        await self._tasks.add_run(task.id, run_id)
        if not _own(task, agent):  # a review agent's: its spend counts, the task stays
            return
        await self._tasks.move(
            task.id, "working", f"run {run_id} of {agent} going", came_from=CONTINUED | {"queued"}
        )
        report = await self._runs.run_report(run_id)
        # It ended before its start was heard. Its end is taken once it is all written (what
        # the run left committed to its branch, its report): until then its ENDED event has
        # not been sent, and that moves the task, its branch known.
        if report is not None and report.run.ended_at is not None and report.end is not None:
            await self.run_ended(run_id)

    async def _continued(self, agent: str, run_id: int) -> int | None:
        """The task a run nobody admitted goes on with: the task of the agent's run just
        before this one, when that run was its last and its work may go on."""
        before = [r for r in await self._runs.run_reports(agent, limit=3) if r.run.id < run_id]
        if not before:
            return None
        task_id = await self._tasks.task_of_run(before[0].run.id)
        task = None if task_id is None else await self._tasks.task(task_id)
        if task is None or task.state not in CONTINUED or not _own(task, agent):
            return None
        if await self.own_last(task) != before[0].run.id:
            return None
        return task.id

    async def on_line(self, line: LineRecord) -> list[TaskRecord]:
        """The tasks of ``line``'s agent whose work is on ``line`` — one of their own runs
        cut it, worked on it last, or left its change on it — oldest first; not a forge
        task (its pull request is its review, and its merge there its end)."""
        found = []
        for task in await self._tasks.tasks(agent=line.agent, limit=LINE_TASKS):
            if task.source != "forge" and await self._worked_on(task, line):
                found.append(task)
        return found

    async def _worked_on(self, task: TaskRecord, line: LineRecord) -> bool:
        """Whether a run of ``task``'s own worked on ``line``."""
        if task.branch is not None and task.branch == line.branch:
            return True
        for run_id in task.runs:
            if run_id in (line.line, line.last_run):
                report = await self._runs.run_report(run_id)
                if report is not None and _own(task, report.run.agent):
                    return True
                continue
            change = change_from_json(await self._lines.run_change(run_id))
            if change is not None and (change.repo, change.branch) == (line.repo, line.branch):
                return _own(task, change.agent)
        return False

    async def own_last(self, task: TaskRecord) -> int | None:
        """The last run of ``task`` its own agent made (a review agent's runs bound to it
        are not its work's), or ``None``."""
        for run_id in reversed(task.runs):
            report = await self._runs.run_report(run_id)
            if report is not None and _own(task, report.run.agent):
                return run_id
        return None

    async def run_ended(self, run_id: int) -> int:
        """Move the task run ``run_id`` was done for, as the run went; 1 if it moved. A
        task up for review after its session's last turn ends with the run too (done, or
        failed); one an operator stopped while it was up for review stays there."""
        task_id = await self._tasks.task_of_run(run_id)
        task = None if task_id is None else await self._tasks.task(task_id)
        if task is None or task.state not in ("working", "review") or task.source == "forge":
            return 0
        report = await self._runs.run_report(run_id)
        if report is None or report.run.ended_at is None or not _own(task, report.run.agent):
            return 0  # a review agent's run ends: the task is where its review put it
        if task.runs and await self.own_last(task) != run_id:
            return 0  # a later run goes on with it
        state, why = await self._verdict(task, report)
        came_from = (task.state,)
        if state == "working" or (state == "todo" and task.state == "review"):
            return 0
        if state in ("todo", "review"):
            moved = await self._tasks.move(task.id, state, why, came_from=came_from)
            if moved and state == "review":
                await self._reviewed(task, run_id)
            return int(moved)
        actual = await self._actuals.actual(task.id)
        if not await self._tasks.finish(
            task.id, state, why, actual, error_of(task, actual), came_from=came_from
        ):
            return 0
        if (ended := await self._tasks.task(task.id)) is not None:
            for listener in self._ended:
                await listener(ended)
        return 1

    async def _reviewed(self, task: TaskRecord, run_id: int) -> None:
        """Tell who listens for a review of ``task`` (its change stays up for review whatever
        asking a review agent meets)."""
        for listener in self._up_for_review:
            try:
                await listener(task, run_id)
            except Exception:
                log.exception("no round of review was asked for task %d", task.id)

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


def _own(task: TaskRecord, agent: str) -> bool:
    """Whether ``agent``'s runs are ``task``'s own work (not a review agent's)."""
    return task.agent is None or task.agent == agent
