"""The ``resume`` command: continue an agent whose processes are paused — by a budget's
``freeze`` cutoff, before its window resets, or by an admin's ``freeze`` — or every paused
agent (``resume all``). Needs the operator role; lifting an admin's freeze, and ``resume
all``, need the admin role."""

from __future__ import annotations

from bot.acl import Role
from bot.commands.errors import CommandError, PermissionDenied
from bot.commands.family import Family, command
from bot.commands.handlers.agents.specs import RESUME
from bot.commands.routing.request import Reply, Request
from fleet.ledger import Freeze
from fleet.names import ALL_AGENTS
from fleet.supervisor.interfaces import FleetBrakes


class LimitCommands(Family):
    def __init__(self, fleet: FleetBrakes) -> None:
        self._fleet = fleet

    @command(RESUME)
    async def resume(self, req: Request) -> Reply:
        name = req.arg("NAME")
        frozen = {freeze.agent: freeze for freeze in await self._fleet.frozen()}
        if name == ALL_AGENTS:
            return await self._resume_all(req, list(frozen.values()))
        freeze = frozen.get(name)
        if freeze is not None and freeze.by_hand and req.role is not Role.ADMIN:
            raise PermissionDenied(
                f"{name} was frozen by {freeze.by}, and only an admin lifts that; you are "
                f"{req.role.value}"
            )
        if freeze is None or not await self._fleet.thaw(name):
            raise CommandError(
                f"{name} is not frozen: `resume` continues an agent a budget's cutoff or "
                "`freeze` paused (`ps` shows them as frozen)"
            )
        text = f"Resumed **{name}**: its processes continue. {_lifted(freeze)}"
        return Reply(
            text,
            topic=name,
            thread_line=f"Resumed by {req.message.sender}.",
            detail=f"resumed {name} ({freeze.reason})",
        )

    async def _resume_all(self, req: Request, frozen: list[Freeze]) -> Reply:
        if req.role is not Role.ADMIN:
            raise PermissionDenied(
                f"`resume all` needs the admin role; you are {req.role.value} "
                "(`resume NAME` continues one a budget froze)"
            )
        if not frozen:
            return Reply("Nothing to resume: no agent is frozen.")
        thawed = [freeze for freeze in frozen if await self._fleet.thaw(freeze.agent)]
        lines = "\n".join(f"- **{freeze.agent}**: {_lifted(freeze)}" for freeze in thawed)
        names = ", ".join(freeze.agent for freeze in thawed) or "none"
        text = f"Resumed {len(thawed)} agent{'' if len(thawed) == 1 else 's'}:\n\n{lines}"
        return Reply(text, detail=f"resumed {names}")


def _lifted(freeze: Freeze) -> str:
    """Whose freeze was lifted, and what still holds."""
    if freeze.by_hand:
        return f"It had been frozen {freeze.reason}."
    if freeze.budget == f"run:{freeze.agent}":
        return (
            "Its run is still at its cap, so its model requests are refused until "
            f"`raise {freeze.agent} +AMOUNT` lifts it."
        )
    return (
        f"{freeze.budget} is still at its limit, so its model requests are refused until "
        "the window resets."
    )
