"""The mission commands: ``mission new`` (a group of tasks, part of another or not),
``mission add`` (tasks put in it),
``mission M`` (its progress, spend and tasks, its sub-missions with their own totals; made
from a pipeline, its stages) and ``missions``; ``mission new --pipeline`` (a mission of a
pipeline's stages, :mod:`fleet.pipelines.flow`) and ``mission approve`` / ``mission deny``
(the answer to a stage's ``approve`` gate, the stage named)."""

from __future__ import annotations

from typing import Final

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.work.refs import mission_of, tasks_after
from bot.commands.handlers.work.specs import (
    MISSION,
    MISSION_ADD,
    MISSION_APPROVE,
    MISSION_DENY,
    MISSION_NEW,
    MISSIONS,
)
from bot.commands.routing.request import Reply, Request
from bot.render import machine
from bot.render.work import pipelines as render_pipelines
from bot.render.work import tasks as render
from bot.text.agent_text import said
from fleet.ledger.stores.work.missions import MissionsStore
from fleet.pipelines.answers import done
from fleet.pipelines.flow import Pipelines
from fleet.tasks.register import Register, source_of

LISTED: Final = 20
"""How many missions ``missions`` sums (the newest), each read with its tasks."""
_WORDS: Final = frozenset(sub.name.rsplit(" ", 1)[-1] for sub in MISSION.subcommands)


class MissionCommands(Family):
    """``mission new``, ``mission M`` and ``missions`` over the register."""

    def __init__(
        self, *, register: Register, missions: MissionsStore, pipelines: Pipelines | None = None
    ) -> None:
        """``pipelines``: the missions made from the config's pipelines (``None``: none)."""
        self._register = register
        self._missions = missions
        self._pipelines = pipelines

    @command(MISSION_NEW, under=MISSION)
    async def new(self, req: Request) -> Reply:
        name = req.arg("NAME")
        if name in _WORDS:  # `mission new` would never show it
            raise CommandError(f"{name!r} cannot be a mission's name: pick another")
        parent_ref = req.command.str_flag("in")
        pipeline = req.command.str_flag("pipeline")
        if pipeline is not None:
            if parent_ref is not None:
                raise CommandError("`--pipeline` makes a mission of its own: leave out `--in`")
            return await self._from_pipeline(req, name, pipeline)
        register = self._register
        parent = None if parent_ref is None else await mission_of(register, parent_ref)
        title = req.command.args.get("TITLE", "")
        made = await register.new_mission(name, title, req.who, parent)
        return Reply(render.mission_made(made, parent), detail=f"mission {made.name}")

    async def _from_pipeline(self, req: Request, name: str, pipeline: str) -> Reply:
        if self._pipelines is None:
            raise CommandError("no pipelines here: the config has no `pipelines:` section")
        msg = req.message
        asked_in = {
            "connector": msg.connector,
            "room": msg.room,
            "thread": msg.thread_id,
            "sender": msg.sender,
        }
        kind, _ = source_of(msg.event_id)
        title = req.command.args.get("TITLE", "")
        made = await self._pipelines.make(
            name, pipeline, title, by=req.who, source=kind, asked_in=asked_in
        )
        text = render_pipelines.made(made, pipeline)
        return Reply(text, detail=f"mission {made.mission.name} pipeline {pipeline}")

    @command(MISSION_APPROVE, under=MISSION)
    async def approve(self, req: Request) -> Reply:
        return await self._answer(req, approved=True)

    @command(MISSION_DENY, under=MISSION)
    async def deny(self, req: Request) -> Reply:
        return await self._answer(req, approved=False)

    async def _answer(self, req: Request, *, approved: bool) -> Reply:
        found = await mission_of(self._register, req.arg("NAME"))
        if self._pipelines is None:
            raise CommandError(f"mission {found.name} is no pipeline's: nothing to approve")
        answer = self._pipelines.approve if approved else self._pipelines.deny
        stage = await answer(found, req.who, req.command.args.get("STAGE"))
        word = "approved" if approved else "denied"
        text = render_pipelines.answered(stage, found.name, approved)
        every = await self._pipelines.stages(found)
        if approved and all(s.gate_state == "passed" for s, _ in every):
            line = (
                None
                if stage.line_id is None
                else await self._pipelines.judged.lines.line(stage.line_id)
            )
            branch = None if line is None else line.branch
            text = done(said(found.name, 40), said(stage.stage, 40), branch)
        return Reply(text, detail=f"mission {found.name} stage {stage.stage} {word}")

    @command(MISSION_ADD, under=MISSION)
    async def add(self, req: Request) -> Reply:
        register = self._register
        found = await mission_of(register, req.arg("NAME"))
        tasks = await tasks_after(register, req.arg("TASKS"), "mission add")
        moved = await register.add_to_mission(found, tasks)
        ids = ",".join(str(task.id) for task in moved)
        return Reply(render.added(found, moved), detail=f"mission {found.name} + {ids}")

    @command(MISSION)
    async def mission(self, req: Request) -> Reply:
        register = self._register
        found = await mission_of(register, req.arg("NAME"))
        view = await register.mission_view(found)
        text = render.mission(view)
        if self._pipelines is not None:
            stages = render_pipelines.stages(await self._pipelines.stages(found))
            text = f"{text}\n\n{stages}" if stages else text
        return Reply(text, data=machine.mission(view))

    @command(MISSIONS)
    async def missions(self, req: Request) -> str:
        every = await self._missions.missions()
        names = {m.id: m.name for m in every}
        newest = every[-LISTED:][::-1]
        views = [await self._register.mission_view(m) for m in newest]
        return render.missions(views, names, len(every))
