"""The ``forget`` command: take an ended agent out of ``ps`` for good, its runs, usage and
audit trail kept in the ledger for reports. Needs the admin role."""

from __future__ import annotations

from bot.commands.family import Family, command
from bot.commands.handlers.agents.specs import FORGET
from bot.commands.routing.request import Request
from fleet.approvals.service import Approvals
from fleet.supervisor.interfaces import AgentControl


class ForgetCommand(Family):
    """The ``forget`` handler over the app's :class:`~fleet.supervisor.fleet.Fleet`."""

    def __init__(self, fleet: AgentControl, approvals: Approvals | None = None) -> None:
        self._fleet = fleet
        self._approvals = approvals

    @command(FORGET)
    async def forget(self, req: Request) -> str:
        name = req.arg("NAME")
        await self._fleet.forget(name)
        rules = await self._approvals.forget_rules(name) if self._approvals else 0
        learned = f" and the {_rules(rules)} `always` taught it" if rules else ""
        return (
            f"Forgot **{name}**{learned}: `ps` no longer lists it. Its runs, usage and audit "
            f"trail stay in the ledger; `spawn {name}` starts it afresh."
        )


def _rules(n: int) -> str:
    return "rule" if n == 1 else f"{n} rules"
