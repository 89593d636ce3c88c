"""The mission commands: ``mission new`` (a group of tasks, part of another or not),
``mission add`` (tasks put in it),
``mission M`` (its progress, spend and tasks, its sub-missions with their own totals) and
``missions``."""

from __future__ import annotations

from typing import Final

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.work.refs import mission_of, tasks_after
from bot.commands.handlers.work.specs import MISSION, MISSION_ADD, MISSION_NEW, MISSIONS
from bot.commands.request import Reply, Request
from bot.render import machine
from bot.render import tasks as render
from fleet.ledger.stores.work.missions import MissionsStore
from fleet.tasks.register import Register

LISTED: Final = 20
"""How many missions ``missions`` sums (the newest), each read with its tasks."""
_WORDS: Final = frozenset(sub.name.rsplit(" ", 1)[-1] for sub in MISSION.subcommands)


class MissionCommands(Family):
    """``mission new``, ``mission M`` and ``missions`` over the register."""

    def __init__(self, *, register: Register, missions: MissionsStore) -> None:
        self._register = register
        self._missions = missions

    @command(MISSION_NEW, under=MISSION)
    async def new(self, req: Request) -> Reply:
        name = req.arg("NAME")
        if name in _WORDS:  # `mission new` would never show it
            raise CommandError(f"{name!r} cannot be a mission's name: pick another")
        parent_ref = req.command.str_flag("in")
        register = self._register
        parent = None if parent_ref is None else await mission_of(register, parent_ref)
        title = req.command.args.get("TITLE", "")
        made = await register.new_mission(name, title, req.who, parent)
        return Reply(render.mission_made(made, parent), detail=f"mission {made.name}")

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
        return Reply(render.mission(view), data=machine.mission(view))

    @command(MISSIONS)
    async def missions(self, req: Request) -> str:
        every = await self._missions.missions()
        names = {m.id: m.name for m in every}
        newest = every[-LISTED:][::-1]
        views = [await self._register.mission_view(m) for m in newest]
        return render.missions(views, names, len(every))
