"""The ``egress`` commands: ``egress NAME`` shows an agent's network — its mode, its
allow-list, whether it is blocked, and what it was refused (by the allow-list's forward
proxy, or as an unknown endpoint at the metering proxy), counted; ``egress block NAME``
cuts a locked agent's allow-list at once (its egress door is closed and the connections
through it are cut), and ``egress unblock NAME`` opens it again. Block and unblock need
the operator role; the router audits them like every command, and a notice tells the
agent's threads and the home rooms.

The block is kept in the state dir: it holds across the agent's restarts and
Fleetwarden's own, until ``egress unblock``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.places.specs import EGRESS, EGRESS_BLOCK, EGRESS_UNBLOCK
from bot.commands.routing.request import Request
from bot.render.fleet import ago, table
from fleet.ledger.stores.running.refusals import RefusalCount
from fleet.names import AgentName, agent_name
from fleet.notices import Notice, NoticeBoard
from fleet.sandbox.service import LOCKED, NONE, Sandboxes
from fleet.supervisor.interfaces import FleetView


class EgressCommands(Family):
    """The ``egress`` handlers over the fleet's sandboxes."""

    def __init__(
        self,
        fleet: FleetView,
        sandboxes: Sandboxes | None,
        notices: NoticeBoard | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fleet = fleet
        self._sandboxes = sandboxes
        self._notices = notices
        self._now = now

    @command(EGRESS)
    async def egress(self, req: Request) -> str:
        if "NAME" not in req.command.args:
            return "Usage: `egress NAME`, `egress block NAME` or `egress unblock NAME`."
        name = agent_name(req.arg("NAME"))
        spec = await self._fleet.spec(name)
        book = self._sandboxes.refusals if self._sandboxes is not None else None
        refused = await book.counts(name) if book is not None else []
        if spec.sandbox == NONE:
            mode = "no sandbox: the host's network, any host"
        elif spec.egress != LOCKED:
            mode = "open: the host's network, any host"
        elif self._sandboxes is not None and self._sandboxes.blocked(name):
            mode = "locked, allow-list blocked (`egress unblock` gives it back)"
        else:
            allow = ", ".join(spec.egress_allow) or "none"
            mode = f"locked; allowed hosts: {allow}"
        return f"Egress of {name}: {mode}.\n\n" + refusals_text(refused, self._now())

    @command(EGRESS_BLOCK, under=EGRESS)
    async def block(self, req: Request) -> str:
        name, sandboxes = await self._locked(req)
        cut = await sandboxes.block(name)
        what = "its open connections cut" if cut else "no connection was open"
        text = f"Egress of {name} blocked by {req.who}: its allow-list is cut ({what})."
        await self._tell(name, text)
        return text

    @command(EGRESS_UNBLOCK, under=EGRESS)
    async def unblock(self, req: Request) -> str:
        name, sandboxes = await self._locked(req)
        opened = await sandboxes.unblock(name)
        now = " It can reach it again now." if opened else ""
        text = f"Egress of {name} unblocked by {req.who}: its allow-list applies again.{now}"
        await self._tell(name, text)
        return text

    async def _locked(self, req: Request) -> tuple[AgentName, Sandboxes]:
        name = agent_name(req.arg("NAME"))
        if self._sandboxes is None:
            raise CommandError("agents are not sandboxed here: there is no egress to block")
        spec = await self._fleet.spec(name)
        if spec.egress != LOCKED:
            raise CommandError(
                f"{name} has egress: {spec.egress}, so it reaches any host and there is no "
                "allow-list to cut; set `egress: locked` for it and restart it"
            )
        return name, self._sandboxes

    async def _tell(self, name: str, text: str) -> None:
        if self._notices is not None:
            await self._notices.post(Notice(text, tone="warning", agents=(agent_name(name),)))


def refusals_text(refused: list[RefusalCount], now: datetime) -> str:
    """The refused attempts of one agent, as a table (pure)."""
    if not refused:
        return "No egress attempt refused."
    total = sum(r.count for r in refused)
    rows = [
        [
            r.target,
            r.why,
            str(r.count),
            ago(r.last_at, now),
            "forward proxy" if r.source == "egress" else "metering proxy",
        ]
        for r in refused
    ]
    headers = ["destination", "why", "times", "last", "refused by"]
    return f"Refused: {total} attempt(s).\n\n" + table(headers, rows)
