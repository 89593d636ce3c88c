"""Taking a pipeline stage's gate on a commit: the line its work is on and that line's tip
(:mod:`.judged`) recorded with the gate — the sha an ``approve`` ask shows, the one a
``check:`` ran on — and a gate whose line moved past its commit taken again (asked again,
or checked again, said in chat). A ``check:`` waits for the stage agent's run still going
(a live session between turns, a restart): it runs on a checkout no run is writing, and a
line that moved while it ran is checked again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from fleet.ledger.records.lines import LineRecord
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.work.stages import StageRecord, StagesStore
from fleet.ledger.stores.work.tasks import TasksStore
from fleet.markdown.defuse import fenced
from fleet.notices import Notice, NoticeBoard
from fleet.peers.framing import defuse
from fleet.pipelines import told
from fleet.pipelines.answers import asked
from fleet.pipelines.ends import RunEnds
from fleet.pipelines.gates import run_check
from fleet.pipelines.judged import Judged
from fleet.pipelines.schema import gate_shown
from fleet.tasks.register import shown

Passed = Callable[[StageRecord], Awaitable[None]]
"""``stage`` passed its gate: its task done, the next stages started."""
Failed = Callable[[StageRecord, str], Awaitable[bool]]
"""``stage``'s gate failed, saying why: the mission stops."""
Named = Callable[[StageRecord], Awaitable[str]]
"""The name of ``stage``'s mission."""


class Taking:
    """The gates of stages taken on their lines' commits (its caller holds each stage's
    lock around every call)."""

    def __init__(
        self,
        *,
        stages: StagesStore,
        tasks: TasksStore,
        lines: LinesStore,
        judged: Judged,
        notices: NoticeBoard,
        passed: Passed,
        fail: Failed,
        mission_name: Named,
    ) -> None:
        self._stages = stages
        self._tasks = tasks
        self._lines = lines
        self._judged = judged
        self._notices = notices
        self._passed = passed
        self._fail = fail
        self._mission_name = mission_name
        self.ends = RunEnds()

    async def take(self, stage: StageRecord, tries: int = 3) -> None:
        """Take ``stage``'s gate (it is ``waiting``) on its line's tip now: an ``approve``
        of a stage that committed nothing, on the change it read (:meth:`Judged.read`)."""
        if stage.gate == "approve":
            every = await self._stages.of_mission(stage.mission_id)
            before = sorted(
                (s for s in every if s.position < stage.position), key=lambda s: -s.position
            )
            judged = await self._judged.read(stage.task_id, [s.task_id for s in before])
        else:  # a check runs in the stage's own checkout, which no other agent writes
            judged = await self._judged.at(stage.task_id)
        at = None if judged is None else (judged[0].id, judged[1])
        on = "" if judged is None else f" on commit {judged[1][:12]}"
        if stage.gate == "auto":
            if await self._stages.move(
                stage.task_id, "passed", "auto" + on, came_from=("waiting",), at=at
            ):
                await self._passed(stage)
        elif stage.gate == "approve":
            if await self._stages.move(
                stage.task_id, "asking", "asked of the operators" + on, came_from=("waiting",),
                at=at,
            ):  # fmt: skip
                await self.ask(stage, judged)
        elif await self._deferred(stage):
            return
        elif await self._stages.move(
            stage.task_id, "checking", "checked" + on, came_from=("waiting",), at=at
        ):
            await self._check(stage, judged, tries)

    async def _deferred(self, stage: StageRecord) -> bool:
        """Whether ``stage``'s check waits for a run of its agent still going (a live
        session's turn over, a restart): it may write the checkout the check runs in, so
        the check is taken once that run ends (said in the stage's why)."""
        task = await self._tasks.task(stage.task_id)
        run = None if task is None else await self._judged.writing(task)
        if task is None or run is None:
            return False
        why = (
            f"its check runs once run {run} of {task.agent} ends (a check runs on a commit "
            f"no run is writing): `stop {task.agent}` ends it"
        )
        await self._stages.move(stage.task_id, "waiting", why, came_from=("waiting",))
        return True

    async def _check(
        self, stage: StageRecord, judged: tuple[LineRecord, str] | None, tries: int
    ) -> None:
        assert not isinstance(stage.gate, str)
        words = gate_shown(stage.gate).removeprefix("check: ")
        if judged is None or not judged[0].checkout:
            await self._fail(stage, f"its check `{words}` has no checkout to run in: the "
                             "agent left no line on this machine (a check runs here)")  # fmt: skip
            return
        line, commit = judged
        ran = await run_check(stage.gate, Path(line.checkout), stage.timeout)
        now = await self._judged.tip(line.id)
        if now != commit and tries > 1:  # its line moved while it ran: not what it checked
            why = f"its line moved to {(now or 'none')[:12]} while its check ran on {commit[:12]}"
            if await self._stages.move(stage.task_id, "waiting", why, came_from=("checking",)):
                fresh = await self._stages.stage_of(stage.task_id)
                if fresh is not None:
                    await self.take(fresh, tries - 1)
            return
        if ran.passed and now == commit:
            why = f"check `{words}` exited 0 on commit {commit[:12]}"
            if await self._stages.move(
                stage.task_id, "passed", why, came_from=("checking",), was=commit
            ):
                await self._passed(stage)
            return
        if ran.passed:
            ran = replace(ran, code=None, problem=f"its line kept moving past {commit[:12]}")
        said = f"exited {ran.code}" if ran.code is not None else f"did not end: {ran.problem}"
        if ran.code is None and not ran.tail:
            said = f"could not run: {ran.problem}" if ran.problem else said
        why = f"its check `{words}` {said}"
        if ran.tail:
            why += "; the end of its output:\n" + fenced(defuse(ran.tail, 1_500))
        await self._fail(stage, why)

    async def ask(
        self, stage: StageRecord, judged: tuple[LineRecord, str] | None, again: str = ""
    ) -> None:
        task = await self._tasks.task(stage.task_id)
        mission = await self._mission_name(stage)
        named = "its task" if task is None else f"task {shown(task)}"
        if judged is not None:
            whose = (
                "its change"
                if task is None or judged[0].agent == task.agent
                else (f"the change it read, {judged[0].agent}'s,")
            )
            named += f", {whose} on {judged[0].branch} at commit {judged[1][:12]}"
        elif task is not None and task.branch is not None:
            named += f", its change on {task.branch}"
        every = await self._stages.of_mission(stage.mission_id)
        last = all(other.position <= stage.position for other in every)
        branch = judged[0].branch if judged is not None else task.branch if task else None
        text = asked(mission, stage.stage, named, again, last=last, branch=branch)
        if task is not None and task.runs:
            await self.ends.told(task.runs[-1])  # the news of its run's end first
        # About its agent too: it waits behind that agent's news held while a command about
        # the agent (`send reviewer exit`) is answered.
        about = (f"mission:{mission}", *((task.agent,) if task and task.agent else ()))
        await self._notices.post(Notice(text, tone="warning", alert=True, about=about))

    async def moved(self, stage: StageRecord) -> None:
        """``stage``'s gate, asking or passed, was taken on a commit its line has moved
        past: the pass is withdrawn — asked again, or checked again — and said in chat;
        unless a later stage of its mission works on that line now (its own gate judges
        what it adds)."""
        if not stage.judges or stage.line_id is None or not stage.commit:
            return
        now = await self._judged.tip(stage.line_id)
        if now is None or now == stage.commit or await self._later_on_line(stage):
            return
        line = await self._lines.line(stage.line_id)
        if line is None:
            return
        moved = f"its line {line.branch} moved from {stage.commit[:12]} to {now[:12]}"
        if stage.gate == "approve":
            why = f"asked again on commit {now[:12]}: {moved}"
            if await self._stages.move(
                stage.task_id, "asking", why, came_from=("asking", "passed"),
                at=(line.id, now), was=stage.commit,
            ):  # fmt: skip
                again = "passed" if stage.gate_state == "passed" else "asked about"
                await self.ask(stage, (line, now), f"{moved} since it {again} it: asked again")
            return
        why = f"checked again: {moved}"
        if await self._stages.move(
            stage.task_id, "waiting", why, came_from=("passed",), was=stage.commit
        ):
            mission = await self._mission_name(stage)
            await self._notices.post(told.withdrawn(mission, stage.stage, moved))
            fresh = await self._stages.stage_of(stage.task_id)
            if fresh is not None:
                await self.take(fresh)

    async def _later_on_line(self, stage: StageRecord) -> bool:
        """Whether a later stage of ``stage``'s mission, by the same agent, has started:
        it works on the same line, and its own gate judges the line's tip."""
        mine = await self._tasks.task(stage.task_id)
        if mine is None:
            return False
        for other in await self._stages.of_mission(stage.mission_id):
            if other.position <= stage.position:
                continue
            found = await self._tasks.task(other.task_id)
            if found is not None and found.agent == mine.agent and found.state != "todo":
                return True
        return False
