"""The ``raise`` command: lift the cap of a run that reached it (``cutoff: ask``, or any
live capped run) and continue it — ``raise NAME [+AMOUNT]``, the amount in the cap's
measure (``+$2``, ``+2``, ``+50k`` tokens; none: the raise its ask offered, else
the cap its task began with). It answers the run's open ask at its cap
(:mod:`fleet.approvals.spend`); after a timeout that left the run frozen it still raises
and thaws it. Needs the operator role; the agent's starter answers its ask by a reaction or
a reply as well. ``raise budget SCOPE`` answers a budget's open ask by at most its offer;
any other raise of a budget's limit is an admin's, as ``budget set`` is."""

from __future__ import annotations

from typing import Final

from bot.acl import Role
from bot.commands.errors import CommandError, PermissionDenied
from bot.commands.family import Family, command
from bot.commands.handlers.spend.specs import RAISE
from bot.commands.routing.request import Reply, Request
from fleet.approvals.spend import SpendAsks, SpendDenied, SpendError
from fleet.names import BUDGET_WORD

BUDGET: Final = BUDGET_WORD  # `raise budget SCOPE [+AMOUNT]`: no agent is so named


class RaiseCommand(Family):
    """The handler of :data:`RAISE`."""

    def __init__(self, asks: SpendAsks | None) -> None:
        self._asks = asks

    @command(RAISE)
    async def raise_cap(self, req: Request) -> Reply:
        name = req.arg("NAME")
        if self._asks is None:
            raise CommandError("metering is off: no run has a cap to raise")
        amount = req.command.args.get("AMOUNT")
        more = req.command.args.get("MORE")
        if name == BUDGET:
            if amount is None:
                raise CommandError("say which budget: `raise budget SCOPE [+AMOUNT]`")
            admin = req.role is Role.ADMIN
            try:
                said = await self._asks.raise_budget(amount, more, by=req.who, admin=admin)
            except SpendDenied as exc:
                raise PermissionDenied(str(exc)) from None
            except SpendError as exc:
                raise CommandError(str(exc)) from None
            return Reply(said, detail=f"raised budget {amount} {more or '(the offer)'}")
        if more is not None:
            raise CommandError(f"`raise {name}` takes one amount, e.g. `raise {name} +$2`")
        try:
            said = await self._asks.raise_cap(name, amount, by=req.who)
        except SpendError as exc:
            raise CommandError(str(exc)) from None
        return Reply(
            said,
            topic=name,
            thread_line=f"Cap raised by {req.message.sender}.",
            detail=f"raised {name} {amount or '(the offer)'}",
        )
