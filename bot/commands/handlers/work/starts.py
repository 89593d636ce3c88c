"""How a task whose wait is over starts where its start was asked for:
:class:`ChatTaskStarts` is the register's starter (:data:`fleet.tasks.register.Starter`); it
runs ``task start N`` as the task's asker — the ACL as of now — in the room it was asked in,
audited and claimed once as ``task:<id>:<runs so far>``, answered there as a typed one is."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from bot.commands.routing.router import Router
from bot.commands.routing.sources import Delegated
from connectors.base import Connector, RoomId, UserId
from fleet.ledger.records.tasks import TaskRecord
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)


class ChatTaskStarts:
    """The held tasks asked for in chat, started as their asker in their room."""

    def __init__(
        self, clock: Clock, router: Router, connector_named: Callable[[str], Connector | None]
    ) -> None:
        self._clock = clock
        self._router = router
        self._connector_named = connector_named

    async def start(self, task: TaskRecord) -> bool:
        """Run ``task start`` of ``task`` as whoever asked for its start, where they asked;
        whether it started (``False``: no chat start asked, its connector is not running,
        or the start was refused — the room was told why)."""
        asked = _asked_in(task)
        if asked is None:
            return False
        connector = self._connector_named(asked["connector"])
        if connector is None:
            return False
        run = Delegated(
            sender=UserId(asked["sender"]),
            room=RoomId(asked["room"]),
            text=f"task start {task.id}",
            event_id=f"task:{task.id}:{len(task.runs)}",
            source=f"task:{task.id}",
            at=self._clock.now(),
            heading=f"What task #{task.id} waited for is done; started now:"
            if task.after
            else f"Task #{task.id} starts now:",
        )
        ran = await self._router.run_as(connector, run)
        return ran is None or ran.outcome == "ok"  # None: started once already


def _asked_in(task: TaskRecord) -> dict[str, str] | None:
    """Where ``task``'s start was asked for: its connector, room and sender."""
    if not task.asked_in:
        return None
    try:
        found = json.loads(task.asked_in)
    except ValueError:
        log.warning("task %s: where its start was asked is unreadable", task.id)
        return None
    if not isinstance(found, dict):
        return None
    keys = ("connector", "room", "sender")
    if not all(isinstance(found.get(key), str) and found[key] for key in keys):
        return None
    return {key: str(found[key]) for key in keys}
