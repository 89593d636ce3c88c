"""How a task whose wait is over starts where its start was asked for:
:class:`ChatTaskStarts` is the register's starter (:data:`fleet.tasks.held.Starter`); it
hands the :class:`~fleet.tasks.asked.HeldStart` the register built — its launch request, its
asker — to :meth:`~bot.commands.routing.router.Router.start_for` as ``task start`` of that
task: the ACL as of now, audited and claimed once as ``task:<id>:<runs so far>``, carried out
by ``task start``'s own launch (:meth:`~bot.commands.handlers.work.tasks.TaskCommands.held`)
and answered in the asker's room as a typed one is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.commands.routing.request import Reply, Request
from bot.commands.routing.router import Router
from bot.commands.routing.sources import DelegatedStart
from connectors.base import Connector, RoomId, UserId
from fleet.tasks.asked import HeldStart
from fleet.timing.clock import Clock

HeldAct = Callable[[Request, HeldStart], Awaitable[Reply]]
"""``task start`` of a held task, as its request (the register's) launches: the reply."""


class ChatTaskStarts:
    """The held tasks asked for in chat, started as their asker in their room."""

    def __init__(
        self,
        clock: Clock,
        router: Router,
        connector_named: Callable[[str], Connector | None],
        act: HeldAct,
    ) -> None:
        """``act``: ``task start``'s launch of a held task's request."""
        self._clock = clock
        self._router = router
        self._connector_named = connector_named
        self._act = act

    async def start(self, held: HeldStart) -> bool:
        """Start ``held`` for whoever asked for it, where they asked; whether it started
        (``False``: no chat start asked, its connector is not running, or the start was
        refused — the room was told why)."""
        asker, task = held.asker, held.task
        if asker is None:
            return False
        connector = self._connector_named(asker.connector)
        if connector is None:
            return False
        act = self._act

        async def launch(req: Request) -> Reply:
            return await act(req, held)

        start = DelegatedStart(
            sender=UserId(asker.sender),
            room=RoomId(asker.room),
            command="task start",
            args={"TASK": str(task.id)},
            act=launch,
            asked=held.asked,
            event_id=held.event,
            source=held.source,
            at=self._clock.now(),
            heading=f"What task #{task.id} waited for is done; started now:"
            if task.after
            else f"Task #{task.id} starts now:",
        )
        ran = await self._router.start_for(connector, start)
        return ran is None or ran.outcome == "ok"  # None: started once already
