"""The register: tasks made (each with its projection, kept from then on), found by what an
operator types, started through the fleet's one admission — or held ``queued`` until the
tasks they wait for are done, then started where their start was asked for, as a request
built here (:mod:`fleet.tasks.held`) — and ended; missions made and found; and what tasks
and missions add up to (:mod:`fleet.tasks.views`).

The runs' side — binding each run to its task and moving the task as runs start and end —
is :class:`fleet.tasks.runs.TaskRuns`, which tells the register of each task that ends."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol

from fleet.errors import FleetError
from fleet.ledger.records.lines import LineRecord
from fleet.ledger.records.tasks import (
    ENDED_STATES,
    MissionRecord,
    NewTask,
    TaskRecord,
    TaskSource,
    TaskState,
)
from fleet.ledger.stores.work.actuals import ActualsStore
from fleet.ledger.stores.work.missions import MissionsStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.supervisor.admission.admit import Admission, Wait
from fleet.supervisor.admission.request import Admitted, LaunchRequest
from fleet.tasks.asked import Asker
from fleet.tasks.held import HeldStarts
from fleet.tasks.projection import error_of, project
from fleet.tasks.runs import Ended, TaskRuns
from fleet.tasks.views import MissionView, TaskView, mission_view, views

log = logging.getLogger(__name__)

TITLE_LENGTH: Final = 200
"""The longest title a task keeps (a longer one is cut, the whole text kept as its body)."""
BODY_LENGTH: Final = 20_000
MISSION_NAME: Final = re.compile(r"[a-z][a-z0-9-]{0,31}")
_SPACE = re.compile(r"\s+")

STARTABLE: frozenset[TaskState] = frozenset({"todo", "queued", "failed", "review"})
"""The states a task may be started from: made, waiting, failed (tried again), or in review
(more work on it)."""


class TaskError(FleetError):
    """A task or mission asked for that is not there, or cannot do what was asked."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """A task asked to start that waits for others to be done first: ``why``."""

    why: str


class Stopper(Protocol):
    """What stops an agent's run (the fleet's :meth:`~fleet.supervisor.fleet.Fleet.stop_agent`)."""

    async def stop_agent(self, name: str, *, by: str = ...) -> object:
        """Stop ``name``'s run, recorded as stopped ``by`` who asked."""
        ...


Guard = Callable[[TaskRecord, Sequence[TaskRecord]], Awaitable[str | None]]
"""Why a task, waiting for those given, may not start yet (``None``: it may)."""


def title_of(text: str) -> str:
    """``text`` as a title: on one line, its spaces collapsed, at most
    :data:`TITLE_LENGTH` characters."""
    line = _SPACE.sub(" ", text).strip()
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def source_of(event: str | None) -> tuple[TaskSource, str]:
    """Where a command came from, by its event's id (an operator schedule's runs are
    ``schedule:<id>:<when>``), as a task's source and what there."""
    if event is not None and event.startswith("schedule:"):
        return "schedule", event.split(":")[1][:20]
    return "chat", ""


def shown(task: TaskRecord) -> str:
    """``#12 fix-login``: how a task is named in words."""
    return f"#{task.id} {task.name}"


class Register:
    """The tasks and missions of the fleet."""

    def __init__(
        self,
        *,
        tasks: TasksStore,
        missions: MissionsStore,
        actuals: ActualsStore,
        runs: TaskRuns,
        admission: Admission,
        stop: Stopper | None = None,
    ) -> None:
        """``stop``: stops an agent's run, when the task it works for ends (``None``: runs
        are left to end by themselves)."""
        self._tasks = tasks
        self._missions = missions
        self._actuals = actuals
        self._admission = admission
        self._enders: list[Ended] = []
        self._guards: list[Guard] = []
        self._stop = stop
        self._starting: set[int] = set()  # tasks whose start is under way
        self.runs = runs
        self.held = HeldStarts(tasks)
        """The starts of tasks whose wait is over (and of pipelines' stages)."""
        runs.listen_ended(self._ended)  # a task that ended starts those that waited for it

    def listen_ended(self, listener: Ended) -> None:
        """Tell ``listener`` of each task that ends — by its runs or by :meth:`end` — once
        the tasks that waited for it were started or told (a pipeline's next stage)."""
        self._enders.append(listener)

    def guard(self, guard: Guard) -> None:
        """Refuse a start that ``guard`` says why not (a pipeline's stage whose stages
        before it are not through their gates)."""
        self._guards.append(guard)

    # -- making and finding ------------------------------------------------------------

    async def new(self, new: NewTask, after: Sequence[TaskRecord] = ()) -> TaskRecord:
        """Make task ``new``, waiting for ``after``, with its projection."""
        title = title_of(new.title)
        if not title:
            raise TaskError("a task needs a title: `task new Fix the login page`")
        body = new.body if len(new.body) <= BODY_LENGTH else new.body[:BODY_LENGTH] + "…"
        projection = await project(self._tasks, agent=new.agent, runtime=new.runtime, repo=new.repo)
        made = replace(new, title=title, body=body)
        return await self._tasks.add_task(made, projection, [task.id for task in after])

    async def for_prompt(
        self,
        *,
        agent: str,
        prompt: str,
        by: str,
        event: str | None,
        runtime: str | None = None,
        repo: str | None = None,
    ) -> TaskRecord:
        """The task a launch with ``prompt`` is (a chat ``spawn``, a schedule's run, by the
        id of the ``event`` that asked): titled by the prompt's first line, the prompt its
        body."""
        kind, ref = source_of(event)
        first = next((line for line in prompt.splitlines() if line.strip()), prompt)
        new = NewTask(
            title=first,
            body=prompt,
            source=kind,
            source_ref=ref,
            asked_by=by,
            agent=agent,
            runtime=runtime,
            repo=repo,
        )
        return await self.new(new)

    async def find(self, ref: str) -> TaskRecord:
        """The task ``ref`` names: its id (``12`` or ``#12``) or its name."""
        text = ref.strip()
        digits = text.removeprefix("#")
        task = None
        if digits.isascii() and digits.isdigit() and len(digits) < 12:
            task = await self._tasks.task(int(digits))
        elif len(text) <= 64:
            task = await self._tasks.task_named(text)
        if task is None:
            named = text if len(text) <= 40 else text[:37] + "..."
            raise TaskError(f"no task {named!r}: `tasks` lists them by id and name")
        return task

    async def new_mission(
        self, name: str, title: str, by: str, parent: MissionRecord | None = None
    ) -> MissionRecord:
        """Make mission ``name`` (part of ``parent``)."""
        if not MISSION_NAME.fullmatch(name):
            named = name if len(name) <= 40 else name[:37] + "..."
            raise TaskError(
                f"invalid mission name {named!r}: use 1-32 characters, a lowercase letter "
                "first, then lowercase letters, digits or '-' (for example 'release-2')"
            )
        made = await self._missions.add_mission(
            name, title_of(title), by, None if parent is None else parent.id
        )
        if made is None:
            raise TaskError(f"mission {name} exists: `mission {name}` shows it")
        return made

    async def find_mission(self, ref: str) -> MissionRecord:
        """The mission named ``ref``."""
        mission = await self._missions.mission_named(ref) if len(ref) <= 64 else None
        if mission is None:
            named = ref if len(ref) <= 40 else ref[:37] + "..."
            raise TaskError(f"no mission {named!r}: `mission new {_fix(ref)}` makes it")
        return mission

    async def add_to_mission(
        self, mission: MissionRecord, tasks: Sequence[TaskRecord]
    ) -> list[TaskRecord]:
        """Put ``tasks`` in ``mission`` (out of any other); them as they are now."""
        for task in tasks:
            await self._tasks.set_fields(task.id, mission_id=mission.id)
        found = [await self._tasks.task(task.id) for task in tasks]
        return [task for task in found if task is not None]

    # -- starting and ending -----------------------------------------------------------

    async def start(
        self,
        task: TaskRecord,
        request: LaunchRequest,
        wait: Wait | None,
        *,
        asked_in: Asker | None = None,
    ) -> Admitted | Waiting:
        """Start ``task`` as ``request`` (its agent, prompt and repository) through the
        admission — or, while a task it waits for is not done, hold it ``queued`` and start
        it once they are, for ``asked_in`` (the asker, where they asked)."""
        if task.id in self._starting:
            raise TaskError(f"task {shown(task)} is starting now: `task {task.id}` shows it")
        self._starting.add(task.id)
        try:
            return await self._start(task, request, wait, asked_in)
        finally:
            self._starting.discard(task.id)

    async def _start(
        self,
        task: TaskRecord,
        request: LaunchRequest,
        wait: Wait | None,
        asked_in: Asker | None,
    ) -> Admitted | Waiting:
        task = await self._tasks.task(task.id) or task  # as it is now
        if task.state not in STARTABLE:
            raise TaskError(_not_startable(task))
        if task.state == "review" and await self.runs.live_run(task) is not None:
            raise TaskError(
                f"task {shown(task)} is up for review and {task.agent}'s session of it goes "
                f"on: `send {task.agent} TEXT` to go on, `task done {task.id}` to end it"
            )
        after = await self.runs.after(task)
        never = [t for t in after if t.state == "cancelled"]
        if never:
            raise TaskError(
                f"task {shown(task)} waits for {shown(never[0])}, which was cancelled: it "
                f"would wait for ever; `task cancel {task.id}` and make it again without "
                "`--after` it"
            )
        for guard in self._guards:
            if (refused := await guard(task, after)) is not None:
                raise TaskError(refused)
        if asked_in is not None:
            kept = json.dumps(asked_in.kept(), sort_keys=True)
            await self._tasks.set_fields(task.id, asked_in=kept)
        if request.agent != task.agent:
            await self._tasks.set_fields(task.id, agent=request.agent)
        unmet = [t for t in after if t.state != "done"]
        if unmet:
            why = "waits for " + ", ".join(f"{shown(t)} ({t.state})" for t in unmet)
            await self._tasks.move(task.id, "queued", why, came_from=STARTABLE)
            return Waiting(why)
        if task.state != "todo":  # tried again: it starts as it was made
            await self._tasks.move(task.id, "todo", "starting again", came_from=STARTABLE)
        return await self._admission.admit(replace(request, task=task.id), wait)

    async def end(
        self, task: TaskRecord, state: TaskState, why: str, *, by: str = "operator"
    ) -> TaskRecord:
        """End ``task`` in ``state`` (done, failed or cancelled) saying ``why``. Its agent's
        run still going for it is stopped first (a forge task's run is its forge run's to
        end), so the agent is free and what it cost is whole; its launches waiting in the
        spawn queue are taken out; what it cost and, done or failed after some work, its
        projection's error are kept; and the tasks that waited for it are started (when it
        is done) or told."""
        if state not in ENDED_STATES:
            raise ValueError(f"{state} is not an end")
        task = await self._tasks.task(task.id) or task  # as it is now
        if not task.open:
            raise TaskError(f"task {shown(task)} already ended: {task.state}")
        live = await self.runs.live_run(task)
        if live is not None and task.source != "forge" and self._stop is not None:
            assert task.agent is not None
            try:
                await self._stop.stop_agent(task.agent, by=f"{by}: task {shown(task)} {state}")
            except FleetError as exc:
                log.warning("task %s %s: its run %s not stopped: %s", task.id, state, live, exc)
        await self.runs.drop_queued(task.id)
        actual = await self._actuals.actual(task.id)
        worked = state in ("done", "failed") and actual.runs > 0
        came_from = ("todo", "queued", "working", "review")
        error = error_of(task, actual) if worked else None
        if not await self._tasks.finish(task.id, state, why, actual, error, came_from=came_from):
            now = await self._tasks.task(task.id)
            if now is not None and not now.open:  # its run's end ended it meanwhile
                return now
            raise TaskError(f"task {shown(task)} moved meanwhile: `task {task.id}` shows it")
        ended = await self._tasks.task(task.id)
        assert ended is not None
        await self._ended(ended)
        return ended

    async def merged(
        self, task: TaskRecord, why: str, *, by: str = "operator"
    ) -> TaskRecord | None:
        """``task``'s change was merged (a forge pull request's, or a line ``merge`` landed):
        it is done — one that failed or was cancelled before is done all the same, its work
        landed; ``None`` when it was done already or moved meanwhile."""
        task = await self._tasks.task(task.id) or task  # as it is now
        if task.state == "done":
            return None
        if not task.open and not await self._tasks.move(
            task.id, "review", why, came_from=(task.state,)
        ):
            return None
        return await self.end(task, "done", why, by=by)

    async def landed(self, line: LineRecord, why: str, *, by: str = "operator") -> list[TaskRecord]:
        """The tasks whose work was on ``line``, now merged, done (:meth:`merged`); them."""
        ended = []
        for task in await self.runs.on_line(line):
            try:
                done = await self.merged(task, why, by=by)
            except TaskError as exc:  # moved meanwhile: it says where it is
                log.info("task %d not ended by the merge of %s: %s", task.id, line.branch, exc)
                continue
            if done is not None:
                ended.append(done)
        return ended

    async def _ended(self, task: TaskRecord) -> None:
        """``task`` ended: those waiting for it start (every task they wait for done) or are
        told it will not be."""
        for waiting_id in await self._tasks.waiting_for(task.id):
            waiting = await self._tasks.task(waiting_id)
            if waiting is None or waiting.state != "queued":
                continue  # never asked to start, or already gone
            if task.state != "done":
                why = (
                    f"waits for {shown(task)}, which is {task.state}: `task cancel "
                    f"{waiting.id}` drops it"
                )
                await self._tasks.move(waiting.id, "queued", why, came_from=("queued",))
                continue
            if any(t.state != "done" for t in await self.runs.after(waiting)):
                continue
            # Not awaited here: a run's end is still being told (its agent's lock may be
            # held), and a launch waits for nothing of it.
            self.held.start(waiting, "task")
        for listener in self._enders:
            try:
                await listener(task)
            except Exception:
                log.exception("could not tell of the end of task %s", task.id)

    async def settled(self) -> None:
        """Once the starts of tasks whose wait was over, under way now, are done."""
        await self.held.settled()

    async def stop(self) -> None:
        """Cancel the starts under way; the tasks stay ``queued``, settled at the next
        start."""
        await self.held.stop()

    # -- what they add up to -----------------------------------------------------------

    async def views(self, tasks: Sequence[TaskRecord]) -> list[TaskView]:
        """``tasks`` with what their runs used, read at once."""
        return views(tasks, await self._actuals.actuals([t.id for t in tasks]))

    async def view(self, task: TaskRecord) -> TaskView:
        return (await self.views([task]))[0]

    async def mission_view(self, mission: MissionRecord) -> MissionView:
        """``mission`` with its tasks and sub-missions, summed."""
        tree = await self._missions.tree(mission.id)
        found = await self._tasks.tasks(missions=[m.id for m in tree], limit=10_000)
        return mission_view(mission, tree, await self.views(found))

    async def board(
        self, *, mission: MissionRecord | None = None, states: Sequence[str] | None = None
    ) -> list[TaskView]:
        """The tasks (of ``mission`` and its sub-missions; in ``states``), with actuals."""
        missions = None
        if mission is not None:
            missions = [m.id for m in await self._missions.tree(mission.id)]
        return await self.views(await self._tasks.tasks(missions=missions, states=states))


def _fix(name: str) -> str:
    return name if MISSION_NAME.fullmatch(name) else "NAME"


def _not_startable(task: TaskRecord) -> str:
    if task.state == "working":
        return (
            f"task {shown(task)} is working ({task.why}): `task {task.id}` shows it, "
            f"`stop {task.agent}` stops its run"
        )
    return f"task {shown(task)} is {task.state}: `task new` makes another"
