"""A mission made from a pipeline, moved stage by stage over the register.

:meth:`Pipelines.make` makes the mission and one task per stage — each ``--after`` the
stages it waits for, its start asked where the mission was made — records the stages
(:class:`~fleet.ledger.stores.work.stages.StagesStore`) and starts the first ones as a task
whose wait is over starts (:class:`fleet.tasks.held.HeldStarts`: a request of origin
``pipeline``, for its asker, through the one admission). When a stage's run is over — its
task up for review (a change on a branch) or done — its gate runs: ``auto`` passes;
``check`` runs its command in the stage's checkout (:mod:`.gates`) once no run of its agent
writes it, and passes on exit 0; ``approve`` asks the operators (``mission approve M STAGE``
/ ``mission deny M STAGE``, :mod:`.answers`). A gate is of a commit: it records the line it
judged and its tip (:mod:`.taking`) — the sha an ask shows, the one a check ran on — an
answer to an ask of a commit the line has moved past is refused and asked again, a later
commit on the line withdraws a pass (asked or checked again, said in chat), and ``merge`` /
``push`` land the line only at a commit a gate passed
(:class:`~fleet.repos.landing.approval.ApprovalHold`). A passed gate ends the stage's task
``done`` and starts each next stage whose stages are all through, its task told what they
left (:mod:`.handoff`). A failed gate — or a stage's task failed or cancelled — stops the
mission: the stage's task fails, every other stage still open is cancelled (a run going for
it stopped; a later one never starts), and the operators are told why."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Final

from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.tasks import MissionRecord, TaskRecord, TaskSource
from fleet.ledger.stores.peers.reviews import ReviewsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.work.missions import MissionsStore
from fleet.ledger.stores.work.stages import GateState, StageRecord, StagesStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.markdown.defuse import escape_cell
from fleet.model import AgentSpec
from fleet.notices import NoticeBoard
from fleet.pipelines import told
from fleet.pipelines.answers import answering_now, held, meanwhile, stale
from fleet.pipelines.handoff import Before, handoff
from fleet.pipelines.judged import Judged
from fleet.pipelines.making import Made, Making
from fleet.pipelines.schema import PipelineEntry
from fleet.pipelines.taking import Taking
from fleet.tasks.register import Register, TaskError, shown

log = logging.getLogger(__name__)

OPEN_GATES: Final[tuple[GateState, ...]] = ("waiting", "checking", "asking")
BY: Final = "pipeline"


class Pipelines:
    """The missions made from the config's pipelines, moved as their stages' tasks end."""

    def __init__(
        self,
        *,
        register: Register,
        stages: StagesStore,
        tasks: TasksStore,
        missions: MissionsStore,
        runs: RunsStore,
        reviews: ReviewsStore,
        judged: Judged,
        notices: NoticeBoard,
        pipelines: Callable[[], Mapping[str, PipelineEntry]],
        roster: Callable[[], Sequence[AgentSpec]],
    ) -> None:
        """``judged``: the stages' lines and their tips; ``pipelines``: the config's, as
        of now; ``roster``: the agents, as of now."""
        self._register = register
        self._stages = stages
        self._tasks = tasks
        self._missions = missions
        self._runs = runs
        self._reviews = reviews
        self._notices = notices
        self._making = Making(register, tasks, stages, pipelines, roster)
        self.judged = judged
        self._taking = Taking(
            stages=stages,
            tasks=tasks,
            lines=judged.lines,
            judged=judged,
            notices=notices,
            passed=self._passed,
            fail=self._fail,
            mission_name=self._mission_name,
        )
        self._gates: set[asyncio.Task[None]] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self._started: set[int] = set()
        register.listen_ended(self._ended)
        register.guard(partial(held, stages))
        register.runs.listen_for_review(self._for_review)

    # -- making ------------------------------------------------------------------------

    async def make(
        self,
        name: str,
        pipeline: str,
        title: str,
        *,
        by: str,
        source: TaskSource,
        asked_in: Mapping[str, str | None],
    ) -> Made:
        """Make mission ``name`` from ``pipeline`` (:class:`~fleet.pipelines.making.Making`)
        and start its first stages where ``asked_in`` says, as ``by``."""
        made = await self._making.make(
            name, pipeline, title, by=by, source=source, asked_in=asked_in
        )
        tasks = dict(made.stages)
        for stage in made.started:
            self._start(tasks[stage])
        return made

    # -- hearing the stages' tasks -------------------------------------------------------

    async def _for_review(self, task: TaskRecord, run_id: int) -> None:
        """A stage's run left its change on a branch (or its session's turn is over)."""
        stage = await self._stages.stage_of(task.id)
        if stage is not None and stage.gate_state in ("waiting", "asking", "passed"):
            self._background(self._gate(stage), f"gate-{task.id}")

    async def hear(self, event: FleetEvent) -> None:
        """A run ended or a session's turn is over: a gate taken on its agent's line sees
        whether the line moved past the commit it judged (a restarted run is bound to no
        task: heard here), and a check put off while the run went on is taken."""
        if event.kind not in (EventKind.ENDED, EventKind.TURN_OVER) or event.run_id is None:
            return
        if event.kind is EventKind.ENDED:  # after the listeners that tell of it
            self._taking.ends.heard(event.run_id)
        self._background(self._heard(event), f"heard-{event.run_id}")  # the events go on

    async def _heard(self, event: FleetEvent) -> None:
        try:
            line = await self.judged.lines.live_line(event.agent)
            found = [] if line is None else await self._stages.of_line(line.id)
            if event.kind is EventKind.ENDED:
                found += [
                    stage
                    for stage in await self._stages.unsettled()
                    if stage.gate_state == "waiting" and not isinstance(stage.gate, str)
                ]
        except Exception:  # the next event, `mission approve` and the hold see it all the same
            log.exception("the gates on %s's line were not looked at", event.agent)
            return
        for stage in found:
            task = await self._tasks.task(stage.task_id)
            if task is None or task.agent != event.agent:
                continue
            if stage.gate_state != "waiting" or task.state in ("review", "done"):
                self._background(self._gate(stage), f"gate-{stage.task_id}")

    async def _ended(self, task: TaskRecord) -> None:
        """A stage's task ended: done, its gate runs (unless it passed it already); failed
        or cancelled, the mission stops."""
        stage = await self._stages.stage_of(task.id)
        if stage is None or stage.gate_state not in OPEN_GATES:
            return
        if task.state == "done":
            if stage.gate_state == "waiting":
                self._taking.ends.expect(task.runs)
                self._background(self._gate(stage), f"gate-{task.id}")
            return
        why = f"its task {shown(task)} is {task.state}"
        if task.why:
            why += f" ({escape_cell(task.why, 300)})"  # its words may be an agent's
        self._background(self._fail(stage, why), f"stop-{task.id}")

    def _lock(self, task_id: int) -> asyncio.Lock:
        return self._locks.setdefault(task_id, asyncio.Lock())

    def _background(self, work: object, name: str) -> None:
        assert asyncio.iscoroutine(work)
        job = asyncio.create_task(work, name=name)
        self._gates.add(job)
        job.add_done_callback(self._gates.discard)

    # -- the gates ---------------------------------------------------------------------

    async def _gate(self, stage: StageRecord) -> None:
        try:
            async with self._lock(stage.task_id):
                fresh = await self._stages.stage_of(stage.task_id)  # as it is now
                if fresh is not None and fresh.gate_state in ("asking", "passed"):
                    await self._taking.moved(fresh)
                elif fresh is not None and fresh.gate_state == "waiting":
                    await self._taking.take(fresh)
        except Exception:
            log.exception(
                "the gate of stage %s (task %s) failed to run", stage.stage, stage.task_id
            )
            await self._fail(stage, "its gate could not be run (the log says why)")

    async def approve(
        self, mission: MissionRecord, by: str, stage_name: str | None = None
    ) -> StageRecord:
        """An operator's yes to ``mission``'s stage ``stage_name`` (none: the one) asking:
        it passes; it."""
        every = await self._stages.of_mission(mission.id)
        stage = await answering_now(self._tasks, every, mission.name, stage_name, "approve")
        async with self._lock(stage.task_id):
            fresh = await self._stages.stage_of(stage.task_id)
            if fresh is None or fresh.gate_state != "asking":
                raise TaskError(meanwhile(mission.name, stage))
            now = None if fresh.line_id is None else await self.judged.tip(fresh.line_id)
            if now is not None and now != fresh.commit:
                await self._taking.moved(fresh)  # asked again, on the commit there now
                raise TaskError(stale(mission.name, fresh, now))
            on = f" at commit {fresh.commit[:12]}" if fresh.commit else ""
            if not await self._stages.move(
                fresh.task_id, "passed", f"approved by {by}{on}", came_from=("asking",),
                was=fresh.commit,
            ):  # fmt: skip
                raise TaskError(meanwhile(mission.name, stage))
        await self._passed(fresh)
        return fresh

    async def deny(
        self, mission: MissionRecord, by: str, stage_name: str | None = None
    ) -> StageRecord:
        """An operator's no to ``mission``'s stage ``stage_name`` (none: the one) asking:
        the mission stops there; it."""
        every = await self._stages.of_mission(mission.id)
        stage = await answering_now(self._tasks, every, mission.name, stage_name, "deny")
        if not await self._fail(stage, f"denied by {by}", came_from=("asking",)):
            raise TaskError(meanwhile(mission.name, stage))
        return stage

    # -- through, or stopped -------------------------------------------------------------

    async def _passed(self, stage: StageRecord) -> None:
        """``stage`` is through its gate: its task done, the next stages started."""
        task = await self._tasks.task(stage.task_id)
        if task is not None and task.open:
            await self._register.end(task, "done", f"stage {stage.stage} passed its gate", by=BY)
        every = await self._stages.of_mission(stage.mission_id)
        if all(s.gate_state == "passed" for s in every):
            mission = await self._mission_name(stage)
            await self._notices.post(told.done(mission))
            return
        await self._start_next(every)

    async def _start_next(self, every: Sequence[StageRecord]) -> int:
        """Start each of ``every`` (a mission's stages) not started whose stages before it
        all passed their gates, told what they left; how many."""
        passed = {s.task_id for s in every if s.gate_state == "passed"}
        started = 0
        for later in every:
            if later.gate_state != "waiting" or later.task_id in self._started:
                continue
            found = await self._tasks.task(later.task_id)
            if found is None or found.state != "todo" or not found.after:
                continue
            if all(a in passed for a in found.after):
                self._started.add(found.id)
                await self._tell(later, found, every)
                self._start(found)
                started += 1
        return started

    async def _tell(
        self, stage: StageRecord, task: TaskRecord, every: Sequence[StageRecord]
    ) -> None:
        """Put what the stages ``task`` waits for left in its body: its prompt."""
        by_task = {s.task_id: s for s in every}
        before = []
        for task_id in task.after:
            prior = await self._tasks.task(task_id)
            if prior is not None and task_id in by_task:
                before.append(Before(by_task[task_id], prior))
        body = await handoff(
            stage,
            await self._mission_name(stage),
            before,
            runs=self._runs,
            task_runs=self._register.runs,
            reviews=self._reviews,
        )
        await self._tasks.set_body(task.id, body)

    def _start(self, task: TaskRecord) -> None:
        self._started.add(task.id)
        self._register.held.start(task, "pipeline")

    async def _fail(
        self, stage: StageRecord, why: str, *, came_from: Collection[str] = OPEN_GATES
    ) -> bool:
        """``stage``'s gate failed (``why``): the mission stops, told to the operators;
        whether it was this call that failed it."""
        if not await self._stages.move(stage.task_id, "failed", why, came_from=came_from):
            return False
        await self._stop_mission(stage)
        return True

    async def _stop_mission(self, stage: StageRecord) -> None:
        """``stage`` failed: its task fails, every other stage still open is stopped — its
        task cancelled (a run going for it stopped) — and the operators are told, once."""
        stored = await self._stages.stage_of(stage.task_id)
        why = "" if stored is None else stored.why  # redacted and bounded
        task = await self._tasks.task(stage.task_id)
        if task is not None and task.open:
            first = why.split("\n", 1)[0]
            await self._register.end(task, "failed", f"its gate failed: {first}", by=BY)
        never, cut = list[str](), list[str]()
        said = f"stage {stage.stage}'s gate failed"
        for other in await self._stages.of_mission(stage.mission_id):
            if other.task_id == stage.task_id or not await self._stages.move(
                other.task_id, "stopped", said, came_from=OPEN_GATES
            ):
                continue
            found = await self._tasks.task(other.task_id)
            if found is None:
                continue
            ran = bool(found.runs) or found.state in ("working", "review", "done")
            (cut if ran else never).append(f"{other.stage} (#{found.id})")
            if found.open:
                end = "its mission stopped" if ran else "it never starts"
                await self._register.end(found, "cancelled", f"{said}: {end}", by=BY)
        mission = await self._mission_name(stage)
        named = "" if task is None else f" (task {shown(task)})"
        await self._notices.post(told.stopped(mission, stage.stage, named, why, cut, never))

    async def _mission_name(self, stage: StageRecord) -> str:
        found = await self._missions.mission(stage.mission_id)
        return f"#{stage.mission_id}" if found is None else found.name

    async def stages(self, mission: MissionRecord) -> list[tuple[StageRecord, TaskRecord | None]]:
        """``mission``'s stages in order, each with its task as it is now (none: not a
        pipeline's)."""
        found = []
        for stage in await self._stages.of_mission(mission.id):
            found.append((stage, await self._tasks.task(stage.task_id)))
        return found

    def resume(self) -> None:
        """Settle, without waiting, the gates Fleetwarden was away for (:meth:`sweep`):
        once the tasks' starter is there, since a gate that passes starts a stage."""
        self._background(self.sweep(), "pipelines-sweep")

    async def sweep(self) -> int:
        """The gates a stop left: a check it cut off is run again; a stage whose task's work
        ended while nobody heard has its gate run, or stops its mission (its task failed or
        was cancelled); a mission's stop cut off is finished; a stage never started whose
        stages before it all passed starts; how many were settled."""
        settled = 0
        nexts: set[int] = set()
        left = await self._stages.unsettled()
        for listed in sorted(left, key=lambda s: s.gate_state != "failed"):  # stops first
            stage = await self._stages.stage_of(listed.task_id)
            if stage is None or stage.gate_state != listed.gate_state:
                continue  # a stop before it settled it
            if stage.gate_state == "failed":
                await self._stop_mission(stage)
                settled += 1
                continue
            task = await self._tasks.task(stage.task_id)
            if task is None or task.state in ("queued", "working"):
                continue
            if task.state == "todo":
                nexts.add(stage.mission_id)
                continue
            if stage.gate_state == "checking":
                if not await self._stages.move(
                    stage.task_id, "waiting", "run again", came_from=("checking",)
                ):
                    continue
                stage = replace(stage, gate_state="waiting")
            if task.state in ("review", "done"):
                await self._gate(stage)
            else:
                await self._fail(stage, f"its task {shown(task)} is {task.state}")
            settled += 1
        for mission_id in sorted(nexts):
            every = await self._stages.of_mission(mission_id)
            for stage in every:  # passed, its task's end cut off
                task = await self._tasks.task(stage.task_id)
                if stage.gate_state == "passed" and task is not None and task.open:
                    why = f"stage {stage.stage} passed its gate"
                    await self._register.end(task, "done", why, by=BY)
            settled += await self._start_next(every)
        return settled

    async def settled(self) -> None:
        """Once the gates under way now are through (tests wait on it)."""
        while self._gates:
            await asyncio.gather(*list(self._gates), return_exceptions=True)

    async def stop(self) -> None:
        """Stop the gates under way (a check's command is ended whole)."""
        jobs = list(self._gates)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
